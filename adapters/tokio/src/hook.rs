//! The server's say on an upgrade request before the client exists for it: check a
//! token, a path, an origin or the peer's address, and refuse with an HTTP status.
//! A refused client never reaches the [`Registry`], never gets a heartbeat, and
//! costs nothing after its response is written.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderMap, HeaderValue, StatusCode};

use crate::error::Error;
use crate::handle::KeepAlive;
use crate::options::Options;
use crate::server::{accept_from, ClientId, Registry};

/// Accepts a WebSocket on `stream` like [`accept`](crate::accept), but first
/// hands the client's upgrade request to `hook`: [`Accept`] upgrades and registers
/// the client; [`Reject`] answers with its HTTP status instead, and the call
/// returns [`Error::Connect`] carrying that response (the client is never
/// registered).
///
/// `peer` is what the hook sees as [`Handshake::peer`] and what the registry
/// records (the TCP peer address, known before any TLS layer).
///
/// ```no_run
/// # async fn f(stream: tokio::net::TcpStream, options: heartbeat_tokio::Options,
/// #            registry: heartbeat_tokio::Registry) -> Result<(), heartbeat_tokio::Error> {
/// use heartbeat_tokio::{accept_with, Accept, Reject};
/// let peer = stream.peer_addr().ok();
/// let (id, conn) = accept_with(stream, peer, &options, &registry, |hs| {
///     match hs.bearer_token() {
///         Some("s3cr3t") => Ok(Accept::new()),
///         _ => Err(Reject::new(401).header("WWW-Authenticate", "Bearer")),
///     }
/// })
/// .await?;
/// # Ok(()) }
/// ```
pub async fn accept_with<S, H>(
    stream: S,
    peer: Option<SocketAddr>,
    options: &Options,
    registry: &Registry,
    hook: H,
) -> Result<(ClientId, KeepAlive), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: FnOnce(&Handshake<'_>) -> Result<Accept, Reject> + Unpin,
{
    // The Err type is tungstenite's `Callback` contract, not ours to box.
    #[allow(clippy::result_large_err)]
    let callback = move |request: &Request, mut response: Response| {
        let handshake = Handshake { request, peer };
        match hook(&handshake) {
            Ok(accept) => {
                if let Some(protocol) = accept.subprotocol {
                    response
                        .headers_mut()
                        .insert("sec-websocket-protocol", protocol);
                }
                Ok(response)
            }
            Err(reject) => Err(reject.into_response()),
        }
    };
    accept_from(stream, peer, options, registry, callback).await
}

/// A client's upgrade request, as the hook of [`accept_with`] sees it.
#[derive(Debug)]
pub struct Handshake<'a> {
    request: &'a Request,
    peer: Option<SocketAddr>,
}

impl Handshake<'_> {
    /// The request path, without the query (`/feed`).
    pub fn path(&self) -> &str {
        self.request.uri().path()
    }

    /// The query string, if any (`token=...` of `/feed?token=...`).
    pub fn query(&self) -> Option<&str> {
        self.request.uri().query()
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        self.request.headers()
    }

    /// One header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request.headers().get(name)?.to_str().ok()
    }

    /// The token of an `Authorization: Bearer <token>` header.
    pub fn bearer_token(&self) -> Option<&str> {
        let value = self.header("authorization")?;
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }

    /// The subprotocols the client offered, in its order.
    pub fn subprotocols(&self) -> impl Iterator<Item = &str> {
        self.request
            .headers()
            .get_all("sec-websocket-protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
    }

    /// The client's address, as given to [`accept_with`].
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }
}

/// The hook's yes: upgrade, optionally with a chosen subprotocol.
#[derive(Clone, Debug, Default)]
pub struct Accept {
    subprotocol: Option<HeaderValue>,
}

impl Accept {
    /// Upgrade with no subprotocol.
    pub fn new() -> Accept {
        Accept::default()
    }

    /// Upgrade speaking `protocol`, which must be one the client offered (see
    /// [`Handshake::subprotocols`]); a client that offered none fails the
    /// handshake itself. A value HTTP cannot carry is left out.
    pub fn subprotocol(mut self, protocol: &str) -> Accept {
        self.subprotocol = HeaderValue::from_str(protocol).ok();
        self
    }
}

/// The hook's no: the HTTP response the client gets instead of the upgrade.
#[derive(Clone, Debug)]
pub struct Reject {
    status: StatusCode,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

impl Reject {
    /// Refuse with `status` (401, 403, 404, 429, 503...). A code outside
    /// 100-999 becomes 400.
    pub fn new(status: u16) -> Reject {
        Reject {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            headers: Vec::new(),
            body: None,
        }
    }

    /// Adds a response header (`WWW-Authenticate`, `Retry-After`); one HTTP
    /// cannot carry is left out.
    pub fn header(mut self, name: &str, value: &str) -> Reject {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets a plain-text body.
    pub fn body(mut self, text: impl Into<String>) -> Reject {
        self.body = Some(text.into());
        self
    }

    /// The status the client will get.
    pub fn status(&self) -> u16 {
        self.status.as_u16()
    }

    fn into_response(self) -> ErrorResponse {
        let mut response = ErrorResponse::new(self.body);
        *response.status_mut() = self.status;
        for (name, value) in &self.headers {
            if let (Ok(n), Ok(v)) = (
                name.parse::<tokio_tungstenite::tungstenite::http::HeaderName>(),
                HeaderValue::from_str(value),
            ) {
                response.headers_mut().append(n, v);
            }
        }
        response
    }
}
