//! Ending a connection cleanly, as the peer sees it (a Python `websockets` server
//! printing the close code it received): `shutdown().await` writes the close frame
//! and waits for the handshake, so even a runtime that stops right after it (the
//! end of `main`) leaves the peer with 1000; dropping every handle closes with 1000
//! while the runtime still runs.

mod common;

use std::time::Duration;

use common::{off_runtime, options};
use heartbeat_core::{CloseCode, Role};
use heartbeat_test_support::{require_websockets, PyPeer, ServerOptions};
use heartbeat_tokio::{connect, KeepAlive, Options};

fn recording_server() -> PyPeer {
    PyPeer::server(&ServerOptions::default().record()).expect("python server")
}

/// The close code the server saw for its next connection to end.
fn closed_code(py: &mut PyPeer) -> String {
    let line = py.wait_for("CLOSED ", Duration::from_secs(5)).unwrap();
    line["CLOSED ".len()..].trim().to_owned()
}

/// How a test ends its connection.
enum End {
    /// `KeepAlive::shutdown(code)`.
    Shutdown(CloseCode),
    /// `Sender::shutdown(code)` on the split halves.
    SenderShutdown(CloseCode),
}

/// One connection on a fresh single-threaded runtime, ended by `end`; the runtime
/// stops right after, as at the end of `main`.
fn connect_then(url: String, end: End) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let opts: Options = options(Role::Client, 200, 500, 1000);
        let mut conns = connect(url, opts).unwrap();
        let conn: KeepAlive = conns.next().await.unwrap();
        match end {
            End::Shutdown(code) => conn.shutdown(code).await.unwrap(),
            End::SenderShutdown(code) => {
                let (tx, _rx) = conn.split();
                tx.shutdown(code).await.unwrap();
            }
        }
    });
    drop(rt); // the driver task gets no more turns
}

#[test]
fn shutdown_sends_1000_before_the_runtime_stops() {
    if !require_websockets("shutdown_sends_1000_before_the_runtime_stops") {
        return;
    }
    let mut py = recording_server();
    connect_then(py.url().unwrap(), End::Shutdown(CloseCode::NORMAL));
    assert_eq!(closed_code(&mut py), "1000");
}

#[test]
fn shutdown_with_another_code_sends_that_code() {
    if !require_websockets("shutdown_with_another_code_sends_that_code") {
        return;
    }
    let mut py = recording_server();
    connect_then(
        py.url().unwrap(),
        End::SenderShutdown(CloseCode::GOING_AWAY),
    );
    assert_eq!(closed_code(&mut py), "1001");
}

#[tokio::test]
async fn dropping_every_handle_closes_with_1000_while_the_runtime_runs() {
    if !require_websockets("dropping_every_handle_closes_with_1000_while_the_runtime_runs") {
        return;
    }
    let py = off_runtime(recording_server).await;
    let mut conns = connect(py.url().unwrap(), options(Role::Client, 200, 500, 1000)).unwrap();
    let conn = conns.next().await.unwrap();
    drop(conn);
    let code = off_runtime(move || {
        let mut py = py;
        closed_code(&mut py)
    })
    .await;
    assert_eq!(code, "1000");
}
