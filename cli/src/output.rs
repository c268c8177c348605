//! Where events go: aligned text for people (coloured only on a terminal) or one JSON
//! object per line for scripts.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Map, Value};

/// Prints events; cheap to clone and share between tasks.
#[derive(Clone)]
pub struct Out {
    inner: Arc<Inner>,
}

struct Inner {
    json: bool,
    /// Events go to stderr (`connect`, whose stdout is the peer's messages).
    stderr: bool,
    /// Only the summary (`ping -q`).
    quiet: bool,
    colour: bool,
    start: Instant,
}

/// How a text line is highlighted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Tone {
    /// Ordinary progress.
    Plain,
    /// Good news (connected, healed).
    Good,
    /// A fault or a detection.
    Bad,
    /// A section heading.
    Heading,
}

impl Out {
    /// Text on stdout, coloured if stdout is a terminal; or JSON lines.
    pub fn new(json: bool) -> Out {
        Out {
            inner: Arc::new(Inner {
                json,
                stderr: false,
                quiet: false,
                colour: !json && std::io::stdout().is_terminal(),
                start: Instant::now(),
            }),
        }
    }

    /// The same output showing only the summary (`ping -q`): every other event
    /// is dropped, in text and in JSON.
    pub fn quiet(self, quiet: bool) -> Out {
        let inner = Inner {
            json: self.inner.json,
            stderr: self.inner.stderr,
            quiet,
            colour: self.inner.colour,
            start: self.inner.start,
        };
        Out {
            inner: Arc::new(inner),
        }
    }

    /// The same output on stderr, colour decided by stderr being a terminal.
    pub fn on_stderr(self) -> Out {
        let inner = Inner {
            json: self.inner.json,
            stderr: true,
            quiet: self.inner.quiet,
            colour: !self.inner.json && std::io::stderr().is_terminal(),
            start: self.inner.start,
        };
        Out {
            inner: Arc::new(inner),
        }
    }

    /// Whether events are JSON lines (`--json`) rather than text.
    pub fn is_json(&self) -> bool {
        self.inner.json
    }

    /// Seconds since the program started.
    pub fn elapsed(&self) -> f64 {
        self.inner.start.elapsed().as_secs_f64()
    }

    /// Emits `event` with `fields` as JSON, or `who` + `text` as an aligned text line
    /// (nothing in text mode when `text` is empty).
    pub fn event(&self, event: &str, who: &str, fields: Value, tone: Tone, text: &str) {
        if self.inner.quiet && event != "summary" {
            return;
        }
        let t = self.elapsed();
        let mut out: Box<dyn Write> = if self.inner.stderr {
            Box::new(std::io::stderr().lock())
        } else {
            Box::new(std::io::stdout().lock())
        };
        let result = if self.inner.json {
            let mut obj = Map::new();
            obj.insert("event".into(), json!(event));
            obj.insert("t".into(), json!(round3(t)));
            if !who.is_empty() {
                obj.insert("who".into(), json!(who));
            }
            if let Value::Object(fields) = fields {
                obj.extend(fields);
            }
            writeln!(out, "{}", Value::Object(obj))
        } else {
            let (on, off) = match (self.inner.colour, tone) {
                (false, _) | (true, Tone::Plain) => ("", ""),
                (true, Tone::Good) => ("\x1b[32m", "\x1b[0m"),
                (true, Tone::Bad) => ("\x1b[1;31m", "\x1b[0m"),
                (true, Tone::Heading) => ("\x1b[1m", "\x1b[0m"),
            };
            if text.is_empty() {
                // JSON-only event (a text rendering is printed separately).
                return;
            }
            if tone == Tone::Heading {
                writeln!(out, "{on}{text}{off}")
            } else {
                writeln!(out, "{t:>7.3}s  {who:<8} {on}{text}{off}")
            }
        };
        // A closed stdout (e.g. `| head`) must not crash the program.
        let _ = result.and_then(|()| out.flush());
    }

    /// A plain line of text (never in JSON mode).
    pub fn line(&self, text: &str) {
        if !self.inner.json {
            let mut out: Box<dyn Write> = if self.inner.stderr {
                Box::new(std::io::stderr().lock())
            } else {
                Box::new(std::io::stdout().lock())
            };
            let _ = writeln!(out, "{text}").and_then(|()| out.flush());
        }
    }
}

/// Milliseconds with three decimals, for JSON.
pub fn ms(d: std::time::Duration) -> f64 {
    round3(d.as_secs_f64() * 1000.0)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
