//! Backpressure, against a real host-cake: a subscriber whose application stops reading pushes
//! back on the sessions of its own connection only. The publisher's sends to it wait (its
//! queues are bounded), while the publisher's other sessions and the directory go on as
//! before; once the subscriber reads again, every message arrives, in order, once.

use layer_cake::{Node, NodeConfig, PublicationEvent, Scope, SendError, Session, SubscriptionEvent};
use layer_cake_tests::{Daemon, WAIT};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Serialize, Deserialize)]
struct Chunk {
    seq: u64,
    pad: String,
}
layer_cake::message!(Chunk);

#[derive(Debug, Serialize, Deserialize)]
struct Echo(u64);
layer_cake::message!(Echo);

/// More than every bound between the sender and a stalled reader can hold: the reader's event
/// queue (1,024), both sockets' buffers (a few MiB on loopback) and the sender's outbox (4 MiB),
/// at 1 KiB a message.
const FLOOD: u64 = 20_000;

async fn node(directory: SocketAddr, name: &str) -> Node {
    Node::with_config(NodeConfig::new(Some(directory), name))
        .await
        .unwrap()
}

async fn next<T, F: std::future::Future<Output = Option<T>>>(f: F) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .expect("an event within the deadline")
        .expect("open")
}

fn session(event: impl Into<Announced>) -> Session {
    match event.into() {
        Announced(Some(s)) => s,
        Announced(None) => panic!("expected a session"),
    }
}

/// The session an event announces, if it does (`Available`, `Delivered`).
struct Announced(Option<Session>);
impl From<SubscriptionEvent> for Announced {
    fn from(e: SubscriptionEvent) -> Announced {
        match e {
            SubscriptionEvent::Available(s) => Announced(Some(s)),
            other => panic!("expected a session, got {other:?}"),
        }
    }
}
impl From<PublicationEvent> for Announced {
    fn from(e: PublicationEvent) -> Announced {
        match e {
            PublicationEvent::Delivered(s) => Announced(Some(s)),
            other => panic!("expected a session, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_stops_reading_stalls_only_its_own_sessions() {
    let host = Daemon::host_cake().await;
    let (a, slow, healthy) = (
        node(host.addr, "publisher").await,
        node(host.addr, "slow").await,
        node(host.addr, "healthy").await,
    );
    let mut publication = a.publish("stream", Scope::Host).await.unwrap();
    let mut slow_sub = slow.subscribe("stream", Scope::Host).await.unwrap();
    let to_slow = session(next(publication.next()).await);
    session(next(slow_sub.next()).await);
    let mut healthy_sub = healthy.subscribe("stream", Scope::Host).await.unwrap();
    let healthy_side = session(next(healthy_sub.next()).await);
    let to_healthy = session(next(publication.next()).await);
    assert_ne!(to_slow.peer(), to_healthy.peer());

    // The publisher answers every request on its publication (the healthy subscriber's).
    let serving = tokio::spawn(async move {
        while let Some(event) = publication.next().await {
            if let PublicationEvent::Message(m) = event {
                if let Ok(Echo(n)) = m.decode::<Echo>() {
                    let _ = m.reply(&Echo(n + 1)).await;
                }
            }
        }
    });

    // Flood the slow subscriber, whose application reads nothing yet. A send that times out
    // (pushed back for 10 s) is tried again; none is skipped.
    let sent = Arc::new(AtomicU64::new(0));
    let flooding = tokio::spawn({
        let sent = sent.clone();
        async move {
            let pad = "x".repeat(1000);
            for seq in 0..FLOOD {
                loop {
                    match to_slow
                        .send(&Chunk {
                            seq,
                            pad: pad.clone(),
                        })
                        .await
                    {
                        Ok(()) => break,
                        Err(SendError::Timeout(_)) => continue,
                        Err(e) => panic!("send {seq}: {e}"),
                    }
                }
                sent.store(seq + 1, Ordering::Relaxed);
            }
        }
    });

    // Meanwhile the publisher's other session and the directory go on as before.
    for n in 0..200 {
        let reply: Echo = healthy_side
            .request(&Echo(n), Duration::from_secs(5))
            .await
            .expect("the healthy session answers while the other is stalled");
        assert_eq!(reply.0, n + 1);
    }
    let d = node(host.addr, "late").await;
    let _late = d.publish("late", Scope::Host).await.unwrap();
    let mut finds_late = healthy.subscribe("late", Scope::Host).await.unwrap();
    session(next(finds_late.next()).await);

    // The flood was held back: the bounds between it and the stalled reader are full.
    let held_at = sent.load(Ordering::Relaxed);
    assert!(
        !flooding.is_finished() && held_at < FLOOD,
        "all {FLOOD} messages went out to a reader that took none: some queue is unbounded"
    );
    eprintln!("{held_at} of {FLOOD} messages sent while the reader was stalled");

    // The slow subscriber reads again: everything arrives, in order, once.
    for expected in 0..FLOOD {
        let SubscriptionEvent::Message(m) = next(slow_sub.next()).await else {
            panic!("expected message {expected}")
        };
        assert_eq!(m.decode::<Chunk>().unwrap().seq, expected);
    }
    tokio::time::timeout(WAIT, flooding)
        .await
        .expect("the flood completes once the reader reads")
        .unwrap();
    serving.abort();
}
