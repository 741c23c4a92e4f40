//! Calls to every instance a search matches: to one (by a [`Policy`]), to all, or one-way.
//!
//! A [`Caller`] holds a session with each instance (publisher) its subscription finds:
//! [`Node::caller`](crate::Node::caller) makes one for a search, or [`Caller::feed`] wires one
//! to a subscription of your own, or call [`join`](Caller::join) and
//! [`leave`](Caller::leave) yourself.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use layer_cake::caller::{Call, CallerConfig, Policy};
//! use layer_cake::{Node, Scope};
//!
//! #[derive(serde::Serialize)]
//! struct Xy { x: usize, y: usize }
//! layer_cake::message!(Xy);
//!
//! let node = Node::start().await?;
//! let workers = node.caller("worker:.*", Scope::Host, CallerConfig::default()).await?;
//! workers.wait_for(2, std::time::Duration::from_secs(5)).await?;
//! // The nearest worker, then the least busy.
//! let table: Vec<Vec<f64>> = workers.one(&Xy { x: 2, y: 2 }, &Call::new()).await?;
//! // The worker that owns key "user-7", tried on another if it goes before answering.
//! let call = Call::new().key("user-7").idempotent().retries(2);
//! let table: Vec<Vec<f64>> = workers.one(&Xy { x: 2, y: 2 }, &call).await?;
//! // Every worker, one answer each.
//! for answer in workers.all::<_, Vec<Vec<f64>>>(&Xy { x: 1, y: 1 }, &Call::new()).await {
//!     println!("{}: {:?}", answer.instance.name, answer.result.map(|t| t.len()));
//! }
//! # Ok(()) }
//! ```
//!
//! **Bounds.** At most [`CallerConfig::per_instance`] calls are in flight on one instance; a
//! call that finds its instance (or every instance) at the bound waits, but at most
//! [`CallerConfig::waiting`] calls wait: beyond, a call fails at once with
//! [`CallError::Busy`]. With no instance it fails at once with [`CallError::NoInstances`].
//! Every call, waiting included, ends by its deadline with [`CallError::Timeout`].
//!
//! **Retries.** A call marked [`idempotent`](Call::idempotent) whose instance goes before
//! answering (its session ends, or it drops the request unprocessed) is tried again on
//! another instance, up to [`Call::retries`] times, under the same deadline. Every try
//! carries the same call id, which the handler sees ([`Incoming::call_id`]); a call not
//! marked idempotent is never tried twice.
//!
//! **Later and periodic.** [`Caller::later`] makes a call at a given time and
//! [`Caller::every`] every period, until their handles are dropped.
//!
//! **Hedging and ejection.** An idempotent call whose instance has not answered within a few
//! times its recent slowest answer (2 ms at least, 50 ms before it has answered anything,
//! never more than a quarter of the deadline) is sent to another instance too; the first
//! answer wins and the other try is dropped. An instance beaten that way (its try still
//! unanswered), or that misses a call's deadline, is taken out of rotation, and let back in once it answers a probe (after
//! 100 ms, then ever less often, up to every 2 s). A frozen instance so costs a hedged call a
//! few milliseconds, and a plain call the first miss only.
//!
//! [`Incoming::call_id`]: crate::node::Incoming::call_id

mod error;
mod instances;
mod options;
mod policy;
mod scheduled;

pub use error::CallError;
pub use instances::{Instance, InstanceStatus};
pub use options::{Call, CallerConfig, Idempotence};
pub use policy::Policy;
pub use scheduled::{Every, Later};

use crate::ids::SessionId;
use crate::message::{Message, Received};
use crate::node::{RawReply, RequestError, SendError, Session, Subscription, SubscriptionEvent};
use crate::wire::peer::FailKind;
use futures_util::StreamExt;
use instances::{Instances, Lease};
use serde::Serialize;
use serde_json::value::RawValue;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::time::Instant;

/// One instance's answer to a call to all of them.
#[derive(Debug)]
pub struct Answer<R> {
    /// Who answered (or failed to).
    pub instance: Instance,
    /// The answer, or why there is none.
    pub result: Result<R, CallError>,
}

/// Calls to the instances (publishers) a search matches. Cheap to clone; every clone is the
/// same caller.
#[derive(Clone)]
pub struct Caller(Arc<Inner>);

struct Inner {
    config: CallerConfig,
    instances: Arc<Instances>,
    /// The task that keeps the instances in step with a subscription, ended with the caller.
    feed: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(feed) = self.feed.get_mut().ok().and_then(Option::take) {
            feed.abort();
        }
    }
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("instances", &self.0.instances.len())
            .field("waiting", &self.0.instances.waiting())
            .finish()
    }
}

impl Caller {
    /// A caller with no instances yet.
    pub fn new(config: CallerConfig) -> Caller {
        Caller(Arc::new(Inner {
            instances: Arc::new(Instances::new(config.per_instance, config.waiting)),
            config,
            feed: std::sync::Mutex::new(None),
        }))
    }

    /// Adds an instance (a session with a publisher); the same session twice is one.
    pub fn join(&self, session: Session) {
        self.0.instances.join(session);
    }

    /// Removes an instance; its calls in flight fail (or are tried elsewhere). Returns whether
    /// it was there.
    pub fn leave(&self, session: crate::SessionId) -> bool {
        self.0.instances.leave(session)
    }

    /// The instances now, in the order they joined.
    pub fn instances(&self) -> Vec<Instance> {
        self.0.instances.list()
    }

    /// Each instance now, with its calls in flight and whether it is out of rotation.
    pub fn status(&self) -> Vec<InstanceStatus> {
        self.0.instances.status()
    }

    /// How many calls are waiting for room now.
    pub fn waiting(&self) -> usize {
        self.0.instances.waiting()
    }

    /// Keeps the instances in step with `subscription`: each `Available` session joins, each
    /// `Dropped` one leaves, until the subscription ends or the caller is dropped.
    pub fn feed(&self, subscription: Subscription) {
        let inner = Arc::downgrade(&self.0);
        let task = tokio::spawn(feed(inner, subscription));
        let old = self
            .0
            .feed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(task.abort_handle());
        if let Some(old) = old {
            old.abort();
        }
    }

    /// Waits until at least `count` instances are available, at most `deadline`; returns how
    /// many there are.
    pub async fn wait_for(&self, count: usize, deadline: Duration) -> Result<usize, CallError> {
        let found = self.0.instances.wait_for(count, Instant::now() + deadline).await;
        if found >= count {
            Ok(found)
        } else {
            Err(CallError::TooFew {
                wanted: count,
                found,
                deadline,
            })
        }
    }

    /// Waits until `done` holds of the instances' [`status`](Self::status), at most
    /// `deadline`; whether it did. `done` is asked again at each change: an instance joins or
    /// leaves, a call ends or starts waiting, an instance goes out of or back into rotation.
    ///
    /// ```no_run
    /// # async fn f(caller: &layer_cake::caller::Caller) {
    /// use std::time::Duration;
    /// // Until no instance is out of rotation.
    /// let healed = caller
    ///     .wait_until(Duration::from_secs(5), |all| all.iter().all(|i| !i.out_of_rotation))
    ///     .await;
    /// # }
    /// ```
    pub async fn wait_until(&self, deadline: Duration, done: impl FnMut(&[InstanceStatus]) -> bool) -> bool {
        self.0.instances.wait_until(Instant::now() + deadline, done).await
    }

    /// Sends `request` to one instance, chosen by the call's policy, and waits for its answer.
    pub async fn one<Q, R>(&self, request: &Q, call: &Call) -> Result<R, CallError>
    where
        Q: Message + ?Sized,
        R: Received,
    {
        let (_, reply) = self.one_as(Q::NAME, request, call).await?;
        Ok(reply.decode()?)
    }

    /// [`one`](Self::one) for a message already encoded as JSON, answered undecoded, with the
    /// instance that answered.
    pub async fn one_raw(
        &self,
        type_name: &str,
        body: &RawValue,
        call: &Call,
    ) -> Result<(Arc<Instance>, RawReply), CallError> {
        self.one_as(type_name, body, call).await
    }

    async fn one_as<'a, T: Serialize + ?Sized>(
        &'a self,
        type_name: &'a str,
        body: &'a T,
        call: &'a Call,
    ) -> Result<(Arc<Instance>, RawReply), CallError> {
        let deadline = call.deadline.unwrap_or(self.0.config.deadline);
        let until = Instant::now() + deadline;
        let policy = call.policy_or(self.0.config.policy);
        let key = call.key.as_deref();
        let tries = call.tries();
        let hedged = self.0.config.hedging && call.idempotence == Idempotence::Idempotent;
        let id = if tries > 1 {
            self.0.instances.next_call_id()
        } else {
            0
        };
        let instances: &Arc<Instances> = &self.0.instances;
        if !hedged {
            return one_try_at_a_time(
                instances,
                (type_name, body),
                (policy, key),
                tries,
                id,
                until,
                deadline,
            )
            .await;
        }
        let attempt = |lease: Lease<'a>| async move {
            let started = Instant::now();
            let outcome = ask(&lease, type_name, body, until, deadline, id).await;
            (lease, started, outcome)
        };
        let mut tried = Vec::new();
        let mut running = futures_util::stream::FuturesUnordered::new();
        // The instances of the tries still running.
        let mut outstanding: Vec<SessionId> = Vec::new();
        let mut last: Option<CallError> = None;
        // When the newest try has taken too long (a hedged call tries elsewhere too).
        let hedge = tokio::time::sleep_until(until);
        tokio::pin!(hedge);
        loop {
            if running.is_empty() {
                if tried.len() >= tries {
                    return Err(last.unwrap_or(CallError::Timeout(deadline)));
                }
                let lease = match instances.lease(policy, key, &tried, until, deadline).await {
                    Ok(lease) => lease,
                    // Tried everywhere: say what happened to the last try.
                    Err(CallError::NoInstances) if last.is_some() => return Err(last.expect("a try failed")),
                    Err(e) => return Err(e),
                };
                let session = lease.session.id();
                tried.push(session);
                outstanding.push(session);
                if hedged {
                    hedge
                        .as_mut()
                        .reset(Instant::now() + instances.hedge_after(session, deadline));
                }
                running.push(attempt(lease));
            }
            tokio::select! {
                biased;
                Some((lease, started, outcome)) = running.next() => {
                    let session = lease.session.id();
                    outstanding.retain(|s| *s != session);
                    match outcome {
                        Ok(reply) => {
                            let instance = lease.answered(started.elapsed());
                            // A try that another instance beat, still unanswered, missed its
                            // time: that instance goes out of rotation until it answers a probe.
                            for slow in &outstanding {
                                instances.missed(*slow);
                            }
                            return Ok((instance, reply));
                        }
                        Err(e) => {
                            if matches!(e, CallError::Timeout(_)) {
                                instances.missed(session);
                            }
                            let retry = matches!(e, CallError::InstanceLost { .. });
                            tracing::debug!(error = %e, retry, "a try of a call failed");
                            if !retry && running.is_empty() {
                                return Err(e);
                            }
                            last = Some(e);
                        }
                    }
                },
                () = &mut hedge, if hedged && !running.is_empty() => {
                    // The newest try is slow: the call goes to another instance too, if one is
                    // free now and tries are left.
                    hedge.as_mut().reset(until);
                    if tried.len() < tries {
                        if let Ok(Some(lease)) = instances.try_lease(policy, key, &tried) {
                            let session = lease.session.id();
                            tracing::debug!(instance = %lease.instance, "hedging a slow call");
                            tried.push(session);
                            outstanding.push(session);
                            hedge.as_mut().reset(Instant::now() + instances.hedge_after(session, deadline));
                            running.push(attempt(lease));
                        }
                    }
                }
            }
        }
    }

    /// Sends `request` to every instance and waits for each answer, all under one deadline: a
    /// slow or dead instance costs only its own entry. One entry per instance, in the order
    /// the instances joined.
    pub async fn all<Q, R>(&self, request: &Q, call: &Call) -> Vec<Answer<R>>
    where
        Q: Message + ?Sized,
        R: Received,
    {
        self.all_as(Q::NAME, request, call)
            .await
            .into_iter()
            .map(|a| Answer {
                instance: a.instance,
                result: a.result.and_then(|reply| Ok(reply.decode()?)),
            })
            .collect()
    }

    /// [`all`](Self::all) for a message already encoded as JSON, answered undecoded.
    pub async fn all_raw(&self, type_name: &str, body: &RawValue, call: &Call) -> Vec<Answer<RawReply>> {
        self.all_as(type_name, body, call).await
    }

    async fn all_as<T: Serialize + ?Sized>(
        &self,
        type_name: &str,
        body: &T,
        call: &Call,
    ) -> Vec<Answer<RawReply>> {
        let deadline = call.deadline.unwrap_or(self.0.config.deadline);
        let until = Instant::now() + deadline;
        self.each(|lease| async move { ask(&lease, type_name, body, until, deadline, 0).await })
            .await
    }

    /// Runs `f` on a slot of every open instance at once, one answer each (an instance at its
    /// bound gets an error entry, not a wait).
    async fn each<'a, T, F, Fut>(&'a self, f: F) -> Vec<Answer<T>>
    where
        F: Fn(Lease<'a>) -> Fut,
        Fut: std::future::Future<Output = Result<T, CallError>>,
    {
        let runs = self.0.instances.lease_each().into_iter().map(|lease| {
            let run = lease.map(|lease| {
                let instance = lease.instance.clone();
                (instance, f(lease))
            });
            async move {
                match run {
                    Err((instance, e)) => Answer {
                        instance,
                        result: Err(e),
                    },
                    Ok((instance, run)) => Answer {
                        result: run.await,
                        instance: (*instance).clone(),
                    },
                }
            }
        });
        futures_util::future::join_all(runs).await
    }

    /// Sends `message` one way to one instance, chosen by the call's policy; returns which
    /// (shared with the caller's table: a cast copies no name).
    /// Casts made one after another go out together (one write for many).
    pub async fn cast<Q: Message + ?Sized>(
        &self,
        message: &Q,
        call: &Call,
    ) -> Result<Arc<Instance>, CallError> {
        self.cast_as(Q::NAME, message, call).await
    }

    /// [`cast`](Self::cast) for a message already encoded as JSON.
    pub async fn cast_raw(
        &self,
        type_name: &str,
        body: &RawValue,
        call: &Call,
    ) -> Result<Arc<Instance>, CallError> {
        self.cast_as(type_name, body, call).await
    }

    async fn cast_as<T: Serialize + ?Sized>(
        &self,
        type_name: &str,
        body: &T,
        call: &Call,
    ) -> Result<Arc<Instance>, CallError> {
        let deadline = call.deadline.unwrap_or(self.0.config.deadline);
        let until = Instant::now() + deadline;
        let policy = call.policy_or(self.0.config.policy);
        let lease = self
            .0
            .instances
            .lease(policy, call.key.as_deref(), &[], until, deadline)
            .await?;
        lease
            .session
            .cast_as(type_name, body)
            .await
            .map_err(CallError::Send)?;
        Ok(lease.instance.clone())
    }

    /// Sends `message` one way to every instance; one entry per instance.
    pub async fn cast_all<Q: Message + ?Sized>(&self, message: &Q) -> Vec<Answer<()>> {
        self.each(|lease| async move {
            lease
                .session
                .cast_as(Q::NAME, message)
                .await
                .map_err(CallError::Send)
        })
        .await
    }
}

/// One try of a call on the instance of `lease`, within `until`.
async fn ask<T: Serialize + ?Sized>(
    lease: &Lease<'_>,
    type_name: &str,
    body: &T,
    until: Instant,
    deadline: Duration,
    call: u64,
) -> Result<RawReply, CallError> {
    let left = until.saturating_duration_since(Instant::now());
    tokio::select! {
        biased;
        r = lease.session.request_in_call(type_name, body, left, call) => r.map_err(|e| request_error(e, lease, deadline)),
        _ = lease.gone.cancelled() => Err(lost(lease, "it left")),
    }
}

/// Joins each `Available` session of `subscription`, lets each `Dropped` one leave.
async fn feed(inner: Weak<Inner>, mut subscription: Subscription) {
    while let Some(event) = subscription.next().await {
        let Some(inner) = inner.upgrade() else { return };
        match event {
            SubscriptionEvent::Available(session) => inner.instances.join(session),
            SubscriptionEvent::Dropped(d) => {
                inner.instances.leave(d.session);
            }
            SubscriptionEvent::Message(_) => {}
        }
    }
}

fn lost(lease: &Lease<'_>, reason: &str) -> CallError {
    CallError::InstanceLost {
        instance: lease.instance.name.clone(),
        reason: reason.to_string(),
    }
}

/// What a session's request error means for a call.
fn request_error(e: RequestError, lease: &Lease<'_>, deadline: Duration) -> CallError {
    match e {
        RequestError::Timeout(_) => CallError::Timeout(deadline),
        RequestError::Ended | RequestError::Send(SendError::Closed) => lost(lease, "its connection ended"),
        RequestError::Send(e) => CallError::Send(e),
        // Not processed: as if the instance had gone (an idempotent call is tried elsewhere).
        RequestError::Failed {
            kind: FailKind::Unanswered,
            reason,
        } => CallError::InstanceLost {
            instance: lease.instance.name.clone(),
            reason,
        },
        RequestError::Failed { reason, .. } => CallError::Failed {
            instance: lease.instance.name.clone(),
            reason,
        },
        RequestError::Decode(e) => CallError::Decode(e),
    }
}

/// A call that is not hedged: one try at a time, each on an instance not yet tried, until one
/// answers or the tries run out. (No set of tries running at once, so nothing is allocated
/// for a call that succeeds the first time.)
async fn one_try_at_a_time<T: Serialize + ?Sized>(
    instances: &Arc<Instances>,
    (type_name, body): (&str, &T),
    (policy, key): (Policy, Option<&str>),
    tries: usize,
    id: u64,
    until: Instant,
    deadline: Duration,
) -> Result<(Arc<Instance>, RawReply), CallError> {
    let mut tried: Vec<SessionId> = Vec::new();
    let mut last: Option<CallError> = None;
    while tried.len() < tries {
        let lease = match instances.lease(policy, key, &tried, until, deadline).await {
            Ok(lease) => lease,
            // Tried everywhere: say what happened to the last try.
            Err(CallError::NoInstances) if last.is_some() => break,
            Err(e) => return Err(e),
        };
        let session = lease.session.id();
        let started = Instant::now();
        match ask(&lease, type_name, body, until, deadline, id).await {
            Ok(reply) => return Ok((lease.answered(started.elapsed()), reply)),
            Err(e) => {
                if matches!(e, CallError::Timeout(_)) {
                    instances.missed(session);
                }
                let retry = matches!(e, CallError::InstanceLost { .. });
                tracing::debug!(error = %e, retry, "a try of a call failed");
                if !retry {
                    return Err(e);
                }
                tried.push(session);
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or(CallError::Timeout(deadline)))
}
