//! `layer-cake network` and `layer-cake ping` against a live tree of real processes: host-cake,
//! a composite (group-cake with a publisher and a subscriber) under it, and a standalone
//! publisher. The LAN parent is shown in `lan.rs`, in the namespace lab.

use layer_cake_tests::home::TestHome;
use layer_cake_tests::{bin, publisher, Daemon};
use serde_json::Value;

/// Snapshot settings: ids and ports change from run to run.
fn redacted() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\([0-9a-f]{8}\)", "([ID])");
    settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    settings
}

/// host-cake; a composite under it whose publisher is at GROUP scope and whose subscriber
/// searches `svc-.*` at HOST scope; a standalone publisher at HOST scope. Returns once the
/// subscriber holds both sessions.
async fn known_tree() -> (Daemon, TestHome, layer_cake_tests::Proc) {
    let host = Daemon::host_cake().await;
    let mut standalone = publisher("standalone", &host.env(), "svc-host", "HOST");
    standalone.expect(&["published svc-host HOST"]).await;
    let t = TestHome::new();
    t.ok(&["create", "--directory-at-host", &host.env()]);
    let publisher = bin("publisher").display().to_string();
    let subscriber = bin("subscriber").display().to_string();
    t.ok(&["add", &publisher, "--", "--name", "svc-group", "--scope", "GROUP"]);
    t.ok(&["add", &subscriber, "--", "--search", "svc-.*", "--scope", "HOST"]);
    t.ok(&["start"]);
    t.wait_for("the subscriber to hold a session with each publisher", || {
        let log = t.ok(&["log", "subscriber", "--count", "100"]);
        log.contains("available svc-group GROUP") && log.contains("available svc-host HOST")
    });
    (host, t, standalone)
}

#[tokio::test]
async fn network_prints_the_known_tree_and_json_that_parses() {
    let (host, t, _standalone) = known_tree().await;

    // Inside the home: from its group-cake up to the host's directory, then all the way down.
    let tree = t.ok(&["network"]);
    redacted().bind(|| insta::assert_snapshot!("network", tree));
    let long = t.ok(&["network", "--long-listing"]);
    redacted().bind(|| insta::assert_snapshot!("network_long", long));
    // The same from anywhere with --directory; a search keeps the nodes above each match.
    let search = t.ok(&["network", "--directory", &host.env(), "sub.*"]);
    redacted().bind(|| insta::assert_snapshot!("network_search", search));

    let json: Value = serde_json::from_str(&t.ok(&["network", "--json"])).expect("JSON");
    assert_eq!(json["parent"], Value::Null);
    let root = &json["root"];
    assert_eq!(
        (root["name"].as_str(), root["scope"].as_str()),
        (Some("host-cake"), Some("HOST"))
    );
    assert_eq!(root["listen"].as_str(), Some(host.env().as_str()));
    let group = &root["children"][0];
    assert_eq!(
        (group["name"].as_str(), group["kind"].as_str()),
        (Some("group-cake"), Some("directory"))
    );
    let roles = group["children"].as_array().expect("the group's children");
    assert_eq!(roles.len(), 2, "{group:#}");
    let sub = &roles[1];
    assert_eq!(sub["name"], "subscriber");
    assert_eq!(sub["subscribes"][0]["search"], "svc-.*");
    let sessions = sub["sessions"].as_array().expect("sessions asked for");
    let held: Vec<(&str, &str, bool)> = sessions
        .iter()
        .map(|s| {
            (
                s["publisher"]["name"].as_str().unwrap(),
                s["at"].as_str().unwrap(),
                s["open"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(held, [("svc-group", "GROUP", true), ("svc-host", "HOST", true)]);
    // The GROUP session is with the role next to it; the HOST one with the standalone.
    assert_eq!(sessions[0]["publisher"]["process"], roles[0]["id"]);
    let standalone = root["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["publishes"][0]["name"] == "svc-host")
        .expect("the standalone publisher");
    assert_eq!(sessions[1]["publisher"]["process"], standalone["id"]);
}

#[tokio::test]
async fn ping_answers_from_a_live_node_and_refuses_an_unknown_id() {
    let (host, t, _standalone) = known_tree().await;
    let json: Value = serde_json::from_str(&t.ok(&["network", "--json"])).expect("JSON");
    let group = &json["root"]["children"][0];
    let role = group["children"][0]["id"].as_str().unwrap();
    let short = &role[..8];

    // A role inside the composite: reached through its group-cake.
    let out = t.ok(&["ping", short, "--count", "3", "--interval-ms", "1"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    let via = &group["id"].as_str().unwrap()[..8];
    assert_eq!(
        lines[0],
        format!("PING [PROCESS] publisher ({short}) via group-cake ({via})")
    );
    for (seq, line) in lines[1..4].iter().enumerate() {
        let prefix = format!("reply from {short}: seq={} time=", seq + 1);
        assert!(line.starts_with(&prefix) && line.ends_with(" ms"), "{out}");
    }
    assert!(
        lines[4].starts_with("--- 3 sent, 3 answered, min/avg/max "),
        "{out}"
    );

    // The host's directory itself, from anywhere, by its full id.
    let host_id = json["root"]["id"].as_str().unwrap();
    let out = t.ok(&["ping", host_id, "-c", "1", "--directory", &host.env()]);
    assert!(out.contains("--- 1 sent, 1 answered"), "{out}");

    let err = t.fails(&["ping", "0000000", "-c", "1"]);
    assert_eq!(
        err,
        "layer-cake: no node with id 0000000 in the tree (see `layer-cake network`)\n"
    );
}

#[test]
fn network_says_plainly_when_no_directory_answers() {
    let t = TestHome::new();
    let err = t.fails(&["network", "--directory", "127.0.0.1:1"]);
    assert!(
        err.starts_with("layer-cake: no directory answers at 127.0.0.1:1: "),
        "{err}"
    );
    let err = t.fails(&["ping", "abcdef12", "--directory", "127.0.0.1:1"]);
    assert!(
        err.starts_with("layer-cake: no directory answers at 127.0.0.1:1: "),
        "{err}"
    );
}
