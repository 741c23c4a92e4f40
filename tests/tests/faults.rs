//! Faults, end to end: SIGSTOP/SIGCONT and SIGKILL of publishers, subscribers and the
//! directories (real processes, loopback), and churn that must leak nothing.
//!
//! What the documentation promises, and these check:
//! - On loopback there are no heartbeats: a stopped (SIGSTOP) process keeps its connections,
//!   so its sessions are not dropped; requests to it wait and end at their own deadline, and it
//!   answers again after SIGCONT, on the same session.
//! - A stopped directory delays new matches and loses none; sessions already made go straight
//!   between the processes and carry on meanwhile.
//! - A killed subscriber's sessions are dropped at the publisher at once.
//!
//! Churn (1,000 cycles, counting descriptors and tasks) is in `churn.rs`, alone in its binary.

use layer_cake::{Node, NodeConfig, RequestError, Scope, Session, Subscription, SubscriptionEvent};
use layer_cake_tests::{publisher, subscriber, Daemon, Proc, WAIT};
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

/// The publisher demo's request and answer (matched by type name).
#[derive(Debug, Serialize, Deserialize)]
struct Ping {
    seq: u64,
    text: String,
}
layer_cake::message!(Ping);

#[derive(Debug, Serialize, Deserialize)]
struct Pong {
    seq: u64,
    text: String,
    name: String,
    pid: u32,
}
layer_cake::message!(Pong);

async fn node(directory: SocketAddr) -> Node {
    Node::with_config(NodeConfig::new(Some(directory), "faults-test"))
        .await
        .unwrap()
}

async fn next(sub: &mut Subscription) -> SubscriptionEvent {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("an event within the deadline")
        .expect("open")
}

async fn available(sub: &mut Subscription, name: &str) -> Session {
    match next(sub).await {
        SubscriptionEvent::Available(s) if s.name() == name => s,
        other => panic!("expected {name} available, got {other:?}"),
    }
}

async fn ping(s: &Session, seq: u64, deadline: Duration) -> Result<Pong, RequestError> {
    s.request::<_, Pong>(
        &Ping {
            seq,
            text: "faults".into(),
        },
        deadline,
    )
    .await
}

#[tokio::test]
async fn a_stopped_publisher_keeps_its_session_and_answers_on_it_after_sigcont() {
    let host = Daemon::host_cake().await;
    let mut p = publisher("publisher", &host.env(), "svc:1", "HOST");
    p.expect(&["published svc:1"]).await;
    let n = node(host.addr).await;
    let mut sub = n.subscribe("svc:[0-9]", Scope::Host).await.unwrap();
    let s = available(&mut sub, "svc:1").await;
    assert_eq!(ping(&s, 1, WAIT).await.unwrap().seq, 1);

    p.signal(Signal::SIGSTOP);
    let err = ping(&s, 2, Duration::from_millis(300)).await.unwrap_err();
    assert!(matches!(err, RequestError::Timeout(_)), "{err}");
    p.signal(Signal::SIGCONT);
    // The same session answers again (a dropped one would fail with Ended).
    assert_eq!(ping(&s, 3, WAIT).await.unwrap().seq, 3);

    // A later match is a synchronisation point: nothing was dropped before it.
    let mut p2 = publisher("publisher-2", &host.env(), "svc:2", "HOST");
    p2.expect(&["published svc:2"]).await;
    match next(&mut sub).await {
        SubscriptionEvent::Available(s2) => assert_eq!(s2.name(), "svc:2"),
        other => panic!("the stopped publisher's session was disturbed: {other:?}"),
    }
}

/// Stops `directory` with SIGSTOP while a session made through it carries on, and a new
/// publisher (at `scope`) waits to be matched; after SIGCONT the match is made.
async fn a_stopped_directory_delays_matches_and_loses_none(directory: &Daemon, scope: &str) {
    let scope_value: Scope = scope.parse().unwrap();
    let mut p = publisher("publisher", &directory.env(), "svc:1", scope);
    p.expect(&["published svc:1"]).await;
    let n = node(directory.addr).await;
    let mut sub = n.subscribe("svc:[0-9]", scope_value).await.unwrap();
    let s = available(&mut sub, "svc:1").await;

    directory.proc.signal(Signal::SIGSTOP);
    // The session goes straight between the processes: the directory is not in its path.
    for seq in 0..20 {
        assert_eq!(ping(&s, seq, WAIT).await.unwrap().seq, seq);
    }
    let mut p2 = publisher("publisher-2", &directory.env(), "svc:2", scope);
    directory.proc.signal(Signal::SIGCONT);
    p2.expect(&["published svc:2"]).await;
    let s2 = available(&mut sub, "svc:2").await;
    assert_eq!(ping(&s2, 1, WAIT).await.unwrap().name, "svc:2");
    assert_eq!(ping(&s, 99, WAIT).await.unwrap().seq, 99);
}

#[tokio::test]
async fn a_stopped_host_cake_delays_matches_and_loses_none() {
    let host = Daemon::host_cake().await;
    a_stopped_directory_delays_matches_and_loses_none(&host, "HOST").await;
}

#[tokio::test]
async fn a_stopped_group_cake_delays_matches_and_loses_none() {
    let host = Daemon::host_cake().await;
    let group = Daemon::group_cake(host.addr).await;
    a_stopped_directory_delays_matches_and_loses_none(&group, "GROUP").await;
}

#[tokio::test]
async fn a_killed_subscriber_is_dropped_at_the_publisher_and_a_stopped_one_is_not() {
    let host = Daemon::host_cake().await;
    let mut p = publisher("publisher", &host.env(), "svc", "HOST");
    p.expect(&["published svc"]).await;

    let mut stopped = subscriber("stopped", &host.env(), "svc", "HOST");
    let line = stopped.expect(&["available svc"]).await;
    let stopped_session = layer_cake_tests::field(&line, "session").to_string();
    p.expect(&["delivered svc", &format!("session={stopped_session}")])
        .await;
    stopped.signal(Signal::SIGSTOP);

    let mut killed: Proc = subscriber("killed", &host.env(), "svc", "HOST");
    let line = killed.expect(&["available svc"]).await;
    let killed_session = layer_cake_tests::field(&line, "session").to_string();
    p.expect(&["delivered svc", &format!("session={killed_session}")])
        .await;
    killed.kill9().await;
    let dropped = p.expect(&["dropped svc"]).await;
    assert!(
        dropped.contains(&format!("session={killed_session}")),
        "the stopped subscriber's session was dropped, not the killed one's: {dropped}"
    );
    stopped.signal(Signal::SIGCONT);
    stopped.expect(&["reply svc"]).await;
}
