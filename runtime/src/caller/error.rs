//! Why a call got no answer.

use crate::node::{DecodeError, SendError};
use std::time::Duration;

/// Why a call got no answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No instance matches (yet).
    #[error("no instance is available")]
    NoInstances,
    /// Every instance the call could go to is at its bound, and the waiting line is full.
    #[error("every instance is busy and {0} calls are already waiting")]
    Busy(usize),
    /// The deadline passed (waiting for room, or for the answer).
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The instance went while the call was in flight (and it was not tried elsewhere).
    #[error("{instance} went before it answered ({reason})")]
    InstanceLost {
        /// The instance's published name.
        instance: String,
        /// What happened to it.
        reason: String,
    },
    /// The request could not be sent (it did not encode, or is over the frame limit).
    #[error("could not send the request: {0}")]
    Send(#[source] SendError),
    /// The instance answered that it cannot answer: it could not decode the request, or its
    /// answer could not be sent.
    #[error("{instance} failed the request: {reason}")]
    Failed {
        /// The instance's published name.
        instance: String,
        /// What it said.
        reason: String,
    },
    /// The answer was not of the type expected.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The call was cancelled before it ended (its runtime is shutting down).
    #[error("the call was cancelled")]
    Cancelled,
    /// Fewer instances than asked for came within the deadline ([`Caller::wait_for`]).
    #[error("{found} of {wanted} instances within {} ms", deadline.as_millis())]
    TooFew {
        /// How many were asked for.
        wanted: usize,
        /// How many there were at the deadline.
        found: usize,
        /// How long it waited.
        deadline: Duration,
    },
}
