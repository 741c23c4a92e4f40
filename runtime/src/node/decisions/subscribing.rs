//! The subscriber's decisions: subscriptions, and which sessions to open, on which connection,
//! as the attachments choose the nearest publisher of each name.

use super::{ConnId, Due, Effect, NodeCore, LOCAL, OPEN_TIMEOUT};
use crate::directory::{Action, Search, SearchError};
use crate::ids::{SessionId, SubId};
use crate::scope::Scope;
use crate::wire::directory::{PubInfo, SubInfo, Up};
use crate::wire::peer::Open;
use tracing::info;

/// A connection to a publisher's process: being made (the sessions waiting for it), or made.
pub(crate) enum Outbound {
    Connecting(Vec<(SessionId, SubId, Scope, PubInfo)>),
    Ready(ConnId),
}

impl NodeCore {
    /// Subscribes with `info` (its search must compile).
    pub(crate) fn subscribe(&mut self, info: SubInfo) -> Result<(), SearchError> {
        Search::new(&info.search)?;
        info!(search = %info.search, scope = %info.scope, id = %info.id.short(), "subscribed");
        self.subs.insert(info.id);
        self.engine
            .on_child_frame(LOCAL, Up::Subscribe(info), &mut self.out);
        self.settle();
        Ok(())
    }

    /// Clears subscription `id`; its sessions are closed.
    pub(crate) fn unsubscribe(&mut self, id: SubId) {
        if self.subs.remove(&id) {
            info!(id = %id.short(), "subscription cleared");
            self.engine
                .on_child_frame(LOCAL, Up::Unsubscribe { id }, &mut self.out);
            self.attach.unsubscribe(id, &mut self.actions);
        }
        self.settle();
    }

    /// A connection to `remote`'s process could not be made: its waiting sessions fail.
    pub(crate) fn connect_failed(&mut self, remote: crate::ids::ProcessId, reason: &str) {
        tracing::debug!(remote = %remote.short(), %reason, "could not reach a publisher");
        if let Some(Outbound::Connecting(waiting)) = self.outbound.remove(&remote) {
            for (session, ..) in waiting {
                self.session_failed(session, reason);
            }
        }
        self.settle();
    }

    /// The publisher accepted `session`.
    pub(crate) fn opened(&mut self, conn: ConnId, session: SessionId) {
        if let Some((c, opening)) = self.sub_sessions.get_mut(&session) {
            if *c == conn {
                *opening = false;
                self.attach.opened(session, &mut self.actions);
            }
        }
        self.settle();
    }

    pub(super) fn act(&mut self, action: Action) {
        match action {
            Action::Open {
                session,
                sub,
                at,
                publisher,
            } => {
                if !self.subs.contains(&sub) {
                    return;
                }
                match self.outbound.get_mut(&publisher.process) {
                    Some(Outbound::Ready(conn)) => {
                        let conn = *conn;
                        self.open(conn, session, sub, at, publisher);
                    }
                    Some(Outbound::Connecting(waiting)) => waiting.push((session, sub, at, publisher)),
                    None => {
                        // (A publication of this very process is reached the same way.)
                        self.effects.push(Effect::Dial(publisher.clone()));
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
                    self.effects.push(Effect::Close {
                        conn,
                        session,
                        reason,
                    });
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

    /// Opens `session` on connection `conn`, which the publisher has [`OPEN_TIMEOUT`] to accept.
    pub(super) fn open(
        &mut self,
        conn: ConnId,
        session: SessionId,
        sub: SubId,
        at: Scope,
        publisher: PubInfo,
    ) {
        if !self.conns.contains_key(&conn) || !self.subs.contains(&sub) {
            self.session_failed(session, "connection gone");
            return;
        }
        self.sub_sessions.insert(session, (conn, true));
        let open = Open {
            session,
            publication: publisher.id,
            name: publisher.name,
            subscription: sub,
            at,
        };
        self.effects.push(Effect::Open { conn, open });
        self.effects.push(Effect::Wake {
            after: OPEN_TIMEOUT,
            due: Due::OpenDeadline(session),
        });
    }
}
