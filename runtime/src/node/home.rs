//! The home: the one task that owns a node's state.
//!
//! It runs the process's directory [`Engine`] at PROCESS scope (so publications and
//! subscriptions within the process match without any daemon), keeps the [`uplink`] to the
//! parent directory, turns routes into sessions through [`Attachments`], and accepts and makes
//! session connections. Handles ([`Node`](super::Node), publications, subscriptions) send it
//! [`Command`]s; connection tasks send it [`Note`]s. It never waits on a socket or on an
//! application: what a session's application hears is decided by its connection's task.

use super::connection::{Conn, ConnCommand, Starter};
use super::opening;
use super::session::{Role, Session};
use super::{Event, NodeConfig, PublishError, PublishStatus, SubscribeError};
use crate::directory::uplink::{self, UplinkEvent, UplinkHandle};
use crate::directory::{Action, Attachments, Engine, Output, Search};
use crate::ids::{ProcessId, PubId, SessionId, SubId};
use crate::scope::Scope;
use crate::secure::Secret;
use crate::wire::directory::{Down, PubInfo, PubState, SubInfo, Up};
use crate::wire::peer::Open;
use crate::wire::{Hello, PeerKind};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

/// The engine link that stands for this process's own API.
const LOCAL: u64 = 0;
/// How long a publisher has to accept a session.
const OPEN_TIMEOUT: Duration = Duration::from_secs(3);
/// How long `publish` waits for the parent directory's answer before answering itself.
const PUBLISH_ANSWER: Duration = Duration::from_secs(2);
/// How often timeouts are checked.
const TICK: Duration = Duration::from_millis(250);
/// How often routes whose sessions failed are tried again (while nothing else is attached).
const RETRY: Duration = Duration::from_secs(1);

type PublishReply = oneshot::Sender<Result<(PubId, PublishStatus), PublishError>>;

/// Requests from the handles.
pub(crate) enum Command {
    Publish {
        name: String,
        scope: Scope,
        events: mpsc::Sender<Event>,
        reply: PublishReply,
    },
    Retract {
        id: PubId,
    },
    Subscribe {
        search: String,
        scope: Scope,
        events: mpsc::Sender<Event>,
        reply: oneshot::Sender<Result<SubId, SubscribeError>>,
    },
    Unsubscribe {
        id: SubId,
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
pub(crate) struct Home {
    /// This process.
    pub(crate) id: ProcessId,
    /// Unbounded so that a connection's task never waits on the node; bounded in practice by
    /// the sessions a connection may carry.
    notes: mpsc::UnboundedSender<Note>,
    pub(crate) shutdown: CancellationToken,
    next_conn: Arc<AtomicU64>,
}

impl Home {
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

struct LocalPub {
    info: PubInfo,
    events: mpsc::Sender<Event>,
    /// Sessions subscribers opened with it: (connection, session).
    sessions: HashSet<(u64, SessionId)>,
    /// The caller of `publish`, until a directory answers.
    reply: Option<(PublishReply, Instant)>,
    /// A change of standing the application's queue had no room for.
    status_due: Option<(Scope, PubState)>,
}

struct LocalSub {
    events: mpsc::Sender<Event>,
}

struct ConnEntry {
    conn: Arc<Conn>,
    outbound: bool,
}

enum Outbound {
    Connecting(Vec<(SessionId, SubId, Scope, PubInfo)>),
    Ready(u64),
}

struct State {
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
    /// When failed routes may next be retried.
    next_retry: Instant,
    home: Home,
    out: Vec<Output>,
    actions: Vec<Action>,
}

/// Starts the home task; returns where handles send commands.
pub(crate) fn spawn(
    id: ProcessId,
    config: NodeConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> (mpsc::Sender<Command>, mpsc::UnboundedSender<Command>) {
    let (cmd_tx, cmd_rx) = mpsc::channel(256);
    let (drop_tx, drop_rx) = mpsc::unbounded_channel();
    let (note_tx, note_rx) = mpsc::unbounded_channel();
    let home = Home {
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
        opening::accept_sessions(listener, hello.clone(), home.clone(), None).instrument(span.clone()),
    );
    let state = State {
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
        next_retry: Instant::now(),
        home,
        out: Vec::new(),
        actions: Vec::new(),
    };
    tokio::spawn(state.run(cmd_rx, drop_rx, note_rx).instrument(span));
    (cmd_tx, drop_tx)
}

impl State {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut drops: mpsc::UnboundedReceiver<Command>,
        mut notes: mpsc::UnboundedReceiver<Note>,
    ) {
        let shutdown = self.home.shutdown.clone();
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
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
                _ = tick.tick() => self.on_tick(),
            }
            self.flush();
        }
        for entry in self.conns.values() {
            entry.conn.outbox.close();
        }
        debug!("node stopped");
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
            opening::accept_sessions(listener, self.hello.clone(), self.home.clone(), secret)
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
            Command::Retract { id } => self.retract(id),
            Command::Subscribe {
                search,
                scope,
                events,
                reply,
            } => {
                if let Err(e) = Search::new(&search) {
                    let _ = reply.send(Err(SubscribeError::InvalidSearch(e)));
                    return;
                }
                let id = SubId::random();
                info!(%search, %scope, id = %id.short(), "subscribed");
                self.subs.insert(id, LocalSub { events });
                let _ = reply.send(Ok(id));
                let info = SubInfo {
                    id,
                    search,
                    scope,
                    process: self.id,
                };
                self.engine.from_child(LOCAL, Up::Subscribe(info), &mut self.out);
            }
            Command::Unsubscribe { id } => {
                if self.subs.remove(&id).is_some() {
                    info!(id = %id.short(), "subscription cleared");
                    self.engine
                        .from_child(LOCAL, Up::Unsubscribe { id }, &mut self.out);
                    self.attach.unsubscribe(id, &mut self.actions);
                }
            }
        }
    }

    fn publish(&mut self, name: String, scope: Scope, events: mpsc::Sender<Event>, reply: PublishReply) {
        let valid = !name.is_empty()
            && name.len() <= 1024
            && !name.chars().any(|c| c.is_control() || c.is_whitespace());
        if !valid {
            let _ = reply.send(Err(PublishError::InvalidName(name)));
            return;
        }
        if self.pubs.values().any(|p| p.info.name == name) {
            let _ = reply.send(Err(PublishError::AlreadyPublished(name)));
            return;
        }
        let addr = if scope >= Scope::Lan {
            match self.lan_listener() {
                Ok(addr) => addr,
                Err(e) => {
                    let _ = reply.send(Err(PublishError::Listen(e.to_string())));
                    return;
                }
            }
        } else {
            self.session_addr
        };
        let id = PubId::random();
        let info = PubInfo {
            id,
            name,
            scope,
            process: self.id,
            addr,
        };
        info!(name = %info.name, %scope, id = %id.short(), "publishing");
        let deadline = Instant::now() + PUBLISH_ANSWER;
        self.pubs.insert(
            id,
            LocalPub {
                info: info.clone(),
                events,
                sessions: HashSet::new(),
                reply: Some((reply, deadline)),
                status_due: None,
            },
        );
        self.engine.from_child(LOCAL, Up::Publish(info), &mut self.out);
    }

    fn retract(&mut self, id: PubId) {
        let Some(p) = self.pubs.remove(&id) else { return };
        info!(name = %p.info.name, id = %id.short(), "publication retracted");
        self.engine.from_child(LOCAL, Up::Retract { id }, &mut self.out);
        for (conn, session) in p.sessions {
            self.pub_sessions.remove(&(conn, session));
            self.close_session(conn, session, "publication retracted");
        }
    }

    /// Ends a session from this side: stop delivering it (announcing `Dropped`), tell the peer.
    fn close_session(&mut self, conn: u64, session: SessionId, reason: &'static str) {
        if let Some(entry) = self.conns.get(&conn) {
            entry.conn.command(ConnCommand::Close {
                session,
                reason: reason.to_string(),
            });
        }
    }

    /// Is the parent expected to answer a publication soon?
    fn parent_answers(&self) -> bool {
        self.uplink.is_some() && (self.parent_epoch.is_some() || !self.parent_unreachable)
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

    fn on_pub_status(&mut self, id: PubId, at: Scope, state: PubState) {
        let parent_answers = self.parent_answers();
        let Some(p) = self.pubs.get_mut(&id) else { return };
        if let PubState::Standby { holder } = &state {
            warn!(name = %p.info.name, %at, holder = %holder.short(), "publication is a standby: another process holds the name");
        }
        let waiting_for_parent = at == Scope::Process && p.info.scope > Scope::Process && parent_answers;
        if waiting_for_parent {
            return;
        }
        if let Some((reply, _)) = p.reply.take() {
            let answer = match state {
                PubState::Refused { reason } => Err(PublishError::Refused { at, reason }),
                state => Ok((id, PublishStatus { at, state })),
            };
            let refused = answer.is_err();
            let _ = reply.send(answer);
            if refused {
                self.retract(id);
            }
        } else if at > Scope::Process {
            // Only the latest standing matters: if the application is behind, keep it until the
            // next tick rather than queueing without bound.
            if let Err(mpsc::error::TrySendError::Full(Event::Status { at, state })) =
                p.events.try_send(Event::Status { at, state })
            {
                p.status_due = Some((at, state));
            } else {
                p.status_due = None;
            }
        }
    }

    fn on_uplink(&mut self, event: UplinkEvent) {
        match event {
            UplinkEvent::Connected { epoch, .. } => {
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
                        frame => self.engine.from_parent(frame, &mut self.out),
                    }
                }
            }
            UplinkEvent::Lost { epoch } => {
                if self.parent_epoch == Some(epoch) {
                    self.parent_epoch = None;
                    self.engine.parent_lost(&mut self.out);
                }
                self.answer_waiting_publishers(false);
            }
            UplinkEvent::Unreachable => {
                self.parent_unreachable = true;
                self.answer_waiting_publishers(false);
            }
        }
    }

    /// Answers `publish` callers still waiting for the parent (all of them, or only those past
    /// their deadline) with the process's own standing.
    fn answer_waiting_publishers(&mut self, only_expired: bool) {
        let now = Instant::now();
        for (id, p) in &mut self.pubs {
            if p.reply
                .as_ref()
                .is_some_and(|(_, deadline)| !only_expired || *deadline <= now)
            {
                let (reply, _) = p.reply.take().expect("checked");
                let status = PublishStatus {
                    at: Scope::Process,
                    state: PubState::Active,
                };
                let _ = reply.send(Ok((*id, status)));
            }
        }
    }

    fn on_tick(&mut self) {
        self.answer_waiting_publishers(true);
        for p in self.pubs.values_mut() {
            if let Some((at, state)) = p.status_due.take() {
                if let Err(mpsc::error::TrySendError::Full(Event::Status { at, state })) =
                    p.events.try_send(Event::Status { at, state })
                {
                    p.status_due = Some((at, state));
                }
            }
        }
        let now = Instant::now();
        let expired: Vec<SessionId> = self
            .sub_sessions
            .iter()
            .filter(|(_, (_, deadline))| deadline.is_some_and(|d| d <= now))
            .map(|(s, _)| *s)
            .collect();
        for session in expired {
            if let Some((conn, _)) = self.sub_sessions.remove(&session) {
                self.close_session(conn, session, "open timed out");
            }
            self.attach
                .ended(session, "the publisher did not answer", &mut self.actions);
        }
        if self.attach.has_idle() && now >= self.next_retry {
            self.next_retry = now + RETRY;
            self.attach.retry(&mut self.actions);
        }
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
                        self.attach.ended(session, &reason, &mut self.actions);
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
                    self.attach.ended(session, &reason, &mut self.actions);
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
        }
    }

    fn inbound_open(&mut self, conn: u64, open: Open) {
        let Some(entry) = self.conns.get(&conn) else {
            return;
        };
        let session = open.session;
        // A peer on another host may open only publications that reach other hosts.
        let from_afar = !crate::wire::is_local(entry.conn.remote_addr);
        match self
            .pubs
            .get_mut(&open.publication)
            .filter(|p| p.info.name == open.name)
        {
            Some(p) if from_afar && p.info.scope < Scope::Lan => {
                warn!(name = %p.info.name, peer = %entry.conn.remote_name, addr = ?entry.conn.remote_addr, "refused a session from another host to a {} publication", p.info.scope);
                let reason = format!(
                    "{:?} is published at {} scope: not reachable from other hosts",
                    open.name, p.info.scope
                );
                entry.conn.command(ConnCommand::Refuse { session, reason });
            }
            Some(p) => {
                let s = Session::new(session, open.name, open.at, Role::Publisher, entry.conn.clone());
                info!(name = %p.info.name, peer = %entry.conn.remote_name, peer_id = %entry.conn.remote.short(), %session, "session delivered");
                entry.conn.command(ConnCommand::Admit {
                    session: s,
                    events: p.events.clone(),
                });
                p.sessions.insert((conn, session));
                self.pub_sessions.insert((conn, session), open.publication);
            }
            None => {
                let reason = format!("no publication {:?} here (retracted?)", open.name);
                entry.conn.command(ConnCommand::Refuse { session, reason });
            }
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

    fn act(&mut self, action: Action) {
        match action {
            Action::Open {
                session,
                sub,
                at,
                publisher,
            } => {
                if !self.subs.contains_key(&sub) {
                    return;
                }
                match self.outbound.get_mut(&publisher.process) {
                    Some(Outbound::Ready(conn)) => {
                        let conn = *conn;
                        self.open(conn, session, sub, at, publisher);
                    }
                    Some(Outbound::Connecting(waiting)) => waiting.push((session, sub, at, publisher)),
                    None => {
                        self.connect(&publisher);
                        self.outbound.insert(
                            publisher.process,
                            Outbound::Connecting(vec![(session, sub, at, publisher)]),
                        );
                    }
                }
            }
            Action::Close {
                session,
                process,
                reason,
            } => {
                if let Some((conn, _)) = self.sub_sessions.remove(&session) {
                    self.close_session(conn, session, reason);
                } else if let Some(Outbound::Connecting(waiting)) = self.outbound.get_mut(&process) {
                    waiting.retain(|(s, ..)| *s != session);
                }
            }
            Action::Available {
                session,
                at,
                publisher,
                ..
            } => {
                info!(name = %publisher.name, %at, publisher = %publisher.process.short(), %session, "available");
            }
            Action::Dropped {
                session,
                at,
                publisher,
                reason,
                ..
            } => {
                info!(name = %publisher.name, %at, publisher = %publisher.process.short(), %session, %reason, "dropped");
            }
        }
    }

    fn open(&mut self, conn: u64, session: SessionId, sub: SubId, at: Scope, publisher: PubInfo) {
        let (Some(entry), Some(local)) = (self.conns.get(&conn), self.subs.get(&sub)) else {
            self.attach.ended(session, "connection gone", &mut self.actions);
            return;
        };
        let s = Session::new(
            session,
            publisher.name.clone(),
            at,
            Role::Subscriber,
            entry.conn.clone(),
        );
        let open = Open {
            session,
            publication: publisher.id,
            name: publisher.name,
            subscription: sub,
            at,
        };
        entry.conn.command(ConnCommand::Open {
            session: s,
            events: local.events.clone(),
            open,
        });
        self.sub_sessions
            .insert(session, (conn, Some(Instant::now() + OPEN_TIMEOUT)));
    }

    /// Starts connecting to a publisher's process (or, for this process, a connection to itself).
    fn connect(&mut self, publisher: &PubInfo) {
        // (A publication of this very process is reached the same way, over loopback.)
        let task = opening::dial_publisher(
            self.home.clone(),
            publisher.addr,
            publisher.process,
            self.hello.clone(),
            self.secret.clone(),
        );
        tokio::spawn(task.in_current_span());
    }
}
