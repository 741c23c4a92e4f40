//! The spool (worker pool) against real sessions, in one process (PROCESS scope, no
//! directory): spreading, bounds, deadlines, and workers that go with requests in flight.

use layer_cake::spool::{Idempotence, Spool, SpoolConfig, SpoolError};
use layer_cake::{Incoming, Node, NodeConfig, Publication, PublicationEvent, Scope};
use layer_cake_tests::WAIT;
use std::time::Duration;

async fn node() -> Node {
    Node::with_config(NodeConfig::new(None, "spool-test"))
        .await
        .unwrap()
}

/// Publishes `names` at PROCESS scope and fills a spool with them through a subscription.
async fn pool(node: &Node, names: &[&str], config: SpoolConfig) -> (Vec<Publication>, Spool) {
    let mut publications = Vec::new();
    for name in names {
        publications.push(node.publish(name, Scope::Process).await.unwrap());
    }
    let spool = Spool::new(config);
    spool.feed(node.subscribe("w:.*", Scope::Process).await.unwrap());
    until("every worker to join", || spool.workers() == names.len()).await;
    (publications, spool)
}

/// Waits (at most WAIT) for a condition that events elsewhere make true.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The next request a publication receives.
async fn request(p: &mut Publication) -> Incoming {
    loop {
        match tokio::time::timeout(WAIT, p.next())
            .await
            .expect("a request in time")
        {
            Some(PublicationEvent::Message(m)) => return m,
            Some(_) => continue,
            None => panic!("publication ended"),
        }
    }
}

/// Answers every request on `p` with its name, for ever.
fn answer_with_name(mut p: Publication) {
    tokio::spawn(async move {
        let name = p.name().to_string();
        while let Some(e) = p.next().await {
            if let PublicationEvent::Message(m) = e {
                let _ = m.reply(&name).await;
            }
        }
    });
}

#[tokio::test]
async fn requests_are_spread_evenly_over_idle_workers() {
    let n = node().await;
    let (publications, spool) = pool(&n, &["w:a", "w:b", "w:c"], SpoolConfig::default()).await;
    publications.into_iter().for_each(answer_with_name);
    let mut counts = std::collections::HashMap::new();
    for _ in 0..30 {
        let name: String = spool.request(&"job", Idempotence::Once).await.unwrap();
        *counts.entry(name).or_insert(0) += 1;
    }
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(counts.values().all(|&c| c == 10), "{counts:?}");
}

#[tokio::test]
async fn a_full_spool_says_busy_at_once_and_a_lost_worker_fails_its_requests() {
    let n = node().await;
    let config = SpoolConfig {
        per_worker: 1,
        waiting: 1,
        deadline: Duration::from_secs(60),
    };
    let (mut publications, spool) = pool(&n, &["w:slow"], config).await;
    // One in flight (the worker holds it), one waiting: the next is refused at once.
    let in_flight = tokio::spawn({
        let spool = spool.clone();
        async move { spool.request::<_, String>(&"first", Idempotence::Once).await }
    });
    let held = request(&mut publications[0]).await;
    let waiting = tokio::spawn({
        let spool = spool.clone();
        async move { spool.request::<_, String>(&"second", Idempotence::Once).await }
    });
    until("the second request to wait", || spool.waiting() == 1).await;
    let busy = spool
        .request::<_, String>(&"third", Idempotence::Once)
        .await
        .unwrap_err();
    assert!(matches!(busy, SpoolError::Busy(1)), "{busy}");

    // The worker goes: its request in flight fails (not idempotent), the waiting one finds
    // no worker; neither waits for the 60 s deadline.
    drop(held);
    publications.clear();
    let lost = in_flight.await.unwrap().unwrap_err();
    assert!(matches!(lost, SpoolError::WorkerLost { .. }), "{lost}");
    let none = waiting.await.unwrap().unwrap_err();
    assert!(matches!(none, SpoolError::NoWorkers), "{none}");
    assert_eq!(spool.waiting(), 0);
    let none = spool
        .request::<_, String>(&"fourth", Idempotence::Once)
        .await
        .unwrap_err();
    assert!(matches!(none, SpoolError::NoWorkers), "{none}");
}

#[tokio::test]
async fn an_idempotent_request_moves_to_another_worker_when_its_worker_goes() {
    let n = node().await;
    let (mut publications, spool) = pool(&n, &["w:a", "w:b"], SpoolConfig::default()).await;
    let asking = tokio::spawn({
        let spool = spool.clone();
        async move { spool.request::<_, String>(&"job", Idempotence::Idempotent).await }
    });
    // Whichever worker got it goes without answering; the other answers the retry.
    let (first, second) = publications.split_at_mut(1);
    let got = tokio::select! {
        m = request(&mut first[0]) => { drop(m); 0 }
        m = request(&mut second[0]) => { drop(m); 1 }
    };
    let survivor = publications.remove(1 - got);
    let survivor_name = survivor.name().to_string();
    publications.clear();
    answer_with_name(survivor);
    assert_eq!(asking.await.unwrap().unwrap(), survivor_name);
}

#[tokio::test]
async fn a_request_nobody_answers_ends_at_its_deadline() {
    let n = node().await;
    let config = SpoolConfig {
        deadline: Duration::from_millis(100),
        ..SpoolConfig::default()
    };
    let (mut publications, spool) = pool(&n, &["w:mute"], config).await;
    let asking = tokio::spawn({
        let spool = spool.clone();
        async move { spool.request::<_, String>(&"job", Idempotence::Idempotent).await }
    });
    let _held = request(&mut publications[0]).await;
    let err = asking.await.unwrap().unwrap_err();
    assert!(matches!(err, SpoolError::Timeout(_)), "{err}");
}
