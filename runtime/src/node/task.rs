//! The node task: the one task that owns a node's state, and carries out what its core decides.
//!
//! The decisions (matching at PROCESS scope, the nearest publisher, admission, when `publish`
//! is answered, retries) are the pure [`NodeCore`]'s. This task holds everything that is not
//! pure: the handles' channels and the answers they wait for, the session connections, the
//! [`uplink`] to the parent directory, the listeners, and the timers (on tokio's clock).
//! Handles ([`Node`](super::Node), publications, subscriptions) send it [`Command`]s;
//! connection tasks send it [`Note`]s. It never waits on a socket or on an application: what
//! a session's application hears is decided by its connection's task.

mod messages;
mod timers;

pub(crate) use self::messages::{Command, Note, ToNode};
use self::timers::{Fired, Timers};
use super::conn::{Conn, ConnCommand};
use super::connection::Starter;
use super::decisions::{ConnId, Effect, NodeCore};
use super::opening;
use super::session::{Session, SessionEnd};
use super::{Event, NodeConfig, ParentState, PublishError, SubscribeError};
use crate::directory::uplink::{self, UplinkEvent, UplinkHandle};
use crate::ids::{ProcessId, PubId, SubId};
use crate::scope::Scope;
use crate::secure::Secret;
use crate::wire::directory::{PubInfo, PubState, SubInfo};
use crate::wire::{Hello, PeerKind};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, Instrument};

use self::messages::PublishReply;

/// A publication's handle, as the task holds it.
struct PubHandle {
    events: mpsc::Sender<Event>,
    /// The caller of `publish`, until the core answers it.
    reply: Option<PublishReply>,
    /// A change of standing the application's queue had no room for.
    status_due: Option<(Scope, PubState)>,
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
    /// Every decision.
    core: NodeCore,
    uplink: Option<UplinkHandle>,
    parent_epoch: Option<u64>,
    pubs: HashMap<PubId, PubHandle>,
    subs: HashMap<SubId, mpsc::Sender<Event>>,
    conns: HashMap<ConnId, Arc<Conn>>,
    /// The core's deadlines, and held-back standings offered again.
    timers: Timers,
    /// The parent directory's link, as the handles see it.
    parent: watch::Sender<ParentState>,
    /// Cancelled as the task ends.
    ended: CancellationToken,
    to_node: ToNode,
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
    let hello =
        Hello::new(PeerKind::Process, id, Scope::Process, config.name.clone()).with_role(config.role.clone());
    let session_addr = listener.local_addr().expect("bound listener has an address");
    let span = tracing::info_span!("node", name = %config.name, id = %id.short());
    // On loopback: sessions at HOST scope and narrower (connections within a host are never
    // encrypted).
    tokio::spawn(
        opening::accept_sessions(listener, hello.clone(), to_node.clone(), None).instrument(span.clone()),
    );
    let task = NodeTask {
        id,
        hello,
        secret: config.secret,
        directory: config.directory,
        session_addr,
        lan_addr: None,
        core: NodeCore::new(config.directory.is_some()),
        uplink: None,
        parent_epoch: None,
        pubs: HashMap::new(),
        subs: HashMap::new(),
        conns: HashMap::new(),
        timers: Timers::default(),
        parent,
        ended,
        to_node,
    };
    tokio::spawn(task.run(cmd_rx, drop_rx, note_rx).instrument(span));
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
        }
        for conn in self.conns.values() {
            conn.outbox.close();
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
        // A caller that waits (`retract().await`, `clear().await`) hears once the effects are out.
        let done = match cmd {
            Command::Publish {
                name,
                scope,
                events,
                reply,
            } => {
                if let Err(e) = self.core.check_publish(&name) {
                    let _ = reply.send(Err(e));
                    return;
                }
                let addr = if scope >= Scope::Lan {
                    match self.lan_listener() {
                        Ok(addr) => addr,
                        Err(e) => {
                            let _ = reply.send(Err(PublishError::Listen(Arc::new(e))));
                            return;
                        }
                    }
                } else {
                    self.session_addr
                };
                let id = PubId::random();
                let handle = PubHandle {
                    events,
                    reply: Some(reply),
                    status_due: None,
                };
                self.pubs.insert(id, handle);
                let info = PubInfo {
                    id,
                    name,
                    scope,
                    process: self.id,
                    addr,
                };
                self.core.publish(info);
                None
            }
            Command::Retract { id, done } => {
                self.pubs.remove(&id);
                self.core.retract(id);
                done
            }
            Command::Subscribe {
                search,
                scope,
                events,
                reply,
            } => {
                let id = SubId::random();
                // The handle first: the core may open a session at once (a match within the
                // process), and the session needs the subscription's queue.
                self.subs.insert(id, events);
                let info = SubInfo {
                    id,
                    search,
                    scope,
                    process: self.id,
                };
                match self.core.subscribe(info) {
                    Ok(()) => {
                        let _ = reply.send(Ok(id));
                    }
                    Err(e) => {
                        self.subs.remove(&id);
                        let _ = reply.send(Err(SubscribeError::InvalidSearch(e)));
                    }
                }
                None
            }
            Command::Unsubscribe { id, done } => {
                self.subs.remove(&id);
                self.core.unsubscribe(id);
                done
            }
        };
        self.carry_out();
        if let Some(done) = done {
            let _ = done.send(());
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
                self.core.parent_connected();
            }
            UplinkEvent::Frame { epoch, frame } => {
                if self.parent_epoch == Some(epoch) {
                    self.core.parent_frame(frame);
                }
            }
            UplinkEvent::Lost { epoch } => {
                if self.parent_epoch == Some(epoch) {
                    self.parent.send_replace(ParentState::Connecting);
                    self.parent_epoch = None;
                }
                self.core.parent_lost();
            }
            UplinkEvent::Unreachable => self.core.parent_unreachable(),
        }
        self.carry_out();
    }

    fn on_due(&mut self, fired: Fired) {
        match fired {
            Fired::Core(due) => self.core.due(due),
            Fired::Status(id) => self.offer_status(id),
        }
        self.carry_out();
    }

    fn on_note(&mut self, note: Note) {
        match note {
            Note::Inbound(conn, starter) => self.register(conn, starter, false),
            Note::Connected(conn, starter) => self.register(conn, starter, true),
            Note::ConnectFailed { remote, reason } => self.core.connect_failed(remote, &reason),
            Note::InboundOpen { conn, open } => self.core.inbound_open(conn, open),
            Note::Opened { conn, session } => self.core.opened(conn, session),
            Note::SessionEnded {
                conn,
                session,
                reason,
            } => self.core.session_ended(conn, session, &reason),
            Note::ConnLost { conn, reason } => {
                if let Some(c) = self.conns.remove(&conn) {
                    debug!(peer = %c.remote_name, remote = %c.remote.short(), %reason, "session connection ended");
                }
                self.core.connection_lost(conn, &reason);
            }
        }
        self.carry_out();
    }

    /// Registers a greeted connection, then starts its task (so nothing it reports can come
    /// before it is known).
    fn register(&mut self, conn: Arc<Conn>, starter: Starter, outbound: bool) {
        let (id, remote) = (conn.id, conn.remote);
        let from_afar = !crate::wire::is_local(conn.remote_addr);
        self.conns.insert(id, conn);
        starter.start();
        self.core.connection_up(id, remote, from_afar, outbound);
    }

    /// Carries out what the core decided, until it has nothing more to say.
    fn carry_out(&mut self) {
        loop {
            let effects: Vec<Effect> = self.core.effects().collect();
            if effects.is_empty() {
                return;
            }
            for effect in effects {
                self.carry(effect);
            }
        }
    }

    fn carry(&mut self, effect: Effect) {
        match effect {
            Effect::ToParent(frame) => {
                if let (Some(uplink), Some(epoch)) = (&self.uplink, self.parent_epoch) {
                    if !uplink.send(epoch, frame) {
                        // The queue to the parent is full: the link is reset and everything
                        // registered again on the next connection.
                        self.parent_epoch = None;
                        self.parent.send_replace(ParentState::Connecting);
                        self.core.parent_lost();
                    }
                }
            }
            Effect::Answer { id, answer } => {
                let refused = answer.is_err();
                if let Some(reply) = self.pubs.get_mut(&id).and_then(|p| p.reply.take()) {
                    let _ = reply.send(answer.map(|status| (id, status)));
                }
                if refused {
                    self.pubs.remove(&id);
                }
            }
            Effect::Standing { id, at, state } => {
                if let Some(p) = self.pubs.get_mut(&id) {
                    p.status_due = Some((at, state));
                    self.offer_status(id);
                }
            }
            Effect::Dial(publisher) => {
                let task = opening::dial_publisher(
                    self.to_node.clone(),
                    publisher.addr,
                    publisher.process,
                    self.hello.clone(),
                    self.secret.clone(),
                );
                tokio::spawn(task.in_current_span());
            }
            Effect::Open { conn, open } => {
                let (Some(c), Some(events)) = (self.conns.get(&conn), self.subs.get(&open.subscription))
                else {
                    self.core.session_ended(conn, open.session, "connection gone");
                    return;
                };
                let s = Session::new(
                    open.session,
                    open.name.clone(),
                    open.at,
                    SessionEnd::Subscriber,
                    c.clone(),
                );
                c.command(ConnCommand::Open {
                    session: s,
                    events: events.clone(),
                    open,
                });
            }
            Effect::Admit {
                conn,
                session,
                publication,
                name,
                at,
            } => {
                let (Some(c), Some(p)) = (self.conns.get(&conn), self.pubs.get(&publication)) else {
                    return;
                };
                let s = Session::new(session, name, at, SessionEnd::Publisher, c.clone());
                c.command(ConnCommand::Admit {
                    session: s,
                    events: p.events.clone(),
                });
            }
            Effect::Refuse {
                conn,
                session,
                reason,
            } => {
                if let Some(c) = self.conns.get(&conn) {
                    c.command(ConnCommand::Refuse { session, reason });
                }
            }
            Effect::Close {
                conn,
                session,
                reason,
            } => {
                if let Some(c) = self.conns.get(&conn) {
                    c.command(ConnCommand::Close { session, reason });
                }
            }
            Effect::Wake { after, due } => self.timers.at(Instant::now() + after, due),
        }
    }

    /// Gives `id`'s application its newest standing, if one is held back; if its queue is still
    /// full, tries again shortly.
    fn offer_status(&mut self, id: PubId) {
        let Some(p) = self.pubs.get_mut(&id) else { return };
        let Some((at, state)) = p.status_due.take() else {
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(Event::Status { at, state })) =
            p.events.try_send(Event::Status { at, state })
        {
            p.status_due = Some((at, state));
            self.timers.status_soon(id);
        }
    }
}
