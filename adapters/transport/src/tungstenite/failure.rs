//! Whether a failed connection attempt is worth repeating, decided once for every
//! adapter: a reconnect loop that retries a rejected certificate or a 401 forever
//! hides the one thing the user must fix, and one that gives up on a refused port
//! loses a server that was only restarting.

use core::fmt;
use core::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

use ::tungstenite::error::{ProtocolError, UrlError as WsUrlError};
use ::tungstenite::Error as WsError;

/// What a failed attempt means for the next one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Worth retrying with backoff (refused, reset, timed out, HTTP 5xx, 408, 429),
    /// no sooner than `retry_after` if the server asked for a delay.
    Transient {
        /// The server's `Retry-After`, if it sent one (uncapped: the machine caps
        /// it at `backoff.max_requested_delay`).
        retry_after: Option<Duration>,
    },
    /// Retrying the same request can only fail the same way.
    Permanent(Permanent),
}

/// Why an attempt can never succeed as configured. Its message names what to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Permanent {
    /// `wss://` in a build without TLS.
    TlsUnavailable,
    /// The server's certificate was rejected (unknown issuer, wrong name,
    /// expired, ...): the text is the TLS library's.
    Certificate(String),
    /// The two TLS stacks share no protocol version or cipher suite.
    TlsIncompatible(String),
    /// The URL's host is not a name TLS can verify.
    ServerName,
    /// The server refused the upgrade with this HTTP status (4xx other than 408
    /// Request Timeout and 429 Too Many Requests): bad path, missing or wrong
    /// credentials, forbidden.
    Rejected {
        /// The response's status code.
        status: u16,
    },
    /// The URL cannot be connected to (tungstenite's own URL check).
    Url(String),
    /// The server accepted none of the offered subprotocols (or picked one that
    /// was not offered).
    Subprotocol(String),
}

impl fmt::Display for Permanent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Permanent::TlsUnavailable => {
                write!(f, "wss:// needs TLS, which this build does not include")
            }
            Permanent::Certificate(why) => write!(f, "server certificate rejected: {why}"),
            Permanent::TlsIncompatible(why) => write!(f, "TLS handshake impossible: {why}"),
            Permanent::ServerName => write!(f, "the host is not a valid TLS server name"),
            Permanent::Rejected { status } => {
                write!(f, "the server refused the upgrade with HTTP {status}")
            }
            Permanent::Url(why) => write!(f, "unusable URL: {why}"),
            Permanent::Subprotocol(why) => write!(f, "subprotocol negotiation failed: {why}"),
        }
    }
}

impl std::error::Error for Permanent {}

/// Classifies a failed attempt's error (TCP connect, TLS or WebSocket handshake).
///
/// Permanent: TLS not compiled in, a rejected certificate, no common TLS version,
/// an invalid TLS server name, HTTP 4xx other than 408/429, a URL tungstenite
/// refuses, a failed subprotocol negotiation. Everything else is transient: I/O errors (refused, reset,
/// unreachable, timed out), HTTP 5xx, 408, 429, a malformed response.
pub fn classify(e: &WsError) -> Failure {
    match e {
        WsError::Url(WsUrlError::TlsFeatureNotEnabled) => {
            Failure::Permanent(Permanent::TlsUnavailable)
        }
        WsError::Url(WsUrlError::UnableToConnect(_)) => transient(None),
        WsError::Url(u) => Failure::Permanent(Permanent::Url(u.to_string())),
        WsError::Http(response) => {
            let status = response.status().as_u16();
            if (400..500).contains(&status) && status != 408 && status != 429 {
                Failure::Permanent(Permanent::Rejected { status })
            } else {
                transient(retry_after(e))
            }
        }
        WsError::Tls(tls) => classify_tls(tls),
        WsError::Io(io) => classify_io(io),
        WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(e)) => {
            Failure::Permanent(Permanent::Subprotocol(e.to_string()))
        }
        _ => transient(None),
    }
}

/// `Retry-After` of a refused handshake (HTTP 429/503), if any: delay-seconds, or
/// an HTTP-date (IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`) read against the
/// system clock; a date in the past is no delay.
pub fn retry_after(e: &WsError) -> Option<Duration> {
    let WsError::Http(response) = e else {
        return None;
    };
    let value = response.headers().get("retry-after")?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now())
}

/// Parses a `Retry-After` value at wall-clock time `now`: delay-seconds or an
/// IMF-fixdate. `None` for anything else (the obsolete RFC 850 and asctime date
/// forms included: a server that sends them gets plain backoff).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = http_date(value)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

fn transient(retry_after: Option<Duration>) -> Failure {
    Failure::Transient { retry_after }
}

#[cfg(feature = "rustls")]
fn classify_tls(tls: &::tungstenite::error::TlsError) -> Failure {
    use ::tungstenite::error::TlsError;
    match tls {
        TlsError::Rustls(e) => classify_rustls(e),
        TlsError::InvalidDnsName => Failure::Permanent(Permanent::ServerName),
        _ => transient(None),
    }
}

#[cfg(not(feature = "rustls"))]
fn classify_tls(_: &::tungstenite::error::TlsError) -> Failure {
    transient(None)
}

/// An I/O error may carry the TLS library's error (tokio-rustls and rustls's
/// `StreamOwned` wrap it in `InvalidData`).
fn classify_io(io: &std::io::Error) -> Failure {
    #[cfg(feature = "rustls")]
    if let Some(e) = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
        return classify_rustls(e);
    }
    let _ = io;
    transient(None)
}

#[cfg(feature = "rustls")]
fn classify_rustls(e: &rustls::Error) -> Failure {
    match e {
        rustls::Error::InvalidCertificate(_) => {
            Failure::Permanent(Permanent::Certificate(e.to_string()))
        }
        rustls::Error::PeerIncompatible(_) => {
            Failure::Permanent(Permanent::TlsIncompatible(e.to_string()))
        }
        _ => transient(None),
    }
}

/// Seconds since the Unix epoch of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date(s: &str) -> Option<u64> {
    let (_weekday, rest) = s.split_once(", ")?;
    let mut parts = rest.split(' ');
    let day: u64 = parts.next()?.parse().ok()?;
    let month_name = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)? as u64 + 1;
    let year: u64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if parts.next()? != "GMT" || parts.next().is_some() || hms.next().is_some() {
        return None;
    }
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 || year < 1970 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec)
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`, for years from 1970).
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).saturating_sub(719_468)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

#[cfg(test)]
mod tests {
    use super::*;
    use ::tungstenite::http::Response;

    fn http(status: u16, retry_after: Option<&str>) -> WsError {
        let mut r = Response::builder().status(status);
        if let Some(v) = retry_after {
            r = r.header("Retry-After", v);
        }
        WsError::Http(Box::new(r.body(None).unwrap()))
    }

    #[test]
    fn client_errors_are_permanent_except_timeout_and_too_many_requests() {
        for status in [400, 401, 403, 404, 426] {
            assert_eq!(
                classify(&http(status, None)),
                Failure::Permanent(Permanent::Rejected { status }),
                "{status}"
            );
        }
        for status in [408, 429, 500, 502, 503] {
            assert!(
                matches!(classify(&http(status, None)), Failure::Transient { .. }),
                "{status}"
            );
        }
    }

    #[test]
    fn io_errors_are_transient_and_missing_tls_is_permanent() {
        for kind in [
            std::io::ErrorKind::ConnectionRefused,
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::TimedOut,
        ] {
            assert_eq!(
                classify(&WsError::Io(kind.into())),
                Failure::Transient { retry_after: None }
            );
        }
        assert_eq!(
            classify(&WsError::Url(WsUrlError::TlsFeatureNotEnabled)),
            Failure::Permanent(Permanent::TlsUnavailable)
        );
    }

    #[test]
    fn retry_after_in_seconds_or_as_an_http_date_rides_on_a_transient_failure() {
        assert_eq!(
            classify(&http(503, Some("2"))),
            Failure::Transient {
                retry_after: Some(Duration::from_secs(2))
            }
        );
        // 1994-11-06T08:49:37Z is 784111777 s after the epoch.
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777 - 90);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(90))
        );
        let later = UNIX_EPOCH + Duration::from_secs(784_111_777 + 5);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", later),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", UNIX_EPOCH),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Tue, 29 Feb 2028 23:59:60 GMT", UNIX_EPOCH),
            Some(Duration::from_secs(1_835_481_600))
        );
        for bad in [
            "soon",
            "-1",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sunday, 06-Nov-94 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, UNIX_EPOCH), None, "{bad}");
        }
    }
}
