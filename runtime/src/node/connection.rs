//! One connection between two processes, and the one task that owns it.
//!
//! The task holds both halves of the socket, every session on the connection (opening,
//! waiting for admission, open) and its liveness. It alone decides what the application hears
//! of a session (`Available`, `Delivered`, `Dropped`, each message), so those events come in
//! the order the frames did. The node task sends it [`ConnCommand`]s (open, admit, refuse,
//! close) and hears back [`Note`]s; senders hand it encoded frames through the
//! [`Outbox`](super::outbox::Outbox), or write to the socket themselves when it is idle. What
//! the task's handles share is in [`conn`](super::conn).
//!
//! The rule both ends keep (see `docs/protocol.md`): a subscriber may send `Data` right after
//! its `Open`; the publisher holds it until the session is admitted, writes `Opened` before
//! anything else on the session, and answers every request it cannot deliver with `Failed`.
//! A frame that does not decode fails that message (or that session), never its neighbours.

use super::conn::Conn;
use super::conn::ConnCommand;
use super::incoming::Incoming;
use super::outbox::{encode, Outbox};
use super::session::{Reply, Session, SEND_TIMEOUT};
use super::transport::Writer;
use super::{DropReason, Dropped, Event, ToNode};
use crate::ids::SessionId;
use crate::secure::MaybeSecure;
use crate::wire::opening::Opened;
use crate::wire::peer::{decode_frame, encode_control, FailKind, PeerMsg};
use crate::wire::{
    frame::frame_error, needs_heartbeat, JsonCodec, HEARTBEAT_CHECK, HEARTBEAT_DEAD, HEARTBEAT_EVERY,
    MAX_SESSION_FRAME,
};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::AsyncRead;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};
use tracing::{debug, warn, Instrument};

/// How many messages a publisher holds for one session that is not admitted yet (a subscriber
/// may send before it hears `Opened`); more are answered `Failed`.
const HELD_PER_SESSION: usize = 1024;

/// How many sessions one connection may carry; an `Open` beyond is refused.
const SESSIONS_PER_CONNECTION: usize = 65_536;

/// A session as the connection's task holds it.
enum Entry {
    /// (Subscriber) `Open` written, waiting for `Opened`.
    Opening {
        session: Session,
        events: mpsc::Sender<Event>,
    },
    /// (Publisher) `Open` received, waiting for the node to admit it; what came meanwhile.
    Admitting { held: Vec<Bytes> },
    /// Announced to the application.
    Open {
        session: Session,
        events: mpsc::Sender<Event>,
    },
}

/// A connection's task, built but not started: the node registers the connection first, so
/// that nothing the task reports can arrive before the connection is known.
pub(crate) struct Starter(Pin<Box<dyn std::future::Future<Output = ()> + Send>>);

impl Starter {
    pub(crate) fn start(self) {
        tokio::spawn(self.0.in_current_span());
    }
}

/// Creates the connection over `transport` with the process `remote` (its greeting read), and
/// its task; `to_node` hears of sessions opening and ending.
pub(crate) fn new_conn(
    id: u64,
    transport: Opened,
    remote: &crate::wire::Hello,
    remote_addr: SocketAddr,
    to_node: ToNode,
) -> (Arc<Conn>, Starter) {
    let (commands, command_rx) = mpsc::unbounded_channel();
    let closed = to_node.shutdown.child_token();
    let (reader, writer, direct): (Box<dyn AsyncRead + Send + Unpin>, Writer, _) = match transport {
        MaybeSecure::Plain(tcp) => {
            // tokio's own read half: it reads into the buffer's spare room without clearing it
            // first (clearing 8 KiB on every read was most of a round trip's work).
            let (read, write) = tcp.into_split();
            let write = Arc::new(write);
            (Box::new(read), Writer::Plain(write.clone()), Some(write))
        }
        MaybeSecure::Secure(stream) => {
            let (r, w) = tokio::io::split(stream);
            (Box::new(r), Writer::Secure(Box::new(w)), None)
        }
    };
    let conn = Arc::new(Conn::new(
        id,
        remote,
        remote_addr,
        remote.id == to_node.id,
        Outbox::new(direct, closed, needs_heartbeat(remote_addr)),
        commands,
    ));
    let frames = FramedRead::new(
        reader,
        LengthDelimitedCodec::builder()
            .max_frame_length(MAX_SESSION_FRAME)
            .new_codec(),
    );
    let task = Task {
        conn: conn.clone(),
        sessions: HashMap::new(),
        deliveries: VecDeque::new(),
        to_node,
    };
    let starter = Starter(Box::pin(task.run(frames, writer, command_rx)));
    (conn, starter)
}

struct Task {
    conn: Arc<Conn>,
    sessions: HashMap<SessionId, Entry>,
    /// Events the application's queue had no room for, in order. While any wait, no frame is
    /// read: a slow application holds back its own connection, nothing else.
    deliveries: VecDeque<(mpsc::Sender<Event>, Event)>,
    to_node: ToNode,
}

type Frames = FramedRead<Box<dyn AsyncRead + Send + Unpin>, LengthDelimitedCodec>;

impl Task {
    async fn run(
        mut self,
        mut frames: Frames,
        mut writer: Writer,
        mut commands: mpsc::UnboundedReceiver<ConnCommand>,
    ) {
        let conn = self.conn.clone();
        let heartbeat = needs_heartbeat(conn.remote_addr);
        let mut check = tokio::time::interval(HEARTBEAT_CHECK);
        let mut last_rx = Instant::now();
        let mut chunk = BytesMut::new();
        let mut written = 0usize;
        let write_timer = tokio::time::sleep(SEND_TIMEOUT);
        tokio::pin!(write_timer);
        // Made once, not on every turn: each would register a waiter under a lock.
        let closed = conn.outbox.closed_token().cancelled_owned();
        tokio::pin!(closed);
        let wake = conn.outbox.wake.notified();
        tokio::pin!(wake);
        let reason: String = loop {
            let busy = !chunk.is_empty();
            let parked = self.deliveries.front().map(|(tx, _)| tx.clone());
            tokio::select! {
                biased;
                _ = &mut closed => break "connection closed".into(),
                _ = &mut wake, if !busy => {
                    wake.set(conn.outbox.wake.notified());
                    if conn.outbox.take(&mut chunk) {
                        written = 0;
                        write_timer.as_mut().reset(Instant::now() + SEND_TIMEOUT);
                    }
                }
                done = std::future::poll_fn(|cx| writer.poll_write_all(cx, &chunk, &mut written)), if busy => {
                    if let Err(e) = done {
                        debug!(peer = %conn.remote_name, error = %e, "session connection write failed");
                        break format!("write failed: {e}");
                    }
                    chunk.clear();
                    if chunk.capacity() > 1 << 20 {
                        chunk = BytesMut::new();
                    }
                    if conn.outbox.written() && conn.outbox.take(&mut chunk) {
                        written = 0;
                        write_timer.as_mut().reset(Instant::now() + SEND_TIMEOUT);
                    }
                }
                _ = &mut write_timer, if busy => {
                    warn!(peer = %conn.remote_name, "closing session connection: the peer took nothing for {SEND_TIMEOUT:?}");
                    break format!("the peer took nothing for {SEND_TIMEOUT:?}");
                }
                Some(command) = commands.recv() => self.on_command(command),
                permit = reserve(parked), if !self.deliveries.is_empty() => {
                    if let Some(permit) = permit {
                        let (_, event) = self.deliveries.pop_front().expect("a delivery waits");
                        permit.send(event);
                    } else {
                        // The application dropped its handle: nobody hears these events.
                        self.deliveries.pop_front();
                    }
                    self.drain_deliveries();
                }
                frame = frames.next(), if self.deliveries.is_empty() => match frame {
                    None => break "closed by the peer".into(),
                    Some(Err(e)) => {
                        let e = frame_error(e, MAX_SESSION_FRAME);
                        warn!(peer = %conn.remote_name, reason = %e, "closing session connection");
                        break e.to_string();
                    }
                    Some(Ok(frame)) => {
                        if heartbeat {
                            last_rx = Instant::now();
                        }
                        if let Err(reason) = self.on_frame(frame.freeze()) {
                            warn!(peer = %conn.remote_name, %reason, "closing session connection: bad frame");
                            break reason;
                        }
                    }
                },
                _ = check.tick(), if heartbeat => {
                    if last_rx.elapsed() >= HEARTBEAT_DEAD {
                        warn!(peer = %conn.remote_name, "closing session connection: nothing from the peer for {HEARTBEAT_DEAD:?}");
                        break format!("no heartbeat from the peer for {HEARTBEAT_DEAD:?}");
                    }
                    if conn.outbox.idle_for(HEARTBEAT_EVERY) {
                        self.write(&PeerMsg::Heartbeat);
                    }
                }
            }
        };
        self.end(reason, chunk, written, writer).await;
    }

    /// The connection is over: say so to every session and request, write what is left if the
    /// peer takes it promptly, and shut the socket down so the peer's reader sees the end even
    /// while sessions on this side still hold the connection.
    async fn end(mut self, reason: String, mut chunk: BytesMut, mut written: usize, mut writer: Writer) {
        let conn = self.conn.clone();
        conn.outbox.close();
        conn.end_requests(None);
        let flush = async {
            if !chunk.is_empty() {
                std::future::poll_fn(|cx| writer.poll_write_all(cx, &chunk, &mut written)).await?;
                chunk.clear();
                conn.outbox.written();
            }
            while conn.outbox.take(&mut chunk) {
                written = 0;
                std::future::poll_fn(|cx| writer.poll_write_all(cx, &chunk, &mut written)).await?;
                chunk.clear();
                conn.outbox.written();
            }
            std::future::poll_fn(|cx| writer.poll_shutdown(cx)).await
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), flush).await;
        writer.shutdown_now();
        // What the application was owed, in order, then the end of every announced session.
        for (events, event) in std::mem::take(&mut self.deliveries) {
            let _ = events.send(event).await;
        }
        let mut sessions: Vec<(SessionId, Entry)> = self.sessions.drain().collect();
        sessions.sort_unstable_by_key(|(id, _)| *id);
        let why = if self.to_node.shutdown.is_cancelled() {
            DropReason::NodeStopped
        } else {
            DropReason::ConnectionLost(reason.clone())
        };
        for (_, entry) in sessions {
            if let Entry::Open { session, events } = entry {
                let _ = events
                    .send(Event::Dropped(Dropped::new(&session, why.clone())))
                    .await;
            }
        }
        self.to_node.note(super::Note::ConnLost {
            conn: conn.id,
            reason,
        });
    }

    /// Hands `event` to the application, or queues it behind those already waiting.
    fn deliver(&mut self, events: &mpsc::Sender<Event>, event: Event) {
        deliver(&mut self.deliveries, events, event);
    }

    fn drain_deliveries(&mut self) {
        while let Some((events, _)) = self.deliveries.front() {
            match events.clone().try_reserve_owned() {
                Ok(permit) => {
                    let (_, event) = self.deliveries.pop_front().expect("a delivery waits");
                    permit.send(event);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.deliveries.pop_front();
                }
                Err(mpsc::error::TrySendError::Full(_)) => return,
            }
        }
    }

    /// Writes a control frame. Control frames are few and small, so they are not held to the
    /// outbox's bound (the task must never wait on its own outbox).
    fn write(&self, msg: &PeerMsg<'_>) {
        let pushed = encode(
            |buf| encode_control(&JsonCodec, buf, MAX_SESSION_FRAME, msg),
            |bytes| self.conn.outbox.force_push(bytes),
        );
        if let Err(e) = pushed {
            warn!(error = %e, "a control frame did not encode");
        }
    }

    fn on_command(&mut self, command: ConnCommand) {
        match command {
            ConnCommand::Open {
                session,
                events,
                open,
            } => {
                self.write(&PeerMsg::Open(open));
                self.sessions
                    .insert(session.id(), Entry::Opening { session, events });
            }
            ConnCommand::Admit { session, events } => {
                let id = session.id();
                let Some(Entry::Admitting { held }) = self.sessions.remove(&id) else {
                    return; // closed by the subscriber meanwhile
                };
                // `Opened` first: nothing on the session may overtake its acceptance.
                self.write(&PeerMsg::Opened { session: id });
                self.deliver(&events, Event::Delivered(session.clone()));
                for frame in held {
                    if let Ok(PeerMsg::Data(data)) = decode_frame(&frame) {
                        let incoming = Incoming::new(session.clone(), &data, frame.clone());
                        self.deliver(&events, Event::Message(incoming));
                    }
                }
                self.sessions.insert(id, Entry::Open { session, events });
            }
            ConnCommand::Refuse { session, reason } => {
                if matches!(self.sessions.get(&session), Some(Entry::Admitting { .. })) {
                    self.sessions.remove(&session);
                    self.write(&PeerMsg::Refused { session, reason });
                }
            }
            ConnCommand::Close { session, reason } => {
                let Some(entry) = self.sessions.remove(&session) else {
                    return;
                };
                self.write(&PeerMsg::Close {
                    session,
                    reason: reason.to_string(),
                });
                self.conn.end_requests(Some(session));
                if let Entry::Open { session, events } = entry {
                    self.deliver(&events, Event::Dropped(Dropped::new(&session, reason)));
                }
            }
            ConnCommand::Fail {
                session,
                corr,
                kind,
                reason,
            } => self.write(&PeerMsg::Failed {
                session,
                reply: corr,
                kind,
                reason,
            }),
        }
    }

    /// Handles one frame; an error (a frame that names no session) closes the connection.
    fn on_frame(&mut self, frame: Bytes) -> Result<(), String> {
        let msg = match decode_frame(&frame) {
            Ok(msg) => msg,
            Err(bad) => {
                let Some(session) = bad.session else {
                    return Err(bad.reason);
                };
                warn!(peer = %self.conn.remote_name, %session, reason = %bad.reason, "a message failed");
                self.write(&PeerMsg::Failed {
                    session,
                    reply: bad.corr.unwrap_or(0),
                    kind: FailKind::Malformed,
                    reason: bad.reason,
                });
                return Ok(());
            }
        };
        match msg {
            PeerMsg::Data(data) => {
                if data.reply != 0 {
                    let waiter = self.conn.lock_pending().remove(&data.reply);
                    if let Some((_, waiter)) = waiter {
                        let _ = waiter.send(Ok(Reply::new(&data, frame.clone())));
                    }
                    // (No waiter: the requester gave up; its call has ended already.)
                    return Ok(());
                }
                let (session, corr) = (data.session, data.corr);
                match self.sessions.get_mut(&session) {
                    Some(Entry::Open { session, events }) => {
                        let incoming = Incoming::new(session.clone(), &data, frame.clone());
                        deliver(&mut self.deliveries, events, Event::Message(incoming));
                    }
                    Some(Entry::Admitting { held }) if held.len() < HELD_PER_SESSION => {
                        held.push(frame.clone())
                    }
                    Some(Entry::Admitting { .. }) => {
                        self.fail(session, corr, "too many messages before the session was accepted")
                    }
                    Some(Entry::Opening { .. }) => self.fail(session, corr, "the session is not open yet"),
                    None => self.fail(session, corr, "no such session on this connection"),
                }
            }
            PeerMsg::Open(open) => {
                let session = open.session;
                if session == SessionId::PROBE
                    || self.sessions.contains_key(&session)
                    || self.sessions.len() >= SESSIONS_PER_CONNECTION
                {
                    let reason = if session == SessionId::PROBE {
                        "session 0 is reserved (for probes)".to_string()
                    } else if self.sessions.contains_key(&session) {
                        format!("session {session} is already in use on this connection")
                    } else {
                        format!("too many sessions on one connection (at most {SESSIONS_PER_CONNECTION})")
                    };
                    self.write(&PeerMsg::Refused { session, reason });
                    return Ok(());
                }
                self.sessions
                    .insert(session, Entry::Admitting { held: Vec::new() });
                self.to_node.note(super::Note::InboundOpen {
                    conn: self.conn.id,
                    open,
                });
            }
            PeerMsg::Opened { session } => {
                if let Some(Entry::Opening { session: s, events }) = self.sessions.remove(&session) {
                    self.deliver(&events, Event::Available(s.clone()));
                    self.sessions.insert(session, Entry::Open { session: s, events });
                    self.to_node.note(super::Note::Opened {
                        conn: self.conn.id,
                        session,
                    });
                }
            }
            PeerMsg::Refused { session, reason } => {
                if let Some(Entry::Opening { .. }) = self.sessions.get(&session) {
                    self.sessions.remove(&session);
                    self.conn.end_requests(Some(session));
                    self.ended(session, format!("refused: {reason}"));
                }
            }
            PeerMsg::Close { session, reason } => {
                if let Some(entry) = self.sessions.remove(&session) {
                    self.conn.end_requests(Some(session));
                    if let Entry::Open { session, events } = entry {
                        let why = DropReason::ClosedByPeer(reason.clone());
                        self.deliver(&events, Event::Dropped(Dropped::new(&session, why)));
                    }
                    self.ended(session, reason);
                }
            }
            PeerMsg::Failed {
                session,
                reply,
                kind,
                reason,
            } => {
                if reply == 0 {
                    warn!(peer = %self.conn.remote_name, %session, ?kind, %reason, "the peer could not take a message");
                } else if let Some((_, waiter)) = self.conn.lock_pending().remove(&reply) {
                    let _ = waiter.send(Err((kind, reason)));
                }
            }
            PeerMsg::Heartbeat => {}
        }
        Ok(())
    }

    /// A message on `session` cannot be delivered: tell the sender, so nothing is lost unseen.
    fn fail(&self, session: SessionId, corr: u64, reason: &str) {
        debug!(peer = %self.conn.remote_name, %session, corr, reason, "a message failed");
        self.write(&PeerMsg::Failed {
            session,
            reply: corr,
            kind: FailKind::Undeliverable,
            reason: reason.to_string(),
        });
    }

    fn ended(&self, session: SessionId, reason: String) {
        self.to_node.note(super::Note::SessionEnded {
            conn: self.conn.id,
            session,
            reason,
        });
    }
}

/// Waits for room in the queue of the first delivery that waits (`None`: its application is
/// gone).
/// Hands `event` to the application, or queues it behind those already waiting in
/// `deliveries` (a free function, so a caller may borrow `events` from its session table).
fn deliver(
    deliveries: &mut VecDeque<(mpsc::Sender<Event>, Event)>,
    events: &mpsc::Sender<Event>,
    event: Event,
) {
    if deliveries.is_empty() {
        match events.try_send(event) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(event)) => deliveries.push_back((events.clone(), event)),
        }
        return;
    }
    deliveries.push_back((events.clone(), event));
}

async fn reserve(events: Option<mpsc::Sender<Event>>) -> Option<mpsc::OwnedPermit<Event>> {
    events?.reserve_owned().await.ok()
}
