//! Durations as people write them in config files: `"20s"`, `"1h 30m"`, `"250ms"`
//! (humantime's form), for `#[serde(with = "heartbeat_core::serde_duration")]`.
//!
//! Human-readable formats (TOML, JSON, YAML, env) get the text; binary formats get
//! serde's own `Duration` encoding. Parsing accepts humantime's units (`ns`, `us`,
//! `µs`, `ms`, `s`, `m`, `min`, `h`, `d`, and their long forms) summed, with or
//! without spaces: `1h30m` equals `1h 30m`. No allocation: the text is written to
//! and read from the stack, so this works in `no_std`.

use core::fmt::{self, Write};
use core::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

/// Serializes `d` as text (`"1h 30m"`) for human-readable formats.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    if !s.is_human_readable() {
        return d.serialize(s);
    }
    let mut text = Text::default();
    // The buffer holds the longest duration's text (about 50 bytes).
    write!(text, "{}", Human(*d)).map_err(|_| serde::ser::Error::custom("duration too long"))?;
    s.serialize_str(text.as_str())
}

/// Deserializes a duration written as text (`"250ms"`, `"1h30m"`); a bare number
/// is refused, since nobody can tell whether `500` means seconds or milliseconds.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    if !d.is_human_readable() {
        return Duration::deserialize(d);
    }
    d.deserialize_str(TextVisitor)
}

/// The same for `Option<Duration>` (`None` is a missing or null value).
pub mod option {
    use super::*;

    /// Serializes `Some(d)` as text, `None` as none.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&With(*d)),
            None => s.serialize_none(),
        }
    }

    /// Deserializes an optional duration written as text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<Wrapped>::deserialize(d).map(|o| o.map(|w| w.0))
    }

    struct With(Duration);

    impl Serialize for With {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            super::serialize(&self.0, s)
        }
    }

    struct Wrapped(Duration);

    impl<'de> Deserialize<'de> for Wrapped {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            super::deserialize(d).map(Wrapped)
        }
    }
}

/// Parses humantime's duration text (see the module docs).
pub fn parse(text: &str) -> Result<Duration, ParseError> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(ParseError::Empty);
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(ParseError::NumberExpected);
        }
        let n: u64 = rest[..digits].parse().map_err(|_| ParseError::Overflow)?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c.is_whitespace())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        let part = match unit {
            "ns" | "nsec" | "nanos" => Some(Duration::from_nanos(n)),
            "us" | "µs" | "usec" | "micros" => n.checked_mul(1_000).map(Duration::from_nanos),
            "ms" | "msec" | "millis" => n.checked_mul(1_000_000).map(Duration::from_nanos),
            "s" | "sec" | "secs" | "second" | "seconds" => Some(Duration::from_secs(n)),
            "m" | "min" | "mins" | "minute" | "minutes" => {
                n.checked_mul(60).map(Duration::from_secs)
            }
            "h" | "hr" | "hrs" | "hour" | "hours" => n.checked_mul(3600).map(Duration::from_secs),
            "d" | "day" | "days" => n.checked_mul(86_400).map(Duration::from_secs),
            "" => return Err(ParseError::UnitMissing),
            _ => return Err(ParseError::UnknownUnit),
        };
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or(ParseError::Overflow)?;
    }
    Ok(total)
}

/// Why duration text was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum ParseError {
    /// Nothing was written.
    Empty,
    /// Text where a number should start.
    NumberExpected,
    /// A number without a unit (`500`: seconds or milliseconds?).
    UnitMissing,
    /// A unit that is not one of humantime's.
    UnknownUnit,
    /// More than `Duration` holds.
    Overflow,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::Empty => "empty duration",
            ParseError::NumberExpected => "expected a number, e.g. 250ms, 20s or 1h 30m",
            ParseError::UnitMissing => "a duration needs a unit (ms, s, m, h, d), e.g. 20s",
            ParseError::UnknownUnit => "unknown unit (use ns, us, ms, s, m, h or d)",
            ParseError::Overflow => "duration too long",
        })
    }
}

impl core::error::Error for ParseError {}

/// Formats a duration as humantime does: its nonzero parts from days down to
/// nanoseconds, separated by spaces (`1h 30m`, `1s 500ms`, `0s`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Human(pub Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        let nanos = self.0.subsec_nanos();
        if secs == 0 && nanos == 0 {
            return f.write_str("0s");
        }
        let parts = [
            (secs / 86_400, "d"),
            (secs / 3600 % 24, "h"),
            (secs / 60 % 60, "m"),
            (secs % 60, "s"),
            (u64::from(nanos / 1_000_000), "ms"),
            (u64::from(nanos / 1_000 % 1_000), "us"),
            (u64::from(nanos % 1_000), "ns"),
        ];
        let mut first = true;
        for (n, unit) in parts {
            if n > 0 {
                if !first {
                    f.write_char(' ')?;
                }
                write!(f, "{n}{unit}")?;
                first = false;
            }
        }
        Ok(())
    }
}

struct TextVisitor;

impl Visitor<'_> for TextVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration with a unit, e.g. \"250ms\", \"20s\" or \"1h 30m\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse(v).map_err(|e| E::custom(format_args!("{e}: {v:?}")))
    }
}

/// A fixed buffer for one duration's text.
struct Text {
    bytes: [u8; 64],
    len: usize,
}

impl Default for Text {
    fn default() -> Text {
        Text {
            bytes: [0; 64],
            len: 0,
        }
    }
}

impl Text {
    fn as_str(&self) -> &str {
        // Only whole `str`s are ever written (see `write_str`).
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        self.bytes
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(d: Duration) -> Text {
        let mut t = Text::default();
        write!(t, "{}", Human(d)).unwrap();
        t
    }

    #[test]
    fn durations_print_as_humantime_does_and_parse_back() {
        for (d, s) in [
            (Duration::from_secs(5400), "1h 30m"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1500), "1s 500ms"),
            (Duration::from_secs(2 * 86_400 + 1), "2d 1s"),
            (Duration::ZERO, "0s"),
            (Duration::new(1, 2_003_004), "1s 2ms 3us 4ns"),
        ] {
            assert_eq!(text(d).as_str(), s);
            assert_eq!(parse(s), Ok(d), "{s}");
        }
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("2 days"), Ok(Duration::from_secs(2 * 86_400)));
        assert_eq!(parse("500"), Err(ParseError::UnitMissing));
        assert_eq!(parse("5 parsecs"), Err(ParseError::UnknownUnit));
        assert_eq!(parse("ms"), Err(ParseError::NumberExpected));
        assert_eq!(parse(""), Err(ParseError::Empty));
        assert_eq!(parse("99999999999999999999d"), Err(ParseError::Overflow));
        let max = text(Duration::MAX);
        assert_eq!(parse(max.as_str()), Ok(Duration::MAX));
    }
}
