//! The caller against real sessions, in one process (PROCESS scope, no directory): policies,
//! calls to all, one-way casts, bounds, deadlines, retries and instances that go with calls
//! in flight.

use layer_cake::caller::{Call, CallError, Caller, CallerConfig, Policy};
use layer_cake::{Incoming, Node, NodeConfig, Publication, PublicationEvent, Scope};
use layer_cake_tests::WAIT;
use std::collections::HashMap;
use std::time::Duration;

async fn node() -> Node {
    Node::with_config(NodeConfig::new(None, "caller-test"))
        .await
        .unwrap()
}

/// Publishes `names` at PROCESS scope and a caller over them, once every one has joined.
async fn pool(node: &Node, names: &[&str], config: CallerConfig) -> (Vec<Publication>, Caller) {
    let mut publications = Vec::new();
    for name in names {
        publications.push(node.publish(name, Scope::Process).await.unwrap());
    }
    let caller = node.caller("w:.*", Scope::Process, config).await.unwrap();
    caller.wait_for(names.len(), WAIT).await.unwrap();
    (publications, caller)
}

/// The next message a publication receives.
async fn request(p: &mut Publication) -> Incoming {
    loop {
        match tokio::time::timeout(WAIT, p.next())
            .await
            .expect("a message in time")
        {
            Some(PublicationEvent::Message(m)) => return m,
            Some(_) => continue,
            None => panic!("publication ended"),
        }
    }
}

/// Answers every request on `p` with its name (and plain messages with nothing) until the
/// returned task is aborted, which retracts `p`.
fn answer_with_name(mut p: Publication) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let name = p.name().to_string();
        while let Some(e) = p.next().await {
            if let PublicationEvent::Message(m) = e {
                if m.is_request() {
                    let _ = m.reply(&name).await;
                }
            }
        }
    })
}

async fn counts(caller: &Caller, call: &Call, n: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        let name: String = caller.one(&"job", call).await.unwrap();
        *counts.entry(name).or_insert(0) += 1;
    }
    counts
}

#[tokio::test]
async fn calls_are_spread_evenly_in_turn_and_by_least_outstanding() {
    let n = node().await;
    let (publications, caller) = pool(&n, &["w:a", "w:b", "w:c"], CallerConfig::default()).await;
    let _answering: Vec<_> = publications.into_iter().map(answer_with_name).collect();
    for policy in [Policy::RoundRobin, Policy::LeastOutstanding, Policy::NearestFirst] {
        let counts = counts(&caller, &Call::new().policy(policy), 30).await;
        assert_eq!(counts.len(), 3, "{policy:?}: {counts:?}");
        assert!(counts.values().all(|&c| c == 10), "{policy:?}: {counts:?}");
    }
    let counts = counts(&caller, &Call::new().policy(Policy::Random), 60).await;
    assert!(counts.len() >= 2, "random went to one instance only: {counts:?}");
}

#[tokio::test]
async fn a_key_sticks_to_one_instance_and_only_the_keys_of_one_that_goes_move() {
    let n = node().await;
    let names = ["w:0", "w:1", "w:2", "w:3", "w:4", "w:5"];
    let (publications, caller) = pool(&n, &names, CallerConfig::default()).await;
    let mut answering: Vec<_> = publications.into_iter().map(answer_with_name).collect();
    let owners = || async {
        let mut owners = HashMap::new();
        for k in 0..300 {
            let key = format!("user-{k}");
            let name: String = caller.one(&"job", &Call::new().key(key.clone())).await.unwrap();
            owners.insert(key, name);
        }
        owners
    };
    let before = owners().await;
    assert_eq!(before, owners().await, "a key moved with nothing changed");
    let reached: std::collections::HashSet<&String> = before.values().collect();
    assert_eq!(reached.len(), 6, "300 keys over 6 instances reach them all");
    // w:2 retracts: its keys move, and only they.
    answering.remove(2).abort();
    assert!(
        caller.wait_until(WAIT, |all| all.len() == 5).await,
        "w:2 never left"
    );
    let after = owners().await;
    let mut moved = 0;
    for (key, was) in &before {
        if was == "w:2" {
            assert_ne!(after[key], "w:2");
            moved += 1;
        } else {
            assert_eq!(&after[key], was, "{key} moved from {was}, which stayed");
        }
    }
    assert!(moved > 0);
}

#[tokio::test]
async fn a_call_to_all_gets_one_answer_per_instance_and_a_silent_one_costs_only_its_entry() {
    let n = node().await;
    let (mut publications, caller) =
        pool(&n, &["w:a", "w:b", "w:c", "w:mute"], CallerConfig::default()).await;
    let mut mute = publications.pop().unwrap();
    let _answering: Vec<_> = publications.into_iter().map(answer_with_name).collect();
    let started = tokio::time::Instant::now();
    let deadline = Duration::from_millis(300);
    let asking = tokio::spawn({
        let caller = caller.clone();
        async move {
            caller
                .all::<_, String>(&"job", &Call::new().deadline(deadline))
                .await
        }
    });
    let _held = request(&mut mute).await; // received, never answered
    let answers = asking.await.unwrap();
    assert!(started.elapsed() < WAIT);
    assert_eq!(answers.len(), 4);
    for a in &answers {
        match a.instance.name.as_str() {
            "w:mute" => assert!(matches!(a.result, Err(CallError::Timeout(_))), "{:?}", a.result),
            name => assert_eq!(a.result.as_deref().unwrap(), name),
        }
    }
}

#[tokio::test]
async fn casts_reach_one_instance_or_every_instance_and_get_no_reply() {
    let n = node().await;
    let (mut publications, caller) = pool(&n, &["w:a", "w:b"], CallerConfig::default()).await;
    let to = caller
        .cast(&"hello".to_string(), &Call::new().policy(Policy::RoundRobin))
        .await
        .unwrap();
    let target = publications.iter_mut().find(|p| p.name() == to.name).unwrap();
    let m = request(target).await;
    assert!(!m.is_request());
    assert_eq!(m.decode::<String>().unwrap(), "hello");
    let sent = caller.cast_all(&"everyone".to_string()).await;
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|a| a.result.is_ok()));
    for p in &mut publications {
        assert_eq!(request(p).await.decode::<String>().unwrap(), "everyone");
    }
}

#[tokio::test]
async fn wait_for_resolves_when_enough_instances_come_and_fails_at_its_deadline() {
    let n = node().await;
    let caller = n
        .caller("w:.*", Scope::Process, CallerConfig::default())
        .await
        .unwrap();
    let waiting = tokio::spawn({
        let caller = caller.clone();
        async move { caller.wait_for(2, WAIT).await }
    });
    let _a = n.publish("w:a", Scope::Process).await.unwrap();
    let _b = n.publish("w:b", Scope::Process).await.unwrap();
    assert_eq!(waiting.await.unwrap().unwrap(), 2);
    let err = caller.wait_for(3, Duration::from_millis(50)).await.unwrap_err();
    assert!(
        matches!(
            err,
            CallError::TooFew {
                wanted: 3,
                found: 2,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_full_caller_says_busy_at_once_and_a_lost_instance_fails_its_calls() {
    let n = node().await;
    let config = CallerConfig {
        per_instance: 1,
        waiting: 1,
        deadline: Duration::from_secs(60),
        ..CallerConfig::default()
    };
    let (mut publications, caller) = pool(&n, &["w:slow"], config).await;
    // One in flight (the instance holds it), one waiting: the next is refused at once.
    let in_flight = tokio::spawn({
        let caller = caller.clone();
        async move { caller.one::<_, String>(&"first", &Call::new()).await }
    });
    let held = request(&mut publications[0]).await;
    let waiting = tokio::spawn({
        let caller = caller.clone();
        async move { caller.one::<_, String>(&"second", &Call::new()).await }
    });
    assert!(
        caller.wait_until(WAIT, |_| caller.waiting() == 1).await,
        "the second call never waited"
    );
    let busy = caller.one::<_, String>(&"third", &Call::new()).await.unwrap_err();
    assert!(matches!(busy, CallError::Busy(1)), "{busy}");

    // The instance goes: its call in flight fails (not idempotent), the waiting one finds no
    // instance; neither waits for the 60 s deadline.
    drop(held);
    publications.clear();
    let lost = in_flight.await.unwrap().unwrap_err();
    assert!(matches!(lost, CallError::InstanceLost { .. }), "{lost}");
    let none = waiting.await.unwrap().unwrap_err();
    assert!(matches!(none, CallError::NoInstances), "{none}");
    assert_eq!(caller.waiting(), 0);
}

/// Two instances; the one that gets the first try drops it unanswered. Returns the result,
/// the call id of each request the instances saw, and the survivor's name; `retried`: the
/// call is expected to be tried again.
async fn first_try_dropped(
    call: Call,
    retried: bool,
) -> (Result<String, CallError>, Vec<Option<u64>>, String) {
    let n = node().await;
    let (mut publications, caller) = pool(&n, &["w:a", "w:b"], CallerConfig::default()).await;
    let asking = tokio::spawn({
        let caller = caller.clone();
        async move { caller.one::<_, String>(&"job", &call).await }
    });
    let (first, second) = publications.split_at_mut(1);
    let (got, first_id) = tokio::select! {
        m = request(&mut first[0]) => (0, m.call_id()),
        m = request(&mut second[0]) => (1, m.call_id()),
    };
    // Dropping the request unanswered tells the caller it was not processed.
    let mut survivor = publications.remove(1 - got);
    let survivor_name = survivor.name().to_string();
    let mut ids = vec![first_id];
    if retried {
        let m = request(&mut survivor).await;
        ids.push(m.call_id());
        m.reply(&survivor_name).await.unwrap();
        return (asking.await.unwrap(), ids, survivor_name);
    }
    let result = asking.await.unwrap();
    // Had the call been tried again, the survivor would hear that before this marker.
    caller.cast_all(&"marker".to_string()).await;
    let m = request(&mut survivor).await;
    if !m.is_request() {
        assert_eq!(m.decode::<String>().unwrap(), "marker");
    } else {
        ids.push(m.call_id());
    }
    (result, ids, survivor_name)
}

#[tokio::test]
async fn an_idempotent_call_is_tried_on_another_instance_with_the_same_call_id() {
    let (result, ids, survivor) = first_try_dropped(Call::new().idempotent(), true).await;
    assert_eq!(result.unwrap(), survivor);
    assert_eq!(ids.len(), 2, "the retry reached the other instance");
    assert!(ids[0].is_some(), "a call that may be retried carries an id");
    assert_eq!(ids[0], ids[1], "both tries carry the same id");
}

#[tokio::test]
async fn a_call_not_marked_idempotent_is_never_tried_twice() {
    let (result, ids, _) = first_try_dropped(Call::new(), false).await;
    assert!(
        matches!(result, Err(CallError::InstanceLost { .. })),
        "{result:?}"
    );
    assert_eq!(ids, [None], "one try, and no call id");
}

#[tokio::test]
async fn a_call_nobody_answers_ends_at_its_deadline() {
    let n = node().await;
    let config = CallerConfig {
        deadline: Duration::from_millis(100),
        ..CallerConfig::default()
    };
    let (mut publications, caller) = pool(&n, &["w:mute"], config).await;
    let asking = tokio::spawn({
        let caller = caller.clone();
        async move { caller.one::<_, String>(&"job", &Call::new().idempotent()).await }
    });
    let _held = request(&mut publications[0]).await;
    let err = asking.await.unwrap().unwrap_err();
    assert!(matches!(err, CallError::Timeout(_)), "{err}");
}

#[tokio::test]
async fn a_later_call_is_made_at_its_time_and_a_dropped_one_never() {
    let n = node().await;
    let (mut publications, caller) = pool(&n, &["w:a"], CallerConfig::default()).await;
    let at = tokio::time::Instant::now() + Duration::from_millis(50);
    let later = caller.later::<_, String>(at, "later".to_string(), Call::new());
    let m = request(&mut publications[0]).await;
    assert!(tokio::time::Instant::now() >= at, "made before its time");
    assert_eq!(m.decode::<String>().unwrap(), "later");
    m.reply(&"done".to_string()).await.unwrap();
    assert_eq!(later.await.unwrap(), "done");

    // Dropped before its time: never made (the marker, sent after its time, comes first).
    let at = tokio::time::Instant::now() + Duration::from_millis(20);
    drop(caller.later::<_, String>(at, "dropped".to_string(), Call::new()));
    tokio::time::sleep_until(at + Duration::from_millis(20)).await;
    caller.cast(&"marker".to_string(), &Call::new()).await.unwrap();
    assert_eq!(
        request(&mut publications[0]).await.decode::<String>().unwrap(),
        "marker"
    );
}

#[tokio::test]
async fn a_periodic_call_repeats_until_its_handle_is_dropped() {
    let n = node().await;
    let (mut publications, caller) = pool(&n, &["w:a"], CallerConfig::default()).await;
    let period = Duration::from_millis(50);
    let mut every = caller.every::<_, String>(period, "tick".to_string(), Call::new());
    for k in 0..3 {
        let m = request(&mut publications[0]).await;
        assert_eq!(m.decode::<String>().unwrap(), "tick");
        m.reply(&format!("answer {k}")).await.unwrap();
        assert_eq!(every.next().await.unwrap().unwrap(), format!("answer {k}"));
    }
    // Dropped well within a period of its last call: no call after it (the marker, sent two
    // periods later, is the next thing the instance hears).
    drop(every);
    tokio::time::sleep(period * 2).await;
    caller.cast(&"marker".to_string(), &Call::new()).await.unwrap();
    assert_eq!(
        request(&mut publications[0]).await.decode::<String>().unwrap(),
        "marker"
    );
}
