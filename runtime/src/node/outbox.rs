//! A connection's outbox: frames that senders have encoded, waiting for the socket.
//!
//! A sender encodes its message **before** it touches the outbox ([`encode`], into a buffer
//! of its thread, so no allocation per message and no user code under the lock), then hands
//! the bytes over with [`Outbox::push`]. When nothing is queued or being written and the
//! connection is plain TCP, the sender writes to the socket itself: no hop through another
//! task. Otherwise the bytes are queued and the connection's task writes them, everything
//! waiting in one go, so frames sent close together share a system call.
//!
//! The outbox is bounded ([`OUTBOX_LIMIT`]): a frame that would take it over the bound waits
//! for room (up to the sender's deadline); one frame larger than the bound goes when the
//! outbox is empty, so no single frame overshoots it by more than itself.

use super::session::SendError;
use crate::wire::WireError;
use bytes::BytesMut;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How many bytes may wait to be written on one connection; a sender that finds more waits
/// (up to its deadline) for the socket to take them.
pub const OUTBOX_LIMIT: usize = 4 << 20;

thread_local! {
    /// Where this thread's senders encode frames before handing them over.
    static SCRATCH: RefCell<BytesMut> = RefCell::new(BytesMut::with_capacity(8192));
}

/// Encodes one frame with `encode` into this thread's scratch buffer and passes the bytes to
/// `then`. Nothing else is borrowed meanwhile: `encode` may run any user code (a `Serialize`
/// that panics unwinds through here, and leaves nothing locked).
pub(crate) fn encode<R>(
    encode: impl FnOnce(&mut BytesMut) -> Result<(), WireError>,
    then: impl FnOnce(&[u8]) -> R,
) -> Result<R, WireError> {
    SCRATCH.with(|scratch| {
        let mut buf = match scratch.try_borrow_mut() {
            Ok(buf) => buf,
            // Re-entered from inside `encode` (a Serialize that sends): use a buffer of its own.
            Err(_) => {
                let mut own = BytesMut::new();
                encode(&mut own)?;
                return Ok(then(&own));
            }
        };
        buf.clear();
        let result = encode(&mut buf);
        let out = result.map(|()| then(&buf));
        if buf.capacity() > 1 << 20 {
            *buf = BytesMut::with_capacity(8192);
        }
        out
    })
}

/// When a frame handed to the outbox should reach the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flush {
    /// At once (the sender writes it itself when the socket is free).
    Now,
    /// With the next write of the connection's task: more frames are coming right behind.
    Soon,
}

struct State {
    /// Bytes queued for the connection's task, in order.
    buf: BytesMut,
    /// Someone (a sender on the direct path, or the task) is writing outside the lock; nobody
    /// else may write to the socket until it is done.
    writing: bool,
    /// When bytes last went to the socket (heartbeats are sent after a quiet second).
    last_tx: Instant,
}

/// What a connection's senders and its task share.
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Wakes the connection's task: there is something to write.
    pub(crate) wake: Notify,
    /// Wakes senders waiting for room.
    room: Notify,
    /// A plain TCP socket that senders may write to directly when nothing is queued.
    direct: Option<Arc<OwnedWriteHalf>>,
    /// Cancelled when the connection is over.
    closed: CancellationToken,
    /// The connection is over (what senders check: cheaper than asking the token).
    ended: AtomicBool,
    /// Does the connection carry heartbeats (and so need to know when it last wrote)?
    heartbeat: bool,
}

impl Outbox {
    pub(crate) fn new(
        direct: Option<Arc<OwnedWriteHalf>>,
        closed: CancellationToken,
        heartbeat: bool,
    ) -> Outbox {
        Outbox {
            state: Mutex::new(State {
                buf: BytesMut::with_capacity(8192),
                writing: false,
                last_tx: Instant::now(),
            }),
            wake: Notify::new(),
            room: Notify::new(),
            direct,
            closed,
            ended: AtomicBool::new(false),
            heartbeat,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The lock is never held across user code, so a poisoned one still holds whole frames.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues (or writes) one whole frame, waiting at most `deadline` for room.
    pub(crate) async fn push(&self, frame: &[u8], deadline: Duration) -> Result<(), SendError> {
        if let Ok(pushed) = self.try_push(frame, Flush::Now) {
            return pushed;
        }
        let wait = async {
            loop {
                let room = self.room.notified();
                tokio::pin!(room);
                room.as_mut().enable();
                if let Ok(pushed) = self.try_push(frame, Flush::Now) {
                    return pushed;
                }
                tokio::select! {
                    _ = room => {}
                    _ = self.closed.cancelled() => return Err(SendError::Closed),
                }
            }
        };
        tokio::time::timeout(deadline, wait)
            .await
            .unwrap_or(Err(SendError::Timeout(deadline)))
    }

    /// Pushes `frame` if there is room now; `Err(())` when the sender must wait.
    ///
    /// [`Flush::Now`] writes it to the socket at once when nobody else is writing (with
    /// whatever is queued before it, in one system call). [`Flush::Soon`] queues it for the
    /// connection's task, which writes everything queued together: a publisher that answers a
    /// batch of requests sends one write for the batch, not one per reply.
    pub(crate) fn try_push(&self, frame: &[u8], flush: Flush) -> Result<Result<(), SendError>, ()> {
        if self.ended.load(Ordering::Acquire) {
            return Ok(Err(SendError::Closed));
        }
        let mut state = self.lock();
        if let (Some(socket), false, Flush::Now) = (&self.direct, state.writing, flush) {
            if state.buf.len() + frame.len() <= OUTBOX_LIMIT || state.buf.is_empty() {
                state.writing = true;
                // What is queued goes first, in the same write.
                let mut queued = std::mem::take(&mut state.buf);
                drop(state);
                let whole = if queued.is_empty() {
                    frame
                } else {
                    queued.extend_from_slice(frame);
                    &queued[..]
                };
                let written = match socket.try_write(whole) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
                    Err(e) => {
                        tracing::debug!(error = %e, "session connection write failed");
                        self.close();
                        self.lock().writing = false;
                        return Ok(Err(SendError::Closed));
                    }
                };
                let mut state = self.lock();
                state.writing = false;
                if self.heartbeat {
                    state.last_tx = Instant::now();
                }
                if written < whole.len() {
                    // What the socket did not take goes first: others may have queued meanwhile.
                    let mut rest = BytesMut::with_capacity(whole.len() - written + state.buf.len());
                    rest.extend_from_slice(&whole[written..]);
                    rest.extend_from_slice(&state.buf);
                    state.buf = rest;
                } else if state.buf.is_empty() && queued.capacity() > 0 {
                    // Keep the queue's room for next time.
                    queued.clear();
                    state.buf = queued;
                }
                let more = !state.buf.is_empty();
                drop(state);
                if more {
                    self.wake.notify_one();
                }
                return Ok(Ok(()));
            }
        }
        if !state.buf.is_empty() && state.buf.len() + frame.len() > OUTBOX_LIMIT {
            return Err(());
        }
        let wake = state.buf.is_empty() && !state.writing;
        state.buf.extend_from_slice(frame);
        drop(state);
        if wake {
            self.wake.notify_one();
        }
        Ok(Ok(()))
    }

    /// (The connection's task.) Queues a control frame whatever the bound: control frames are
    /// few and small, and the task must never wait on its own outbox.
    pub(crate) fn force_push(&self, frame: &[u8]) {
        if self.closed.is_cancelled() {
            return;
        }
        let mut state = self.lock();
        let wake = state.buf.is_empty() && !state.writing;
        state.buf.extend_from_slice(frame);
        drop(state);
        if wake {
            self.wake.notify_one();
        }
    }

    /// (The connection's task.) Takes everything queued into `chunk` (which must be empty) and
    /// marks the socket busy; false when there is nothing to take or a sender is writing.
    pub(crate) fn take(&self, chunk: &mut BytesMut) -> bool {
        let mut state = self.lock();
        if state.writing || state.buf.is_empty() {
            return false;
        }
        std::mem::swap(&mut state.buf, chunk);
        state.writing = true;
        drop(state);
        self.room.notify_waiters();
        true
    }

    /// (The connection's task.) The chunk it took is written: the socket is free again.
    /// Returns whether more is queued.
    pub(crate) fn written(&self) -> bool {
        let mut state = self.lock();
        state.writing = false;
        if self.heartbeat {
            state.last_tx = Instant::now();
        }
        !state.buf.is_empty()
    }

    /// Has nothing gone to the socket for `quiet`, with nothing queued?
    pub(crate) fn idle_for(&self, quiet: Duration) -> bool {
        let state = self.lock();
        state.buf.is_empty() && !state.writing && state.last_tx.elapsed() >= quiet
    }

    /// Ends the connection: senders waiting for room give up.
    pub(crate) fn close(&self) {
        self.ended.store(true, Ordering::Release);
        self.closed.cancel();
        self.room.notify_waiters();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.ended.load(Ordering::Acquire) || self.closed.is_cancelled()
    }

    /// The token cancelled when the connection is over.
    pub(crate) fn closed_token(&self) -> CancellationToken {
        self.closed.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_queue_in_order_and_the_bound_holds() {
        let outbox = Outbox::new(None, CancellationToken::new(), false);
        assert!(matches!(outbox.try_push(b"one", Flush::Now), Ok(Ok(()))));
        assert!(matches!(outbox.try_push(b"two", Flush::Now), Ok(Ok(()))));
        let big = vec![0u8; OUTBOX_LIMIT];
        assert!(outbox.try_push(&big, Flush::Now).is_err(), "over the bound: wait");
        let mut chunk = BytesMut::new();
        assert!(outbox.take(&mut chunk));
        assert_eq!(&chunk[..], b"onetwo");
        assert!(!outbox.written());
        assert!(
            matches!(outbox.try_push(&big, Flush::Now), Ok(Ok(()))),
            "one large frame into an empty outbox"
        );
    }

    #[tokio::test]
    async fn frames_sent_soon_go_out_with_the_next_written_now() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dialed = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
        let (dialed, accepted) = tokio::join!(dialed, listener.accept());
        let (mut peer, _) = accepted.unwrap();
        let (_read, write) = dialed.unwrap().into_split();
        let outbox = Outbox::new(Some(Arc::new(write)), CancellationToken::new(), false);
        assert!(matches!(outbox.try_push(b"one,", Flush::Soon), Ok(Ok(()))));
        assert!(matches!(outbox.try_push(b"two,", Flush::Soon), Ok(Ok(()))));
        assert_eq!(&outbox.lock().buf[..], b"one,two,", "queued, not written");
        assert!(matches!(outbox.try_push(b"three", Flush::Now), Ok(Ok(()))));
        assert!(
            outbox.lock().buf.is_empty(),
            "all written by the sender, in order"
        );
        let mut got = vec![0u8; 13];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..], b"one,two,three");
    }

    #[test]
    fn a_panicking_encoder_leaves_the_scratch_buffer_usable() {
        let caught = std::panic::catch_unwind(|| {
            let _ = encode(|_| panic!("user Serialize panicked"), |_| ());
        });
        assert!(caught.is_err());
        let got = encode(
            |buf| {
                buf.extend_from_slice(b"ok");
                Ok(())
            },
            |bytes| bytes.to_vec(),
        )
        .unwrap();
        assert_eq!(got, b"ok");
    }
}
