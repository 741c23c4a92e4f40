//! The multihosting demo end to end: the HTTP server and its workers as real processes, on
//! loopback, as a composite (`layer-cake create/add/start`) and standalone.

use layer_cake_tests::home::TestHome;
use layer_cake_tests::{bin, Daemon, Proc, WAIT};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::time::{Duration, Instant};

/// An HTTP client that reports every status (no status is an error) and never waits long.
fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(WAIT))
        .build()
        .into()
}

/// GET `url`: the status and the body as JSON.
fn get(agent: &ureq::Agent, url: &str) -> (u16, Value) {
    let mut response = agent.get(url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().expect("a body");
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{body:?}: {e}")),
    )
}

/// Asserts `body` is the answer to `Xy { x, y }`: an x-by-y table of floats in [0, 1).
fn assert_table(body: &Value, x: usize, y: usize) {
    assert_eq!(body["type"], "Table", "{body}");
    let rows = body["value"].as_array().expect("rows");
    assert_eq!(rows.len(), x, "{body}");
    for row in rows {
        let cells = row.as_array().expect("cells");
        assert_eq!(cells.len(), y, "{body}");
        assert!(
            cells
                .iter()
                .all(|c| c.as_f64().is_some_and(|f| (0.0..1.0).contains(&f))),
            "{body}"
        );
    }
}

/// The server role's URL, from the `listening` line in its log.
fn server_url(t: &TestHome) -> String {
    let mut url = String::new();
    t.wait_for("the server to listen", || {
        let log = t.ok(&["log", "server", "--count", "1000"]);
        if let Some(addr) = log.lines().find_map(|l| l.split(" listening ").nth(1)) {
            url = format!("http://{}", addr.trim());
        }
        !url.is_empty()
    });
    url
}

/// Waits until `url` answers 200 (a worker has joined the server's caller).
fn wait_served(t: &TestHome, agent: &ureq::Agent, url: &str) {
    t.wait_for("a worker to serve", || get(agent, url).0 == 200);
}

/// A home with the multihosting server and `workers` workers, created with `create_args`.
fn multihosting_home(workers: u32, create_args: &[&str]) -> TestHome {
    let t = TestHome::new();
    let mut create = vec!["create"];
    create.extend_from_slice(create_args);
    t.ok(&create);
    let server = bin("multihosting-server").display().to_string();
    let worker = bin("multihosting-worker").display().to_string();
    t.ok(&["add", &server, "server", "--", "--listen", "127.0.0.1:0"]);
    t.ok(&["add", &worker, "worker", &format!("--role-count={workers}")]);
    t
}

/// The README's sequence: create, add a server and eight workers, start, ask for a table.
/// Then host-cake starts, and a worker started by hand (outside the home) joins the pool and
/// is given requests, with nothing configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_sequence_serves_tables_and_a_worker_started_by_hand_joins() {
    let host_addr = format!("127.0.0.1:{}", layer_cake_tests::free_port());
    let t = multihosting_home(8, &["--directory-at-host", &host_addr]);
    t.ok(&["start"]);
    let agent = client();
    let url = format!("{}/Xy?x=2&y=2", server_url(&t));
    wait_served(&t, &agent, &url);
    let (status, body) = get(&agent, &url);
    assert_eq!(status, 200);
    assert_table(&body, 2, 2);
    let (status, body) = get(&agent, &url.replace("x=2&y=2", "x=3&y=5"));
    assert_eq!(status, 200);
    assert_table(&body, 3, 5);

    // host-cake comes up where the home says; group-cake finds it by itself.
    let host = Daemon::host_cake_at(host_addr.parse().unwrap()).await;
    let mut hand = Proc::spawn(
        "hand-worker",
        "multihosting-worker",
        &["--directory", &host.env()],
        &[],
    );
    hand.expect(&["published test-multihosting:worker-10:"]).await;
    hand.expect(&["serving multihosting-server"]).await;
    // Nine workers now; least-outstanding with round-robin ties gives each its share.
    for _ in 0..90 {
        assert_eq!(get(&agent, &url).0, 200);
    }
    hand.signal(Signal::SIGTERM);
    let served = hand.expect(&["served "]).await;
    let n: u64 = served.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(
        n > 0,
        "the worker started by hand was never given a request: {served}"
    );
    t.ok(&["stop"]);
}

/// Bad requests get clear answers, and with no worker at all the server says 503 at once.
#[tokio::test]
async fn bad_requests_and_no_workers_get_clear_statuses() {
    let group = Daemon::start(
        "group-cake",
        &["--listen", "127.0.0.1:0", "--connect-to-directory", "127.0.0.1:1"],
    )
    .await;
    let mut server = Proc::spawn(
        "server",
        "multihosting-server",
        // A long deadline: a request that waited for a worker would show as a 504 much later.
        &[
            "--listen",
            "127.0.0.1:0",
            "--directory",
            &group.env(),
            "--deadline-ms",
            "60000",
        ],
        &[],
    );
    let line = server.expect(&["listening "]).await;
    let base = format!("http://{}", line.trim_start_matches("listening ").trim());
    let agent = client();
    let result = tokio::task::spawn_blocking(move || {
        let cases = [
            ("/Xy?x=2&y=2", 503, "no instance is available"),
            ("/Xy?x=2", 400, "not a Xy: missing field `y`"),
            ("/Xy?x=two&y=2", 400, "not a Xy: invalid digit found in string"),
            ("/Xy", 400, "not a Xy: missing field `x`"),
            (
                "/Xy?x=100000&y=100000",
                400,
                "a table of 100000 by 100000 is over 524288 cells",
            ),
            (
                "/Table",
                404,
                "no message type \"Table\" here; this front accepts Xy",
            ),
        ];
        for (path, status, error) in cases {
            let (got, body) = get(&agent, &format!("{base}{path}"));
            assert_eq!(
                (got, body["error"].as_str().unwrap_or("")),
                (status, error),
                "GET {path}"
            );
        }
        let mut r = agent.post(&format!("{base}/Xy")).send("{\"x\": 1").expect("POST");
        assert_eq!(r.status().as_u16(), 400);
        assert!(r
            .body_mut()
            .read_to_string()
            .unwrap()
            .contains("EOF while parsing"));
        let r = agent.delete(&format!("{base}/Xy")).call().expect("DELETE");
        assert_eq!(r.status().as_u16(), 405);
        assert_eq!(r.headers().get("allow").unwrap(), "GET, POST");
    })
    .await;
    drop(server);
    result.expect("every case answered as expected");
}

/// Under load, a worker killed with SIGKILL: every request still succeeds (a GET in flight on
/// it is retried on another worker), none hangs past its deadline; group-cake restarts the
/// role and the new process serves again.
#[test]
fn a_worker_killed_under_load_is_restarted_and_no_request_is_lost() {
    let t = multihosting_home(
        4,
        &[
            "--directory-at-host",
            "127.0.0.1:1",
            "--retry",
            r#"{"min": 0, "max": 0.1}"#,
        ],
    );
    t.ok(&["start"]);
    let url = format!("{}/Xy?x=4&y=4", server_url(&t));
    wait_served(&t, &client(), &url);
    let victim = t
        .role_pids()
        .into_iter()
        .find(|(role, _)| role == "worker-1")
        .map(|(_, pid)| pid)
        .expect("worker-1 runs");

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Each request answered says so here: the test waits on answers, not on the clock.
    let (answered_tx, answered) = std::sync::mpsc::channel::<()>();
    let load: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            let stop = stop.clone();
            let answered_tx = answered_tx.clone();
            std::thread::spawn(move || {
                let agent = client();
                let mut statuses = Vec::new();
                // Bounded: at most 2,000 requests per thread.
                for _ in 0..2_000 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let started = Instant::now();
                    let (status, body) = get(&agent, &url);
                    statuses.push((status, body, started.elapsed()));
                    let _ = answered_tx.send(());
                }
                statuses
            })
        })
        .collect();
    // Under load: 50 requests answered before the kill, 50 more after the restart.
    let answers = |n: usize| {
        for _ in 0..n {
            answered.recv_timeout(WAIT).expect("requests are answered");
        }
    };
    answers(50);
    kill(Pid::from_raw(victim as i32), Signal::SIGKILL).unwrap();
    t.wait_for("worker-1 to be restarted", || {
        let s = t.status();
        let w = &s["roles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["role"] == "worker-1")
            .cloned()
            .unwrap();
        w["restarts"] == 1 && w["state"] == "running" && w["pid"].as_u64() != Some(victim as u64)
    });
    answered.try_iter().count();
    answers(50);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for thread in load {
        for (status, body, took) in thread.join().expect("load thread") {
            total += 1;
            assert_eq!(status, 200, "{body}");
            assert!(
                took < Duration::from_secs(5),
                "a request took {took:?}, over its deadline"
            );
        }
    }
    assert!(total > 100, "only {total} requests made");

    // The new worker-1 serves: it is given requests, as its count at exit shows.
    let new_pid = t
        .role_pids()
        .into_iter()
        .find(|(r, _)| r == "worker-1")
        .unwrap()
        .1;
    let agent = client();
    for _ in 0..40 {
        assert_eq!(get(&agent, &url).0, 200);
    }
    t.ok(&["stop"]);
    let log = t.ok(&["log", "worker-1", "--count", "1000"]);
    let served = log
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some(&new_pid.to_string()))
        .find_map(|l| l.split(" served ").nth(1))
        .unwrap_or_else(|| panic!("no count from the restarted worker: {log}"));
    let n: u64 = served.split_whitespace().next().unwrap().parse().unwrap();
    assert!(n > 0, "the restarted worker served nothing: {log}");
}

/// `layer-cake network` names each process of a composite by its role, beside its executable,
/// and a search by role finds it (it used to show nothing for `network server`, and eight
/// workers that could not be told apart).
#[test]
fn network_names_the_roles_of_a_composite() {
    let t = multihosting_home(2, &["--directory-at-host", "127.0.0.1:1"]);
    t.ok(&["start"]);
    let url = format!("{}/Xy?x=1&y=1", server_url(&t));
    wait_served(&t, &client(), &url);
    let server = t.ok(&["network", "server"]);
    assert!(server.contains("multihosting-server as server ("), "{server}");
    assert!(!server.contains("worker"), "{server}");
    let workers = t.ok(&["network", "worker-.*"]);
    let lines: Vec<&str> = workers
        .lines()
        .filter(|l| l.contains("multihosting-worker as worker-"))
        .collect();
    assert_eq!(lines.len(), 2, "{workers}");
    assert!(
        lines[0].contains("as worker-0") && lines[1].contains("as worker-1"),
        "{workers}"
    );
    let doc: serde_json::Value = serde_json::from_str(&t.ok(&["network", "--json"])).unwrap();
    assert!(doc.to_string().contains(r#""role":"server""#), "{doc}");
    t.ok(&["stop"]);
}
