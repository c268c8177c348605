//! `serve --metrics ADDR`: the Prometheus text format on `GET /metrics`, encoded by
//! `prometheus-client`; this file only speaks enough HTTP/1.1 to hand it over.

use std::net::SocketAddr;

use heartbeat_tokio::metrics::Metrics;
use heartbeat_tokio::Options;
use prometheus_client::encoding::prometheus_text::{encode, CONTENT_TYPE};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Binds `addr` and serves `metrics` there until the process ends; the local lag
/// of `options`' connections is read at each scrape. Returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    metrics: Metrics,
    options: Options,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let registry = std::sync::Arc::new(registry);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            metrics.set_local_lag(options.local_lag());
            let registry = registry.clone();
            tokio::spawn(async move {
                // A scraper that goes away mid-request is not our problem.
                let _ = answer(stream, &registry).await;
            });
        }
    });
    Ok(bound)
}

/// Reads one request head and answers it: the metrics for `GET /metrics`, 404
/// otherwise; then closes.
async fn answer(mut stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let request_line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = request_line.split(|&b| b == b' ');
    let (method, path) = (parts.next(), parts.next());
    let (status, content_type, body) = match (method, path) {
        (Some(b"GET"), Some(b"/metrics")) => {
            let mut text = String::new();
            match encode(&mut text, registry) {
                Ok(()) => ("200 OK", CONTENT_TYPE, text),
                Err(_) => ("500 Internal Server Error", "text/plain", String::new()),
            }
        }
        _ => ("404 Not Found", "text/plain", "try /metrics\n".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// The longest request head read.
const MAX_HEAD: usize = 8192;
