//! Sessions: typed messages between a subscriber and a publisher, over a direct connection.
//!
//! A [`Session`] is a handle on one session of a [`Conn`]ection: cheap to clone, usable from
//! any task. Sending encodes the message first (outside any lock), then hands the bytes to the
//! connection's outbox, or straight to the socket when nothing waits there. A request registers
//! its reply's waiter before it is written, and always ends: the reply, a `Failed` from the
//! peer, the end of the session, or its deadline.

use super::conn::{Conn, ConnCommand};
use super::outbox::{encode, Flush};
use crate::ids::{ProcessId, SessionId};
use crate::message::{Message, Received};
use crate::scope::Scope;
use crate::wire::peer::{encode_data, Data, DataHeader, FailKind};
use crate::wire::{JsonCodec, WireError, MAX_SESSION_FRAME};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

/// How long a [`Session::send`] may wait for a peer that is not reading.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The session or its connection has ended.
    #[error("the session has ended")]
    Closed,
    /// The peer did not take the message within [`SEND_TIMEOUT`].
    #[error("the peer did not take the message within {0:?}")]
    Timeout(Duration),
    /// The message is larger than a session frame may be.
    #[error("the message is over the {max}-byte frame limit")]
    TooLarge {
        /// The limit ([`MAX_SESSION_FRAME`]).
        max: usize,
    },
    /// The message could not be encoded.
    #[error("could not encode the message: {0}")]
    Encode(String),
}

impl From<WireError> for SendError {
    fn from(e: WireError) -> SendError {
        match e {
            WireError::TooLarge { max } => SendError::TooLarge { max },
            other => SendError::Encode(other.to_string()),
        }
    }
}

/// Why a request got no reply.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The request could not be sent.
    #[error(transparent)]
    Send(#[from] SendError),
    /// No reply came within the deadline.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The session ended before the reply came.
    #[error("the session ended before the reply came")]
    Ended,
    /// The other end answered that no reply will come, and why: it could not decode the
    /// request, dropped it unanswered, or could not send its reply.
    #[error("the request failed at the other end: {reason}")]
    Failed {
        /// What kind of failure ([`FailKind::Unanswered`]: the request was not processed).
        kind: FailKind,
        /// The other end's words.
        reason: String,
    },
    /// A reply came but was not of the type expected.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// A message was not of the type asked for, or its body did not decode as that type.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot decode {got} as {wanted}: {reason}")]
pub struct DecodeError {
    /// The type asked for.
    pub wanted: String,
    /// The type the message carries.
    pub got: String,
    /// The decoder's explanation.
    pub reason: String,
}

/// Which end of the session this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// This process subscribed; the other end publishes.
    Subscriber,
    /// This process published; the other end subscribed.
    Publisher,
}

struct SessionInner {
    id: SessionId,
    name: String,
    at: Scope,
    end: SessionEnd,
    conn: Arc<Conn>,
}

/// The numbers a `Data` frame carries besides its session (0: absent).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Numbers {
    pub(super) corr: u64,
    pub(super) reply: u64,
    pub(super) call: u64,
}

/// A session between a subscriber and a publisher: cheap to clone, usable from any task.
#[derive(Clone)]
pub struct Session(Arc<SessionInner>);

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.0.id)
            .field("name", &self.0.name)
            .field("at", &self.0.at)
            .field("end", &self.0.end)
            .field("peer", &self.0.conn.remote.short())
            .finish()
    }
}

impl Session {
    pub(crate) fn new(id: SessionId, name: String, at: Scope, end: SessionEnd, conn: Arc<Conn>) -> Session {
        Session(Arc::new(SessionInner {
            id,
            name,
            at,
            end,
            conn,
        }))
    }

    /// The session's id (chosen by the subscriber's process).
    pub fn id(&self) -> SessionId {
        self.0.id
    }

    /// The published name the session is with.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The scope of the directory that matched the two ends: how near the publisher is
    /// (GROUP nearest, then HOST, then LAN).
    pub fn matched_at(&self) -> Scope {
        self.0.at
    }

    /// Which end of the session this process is.
    pub fn end(&self) -> SessionEnd {
        self.0.end
    }

    /// The process at the other end.
    pub fn peer(&self) -> ProcessId {
        self.0.conn.remote
    }

    /// The other end's readable name (its executable).
    pub fn peer_name(&self) -> &str {
        &self.0.conn.remote_name
    }

    /// The other end's address, or `None` for a session within this process.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        Some(self.0.conn.remote_addr).filter(|_| !self.0.conn.within_process)
    }

    /// Has the session's connection ended?
    pub fn is_closed(&self) -> bool {
        self.0.conn.outbox.is_closed()
    }

    /// Sends `message`, tagged with its [name](Message::NAME), to the other end.
    pub async fn send<T: Message + ?Sized>(&self, message: &T) -> Result<(), SendError> {
        self.write(T::NAME, message, Numbers::default(), SEND_TIMEOUT, Flush::Now)
            .await
    }

    /// Sends `request` and waits for the reply, at most `deadline`. Never hangs: the reply, a
    /// failure the other end reports, the end of the session, or a timeout.
    pub async fn request<Q, R>(&self, request: &Q, deadline: Duration) -> Result<R, RequestError>
    where
        Q: Message + ?Sized,
        R: Received,
    {
        let reply = self.exchange(Q::NAME, request, deadline, 0, Flush::Now).await?;
        Ok(reply.decode_as::<R>(R::NAME)?)
    }

    /// [`request`](Self::request) for a message already encoded: `body` (JSON) is sent under
    /// `type_name` as it is, and the reply comes back undecoded. For relays such as an HTTP
    /// front or a [`Caller`](crate::caller::Caller), which pass messages on without looking
    /// inside them. A relay has many requests in flight, so this one is written with the
    /// others that its tasks send in the same turn of the runtime (one write to the socket
    /// for them all, and one wake-up of the process that answers), not on its own.
    pub async fn request_raw(
        &self,
        type_name: &str,
        body: &RawValue,
        deadline: Duration,
    ) -> Result<RawReply, RequestError> {
        let reply = self.exchange(type_name, body, deadline, 0, Flush::Soon).await?;
        Ok(RawReply(reply))
    }

    /// One try of a caller's call: `request` under `type_name`, answered undecoded; `call`
    /// (non-zero when the call may try other instances too) is the same on every try, and
    /// the handler sees it ([`Incoming::call_id`]). Queued with the other requests sent in
    /// the same turn (see [`request_raw`](Self::request_raw)).
    pub(crate) async fn request_in_call<Q: Serialize + ?Sized>(
        &self,
        type_name: &str,
        request: &Q,
        deadline: Duration,
        call: u64,
    ) -> Result<RawReply, RequestError> {
        let reply = self
            .exchange(type_name, request, deadline, call, Flush::Soon)
            .await?;
        Ok(RawReply(reply))
    }

    /// Asks the other end's process whether it is running: a `Data` frame on session 0,
    /// which every peer answers with `Failed` at once (it names no session). True when an
    /// answer came within `deadline`.
    pub(crate) async fn probe(&self, deadline: Duration) -> bool {
        let conn = &self.0.conn;
        let (corr, answer) = conn.expect_reply(SessionId::PROBE);
        let _forget = Forget { conn, corr };
        let header = DataHeader {
            session: SessionId::PROBE,
            corr,
            reply: 0,
            call: 0,
            type_name: "probe",
        };
        let pushed = encode(
            |buf| encode_data(&JsonCodec, buf, MAX_SESSION_FRAME, header, &()),
            |bytes| conn.outbox.try_push(bytes, Flush::Now),
        );
        if !matches!(pushed, Ok(Ok(Ok(())))) {
            return false;
        }
        matches!(tokio::time::timeout(deadline, answer).await, Ok(Ok(_)))
    }

    /// Sends `message` one way under `type_name`, queued to go out with the messages sent
    /// right after it (a caller's cast).
    pub(crate) async fn cast_as<T: Serialize + ?Sized>(
        &self,
        type_name: &str,
        message: &T,
    ) -> Result<(), SendError> {
        self.write(type_name, message, Numbers::default(), SEND_TIMEOUT, Flush::Soon)
            .await
    }

    async fn exchange<Q: Serialize + ?Sized>(
        &self,
        type_name: &str,
        request: &Q,
        deadline: Duration,
        call: u64,
        flush: Flush,
    ) -> Result<Reply, RequestError> {
        let conn = &self.0.conn;
        let (corr, reply) = conn.expect_reply(self.0.id);
        let _forget = Forget { conn, corr };
        let exchange = async {
            let numbers = Numbers { corr, reply: 0, call };
            self.write(type_name, request, numbers, deadline, flush).await?;
            match reply.await {
                Ok(Ok(reply)) => Ok(reply),
                Ok(Err((kind, reason))) => Err(RequestError::Failed { kind, reason }),
                Err(_) => Err(RequestError::Ended),
            }
        };
        match tokio::time::timeout(deadline, exchange).await {
            Ok(reply) => reply,
            Err(_) => Err(RequestError::Timeout(deadline)),
        }
    }

    /// Encodes one `Data` frame and hands it to the connection, waiting at most `deadline` for
    /// room.
    pub(super) async fn write<T: Serialize + ?Sized>(
        &self,
        type_name: &str,
        value: &T,
        numbers: Numbers,
        deadline: Duration,
        flush: Flush,
    ) -> Result<(), SendError> {
        let Numbers { corr, reply, call } = numbers;
        let header = DataHeader {
            session: self.0.id,
            corr,
            reply,
            call,
            type_name,
        };
        let outbox = &self.0.conn.outbox;
        // Encoded outside any lock; queued at once when there is room (the usual case), else
        // copied out to wait for room.
        let attempt = encode(
            |buf| encode_data(&JsonCodec, buf, MAX_SESSION_FRAME, header, value),
            |bytes| outbox.try_push(bytes, flush).map_err(|()| bytes.to_vec()),
        )?;
        match attempt {
            Ok(pushed) => pushed,
            Err(waiting) => outbox.push(&waiting, deadline).await,
        }
    }

    pub(super) fn command(&self, command: ConnCommand) {
        self.0.conn.command(command);
    }
}

/// Forgets a request's waiter however the request ends (reply, timeout, cancel).
struct Forget<'a> {
    conn: &'a Conn,
    corr: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.conn.forget(self.corr);
    }
}

/// A message as it came off the wire: the frame, and where its type name and body are in it.
#[derive(Clone)]
pub(crate) struct Reply {
    frame: Bytes,
    type_name: Range<usize>,
    body: Range<usize>,
}

impl Reply {
    /// Locates `data`'s type name and body inside `frame` (which `data` borrows from).
    pub(crate) fn new(data: &Data<'_>, frame: Bytes) -> Reply {
        let base = frame.as_ptr() as usize;
        let within = |s: &str| {
            let start = s.as_ptr() as usize - base;
            start..start + s.len()
        };
        Reply {
            type_name: within(&data.type_name),
            body: within(data.body.get()),
            frame,
        }
    }

    pub(super) fn type_name(&self) -> &str {
        std::str::from_utf8(&self.frame[self.type_name.clone()]).unwrap_or("")
    }

    pub(super) fn json(&self) -> &[u8] {
        &self.frame[self.body.clone()]
    }

    pub(super) fn decode_as<T: DeserializeOwned>(&self, wanted: &str) -> Result<T, DecodeError> {
        let error = |reason: String| DecodeError {
            wanted: wanted.to_string(),
            got: self.type_name().to_string(),
            reason,
        };
        if &self.frame[self.type_name.clone()] != wanted.as_bytes() {
            return Err(error("a different type".into()));
        }
        serde_json::from_slice(self.json()).map_err(|e| error(e.to_string()))
    }
}

/// A reply as it came off the wire: its type name and its JSON body, not decoded (see
/// [`Session::request_raw`]).
#[derive(Clone)]
pub struct RawReply(Reply);

impl RawReply {
    /// The type name the reply carries (`Table`).
    pub fn type_name(&self) -> &str {
        self.0.type_name()
    }

    /// The reply's body: one JSON value, exactly as the peer encoded it.
    pub fn json(&self) -> &[u8] {
        self.0.json()
    }

    /// Decodes the body as a `T` (which must be the type it carries).
    pub fn decode<T: Received>(&self) -> Result<T, DecodeError> {
        self.0.decode_as(T::NAME)
    }
}

impl fmt::Debug for RawReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawReply")
            .field("type", &self.type_name())
            .field("bytes", &self.0.body.len())
            .finish()
    }
}
