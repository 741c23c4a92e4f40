//! The link from a directory (or a process) up to its parent directory.
//!
//! One task owns the connection. It connects with capped exponential backoff, exchanges
//! [`Hello`]s, reports [`UplinkEvent::Connected`] and relays frames both ways until the
//! connection ends, then reports [`UplinkEvent::Lost`] and starts again. Each connection has an
//! *epoch*: frames queued for an earlier connection are discarded, because on `Connected` the
//! owner re-registers everything it holds.

use crate::backoff::Backoff;
use crate::secure::{MaybeSecure, Secret};
use crate::wire::directory::{Down, Up};
use crate::wire::{
    Beat, Hello, Liveness, MessageCodec, WireError, HANDSHAKE_TIMEOUT, HEARTBEAT_CHECK, HEARTBEAT_DEAD,
    MAX_DIRECTORY_FRAME,
};
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
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

/// A connection that lasted this long was healthy: the next reconnect starts at the shortest
/// delay. Shorter ones back off, so a parent that accepts and then drops at once is not hammered.
const STABLE: Duration = Duration::from_secs(5);

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
    let mut backoff = Backoff::default();
    let mut epoch = 0u64;
    let mut quiet_failures = 0u32;
    loop {
        let attempt = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = tokio::time::timeout(HANDSHAKE_TIMEOUT, connect(addr, &hello, secret.as_ref())) => {
                r.unwrap_or_else(|_| Err(WireError::Protocol("connect timed out".into())))
            }
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
                    _ = tokio::time::sleep(backoff.next_delay()) => continue,
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
        if connected_at.elapsed() >= STABLE {
            backoff.reset();
        } else {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff.next_delay()) => {}
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

type ChildFramed = Framed<MaybeSecure<TcpStream>, MessageCodec<Up, Down>>;

async fn connect(
    addr: SocketAddr,
    hello: &Hello,
    secret: Option<&Secret>,
) -> Result<(ChildFramed, Hello), WireError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    // A parent on another host (lan-cake): prove we hold the LAN's secret, when there is one.
    let secret = secret.filter(|_| !crate::wire::is_local(addr));
    let stream = MaybeSecure::connect(stream, secret)
        .await
        .map_err(|e| WireError::Protocol(e.to_string()))?;
    let mut framed = Framed::new(stream, MessageCodec::new(MAX_DIRECTORY_FRAME));
    framed.send(Up::Hello(hello.clone())).await?;
    let reply = tokio::time::timeout(HANDSHAKE_TIMEOUT, framed.next())
        .await
        .map_err(|_| WireError::Protocol("no greeting from the parent".into()))?;
    match reply {
        Some(Ok(Down::Hello(parent))) => {
            parent.check().map_err(|e| WireError::Protocol(e.to_string()))?;
            Ok((framed, parent))
        }
        Some(Ok(other)) => Err(WireError::Protocol(format!("expected a greeting, got {other:?}"))),
        Some(Err(e)) => Err(e),
        None => Err(WireError::Protocol("closed during the greeting".into())),
    }
}
