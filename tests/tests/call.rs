//! `layer-cake call` against real processes: host-cake on a free loopback port and publisher
//! demos that answer `Ping` with `Pong`.

use layer_cake_tests::{bin, publisher, Daemon, Proc};
use std::process::Output;

/// Runs `layer-cake call ARGS --directory DIR`.
async fn call(directory: &str, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(bin("layer-cake"));
    cmd.arg("call").args(args).args(["--directory", directory]);
    cmd.env_remove("LC_DIRECTORY").env("LC_DEBUG_LEVEL", "warn");
    cmd.output().await.expect("layer-cake runs")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn failure(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr.clone()).unwrap()
}

async fn three_publishers(host: &Daemon) -> Vec<Proc> {
    let mut procs = Vec::new();
    for name in ["svc-a", "svc-b", "svc-c"] {
        let mut p = publisher(name, &host.env(), name, "HOST");
        p.expect(&["published", name, "active"]).await;
        procs.push(p);
    }
    procs
}

const PING: &str = r#"{"seq":7,"text":"hi"}"#;

#[tokio::test]
async fn a_call_prints_the_reply_and_with_json_who_answered() {
    let host = Daemon::host_cake().await;
    let _publishers = three_publishers(&host).await;
    let out = stdout(&call(&host.env(), &["svc-.*", "Ping", PING]).await);
    let pong: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(pong["seq"], 7);
    assert!(pong["name"].as_str().unwrap().starts_with("svc-"), "{pong}");

    let out = stdout(&call(&host.env(), &["svc-.*", "Ping", PING, "--json"]).await);
    let doc: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(doc["type"], "Pong");
    assert_eq!(doc["instance"]["name"], doc["reply"]["name"]);
    assert_eq!(doc["instance"]["at"], "HOST");

    // A key goes to the same instance every time.
    let owner = |out: String| -> String {
        let doc: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        doc["instance"]["name"].as_str().unwrap().to_string()
    };
    let first = owner(stdout(
        &call(&host.env(), &["svc-.*", "Ping", PING, "--key", "k1", "--json"]).await,
    ));
    for _ in 0..3 {
        let again = owner(stdout(
            &call(&host.env(), &["svc-.*", "Ping", PING, "--key", "k1", "--json"]).await,
        ));
        assert_eq!(again, first);
    }
}

#[tokio::test]
async fn a_call_to_all_prints_one_answer_per_instance() {
    let host = Daemon::host_cake().await;
    let _publishers = three_publishers(&host).await;
    let out = stdout(&call(&host.env(), &["svc-.*", "Ping", PING, "--all", "--count", "3"]).await);
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines.len(), 3, "{out}");
    for (line, name) in lines.iter().zip(["svc-a", "svc-b", "svc-c"]) {
        assert!(line.starts_with(name), "{line}");
        assert!(line.contains(&format!("\"name\":\"{name}\"")), "{line}");
    }
    let out = stdout(
        &call(
            &host.env(),
            &["svc-.*", "Ping", PING, "--all", "--count", "3", "--json"],
        )
        .await,
    );
    let doc: Vec<serde_json::Value> = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(doc.len(), 3);
    assert!(
        doc.iter().all(|d| d["instance"]["name"] == d["reply"]["name"]),
        "{doc:?}"
    );
}

#[tokio::test]
async fn a_call_says_plainly_what_went_wrong() {
    let host = Daemon::host_cake().await;
    let err = failure(&call(&host.env(), &["nobody-.*", "Ping", PING, "--timeout", "0.3"]).await);
    assert!(err.contains("no instance of \"nobody-.*\""), "{err}");
    let err = failure(&call(&host.env(), &["svc", "Ping", "{not json"]).await);
    assert!(err.contains("the message is not JSON"), "{err}");
    let err = failure(&call(&host.env(), &["svc", "Ping", PING, "--policy", "fastest"]).await);
    assert!(err.contains("no policy \"fastest\""), "{err}");
    let err = failure(&call(&host.env(), &["s)|(x", "Ping", PING]).await);
    assert!(err.contains("unopened group"), "{err}");
    let err = failure(&call("127.0.0.1:1", &["svc", "Ping", PING]).await);
    assert!(err.contains("no directory answers at 127.0.0.1:1"), "{err}");
}

#[tokio::test]
async fn nearest_first_prefers_the_group_instance_over_the_host_one() {
    let host = Daemon::host_cake().await;
    let group = Daemon::group_cake(host.addr).await;
    let mut near = publisher("near", &group.env(), "svc-near", "GROUP");
    near.expect(&["published", "svc-near", "active"]).await;
    let mut far = publisher("far", &host.env(), "svc-far", "HOST");
    far.expect(&["published", "svc-far", "active"]).await;
    let answered_by = |out: String| -> String {
        let doc: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        format!(
            "{} {}",
            doc["instance"]["name"].as_str().unwrap(),
            doc["instance"]["at"].as_str().unwrap()
        )
    };
    for _ in 0..3 {
        let out = stdout(&call(&group.env(), &["svc-.*", "Ping", PING, "--count", "2", "--json"]).await);
        assert_eq!(answered_by(out), "svc-near GROUP");
    }
    // A call to all reaches both.
    let out = stdout(
        &call(
            &group.env(),
            &["svc-.*", "Ping", PING, "--count", "2", "--all", "--json"],
        )
        .await,
    );
    let doc: Vec<serde_json::Value> = serde_json::from_str(out.trim()).unwrap();
    let mut seen: Vec<String> = doc
        .iter()
        .map(|d| {
            format!(
                "{} {}",
                d["instance"]["name"].as_str().unwrap(),
                d["instance"]["at"].as_str().unwrap()
            )
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, ["svc-far HOST", "svc-near GROUP"]);
}

#[tokio::test]
async fn a_frozen_instance_costs_a_call_to_all_only_its_own_entry() {
    // Frozen before the call starts, it never answers the session's opening either: the
    // others are called once the wait for three ends, and the command says one is missing.
    let host = Daemon::host_cake().await;
    let publishers = three_publishers(&host).await;
    publishers[1].freeze().await;
    let started = std::time::Instant::now();
    let out = call(
        &host.env(),
        &[
            "svc-.*",
            "Ping",
            PING,
            "--all",
            "--count",
            "3",
            "--timeout",
            "1",
            "--json",
        ],
    )
    .await;
    let took = started.elapsed();
    publishers[1].signal(nix::sys::signal::Signal::SIGCONT);
    let err = failure(&out);
    assert!(err.contains("2 of 3 instances"), "{err}");
    let doc: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut answered: Vec<&str> = doc
        .iter()
        .map(|d| d["reply"]["name"].as_str().unwrap_or("no reply"))
        .collect();
    answered.sort_unstable();
    assert_eq!(answered, ["svc-a", "svc-c"], "{doc:?}");
    // One wait for the instances, not one per instance or a hang.
    assert!(took < std::time::Duration::from_secs(4), "took {took:?}");
}
