//! What the driver runs over: any `Stream` + `Sink` of WebSocket messages, so the
//! WebSocket a user already has (axum's, another tokio-tungstenite version, another
//! stack) gets the same keepalive as this crate's own connections.
//!
//! The driver speaks this crate's tungstenite [`Message`]; [`Compat`] converts
//! another stack's message type through [`WsMessage`], a four-case mapping.

use core::marker::PhantomData;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_util::{Sink, Stream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Bytes, Message};

/// A WebSocket the driver can own: a `Stream` of received messages and a `Sink`
/// of messages to send, in this crate's tungstenite types. Implemented for every
/// such type, tokio-tungstenite's `WebSocketStream` and [`Compat`] among them.
pub trait WsSocket:
    Stream<Item = Result<Message, tungstenite::Error>>
    + Sink<Message, Error = tungstenite::Error>
    + Unpin
{
}

impl<T> WsSocket for T where
    T: Stream<Item = Result<Message, tungstenite::Error>>
        + Sink<Message, Error = tungstenite::Error>
        + Unpin
{
}

/// A WebSocket message type of another stack, mapped to and from this crate's.
///
/// Only what a heartbeat needs: text, binary, ping, pong and close (code and
/// reason). A message the other stack cannot represent is dropped on the way out
/// (`None`), which only raw frames can be.
pub trait WsMessage: Sized {
    /// This stack's message as the driver sees it.
    fn into_message(self) -> Message;
    /// The driver's message in this stack's type.
    fn from_message(msg: Message) -> Option<Self>;
}

/// Another stack's WebSocket (`Stream<Item = Result<M, E>> + Sink<M>` with `M:
/// WsMessage`) as a [`WsSocket`]; wrap it and hand it to
/// [`KeepAlive::from_socket`](crate::KeepAlive::from_socket).
///
/// Its errors become I/O errors: to the heartbeat, a stack that failed is a
/// transport that ended.
#[derive(Debug)]
pub struct Compat<T, M> {
    inner: T,
    /// The other stack's message type.
    message: PhantomData<fn(M) -> M>,
}

impl<T, M: WsMessage> Compat<T, M> {
    /// Wraps `inner`, whose messages are `M`.
    pub fn new(inner: T) -> Compat<T, M> {
        Compat {
            inner,
            message: PhantomData,
        }
    }

    /// The wrapped WebSocket.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T, M, E> Stream for Compat<T, M>
where
    T: Stream<Item = Result<M, E>> + Unpin,
    M: WsMessage,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Item = Result<Message, tungstenite::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner)
            .poll_next(cx)
            .map(|item| item.map(|r| r.map(M::into_message).map_err(io_error)))
    }
}

impl<T, M> Sink<Message> for Compat<T, M>
where
    T: Sink<M> + Unpin,
    T::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    M: WsMessage,
{
    type Error = tungstenite::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_ready(cx).map_err(io_error)
    }

    fn start_send(mut self: Pin<&mut Self>, msg: Message) -> Result<(), Self::Error> {
        match M::from_message(msg) {
            Some(m) => Pin::new(&mut self.inner).start_send(m).map_err(io_error),
            None => Ok(()),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_flush(cx).map_err(io_error)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_close(cx).map_err(io_error)
    }
}

fn io_error(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> tungstenite::Error {
    tungstenite::Error::Io(std::io::Error::other(e))
}

/// The parts of a message every stack shares, for writing [`WsMessage`] impls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parts {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping with its payload.
    Ping(Vec<u8>),
    /// A pong with its payload.
    Pong(Vec<u8>),
    /// A close, with its code and reason if the frame carried one.
    Close(Option<(u16, String)>),
}

impl Parts {
    /// The driver's message for these parts.
    pub fn into_message(self) -> Message {
        match self {
            Parts::Text(t) => Message::text(t),
            Parts::Binary(b) => Message::Binary(Bytes::from(b)),
            Parts::Ping(p) => Message::Ping(Bytes::from(p)),
            Parts::Pong(p) => Message::Pong(Bytes::from(p)),
            Parts::Close(c) => Message::Close(c.map(|(code, reason)| CloseFrame {
                code: WsCloseCode::from(code),
                reason: reason.into(),
            })),
        }
    }

    /// The parts of the driver's message (`None` for a raw frame).
    pub fn of(msg: Message) -> Option<Parts> {
        Some(match msg {
            Message::Text(t) => Parts::Text(t.as_str().to_owned()),
            Message::Binary(b) => Parts::Binary(b.to_vec()),
            Message::Ping(p) => Parts::Ping(p.to_vec()),
            Message::Pong(p) => Parts::Pong(p.to_vec()),
            Message::Close(c) => {
                Parts::Close(c.map(|f| (u16::from(f.code), f.reason.as_str().to_owned())))
            }
            Message::Frame(_) => return None,
        })
    }
}
