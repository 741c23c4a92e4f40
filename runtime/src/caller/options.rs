//! How calls are made: a caller's bounds and defaults, and one call's choices.

use super::Policy;
use std::time::Duration;

/// Whether a request may be run twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Idempotence {
    /// Run at most once: if its instance goes before answering, the call fails with
    /// [`CallError::InstanceLost`]. The default.
    #[default]
    Once,
    /// Safe to run again: if its instance goes before answering, it is tried on another.
    Idempotent,
}

/// A caller's bounds and defaults.
#[derive(Debug, Clone)]
pub struct CallerConfig {
    /// Calls in flight on one instance, at most.
    pub per_instance: usize,
    /// Calls waiting for room, at most; more fail at once with [`CallError::Busy`].
    pub waiting: usize,
    /// How long a call may take (waiting included), unless the call says otherwise.
    pub deadline: Duration,
    /// The policy of calls that name none.
    pub policy: Policy,
    /// Whether an idempotent call whose instance is slow is sent to another one too (see the
    /// [module's notes on hedging](super)); on by default.
    pub hedging: bool,
}

impl Default for CallerConfig {
    fn default() -> Self {
        CallerConfig {
            per_instance: 64,
            waiting: 1024,
            deadline: Duration::from_secs(5),
            policy: Policy::NearestFirst,
            hedging: true,
        }
    }
}

/// How one call is made; what it leaves out comes from the [`CallerConfig`].
#[derive(Debug, Clone, Default)]
pub struct Call {
    pub(super) policy: Option<Policy>,
    pub(super) key: Option<String>,
    pub(super) idempotence: Idempotence,
    pub(super) retries: Option<usize>,
    pub(super) deadline: Option<Duration>,
}

impl Call {
    /// A call with the caller's defaults: not idempotent, the caller's policy and deadline.
    pub fn new() -> Call {
        Call::default()
    }

    /// Chooses the instance by `policy`.
    pub fn policy(mut self, policy: Policy) -> Call {
        self.policy = Some(policy);
        self
    }

    /// Sends the call to the instance that owns `key` ([`Policy::KeyAffinity`]).
    pub fn key(mut self, key: impl Into<String>) -> Call {
        self.key = Some(key.into());
        self.policy = Some(Policy::KeyAffinity);
        self
    }

    /// Marks the call safe to run twice: it is tried on another instance if its instance
    /// goes before answering (once, unless [`retries`](Self::retries) says otherwise).
    pub fn idempotent(mut self) -> Call {
        self.idempotence = Idempotence::Idempotent;
        self
    }

    /// Marks the call's idempotence.
    pub fn idempotence(mut self, idempotence: Idempotence) -> Call {
        self.idempotence = idempotence;
        self
    }

    /// How many further tries, on other instances, an idempotent call gets (default 1).
    pub fn retries(mut self, retries: usize) -> Call {
        self.retries = Some(retries);
        self
    }

    /// How long the call may take, waiting for room included.
    pub fn deadline(mut self, deadline: Duration) -> Call {
        self.deadline = Some(deadline);
        self
    }

    /// The policy this call goes by (key affinity without a key is nearest-first).
    pub(super) fn policy_or(&self, default: Policy) -> Policy {
        match (self.policy.unwrap_or(default), &self.key) {
            (Policy::KeyAffinity, None) => Policy::NearestFirst,
            (policy, _) => policy,
        }
    }

    pub(super) fn tries(&self) -> usize {
        match self.idempotence {
            Idempotence::Once => 1,
            Idempotence::Idempotent => 1 + self.retries.unwrap_or(1),
        }
    }
}
