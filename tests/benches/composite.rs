//! The composite benchmark: group-cake starting, restarting and holding many roles.
//!
//! Run with `cargo bench -p layer-cake-tests --bench composite`. Real processes on loopback:
//! `layer-cake start` of a home of 100 `idle-role` processes (each a runtime node that joins
//! the group's directory and publishes `role:<name>` at GROUP scope).
//!
//! - **start → all connected**: from running `layer-cake start` until a subscriber joined to
//!   the group's directory has seen all 100 publications `Available`.
//! - **restart**: a role is SIGKILLed (restart policy `{"min": 0}`); time until its new
//!   process's publication is `Available` again.
//! - **RSS** of group-cake alone (no home), with 1 role, and with 100 roles.

use layer_cake::{Node, NodeConfig, Scope, Subscription, SubscriptionEvent};
use layer_cake_tests::bin;
use layer_cake_tests::home::TestHome;
use layer_cake_tests::table::{next_within, Table};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::HashSet;
use std::time::{Duration, Instant};

const ROLES: usize = 100;
const START_RUNS: usize = 5;
const RESTART_RUNS: usize = 30;
const DEADLINE: Duration = Duration::from_secs(60);

fn status(t: &TestHome) -> serde_json::Value {
    t.status()
}

async fn watcher(t: &TestHome) -> (Node, Subscription) {
    let directory = status(t)["directory"].as_str().expect("running").parse().unwrap();
    let node = Node::with_config(NodeConfig::new(Some(directory), "bench"))
        .await
        .unwrap();
    let sub = node.subscribe("role:.*", Scope::Group).await.unwrap();
    (node, sub)
}

#[tokio::main]
async fn main() {
    bin("idle-role");
    let idle = bin("idle-role").display().to_string();
    let t = TestHome::new();
    t.ok(&[
        "create",
        "--directory-at-host",
        "127.0.0.1:1",
        "--retry",
        r#"{"min": 0, "max": 0, "intensity": 1000, "period": 60}"#,
    ]);
    t.ok(&["add", &idle, "one"]);
    t.ok(&["add", &idle, "worker", "--role-count", &ROLES.to_string()]);

    // group-cake alone, as a plain directory.
    let mut plain = std::process::Command::new(bin("group-cake"))
        .args(["--listen", "127.0.0.1:0", "--connect-to-directory", "127.0.0.1:1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Measured once it says it is listening (its directory is up).
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(plain.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.starts_with("listening"), "group-cake said {line:?}");
    let rss_plain = layer_cake_tests::procfs::rss_kib(plain.id());
    let _ = plain.kill();
    let _ = plain.wait();

    // One role.
    t.ok(&["start", "one"]);
    let (node, mut sub) = watcher(&t).await;
    while !matches!(
        next_within(&mut sub, DEADLINE).await,
        SubscriptionEvent::Available(_)
    ) {}
    let rss_one = layer_cake_tests::procfs::rss_kib(status(&t)["pid"].as_u64().unwrap() as u32);
    drop((sub, node));
    t.ok(&["stop"]);

    let mut starts = Vec::new();
    let mut rss_many = 0;
    let mut restarts = Vec::new();
    for run in 0..START_RUNS {
        let began = Instant::now();
        t.ok(&["start", "worker-.*"]);
        let (node, mut sub) = watcher(&t).await;
        let mut seen = HashSet::new();
        while seen.len() < ROLES {
            if let SubscriptionEvent::Available(s) = next_within(&mut sub, DEADLINE).await {
                seen.insert(s.name().to_string());
            }
        }
        starts.push(began.elapsed());
        if run == 0 {
            rss_many = layer_cake_tests::procfs::rss_kib(status(&t)["pid"].as_u64().unwrap() as u32);
            // Restarts: kill one role at a time; wait for its successor's publication.
            for i in 0..RESTART_RUNS {
                let role = format!("worker-{}", i % ROLES);
                let st = status(&t);
                let pid = st["roles"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["role"] == role.as_str())
                    .and_then(|r| r["pid"].as_u64())
                    .expect("the role runs") as i32;
                let killed = Instant::now();
                kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
                let name = format!("role:{role}");
                loop {
                    if let SubscriptionEvent::Available(s) = next_within(&mut sub, DEADLINE).await {
                        if s.name() == name {
                            break;
                        }
                    }
                }
                restarts.push(killed.elapsed());
            }
        }
        drop((sub, node));
        t.ok(&["stop"]);
    }

    println!();
    println!(
        "layer-cake composite benchmark ({ROLES} idle runtime roles, loopback, CPUs allowed: {})",
        layer_cake_tests::procfs::cpus_allowed()
    );
    println!();
    let table = Table::new(38);
    table.row(&format!("start -> all {ROLES} roles connected"), starts);
    table.row("SIGKILL -> restarted role Available", restarts);
    println!();
    println!(
        "group-cake RSS: alone {rss_plain} KiB, with 1 role {rss_one} KiB, with {ROLES} roles {rss_many} KiB"
    );
}
