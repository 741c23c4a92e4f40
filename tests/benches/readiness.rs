//! The readiness benchmark: ordering by names, and reload, in a composite of 100 roles.
//!
//! Run with `cargo bench -p layer-cake-tests --bench readiness`. Real processes on loopback;
//! every role is an `idle-role` (a runtime node that publishes `role:<name>` at GROUP scope
//! and answers each string with itself), declared ready once it has published that name.
//!
//! - **start --wait, no ordering**: `layer-cake start --wait` of 100 roles until every one is
//!   ready (the figure to compare with).
//! - **start --wait, 10 levels**: the same 100 roles in 10 levels of 10, each level `--after`
//!   the names of the level before (`role:lvl3-.*` waits for `role:lvl2-.*`).
//! - **reload of one changed role**: with 100 roles running, one role's settings changed
//!   (`update --env`), then `layer-cake reload`, until the changed role's new process is
//!   `Available` again; meanwhile a task sends requests to the other 99 one after another,
//!   and every one must be answered (and the 99 keep their pids).

use layer_cake::{Node, NodeConfig, Scope, Session, SubscriptionEvent};
use layer_cake_tests::bin;
use layer_cake_tests::home::TestHome;
use layer_cake_tests::table::{next_within, Table};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LEVELS: usize = 10;
const PER_LEVEL: usize = 10;
const ROLES: usize = LEVELS * PER_LEVEL;
const START_RUNS: usize = 5;
const RELOAD_RUNS: usize = 10;
const DEADLINE: Duration = Duration::from_secs(60);

/// A home of 100 idle roles, each ready once it has published its name; in levels that wait
/// for the level before when `ordered`.
fn home(ordered: bool) -> TestHome {
    let idle = bin("idle-role").display().to_string();
    let t = TestHome::new();
    t.ok(&["create", "--directory-at-host", "127.0.0.1:1"]);
    for level in 0..LEVELS {
        for i in 0..PER_LEVEL {
            let name = format!("lvl{level}-{i}");
            let ready = format!("role:{name}");
            let mut args = vec!["add", &idle, &name, "--ready-when-published", &ready];
            let after = format!("role:lvl{}-.*", level.wrapping_sub(1));
            if ordered && level > 0 {
                args.extend(["--after", &after]);
            }
            t.ok(&args);
        }
    }
    t.ok(&["list"]);
    t
}

/// `start --wait` until all 100 are ready, `START_RUNS` times.
fn starts(t: &TestHome) -> Vec<Duration> {
    (0..START_RUNS)
        .map(|_| {
            let began = Instant::now();
            let said = t.ok(&["start", "--wait", "--wait-timeout", "60"]);
            let took = began.elapsed();
            assert!(
                said.contains(&format!("{ROLES} roles ready")),
                "start said {said}"
            );
            t.ok(&["stop"]);
            took
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let unordered = home(false);
    let ordered = home(true);
    let plain_starts = starts(&unordered);
    let ordered_starts = starts(&ordered);

    // Reload of one changed role while the other 99 serve.
    let t = unordered;
    t.ok(&["start", "--wait", "--wait-timeout", "60"]);
    let directory = t.status()["directory"]
        .as_str()
        .expect("running")
        .parse()
        .unwrap();
    let node = Node::with_config(NodeConfig::new(Some(directory), "bench"))
        .await
        .unwrap();
    let mut sub = node.subscribe("role:.*", Scope::Group).await.unwrap();
    let mut sessions: HashMap<String, Session> = HashMap::new();
    while sessions.len() < ROLES {
        if let SubscriptionEvent::Available(s) = next_within(&mut sub, DEADLINE).await {
            sessions.insert(s.name().to_string(), s);
        }
    }
    let mut reloads = Vec::new();
    let (mut asked, mut failed) = (0u64, 0u64);
    for run in 0..RELOAD_RUNS {
        let changed = format!("lvl{}-{}", run % LEVELS, run % PER_LEVEL);
        let pids_before = t.role_pids();
        let others: Vec<Session> = sessions
            .iter()
            .filter(|(name, _)| **name != format!("role:{changed}"))
            .map(|(_, s)| s.clone())
            .collect();
        assert_eq!(others.len(), ROLES - 1);
        t.ok(&["update", &changed, "--env", &format!("RUN={run}")]);
        let done = Arc::new(AtomicBool::new(false));
        let (ok, bad) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let requests = tokio::spawn({
            let (done, ok, bad) = (done.clone(), ok.clone(), bad.clone());
            async move {
                // Bounded: at most 100,000 requests, and only while the reload is under way.
                for i in 0..100_000usize {
                    if done.load(Ordering::Relaxed) {
                        break;
                    }
                    let session = &others[i % others.len()];
                    match session.request::<_, String>("ping", Duration::from_secs(2)).await {
                        Ok(text) if text == "ping" => ok.fetch_add(1, Ordering::Relaxed),
                        _ => bad.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }
        });
        let began = Instant::now();
        t.ok(&["reload"]);
        let name = format!("role:{changed}");
        loop {
            match next_within(&mut sub, DEADLINE).await {
                SubscriptionEvent::Available(s) if s.name() == name => {
                    sessions.insert(name.clone(), s);
                    break;
                }
                SubscriptionEvent::Dropped(d) if d.name != name => {
                    panic!("{} was dropped by a reload of {changed}: {}", d.name, d.reason)
                }
                _ => {}
            }
        }
        reloads.push(began.elapsed());
        done.store(true, Ordering::Relaxed);
        requests.await.unwrap();
        asked += ok.load(Ordering::Relaxed) + bad.load(Ordering::Relaxed);
        failed += bad.load(Ordering::Relaxed);
        let pids_after = t.role_pids();
        for (role, pid) in &pids_before {
            if *role != changed {
                assert!(
                    pids_after.contains(&(role.clone(), *pid)),
                    "{role} was restarted by the reload"
                );
            }
        }
    }
    drop((sub, node));
    t.ok(&["stop"]);

    println!();
    println!(
        "layer-cake readiness benchmark ({ROLES} idle runtime roles, loopback, CPUs allowed: {})",
        layer_cake_tests::procfs::cpus_allowed()
    );
    println!();
    let table = Table::new(42);
    table.row(&format!("start --wait, {ROLES} roles, no ordering"), plain_starts);
    table.row(
        &format!("start --wait, {ROLES} roles, {LEVELS} levels --after"),
        ordered_starts,
    );
    table.row("reload of 1 changed role -> Available", reloads);
    println!();
    println!(
        "requests to the other {} roles during the reloads: {asked}, failed {failed}",
        ROLES - 1
    );
}
