//! A worker pool: spreads requests over every publisher a subscription finds.
//!
//! A [`Spool`] holds sessions with workers. [`Spool::feed`] wires it to a subscription, so
//! workers join as they become `Available` and leave when `Dropped`; or call
//! [`join`](Spool::join) and [`leave`](Spool::leave) yourself.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use layer_cake::{Node, Scope};
//! use layer_cake::spool::{Idempotence, Spool, SpoolConfig};
//!
//! #[derive(serde::Serialize)]
//! struct Xy { x: usize, y: usize }
//! layer_cake::message!(Xy);
//!
//! let node = Node::start().await?;
//! let workers = node.subscribe("test-multihosting:worker-10:[-a-f0-9]+", Scope::Host).await?;
//! let spool = Spool::new(SpoolConfig::default());
//! spool.feed(workers);
//! let table: Vec<Vec<f64>> = spool.request(&Xy { x: 2, y: 2 }, Idempotence::Idempotent).await?;
//! # Ok(()) }
//! ```
//!
//! **Choosing a worker: least outstanding.** Each request goes to the worker with the fewest
//! requests in flight, ties broken round-robin. Under even load that is round-robin; when one
//! worker is slow (a busy host, a big request) its requests pile up and new ones go
//! elsewhere, which plain round-robin would not do.
//!
//! **Bounds.** At most [`SpoolConfig::per_worker`] requests are in flight on one worker. A
//! request that finds every worker at that bound waits, but at most
//! [`SpoolConfig::waiting`] requests wait: beyond that a request fails at once with
//! [`SpoolError::Busy`]. With no worker at all it fails at once with
//! [`SpoolError::NoWorkers`]. Every request, waiting included, ends by its deadline
//! ([`SpoolConfig::deadline`]) with [`SpoolError::Timeout`].
//!
//! **A worker that goes** (its session dropped, its connection lost) fails the requests it
//! had in flight: each is retried once on another worker if the caller marked it
//! idempotent, and otherwise fails with [`SpoolError::WorkerLost`]. Nothing waits for a
//! worker that is gone.

use crate::ids::SessionId;
use crate::message::{Message, Received};
use crate::node::{DecodeError, RawReply, RequestError, Session, Subscription, SubscriptionEvent};
use crate::wire::peer::FailKind;
use serde_json::value::RawValue;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Whether a request may be run twice: what the spool does when its worker goes before
/// answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotence {
    /// Run at most once: if its worker goes before answering, the request fails with
    /// [`SpoolError::WorkerLost`].
    Once,
    /// Safe to run again: if its worker goes before answering, it is sent to another.
    Idempotent,
}

/// A spool's bounds and deadline.
#[derive(Debug, Clone)]
pub struct SpoolConfig {
    /// Requests in flight on one worker, at most.
    pub per_worker: usize,
    /// Requests waiting for a worker, at most; more fail at once with [`SpoolError::Busy`].
    pub waiting: usize,
    /// How long a request may take, waiting included.
    pub deadline: Duration,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            per_worker: 64,
            waiting: 1024,
            deadline: Duration::from_secs(5),
        }
    }
}

/// Why a spooled request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The spool has no worker.
    #[error("no worker is available")]
    NoWorkers,
    /// Every worker is at its bound and the waiting line is full.
    #[error("every worker is busy and {0} requests are already waiting")]
    Busy(usize),
    /// The deadline passed (waiting for a worker, or for its answer).
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The worker went while the request was in flight (and it was not retried).
    #[error("worker {worker} went before it answered ({reason})")]
    WorkerLost {
        /// The worker's published name.
        worker: String,
        /// What happened to it.
        reason: String,
    },
    /// The request could not be encoded.
    #[error("could not send the request: {0}")]
    Send(String),
    /// The worker answered that it cannot answer (it could not decode the request, or its
    /// answer could not be sent).
    #[error("worker {worker} failed the request: {reason}")]
    Failed {
        /// The worker's published name.
        worker: String,
        /// What it said.
        reason: String,
    },
    /// The answer was not of the type expected.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

struct Worker {
    session: Session,
    outstanding: usize,
    /// Cancelled when the worker leaves: its requests in flight end at once.
    gone: CancellationToken,
}

struct State {
    workers: Vec<Worker>,
    /// Where the round-robin tie-break starts next.
    cursor: usize,
    waiting: usize,
}

struct Inner {
    config: SpoolConfig,
    state: Mutex<State>,
    /// Woken when a worker frees a slot, joins or leaves.
    changed: Notify,
}

/// A pool of workers (sessions with publishers) that requests are spread over. Cheap to
/// clone; every clone is the same pool.
#[derive(Clone)]
pub struct Spool(Arc<Inner>);

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.0.state.lock().expect("spool lock");
        f.debug_struct("Spool")
            .field("workers", &state.workers.len())
            .field("waiting", &state.waiting)
            .finish()
    }
}

/// A slot on one worker, given back when dropped.
struct Lease<'a> {
    spool: &'a Inner,
    session: Session,
    gone: CancellationToken,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut state = self.spool.state.lock().expect("spool lock");
        if let Some(w) = state
            .workers
            .iter_mut()
            .find(|w| w.session.id() == self.session.id())
        {
            w.outstanding -= 1;
        }
        drop(state);
        self.spool.changed.notify_one();
    }
}

/// A place in the waiting line, given back when dropped (also when the caller gives up).
struct Waiting<'a>(&'a Inner);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.state.lock().expect("spool lock").waiting -= 1;
    }
}

impl Spool {
    /// An empty spool.
    pub fn new(config: SpoolConfig) -> Spool {
        Spool(Arc::new(Inner {
            config,
            state: Mutex::new(State {
                workers: Vec::new(),
                cursor: 0,
                waiting: 0,
            }),
            changed: Notify::new(),
        }))
    }

    /// Adds a worker (a session with a publisher). Joining the same session twice does
    /// nothing.
    pub fn join(&self, session: Session) {
        let mut state = self.0.state.lock().expect("spool lock");
        if state.workers.iter().any(|w| w.session.id() == session.id()) {
            return;
        }
        tracing::info!(worker = session.name(), at = %session.matched_at(), workers = state.workers.len() + 1, "worker joined the spool");
        state.workers.push(Worker {
            session,
            outstanding: 0,
            gone: CancellationToken::new(),
        });
        drop(state);
        self.0.changed.notify_waiters();
    }

    /// Removes a worker; its requests in flight fail (or are retried elsewhere). Returns
    /// whether it was there.
    pub fn leave(&self, session: SessionId) -> bool {
        let mut state = self.0.state.lock().expect("spool lock");
        let Some(i) = state.workers.iter().position(|w| w.session.id() == session) else {
            return false;
        };
        let worker = state.workers.swap_remove(i);
        drop(state);
        tracing::info!(worker = worker.session.name(), "worker left the spool");
        worker.gone.cancel();
        self.0.changed.notify_waiters();
        true
    }

    /// How many requests are waiting for a worker now.
    pub fn waiting(&self) -> usize {
        self.0.state.lock().expect("spool lock").waiting
    }

    /// How many workers the spool has.
    pub fn workers(&self) -> usize {
        self.0.state.lock().expect("spool lock").workers.len()
    }

    /// Keeps the spool in step with `subscription`: each `Available` session joins, each
    /// `Dropped` one leaves. Runs on a task of its own until the subscription ends (or the
    /// returned handle is aborted).
    pub fn feed(&self, mut subscription: Subscription) -> tokio::task::JoinHandle<()> {
        let spool = self.clone();
        tokio::spawn(async move {
            while let Some(event) = subscription.next().await {
                match event {
                    SubscriptionEvent::Available(session) => spool.join(session),
                    SubscriptionEvent::Dropped(d) => {
                        spool.leave(d.session);
                    }
                    _ => {}
                }
            }
        })
    }

    /// Sends `request` to a worker and waits for its answer. With [`Idempotence::Idempotent`]
    /// the request may be sent again, to another worker, if the first one goes before answering.
    pub async fn request<Q, R>(&self, request: &Q, idempotence: Idempotence) -> Result<R, SpoolError>
    where
        Q: Message + ?Sized,
        R: Received,
    {
        let body = serde_json::value::to_raw_value(request).map_err(|e| SpoolError::Send(e.to_string()))?;
        let reply = self.request_raw(Q::NAME, &body, idempotence).await?;
        Ok(reply.decode()?)
    }

    /// [`request`](Self::request) for a message already encoded as JSON, answered undecoded
    /// (see [`Session::request_raw`]).
    pub async fn request_raw(
        &self,
        type_name: &str,
        body: &RawValue,
        idempotence: Idempotence,
    ) -> Result<RawReply, SpoolError> {
        let deadline = self.0.config.deadline;
        let until = Instant::now() + deadline;
        let mut tries_left = match idempotence {
            Idempotence::Idempotent => 2,
            Idempotence::Once => 1,
        };
        loop {
            tries_left -= 1;
            let lease = self.lease(until).await?;
            let left = until.saturating_duration_since(Instant::now());
            let outcome = tokio::select! {
                biased;
                r = lease.session.request_raw(type_name, body, left) => r.map_err(|e| match e {
                    RequestError::Timeout(_) => SpoolError::Timeout(deadline),
                    RequestError::Ended | RequestError::Send(crate::node::SendError::Closed) => SpoolError::WorkerLost {
                        worker: lease.session.name().to_string(),
                        reason: "its connection ended".into(),
                    },
                    RequestError::Send(e) => SpoolError::Send(e.to_string()),
                    // Not processed: as if the worker had gone (an idempotent request is retried).
                    RequestError::Failed { kind: FailKind::Unanswered, reason } => SpoolError::WorkerLost {
                        worker: lease.session.name().to_string(),
                        reason,
                    },
                    RequestError::Failed { reason, .. } => SpoolError::Failed {
                        worker: lease.session.name().to_string(),
                        reason,
                    },
                    RequestError::Decode(e) => SpoolError::Decode(e),
                }),
                _ = lease.gone.cancelled() => Err(SpoolError::WorkerLost {
                    worker: lease.session.name().to_string(),
                    reason: "it left the pool".into(),
                }),
            };
            match outcome {
                Err(SpoolError::WorkerLost { worker, reason }) if tries_left > 0 => {
                    tracing::debug!(%worker, %reason, "worker lost; retrying the request on another");
                }
                other => return other,
            }
        }
    }

    /// Waits (until `until`) for a slot on the least loaded live worker.
    async fn lease(&self, until: Instant) -> Result<Lease<'_>, SpoolError> {
        let inner = &*self.0;
        let mut place: Option<Waiting<'_>> = None;
        loop {
            let changed = inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut state = inner.state.lock().expect("spool lock");
                if state.workers.is_empty() {
                    return Err(SpoolError::NoWorkers);
                }
                if let Some(i) = pick(&mut state, inner.config.per_worker) {
                    let w = &mut state.workers[i];
                    w.outstanding += 1;
                    return Ok(Lease {
                        spool: inner,
                        session: w.session.clone(),
                        gone: w.gone.clone(),
                    });
                }
                if place.is_none() {
                    if state.waiting >= inner.config.waiting {
                        return Err(SpoolError::Busy(state.waiting));
                    }
                    state.waiting += 1;
                    place = Some(Waiting(inner));
                }
            }
            if tokio::time::timeout_at(until, changed).await.is_err() {
                return Err(SpoolError::Timeout(inner.config.deadline));
            }
        }
    }
}

/// The live worker with the fewest requests in flight (under `limit`), ties broken
/// round-robin from the cursor.
fn pick(state: &mut State, limit: usize) -> Option<usize> {
    let n = state.workers.len();
    let start = state.cursor % n;
    let mut best: Option<(usize, usize)> = None;
    for k in 0..n {
        let i = (start + k) % n;
        let w = &state.workers[i];
        if w.outstanding >= limit || w.session.is_closed() {
            continue;
        }
        if best.is_none_or(|(_, least)| w.outstanding < least) {
            best = Some((i, w.outstanding));
            if w.outstanding == 0 {
                break;
            }
        }
    }
    let (i, _) = best?;
    state.cursor = i + 1;
    Some(i)
}
