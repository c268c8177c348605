//! The child processes: one module per implementation, each with a server and a
//! client role, plus the CPU hog.

mod hb_mio;
mod hb_tokio;
mod hb_tokio_stream;
pub mod python;
mod tloop;

use core::time::Duration;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

use crate::args::{Impl, RoleArgs, Which};
use crate::child;

/// Runs the child described by `args`; returns when the parent says `quit`.
pub fn run(args: RoleArgs) -> Result<(), Box<dyn std::error::Error>> {
    child::bound_lifetime(args.lifetime);
    match (args.which, args.imp) {
        (Which::Hog, _) => hog(),
        (_, Impl::Python) => Err("the python roles run under python3, not this binary".into()),
        (_, Impl::Mio) => hb_mio::run(&args),
        (_, Impl::Tokio) => hb_tokio::run(&args),
        (_, Impl::TokioStream) => hb_tokio_stream::run(&args),
        (_, Impl::Loop4k | Impl::Loop) => tloop::run(&args),
    }
}

/// The heartbeat-tokio options both of its roles use: the run's interval and
/// timeout in the process's role, with `observe` counting events.
fn tokio_options(
    args: &RoleArgs,
    observe: impl Fn(&heartbeat_tokio::Event) + Send + Sync + 'static,
) -> Result<heartbeat_tokio::Options, heartbeat_core::ConfigError> {
    let role = match args.which {
        Which::Server => heartbeat_core::Role::Server,
        _ => heartbeat_core::Role::Client,
    };
    let config = heartbeat_core::Config::builder()
        .role(role)
        .ping_interval(args.interval)
        .pong_timeout(args.timeout)
        .build()?;
    Ok(heartbeat_tokio::Options::new(config).observe(observe))
}

/// Starts the client role's connections on `rt`, spread over the ramp: `client(url)`
/// is each connection's whole life; it starts at its offset.
fn spawn_clients<F, Fut>(rt: &tokio::runtime::Runtime, args: &RoleArgs, mut client: F)
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    for i in 0..args.conns {
        let url = format!("ws://{}/", child::target(i, args.addrs, args.port));
        let at = child::start_offset(i, args.conns, args.ramp);
        let run = client(url);
        rt.spawn(async move {
            tokio::time::sleep(at).await;
            run.await;
        });
    }
}

/// Accepts connections on `listener` for ever, one task per connection running
/// `conn(tcp)`; an accept error (out of descriptors) backs off 10 ms, never spins.
async fn accept_loop<F, Fut>(listener: TcpListener, name: &'static str, conn: F)
where
    F: Fn(tokio::net::TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => {
                tokio::spawn(conn(tcp));
            }
            Err(e) => {
                eprintln!("{name} server: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// The tokio runtime of the tokio-based children: the multi-thread default (one
/// worker per core), as `#[tokio::main]` gives.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// Binds one listener per server address, all on one port (chosen by the kernel
/// for 127.0.0.1). Must run inside the runtime.
async fn bind_all(k: u8) -> std::io::Result<(u16, Vec<TcpListener>)> {
    let mut last_err = None;
    'attempt: for _ in 0..20 {
        let mut port = 0;
        let mut listeners = Vec::new();
        for ip in child::addrs(k) {
            match listen(SocketAddr::from((ip, port))) {
                Ok(l) => {
                    port = l.local_addr()?.port();
                    listeners.push(l);
                }
                Err(e) => {
                    // The port was free on 127.0.0.1 but not here: try another.
                    last_err = Some(e);
                    continue 'attempt;
                }
            }
        }
        return Ok((port, listeners));
    }
    Err(last_err.unwrap_or_else(|| std::io::Error::other("no common port")))
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let s = TcpSocket::new_v4()?;
    s.set_reuseaddr(true)?;
    s.bind(addr)?;
    s.listen(child::BACKLOG)
}

/// Spins one core until the parent kills it (or its lifetime ends).
fn hog() -> Result<(), Box<dyn std::error::Error>> {
    let mut x = 0u64;
    loop {
        for _ in 0..1_000_000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        std::hint::black_box(Duration::from_nanos(x));
    }
}
