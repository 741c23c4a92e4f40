//! The application API against a real host-cake: sessions, typed messages both ways,
//! request deadlines, retraction and clearing, in-process matching, refusals.

use layer_cake::{Event, Node, NodeConfig, PublishError, RequestError, Scope, Session, SubscribeError};
use layer_cake_tests::{Daemon, WAIT};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

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

async fn next(events: &mut (impl NextEvent + ?Sized)) -> Event {
    tokio::time::timeout(WAIT, events.next_event())
        .await
        .expect("an event within the deadline")
        .expect("open")
}

trait NextEvent {
    async fn next_event(&mut self) -> Option<Event>;
}
impl NextEvent for layer_cake::Publication {
    async fn next_event(&mut self) -> Option<Event> {
        self.next().await
    }
}
impl NextEvent for layer_cake::Subscription {
    async fn next_event(&mut self) -> Option<Event> {
        self.next().await
    }
}

fn session(event: Event) -> Session {
    match event {
        Event::Available(s) | Event::Delivered(s) => s,
        other => panic!("expected a session, got {other:?}"),
    }
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
    let Event::Message(m) = next(&mut publication).await else {
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
    let Event::Message(m) = next(&mut subscription).await else {
        panic!("expected a message")
    };
    assert_eq!(m.type_name(), "Table");

    // Retracting ends the session on both sides.
    publication.retract();
    let Event::Dropped(d) = next(&mut subscription).await else {
        panic!("expected Dropped")
    };
    assert_eq!(d.name, "tables");
    assert!(d.reason.contains("retracted"), "{}", d.reason);
}

#[tokio::test]
async fn clearing_a_subscription_drops_the_publishers_session() {
    let host = Daemon::host_cake().await;
    let (a, b) = (node(Some(host.addr)).await, node(Some(host.addr)).await);
    let mut publication = a.publish("clearable", Scope::Host).await.unwrap();
    let mut subscription = b.subscribe("clear.*", Scope::Host).await.unwrap();
    session(next(&mut subscription).await);
    let delivered = session(next(&mut publication).await);
    subscription.clear();
    let Event::Dropped(d) = next(&mut publication).await else {
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
        if let Event::Message(_) = next(&mut publication).await {
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
    assert_eq!(s.peer_addr(), None, "in-process sessions use no socket");
    let asking = tokio::spawn(async move { s.request::<_, String>(&"ping", Duration::from_secs(5)).await });
    session(next(&mut publication).await);
    let Event::Message(m) = next(&mut publication).await else {
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
    assert_eq!(
        n.publish("taken", Scope::Host).await.unwrap_err(),
        PublishError::AlreadyPublished("taken".into())
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
    let client = node(Some(host.addr)).await;
    let mut subscription = client.subscribe("w:[-a-f0-9]+", Scope::Host).await.unwrap();
    let mut names = std::collections::BTreeSet::new();
    while names.len() < 8 {
        names.insert(session(next(&mut subscription).await).name().to_string());
    }
    assert_eq!(names.len(), 8);
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
            if let Event::Delivered(s) = event {
                let _ = s.send(&Greeting { round }).await;
                round += 1;
            }
        }
    });
    for round in 0..40 {
        let mut subscription = b.subscribe("greeter", Scope::Host).await.unwrap();
        match next(&mut subscription).await {
            Event::Available(_) => {}
            other => panic!("round {round}: expected Available first, got {other:?}"),
        }
        let Event::Message(m) = next(&mut subscription).await else {
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
        subscription.clear();
    }
    // One that stays: by the time the publisher hears of it, it has heard the end of all the
    // earlier ones (they share one connection, whose events arrive in order).
    let mut last = b.subscribe("fleeting", Scope::Host).await.unwrap();
    let last = session(next(&mut last).await).id();
    let mut open = std::collections::HashSet::new();
    loop {
        match next(&mut publication).await {
            Event::Delivered(s) if s.id() == last => break,
            Event::Delivered(s) => assert!(open.insert(s.id())),
            Event::Dropped(d) => assert!(open.remove(&d.session), "dropped twice or never delivered"),
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
            if let Event::Message(m) = event {
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
