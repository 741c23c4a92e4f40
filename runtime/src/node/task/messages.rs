//! What reaches the node task: commands from the handles, notes from connection tasks.

use crate::ids::{ProcessId, PubId, SessionId, SubId};
use crate::node::conn::Conn;
use crate::node::connection::Starter;
use crate::node::{Event, PublishError, PublishStatus, SubscribeError};
use crate::scope::Scope;
use crate::wire::peer::Open;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Where `publish` hears its answer.
pub(crate) type PublishReply = oneshot::Sender<Result<(PubId, PublishStatus), PublishError>>;

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
    pub(super) notes: mpsc::UnboundedSender<Note>,
    pub(crate) shutdown: CancellationToken,
    pub(super) next_conn: Arc<AtomicU64>,
}

impl ToNode {
    pub(crate) fn note(&self, note: Note) {
        let _ = self.notes.send(note);
    }
    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }
}
