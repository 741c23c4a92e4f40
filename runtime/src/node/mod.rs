//! The application side: a [`Node`] is one process's membership of the directory tree.
//!
//! A node owns a task (the *node task*, `task.rs`) that runs this process's own directory engine at PROCESS
//! scope, holds the link to the parent directory (group-cake or host-cake), chooses the nearest
//! publisher for each subscription, and opens and closes sessions. [`Node`], [`Publication`] and
//! [`Subscription`] are handles that talk to it.
//!
//! ```no_run
//! use layer_cake::{Node, Scope, SubscriptionEvent};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let node = Node::start().await?;
//! let mut sub = node.subscribe("test-multihosting:worker-10:[-a-f0-9]+", Scope::Host).await?;
//! while let Some(event) = sub.next().await {
//!     match event {
//!         SubscriptionEvent::Available(session) => {
//!             let reply: String = session.request(&"hello", std::time::Duration::from_secs(1)).await?;
//!             println!("{} answered {reply}", session.name());
//!         }
//!         SubscriptionEvent::Dropped(dropped) => println!("{} dropped: {}", dropped.name, dropped.reason),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```

mod config;
mod conn;
mod connection;
mod decisions;
mod events;
mod incoming;
mod opening;
mod outbox;
mod session;
mod task;
mod transport;

#[cfg(any(test, feature = "fuzz"))]
pub(crate) use self::decisions::NodeCore;
pub use crate::wire::peer::FailKind;
pub use config::{executable_name, BadDirectoryEnv, NodeBuilder, NodeConfig, SECRET_ENV};
pub(crate) use events::Event;
pub use events::{DropReason, Dropped, PublicationEvent, SubscriptionEvent};
pub use incoming::Incoming;
pub use outbox::OUTBOX_LIMIT;
pub use session::{DecodeError, RawReply, RequestError, SendError, Session, SessionEnd, SEND_TIMEOUT};
pub(crate) use task::{Note, ToNode};

use crate::ids::{ProcessId, PubId, SubId};
use crate::scope::Scope;
use crate::wire::directory::PubState;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// The environment variable naming the directory an application process joins (`host:port`,
/// or `none` for no directory). group-cake sets it for the processes it starts.
pub const DIRECTORY_ENV: &str = "LC_DIRECTORY";

/// host-cake's standard address.
pub const DEFAULT_HOST_DIRECTORY: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 54195);

/// How many events may wait in one publication's or subscription's queue before the sessions
/// delivering to it wait for the application to catch up.
pub const EVENT_QUEUE: usize = 1024;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The environment named a bad directory address.
    #[error(transparent)]
    Env(#[from] BadDirectoryEnv),
    /// The session listener could not be opened.
    #[error("cannot listen for sessions: {0}")]
    Listen(#[from] std::io::Error),
}

/// Why a publication was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PublishError {
    /// The name is empty, too long, or holds control characters or whitespace.
    #[error("invalid name {0:?}: names are 1 to 1024 printable characters without whitespace")]
    InvalidName(String),
    /// This process already publishes the name.
    #[error("{0:?} is already published by this process")]
    AlreadyPublished(String),
    /// A directory refused it.
    #[error("refused by the {at} directory: {reason}")]
    Refused {
        /// The directory's scope.
        at: Scope,
        /// Its reason.
        reason: String,
    },
    /// A LAN publication needs a listener other hosts can reach, and it could not be bound.
    #[error("cannot listen for sessions from other hosts: {0}")]
    Listen(#[source] Arc<std::io::Error>),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
}

/// Why a subscription was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubscribeError {
    /// The search is not a valid regular expression.
    #[error(transparent)]
    InvalidSearch(#[from] crate::directory::SearchError),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
}

struct NodeInner {
    id: ProcessId,
    name: String,
    commands: mpsc::Sender<task::Command>,
    /// Retractions from dropped handles. Unbounded because `Drop` cannot wait, but bounded in
    /// practice: each publication or subscription sends at most one.
    drops: mpsc::UnboundedSender<task::Command>,
    shutdown: CancellationToken,
    /// Cancelled by the node task as it ends, once every connection is closed.
    ended: CancellationToken,
    parent: watch::Receiver<ParentState>,
    session_addr: SocketAddr,
}

impl Drop for NodeInner {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// This process's membership of the directory tree. Cheap to clone; the node stops when the
/// last clone, publication and subscription are dropped (or on [`Node::close`]).
#[derive(Clone)]
pub struct Node(Arc<NodeInner>);

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.0.id.short())
            .field("name", &self.0.name)
            .finish()
    }
}

/// A publication's standing when [`Node::publish`] answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishStatus {
    /// The scope of the directory that answered: the nearest one the publication reached.
    pub at: Scope,
    /// Active, or standby behind another process.
    pub state: PubState,
}

/// The node's link to its parent directory, as [`Node::parent`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParentState {
    /// The node joins no directory (PROCESS scope only).
    NoDirectory,
    /// Not connected: connecting for the first time, or again after the parent went.
    Connecting,
    /// Connected and greeted.
    Connected {
        /// The parent's readable name (`group-cake`, `host-cake`, `lan-cake`).
        name: String,
        /// The parent's identity.
        id: ProcessId,
        /// The parent's scope.
        scope: Scope,
    },
}

/// Why an awaited handle operation could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeStopped {
    /// The node has stopped (closed, or every handle dropped).
    #[error("the node has stopped")]
    Stopped,
}

impl Node {
    /// Starts a node configured from the environment ([`NodeConfig::from_env`]): the directory
    /// in `LC_DIRECTORY` (group-cake sets it for its roles), else host-cake's standard address.
    pub async fn start() -> Result<Node, StartError> {
        Node::with_config(NodeConfig::from_env()?).await
    }

    /// Options for a node, set one by one (directory, name, secret), then `start()`.
    pub fn builder() -> NodeBuilder {
        NodeBuilder::new()
    }

    /// Starts a node with `config`.
    pub async fn with_config(config: NodeConfig) -> Result<Node, StartError> {
        let id = ProcessId::random();
        let shutdown = CancellationToken::new();
        let ended = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let session_addr = listener.local_addr()?;
        let initial = match config.directory {
            Some(_) => ParentState::Connecting,
            None => ParentState::NoDirectory,
        };
        let (parent_tx, parent) = watch::channel(initial);
        let task = task::Spawn {
            id,
            config: config.clone(),
            listener,
            shutdown: shutdown.clone(),
            ended: ended.clone(),
            parent: parent_tx,
        };
        let (commands, drops) = task::spawn(task);
        tracing::info!(id = %id.short(), %session_addr, directory = ?config.directory, "node started");
        Ok(Node(Arc::new(NodeInner {
            id,
            name: config.name,
            commands,
            drops,
            shutdown,
            ended,
            parent,
            session_addr,
        })))
    }

    /// This process's identity.
    pub fn id(&self) -> ProcessId {
        self.0.id
    }

    /// This process's readable name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Where this process accepts sessions.
    pub fn session_addr(&self) -> SocketAddr {
        self.0.session_addr
    }

    /// The link to the parent directory: its state now, and each change
    /// ([`watch::Receiver::changed`]); a node whose parent goes sees
    /// [`ParentState::Connecting`] until it is back.
    pub fn parent(&self) -> watch::Receiver<ParentState> {
        self.0.parent.clone()
    }

    /// Publishes `name` at `scope`. The answer comes from the nearest directory the publication
    /// reaches (this process's own, for PROCESS scope or when no directory is connected): see
    /// [`Publication::status`] for whether it is active or a standby. Wider directories report
    /// their standing later as [`PublicationEvent::Status`].
    pub async fn publish(&self, name: &str, scope: Scope) -> Result<Publication, PublishError> {
        let (reply, answer) = oneshot::channel();
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let cmd = task::Command::Publish {
            name: name.to_string(),
            scope,
            events: events_tx,
            reply,
        };
        self.0
            .commands
            .send(cmd)
            .await
            .map_err(|_| PublishError::Stopped)?;
        let (id, status) = answer.await.map_err(|_| PublishError::Stopped)??;
        Ok(Publication {
            id,
            name: name.to_string(),
            scope,
            status,
            events,
            node: self.clone(),
            withdrawn: false,
        })
    }

    /// A [`Caller`](crate::caller::Caller) over every instance `search` matches at `scope`:
    /// it subscribes, and keeps its instances in step with the subscription until it is
    /// dropped.
    pub async fn caller(
        &self,
        search: &str,
        scope: Scope,
        config: crate::caller::CallerConfig,
    ) -> Result<crate::caller::Caller, SubscribeError> {
        let subscription = self.subscribe(search, scope).await?;
        let caller = crate::caller::Caller::new(config);
        caller.feed(subscription);
        Ok(caller)
    }

    /// Subscribes to every name that `search` matches (an exact name, or a regular expression
    /// that must match the whole name), at `scope`.
    pub async fn subscribe(&self, search: &str, scope: Scope) -> Result<Subscription, SubscribeError> {
        let (reply, answer) = oneshot::channel();
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let cmd = task::Command::Subscribe {
            search: search.to_string(),
            scope,
            events: events_tx,
            reply,
        };
        self.0
            .commands
            .send(cmd)
            .await
            .map_err(|_| SubscribeError::Stopped)?;
        let id = answer.await.map_err(|_| SubscribeError::Stopped)??;
        Ok(Subscription {
            id,
            search: search.to_string(),
            scope,
            events,
            node: self.clone(),
            withdrawn: false,
        })
    }

    /// Stops the node without waiting: every session ends, every listing is withdrawn (see
    /// [`close`](Self::close) to wait for it).
    pub fn stop(&self) {
        self.0.shutdown.cancel();
    }

    /// Stops the node and waits until it has ended: its connections closed, its task done.
    pub async fn close(&self) {
        self.stop();
        self.closed().await;
    }

    /// Waits until the node has ended (closed by any of its clones, or every handle dropped).
    pub async fn closed(&self) {
        self.0.ended.cancelled().await;
    }

    fn dropped(&self, cmd: task::Command) {
        let _ = self.0.drops.send(cmd);
    }

    /// Sends `make(done)` and waits until the node task has carried it out.
    async fn done(&self, make: impl FnOnce(oneshot::Sender<()>) -> task::Command) -> Result<(), NodeStopped> {
        let (done, answer) = oneshot::channel();
        self.0
            .commands
            .send(make(done))
            .await
            .map_err(|_| NodeStopped::Stopped)?;
        answer.await.map_err(|_| NodeStopped::Stopped)
    }
}

/// The next event of `kind` from a handle's queue (a connection never sends a handle the
/// other kind's events; any would be skipped).
fn poll_events<T>(
    events: &mut mpsc::Receiver<Event>,
    cx: &mut Context<'_>,
    kind: fn(Event) -> Option<T>,
) -> Poll<Option<T>> {
    loop {
        match events.poll_recv(cx) {
            Poll::Ready(Some(mut event)) => {
                if let Event::Message(incoming) = &mut event {
                    // Its reply may wait to go out with those to the messages behind it.
                    incoming.set_more_behind(!events.is_empty());
                }
                if let Some(event) = kind(event) {
                    return Poll::Ready(Some(event));
                }
            }
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// A published name. Its events say which subscribers opened sessions and what they sent; it
/// is a [`Stream`](futures_util::Stream) of them, and [`next`](Self::next) takes one.
/// Dropping it retracts the name.
pub struct Publication {
    id: PubId,
    name: String,
    scope: Scope,
    status: PublishStatus,
    events: mpsc::Receiver<Event>,
    node: Node,
    /// Retracted already (by [`Publication::retract`]): nothing to do on drop.
    withdrawn: bool,
}

impl Publication {
    /// The publication's identity.
    pub fn id(&self) -> PubId {
        self.id
    }

    /// The published name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The scope it was published at.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// The standing the nearest directory gave it when published.
    pub fn status(&self) -> &PublishStatus {
        &self.status
    }

    /// The next event: a session opened or dropped, a message, a change of standing; `None`
    /// once the node has stopped.
    pub async fn next(&mut self) -> Option<PublicationEvent> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<PublicationEvent>> {
        poll_events(&mut self.events, cx, Event::for_publication)
    }

    /// Withdraws the name, and waits until this process has: its sessions are closed (each
    /// subscriber sees its session dropped) and the directories are told.
    pub async fn retract(mut self) -> Result<(), NodeStopped> {
        self.withdrawn = true;
        let id = self.id;
        self.node
            .done(|done| task::Command::Retract { id, done: Some(done) })
            .await
    }
}

impl futures_util::Stream for Publication {
    type Item = PublicationEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<PublicationEvent>> {
        self.get_mut().poll_event(cx)
    }
}

impl std::fmt::Debug for Publication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publication")
            .field("id", &self.id.short())
            .field("name", &self.name)
            .field("scope", &self.scope)
            .field("status", &self.status)
            .finish()
    }
}

impl Drop for Publication {
    fn drop(&mut self) {
        if !self.withdrawn {
            self.node.dropped(task::Command::Retract {
                id: self.id,
                done: None,
            });
        }
    }
}

/// A subscription. Its events announce sessions with matching publishers as they become
/// available and as they drop, and carry what the publishers send; it is a
/// [`Stream`](futures_util::Stream) of them, and [`next`](Self::next) takes one.
/// Dropping it clears the subscription.
pub struct Subscription {
    id: SubId,
    search: String,
    scope: Scope,
    events: mpsc::Receiver<Event>,
    node: Node,
    /// Cleared already (by [`Subscription::clear`]): nothing to do on drop.
    withdrawn: bool,
}

impl Subscription {
    /// The subscription's identity.
    pub fn id(&self) -> SubId {
        self.id
    }

    /// The search it matches names with.
    pub fn search(&self) -> &str {
        &self.search
    }

    /// The scope it was made at.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// The next event: a session available or dropped, or a message from a publisher; `None`
    /// once the node has stopped.
    pub async fn next(&mut self) -> Option<SubscriptionEvent> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<SubscriptionEvent>> {
        poll_events(&mut self.events, cx, Event::for_subscription)
    }

    /// Clears the subscription, and waits until this process has: its sessions are closed and
    /// the directories are told.
    pub async fn clear(mut self) -> Result<(), NodeStopped> {
        self.withdrawn = true;
        let id = self.id;
        self.node
            .done(|done| task::Command::Unsubscribe { id, done: Some(done) })
            .await
    }
}

impl futures_util::Stream for Subscription {
    type Item = SubscriptionEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SubscriptionEvent>> {
        self.get_mut().poll_event(cx)
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id.short())
            .field("search", &self.search)
            .field("scope", &self.scope)
            .finish()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if !self.withdrawn {
            self.node.dropped(task::Command::Unsubscribe {
                id: self.id,
                done: None,
            });
        }
    }
}
