//! What a reconnecting client sends on every attempt: the URL (checked once, at the
//! call), extra headers, subprotocols and TLS settings, and the one way each attempt
//! is opened (TCP with `TCP_NODELAY`, TLS for `wss://`, the upgrade with the
//! connection's buffer settings).

use std::sync::Arc;

use heartbeat_transport::tungstenite::Target;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
#[cfg(feature = "_rustls")]
use tokio_tungstenite::Connector;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::Error;

/// A checked WebSocket request for [`connect`](crate::connect): built once, sent
/// anew on every reconnect.
///
/// ```
/// # fn f() -> Result<(), heartbeat_tokio::Error> {
/// use heartbeat_tokio::ConnectRequest;
/// let request = ConnectRequest::new("ws://127.0.0.1:9000/feed")?
///     .header("Authorization", "Bearer s3cr3t")?
///     .subprotocol("v2.feed")?;
/// # Ok(()) }
/// ```
///
/// A bad URL (wrong scheme, no host, a port outside 1-65535), a header that HTTP
/// cannot carry, or `wss://` in a build without TLS is an error here, never a
/// failure retried forever.
#[derive(Clone, Debug)]
pub struct ConnectRequest {
    target: Target,
    headers: Vec<(HeaderName, HeaderValue)>,
    subprotocols: Vec<String>,
    #[cfg(feature = "_rustls")]
    tls: Option<crate::tls::TlsConfig>,
}

impl ConnectRequest {
    /// Checks `url` (`ws://` or `wss://`).
    pub fn new(url: &str) -> Result<ConnectRequest, Error> {
        let target = Target::parse(url)?;
        // Whatever tungstenite itself would refuse is refused now too.
        target.request()?;
        if target.tls && !cfg!(feature = "_rustls") {
            return Err(Error::TlsUnavailable);
        }
        Ok(ConnectRequest {
            #[cfg(feature = "_rustls")]
            tls: target.tls.then(crate::tls::TlsConfig::new),
            target,
            headers: Vec::new(),
            subprotocols: Vec::new(),
        })
    }

    /// Adds a header to every handshake (`Authorization`, a cookie, an API key).
    /// Fails with [`Error::Request`] naming the header if HTTP cannot carry it.
    pub fn header(mut self, name: &str, value: &str) -> Result<ConnectRequest, Error> {
        let bad = |why: String| Error::Request(format!("header {name:?}: {why}"));
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(e.to_string()))?;
        let value = HeaderValue::from_str(value).map_err(|e| bad(e.to_string()))?;
        self.headers.push((header, value));
        Ok(self)
    }

    /// Offers `protocol` in `Sec-WebSocket-Protocol` (in the order added). A
    /// server that picks none of them fails the handshake, permanently.
    pub fn subprotocol(mut self, protocol: &str) -> Result<ConnectRequest, Error> {
        let token = !protocol.is_empty()
            && protocol
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
        if !token {
            return Err(Error::Request(format!(
                "subprotocol {protocol:?} is not an HTTP token"
            )));
        }
        self.subprotocols.push(protocol.to_owned());
        Ok(self)
    }

    /// The TLS settings for `wss://` (default: [`TlsConfig::new`](crate::tls::TlsConfig::new),
    /// the roots this build was compiled to trust).
    #[cfg(feature = "_rustls")]
    pub fn tls(mut self, tls: crate::tls::TlsConfig) -> ConnectRequest {
        self.tls = Some(tls);
        self
    }

    /// The URL as given.
    pub fn url(&self) -> &str {
        &self.target.url
    }

    /// The checked URL: host, port, scheme.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The handshake request of one attempt.
    pub(crate) fn build(&self) -> Result<Request, tokio_tungstenite::tungstenite::Error> {
        let mut request = self.target.url.as_ref().into_client_request()?;
        let headers = request.headers_mut();
        for (name, value) in &self.headers {
            headers.append(name, value.clone());
        }
        if !self.subprotocols.is_empty() {
            let offered = self.subprotocols.join(", ");
            // Checked as tokens in `subprotocol`, so always a valid value.
            if let Ok(v) = HeaderValue::from_str(&offered) {
                headers.insert("sec-websocket-protocol", v);
            }
        }
        Ok(request)
    }

    /// One attempt: TCP (with `TCP_NODELAY`), TLS for `wss://`, then the upgrade
    /// with `config`.
    pub(crate) async fn open(
        &self,
        config: WebSocketConfig,
    ) -> Result<WebSocketStream<MaybeTlsStream<TcpStream>>, Error> {
        let stream = TcpStream::connect((self.target.host.as_str(), self.target.port))
            .await
            .map_err(|e| Error::Connect(Arc::new(e.into())))?;
        self.open_over(stream, config).await
    }

    /// The rest of an attempt on a TCP socket already connected (directly, or to
    /// a proxy): `TCP_NODELAY`, TLS for `wss://`, the upgrade with `config`.
    pub(crate) async fn open_over(
        &self,
        stream: TcpStream,
        config: WebSocketConfig,
    ) -> Result<WebSocketStream<MaybeTlsStream<TcpStream>>, Error> {
        let connect_err = |e: tokio_tungstenite::tungstenite::Error| Error::Connect(Arc::new(e));
        let request = self.build().map_err(connect_err)?;
        // A pong must not wait for a delayed ACK.
        crate::net::set_nodelay(&stream).map_err(|e| connect_err(e.into()))?;
        #[cfg(feature = "_rustls")]
        let handshake = tokio_tungstenite::client_async_tls_with_config(
            request,
            stream,
            Some(config),
            Some(self.connector()),
        );
        #[cfg(not(feature = "_rustls"))]
        let handshake = tokio_tungstenite::client_async_with_config(
            request,
            MaybeTlsStream::Plain(stream),
            Some(config),
        );
        let (ws, _response) = handshake.await.map_err(connect_err)?;
        Ok(ws)
    }

    #[cfg(feature = "_rustls")]
    fn connector(&self) -> Connector {
        match &self.tls {
            Some(tls) if self.target.tls => Connector::Rustls(tls.clone().into_rustls()),
            _ => Connector::Plain,
        }
    }
}

/// What [`connect`](crate::connect) accepts: a URL (`&str`, `String`), checked at
/// the call, or a [`ConnectRequest`].
pub trait IntoConnectRequest {
    /// The checked request, or why it cannot work.
    fn into_connect_request(self) -> Result<ConnectRequest, Error>;
}

impl IntoConnectRequest for ConnectRequest {
    fn into_connect_request(self) -> Result<ConnectRequest, Error> {
        Ok(self)
    }
}

impl IntoConnectRequest for &str {
    fn into_connect_request(self) -> Result<ConnectRequest, Error> {
        ConnectRequest::new(self)
    }
}

impl IntoConnectRequest for String {
    fn into_connect_request(self) -> Result<ConnectRequest, Error> {
        ConnectRequest::new(&self)
    }
}

impl IntoConnectRequest for &String {
    fn into_connect_request(self) -> Result<ConnectRequest, Error> {
        ConnectRequest::new(self)
    }
}
