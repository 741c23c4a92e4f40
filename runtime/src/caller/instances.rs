//! The instances a caller holds sessions with, their calls in flight, and the waiting line.

use super::policy::{hash_bytes, pick, Candidate, Pick, Policy};
use super::CallError;
use crate::ids::{ProcessId, SessionId};
use crate::node::Session;
use crate::scope::Scope;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// One instance a caller can call: a publisher of a matching name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Instance {
    /// The name it publishes.
    pub name: String,
    /// Its process.
    pub process: ProcessId,
    /// The scope of the directory that matched it.
    pub at: Scope,
}

impl std::fmt::Display for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, {})", self.name, self.process.short(), self.at)
    }
}

/// An instance as its caller sees it now ([`Caller::status`](super::Caller::status)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceStatus {
    /// Which instance.
    pub instance: Instance,
    /// Calls in flight on it.
    pub in_flight: usize,
    /// Taken out of rotation (it missed a deadline, or another instance answered first while
    /// it was silent), until it answers a probe.
    pub out_of_rotation: bool,
    /// The slowest of its recent answers.
    pub recent_slowest: Option<Duration>,
}

struct Entry {
    session: Session,
    /// Shared with its leases (a call clones the pointer, not the name).
    instance: Arc<Instance>,
    outstanding: usize,
    /// Its identity hashed, for key affinity.
    identity: u64,
    /// Cancelled when it leaves: its calls in flight end at once.
    gone: CancellationToken,
    /// Out of rotation: it missed a deadline and has not answered a probe since.
    ejected: bool,
    /// How long its recent answers took.
    recent: Recent,
}

/// The answer times of an instance's last few calls.
#[derive(Default)]
struct Recent {
    times: [Duration; RECENT],
    next: usize,
    count: usize,
}

/// How many answer times are kept per instance.
const RECENT: usize = 16;

impl Recent {
    fn record(&mut self, took: Duration) {
        self.times[self.next] = took;
        self.next = (self.next + 1) % RECENT;
        self.count = (self.count + 1).min(RECENT);
    }

    /// The slowest of the last few (a p94 of 16, near enough a p99 for choosing when to
    /// send a call elsewhere too).
    fn slowest(&self) -> Option<Duration> {
        self.times[..self.count].iter().max().copied()
    }
}

/// A hedged call is also sent elsewhere after this multiple of its instance's recent slowest
/// answer...
const HEDGE_FACTOR: u32 = 3;
/// ...but never sooner than this...
const HEDGE_MIN: Duration = Duration::from_millis(2);
/// ...and, before the instance has answered anything, after this (or a quarter of the
/// call's deadline, if that is sooner).
const HEDGE_UNKNOWN: Duration = Duration::from_millis(50);
/// An ejected instance is first probed after this, then after twice as long each time...
const PROBE_FIRST: Duration = Duration::from_millis(100);
/// ...up to this.
const PROBE_MOST: Duration = Duration::from_secs(2);
/// How long a probe waits for its answer.
const PROBE_DEADLINE: Duration = Duration::from_secs(1);

struct State {
    entries: Vec<Entry>,
    /// What the policy sees of each entry (kept, so a pick allocates nothing).
    candidates: Vec<Candidate>,
    /// Where turns start next.
    cursor: usize,
    waiting: usize,
}

/// What a caller's calls share.
pub(super) struct Instances {
    state: Mutex<State>,
    /// Woken when an instance frees a slot (if anyone waits), joins or leaves.
    changed: Notify,
    /// Those in [`wait_until`](Self::wait_until) now (a freed slot wakes them too).
    watchers: AtomicUsize,
    per_instance: usize,
    waiting_limit: usize,
    /// The next call id (ids start at a random point, so two callers rarely share one).
    next_call: AtomicU64,
}

/// A slot on one instance, given back when dropped.
pub(super) struct Lease<'a> {
    instances: &'a Instances,
    pub(super) session: Session,
    pub(super) instance: Arc<Instance>,
    pub(super) gone: CancellationToken,
    /// The slot was given back already (by [`answered`](Self::answered)).
    returned: bool,
}

impl Lease<'_> {
    /// The call on this slot was answered in `took`: that is recorded and the slot given back,
    /// under one lock.
    pub(super) fn answered(mut self, took: Duration) -> Arc<Instance> {
        self.give_back(Some(took));
        self.instance.clone()
    }

    fn give_back(&mut self, took: Option<Duration>) {
        if std::mem::replace(&mut self.returned, true) {
            return;
        }
        let mut state = self.instances.lock();
        let id = self.session.id();
        if let Some(e) = state.entries.iter_mut().find(|e| e.session.id() == id) {
            e.outstanding -= 1;
            if let Some(took) = took {
                e.recent.record(took);
            }
        }
        // Read under the lock: a call that waits for room counts itself in `waiting` under it,
        // and a watcher counts itself before it first looks.
        let wake = state.waiting > 0 || self.instances.watchers.load(Ordering::SeqCst) > 0;
        drop(state);
        if wake {
            self.instances.changed.notify_waiters();
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.give_back(None);
    }
}

/// A watcher of the instances, counted off when dropped (also when it gives up).
struct Watching<'a>(&'a AtomicUsize);

impl Drop for Watching<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A place in the waiting line, given back when dropped (also when the caller gives up).
struct Waiting<'a>(&'a Instances);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.lock().waiting -= 1;
    }
}

impl Instances {
    pub(super) fn new(per_instance: usize, waiting_limit: usize) -> Instances {
        Instances {
            state: Mutex::new(State {
                entries: Vec::new(),
                candidates: Vec::new(),
                cursor: 0,
                waiting: 0,
            }),
            changed: Notify::new(),
            watchers: AtomicUsize::new(0),
            per_instance: per_instance.max(1),
            waiting_limit,
            next_call: AtomicU64::new(fastrand::u64(1..u64::MAX / 2)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing runs under the lock that could panic half-way through a change.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn next_call_id(&self) -> u64 {
        self.next_call.fetch_add(1, Ordering::Relaxed)
    }

    pub(super) fn join(&self, session: Session) {
        let mut state = self.lock();
        if state.entries.iter().any(|e| e.session.id() == session.id()) {
            return;
        }
        let instance = Arc::new(Instance {
            name: session.name().to_string(),
            process: session.peer(),
            at: session.matched_at(),
        });
        let identity = hash_bytes(format!("{}\u{0}{}", instance.name, instance.process).as_bytes());
        tracing::info!(%instance, instances = state.entries.len() + 1, "instance joined");
        state.entries.push(Entry {
            session,
            instance,
            outstanding: 0,
            identity,
            gone: CancellationToken::new(),
            ejected: false,
            recent: Recent::default(),
        });
        drop(state);
        self.changed.notify_waiters();
    }

    pub(super) fn leave(&self, session: SessionId) -> bool {
        let mut state = self.lock();
        let Some(i) = state.entries.iter().position(|e| e.session.id() == session) else {
            return false;
        };
        let entry = state.entries.remove(i);
        drop(state);
        tracing::info!(instance = %entry.instance, "instance left");
        entry.gone.cancel();
        self.changed.notify_waiters();
        true
    }

    pub(super) fn list(&self) -> Vec<Instance> {
        let state = self.lock();
        state
            .entries
            .iter()
            .filter(|e| !e.session.is_closed())
            .map(|e| (*e.instance).clone())
            .collect()
    }

    pub(super) fn status(&self) -> Vec<InstanceStatus> {
        let state = self.lock();
        state
            .entries
            .iter()
            .filter(|e| !e.session.is_closed())
            .map(|e| InstanceStatus {
                instance: (*e.instance).clone(),
                in_flight: e.outstanding,
                out_of_rotation: e.ejected,
                recent_slowest: e.recent.slowest(),
            })
            .collect()
    }

    pub(super) fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub(super) fn waiting(&self) -> usize {
        self.lock().waiting
    }

    /// Waits (until `until`) for at least `count` open instances; how many there are.
    pub(super) async fn wait_for(&self, count: usize, until: Instant) -> usize {
        let mut open = 0;
        self.wait_until(until, |now| {
            open = now.len();
            open >= count
        })
        .await;
        open
    }

    /// Waits (until `until`) for `done` to hold of the instances; whether it did.
    pub(super) async fn wait_until(
        &self,
        until: Instant,
        mut done: impl FnMut(&[InstanceStatus]) -> bool,
    ) -> bool {
        self.watchers.fetch_add(1, Ordering::SeqCst);
        let _watching = Watching(&self.watchers);
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if done(&self.status()) {
                return true;
            }
            if tokio::time::timeout_at(until, changed).await.is_err() {
                return done(&self.status());
            }
        }
    }

    /// A slot on the instance `policy` picks now, passing over the sessions in `exclude`;
    /// `Ok(None)` when the call must wait for room (or for an ejected instance's return).
    pub(super) fn try_lease(
        &self,
        policy: Policy,
        key: Option<&str>,
        exclude: &[SessionId],
    ) -> Result<Option<Lease<'_>>, CallError> {
        let mut state = self.lock();
        self.pick_in(&mut state, policy, key, exclude)
    }

    fn pick_in(
        &self,
        state: &mut State,
        policy: Policy,
        key: Option<&str>,
        exclude: &[SessionId],
    ) -> Result<Option<Lease<'_>>, CallError> {
        if state.entries.is_empty() {
            return Err(CallError::NoInstances);
        }
        self.fill_candidates(state, exclude);
        let ejected_waitable = state
            .entries
            .iter()
            .any(|e| e.ejected && !e.session.is_closed() && !exclude.contains(&e.session.id()));
        match pick(&state.candidates, policy, key, &mut state.cursor) {
            Pick::Instance(i) => {
                let e = &mut state.entries[i];
                e.outstanding += 1;
                Ok(Some(Lease {
                    instances: self,
                    session: e.session.clone(),
                    instance: e.instance.clone(),
                    gone: e.gone.clone(),
                    returned: false,
                }))
            }
            // Every instance it may go to is out of rotation: wait for one to come back.
            Pick::None if ejected_waitable => Ok(None),
            Pick::None => Err(CallError::NoInstances),
            Pick::Wait => Ok(None),
        }
    }

    /// Waits (until `until`) for a slot on the instance `policy` picks, passing over the
    /// sessions in `exclude`.
    pub(super) async fn lease(
        &self,
        policy: Policy,
        key: Option<&str>,
        exclude: &[SessionId],
        until: Instant,
        deadline: Duration,
    ) -> Result<Lease<'_>, CallError> {
        let mut place: Option<Waiting<'_>> = None;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut state = self.lock();
                if let Some(lease) = self.pick_in(&mut state, policy, key, exclude)? {
                    return Ok(lease);
                }
                if place.is_none() {
                    if state.waiting >= self.waiting_limit {
                        return Err(CallError::Busy(state.waiting));
                    }
                    state.waiting += 1;
                    place = Some(Waiting(self));
                    drop(state);
                    // For those who watch the line (not the other waiting calls, which the
                    // line's growth gives nothing to do).
                    if self.watchers.load(Ordering::SeqCst) > 0 {
                        self.changed.notify_waiters();
                    }
                }
            }
            if tokio::time::timeout_at(until, changed).await.is_err() {
                return Err(CallError::Timeout(deadline));
            }
        }
    }

    /// How long a hedged call waits for `session` before sending the call elsewhere too.
    pub(super) fn hedge_after(&self, session: SessionId, deadline: Duration) -> Duration {
        let state = self.lock();
        let slowest = state
            .entries
            .iter()
            .find(|e| e.session.id() == session)
            .and_then(|e| e.recent.slowest());
        let after = match slowest {
            Some(slowest) => (slowest * HEDGE_FACTOR).max(HEDGE_MIN),
            None => HEDGE_UNKNOWN,
        };
        after.min(deadline / 4)
    }

    /// `session` missed a deadline: out of rotation until it answers a probe.
    pub(super) fn missed(self: &Arc<Self>, session: SessionId) {
        let mut state = self.lock();
        let Some(e) = state.entries.iter_mut().find(|e| e.session.id() == session) else {
            return;
        };
        if e.ejected {
            return;
        }
        e.ejected = true;
        tracing::warn!(instance = %e.instance, "instance out of rotation: it missed a deadline");
        let (probed, gone) = (e.session.clone(), e.gone.clone());
        drop(state);
        self.changed.notify_waiters();
        tokio::spawn(probe(Arc::downgrade(self), probed, gone));
    }

    /// `session` answered a probe: back in rotation.
    fn readmit(&self, session: SessionId) {
        let mut state = self.lock();
        if let Some(e) = state.entries.iter_mut().find(|e| e.session.id() == session) {
            e.ejected = false;
            tracing::info!(instance = %e.instance, "instance back in rotation: it answered a probe");
        }
        drop(state);
        self.changed.notify_waiters();
    }

    /// A slot on every open instance at once (for a call to all): an instance at its bound
    /// gets an error entry instead of a wait.
    pub(super) fn lease_each(&self) -> Vec<Result<Lease<'_>, (Instance, CallError)>> {
        let mut state = self.lock();
        let per_instance = self.per_instance;
        let waiting = state.waiting;
        state
            .entries
            .iter_mut()
            .filter(|e| !e.session.is_closed())
            .map(|e| {
                if e.outstanding >= per_instance {
                    return Err(((*e.instance).clone(), CallError::Busy(waiting)));
                }
                e.outstanding += 1;
                Ok(Lease {
                    instances: self,
                    session: e.session.clone(),
                    instance: e.instance.clone(),
                    gone: e.gone.clone(),
                    returned: false,
                })
            })
            .collect()
    }

    fn fill_candidates(&self, state: &mut State, exclude: &[SessionId]) {
        state.candidates.clear();
        state.candidates.extend(state.entries.iter().map(|e| {
            let live = !e.session.is_closed() && !e.ejected && !exclude.contains(&e.session.id());
            Candidate {
                at: e.instance.at,
                outstanding: e.outstanding,
                eligible: live && e.outstanding < self.per_instance,
                live,
                identity: e.identity,
            }
        }));
    }
}

/// Probes an ejected instance, less and less often, until it answers (and is let back in) or
/// leaves.
async fn probe(instances: Weak<Instances>, session: Session, gone: CancellationToken) {
    let mut delay = PROBE_FIRST;
    loop {
        tokio::select! {
            _ = gone.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        let answered = tokio::select! {
            _ = gone.cancelled() => return,
            answered = session.probe(PROBE_DEADLINE) => answered,
        };
        let Some(instances) = instances.upgrade() else {
            return;
        };
        if answered {
            instances.readmit(session.id());
            return;
        }
        delay = (delay * 2).min(PROBE_MOST);
    }
}
