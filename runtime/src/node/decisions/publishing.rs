//! The publisher's decisions: which names may be published, when `publish` is answered and
//! with what, standing changes, and which sessions subscribers open are admitted.

use super::{ConnId, Due, Effect, NodeCore, Publication, LOCAL, PUBLISH_ANSWER};
use crate::ids::PubId;
use crate::node::{DropReason, PublishError, PublishStatus};
use crate::scope::Scope;
use crate::wire::directory::{PubInfo, PubState, Up};
use crate::wire::peer::Open;
use std::collections::HashSet;
use tracing::{info, warn};

impl NodeCore {
    /// May this process publish `name`? It must be a valid name
    /// ([`valid_name`](crate::directory::valid_name)), and not already published here.
    pub(crate) fn check_publish(&self, name: &str) -> Result<(), PublishError> {
        if !crate::directory::valid_name(name) {
            return Err(PublishError::InvalidName(name.to_string()));
        }
        if self.pubs.values().any(|p| p.info.name == name) {
            return Err(PublishError::AlreadyPublished(name.to_string()));
        }
        Ok(())
    }

    /// Publishes `info` (checked with [`check_publish`](Self::check_publish)). It is answered
    /// by the nearest directory it reaches, or by this process after [`PUBLISH_ANSWER`].
    pub(crate) fn publish(&mut self, info: PubInfo) {
        let id = info.id;
        info!(name = %info.name, scope = %info.scope, id = %id.short(), "publishing");
        self.effects.push(Effect::Wake {
            after: PUBLISH_ANSWER,
            due: Due::PublishAnswer(id),
        });
        self.pubs.insert(
            id,
            Publication {
                info: info.clone(),
                sessions: HashSet::new(),
                answer_pending: true,
            },
        );
        self.engine
            .on_child_frame(LOCAL, Up::Publish(info), &mut self.out);
        self.settle();
    }

    /// Withdraws publication `id`; its sessions are closed.
    pub(crate) fn retract(&mut self, id: PubId) {
        self.withdraw(id);
        self.settle();
    }

    fn withdraw(&mut self, id: PubId) {
        let Some(p) = self.pubs.remove(&id) else { return };
        info!(name = %p.info.name, id = %id.short(), "publication retracted");
        self.engine
            .on_child_frame(LOCAL, Up::Retract { id }, &mut self.out);
        let mut sessions: Vec<_> = p.sessions.into_iter().collect();
        sessions.sort_unstable();
        for (conn, session) in sessions {
            self.pub_sessions.remove(&(conn, session));
            self.effects.push(Effect::Close {
                conn,
                session,
                reason: DropReason::Retracted,
            });
        }
    }

    /// Is the parent expected to answer a publication soon?
    fn parent_answers(&self) -> bool {
        self.has_parent && (self.parent_up || !self.parent_unreachable)
    }

    /// A directory's standing for publication `id`: the answer to `publish` when it is the
    /// nearest one to answer, else news for the application.
    pub(super) fn on_pub_status(&mut self, id: PubId, at: Scope, state: PubState) {
        let parent_answers = self.parent_answers();
        let Some(p) = self.pubs.get_mut(&id) else { return };
        if let PubState::Standby { holder } = &state {
            warn!(name = %p.info.name, %at, holder = %holder.short(), "publication is a standby: another process holds the name");
        }
        // The process's own engine answers first; a wider publication waits for its parent.
        let waiting_for_parent = at == Scope::Process && p.info.scope > Scope::Process && parent_answers;
        if waiting_for_parent {
            return;
        }
        if std::mem::replace(&mut p.answer_pending, false) {
            let answer = match state {
                PubState::Refused { reason } => Err(PublishError::Refused { at, reason }),
                state => Ok(PublishStatus { at, state }),
            };
            let refused = answer.is_err();
            self.effects.push(Effect::Answer { id, answer });
            if refused {
                self.withdraw(id);
            }
        } else if at > Scope::Process {
            self.effects.push(Effect::Standing { id, at, state });
        }
    }

    /// Answers every `publish` caller still waiting for the parent with the process's own
    /// standing (the parent went, or cannot be reached).
    pub(super) fn answer_waiting_publishers(&mut self) {
        let mut waiting: Vec<PubId> = self
            .pubs
            .iter()
            .filter(|(_, p)| p.answer_pending)
            .map(|(id, _)| *id)
            .collect();
        waiting.sort_unstable();
        for id in waiting {
            self.answer_publisher(id);
        }
    }

    /// Answers `id`'s `publish` caller, if it waits, with the process's own standing.
    pub(super) fn answer_publisher(&mut self, id: PubId) {
        if let Some(p) = self.pubs.get_mut(&id).filter(|p| p.answer_pending) {
            p.answer_pending = false;
            let status = PublishStatus {
                at: Scope::Process,
                state: PubState::Active,
            };
            self.effects.push(Effect::Answer {
                id,
                answer: Ok(status),
            });
        }
    }

    /// A subscriber on connection `conn` opens a session: admitted when the publication is
    /// here (and, for a peer on another host, reaches other hosts), else refused with a reason.
    pub(crate) fn inbound_open(&mut self, conn: ConnId, open: Open) {
        let Some(entry) = self.conns.get(&conn) else {
            return;
        };
        let session = open.session;
        let from_afar = entry.from_afar;
        let effect = match self
            .pubs
            .get_mut(&open.publication)
            .filter(|p| p.info.name == open.name)
        {
            Some(p) if from_afar && p.info.scope < Scope::Lan => {
                warn!(name = %p.info.name, "refused a session from another host to a {} publication", p.info.scope);
                let reason = format!(
                    "{:?} is published at {} scope: not reachable from other hosts",
                    open.name, p.info.scope
                );
                Effect::Refuse {
                    conn,
                    session,
                    reason,
                }
            }
            Some(p) => {
                info!(name = %p.info.name, peer_id = %entry.remote.short(), %session, "session delivered");
                p.sessions.insert((conn, session));
                self.pub_sessions.insert((conn, session), open.publication);
                Effect::Admit {
                    conn,
                    session,
                    publication: open.publication,
                    name: open.name,
                    at: open.at,
                }
            }
            None => {
                let reason = format!("no publication {:?} here (retracted?)", open.name);
                Effect::Refuse {
                    conn,
                    session,
                    reason,
                }
            }
        };
        self.effects.push(effect);
    }
}
