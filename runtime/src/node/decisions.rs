//! The node's decisions, as a pure state machine: events in, effects out.
//!
//! It holds the process's PROCESS-scope [`Engine`] (publications and subscriptions within the
//! process match without any daemon), the [`Attachments`] (the nearest publisher of each name;
//! fallback and upgrade), the sessions on each connection, the admission of sessions
//! subscribers open, and the policies for answering `publish` and retrying failed routes. It
//! touches no socket, channel or clock: a deadline is an [`Effect::Wake`] the node task sets
//! on tokio's clock and reports back with [`NodeCore::due`], and everything else it decides is
//! an [`Effect`] the node task ([`super::task`]) carries out. The model-based proptest
//! (`decisions/model_tests.rs`) drives this very type.

#[cfg(test)]
mod model_tests;
mod publishing;
mod subscribing;

use super::{DropReason, PublishError, PublishStatus};
use crate::directory::{Action, Attachments, Engine, Output};
use crate::ids::{ProcessId, PubId, SessionId, SubId};
use crate::scope::Scope;
use crate::wire::directory::{Down, PubInfo, PubState, Up};
use crate::wire::peer::Open;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

pub(crate) use self::subscribing::Outbound;

/// A session connection, as the node task numbers them.
pub(crate) type ConnId = u64;

/// The engine link that stands for this process's own API.
const LOCAL: u64 = 0;

/// How long `publish` waits for the parent directory's answer before answering itself.
const PUBLISH_ANSWER: Duration = Duration::from_secs(2);

/// How long a publisher has to accept a session.
const OPEN_TIMEOUT: Duration = Duration::from_secs(3);

/// How often routes whose sessions failed are tried again, while any are without a session.
pub(crate) const RETRY: Duration = Duration::from_secs(1);

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// A `publish` caller still waiting for the parent directory is answered by the process.
    PublishAnswer(PubId),
    /// A session the publisher has not accepted by now is given up.
    OpenDeadline(SessionId),
    /// Routes without a session are tried again.
    Retry,
}

/// What the core decided; the node task carries each out, in order.
#[derive(Debug)]
pub(crate) enum Effect {
    /// Send a frame to the parent directory (when connected).
    ToParent(Up),
    /// Answer the caller of `publish`. An error means the publication is already withdrawn.
    Answer {
        id: PubId,
        answer: Result<PublishStatus, PublishError>,
    },
    /// Tell the publication's application of a new standing at a wider directory.
    Standing { id: PubId, at: Scope, state: PubState },
    /// Connect to the process of this publication.
    Dial(PubInfo),
    /// Open a session on connection `conn`: the `Open` frame says which (its session,
    /// subscription, publication, name, and the scope it was matched at).
    Open { conn: ConnId, open: Open },
    /// Accept a session a subscriber opened with publication `publication`.
    Admit {
        conn: ConnId,
        session: SessionId,
        publication: PubId,
        name: String,
        at: Scope,
    },
    /// Refuse a session a subscriber tried to open.
    Refuse {
        conn: ConnId,
        session: SessionId,
        reason: String,
    },
    /// End a session from this side.
    Close {
        conn: ConnId,
        session: SessionId,
        reason: DropReason,
    },
    /// Call [`NodeCore::due`] with `due` once `after` has passed.
    Wake { after: Duration, due: Due },
}

/// One of this process's publications.
struct Publication {
    info: PubInfo,
    /// Sessions subscribers opened with it.
    sessions: HashSet<(ConnId, SessionId)>,
    /// The caller of `publish` still waits for an answer.
    answer_pending: bool,
}

/// What the core knows of a session connection.
struct Connection {
    remote: ProcessId,
    /// The peer is on another host.
    from_afar: bool,
    /// This process made it (to a publisher's process).
    outbound: bool,
}

/// The node's state and decisions. See the module documentation.
pub(crate) struct NodeCore {
    /// A parent directory is configured.
    has_parent: bool,
    parent_up: bool,
    /// The parent has been found unreachable since the last connection (then `publish`
    /// answers at once instead of waiting for it).
    parent_unreachable: bool,
    engine: Engine,
    attach: Attachments,
    pubs: HashMap<PubId, Publication>,
    subs: HashSet<SubId>,
    conns: HashMap<ConnId, Connection>,
    outbound: HashMap<ProcessId, Outbound>,
    /// Subscriber-side sessions: their connection, and whether the publisher has yet to accept.
    sub_sessions: HashMap<SessionId, (ConnId, bool)>,
    /// Publisher-side sessions, to the publication they are with.
    pub_sessions: HashMap<(ConnId, SessionId), PubId>,
    retry_armed: bool,
    out: Vec<Output>,
    actions: Vec<Action>,
    effects: Vec<Effect>,
}

impl NodeCore {
    /// The core of a process; `has_parent` when it joins a directory.
    pub(crate) fn new(has_parent: bool) -> NodeCore {
        NodeCore {
            has_parent,
            parent_up: false,
            parent_unreachable: false,
            engine: Engine::new(Scope::Process),
            attach: Attachments::new(),
            pubs: HashMap::new(),
            subs: HashSet::new(),
            conns: HashMap::new(),
            outbound: HashMap::new(),
            sub_sessions: HashMap::new(),
            pub_sessions: HashMap::new(),
            retry_armed: false,
            out: Vec::new(),
            actions: Vec::new(),
            effects: Vec::new(),
        }
    }

    /// What was decided since the last call, in order.
    pub(crate) fn effects(&mut self) -> std::vec::Drain<'_, Effect> {
        self.effects.drain(..)
    }

    /// The subscriber-side attachments (for the model-based test).
    #[cfg(test)]
    pub(crate) fn attachments(&self) -> &Attachments {
        &self.attach
    }

    /// The PROCESS-scope engine (for the model-based test).
    #[cfg(test)]
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The parent directory answered: everything this process holds is registered again.
    pub(crate) fn parent_connected(&mut self) {
        self.parent_up = true;
        self.parent_unreachable = false;
        self.engine.parent_connected(&mut self.out);
        self.settle();
    }

    /// A frame from the parent directory.
    pub(crate) fn parent_frame(&mut self, frame: Down) {
        if !self.parent_up {
            return;
        }
        match frame {
            // `layer-cake ping`: answered by the process itself.
            Down::Ping { seq } => self.effects.push(Effect::ToParent(Up::Pong { seq })),
            // `layer-cake network -l`: the sessions this process holds.
            Down::AskSessions { query } => self.effects.push(Effect::ToParent(Up::Sessions {
                query,
                sessions: self.attach.describe(),
            })),
            frame => self.engine.on_parent_frame(frame, &mut self.out),
        }
        self.settle();
    }

    /// The link to the parent went (or its queue filled): callers of `publish` still waiting
    /// are answered with the process's own standing.
    pub(crate) fn parent_lost(&mut self) {
        if std::mem::replace(&mut self.parent_up, false) {
            self.engine.parent_lost(&mut self.out);
        }
        self.answer_waiting_publishers();
        self.settle();
    }

    /// The parent cannot be reached: `publish` answers without waiting for it.
    pub(crate) fn parent_unreachable(&mut self) {
        self.parent_unreachable = true;
        self.answer_waiting_publishers();
        self.settle();
    }

    /// A session connection is registered: `outbound` when this process made it.
    pub(crate) fn connection_up(&mut self, conn: ConnId, remote: ProcessId, from_afar: bool, outbound: bool) {
        self.conns.insert(
            conn,
            Connection {
                remote,
                from_afar,
                outbound,
            },
        );
        if outbound {
            if let Some(Outbound::Connecting(waiting)) = self.outbound.insert(remote, Outbound::Ready(conn)) {
                for (session, sub, at, publisher) in waiting {
                    self.open(conn, session, sub, at, publisher);
                }
            }
        }
        self.settle();
    }

    /// A session connection is over.
    pub(crate) fn connection_lost(&mut self, conn: ConnId, reason: &str) {
        let Some(entry) = self.conns.remove(&conn) else {
            return;
        };
        self.sub_sessions.retain(|_, (c, _)| *c != conn);
        let pubs = &mut self.pubs;
        self.pub_sessions.retain(|(c, session), publication| {
            if *c == conn {
                if let Some(p) = pubs.get_mut(publication) {
                    p.sessions.remove(&(conn, *session));
                }
            }
            *c != conn
        });
        if entry.outbound {
            if matches!(self.outbound.get(&entry.remote), Some(Outbound::Ready(c)) if *c == conn) {
                self.outbound.remove(&entry.remote);
            }
            self.attach.process_lost(entry.remote, reason, &mut self.actions);
            self.retry_soon();
        }
        self.settle();
    }

    /// A session ended from the other side (closed, refused) or in its connection.
    pub(crate) fn session_ended(&mut self, conn: ConnId, session: SessionId, reason: &str) {
        if self.sub_sessions.get(&session).is_some_and(|(c, _)| *c == conn) {
            self.sub_sessions.remove(&session);
            self.session_failed(session, reason);
        } else if let Some(publication) = self.pub_sessions.remove(&(conn, session)) {
            if let Some(p) = self.pubs.get_mut(&publication) {
                p.sessions.remove(&(conn, session));
            }
        }
        self.settle();
    }

    /// A deadline set by an [`Effect::Wake`] has come. (A deadline whose cause has passed
    /// meanwhile, a publication answered or a session accepted, does nothing.)
    pub(crate) fn due(&mut self, due: Due) {
        match due {
            Due::PublishAnswer(id) => {
                if self.pubs.get(&id).is_some_and(|p| p.answer_pending) {
                    self.answer_publisher(id);
                }
            }
            Due::OpenDeadline(session) => {
                let expired = self
                    .sub_sessions
                    .get(&session)
                    .is_some_and(|(_, opening)| *opening);
                if expired {
                    if let Some((conn, _)) = self.sub_sessions.remove(&session) {
                        self.effects.push(Effect::Close {
                            conn,
                            session,
                            reason: DropReason::OpenTimedOut,
                        });
                    }
                    self.session_failed(session, "the publisher did not answer");
                }
            }
            Due::Retry => {
                self.retry_armed = false;
                if self.attach.has_idle() {
                    self.attach.retry(&mut self.actions);
                    self.retry_soon();
                }
            }
        }
        self.settle();
    }

    /// A subscriber's session failed or ended: the attachments choose another publisher, and
    /// routes left without one are tried again later.
    fn session_failed(&mut self, session: SessionId, reason: &str) {
        self.attach.ended(session, reason, &mut self.actions);
        self.retry_soon();
    }

    /// Tries failed routes again in [`RETRY`], unless that is already due.
    fn retry_soon(&mut self) {
        if !std::mem::replace(&mut self.retry_armed, true) {
            self.effects.push(Effect::Wake {
                after: RETRY,
                due: Due::Retry,
            });
        }
    }

    /// Carries out what the engine and the attachments said, until neither has more to say.
    fn settle(&mut self) {
        loop {
            let outputs = std::mem::take(&mut self.out);
            let actions = std::mem::take(&mut self.actions);
            if outputs.is_empty() && actions.is_empty() {
                return;
            }
            for output in outputs {
                match output {
                    Output::ToParent(frame) => {
                        if self.parent_up {
                            self.effects.push(Effect::ToParent(frame));
                        }
                    }
                    Output::ToLink(_, frame) => self.on_local(frame),
                }
            }
            for action in actions {
                self.act(action);
            }
        }
    }

    /// A frame the process's own engine sends its one local child: this process's API.
    fn on_local(&mut self, frame: Down) {
        match frame {
            Down::PubStatus { id, at, state } => self.on_pub_status(id, at, state),
            Down::Route(route) => self.attach.route(route, &mut self.actions),
            Down::RouteCleared(key) => self.attach.route_cleared(&key, &mut self.actions),
            Down::SubRefused { id, at, reason } => {
                tracing::warn!(id = %id.short(), %at, %reason, "subscription refused by a directory")
            }
            Down::Heartbeat
            | Down::Report { .. }
            | Down::Ping { .. }
            | Down::Pong { .. }
            | Down::AskSessions { .. }
            | Down::Sessions { .. } => {}
        }
    }
}
