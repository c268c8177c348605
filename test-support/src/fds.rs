//! File descriptors of this process: how many are open, and a lower soft limit,
//! for tests of what a server does when `accept` fails with `EMFILE`.

use std::io;

/// How many descriptors this process has open now.
pub fn open_files() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/fd")?.count())
}

/// Sets this process's soft `RLIMIT_NOFILE` to `soft` (the hard limit is kept):
/// from then on, opening a descriptor numbered `soft` or above fails with
/// `EMFILE`. Affects every thread: use it in a test binary of its own.
pub fn limit_open_files(soft: u64) -> io::Result<()> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let hard = getrlimit(Resource::Nofile).maximum;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(soft),
            maximum: hard,
        },
    )
    .map_err(io::Error::from)
}

/// Reads the CPU time (user + system) this process has used. The stat file is
/// opened once, so it can be read again when no descriptor is left.
#[derive(Debug)]
pub struct CpuMeter {
    stat: std::fs::File,
}

impl CpuMeter {
    /// Opens `/proc/self/stat`.
    pub fn new() -> io::Result<CpuMeter> {
        Ok(CpuMeter {
            stat: std::fs::File::open("/proc/self/stat")?,
        })
    }

    /// CPU seconds used so far.
    pub fn seconds(&mut self) -> io::Result<f64> {
        use std::io::{Read, Seek, SeekFrom};
        let mut stat = String::new();
        self.stat.seek(SeekFrom::Start(0))?;
        self.stat.read_to_string(&mut stat)?;
        // The fields after the command name (which may hold spaces): utime is the
        // 12th and stime the 13th, in clock ticks (100 per second on Linux).
        let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| -> io::Result<f64> {
            f.get(i)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| io::Error::other("unexpected /proc/self/stat"))
        };
        Ok((field(11)? + field(12)?) / 100.0)
    }
}
