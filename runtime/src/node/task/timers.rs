//! The node task's deadlines, each set when its cause happens and fired by tokio's clock (so a
//! test can pause and advance time): no periodic scan of every publication and session.
//!
//! A timer is not taken back when what it guards ends early (a session opened in time); when
//! it fires, the task checks whether it still applies. Each is bounded by what set it: one per
//! publish, one per session opened, one retry and one standing re-send at a time.

use crate::ids::{PubId, SessionId};
use std::future::poll_fn;
use std::task::Poll;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::time::DelayQueue;

/// How often routes whose sessions failed are tried again, while any are without a session.
pub(super) const RETRY: Duration = Duration::from_secs(1);

/// How soon a change of standing the application's queue had no room for is offered again.
pub(super) const STATUS_AGAIN: Duration = Duration::from_millis(100);

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Due {
    /// A `publish` caller still waiting for the parent directory is answered by the process.
    PublishAnswer(PubId),
    /// A session the publisher has not accepted by now is given up.
    OpenDeadline(SessionId),
    /// Routes without a session are tried again.
    Retry,
    /// A publication's newest standing is offered to its application again.
    Status(PubId),
}

/// The pending deadlines.
#[derive(Default)]
pub(super) struct Timers {
    queue: DelayQueue<Due>,
    retry_armed: bool,
    status_armed: std::collections::HashSet<PubId>,
}

impl Timers {
    /// Fires `due` at `when`.
    pub(super) fn at(&mut self, when: Instant, due: Due) {
        self.queue.insert_at(due, when);
    }

    /// Tries failed routes again in [`RETRY`], unless that is already due.
    pub(super) fn retry_soon(&mut self) {
        if !std::mem::replace(&mut self.retry_armed, true) {
            self.queue.insert(Due::Retry, RETRY);
        }
    }

    /// Offers `publication`'s standing again in [`STATUS_AGAIN`], unless that is already due.
    pub(super) fn status_soon(&mut self, publication: PubId) {
        if self.status_armed.insert(publication) {
            self.queue.insert(Due::Status(publication), STATUS_AGAIN);
        }
    }

    /// The next deadline to pass; pending while there is none (a timer set later, by the same
    /// task, is seen the next time this is polled).
    pub(super) async fn next(&mut self) -> Due {
        let due = poll_fn(|cx| match self.queue.poll_expired(cx) {
            Poll::Ready(Some(expired)) => Poll::Ready(expired.into_inner()),
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        })
        .await;
        match due {
            Due::Retry => self.retry_armed = false,
            Due::Status(id) => {
                self.status_armed.remove(&id);
            }
            Due::PublishAnswer(_) | Due::OpenDeadline(_) => {}
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn deadlines_fire_in_order_on_the_paused_clock() {
        let mut timers = Timers::default();
        let start = Instant::now();
        let (a, b) = (SessionId(1), SessionId(2));
        timers.at(start + Duration::from_secs(3), Due::OpenDeadline(b));
        timers.at(start + Duration::from_secs(1), Due::OpenDeadline(a));
        timers.retry_soon();
        timers.retry_soon();
        assert_eq!(timers.next().await, Due::OpenDeadline(a));
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert_eq!(timers.next().await, Due::Retry, "armed once, however often asked");
        assert_eq!(timers.next().await, Due::OpenDeadline(b));
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        timers.retry_soon();
        assert_eq!(timers.next().await, Due::Retry, "armed again once fired");
        let nothing = tokio::time::timeout(Duration::from_secs(3600), timers.next()).await;
        assert!(nothing.is_err(), "no timer, nothing fires");
    }
}
