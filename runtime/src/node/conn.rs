//! A connection as its handles (sessions, requests, the node task) see it: who is at the other
//! end, the outbox senders write to, the requests waiting for replies, and the commands the
//! connection's task takes.

use super::outbox::Outbox;
use super::session::{Reply, Session};
use super::{DropReason, Event};
use crate::ids::{ProcessId, SessionId};
use crate::wire::peer::{FailKind, Open};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::sync::{mpsc, oneshot};

/// What a request's waiter is told: the reply, or why none will come.
pub(crate) type ReplyResult = Result<Reply, (FailKind, String)>;

/// The requests waiting for replies on one connection.
type Pending = rustc_hash::FxHashMap<u64, (SessionId, oneshot::Sender<ReplyResult>)>;

/// What the connection's handles share: its identity, its outbox and the requests waiting for
/// replies.
pub(crate) struct Conn {
    /// Unique within this process.
    pub(crate) id: u64,
    /// The process at the other end.
    pub(crate) remote: ProcessId,
    /// The other end's readable name.
    pub(crate) remote_name: String,
    /// The other end's address.
    pub(crate) remote_addr: SocketAddr,
    /// Is the other end this very process (a PROCESS-scope session)?
    pub(crate) within_process: bool,
    pub(crate) outbox: Outbox,
    /// Requests waiting for replies, by correlation number, with their session (a session
    /// that ends ends its requests). The numbers are this side's own, so a fast hash that a
    /// peer could collide on is safe here.
    pending: Mutex<Pending>,
    next_corr: AtomicU64,
    commands: mpsc::UnboundedSender<ConnCommand>,
}

/// What the node task (and dropped handles) ask of a connection's task.
pub(crate) enum ConnCommand {
    /// (Subscriber) Open `session` with a publication: write the `Open`, and deliver the
    /// session's events to `events` once the publisher answers.
    Open {
        session: Session,
        events: mpsc::Sender<Event>,
        open: Open,
    },
    /// (Publisher) The session is admitted: write `Opened`, then deliver `Delivered` and
    /// whatever the subscriber already sent.
    Admit {
        session: Session,
        events: mpsc::Sender<Event>,
    },
    /// (Publisher) The session is refused.
    Refuse { session: SessionId, reason: String },
    /// End a session from this side: tell the peer, and the application (`Dropped`).
    Close { session: SessionId, reason: DropReason },
    /// A request on `session` will get no reply: tell the requester.
    Fail {
        session: SessionId,
        corr: u64,
        kind: FailKind,
        reason: String,
    },
}

impl Conn {
    pub(super) fn new(
        id: u64,
        remote: &crate::wire::Hello,
        remote_addr: SocketAddr,
        within_process: bool,
        outbox: Outbox,
        commands: mpsc::UnboundedSender<ConnCommand>,
    ) -> Conn {
        Conn {
            id,
            remote: remote.id,
            remote_name: remote.name.clone(),
            remote_addr,
            within_process,
            outbox,
            pending: Mutex::new(Pending::default()),
            next_corr: AtomicU64::new(0),
            commands,
        }
    }

    pub(crate) fn command(&self, command: ConnCommand) {
        let _ = self.commands.send(command);
    }

    /// Registers a request on `session`; its number and where the reply will come.
    pub(crate) fn expect_reply(&self, session: SessionId) -> (u64, oneshot::Receiver<ReplyResult>) {
        let corr = self.next_corr.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = oneshot::channel();
        self.lock_pending().insert(corr, (session, tx));
        (corr, rx)
    }

    /// Forgets a request (answered, timed out or cancelled).
    pub(crate) fn forget(&self, corr: u64) {
        self.lock_pending().remove(&corr);
    }

    pub(super) fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends every request waiting on `session` (or on every session).
    pub(super) fn end_requests(&self, session: Option<SessionId>) {
        self.lock_pending()
            .retain(|_, (s, _)| session.is_some_and(|only| only != *s));
    }
}
