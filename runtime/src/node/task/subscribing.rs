//! The subscriber's side of the node task: subscriptions, and the sessions the attachments
//! decide to open (connecting to publishers' processes as needed).

use super::timers::Due;
use super::{NodeTask, LOCAL};
use crate::directory::{Action, Search};
use crate::ids::{SessionId, SubId};
use crate::node::connection::ConnCommand;
use crate::node::opening;
use crate::node::session::{Session, SessionEnd};
use crate::node::{Event, SubscribeError};
use crate::scope::Scope;
use crate::wire::directory::{PubInfo, SubInfo, Up};
use crate::wire::peer::Open;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{info, Instrument};

/// How long a publisher has to accept a session.
const OPEN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// One of this process's subscriptions.
pub(super) struct LocalSub {
    pub(super) events: mpsc::Sender<Event>,
}

/// A connection to a publisher's process: being made (the sessions waiting for it), or made.
pub(super) enum Outbound {
    Connecting(Vec<(SessionId, SubId, Scope, PubInfo)>),
    Ready(u64),
}

impl NodeTask {
    pub(super) fn subscribe(
        &mut self,
        search: String,
        scope: Scope,
        events: mpsc::Sender<Event>,
        reply: oneshot::Sender<Result<SubId, SubscribeError>>,
    ) {
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
        self.engine
            .on_child_frame(LOCAL, Up::Subscribe(info), &mut self.out);
    }

    pub(super) fn unsubscribe(&mut self, id: SubId) {
        if self.subs.remove(&id).is_some() {
            info!(id = %id.short(), "subscription cleared");
            self.engine
                .on_child_frame(LOCAL, Up::Unsubscribe { id }, &mut self.out);
            self.attach.unsubscribe(id, &mut self.actions);
        }
    }

    pub(super) fn act(&mut self, action: Action) {
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

    pub(super) fn open(&mut self, conn: u64, session: SessionId, sub: SubId, at: Scope, publisher: PubInfo) {
        let (Some(entry), Some(local)) = (self.conns.get(&conn), self.subs.get(&sub)) else {
            self.session_failed(session, "connection gone");
            return;
        };
        let s = Session::new(
            session,
            publisher.name.clone(),
            at,
            SessionEnd::Subscriber,
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
        let deadline = Instant::now() + OPEN_TIMEOUT;
        self.sub_sessions.insert(session, (conn, Some(deadline)));
        self.timers.at(deadline, Due::OpenDeadline(session));
    }

    /// Starts connecting to a publisher's process (or, for this process, a connection to itself).
    pub(super) fn connect(&mut self, publisher: &PubInfo) {
        // (A publication of this very process is reached the same way, over loopback.)
        let task = opening::dial_publisher(
            self.to_node.clone(),
            publisher.addr,
            publisher.process,
            self.hello.clone(),
            self.secret.clone(),
        );
        tokio::spawn(task.in_current_span());
    }
}
