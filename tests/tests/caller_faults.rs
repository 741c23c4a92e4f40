//! The caller against instances in other processes that freeze (SIGSTOP) and come back
//! (SIGCONT): hedging, ejection and probes.

use layer_cake::caller::{Call, Caller, CallerConfig, Policy};
use layer_cake::{Node, NodeConfig, Scope};
use layer_cake_tests::{echoes, Daemon, Proc, WAIT};
use nix::sys::signal::Signal;
use std::collections::HashMap;
use std::time::Duration;

async fn frozen(host: &Daemon, n: usize) -> Vec<Proc> {
    echoes(host, "frozen", n).await
}

async fn caller(host: &Daemon, n: usize) -> (Node, Caller) {
    let node = Node::with_config(NodeConfig::new(Some(host.addr), "faults"))
        .await
        .unwrap();
    let caller = node
        .caller("frozen-[0-9]+", Scope::Host, CallerConfig::default())
        .await
        .unwrap();
    caller.wait_for(n, WAIT).await.unwrap();
    (node, caller)
}

/// Who answered each of `n` calls made with `call` (errors counted as "error").
async fn answered_by(caller: &Caller, call: &Call, n: usize) -> HashMap<String, usize> {
    let mut by = HashMap::new();
    for _ in 0..n {
        let who = match caller
            .one_raw("string", &serde_json::value::to_raw_value("x").unwrap(), call)
            .await
        {
            Ok((instance, _)) => instance.name.clone(),
            Err(_) => "error".to_string(),
        };
        *by.entry(who).or_insert(0) += 1;
    }
    by
}

#[tokio::test]
async fn a_frozen_instance_costs_hedged_calls_nothing_and_comes_back_after_it_thaws() {
    let host = Daemon::host_cake().await;
    let procs = frozen(&host, 3).await;
    let (_node, caller) = caller(&host, 3).await;
    // A 2 s deadline: a call that waited for the frozen instance would fail with a timeout
    // (a timeout is not retried), so every call answering shows none waited for it.
    let call = Call::new()
        .policy(Policy::RoundRobin)
        .idempotent()
        .deadline(Duration::from_secs(2));
    let warm = answered_by(&caller, &call, 30).await;
    assert_eq!(warm.len(), 3, "{warm:?}");

    procs[0].freeze().await;
    let frozen = answered_by(&caller, &call, 60).await;
    assert_eq!(frozen.get("error"), None, "a call failed: {frozen:?}");
    assert_eq!(frozen.get("frozen-0"), None, "{frozen:?}");
    assert_eq!(frozen.values().sum::<usize>(), 60);
    let out: Vec<String> = caller
        .status()
        .into_iter()
        .filter(|s| s.out_of_rotation)
        .map(|s| s.instance.name)
        .collect();
    // (A healthy instance beaten by a hedge on a busy machine may be out for a moment too.)
    assert!(out.contains(&"frozen-0".to_string()), "out of rotation: {out:?}");

    // Thawed, it answers the next probe and is back in rotation.
    procs[0].signal(Signal::SIGCONT);
    let back = caller
        .wait_until(WAIT, |all| {
            all.iter()
                .any(|s| s.instance.name == "frozen-0" && !s.out_of_rotation)
        })
        .await;
    assert!(back, "the thawed instance never came back");
    let by = answered_by(&caller, &call, 3).await;
    assert!(by.contains_key("frozen-0"), "{by:?}");
}

#[tokio::test]
async fn a_frozen_instance_misses_one_plain_call_and_is_then_left_out() {
    let host = Daemon::host_cake().await;
    let procs = frozen(&host, 3).await;
    let (_node, caller) = caller(&host, 3).await;
    let call = Call::new()
        .policy(Policy::RoundRobin)
        .deadline(Duration::from_millis(300));
    assert_eq!(answered_by(&caller, &call, 9).await.len(), 3);
    procs[2].freeze().await;
    // Not idempotent: the call that reaches the frozen instance fails at its deadline, and
    // takes it out of rotation; no later call goes to it (round-robin alone would lose one in
    // three).
    let by = answered_by(&caller, &call, 30).await;
    assert!(by.get("error").copied().unwrap_or(0) <= 1, "{by:?}");
    assert_eq!(by.get("frozen-2"), None, "{by:?}");
    procs[2].signal(Signal::SIGCONT);
}

#[tokio::test]
async fn a_call_to_all_with_a_frozen_instance_gets_the_others_and_a_timeout_for_it() {
    let host = Daemon::host_cake().await;
    let procs = frozen(&host, 4).await;
    let (_node, caller) = caller(&host, 4).await;
    procs[1].freeze().await;
    let call = Call::new().deadline(Duration::from_millis(500));
    let answers = caller.all::<_, String>(&"x".to_string(), &call).await;
    procs[1].signal(Signal::SIGCONT);
    assert_eq!(answers.len(), 4);
    for a in &answers {
        if a.instance.name == "frozen-1" {
            assert!(
                matches!(a.result, Err(layer_cake::caller::CallError::Timeout(_))),
                "{:?}",
                a.result
            );
        } else {
            assert_eq!(a.result.as_deref().unwrap(), "x", "{}", a.instance);
        }
    }
}

#[tokio::test]
async fn an_instance_killed_mid_call_fails_a_plain_call_and_an_idempotent_one_moves_on() {
    let host = Daemon::host_cake().await;
    let mut procs = frozen(&host, 2).await;
    let (_node, caller) = caller(&host, 2).await;
    let body = serde_json::value::to_raw_value("x").unwrap();
    // A key that frozen-0 owns.
    let mut key = 0;
    let key = loop {
        let call = Call::new().key(key.to_string());
        if caller.one_raw("string", &body, &call).await.unwrap().0.name == "frozen-0" {
            break key.to_string();
        }
        key += 1;
    };
    // frozen-0 stops, so both calls are surely in flight on it when it is killed.
    procs[0].freeze().await;
    let plain = tokio::spawn({
        let (caller, body, key) = (caller.clone(), body.clone(), key.clone());
        async move { caller.one_raw("string", &body, &Call::new().key(key)).await }
    });
    let idempotent = tokio::spawn({
        let (caller, body, key) = (caller.clone(), body.clone(), key.clone());
        async move {
            caller
                .one_raw("string", &body, &Call::new().key(key).idempotent())
                .await
        }
    });
    tokio::task::yield_now().await;
    procs.remove(0).kill9().await;
    let lost = plain.await.unwrap().unwrap_err();
    assert!(
        matches!(lost, layer_cake::caller::CallError::InstanceLost { .. }),
        "{lost}"
    );
    let (instance, _) = idempotent.await.unwrap().unwrap();
    assert_eq!(instance.name, "frozen-1");
}
