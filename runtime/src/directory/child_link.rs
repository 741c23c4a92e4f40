//! A directory's side of its children's connections: the accept loop, and one task per child
//! that greets it, then carries its frames to the directory and the directory's frames to it.
//!
//! A child that sends a malformed, oversized or unexpected frame, or says nothing within the
//! handshake deadline, has its own connection closed with the reason logged. A child that
//! takes nothing for [`WRITE_DEADLINE`] is dropped the same way.

use super::engine::LinkId;
use crate::scope::Scope;
use crate::secure::Secret;
use crate::wire::directory::{Down, Up};
use crate::wire::opening::{self, next_connection};
use crate::wire::{
    Beat, Hello, Liveness, MessageCodec, WireError, HEARTBEAT_CHECK, HEARTBEAT_DEAD, MAX_DIRECTORY_FRAME,
};
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{warn, Instrument};

/// How many frames may wait to be written to one child before that child is dropped. Large
/// enough for the routes of a regex subscription matching thousands of names at once; what
/// drops a child that stops reading is usually [`WRITE_DEADLINE`].
pub const LINK_QUEUE: usize = 65_536;

/// How long a write to a child may wait for it to read; a child that takes nothing for this
/// long is dropped, with the reason logged.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(10);

/// What a child's task tells the directory.
pub(super) enum Event {
    /// A child greeted: frames for it go to `tx`; cancelling `cancel` drops it.
    Accepted {
        link: LinkId,
        hello: Hello,
        tx: mpsc::Sender<Down>,
        cancel: CancellationToken,
    },
    /// A frame from a child.
    Frame(LinkId, Up),
    /// A child's connection is over, and why.
    Closed(LinkId, String),
}

/// What a new connection is greeted with, and how long it has to greet back.
#[derive(Clone)]
pub(super) struct Greeting {
    pub ours: Hello,
    pub timeout: Duration,
    /// Children on other hosts must pass the Noise handshake with it first.
    pub secret: Option<Secret>,
}

/// Accepts children until `shutdown`, one task each.
pub(super) async fn accept_loop(
    listener: TcpListener,
    greeting: Greeting,
    inbox: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) {
    let mut next_link: LinkId = 0;
    loop {
        let (stream, addr) = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = next_connection(&listener, "directory") => a,
        };
        if greeting.ours.scope < Scope::Lan && !crate::wire::is_local(addr) {
            // GROUP and HOST scope are this host's business only.
            warn!(%addr, scope = %greeting.ours.scope, "refused a connection from another host");
            continue;
        }
        next_link += 1;
        let task = serve_child(
            next_link,
            stream,
            addr,
            greeting.clone(),
            inbox.clone(),
            shutdown.child_token(),
        );
        tokio::spawn(task.in_current_span());
    }
}

/// Writes `first` and whatever else is already queued, then flushes once. Routes to a child
/// on another host get `here` (this host's address as that child reaches it) in place of an
/// unspecified publisher address: a publication made on this very host (`0.0.0.0:<port>`).
async fn write_batch<S>(
    sink: &mut S,
    first: Down,
    rx: &mut mpsc::Receiver<Down>,
    here: Option<std::net::IpAddr>,
) -> Result<(), WireError>
where
    S: futures_util::Sink<Down, Error = WireError> + Unpin,
{
    let fill = |mut frame: Down| {
        if let (Down::Route(route), Some(ip)) = (&mut frame, here) {
            if route.publisher.addr.ip().is_unspecified() {
                route.publisher.addr.set_ip(ip);
            }
        }
        frame
    };
    sink.feed(fill(first)).await?;
    for _ in 0..256 {
        match rx.try_recv() {
            Ok(frame) => sink.feed(fill(frame)).await?,
            Err(_) => break,
        }
    }
    sink.flush().await
}

async fn serve_child(
    link: LinkId,
    stream: TcpStream,
    addr: SocketAddr,
    greeting: Greeting,
    inbox: mpsc::Sender<Event>,
    cancel: CancellationToken,
) {
    // This host's address as a child on another host reaches it (for the routes it is sent).
    let here = stream
        .local_addr()
        .ok()
        .map(|a| a.ip())
        .filter(|_| !crate::wire::is_local(addr));
    let opened = opening::accept(
        stream,
        addr,
        &greeting.ours,
        greeting.secret.as_ref(),
        greeting.timeout,
    );
    let (stream, hello) = match opened.await {
        Ok(opened) => opened,
        Err(e) => {
            warn!(link, %addr, reason = %e.reason(), "closing connection: handshake failed");
            return;
        }
    };
    let framed = Framed::new(stream, MessageCodec::<Down, Up>::new(MAX_DIRECTORY_FRAME));
    let (tx, mut rx) = mpsc::channel::<Down>(LINK_QUEUE);
    let accepted = Event::Accepted {
        link,
        hello,
        tx,
        cancel: cancel.clone(),
    };
    if inbox.send(accepted).await.is_err() {
        return;
    }
    let (mut sink, mut stream) = framed.split();
    // Between hosts, both ends say they are still there; silence means the child is gone.
    let mut live = Liveness::new(addr);
    let mut check = tokio::time::interval(HEARTBEAT_CHECK);
    let reason = loop {
        tokio::select! {
            _ = cancel.cancelled() => break "dropped by the directory".to_string(),
            _ = check.tick(), if live.on() => match live.tick() {
                Beat::Quiet => {}
                Beat::Dead => {
                    warn!(link, %addr, "closing connection: nothing from the child for {HEARTBEAT_DEAD:?}");
                    break format!("no heartbeat for {HEARTBEAT_DEAD:?}");
                }
                Beat::Send => match tokio::time::timeout(WRITE_DEADLINE, sink.send(Down::Heartbeat)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => break e.to_string(),
                    Err(_) => break "not reading".to_string(),
                },
            },
            frame = rx.recv() => match frame {
                Some(frame) => {
                    live.sent();
                    let write = tokio::select! {
                        _ = cancel.cancelled() => break "dropped by the directory".to_string(),
                        w = tokio::time::timeout(WRITE_DEADLINE, write_batch(&mut sink, frame, &mut rx, here)) => w,
                    };
                    match write {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => break e.to_string(),
                        Err(_) => {
                            warn!(link, %addr, "closing connection: the child took nothing for {WRITE_DEADLINE:?}");
                            break "not reading".to_string();
                        }
                    }
                }
                None => break "dropped by the directory".to_string(),
            },
            frame = stream.next() => match frame {
                None => break "connection closed".to_string(),
                Some(Err(WireError::Io(e))) => break format!("connection lost: {e}"),
                Some(Err(e)) => {
                    warn!(link, %addr, reason = %e, "closing connection: bad frame");
                    break e.to_string();
                }
                Some(Ok(Up::Heartbeat)) => live.heard(),
                Some(Ok(frame)) => {
                    live.heard();
                    if inbox.send(Event::Frame(link, frame)).await.is_err() {
                        return;
                    }
                }
            },
        }
    };
    let _ = inbox.send(Event::Closed(link, reason)).await;
}
