//! How `ping` reaches a real endpoint (TLS trust, headers, subprotocols) and how
//! `serve` speaks `wss://`: the options, and turning them into the library's
//! [`ConnectRequest`] and [`ServerTls`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use heartbeat_tokio::tls::{ServerTls, TlsConfig};
use heartbeat_tokio::{
    accept_tcp, accept_with, connect, Accept, ClientId, ConnectRequest, Connections, Error,
    KeepAlive, Options, Registry,
};

use crate::Exit;
use tokio::net::TcpStream;

/// `heartbeat ping` options for real deployments.
#[derive(Args, Debug, Clone, Default)]
pub struct ConnectOpts {
    /// Send this header with every handshake, e.g. -H 'Authorization: Bearer TOKEN' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "'NAME: VALUE'")]
    pub headers: Vec<String>,
    /// Offer this WebSocket subprotocol (repeatable, in order of preference).
    #[arg(long = "subprotocol", value_name = "NAME")]
    pub subprotocols: Vec<String>,
    /// For wss://: also trust the CA certificate(s) in this PEM file (the system roots stay trusted).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// For wss://: do not verify the server's certificate (encrypted, but not authenticated).
    #[arg(long, conflicts_with = "cacert")]
    pub insecure: bool,
}

impl ConnectOpts {
    /// The checked request for `url`, or a one-line usage error naming the problem.
    pub fn request(&self, url: &str) -> Result<ConnectRequest, String> {
        let mut request = ConnectRequest::new(url).map_err(|e| format!("{e}: {url}"))?;
        for header in &self.headers {
            let (name, value) = header
                .split_once(':')
                .ok_or_else(|| format!("invalid --header {header:?}: use 'Name: value'"))?;
            request = request
                .header(name.trim(), value.trim())
                .map_err(|e| format!("invalid --header: {e}"))?;
        }
        for protocol in &self.subprotocols {
            request = request
                .subprotocol(protocol)
                .map_err(|e| format!("invalid --subprotocol: {e}"))?;
        }
        let tls = if self.insecure {
            eprintln!(
                "heartbeat: warning: --insecure: the server's certificate is not verified; \
                 the connection is encrypted but anyone could be answering"
            );
            Some(TlsConfig::insecure())
        } else if let Some(path) = &self.cacert {
            Some(TlsConfig::with_ca_file(path).map_err(|e| format!("invalid --cacert: {e}"))?)
        } else {
            None
        };
        Ok(match tls {
            Some(tls) => request.tls(tls),
            None => request,
        })
    }

    /// The reconnecting client for `url` with these options, or the one error
    /// line (already printed) and the usage exit code: the URL and the flags are
    /// checked here, once, before any attempt.
    pub fn connect(&self, url: &str, options: Options) -> Result<Connections, Exit> {
        self.request(url)
            .and_then(|request| connect(request, options).map_err(|e| e.to_string()))
            .map_err(|e| {
                eprintln!("heartbeat: {e}");
                Exit::Usage
            })
    }
}

/// `heartbeat serve` options for `wss://`.
#[derive(Args, Debug, Clone, Default)]
pub struct ServeTlsOpts {
    /// Serve wss:// with this PEM certificate chain (leaf first); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl ServeTlsOpts {
    /// The server's TLS, if asked for, or a one-line usage error naming the file.
    pub fn load(&self) -> Result<Option<ServerTls>, String> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => ServerTls::from_pem_files(cert, key)
                .map(Some)
                .map_err(|e| format!("invalid --tls-cert/--tls-key: {e}")),
            _ => Ok(None),
        }
    }
}

/// Accepts one client: the TLS handshake first when serving `wss://` (bounded by
/// the connect timeout, like the upgrade), then the WebSocket upgrade.
pub async fn accept_client(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<&ServerTls>,
    options: &Options,
    registry: &Registry,
) -> Result<(ClientId, KeepAlive), Error> {
    let Some(tls) = tls else {
        return accept_tcp(stream, options, registry).await;
    };
    let limit = options.heartbeat.connect_timeout();
    match tokio::time::timeout(limit, tls.accept(stream)).await {
        Ok(Ok(stream)) => {
            accept_with(stream, Some(peer), options, registry, |_| Ok(Accept::new())).await
        }
        Ok(Err(e)) => Err(Error::Connect(Arc::new(e.into()))),
        Err(_) => Err(Error::ConnectTimeout(limit)),
    }
}
