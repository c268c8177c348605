//! [`WsMessage`] for the message types of other WebSocket stacks, each behind its
//! feature, so their sockets get the same keepalive through
//! [`Compat`](crate::Compat) and [`KeepAlive::from_socket`](crate::KeepAlive::from_socket).

#[allow(unused_imports)] // every impl is behind a feature
use crate::socket::{Parts, WsMessage};
#[allow(unused_imports)]
use tokio_tungstenite::tungstenite::Message;

/// axum's `extract::ws::Message` (feature `axum`).
#[cfg(feature = "axum")]
impl WsMessage for axum::extract::ws::Message {
    fn into_message(self) -> Message {
        use axum::extract::ws::Message as A;
        match self {
            A::Text(t) => Parts::Text(t.as_str().to_owned()),
            A::Binary(b) => Parts::Binary(b.to_vec()),
            A::Ping(p) => Parts::Ping(p.to_vec()),
            A::Pong(p) => Parts::Pong(p.to_vec()),
            A::Close(c) => Parts::Close(c.map(|f| (f.code, f.reason.as_str().to_owned()))),
        }
        .into_message()
    }

    fn from_message(msg: Message) -> Option<Self> {
        use axum::extract::ws::{CloseFrame, Message as A};
        Some(match Parts::of(msg)? {
            Parts::Text(t) => A::Text(t.into()),
            Parts::Binary(b) => A::Binary(b.into()),
            Parts::Ping(p) => A::Ping(p.into()),
            Parts::Pong(p) => A::Pong(p.into()),
            Parts::Close(c) => A::Close(c.map(|(code, reason)| CloseFrame {
                code,
                reason: reason.into(),
            })),
        })
    }
}

/// tokio-tungstenite 0.30's (tungstenite 0.30's) `Message` (feature
/// `tokio-tungstenite-030`).
#[cfg(feature = "tokio-tungstenite-030")]
impl WsMessage for tokio_tungstenite_030::tungstenite::Message {
    fn into_message(self) -> Message {
        use tokio_tungstenite_030::tungstenite::Message as T;
        match self {
            T::Text(t) => Parts::Text(t.as_str().to_owned()),
            T::Binary(b) => Parts::Binary(b.to_vec()),
            T::Ping(p) => Parts::Ping(p.to_vec()),
            T::Pong(p) => Parts::Pong(p.to_vec()),
            T::Close(c) => {
                Parts::Close(c.map(|f| (u16::from(f.code), f.reason.as_str().to_owned())))
            }
            // Raw frames are a tungstenite-internal detail; never read from a stream.
            T::Frame(_) => Parts::Binary(Vec::new()),
        }
        .into_message()
    }

    fn from_message(msg: Message) -> Option<Self> {
        use tokio_tungstenite_030::tungstenite::protocol::CloseFrame;
        use tokio_tungstenite_030::tungstenite::Message as T;
        Some(match Parts::of(msg)? {
            Parts::Text(t) => T::text(t),
            Parts::Binary(b) => T::binary(b),
            Parts::Ping(p) => T::Ping(p.into()),
            Parts::Pong(p) => T::Pong(p.into()),
            Parts::Close(c) => T::Close(c.map(|(code, reason)| CloseFrame {
                code: code.into(),
                reason: reason.into(),
            })),
        })
    }
}
