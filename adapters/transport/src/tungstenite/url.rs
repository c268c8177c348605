//! WebSocket URLs, checked once: a bad URL is an error, never retried forever.

use core::fmt;

/// A checked `ws://` (or `wss://`) URL: where to connect and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The URL as given.
    pub url: Box<str>,
    /// The host, without IPv6 brackets.
    pub host: String,
    /// The port: explicit, or 80 for `ws` and 443 for `wss`.
    pub port: u16,
    /// Whether the scheme is `wss` (TLS).
    pub tls: bool,
}

/// Why a URL was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// The scheme is not `ws` or `wss`.
    Scheme(String),
    /// No host.
    NoHost,
    /// The port is not a number from 1 to 65535.
    Port(String),
    /// Not a URL at all.
    Invalid(String),
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::Scheme(s) => write!(f, "unsupported scheme {s:?} (use ws:// or wss://)"),
            UrlError::NoHost => write!(f, "the URL has no host"),
            UrlError::Port(p) => write!(f, "invalid port {p:?} (use 1-65535)"),
            UrlError::Invalid(why) => write!(f, "not a WebSocket URL: {why}"),
        }
    }
}

impl std::error::Error for UrlError {}

impl Target {
    /// Parses and checks `url`.
    pub fn parse(url: &str) -> Result<Target, UrlError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| UrlError::Invalid(format!("{url:?} has no scheme")))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "ws" => false,
            "wss" => true,
            other => return Err(UrlError::Scheme(other.to_owned())),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        // Credentials are not ours to parse; the host follows the last '@'.
        let hostport = authority.rsplit('@').next().unwrap_or_default();
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| UrlError::Invalid("unclosed '[' in host".into()))?;
            (host, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(UrlError::NoHost);
        }
        let port = match port {
            None => {
                if tls {
                    443
                } else {
                    80
                }
            }
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n != 0 => n,
                _ => return Err(UrlError::Port(p.to_owned())),
            },
        };
        Ok(Target {
            url: url.into(),
            host: host.to_owned(),
            port,
            tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_urls_give_host_port_and_scheme() {
        let t = Target::parse("ws://127.0.0.1:9000/feed?x=1").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.tls), ("127.0.0.1", 9000, false));
        let t = Target::parse("wss://example.invalid/").unwrap();
        assert_eq!((t.port, t.tls), (443, true));
        let t = Target::parse("ws://[::1]:81").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 81));
        assert_eq!(Target::parse("ws://localhost").unwrap().port, 80);
    }

    #[test]
    fn bad_urls_are_errors_that_say_why() {
        assert_eq!(
            Target::parse("ws://127.0.0.1:99999/"),
            Err(UrlError::Port("99999".into()))
        );
        assert_eq!(Target::parse("ws://h:0/"), Err(UrlError::Port("0".into())));
        assert_eq!(
            Target::parse("http://h/"),
            Err(UrlError::Scheme("http".into()))
        );
        assert_eq!(Target::parse("wss://"), Err(UrlError::NoHost));
        assert!(matches!(
            Target::parse("not a url"),
            Err(UrlError::Invalid(_))
        ));
    }
}
