//! `--max-*` options: the resource limits one peer can make this process hold
//! (`heartbeat_tokio::Limits`), with the library's production defaults.

use clap::Args;
use heartbeat_tokio::{Limits, LimitsError};

/// Resource limits (defaults: the library's production ones).
#[derive(Args, Debug, Clone, Default)]
pub struct LimitArgs {
    /// Largest message accepted from a peer (its fragments together), e.g. 64KiB, 1MiB; over it the peer is closed with 1009 [default: 1MiB].
    #[arg(long, global = true, value_parser = parse_bytes, value_name = "BYTES")]
    pub max_message: Option<usize>,
    /// Largest single frame accepted from a peer; over it: close 1009 [default: 1MiB].
    #[arg(long, global = true, value_parser = parse_bytes, value_name = "BYTES")]
    pub max_frame: Option<usize>,
    /// Bytes of received messages held per connection before reading pauses [default: 4MiB].
    #[arg(long, global = true, value_parser = parse_bytes, value_name = "BYTES")]
    pub max_inbound: Option<usize>,
    /// Bytes of outbound messages held per connection; a larger send is refused [default: 4MiB].
    #[arg(long, global = true, value_parser = parse_bytes, value_name = "BYTES")]
    pub max_outbound: Option<usize>,
    /// Connections `serve` holds at once (handshakes included); more are refused [default: 16384].
    #[arg(long, global = true, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Upgrade handshakes `serve` runs at once; more are refused [default: 1024].
    #[arg(long, global = true, value_name = "N")]
    pub max_handshakes: Option<usize>,
}

impl LimitArgs {
    /// The limits: the defaults with every given option applied, checked.
    pub fn limits(&self) -> Result<Limits, LimitsError> {
        let d = Limits::default();
        Limits {
            max_message: self.max_message.unwrap_or(d.max_message),
            max_frame: self
                .max_frame
                .unwrap_or(d.max_frame.min(self.max_message.unwrap_or(d.max_frame))),
            max_inbound: self.max_inbound.unwrap_or(d.max_inbound),
            max_outbound: self.max_outbound.unwrap_or(d.max_outbound),
            max_connections: self.max_connections.unwrap_or(d.max_connections),
            max_handshakes: self.max_handshakes.unwrap_or(d.max_handshakes),
        }
        .validate()
    }
}

/// Parses `4096`, `64KiB`, `64k`, `1MiB`, `1m`, `1GiB`.
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: usize = number
        .parse()
        .map_err(|_| format!("'{text}' is not a size (try 4096, 64KiB or 1MiB)"))?;
    let scale: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        u => {
            return Err(format!(
                "unknown unit '{u}' in '{text}' (use KiB, MiB or GiB)"
            ))
        }
    };
    n.checked_mul(scale)
        .filter(|&b| b > 0)
        .ok_or_else(|| format!("'{text}' must be greater than zero and fit in memory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("64KiB"), Ok(64 << 10));
        assert_eq!(parse_bytes("1m"), Ok(1 << 20));
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("3 parsecs").is_err());
    }

    #[test]
    fn a_small_max_message_lowers_the_default_frame_limit() {
        let args = LimitArgs {
            max_message: Some(1000),
            ..LimitArgs::default()
        };
        let l = args.limits().unwrap();
        assert_eq!((l.max_message, l.max_frame), (1000, 1000));
    }
}
