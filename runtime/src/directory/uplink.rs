//! The link from a directory (or a process) up to its parent directory.
//!
//! One task owns the connection. It connects with capped exponential backoff, exchanges
//! [`Hello`]s, reports [`UplinkEvent::Connected`] and relays frames both ways until the
//! connection ends, then reports [`UplinkEvent::Lost`] and starts again. Each connection has an
//! *epoch*: frames queued for an earlier connection are discarded, because on `Connected` the
//! owner re-registers everything it holds.

use crate::backoff::Backoff;
use crate::secure::Secret;
use crate::wire::directory::{Down, Up};
use crate::wire::opening::{self, Opened};
use crate::wire::{
    Beat, Hello, Liveness, MessageCodec, OpeningError, HANDSHAKE_TIMEOUT, HEARTBEAT_CHECK, HEARTBEAT_DEAD,
    MAX_DIRECTORY_FRAME,
};
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

/// What the uplink reports to its owner.
#[derive(Debug)]
pub(crate) enum UplinkEvent {
    /// Connected and greeted; frames for this epoch will now be sent.
    Connected { epoch: u64, parent: Hello },
    /// A frame from the parent, on the connection of `epoch` (the owner ignores frames of an
    /// epoch it has already given up on).
    Frame { epoch: u64, frame: Down },
    /// An attempt to connect failed (reported once per run of failures).
    Unreachable,
    /// The connection of this epoch is over.
    Lost { epoch: u64 },
}

/// The owner's side: queue frames for the parent, or ask for a fresh connection.
#[derive(Clone)]
pub(crate) struct UplinkHandle {
    tx: mpsc::Sender<(u64, Up)>,
    resync: Arc<Notify>,
}

/// How many frames may wait for the parent before the link is reset and re-synchronised. Large
/// enough for a full re-registration of a busy directory: a replay that overflowed it would
/// reset the link again and again.
const OUTBOX: usize = 65_536;

/// How long one write to the parent may take; a parent that stops reading for longer is
/// treated as lost.
const WRITE_DEADLINE: Duration = Duration::from_secs(10);

/// A connection that lasted this long was healthy: when it ends, the parent is tried again at
/// once. Shorter ones back off, so a parent that accepts and then drops at once is not hammered.
const STABLE: Duration = Duration::from_secs(5);

/// While a parent on this host is absent (its port refuses at once, for a few microseconds'
/// work), it is tried this often at the most, so it is rejoined within tens of milliseconds
/// of listening again.
const ABSENT_ON_THIS_HOST: (Duration, Duration) = (Duration::from_millis(5), Duration::from_millis(50));

/// When to try the parent again.
///
/// Two separate runs of delays: one while the parent cannot be reached (on this host a short,
/// capped poll; on another host the usual exponential backoff, so as not to load the network),
/// and one for connections that end soon after they began (a parent that accepts and drops).
struct Reconnect {
    absent: Backoff,
    unstable: Backoff,
}

impl Reconnect {
    fn new(parent: SocketAddr) -> Reconnect {
        let (first, max) = if crate::wire::is_local(parent) {
            ABSENT_ON_THIS_HOST
        } else {
            Backoff::STANDARD
        };
        Reconnect {
            absent: Backoff::new(first, max),
            unstable: Backoff::default(),
        }
    }

    /// An attempt failed: the delay before the next one.
    fn refused(&mut self) -> Duration {
        self.absent.next_delay()
    }

    /// A connection that lasted `lasted` is over: the delay before trying again.
    fn lost(&mut self, lasted: Duration) -> Duration {
        self.absent.reset();
        if lasted >= STABLE {
            self.unstable.reset();
            Duration::ZERO
        } else {
            self.unstable.next_delay()
        }
    }
}

impl UplinkHandle {
    /// Queues `frame` for the connection of `epoch`. Returns false if the queue is full, in
    /// which case the owner should treat the parent as lost; the link is reset and everything
    /// is registered again on the next `Connected`.
    pub(crate) fn send(&self, epoch: u64, frame: Up) -> bool {
        match self.tx.try_send((epoch, frame)) {
            Ok(()) => true,
            Err(_) => {
                self.resync.notify_one();
                false
            }
        }
    }
}

/// Starts the uplink task to `addr`; events go to `events`. With a `secret`, a parent on
/// another host is reached through the Noise handshake.
pub(crate) fn spawn(
    addr: SocketAddr,
    hello: Hello,
    secret: Option<Secret>,
    events: mpsc::Sender<UplinkEvent>,
    shutdown: CancellationToken,
) -> UplinkHandle {
    let (tx, rx) = mpsc::channel(OUTBOX);
    let resync = Arc::new(Notify::new());
    let handle = UplinkHandle {
        tx,
        resync: resync.clone(),
    };
    tokio::spawn(tracing::Instrument::in_current_span(run(
        addr, hello, secret, rx, resync, events, shutdown,
    )));
    handle
}

async fn run(
    addr: SocketAddr,
    hello: Hello,
    secret: Option<Secret>,
    mut outbox: mpsc::Receiver<(u64, Up)>,
    resync: Arc<Notify>,
    events: mpsc::Sender<UplinkEvent>,
    shutdown: CancellationToken,
) {
    let mut retry = Reconnect::new(addr);
    let mut epoch = 0u64;
    let mut quiet_failures = 0u32;
    loop {
        let attempt = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = connect(addr, &hello, secret.as_ref()) => r,
        };
        let (mut framed, parent) = match attempt {
            Ok(ok) => ok,
            Err(e) => {
                // Absent parents are normal (host-cake not started yet): say so once, then quietly.
                if quiet_failures == 0 {
                    tracing::info!(%addr, error = %e, "parent directory not reachable; will keep trying");
                    if events.send(UplinkEvent::Unreachable).await.is_err() {
                        return;
                    }
                } else {
                    tracing::debug!(%addr, error = %e, "parent directory still not reachable");
                }
                quiet_failures += 1;
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(retry.refused()) => continue,
                }
            }
        };
        quiet_failures = 0;
        epoch += 1;
        let local_ip = framed.get_ref().get_ref().local_addr().ok().map(|a| a.ip());
        let connected_at = Instant::now();
        tracing::info!(%addr, parent = %parent.name, id = %parent.id.short(), "connected to parent directory");
        if events
            .send(UplinkEvent::Connected {
                epoch,
                parent: parent.clone(),
            })
            .await
            .is_err()
        {
            return;
        }
        // Between hosts, both ends say they are still there; silence means the parent is gone.
        let mut live = Liveness::new(addr);
        let mut check = tokio::time::interval(HEARTBEAT_CHECK);
        let reason = loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = resync.notified() => break "reset to re-synchronise (queue to parent full)".to_string(),
                _ = check.tick(), if live.on() => match live.tick() {
                    Beat::Quiet => {}
                    Beat::Dead => break format!("nothing from the parent for {HEARTBEAT_DEAD:?}"),
                    Beat::Send => match tokio::time::timeout(WRITE_DEADLINE, framed.send(Up::Heartbeat)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => break e.to_string(),
                        Err(_) => break format!("the parent took no frame for {WRITE_DEADLINE:?}"),
                    },
                },
                queued = outbox.recv() => match queued {
                    None => return,
                    Some((e, _)) if e != epoch => continue,
                    Some((_, mut frame)) => {
                        live.sent();
                        fill_in_host(&mut frame, local_ip);
                        let write = tokio::select! {
                            _ = shutdown.cancelled() => return,
                            w = tokio::time::timeout(WRITE_DEADLINE, framed.send(frame)) => w,
                        };
                        match write {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => break e.to_string(),
                            Err(_) => break format!("the parent took no frame for {WRITE_DEADLINE:?}"),
                        }
                    }
                },
                frame = framed.next() => match frame {
                    None => break "closed by the parent".to_string(),
                    Some(Err(e)) => break e.to_string(),
                    Some(Ok(Down::Heartbeat)) => live.heard(),
                    Some(Ok(frame)) => {
                        live.heard();
                        if events.send(UplinkEvent::Frame { epoch, frame }).await.is_err() {
                            return;
                        }
                    }
                },
            }
        };
        tracing::warn!(%addr, %reason, "lost the parent directory; reconnecting");
        if events.send(UplinkEvent::Lost { epoch }).await.is_err() {
            return;
        }
        let delay = retry.lost(connected_at.elapsed());
        if !delay.is_zero() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }
}

/// A publication listening on every interface (`0.0.0.0:<port>`) is given the address of the
/// interface this link leaves by, when that is not loopback: the parent (a LAN directory, on
/// another host) passes it to subscribers who cannot reach this host's loopback.
fn fill_in_host(frame: &mut Up, local_ip: Option<std::net::IpAddr>) {
    if let (Up::Publish(info), Some(ip)) = (frame, local_ip) {
        if info.addr.ip().is_unspecified() && !ip.to_canonical().is_loopback() {
            info.addr.set_ip(ip);
        }
    }
}

type ChildFramed = Framed<Opened, MessageCodec<Up, Down>>;

async fn connect(
    addr: SocketAddr,
    hello: &Hello,
    secret: Option<&Secret>,
) -> Result<(ChildFramed, Hello), OpeningError> {
    // A parent on another host (lan-cake): prove we hold the LAN's secret, when there is one.
    let (stream, parent) = opening::dial(addr, hello, secret, HANDSHAKE_TIMEOUT).await?;
    Ok((
        Framed::new(stream, MessageCodec::new(MAX_DIRECTORY_FRAME)),
        parent,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_parent_on_this_host_is_tried_every_few_tens_of_milliseconds() {
        // The parent was up for a long while, then went for good: however long it stays away,
        // the next try is never more than 55 ms off, so it is rejoined that soon after it is back.
        let parent: SocketAddr = "127.0.0.1:54195".parse().unwrap();
        let mut retry = Reconnect::new(parent);
        retry.lost(STABLE);
        for attempt in 0..1000 {
            let delay = retry.refused();
            assert!(delay <= Duration::from_millis(55), "attempt {attempt}: {delay:?}");
        }
    }

    #[test]
    fn a_parent_that_drops_at_once_is_backed_off_from() {
        let parent: SocketAddr = "127.0.0.1:54195".parse().unwrap();
        let mut retry = Reconnect::new(parent);
        let delays: Vec<Duration> = (0..8).map(|_| retry.lost(Duration::from_millis(1))).collect();
        assert!(delays.windows(2).all(|w| w[1] >= w[0].mul_f64(0.8)), "{delays:?}");
        assert!(delays[7] >= Duration::from_secs(1), "{delays:?}");
        assert_eq!(
            retry.lost(STABLE),
            Duration::ZERO,
            "a link that lasted is retried at once"
        );
    }

    #[test]
    fn a_parent_on_another_host_is_not_hammered() {
        let parent: SocketAddr = "10.0.0.195:54195".parse().unwrap();
        let mut retry = Reconnect::new(parent);
        let last = (0..16).map(|_| retry.refused()).last().unwrap();
        assert!(last >= Duration::from_secs(1), "{last:?}");
    }
}
