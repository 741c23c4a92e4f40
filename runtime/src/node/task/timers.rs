//! The node task's deadlines, each set when its cause happens (the core's [`Effect::Wake`],
//! a held-back standing) and fired by tokio's clock (so a test can pause and advance time): no
//! periodic scan of every publication and session.
//!
//! A timer is not taken back when what it guards ends early (a session opened in time); when
//! it fires, the core checks whether it still applies. Each is bounded by what set it: one per
//! publish, one per session opened, one retry and one standing re-send at a time.
//!
//! [`Effect::Wake`]: crate::node::decisions::Effect::Wake

use crate::ids::PubId;
use crate::node::decisions::Due;
use std::future::poll_fn;
use std::task::Poll;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::time::DelayQueue;

/// How soon a change of standing the application's queue had no room for is offered again.
pub(super) const STATUS_AGAIN: Duration = Duration::from_millis(100);

/// A timer that fired: one the core set, or the task's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fired {
    /// Tell the core.
    Core(Due),
    /// Offer a publication's held-back standing again.
    Status(PubId),
}

/// The pending deadlines.
#[derive(Default)]
pub(super) struct Timers {
    queue: DelayQueue<Fired>,
    status_armed: std::collections::HashSet<PubId>,
}

impl Timers {
    /// Fires `due` at `when`.
    pub(super) fn at(&mut self, when: Instant, due: Due) {
        self.queue.insert_at(Fired::Core(due), when);
    }

    /// Offers `publication`'s standing again in [`STATUS_AGAIN`], unless that is already due.
    pub(super) fn status_soon(&mut self, publication: PubId) {
        if self.status_armed.insert(publication) {
            self.queue.insert(Fired::Status(publication), STATUS_AGAIN);
        }
    }

    /// The next deadline to pass; pending while there is none (a timer set later, by the same
    /// task, is seen the next time this is polled).
    pub(super) async fn next(&mut self) -> Fired {
        let fired = poll_fn(|cx| match self.queue.poll_expired(cx) {
            Poll::Ready(Some(expired)) => Poll::Ready(expired.into_inner()),
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        })
        .await;
        if let Fired::Status(id) = fired {
            self.status_armed.remove(&id);
        }
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SessionId;

    #[tokio::test(start_paused = true)]
    async fn deadlines_fire_in_order_on_the_paused_clock() {
        let mut timers = Timers::default();
        let start = Instant::now();
        let (a, b) = (SessionId(1), SessionId(2));
        let p = PubId::random();
        timers.at(start + Duration::from_secs(3), Due::OpenDeadline(b));
        timers.at(start + Duration::from_secs(1), Due::OpenDeadline(a));
        timers.status_soon(p);
        timers.status_soon(p);
        assert_eq!(
            timers.next().await,
            Fired::Status(p),
            "armed once, however often asked"
        );
        assert_eq!(start.elapsed(), STATUS_AGAIN);
        assert_eq!(timers.next().await, Fired::Core(Due::OpenDeadline(a)));
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert_eq!(timers.next().await, Fired::Core(Due::OpenDeadline(b)));
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        timers.status_soon(p);
        assert_eq!(timers.next().await, Fired::Status(p), "armed again once fired");
        let nothing = tokio::time::timeout(Duration::from_secs(3600), timers.next()).await;
        assert!(nothing.is_err(), "no timer, nothing fires");
    }
}
