//! The application side: a [`Node`] is one process's membership of the directory tree.
//!
//! A node owns a task (the *node task*, `task.rs`) that runs this process's own directory engine at PROCESS
//! scope, holds the link to the parent directory (group-cake or host-cake), chooses the nearest
//! publisher for each subscription, and opens and closes sessions. [`Node`], [`Publication`] and
//! [`Subscription`] are handles that talk to it.
//!
//! ```no_run
//! use layer_cake::{Event, Node, Scope};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let node = Node::start().await?;
//! let mut sub = node.subscribe("test-multihosting:worker-10:[-a-f0-9]+", Scope::Host).await?;
//! while let Some(event) = sub.next().await {
//!     match event {
//!         Event::Available(session) => {
//!             let reply: String = session.request(&"hello", std::time::Duration::from_secs(1)).await?;
//!             println!("{} answered {reply}", session.name());
//!         }
//!         Event::Dropped(dropped) => println!("{} dropped: {}", dropped.name, dropped.reason),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```

mod connection;
mod opening;
mod outbox;
mod session;
mod task;
mod transport;

pub use crate::wire::peer::FailKind;
pub use outbox::OUTBOX_LIMIT;
pub use session::{
    DecodeError, Incoming, RawReply, RequestError, SendError, Session, SessionEnd, SEND_TIMEOUT,
};
pub(crate) use task::{Note, ToNode};

use crate::ids::{ProcessId, PubId, SessionId, SubId};
use crate::scope::Scope;
use crate::wire::directory::PubState;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// The environment variable naming the directory an application process joins (`host:port`,
/// or `none` for no directory). group-cake sets it for the processes it starts.
pub const DIRECTORY_ENV: &str = "LC_DIRECTORY";

/// host-cake's standard address.
pub const DEFAULT_HOST_DIRECTORY: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 54195);

/// How many events may wait in one publication's or subscription's queue before the sessions
/// delivering to it wait for the application to catch up.
pub const EVENT_QUEUE: usize = 1024;

/// How a node joins the tree.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The parent directory; `None` runs without one (PROCESS scope only).
    pub directory: Option<SocketAddr>,
    /// The name this process gives (its executable's name by default).
    pub name: String,
    /// The LAN's secret, when the LAN is encrypted: sessions to and from LAN publications
    /// then run the Noise handshake ([`crate::secure`]). From the file named in
    /// `LC_SECRET_FILE`.
    pub secret: Option<crate::secure::Secret>,
}

/// The environment variable naming the file that holds the LAN's secret (see
/// [`crate::secure`]); the directories take it as `--secret-file` too.
pub const SECRET_ENV: &str = "LC_SECRET_FILE";

/// The environment held something unusable: `LC_DIRECTORY` not an address, or
/// `LC_SECRET_FILE` not a secret file.
#[derive(Debug, thiserror::Error)]
pub enum BadDirectoryEnv {
    /// `LC_DIRECTORY` is not `host:port` or `none`.
    #[error("{DIRECTORY_ENV}={value:?} is not host:port or \"none\"")]
    Directory {
        /// What it held.
        value: String,
    },
    /// `LC_SECRET_FILE` names no usable secret.
    #[error("{SECRET_ENV}: {0}")]
    Secret(#[from] crate::secure::SecretError),
}

impl NodeConfig {
    /// Joins `directory` (none: PROCESS scope only) as `name`, with no LAN secret.
    pub fn new(directory: Option<SocketAddr>, name: impl Into<String>) -> NodeConfig {
        NodeConfig {
            directory,
            name: name.into(),
            secret: None,
        }
    }

    /// With the LAN's secret: sessions across hosts are encrypted and authenticated.
    pub fn with_secret(mut self, secret: crate::secure::Secret) -> NodeConfig {
        self.secret = Some(secret);
        self
    }

    /// From the environment: the directory in `LC_DIRECTORY`, else host-cake's standard
    /// address `127.0.0.1:54195`; the LAN's secret from the file in `LC_SECRET_FILE`.
    pub fn from_env() -> Result<NodeConfig, BadDirectoryEnv> {
        let directory = match std::env::var(DIRECTORY_ENV) {
            Ok(value) if value.eq_ignore_ascii_case("none") => None,
            Ok(value) => Some(value.parse().map_err(|_| BadDirectoryEnv::Directory { value })?),
            Err(_) => Some(DEFAULT_HOST_DIRECTORY),
        };
        let secret = match std::env::var_os(SECRET_ENV) {
            Some(path) if !path.is_empty() => {
                Some(crate::secure::Secret::from_file(std::path::Path::new(&path))?)
            }
            _ => None,
        };
        Ok(NodeConfig {
            directory,
            name: executable_name(),
            secret,
        })
    }
}

/// The basename of this process's executable.
pub fn executable_name() -> String {
    std::env::args()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "process".to_string())
}

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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    Listen(String),
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

/// A session is over, and why.
#[derive(Debug, Clone)]
pub struct Dropped {
    /// The session.
    pub session: SessionId,
    /// The published name it was with.
    pub name: String,
    /// The scope it was found at.
    pub scope: Scope,
    /// The process at the other end.
    pub peer: ProcessId,
    /// Why it ended.
    pub reason: String,
}

impl Dropped {
    pub(crate) fn new(session: &Session, reason: String) -> Dropped {
        Dropped {
            session: session.id(),
            name: session.name().to_string(),
            scope: session.matched_at(),
            peer: session.peer(),
            reason,
        }
    }
}

/// What a [`Publication`] or [`Subscription`] hears.
#[derive(Debug)]
pub enum Event {
    /// (Subscriber) A session with a matching publisher is open.
    Available(Session),
    /// (Publisher) A subscriber opened a session.
    Delivered(Session),
    /// A session is over.
    Dropped(Dropped),
    /// A message arrived on one of the sessions.
    Message(Incoming),
    /// (Publisher) The publication's standing in the directory at `at` changed: promoted from
    /// standby to active, or made a standby.
    Status {
        /// The directory's scope.
        at: Scope,
        /// The new standing.
        state: PubState,
    },
}

struct NodeInner {
    id: ProcessId,
    name: String,
    commands: mpsc::Sender<task::Command>,
    /// Retractions from dropped handles. Unbounded because `Drop` cannot wait, but bounded in
    /// practice: each publication or subscription sends at most one.
    drops: mpsc::UnboundedSender<task::Command>,
    shutdown: CancellationToken,
    session_addr: SocketAddr,
}

impl Drop for NodeInner {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// This process's membership of the directory tree. Cheap to clone; the node stops when the
/// last clone, publication and subscription are dropped (or on [`Node::stop`]).
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

impl Node {
    /// Starts a node configured from the environment ([`NodeConfig::from_env`]).
    pub async fn start() -> Result<Node, StartError> {
        Node::with_config(NodeConfig::from_env()?).await
    }

    /// Starts a node with `config`.
    pub async fn with_config(config: NodeConfig) -> Result<Node, StartError> {
        let id = ProcessId::random();
        let shutdown = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let session_addr = listener.local_addr()?;
        let (commands, drops) = task::spawn(id, config.clone(), listener, shutdown.clone());
        tracing::info!(id = %id.short(), %session_addr, directory = ?config.directory, "node started");
        Ok(Node(Arc::new(NodeInner {
            id,
            name: config.name,
            commands,
            drops,
            shutdown,
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

    /// Publishes `name` at `scope`. The answer comes from the nearest directory the publication
    /// reaches (this process's own, for PROCESS scope or when no directory is connected): see
    /// [`Publication::status`] for whether it is active or a standby. Wider directories report
    /// their standing later as [`Event::Status`].
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
        })
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
        })
    }

    /// Stops the node: every session ends, every listing is withdrawn.
    pub fn stop(&self) {
        self.0.shutdown.cancel();
    }

    fn dropped(&self, cmd: task::Command) {
        let _ = self.0.drops.send(cmd);
    }
}

/// A published name. Its events say which subscribers opened sessions and what they sent.
/// Dropping it retracts the name.
pub struct Publication {
    id: PubId,
    name: String,
    scope: Scope,
    status: PublishStatus,
    events: mpsc::Receiver<Event>,
    node: Node,
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

    /// The next event: a session opened or dropped, a message, a change of standing.
    pub async fn next(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// Withdraws the name; subscribers see their sessions dropped.
    pub fn retract(self) {}
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
        self.node.dropped(task::Command::Retract { id: self.id });
    }
}

/// A subscription. Its events announce sessions with matching publishers as they become
/// available and as they drop, and carry what the publishers send.
/// Dropping it clears the subscription.
pub struct Subscription {
    id: SubId,
    search: String,
    scope: Scope,
    events: mpsc::Receiver<Event>,
    node: Node,
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

    /// The next event: a session available or dropped, or a message from a publisher.
    pub async fn next(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// Clears the subscription; its sessions are dropped.
    pub fn clear(self) {}
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
        self.node.dropped(task::Command::Unsubscribe { id: self.id });
    }
}
