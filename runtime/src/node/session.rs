//! Sessions: typed messages between a subscriber and a publisher, over a direct connection.
//!
//! Each connection between two processes ([`PeerConn`]) carries any number of sessions. One
//! task reads it ([`read_loop`]): it hands application messages straight to the publication's
//! or subscription's event queue, completes pending requests, and announces sessions opening
//! and ending, so an application sees `Available`, then messages, then `Dropped`, in order.
//! Senders encode straight into the connection's outbox (no allocation per message) and go on;
//! one writer task per connection writes everything waiting in one go, so messages sent close
//! together (many requests, many replies) share a system call. The outbox is bounded
//! ([`OUTBOX_LIMIT`]); a sender that finds it full waits, up to its deadline.

use super::{Event, Home};
use crate::ids::{ProcessId, SessionId};
use crate::scope::Scope;
use crate::wire::peer::{encode_control, encode_data, DataHeader, PeerMsg};
use crate::wire::{
    frame::frame_error, needs_heartbeat, JsonCodec, WireError, HEARTBEAT_CHECK, HEARTBEAT_DEAD,
    HEARTBEAT_EVERY, MAX_SESSION_FRAME,
};
use bytes::{Bytes, BytesMut};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::ops::Range;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How long a [`Session::send`] may wait for a peer that is not reading.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The type name a message travels under: its Rust type name without module paths
/// (`Xy`, `Vec<Table>`), so processes built from different crates agree.
pub fn type_name_of<T: ?Sized>() -> Cow<'static, str> {
    let full = std::any::type_name::<T>();
    if !full.contains(['<', '(', '[', '&']) {
        return Cow::Borrowed(full.rsplit("::").next().unwrap_or(full));
    }
    // Generic or compound: strip the path of every segment.
    let mut short = String::with_capacity(full.len());
    let mut word = String::new();
    for ch in full.chars() {
        if ch.is_alphanumeric() || ch == '_' || ch == ':' {
            word.push(ch);
        } else {
            short.push_str(word.rsplit("::").next().unwrap_or(&word));
            word.clear();
            short.push(ch);
        }
    }
    short.push_str(word.rsplit("::").next().unwrap_or(&word));
    Cow::Owned(short)
}

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The session or its connection has ended.
    #[error("the session has ended")]
    Closed,
    /// The peer did not take the message within [`SEND_TIMEOUT`].
    #[error("the peer did not take the message within {0:?}")]
    Timeout(Duration),
    /// The message could not be encoded (or is over the frame limit).
    #[error("could not encode the message: {0}")]
    Encode(String),
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
    /// The connection ended before the reply came.
    #[error("the session ended before the reply came")]
    Ended,
    /// A reply came but was not of the type expected.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// A message was not of the type asked for, or its body did not decode as that type.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode {got} as {wanted}: {reason}")]
pub struct DecodeError {
    /// The type asked for.
    pub wanted: String,
    /// The type the message carries.
    pub got: String,
    /// The decoder's explanation.
    pub reason: String,
}

/// How many bytes may wait to be written on one connection; a sender that finds more waits
/// (up to its deadline) for the writer to catch up.
pub const OUTBOX_LIMIT: usize = 4 << 20;

/// Frames encoded by senders and not yet written: the connection's writer task takes them all
/// at once, so frames sent close together leave in one write.
struct Outbox {
    buf: BytesMut,
}

/// One connection between two processes, shared by its sessions.
pub(crate) struct PeerConn {
    /// Unique within this process.
    pub(crate) id: u64,
    /// The process at the other end.
    pub(crate) remote: ProcessId,
    /// The other end's readable name.
    pub(crate) remote_name: String,
    /// The other end's address (`None` for a session within this process).
    pub(crate) remote_addr: Option<SocketAddr>,
    outbox: Mutex<Outbox>,
    /// Wakes the writer task: there is something to write.
    wake_writer: Notify,
    /// Wakes senders waiting for room in the outbox.
    room: Notify,
    /// Requests waiting for replies, by correlation number.
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    next_corr: AtomicU64,
    /// Cancelled when the connection is over.
    pub(crate) closed: CancellationToken,
    ctl: mpsc::UnboundedSender<Ctl>,
}

struct Reply {
    frame: Bytes,
    type_name: Range<usize>,
    body: Range<usize>,
}

/// Instructions from the process's home to a connection's reader.
pub(crate) enum Ctl {
    /// Deliver the session's messages to `events` once it is announced.
    Add {
        session: Session,
        events: mpsc::Sender<Event>,
    },
    /// The publisher's `Opened` is on the wire: announce the session (`Delivered`) to the
    /// publication. Announcing only now means nothing the publisher sends on the session can
    /// overtake its acceptance.
    Announce { session: SessionId },
    /// Stop delivering the session; if it was announced and `dropped` is given, say `Dropped`.
    Remove {
        session: SessionId,
        dropped: Option<String>,
    },
}

impl PeerConn {
    /// Encodes one frame into the connection's outbox for its writer task, waiting at most
    /// `deadline` for room when the outbox is full (`None`: the caller's own deadline covers
    /// it). Frames leave in the order they were put in.
    async fn write_with<F>(&self, deadline: Option<Duration>, encode: F) -> Result<(), SendError>
    where
        F: FnOnce(&mut BytesMut) -> Result<(), WireError>,
    {
        let mut encode = Some(encode);
        let wait = async {
            loop {
                let room = self.room.notified();
                tokio::pin!(room);
                room.as_mut().enable();
                if self.closed.is_cancelled() {
                    return Err(SendError::Closed);
                }
                {
                    let mut out = self.outbox.lock().expect("outbox lock");
                    if out.buf.len() < OUTBOX_LIMIT {
                        let was_empty = out.buf.is_empty();
                        let start = out.buf.len();
                        let encode = encode.take().expect("encoded once");
                        if let Err(e) = encode(&mut out.buf) {
                            out.buf.truncate(start);
                            return Err(SendError::Encode(e.to_string()));
                        }
                        drop(out);
                        if was_empty {
                            self.wake_writer.notify_one();
                        }
                        return Ok(());
                    }
                }
                tokio::select! {
                    _ = room => {}
                    _ = self.closed.cancelled() => return Err(SendError::Closed),
                }
            }
        };
        match deadline {
            Some(d) => tokio::time::timeout(d, wait)
                .await
                .unwrap_or(Err(SendError::Timeout(d))),
            None => wait.await,
        }
    }

    /// Writes a control frame (open, opened, refused, close).
    pub(crate) async fn control(&self, msg: PeerMsg<'_>) -> Result<(), SendError> {
        self.write_with(Some(SEND_TIMEOUT), |buf| {
            encode_control(&JsonCodec, buf, MAX_SESSION_FRAME, &msg)
        })
        .await
    }

    pub(crate) fn ctl(&self, ctl: Ctl) {
        let _ = self.ctl.send(ctl);
    }

    async fn data<T: Serialize + ?Sized>(
        &self,
        deadline: Option<Duration>,
        header: DataHeader<'_>,
        value: &T,
    ) -> Result<(), SendError> {
        self.write_with(deadline, |buf| {
            encode_data(&JsonCodec, buf, MAX_SESSION_FRAME, header, value)
        })
        .await
    }
}

/// Which end of the session this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// This process subscribed; the other end publishes.
    Subscriber,
    /// This process published; the other end subscribed.
    Publisher,
}

struct SessionInner {
    id: SessionId,
    name: String,
    at: Scope,
    role: Role,
    conn: Arc<PeerConn>,
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
            .field("role", &self.0.role)
            .field("peer", &self.0.conn.remote.short())
            .finish()
    }
}

impl Session {
    pub(crate) fn new(id: SessionId, name: String, at: Scope, role: Role, conn: Arc<PeerConn>) -> Session {
        Session(Arc::new(SessionInner {
            id,
            name,
            at,
            role,
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

    /// The scope of the directory that matched the two ends (how near the publisher is).
    pub fn scope(&self) -> Scope {
        self.0.at
    }

    /// Which end this process is.
    pub fn role(&self) -> Role {
        self.0.role
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
        self.0.conn.remote_addr
    }

    /// Has the session's connection ended?
    pub fn is_closed(&self) -> bool {
        self.0.conn.closed.is_cancelled()
    }

    /// Sends `message`, tagged with its type name, to the other end.
    pub async fn send<T: Serialize + ?Sized>(&self, message: &T) -> Result<(), SendError> {
        let type_name = type_name_of::<T>();
        self.0
            .conn
            .data(
                Some(SEND_TIMEOUT),
                DataHeader {
                    session: self.0.id,
                    corr: 0,
                    reply: 0,
                    type_name: &type_name,
                },
                message,
            )
            .await
    }

    /// Sends `request` and waits for the reply, at most `deadline`. Never hangs: the reply, a
    /// timeout, or the end of the session.
    pub async fn request<Q, R>(&self, request: &Q, deadline: Duration) -> Result<R, RequestError>
    where
        Q: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let reply = self.exchange(&type_name_of::<Q>(), request, deadline).await?;
        Ok(decode_body(&reply.frame, reply.type_name, reply.body)?)
    }

    /// [`request`](Self::request) for a message already encoded: `body` (JSON) is sent under
    /// `type_name` as it is, and the reply comes back undecoded. For relays such as an HTTP
    /// front or a [`Spool`](crate::spool::Spool), which pass messages on without looking
    /// inside them.
    pub async fn request_raw(
        &self,
        type_name: &str,
        body: &RawValue,
        deadline: Duration,
    ) -> Result<RawReply, RequestError> {
        let reply = self.exchange(type_name, body, deadline).await?;
        Ok(RawReply {
            frame: reply.frame,
            type_name: reply.type_name,
            body: reply.body,
        })
    }

    async fn exchange<Q: Serialize + ?Sized>(
        &self,
        type_name: &str,
        request: &Q,
        deadline: Duration,
    ) -> Result<Reply, RequestError> {
        let conn = &self.0.conn;
        let corr = conn.next_corr.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = oneshot::channel();
        conn.pending.lock().expect("pending lock").insert(corr, tx);
        let _guard = PendingGuard { conn, corr };
        let exchange = async {
            conn.data(
                None,
                DataHeader {
                    session: self.0.id,
                    corr,
                    reply: 0,
                    type_name,
                },
                request,
            )
            .await?;
            rx.await.map_err(|_| RequestError::Ended)
        };
        match tokio::time::timeout(deadline, exchange).await {
            Ok(reply) => reply,
            Err(_) => Err(RequestError::Timeout(deadline)),
        }
    }
}

/// A reply as it came off the wire: its type name and its JSON body, not decoded (see
/// [`Session::request_raw`]).
#[derive(Clone)]
pub struct RawReply {
    frame: Bytes,
    type_name: Range<usize>,
    body: Range<usize>,
}

impl RawReply {
    /// The type name the reply carries (`Vec<Vec<f64>>`).
    pub fn type_name(&self) -> &str {
        std::str::from_utf8(&self.frame[self.type_name.clone()]).unwrap_or("")
    }

    /// The reply's body: one JSON value, exactly as the peer encoded it.
    pub fn json(&self) -> &[u8] {
        &self.frame[self.body.clone()]
    }

    /// Decodes the body as a `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        decode_body(&self.frame, self.type_name.clone(), self.body.clone())
    }
}

impl fmt::Debug for RawReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawReply")
            .field("type", &self.type_name())
            .field("bytes", &self.body.len())
            .finish()
    }
}

/// Removes a request's pending entry however the request ends (reply, timeout, cancel).
struct PendingGuard<'a> {
    conn: &'a PeerConn,
    corr: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.conn.pending.lock().expect("pending lock").remove(&self.corr);
    }
}

fn decode_body<T: DeserializeOwned>(
    frame: &Bytes,
    type_name: Range<usize>,
    body: Range<usize>,
) -> Result<T, DecodeError> {
    serde_json::from_slice(&frame[body]).map_err(|e| DecodeError {
        wanted: type_name_of::<T>().into_owned(),
        got: String::from_utf8_lossy(&frame[type_name]).into_owned(),
        reason: e.to_string(),
    })
}

/// A message that arrived on a session. Decode it as the type it carries; answer it if it is
/// a request.
pub struct Incoming {
    session: Session,
    corr: u64,
    frame: Bytes,
    type_name: Range<usize>,
    body: Range<usize>,
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("session", &self.session.id())
            .field("type", &self.type_name())
            .field("request", &self.is_request())
            .finish()
    }
}

impl Incoming {
    /// The session it came on.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The type name it carries (`Xy`).
    pub fn type_name(&self) -> &str {
        std::str::from_utf8(&self.frame[self.type_name.clone()]).unwrap_or("")
    }

    /// Does it carry a `T`?
    pub fn is<T: ?Sized>(&self) -> bool {
        self.type_name() == type_name_of::<T>()
    }

    /// Decodes it as a `T`; fails if it carries another type or does not decode.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        if !self.is::<T>() {
            return Err(DecodeError {
                wanted: type_name_of::<T>().into_owned(),
                got: self.type_name().to_string(),
                reason: "different type".into(),
            });
        }
        decode_body(&self.frame, self.type_name.clone(), self.body.clone())
    }

    /// Was it sent with [`Session::request`] (so it expects a [`reply`](Self::reply))?
    pub fn is_request(&self) -> bool {
        self.corr != 0
    }

    /// Answers a request. (For a plain message, sends `reply` as a plain message.)
    pub async fn reply<T: Serialize + ?Sized>(&self, reply: &T) -> Result<(), SendError> {
        let type_name = type_name_of::<T>();
        let s = &self.session.0;
        s.conn
            .data(
                Some(SEND_TIMEOUT),
                DataHeader {
                    session: s.id,
                    corr: 0,
                    reply: self.corr,
                    type_name: &type_name,
                },
                reply,
            )
            .await
    }
}

struct Delivery {
    session: Session,
    events: mpsc::Sender<Event>,
    announced: bool,
}

/// A connection's reader, not yet started: the home registers the connection first, so that
/// nothing the reader reports can arrive before the connection is known.
pub(crate) struct Reader(Pin<Box<dyn Future<Output = ()> + Send>>);

impl Reader {
    /// Starts reading.
    pub(crate) fn start(self) {
        tokio::spawn(self.0.in_current_span());
    }
}

/// Creates a connection over `io` and its reader; `home` hears of opens and endings.
pub(crate) fn new_conn<IO>(
    id: u64,
    io: IO,
    remote: ProcessId,
    remote_name: String,
    remote_addr: Option<SocketAddr>,
    home: Home,
) -> (Arc<PeerConn>, Reader)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read, write) = tokio::io::split(io);
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
    let conn = Arc::new(PeerConn {
        id,
        remote,
        remote_name,
        remote_addr,
        outbox: Mutex::new(Outbox {
            buf: BytesMut::with_capacity(8192),
        }),
        wake_writer: Notify::new(),
        room: Notify::new(),
        pending: Mutex::new(HashMap::new()),
        next_corr: AtomicU64::new(0),
        closed: home.shutdown.child_token(),
        ctl: ctl_tx,
    });
    let frames = FramedRead::new(
        read,
        LengthDelimitedCodec::builder()
            .max_frame_length(MAX_SESSION_FRAME)
            .new_codec(),
    );
    tokio::spawn(write_loop(conn.clone(), write).in_current_span());
    let reader = Reader(Box::pin(read_loop(conn.clone(), frames, ctl_rx, home)));
    (conn, reader)
}

/// The connection's writer: takes everything in the outbox and writes it in one go, until the
/// connection is closed. A peer that takes nothing for [`SEND_TIMEOUT`] (or a failed write)
/// ends the connection. Once closed, what is left is written if the peer takes it promptly,
/// and the write half is shut down, so the peer's reader sees the end.
async fn write_loop<W: AsyncWrite + Unpin>(conn: Arc<PeerConn>, mut io: W) {
    let mut chunk = BytesMut::new();
    let mut open = true;
    let heartbeat = conn.remote_addr.is_some_and(needs_heartbeat);
    let mut check = tokio::time::interval(HEARTBEAT_CHECK);
    let mut last_tx = tokio::time::Instant::now();
    while open {
        tokio::select! {
            biased;
            _ = conn.wake_writer.notified() => {}
            _ = conn.closed.cancelled() => open = false,
            _ = check.tick(), if heartbeat => {
                if last_tx.elapsed() < HEARTBEAT_EVERY {
                    continue;
                }
                let mut out = conn.outbox.lock().expect("outbox lock");
                if out.buf.is_empty() {
                    let _ = encode_control(&JsonCodec, &mut out.buf, MAX_SESSION_FRAME, &PeerMsg::Heartbeat);
                }
            }
        }
        loop {
            {
                let mut out = conn.outbox.lock().expect("outbox lock");
                if out.buf.is_empty() {
                    break;
                }
                // Swap buffers: senders go on filling the other while this one is written.
                std::mem::swap(&mut out.buf, &mut chunk);
            }
            conn.room.notify_waiters();
            last_tx = tokio::time::Instant::now();
            let limit = if open {
                SEND_TIMEOUT
            } else {
                Duration::from_secs(1)
            };
            // (A flush costs nothing on a plain socket; an encrypted one sends on flush.)
            let write = async {
                io.write_all(&chunk).await?;
                io.flush().await
            };
            match tokio::time::timeout(limit, write).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(peer = %conn.remote_name, error = %e, "session connection write failed");
                    conn.closed.cancel();
                    return;
                }
                Err(_) => {
                    tracing::warn!(peer = %conn.remote_name, "closing session connection: the peer took nothing for {limit:?}");
                    conn.closed.cancel();
                    return;
                }
            }
            chunk.clear();
            if chunk.capacity() > 1 << 20 {
                chunk = BytesMut::new();
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), io.shutdown()).await;
}

async fn read_loop<R: AsyncRead + Unpin>(
    conn: Arc<PeerConn>,
    mut frames: FramedRead<R, LengthDelimitedCodec>,
    mut ctl: mpsc::UnboundedReceiver<Ctl>,
    home: Home,
) {
    use futures_util::StreamExt;
    let mut sessions: HashMap<SessionId, Delivery> = HashMap::new();
    // Made once: re-creating it each turn would register a waiter per frame.
    let closed = conn.closed.clone().cancelled_owned();
    tokio::pin!(closed);
    // Between hosts the peer says it is still there; silence means its host is gone.
    let heartbeat = conn.remote_addr.is_some_and(needs_heartbeat);
    let mut check = tokio::time::interval(HEARTBEAT_CHECK);
    let mut last_rx = tokio::time::Instant::now();
    let reason = loop {
        tokio::select! {
            biased;
            _ = &mut closed => break "connection closed".to_string(),
            _ = check.tick(), if heartbeat => {
                if last_rx.elapsed() >= HEARTBEAT_DEAD {
                    tracing::warn!(peer = %conn.remote_name, "closing session connection: nothing from the peer for {HEARTBEAT_DEAD:?}");
                    break format!("no heartbeat from the peer for {HEARTBEAT_DEAD:?}");
                }
            }
            Some(c) = ctl.recv() => match c {
                Ctl::Add { session, events } => {
                    let d = Delivery { session, events, announced: false };
                    sessions.insert(d.session.id(), d);
                }
                Ctl::Announce { session } => {
                    if let Some(d) = sessions.get_mut(&session).filter(|d| !d.announced) {
                        d.announced = true;
                        let _ = d.events.send(Event::Delivered(d.session.clone())).await;
                    }
                }
                Ctl::Remove { session, dropped } => {
                    if let (Some(d), Some(reason)) = (sessions.remove(&session), dropped) {
                        announce_dropped(d, reason).await;
                    }
                }
            },
            frame = frames.next() => match frame {
                None => break "closed by the peer".to_string(),
                Some(Err(e)) => break frame_error(e, MAX_SESSION_FRAME).to_string(),
                Some(Ok(frame)) => {
                    if heartbeat {
                        last_rx = tokio::time::Instant::now();
                    }
                    if let Err(reason) = on_frame(&conn, &mut sessions, frame.freeze(), &home).await {
                        tracing::warn!(peer = %conn.remote_name, %reason, "closing session connection: bad frame");
                        break reason;
                    }
                }
            },
        }
    };
    // The writer task shuts the write half down, so the peer's reader sees the end too, even
    // while sessions keep this side alive.
    conn.closed.cancel();
    conn.pending.lock().expect("pending lock").clear();
    for (_, d) in sessions.drain() {
        announce_dropped(d, reason.clone()).await;
    }
    home.conn_lost(conn.id, reason).await;
}

async fn announce_dropped(d: Delivery, reason: String) {
    if d.announced {
        let _ = d
            .events
            .send(Event::Dropped(super::Dropped::new(&d.session, reason)))
            .await;
    }
}

/// Handles one frame; an error closes the connection.
async fn on_frame(
    conn: &Arc<PeerConn>,
    sessions: &mut HashMap<SessionId, Delivery>,
    frame: Bytes,
    home: &Home,
) -> Result<(), String> {
    let msg: PeerMsg<'_> = serde_json::from_slice(&frame).map_err(|e| format!("malformed frame: {e}"))?;
    match msg {
        PeerMsg::Data(data) => {
            let base = frame.as_ptr() as usize;
            let body_start = data.body.get().as_ptr() as usize - base;
            let body = body_start..body_start + data.body.get().len();
            let type_name = match &data.type_name {
                Cow::Borrowed(s) => {
                    let start = s.as_ptr() as usize - base;
                    start..start + s.len()
                }
                Cow::Owned(_) => return Err("type names may not contain escapes".into()),
            };
            if data.reply != 0 {
                let waiter = conn.pending.lock().expect("pending lock").remove(&data.reply);
                if let Some(waiter) = waiter {
                    let _ = waiter.send(Reply {
                        frame: frame.clone(),
                        type_name,
                        body,
                    });
                }
                return Ok(());
            }
            let Some(d) = sessions.get_mut(&data.session) else {
                tracing::debug!(session = %data.session, "message for an unknown session dropped");
                return Ok(());
            };
            if !d.announced {
                if d.session.role() == Role::Subscriber {
                    // The publisher speaks only after its `Opened`, which announces the session.
                    tracing::debug!(session = %data.session, "message before the session opened dropped");
                    return Ok(());
                }
                // The subscriber speaks only once it has our `Opened`: it is on the wire, so
                // the session can be announced now, ahead of the writer's word.
                d.announced = true;
                let _ = d.events.send(Event::Delivered(d.session.clone())).await;
            }
            let incoming = Incoming {
                session: d.session.clone(),
                corr: data.corr,
                frame: frame.clone(),
                type_name,
                body,
            };
            let _ = d.events.send(Event::Message(incoming)).await;
        }
        PeerMsg::Open(open) => home.inbound_open(conn.id, open).await,
        PeerMsg::Opened { session } => {
            if let Some(d) = sessions.get_mut(&session) {
                d.announced = true;
                let _ = d.events.send(Event::Available(d.session.clone())).await;
            }
            home.opened(conn.id, session).await;
        }
        PeerMsg::Refused { session, reason } => {
            sessions.remove(&session);
            home.session_ended(conn.id, session, format!("refused: {reason}"))
                .await;
        }
        PeerMsg::Close { session, reason } => {
            if let Some(d) = sessions.remove(&session) {
                announce_dropped(d, reason.clone()).await;
            }
            home.session_ended(conn.id, session, reason).await;
        }
        PeerMsg::Hello(_) => return Err("unexpected second greeting".into()),
        PeerMsg::Heartbeat => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Xy;

    #[test]
    fn type_names_drop_module_paths() {
        assert_eq!(type_name_of::<Xy>(), "Xy");
        assert_eq!(type_name_of::<Vec<Xy>>(), "Vec<Xy>");
        assert_eq!(type_name_of::<Vec<Vec<f64>>>(), "Vec<Vec<f64>>");
        assert_eq!(type_name_of::<String>(), "String");
        assert_eq!(type_name_of::<(u8, Xy)>(), "(u8, Xy)");
    }
}
