//! The node task: the one task that owns a node's state.
//!
//! It runs the process's directory [`Engine`] at PROCESS scope (so publications and
//! subscriptions within the process match without any daemon), keeps the [`uplink`] to the
//! parent directory, turns routes into sessions through [`Attachments`], and accepts and makes
//! session connections. Handles ([`Node`](super::Node), publications, subscriptions) send it
//! [`Command`]s; connection tasks send it [`Note`]s. It never waits on a socket or on an
//! application: what a session's application hears is decided by its connection's task.

mod publishing;
mod subscribing;
mod timers;

use self::publishing::{LocalPub, PublishReply};
use self::subscribing::{LocalSub, Outbound};
use self::timers::{Due, Timers};
use super::connection::{Conn, Starter};
use super::opening;
use super::{Event, NodeConfig, ParentState, SubscribeError};
use crate::directory::uplink::{self, UplinkEvent, UplinkHandle};
use crate::directory::{Action, Attachments, Engine, Output};
use crate::ids::{ProcessId, PubId, SessionId, SubId};
use crate::scope::Scope;
use crate::secure::Secret;
use crate::wire::directory::{Down, Up};
use crate::wire::peer::Open;
use crate::wire::{Hello, PeerKind};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

/// The engine link that stands for this process's own API.
const LOCAL: u64 = 0;

/// Requests from the handles.
pub(crate) enum Command {
    Publish {
        name: String,
        scope: Scope,
        events: mpsc::Sender<Event>,
        reply: PublishReply,
    },
    /// Withdraw a publication; `done` (when the caller waits) hears once it is.
    Retract {
        id: PubId,
        done: Option<oneshot::Sender<()>>,
    },
    Subscribe {
        search: String,
        scope: Scope,
        events: mpsc::Sender<Event>,
        reply: oneshot::Sender<Result<SubId, SubscribeError>>,
    },
    /// Clear a subscription; `done` (when the caller waits) hears once it is.
    Unsubscribe {
        id: SubId,
        done: Option<oneshot::Sender<()>>,
    },
}

/// Reports from connection tasks.
pub(crate) enum Note {
    /// A subscriber's process connected to this one: register it, then start its task.
    Inbound(Arc<Conn>, Starter),
    /// This process connected to a publisher's: register it, then start its task.
    Connected(Arc<Conn>, Starter),
    ConnectFailed {
        remote: ProcessId,
        reason: String,
    },
    InboundOpen {
        conn: u64,
        open: Open,
    },
    Opened {
        conn: u64,
        session: SessionId,
    },
    SessionEnded {
        conn: u64,
        session: SessionId,
        reason: String,
    },
    ConnLost {
        conn: u64,
        reason: String,
    },
}

/// What connection tasks hold to report to the node task.
#[derive(Clone)]
pub(crate) struct ToNode {
    /// This process.
    pub(crate) id: ProcessId,
    /// Unbounded so that a connection's task never waits on the node; bounded in practice by
    /// the sessions a connection may carry.
    notes: mpsc::UnboundedSender<Note>,
    pub(crate) shutdown: CancellationToken,
    next_conn: Arc<AtomicU64>,
}

impl ToNode {
    pub(crate) fn note(&self, note: Note) {
        let _ = self.notes.send(note);
    }
    pub(crate) async fn conn_lost(&self, conn: u64, reason: String) {
        self.note(Note::ConnLost { conn, reason });
    }
    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }
}

struct ConnEntry {
    conn: Arc<Conn>,
    outbound: bool,
}

pub(crate) struct NodeTask {
    id: ProcessId,
    hello: Hello,
    /// The LAN's secret: sessions with LAN publications (ours and others') are encrypted.
    secret: Option<Secret>,
    directory: Option<SocketAddr>,
    session_addr: SocketAddr,
    /// The listener for sessions from other hosts (`0.0.0.0:<port>`), bound with the first
    /// publication at LAN scope or wider.
    lan_addr: Option<SocketAddr>,
    engine: Engine,
    attach: Attachments,
    uplink: Option<UplinkHandle>,
    parent_epoch: Option<u64>,
    /// Has the parent been found unreachable since the last connection? (Then `publish`
    /// answers at once instead of waiting for it.)
    parent_unreachable: bool,
    pubs: HashMap<PubId, LocalPub>,
    subs: HashMap<SubId, LocalSub>,
    conns: HashMap<u64, ConnEntry>,
    outbound: HashMap<ProcessId, Outbound>,
    /// Subscriber-side sessions: their connection, and the deadline for the publisher to accept.
    sub_sessions: HashMap<SessionId, (u64, Option<Instant>)>,
    /// Publisher-side sessions, to the publication they are with.
    pub_sessions: HashMap<(u64, SessionId), PubId>,
    /// Deadlines: publish answers, session opens, retries of failed routes.
    timers: Timers,
    /// The parent directory's link, as the handles see it.
    parent: watch::Sender<ParentState>,
    /// Cancelled as the task ends.
    ended: CancellationToken,
    to_node: ToNode,
    out: Vec<Output>,
    actions: Vec<Action>,
}

/// Starts the to_node task; returns where handles send commands.
/// Tells a caller that waits (`retract().await`, `clear().await`) that it is done.
fn tell(done: Option<oneshot::Sender<()>>) {
    if let Some(done) = done {
        let _ = done.send(());
    }
}

/// What the node task is started with.
pub(crate) struct Spawn {
    pub id: ProcessId,
    pub config: NodeConfig,
    /// Where sessions from this host are accepted.
    pub listener: TcpListener,
    /// Cancelled to stop the node.
    pub shutdown: CancellationToken,
    /// Cancelled by the task as it ends.
    pub ended: CancellationToken,
    /// Where the task reports the parent directory's link.
    pub parent: watch::Sender<ParentState>,
}

/// Starts the node task; returns where handles send commands.
pub(crate) fn spawn(spawn: Spawn) -> (mpsc::Sender<Command>, mpsc::UnboundedSender<Command>) {
    let Spawn {
        id,
        config,
        listener,
        shutdown,
        ended,
        parent,
    } = spawn;
    let (cmd_tx, cmd_rx) = mpsc::channel(256);
    let (drop_tx, drop_rx) = mpsc::unbounded_channel();
    let (note_tx, note_rx) = mpsc::unbounded_channel();
    let to_node = ToNode {
        id,
        notes: note_tx,
        shutdown: shutdown.clone(),
        next_conn: Arc::new(AtomicU64::new(0)),
    };
    let hello = Hello::new(PeerKind::Process, id, Scope::Process, config.name.clone());
    let session_addr = listener.local_addr().expect("bound listener has an address");
    let span = tracing::info_span!("node", name = %config.name, id = %id.short());
    // On loopback: sessions at HOST scope and narrower (connections within a host are never
    // encrypted).
    tokio::spawn(
        opening::accept_sessions(listener, hello.clone(), to_node.clone(), None).instrument(span.clone()),
    );
    let state = NodeTask {
        id,
        hello,
        secret: config.secret,
        directory: config.directory,
        session_addr,
        lan_addr: None,
        engine: Engine::new(Scope::Process),
        attach: Attachments::new(),
        uplink: None,
        parent_epoch: None,
        parent_unreachable: false,
        pubs: HashMap::new(),
        subs: HashMap::new(),
        conns: HashMap::new(),
        outbound: HashMap::new(),
        sub_sessions: HashMap::new(),
        pub_sessions: HashMap::new(),
        timers: Timers::default(),
        parent,
        ended,
        to_node,
        out: Vec::new(),
        actions: Vec::new(),
    };
    tokio::spawn(state.run(cmd_rx, drop_rx, note_rx).instrument(span));
    (cmd_tx, drop_tx)
}

impl NodeTask {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut drops: mpsc::UnboundedReceiver<Command>,
        mut notes: mpsc::UnboundedReceiver<Note>,
    ) {
        let shutdown = self.to_node.shutdown.clone();
        let (up_tx, mut up_rx) = mpsc::channel(1024);
        if let Some(addr) = self.directory {
            self.uplink = Some(uplink::spawn(
                addr,
                self.hello.clone(),
                self.secret.clone(),
                up_tx,
                shutdown.clone(),
            ));
        }
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                cmd = commands.recv() => match cmd {
                    Some(cmd) => {
                        // Handles dropped before this command was sent are handled first: a
                        // subscription cleared, then made again, is cleared, then made.
                        while let Ok(dropped) = drops.try_recv() {
                            self.on_command(dropped);
                        }
                        self.on_command(cmd)
                    }
                    None => break,
                },
                Some(cmd) = drops.recv() => self.on_command(cmd),
                Some(note) = notes.recv() => self.on_note(note),
                Some(event) = up_rx.recv() => self.on_uplink(event),
                due = self.timers.next() => self.on_due(due),
            }
            self.flush();
        }
        for entry in self.conns.values() {
            entry.conn.outbox.close();
        }
        debug!("node stopped");
        self.ended.cancel();
    }

    /// The address of the listener for sessions from other hosts, bound on first use on every
    /// interface (`0.0.0.0:<port>`). Directories that pass a publication with this address
    /// up to a LAN directory write in the address of the interface they reach it by; on this
    /// host the address means loopback.
    fn lan_listener(&mut self) -> std::io::Result<SocketAddr> {
        if let Some(addr) = self.lan_addr {
            return Ok(addr);
        }
        let std_listener = std::net::TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, 0))?;
        std_listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(std_listener)?;
        let addr = listener.local_addr()?;
        info!(%addr, "listening for sessions from other hosts");
        let secret = self.secret.clone();
        tokio::spawn(
            opening::accept_sessions(listener, self.hello.clone(), self.to_node.clone(), secret)
                .in_current_span(),
        );
        self.lan_addr = Some(addr);
        Ok(addr)
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Publish {
                name,
                scope,
                events,
                reply,
            } => self.publish(name, scope, events, reply),
            Command::Retract { id, done } => {
                self.retract(id);
                tell(done);
            }
            Command::Subscribe {
                search,
                scope,
                events,
                reply,
            } => self.subscribe(search, scope, events, reply),
            Command::Unsubscribe { id, done } => {
                self.unsubscribe(id);
                tell(done);
            }
        }
    }

    fn on_down(&mut self, frame: Down) {
        match frame {
            Down::PubStatus { id, at, state } => self.on_pub_status(id, at, state),
            Down::Route(route) => self.attach.route(route, &mut self.actions),
            Down::RouteCleared(key) => self.attach.route_cleared(&key, &mut self.actions),
            Down::SubRefused { id, at, reason } => {
                warn!(id = %id.short(), %at, %reason, "subscription refused by a directory")
            }
            Down::Hello(_)
            | Down::Heartbeat
            | Down::Report { .. }
            | Down::Ping { .. }
            | Down::Pong { .. }
            | Down::AskSessions { .. }
            | Down::Sessions { .. } => {}
        }
    }

    fn on_uplink(&mut self, event: UplinkEvent) {
        match event {
            UplinkEvent::Connected { epoch, parent } => {
                self.parent.send_replace(ParentState::Connected {
                    name: parent.name,
                    id: parent.id,
                    scope: parent.scope,
                });
                self.parent_epoch = Some(epoch);
                self.parent_unreachable = false;
                self.engine.parent_connected(&mut self.out);
            }
            UplinkEvent::Frame { epoch, frame } => {
                if self.parent_epoch == Some(epoch) {
                    match frame {
                        // `layer-cake ping`: answered by the process itself.
                        Down::Ping { seq } => self.out.push(Output::ToParent(Up::Pong { seq })),
                        // `layer-cake network -l`: the sessions this process holds.
                        Down::AskSessions { query } => self.out.push(Output::ToParent(Up::Sessions {
                            query,
                            sessions: self.attach.describe(),
                        })),
                        frame => self.engine.on_parent_frame(frame, &mut self.out),
                    }
                }
            }
            UplinkEvent::Lost { epoch } => {
                if self.parent_epoch == Some(epoch) {
                    self.parent.send_replace(ParentState::Connecting);
                    self.parent_epoch = None;
                    self.engine.parent_lost(&mut self.out);
                }
                self.answer_waiting_publishers();
            }
            UplinkEvent::Unreachable => {
                self.parent_unreachable = true;
                self.answer_waiting_publishers();
            }
        }
    }

    fn on_due(&mut self, due: Due) {
        match due {
            Due::PublishAnswer(id) => self.answer_if_still_waiting(id),
            Due::Status(id) => self.offer_status(id),
            Due::OpenDeadline(session) => {
                let expired = self
                    .sub_sessions
                    .get(&session)
                    .is_some_and(|(_, deadline)| deadline.is_some_and(|d| d <= Instant::now()));
                if expired {
                    if let Some((conn, _)) = self.sub_sessions.remove(&session) {
                        self.close_session(conn, session, super::DropReason::OpenTimedOut);
                    }
                    self.session_failed(session, "the publisher did not answer");
                }
            }
            Due::Retry => {
                if self.attach.has_idle() {
                    self.attach.retry(&mut self.actions);
                    self.timers.retry_soon();
                }
            }
        }
    }

    /// A subscriber's session failed or ended: the attachments choose another publisher, and
    /// routes left without one are tried again later.
    fn session_failed(&mut self, session: SessionId, reason: &str) {
        self.attach.ended(session, reason, &mut self.actions);
        self.timers.retry_soon();
    }

    fn on_note(&mut self, note: Note) {
        match note {
            Note::Inbound(conn, starter) => {
                self.conns.insert(
                    conn.id,
                    ConnEntry {
                        conn,
                        outbound: false,
                    },
                );
                starter.start();
            }
            Note::Connected(conn, starter) => {
                let remote = conn.remote;
                let id = conn.id;
                self.conns.insert(id, ConnEntry { conn, outbound: true });
                starter.start();
                if let Some(Outbound::Connecting(waiting)) = self.outbound.insert(remote, Outbound::Ready(id))
                {
                    for (session, sub, at, publisher) in waiting {
                        self.open(id, session, sub, at, publisher);
                    }
                }
            }
            Note::ConnectFailed { remote, reason } => {
                debug!(remote = %remote.short(), %reason, "could not reach a publisher");
                if let Some(Outbound::Connecting(waiting)) = self.outbound.remove(&remote) {
                    for (session, ..) in waiting {
                        self.session_failed(session, &reason);
                    }
                }
            }
            Note::InboundOpen { conn, open } => self.inbound_open(conn, open),
            Note::Opened { conn, session } => {
                if let Some((c, deadline)) = self.sub_sessions.get_mut(&session) {
                    if *c == conn {
                        *deadline = None;
                        self.attach.opened(session, &mut self.actions);
                    }
                }
            }
            Note::SessionEnded {
                conn,
                session,
                reason,
            } => {
                if self.sub_sessions.get(&session).is_some_and(|(c, _)| *c == conn) {
                    self.sub_sessions.remove(&session);
                    self.session_failed(session, &reason);
                } else if let Some(publication) = self.pub_sessions.remove(&(conn, session)) {
                    if let Some(p) = self.pubs.get_mut(&publication) {
                        p.sessions.remove(&(conn, session));
                    }
                }
            }
            Note::ConnLost { conn, reason } => self.conn_lost(conn, reason),
        }
    }

    fn conn_lost(&mut self, conn: u64, reason: String) {
        let Some(entry) = self.conns.remove(&conn) else {
            return;
        };
        debug!(peer = %entry.conn.remote_name, remote = %entry.conn.remote.short(), %reason, "session connection ended");
        self.sub_sessions.retain(|_, (c, _)| *c != conn);
        self.pub_sessions.retain(|(c, session), publication| {
            if *c == conn {
                if let Some(p) = self.pubs.get_mut(publication) {
                    p.sessions.remove(&(conn, *session));
                }
            }
            *c != conn
        });
        if entry.outbound {
            if matches!(self.outbound.get(&entry.conn.remote), Some(Outbound::Ready(c)) if *c == conn) {
                self.outbound.remove(&entry.conn.remote);
            }
            self.attach
                .process_lost(entry.conn.remote, &reason, &mut self.actions);
            self.timers.retry_soon();
        }
    }

    /// Carries out what the engine and the attachments said, until neither has more to say.
    fn flush(&mut self) {
        loop {
            let outputs = std::mem::take(&mut self.out);
            let actions = std::mem::take(&mut self.actions);
            if outputs.is_empty() && actions.is_empty() {
                return;
            }
            for output in outputs {
                match output {
                    Output::ToParent(frame) => {
                        if let (Some(uplink), Some(epoch)) = (&self.uplink, self.parent_epoch) {
                            if !uplink.send(epoch, frame) {
                                self.parent_epoch = None;
                                self.engine.parent_lost(&mut self.out);
                            }
                        }
                    }
                    Output::ToLink(_, frame) => self.on_down(frame),
                }
            }
            for action in actions {
                self.act(action);
            }
        }
    }
}
