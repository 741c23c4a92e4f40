//! The publisher's side of the node task: publications, their standing, and admitting the
//! sessions subscribers open with them.

use super::timers::Due;
use super::{NodeTask, LOCAL};
use crate::ids::{PubId, SessionId};
use crate::node::connection::ConnCommand;
use crate::node::session::{Session, SessionEnd};
use crate::node::{DropReason, Event, PublishError, PublishStatus};
use crate::scope::Scope;
use crate::wire::directory::{PubInfo, PubState, Up};
use crate::wire::peer::Open;
use std::collections::HashSet;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{info, warn};

/// How long `publish` waits for the parent directory's answer before answering itself.
const PUBLISH_ANSWER: std::time::Duration = std::time::Duration::from_secs(2);

pub(super) type PublishReply = oneshot::Sender<Result<(PubId, PublishStatus), PublishError>>;

/// One of this process's publications.
pub(super) struct LocalPub {
    pub(super) info: PubInfo,
    pub(super) events: mpsc::Sender<Event>,
    /// Sessions subscribers opened with it: (connection, session).
    pub(super) sessions: HashSet<(u64, SessionId)>,
    /// The caller of `publish`, until a directory answers.
    pub(super) reply: Option<(PublishReply, Instant)>,
    /// A change of standing the application's queue had no room for.
    pub(super) status_due: Option<(Scope, PubState)>,
}

impl NodeTask {
    pub(super) fn publish(
        &mut self,
        name: String,
        scope: Scope,
        events: mpsc::Sender<Event>,
        reply: PublishReply,
    ) {
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
                    let _ = reply.send(Err(PublishError::Listen(std::sync::Arc::new(e))));
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
        self.timers.at(deadline, Due::PublishAnswer(id));
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
        self.engine
            .on_child_frame(LOCAL, Up::Publish(info), &mut self.out);
    }

    pub(super) fn retract(&mut self, id: PubId) {
        let Some(p) = self.pubs.remove(&id) else { return };
        info!(name = %p.info.name, id = %id.short(), "publication retracted");
        self.engine
            .on_child_frame(LOCAL, Up::Retract { id }, &mut self.out);
        for (conn, session) in p.sessions {
            self.pub_sessions.remove(&(conn, session));
            self.close_session(conn, session, DropReason::Retracted);
        }
    }

    /// Ends a session from this side: stop delivering it (announcing `Dropped`), tell the peer.
    pub(super) fn close_session(&mut self, conn: u64, session: SessionId, reason: DropReason) {
        if let Some(entry) = self.conns.get(&conn) {
            entry.conn.command(ConnCommand::Close { session, reason });
        }
    }

    /// Is the parent expected to answer a publication soon?
    pub(super) fn parent_answers(&self) -> bool {
        self.uplink.is_some() && (self.parent_epoch.is_some() || !self.parent_unreachable)
    }

    pub(super) fn on_pub_status(&mut self, id: PubId, at: Scope, state: PubState) {
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
            // Only the latest standing matters: if the application is behind, keep it and offer
            // it again shortly rather than queueing without bound.
            p.status_due = Some((at, state));
            self.offer_status(id);
        }
    }

    /// Answers every `publish` caller still waiting for the parent with the process's own
    /// standing (the parent went, or cannot be reached).
    pub(super) fn answer_waiting_publishers(&mut self) {
        let waiting: Vec<PubId> = self
            .pubs
            .iter()
            .filter(|(_, p)| p.reply.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in waiting {
            self.answer_publisher(id);
        }
    }

    /// Answers `id`'s `publish` caller, if it still waits for the parent and its deadline has
    /// passed.
    pub(super) fn answer_if_still_waiting(&mut self, id: PubId) {
        let now = Instant::now();
        if self
            .pubs
            .get(&id)
            .and_then(|p| p.reply.as_ref())
            .is_some_and(|(_, deadline)| *deadline <= now)
        {
            self.answer_publisher(id);
        }
    }

    /// Answers `id`'s `publish` caller, if it waits, with the process's own standing.
    fn answer_publisher(&mut self, id: PubId) {
        if let Some((reply, _)) = self.pubs.get_mut(&id).and_then(|p| p.reply.take()) {
            let status = PublishStatus {
                at: Scope::Process,
                state: PubState::Active,
            };
            let _ = reply.send(Ok((id, status)));
        }
    }

    /// Gives `id`'s application its newest standing, if one is held back; if its queue is still
    /// full, tries again shortly.
    pub(super) fn offer_status(&mut self, id: PubId) {
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

    pub(super) fn inbound_open(&mut self, conn: u64, open: Open) {
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
                let s = Session::new(
                    session,
                    open.name,
                    open.at,
                    SessionEnd::Publisher,
                    entry.conn.clone(),
                );
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
}
