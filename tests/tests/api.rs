//! The application API against a real host-cake: sessions, typed messages both ways,
//! request deadlines, retraction and clearing, in-process matching, refusals.

use futures_util::{Stream, StreamExt};
use layer_cake::directory::server::{self, DirectoryConfig};
use layer_cake::{
    DropReason, Node, NodeConfig, ParentState, PublicationEvent, PublishError, RequestError, Scope, Session,
    SubscribeError, SubscriptionEvent,
};
use layer_cake_tests::{Daemon, WAIT};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Xy {
    x: usize,
    y: usize,
}
layer_cake::message!(Xy);

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Table {
    rows: Vec<Vec<f64>>,
}
layer_cake::message!(Table);

async fn node(directory: Option<SocketAddr>) -> Node {
    Node::with_config(NodeConfig::new(directory, "api-test"))
        .await
        .unwrap()
}

/// The next event of a publication or subscription (each a `Stream`), within the deadline.
async fn next<S: Stream + Unpin>(events: &mut S) -> S::Item {
    tokio::time::timeout(WAIT, events.next())
        .await
        .expect("an event within the deadline")
        .expect("open")
}

/// The session an event announces: `Available` to a subscriber, `Delivered` to a publisher.
trait Announces: std::fmt::Debug {
    fn session(self) -> Option<Session>;
}
impl Announces for SubscriptionEvent {
    fn session(self) -> Option<Session> {
        match self {
            SubscriptionEvent::Available(s) => Some(s),
            _ => None,
        }
    }
}
impl Announces for PublicationEvent {
    fn session(self) -> Option<Session> {
        match self {
            PublicationEvent::Delivered(s) => Some(s),
            _ => None,
        }
    }
}

fn session(event: impl Announces) -> Session {
    let text = format!("{event:?}");
    event
        .session()
        .unwrap_or_else(|| panic!("expected a session, got {text}"))
}

#[tokio::test]
async fn typed_messages_flow_both_ways_and_retraction_drops_both_sides() {
    let host = Daemon::host_cake().await;
    let (a, b) = (node(Some(host.addr)).await, node(Some(host.addr)).await);
    let mut publication = a.publish("tables", Scope::Host).await.unwrap();
    let mut subscription = b.subscribe("tables", Scope::Host).await.unwrap();
    let sub_side = session(next(&mut subscription).await);
    let pub_side = session(next(&mut publication).await);
    assert_eq!(sub_side.id(), pub_side.id());
    assert_eq!((sub_side.name(), sub_side.matched_at()), ("tables", Scope::Host));
    assert_eq!(sub_side.peer(), a.id());
    assert_eq!(pub_side.peer(), b.id());

    // Subscriber to publisher, tagged by type; a request answered with another type.
    let asking = tokio::spawn({
        let s = sub_side.clone();
        async move {
            s.request::<_, Table>(&Xy { x: 2, y: 1 }, Duration::from_secs(5))
                .await
        }
    });
    let PublicationEvent::Message(m) = next(&mut publication).await else {
        panic!("expected a message")
    };
    assert!(m.is::<Xy>() && !m.is::<Table>());
    assert!(m.decode::<Table>().is_err());
    let xy: Xy = m.decode().unwrap();
    m.reply(&Table {
        rows: vec![vec![0.5; xy.x]; xy.y],
    })
    .await
    .unwrap();
    assert_eq!(
        asking.await.unwrap().unwrap(),
        Table {
            rows: vec![vec![0.5, 0.5]]
        }
    );

    // Publisher to subscriber, unprompted.
    pub_side.send(&Table { rows: vec![] }).await.unwrap();
    let SubscriptionEvent::Message(m) = next(&mut subscription).await else {
        panic!("expected a message")
    };
    assert_eq!(m.type_name(), "Table");

    // Retracting ends the session on both sides.
    publication.retract().await.unwrap();
    let SubscriptionEvent::Dropped(d) = next(&mut subscription).await else {
        panic!("expected Dropped")
    };
    assert_eq!(d.name, "tables");
    assert!(d.reason.to_string().contains("retracted"), "{}", d.reason);
}

#[tokio::test]
async fn clearing_a_subscription_drops_the_publishers_session() {
    let host = Daemon::host_cake().await;
    let (a, b) = (node(Some(host.addr)).await, node(Some(host.addr)).await);
    let mut publication = a.publish("clearable", Scope::Host).await.unwrap();
    let mut subscription = b.subscribe("clear.*", Scope::Host).await.unwrap();
    session(next(&mut subscription).await);
    let delivered = session(next(&mut publication).await);
    subscription.clear().await.unwrap();
    let PublicationEvent::Dropped(d) = next(&mut publication).await else {
        panic!("expected Dropped")
    };
    assert_eq!(d.session, delivered.id());
}

#[tokio::test]
async fn a_request_nobody_answers_times_out_and_one_to_a_dead_peer_ends() {
    let host = Daemon::host_cake().await;
    let (a, b) = (node(Some(host.addr)).await, node(Some(host.addr)).await);
    let mut publication = a.publish("silent", Scope::Host).await.unwrap();
    let mut subscription = b.subscribe("silent", Scope::Host).await.unwrap();
    let s = session(next(&mut subscription).await);
    let err = s
        .request::<_, Table>(&Xy { x: 1, y: 1 }, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(err, RequestError::Timeout(_)), "{err}");

    let pending = tokio::spawn({
        let s = s.clone();
        async move {
            s.request::<_, Table>(&Xy { x: 1, y: 1 }, Duration::from_secs(60))
                .await
        }
    });
    // Wait until the request has arrived, then take the publisher away.
    loop {
        if let PublicationEvent::Message(_) = next(&mut publication).await {
            break;
        }
    }
    a.stop();
    let err = tokio::time::timeout(WAIT, pending)
        .await
        .expect("no hang")
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, RequestError::Ended | RequestError::Send(_)),
        "{err}"
    );
}

#[tokio::test]
async fn process_scope_matches_inside_one_process_without_any_directory() {
    let n = node(None).await;
    let mut publication = n.publish("local", Scope::Process).await.unwrap();
    assert_eq!(publication.status().at, Scope::Process);
    let mut subscription = n.subscribe("local", Scope::Process).await.unwrap();
    let s = session(next(&mut subscription).await);
    assert_eq!(s.matched_at(), Scope::Process);
    assert_eq!(
        s.peer_addr(),
        None,
        "a session within one process has no peer address"
    );
    let asking = tokio::spawn(async move { s.request::<_, String>(&"ping", Duration::from_secs(5)).await });
    session(next(&mut publication).await);
    let PublicationEvent::Message(m) = next(&mut publication).await else {
        panic!("expected a message")
    };
    m.reply(&"pong").await.unwrap();
    assert_eq!(asking.await.unwrap().unwrap(), "pong");
}

#[tokio::test]
async fn refusals_say_why() {
    let n = node(None).await;
    let err = n.subscribe("worker-(", Scope::Host).await.unwrap_err();
    assert!(
        matches!(&err, SubscribeError::InvalidSearch(e) if e.to_string().contains("unclosed group")),
        "{err}"
    );
    let _held = n.publish("taken", Scope::Host).await.unwrap();
    let err = n.publish("taken", Scope::Host).await.unwrap_err();
    assert!(
        matches!(&err, PublishError::AlreadyPublished(name) if name == "taken"),
        "{err}"
    );
    assert!(matches!(
        n.publish("two words", Scope::Host).await,
        Err(PublishError::InvalidName(_))
    ));
    assert!(matches!(
        n.publish("", Scope::Host).await,
        Err(PublishError::InvalidName(_))
    ));
}

#[tokio::test]
async fn regex_subscription_gets_one_session_per_matching_name() {
    let host = Daemon::host_cake().await;
    let mut workers = Vec::new();
    for i in 0..8 {
        let n = node(Some(host.addr)).await;
        let p = n
            .publish(&format!("w:{i:04x}-{}", n.id().short()), Scope::Host)
            .await
            .unwrap();
        workers.push((n, p));
    }
    let expected: std::collections::BTreeSet<String> =
        workers.iter().map(|(_, p)| p.name().to_string()).collect();
    let client = node(Some(host.addr)).await;
    let mut subscription = client.subscribe("w:[-a-f0-9]+", Scope::Host).await.unwrap();
    let mut names = Vec::new();
    for _ in 0..8 {
        names.push(session(next(&mut subscription).await).name().to_string());
    }
    let distinct: std::collections::BTreeSet<String> = names.iter().cloned().collect();
    assert_eq!(distinct, expected, "one session per matching name: {names:?}");
    // And nothing more: of a name that does not match and one that does, published in that
    // order, only the second is announced, and next.
    let _other = workers[0].0.publish("w:not-hex", Scope::Host).await.unwrap();
    let _ninth = workers[0].0.publish("w:ffff-0000", Scope::Host).await.unwrap();
    assert_eq!(session(next(&mut subscription).await).name(), "w:ffff-0000");
}

/// A directory inside the test process (the shipped server on a listener of its own): its
/// address, the token that stops it, and its task (which ends once the address is free).
async fn directory_in_process(
    addr: SocketAddr,
) -> (SocketAddr, CancellationToken, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("the address is free");
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let config = DirectoryConfig::new(Scope::Host, "host-cake");
    let task = tokio::spawn(server::run(listener, config, stop.clone()));
    (addr, stop, task)
}

/// The node reports its link to the parent as it comes, goes and comes back; `retract` and
/// `clear` return once done, and the other side hears why; `close` waits for the end.
#[tokio::test]
async fn the_parent_link_is_watched_handles_withdraw_when_awaited_and_close_waits() {
    let (addr, stop, directory) = directory_in_process("127.0.0.1:0".parse().unwrap()).await;
    let (a, b) = (node(Some(addr)).await, node(Some(addr)).await);
    assert_eq!(*node(None).await.parent().borrow(), ParentState::NoDirectory);
    let mut parent = a.parent();
    let connected = |p: &ParentState| matches!(p, ParentState::Connected { name, scope: Scope::Host, .. } if name == "host-cake");
    tokio::time::timeout(WAIT, parent.wait_for(connected))
        .await
        .unwrap()
        .unwrap();

    // retract().await: the subscriber's session is dropped, saying the publication went.
    let publication = a.publish("withdrawn", Scope::Host).await.unwrap();
    let mut subscription = b.subscribe("withdrawn", Scope::Host).await.unwrap();
    session(next(&mut subscription).await);
    publication.retract().await.unwrap();
    let SubscriptionEvent::Dropped(d) = next(&mut subscription).await else {
        panic!("expected Dropped")
    };
    assert_eq!(d.reason, DropReason::ClosedByPeer("publication retracted".into()));

    // clear().await: the publisher hears the subscription cleared.
    let mut publication = a.publish("cleared", Scope::Host).await.unwrap();
    let subscription = b.subscribe("cleared", Scope::Host).await.unwrap();
    session(next(&mut publication).await);
    subscription.clear().await.unwrap();
    let PublicationEvent::Dropped(d) = next(&mut publication).await else {
        panic!("expected Dropped")
    };
    assert_eq!(d.reason, DropReason::ClosedByPeer("subscription cleared".into()));

    // The parent goes, and comes back at the same address: the node sees both.
    stop.cancel();
    tokio::time::timeout(WAIT, directory).await.unwrap().unwrap();
    tokio::time::timeout(WAIT, parent.wait_for(|p| *p == ParentState::Connecting))
        .await
        .unwrap()
        .unwrap();
    let (_, stop_again, _) = directory_in_process(addr).await;
    tokio::time::timeout(WAIT, parent.wait_for(connected))
        .await
        .unwrap()
        .unwrap();

    // close().await returns once the node has ended; after it, the node refuses work, and the
    // sessions it held were dropped saying so.
    let _held = b.subscribe("cleared", Scope::Host).await.unwrap();
    // (The directory that came back told the publication its standing there first.)
    while !matches!(next(&mut publication).await, PublicationEvent::Delivered(_)) {}
    tokio::time::timeout(WAIT, a.close())
        .await
        .expect("the node ends");
    tokio::time::timeout(WAIT, a.closed())
        .await
        .expect("and stays ended");
    assert!(matches!(
        a.publish("late", Scope::Host).await,
        Err(PublishError::Stopped)
    ));
    let PublicationEvent::Dropped(d) = next(&mut publication).await else {
        panic!("expected Dropped")
    };
    assert_eq!(d.reason, DropReason::NodeStopped);
    let end = tokio::time::timeout(WAIT, publication.next()).await.unwrap();
    assert!(
        end.is_none(),
        "the publication's events end with the node: {end:?}"
    );
    stop_again.cancel();
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Greeting {
    round: usize,
}
layer_cake::message!(Greeting);

/// A publisher that speaks the moment it hears of a session must not overtake its own
/// acceptance: the subscriber sees `Available` before the first message, every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publishers_first_message_never_arrives_before_available() {
    let host = Daemon::host_cake().await;
    let (a, b) = (node(Some(host.addr)).await, node(Some(host.addr)).await);
    let mut publication = a.publish("greeter", Scope::Host).await.unwrap();
    let greeter = tokio::spawn(async move {
        let mut round = 0;
        while let Some(event) = publication.next().await {
            if let PublicationEvent::Delivered(s) = event {
                let _ = s.send(&Greeting { round }).await;
                round += 1;
            }
        }
    });
    for round in 0..40 {
        let mut subscription = b.subscribe("greeter", Scope::Host).await.unwrap();
        match next(&mut subscription).await {
            SubscriptionEvent::Available(_) => {}
            other => panic!("round {round}: expected Available first, got {other:?}"),
        }
        let SubscriptionEvent::Message(m) = next(&mut subscription).await else {
            panic!("round {round}: expected the greeting")
        };
        assert_eq!(m.decode::<Greeting>().unwrap(), Greeting { round });
    }
    greeter.abort();
}

/// Subscriptions cleared at once, before the publisher has even handled their opening: every
/// session the publisher was told of is also dropped, none is left open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_closed_while_opening_leave_nothing_open_at_the_publisher() {
    let host = Daemon::host_cake().await;
    let (a, b) = (node(Some(host.addr)).await, node(Some(host.addr)).await);
    let mut publication = a.publish("fleeting", Scope::Host).await.unwrap();
    for round in 0..200u32 {
        let subscription = b.subscribe("fleeting", Scope::Host).await.unwrap();
        // Clear at varying moments of the opening handshake.
        for _ in 0..round % 7 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_micros(u64::from(round % 13) * 20)).await;
        subscription.clear().await.unwrap();
    }
    // One that stays: by the time the publisher hears of it, it has heard the end of all the
    // earlier ones (they share one connection, whose events arrive in order).
    let mut last = b.subscribe("fleeting", Scope::Host).await.unwrap();
    let last = session(next(&mut last).await).id();
    let mut open = std::collections::HashSet::new();
    loop {
        match next(&mut publication).await {
            PublicationEvent::Delivered(s) if s.id() == last => break,
            PublicationEvent::Delivered(s) => assert!(open.insert(s.id())),
            PublicationEvent::Dropped(d) => {
                assert!(open.remove(&d.session), "dropped twice or never delivered")
            }
            _ => {}
        }
    }
    assert!(open.is_empty(), "sessions left open at the publisher: {open:?}");
}

/// A subscriber that asks the moment it sees `Available` is always answered: its request may
/// reach the publisher's process before the publisher's own word that it accepted the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribers_first_request_is_never_lost() {
    let host = Daemon::host_cake().await;
    let (a, b) = (node(Some(host.addr)).await, node(Some(host.addr)).await);
    let mut publication = a.publish("answerer", Scope::Host).await.unwrap();
    let answerer = tokio::spawn(async move {
        while let Some(event) = publication.next().await {
            if let PublicationEvent::Message(m) = event {
                let xy: Xy = m.decode().unwrap();
                let _ = m
                    .reply(&Table {
                        rows: vec![vec![xy.x as f64]],
                    })
                    .await;
            }
        }
    });
    for round in 0..60 {
        let mut subscription = b.subscribe("answerer", Scope::Host).await.unwrap();
        let s = session(next(&mut subscription).await);
        let table: Table = s
            .request(&Xy { x: round, y: 1 }, Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(table.rows, vec![vec![round as f64]]);
    }
    answerer.abort();
}
