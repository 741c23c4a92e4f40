//! The directory daemon: an [`Engine`] at one scope, its children's connections and its uplink.
//!
//! [`run`] accepts child connections (processes, or lower directories) on a listener, gives each
//! a link, and feeds everything they send to the engine; the engine's outputs go back down the
//! links, or up to the parent, which is connected on demand (when some listing reaches wider
//! than this directory) and re-synchronised after every reconnect.
//!
//! A child that sends a malformed, oversized or unexpected frame, speaks another protocol
//! version, or says nothing within [`HANDSHAKE_TIMEOUT`] has its own connection closed, with the
//! reason logged; the daemon and every other connection carry on. A child that stops reading
//! (a write waits longer than [`WRITE_DEADLINE`], or its queue of [`LINK_QUEUE`] frames fills)
//! is dropped the same way rather than stalling the directory.

use super::child_link::{accept_loop, Event, Greeting};
pub use super::child_link::{LINK_QUEUE, WRITE_DEADLINE};
use super::engine::{Engine, LinkId, Output};
use super::published::{Published, PublishedWatch};
use super::uplink::{self, UplinkEvent, UplinkHandle};
use crate::ids::ProcessId;
use crate::scope::Scope;
use crate::secure::Secret;
use crate::wire::directory::{ChildReport, DirectoryReport, Down, PubState, TreeNode, Up};
use crate::wire::{Hello, PeerKind, HANDSHAKE_TIMEOUT};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

/// How a directory daemon runs.
#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    /// The directory's scope (GROUP for group-cake, HOST for host-cake).
    pub scope: Scope,
    /// The parent directory, connected to when some listing reaches wider than `scope`.
    pub parent: Option<SocketAddr>,
    /// The name the directory gives in its greeting (its executable's name).
    pub name: String,
    /// The directory's identity.
    pub id: ProcessId,
    /// How long a new connection has to send its greeting.
    pub handshake_timeout: Duration,
    /// The LAN's secret: connections with other hosts (children of a LAN directory, the
    /// link up to one) must pass the Noise handshake ([`crate::secure`]).
    pub secret: Option<Secret>,
    /// Where to keep what the children have published, up to date at every change (group-cake
    /// watches it; other directories leave it out and pay nothing).
    pub published: Option<watch::Sender<Published>>,
}

impl DirectoryConfig {
    /// A directory at `scope` named `name`, with a fresh identity and no parent.
    pub fn new(scope: Scope, name: impl Into<String>) -> DirectoryConfig {
        DirectoryConfig {
            scope,
            parent: None,
            name: name.into(),
            id: ProcessId::random(),
            handshake_timeout: HANDSHAKE_TIMEOUT,
            secret: None,
            published: None,
        }
    }
}

struct Link {
    hello: Hello,
    tx: mpsc::Sender<Down>,
    cancel: CancellationToken,
}

/// Runs a directory on `listener` until `shutdown` is cancelled.
pub async fn run(listener: TcpListener, config: DirectoryConfig, shutdown: CancellationToken) {
    let span = tracing::info_span!("directory", scope = %config.scope, id = %config.id.short());
    Directory::new(config, shutdown)
        .run(listener)
        .instrument(span)
        .await
}

/// Questions (pings, session lists) passed on to a child and not answered yet, at most.
const PENDING_PINGS: usize = 1024;
/// How long a passed-on question waits for its answer before it is forgotten.
const RELAY_FOR: Duration = Duration::from_secs(10);

struct Directory {
    config: DirectoryConfig,
    /// Where this directory accepts children.
    listen: Option<SocketAddr>,
    /// The parent, while connected.
    parent: Option<Hello>,
    /// Questions passed on to a child: our tag → (the asker's link, its number, when).
    pings: HashMap<u64, (LinkId, u64, std::time::Instant)>,
    next_ping: u64,
    engine: Engine,
    links: HashMap<LinkId, Link>,
    uplink: Option<UplinkHandle>,
    /// The epoch of the parent connection in use, if connected.
    parent_epoch: Option<u64>,
    shutdown: CancellationToken,
    out: Vec<Output>,
    /// What the children publish, for the watcher of [`DirectoryConfig::published`].
    watch: Option<PublishedWatch>,
}

impl Directory {
    fn new(mut config: DirectoryConfig, shutdown: CancellationToken) -> Directory {
        Directory {
            engine: Engine::new(config.scope),
            watch: config.published.take().map(PublishedWatch::new),
            config,
            listen: None,
            parent: None,
            pings: HashMap::new(),
            next_ping: 0,
            links: HashMap::new(),
            uplink: None,
            parent_epoch: None,
            shutdown,
            out: Vec::new(),
        }
    }

    async fn run(mut self, listener: TcpListener) {
        let (inbox_tx, mut inbox) = mpsc::channel::<Event>(4096);
        let (up_tx, mut up_rx) = mpsc::channel::<UplinkEvent>(1024);
        self.listen = listener.local_addr().ok();
        let greeting = Greeting {
            ours: self.hello(),
            timeout: self.config.handshake_timeout,
            secret: self.config.secret.clone(),
        };
        let accepting =
            tokio::spawn(accept_loop(listener, greeting, inbox_tx, self.shutdown.clone()).in_current_span());
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                Some(event) = inbox.recv() => self.on_event(event),
                Some(event) = up_rx.recv() => self.on_uplink(event),
            }
            self.flush();
            if self.uplink.is_none() && self.engine.wants_parent() {
                if let Some(parent) = self.config.parent {
                    self.uplink = Some(uplink::spawn(
                        parent,
                        self.hello(),
                        self.config.secret.clone(),
                        up_tx.clone(),
                        self.shutdown.clone(),
                    ));
                }
            }
        }
        for link in self.links.values() {
            link.cancel.cancel();
        }
        // Once `run` returns, the listening address is free again.
        let _ = accepting.await;
        info!("directory stopped");
    }

    fn hello(&self) -> Hello {
        let mut hello = Hello::new(
            PeerKind::Directory,
            self.config.id,
            self.config.scope,
            self.config.name.clone(),
        );
        hello.listen = self.listen;
        hello
    }

    /// What `layer-cake network` is told: this directory, its parent, its children.
    fn report(&self) -> DirectoryReport {
        let mut listings = self.engine.listings();
        let mut links: Vec<(&LinkId, &Link)> = self.links.iter().collect();
        links.sort_unstable_by_key(|(id, _)| **id);
        DirectoryReport {
            node: TreeNode::from(&self.hello()),
            parent_addr: self.config.parent,
            parent: self.parent.as_ref().map(TreeNode::from),
            children: links
                .into_iter()
                .map(|(id, link)| {
                    let (publishes, subscribes) = listings.remove(id).unwrap_or_default();
                    ChildReport {
                        node: TreeNode::from(&link.hello),
                        publishes,
                        subscribes,
                    }
                })
                .collect(),
        }
    }

    /// Inspection and pings from a child; anything else is for the engine.
    fn on_child_frame(&mut self, link: LinkId, frame: Up) {
        match frame {
            Up::Inspect { query } => {
                let report = self.report();
                self.send_down(link, Down::Report { query, report });
            }
            Up::Ping { seq, target } if target == self.config.id => self.send_down(link, Down::Pong { seq }),
            // The directory above (lan-cake above host-cake): it answers for itself.
            Up::Ping { seq, target } if self.parent.as_ref().is_some_and(|p| p.id == target) => {
                if let Some(tag) = self.remember(link, seq) {
                    self.send_up(Up::Ping { seq: tag, target });
                }
            }
            Up::Ping { seq, target } => self.relay(link, seq, target, |tag| Down::Ping { seq: tag }),
            Up::AskSessions { query, target } => {
                self.relay(link, query, target, |tag| Down::AskSessions { query: tag })
            }
            Up::Pong { seq } => {
                if let Some((asker, seq, _)) = self.pings.remove(&seq) {
                    self.send_down(asker, Down::Pong { seq });
                }
            }
            Up::Sessions { query, sessions } => {
                if let Some((asker, query, _)) = self.pings.remove(&query) {
                    self.send_down(asker, Down::Sessions { query, sessions });
                }
            }
            frame => {
                if let Some(refusal) = self.someone_elses(link, &frame) {
                    self.send_down(link, refusal);
                    return;
                }
                let (listed, retracted) = match &frame {
                    Up::Publish(info) => (Some(info.id), None),
                    Up::Retract { id } => (None, Some(*id)),
                    _ => (None, None),
                };
                self.engine.on_child_frame(link, frame, &mut self.out);
                if let Some(watch) = &mut self.watch {
                    if let Some(id) = listed {
                        let role = self.links.get(&link).and_then(|l| l.hello.role.clone());
                        watch.published(&self.engine, link, id, role);
                    }
                    if let Some(id) = retracted {
                        watch.retracted(&self.engine, id);
                    }
                }
            }
        }
    }

    /// Tells the watcher (if any) that what `link` published and the engine no longer holds
    /// has gone.
    fn forget_published(&mut self, link: LinkId) {
        if let Some(watch) = &mut self.watch {
            watch.link_lost(&self.engine, link);
        }
    }

    /// A process (not a directory, which passes on its children's) may list only for itself:
    /// the refusal of a `Publish` or `Subscribe` naming another process than its greeting did.
    fn someone_elses(&self, link: LinkId, frame: &Up) -> Option<Down> {
        let hello = &self.links.get(&link)?.hello;
        if hello.kind != PeerKind::Process {
            return None;
        }
        let at = self.config.scope;
        let reason = |process: ProcessId| {
            let reason = format!(
                "the listing is for process {process}, not this connection's {}",
                hello.id
            );
            warn!(link, peer = %hello.name, %reason, "refused a listing made for another process");
            reason
        };
        match frame {
            Up::Publish(info) if info.process != hello.id => Some(Down::PubStatus {
                id: info.id,
                at,
                state: PubState::Refused {
                    reason: reason(info.process),
                },
            }),
            Up::Subscribe(info) if info.process != hello.id => Some(Down::SubRefused {
                id: info.id,
                at,
                reason: reason(info.process),
            }),
            _ => None,
        }
    }

    /// Passes a question from `asker` (its number `theirs`) on to the child `target` under a
    /// tag of ours; the answer comes back to the asker under its own number.
    fn relay(&mut self, asker: LinkId, theirs: u64, target: ProcessId, ask: impl FnOnce(u64) -> Down) {
        let child = self
            .links
            .iter()
            .find(|(_, l)| l.hello.id == target)
            .map(|(id, _)| *id);
        match child {
            Some(child) => {
                if let Some(tag) = self.remember(asker, theirs) {
                    self.send_down(child, ask(tag));
                }
            }
            None => {
                debug!(link = asker, target = %target.short(), "a question for a node that is not a child here")
            }
        }
    }

    /// Notes a question from `asker` (its number `theirs`) about to be passed on; the tag to
    /// pass it under, or `None` when too many are in flight.
    fn remember(&mut self, asker: LinkId, theirs: u64) -> Option<u64> {
        let now = std::time::Instant::now();
        self.pings
            .retain(|_, (_, _, at)| now.duration_since(*at) < RELAY_FOR);
        if self.pings.len() >= PENDING_PINGS {
            warn!(link = asker, "too many questions in flight; one dropped");
            return None;
        }
        self.next_ping += 1;
        self.pings.insert(self.next_ping, (asker, theirs, now));
        Some(self.next_ping)
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Accepted {
                link,
                hello,
                tx,
                cancel,
            } => {
                info!(link, peer = %hello.name, peer_id = %hello.id.short(), kind = ?hello.kind, "child connected");
                self.links.insert(link, Link { hello, tx, cancel });
            }
            Event::Frame(link, frame) => {
                if let Some(l) = self.links.get(&link) {
                    log_listing(link, &l.hello, &frame);
                    self.on_child_frame(link, frame);
                }
            }
            Event::Closed(link, reason) => {
                if let Some(l) = self.links.remove(&link) {
                    info!(link, peer = %l.hello.name, peer_id = %l.hello.id.short(), %reason, "child gone");
                    self.pings.retain(|_, (asker, _, _)| *asker != link);
                    self.engine.link_lost(link, &mut self.out);
                    self.forget_published(link);
                }
            }
        }
    }

    fn on_uplink(&mut self, event: UplinkEvent) {
        match event {
            UplinkEvent::Connected { epoch, parent } => {
                self.parent = Some(parent);
                self.parent_epoch = Some(epoch);
                self.engine.parent_connected(&mut self.out);
            }
            UplinkEvent::Frame { epoch, frame } => {
                if self.parent_epoch == Some(epoch) {
                    match frame {
                        Down::Ping { seq } => self.send_up(Up::Pong { seq }),
                        // The answer to a ping this directory passed up for a child.
                        Down::Pong { seq } => {
                            if let Some((asker, seq, _)) = self.pings.remove(&seq) {
                                self.send_down(asker, Down::Pong { seq });
                            }
                        }
                        // A directory holds no sessions of its own.
                        Down::AskSessions { query } => self.send_up(Up::Sessions {
                            query,
                            sessions: Vec::new(),
                        }),
                        frame => self.engine.on_parent_frame(frame, &mut self.out),
                    }
                }
            }
            UplinkEvent::Unreachable => {}
            UplinkEvent::Lost { epoch } => {
                if self.parent_epoch == Some(epoch) {
                    self.parent_epoch = None;
                    self.parent = None;
                    self.engine.parent_lost(&mut self.out);
                }
            }
        }
    }

    /// Sends what the engine said. A child whose queue is full is dropped (and its listings
    /// withdrawn, which may say more); a full queue to the parent resets that link.
    fn flush(&mut self) {
        while !self.out.is_empty() {
            let outputs = std::mem::take(&mut self.out);
            for output in outputs {
                match output {
                    Output::ToLink(link, frame) => self.send_down(link, frame),
                    Output::ToParent(frame) => self.send_up(frame),
                }
            }
        }
    }

    fn send_down(&mut self, link: LinkId, frame: Down) {
        let Some(l) = self.links.get(&link) else { return };
        log_down(link, &l.hello, &frame);
        if let Err(mpsc::error::TrySendError::Full(_)) = l.tx.try_send(frame) {
            // (A closed queue means the child's task has ended; its `Closed` event follows.)
            warn!(link, peer = %l.hello.name, "child is not reading (queue full); dropping it");
            l.cancel.cancel();
            self.links.remove(&link);
            self.engine.link_lost(link, &mut self.out);
            self.forget_published(link);
        }
    }

    fn send_up(&mut self, frame: Up) {
        let (Some(uplink), Some(epoch)) = (&self.uplink, self.parent_epoch) else {
            return;
        };
        if !uplink.send(epoch, frame) {
            self.parent_epoch = None;
            self.engine.parent_lost(&mut self.out);
        }
    }
}

fn log_listing(link: LinkId, peer: &Hello, frame: &Up) {
    let peer = peer.name.as_str();
    match frame {
        Up::Publish(p) => info!(link, peer, name = %p.name, scope = %p.scope, id = %p.id.short(), "publish"),
        Up::Retract { id } => info!(link, peer, id = %id.short(), "retract"),
        Up::Subscribe(s) => {
            info!(link, peer, search = %s.search, scope = %s.scope, id = %s.id.short(), "subscribe")
        }
        Up::Unsubscribe { id } => info!(link, peer, id = %id.short(), "unsubscribe"),
        Up::Heartbeat | Up::Pong { .. } | Up::Sessions { .. } => {}
        Up::AskSessions { target, .. } => debug!(link, peer, target = %target.short(), "ask sessions"),
        Up::Inspect { .. } => debug!(link, peer, "inspect"),
        Up::Ping { target, .. } => debug!(link, peer, target = %target.short(), "ping"),
    }
}

fn log_down(link: LinkId, peer: &Hello, frame: &Down) {
    let peer = peer.name.as_str();
    match frame {
        Down::PubStatus {
            id,
            at,
            state: PubState::Standby { holder },
        } => {
            warn!(link, peer, id = %id.short(), %at, holder = %holder.short(), "publication is a standby: the name is held by another process")
        }
        Down::PubStatus { id, at, state } => {
            debug!(link, peer, id = %id.short(), %at, ?state, "publication status")
        }
        Down::Route(r) => {
            debug!(link, peer, name = %r.publisher.name, at = %r.at, sub = %r.sub.short(), "route")
        }
        Down::RouteCleared(k) => {
            debug!(link, peer, name = %k.name, at = %k.at, sub = %k.sub.short(), "route cleared")
        }
        Down::SubRefused { id, reason, .. } => {
            warn!(link, peer, id = %id.short(), %reason, "subscription refused")
        }
        Down::Heartbeat
        | Down::Report { .. }
        | Down::Ping { .. }
        | Down::Pong { .. }
        | Down::AskSessions { .. }
        | Down::Sessions { .. } => {}
    }
}

/// Whether a directory at `scope` may listen on `addr`: GROUP and HOST directories serve
/// their own host only, so they listen on loopback; LAN and wider listen where other hosts
/// reach them. (They also refuse any connection that does not come from loopback.)
pub fn check_listen(scope: Scope, addr: SocketAddr) -> Result<(), ListenRefused> {
    if scope < Scope::Lan && !crate::wire::is_local(addr) {
        return Err(ListenRefused { scope, addr });
    }
    Ok(())
}

/// A GROUP or HOST directory asked to listen beyond loopback.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {scope} directory serves this host only: listen on loopback (127.0.0.1), not {addr}")]
pub struct ListenRefused {
    /// The directory's scope.
    pub scope: Scope,
    /// Where it was asked to listen.
    pub addr: SocketAddr,
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
