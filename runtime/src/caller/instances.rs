//! The instances a caller holds sessions with, their calls in flight, and the waiting line.

use super::policy::{hash_bytes, pick, Candidate, Pick, Policy};
use super::CallError;
use crate::ids::{ProcessId, SessionId};
use crate::node::Session;
use crate::scope::Scope;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
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

struct Entry {
    session: Session,
    instance: Instance,
    outstanding: usize,
    /// Its identity hashed, for key affinity.
    identity: u64,
    /// Cancelled when it leaves: its calls in flight end at once.
    gone: CancellationToken,
}

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
    /// Woken when an instance frees a slot, joins or leaves.
    changed: Notify,
    per_instance: usize,
    waiting_limit: usize,
    /// The next call id (ids start at a random point, so two callers rarely share one).
    next_call: AtomicU64,
}

/// A slot on one instance, given back when dropped.
pub(super) struct Lease<'a> {
    instances: &'a Instances,
    pub(super) session: Session,
    pub(super) instance: Instance,
    pub(super) gone: CancellationToken,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut state = self.instances.lock();
        let id = self.session.id();
        if let Some(e) = state.entries.iter_mut().find(|e| e.session.id() == id) {
            e.outstanding -= 1;
        }
        drop(state);
        self.instances.changed.notify_waiters();
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
        let instance = Instance {
            name: session.name().to_string(),
            process: session.peer(),
            at: session.matched_at(),
        };
        let identity = hash_bytes(format!("{}\u{0}{}", instance.name, instance.process).as_bytes());
        tracing::info!(%instance, instances = state.entries.len() + 1, "instance joined");
        state.entries.push(Entry {
            session,
            instance,
            outstanding: 0,
            identity,
            gone: CancellationToken::new(),
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
            .map(|e| e.instance.clone())
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
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let open = self.list().len();
            if open >= count {
                return open;
            }
            if tokio::time::timeout_at(until, changed).await.is_err() {
                return self.list().len();
            }
        }
    }

    /// Waits (until `until`) for a slot on the instance `policy` picks, passing over the
    /// sessions in `exclude` while any other can take the call.
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
                let state = &mut *state;
                if state.entries.is_empty() {
                    return Err(CallError::NoInstances);
                }
                self.fill_candidates(state, exclude);
                if !state.candidates.iter().any(|c| c.live) && !exclude.is_empty() {
                    // Every instance was tried: a call that must go elsewhere has nowhere to go.
                    return Err(CallError::NoInstances);
                }
                match pick(&state.candidates, policy, key, &mut state.cursor) {
                    Pick::Instance(i) => {
                        let e = &mut state.entries[i];
                        e.outstanding += 1;
                        return Ok(Lease {
                            instances: self,
                            session: e.session.clone(),
                            instance: e.instance.clone(),
                            gone: e.gone.clone(),
                        });
                    }
                    Pick::None => return Err(CallError::NoInstances),
                    Pick::Wait => {}
                }
                if place.is_none() {
                    if state.waiting >= self.waiting_limit {
                        return Err(CallError::Busy(state.waiting));
                    }
                    state.waiting += 1;
                    place = Some(Waiting(self));
                }
            }
            if tokio::time::timeout_at(until, changed).await.is_err() {
                return Err(CallError::Timeout(deadline));
            }
        }
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
                    return Err((e.instance.clone(), CallError::Busy(waiting)));
                }
                e.outstanding += 1;
                Ok(Lease {
                    instances: self,
                    session: e.session.clone(),
                    instance: e.instance.clone(),
                    gone: e.gone.clone(),
                })
            })
            .collect()
    }

    fn fill_candidates(&self, state: &mut State, exclude: &[SessionId]) {
        state.candidates.clear();
        state.candidates.extend(state.entries.iter().map(|e| {
            let live = !e.session.is_closed() && !exclude.contains(&e.session.id());
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
