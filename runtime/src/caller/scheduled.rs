//! Calls made later, or again and again: [`Caller::later`] and [`Caller::every`].

use super::{Call, CallError, Caller};
use crate::message::{Message, Received};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

/// A call that will be made at a given time ([`Caller::later`]): await it for the answer.
/// Dropping it (or [`cancel`](Self::cancel)) cancels the call, if it has not been made yet, or
/// stops waiting for its answer.
pub struct Later<R> {
    task: JoinHandle<Result<R, CallError>>,
}

impl<R> Later<R> {
    /// Cancels the call.
    pub fn cancel(self) {}
}

impl<R> Drop for Later<R> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<R> Future for Later<R> {
    type Output = Result<R, CallError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.task).poll(cx) {
            Poll::Ready(Ok(result)) => Poll::Ready(result),
            // A panic in the call (a message's Serialize) is the application's own.
            Poll::Ready(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Poll::Ready(Err(_)) => Poll::Ready(Err(CallError::Cancelled)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A call made every period ([`Caller::every`]): [`next`](Self::next) gives each answer in
/// turn. While an answer waits to be taken no further call is made, so a slow reader slows
/// the calls rather than piling up answers. Dropping it (or [`cancel`](Self::cancel)) stops
/// the calls.
pub struct Every<R> {
    answers: mpsc::Receiver<Result<R, CallError>>,
    task: JoinHandle<()>,
}

impl<R> Every<R> {
    /// The answer of the next call (None once the caller is gone).
    pub async fn next(&mut self) -> Option<Result<R, CallError>> {
        self.answers.recv().await
    }

    /// Stops the calls.
    pub fn cancel(self) {}
}

impl<R> Drop for Every<R> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Caller {
    /// Makes `request` with [`one`](Self::one) at `at` (at once if that has passed).
    pub fn later<Q, R>(&self, at: Instant, request: Q, call: Call) -> Later<R>
    where
        Q: Message + Send + Sync + 'static,
        R: Received + Send + 'static,
    {
        let caller = self.clone();
        Later {
            task: tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                caller.one(&request, &call).await
            }),
        }
    }

    /// Makes `request` with [`one`](Self::one) every `period`, the first at once, until the
    /// returned handle is dropped. A period that passes while a call is still waiting for its
    /// answer (or its answer waits to be taken) is not made up for.
    pub fn every<Q, R>(&self, period: Duration, request: Q, call: Call) -> Every<R>
    where
        Q: Message + Send + Sync + 'static,
        R: Received + Send + 'static,
    {
        let caller = std::sync::Arc::downgrade(&self.0);
        let (tx, answers) = mpsc::channel(1);
        let period = period.max(Duration::from_millis(1));
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(inner) = caller.upgrade() else { return };
                let answer = Caller(inner).one(&request, &call).await;
                if tx.send(answer).await.is_err() {
                    return;
                }
            }
        });
        Every { answers, task }
    }
}
