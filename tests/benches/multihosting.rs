//! The multihosting benchmark: the HTTP server calling eight workers, against a plain
//! server that computes the same table itself.
//!
//! Run with `cargo bench -p layer-cake-tests --bench multihosting` (needs `wrk`, Debian
//! package `wrk`). Loopback only. It prints:
//! - requests/s and p50/p99 latency of `GET /Xy?x=2&y=2` at 1, 8 and 64 connections, for the
//!   composite (`layer-cake start` of one `multihosting-server` and eight
//!   `multihosting-worker`s) and for `plain-xy-server`, in the same run;
//! - RSS of the server and of one worker, after the load;
//! - time from running `layer-cake start` to the first 200.
//!
//! Each wrk run lasts `LC_BENCH_SECONDS` (default 5) seconds. `LC_BENCH_WORKER` names another
//! worker executable: `LC_BENCH_WORKER=python/demos/worker.py` measures eight Python workers
//! (the client in `python/` must be importable: installed, or on `PYTHONPATH`).

use layer_cake_tests::bin;
use layer_cake_tests::home::TestHome;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WORKERS: u32 = 8;
const START_RUNS: usize = 5;

/// One HTTP GET: the status code, or None if nothing listens yet.
fn status_of(agent: &ureq::Agent, port: u16, path: &str) -> Option<u16> {
    let response = agent.get(&format!("http://127.0.0.1:{port}{path}")).call().ok()?;
    Some(response.status().as_u16())
}

struct Wrk {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: String,
}

fn millis(text: &str) -> f64 {
    let (n, unit) = text.split_at(text.find(|c: char| c.is_alphabetic()).unwrap_or(text.len()));
    let n: f64 = n.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1e3,
        "ms" => n,
        "s" => n * 1e3,
        _ => f64::NAN,
    }
}

fn wrk(port: u16, connections: u32, seconds: u32) -> Wrk {
    let threads = connections.min(2);
    let out = Command::new("wrk")
        .args([
            &format!("-t{threads}"),
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            &format!("http://127.0.0.1:{port}/Xy?x=2&y=2"),
        ])
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let errors = [field("Non-2xx or 3xx responses:"), field("Socket errors:")]
        .into_iter()
        .filter(|e| !e.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    Wrk {
        rps: field("Requests/sec:").parse().unwrap_or(f64::NAN),
        p50_ms: millis(&field("50%")),
        p99_ms: millis(&field("99%")),
        errors,
    }
}

fn main() {
    if Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        eprintln!("the multihosting benchmark needs wrk (apt-get install -y wrk)");
        return;
    }
    let seconds: u32 = std::env::var("LC_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let server = bin("multihosting-server").display().to_string();
    let worker = match std::env::var("LC_BENCH_WORKER") {
        // (Relative to the workspace: cargo runs benchmarks in the package's folder.)
        Ok(path) => std::fs::canonicalize(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(&path),
        )
        .unwrap_or_else(|e| panic!("LC_BENCH_WORKER={path}: {e}"))
        .display()
        .to_string(),
        Err(_) => bin("multihosting-worker").display().to_string(),
    };
    let port = layer_cake_tests::free_port();
    let t = TestHome::new();
    t.ok(&["create", "--directory-at-host", "127.0.0.1:1"]);
    t.ok(&[
        "add",
        &server,
        "server",
        "--",
        "--listen",
        &format!("127.0.0.1:{port}"),
    ]);
    // (A role's environment is its own: a Python worker is given the client's path, if set.)
    let mut add = vec![
        "add".to_string(),
        worker.clone(),
        "worker".into(),
        format!("--role-count={WORKERS}"),
    ];
    if let Ok(path) = std::env::var("PYTHONPATH") {
        add.extend(["--env".to_string(), format!("PYTHONPATH={path}")]);
    }
    t.ok(&add.iter().map(String::as_str).collect::<Vec<_>>());

    // Time to the first 200, from running `layer-cake start`.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut firsts = Vec::new();
    for _ in 0..START_RUNS {
        let began = Instant::now();
        t.ok(&["start"]);
        while status_of(&agent, port, "/Xy?x=2&y=2") != Some(200) {
            assert!(began.elapsed() < Duration::from_secs(30), "no 200 within 30 s");
            std::thread::sleep(Duration::from_millis(1));
        }
        firsts.push(began.elapsed());
        t.ok(&["stop"]);
    }
    firsts.sort_unstable();

    t.ok(&["start"]);
    t.wait_for("every worker to serve", || {
        let log = t.ok(&["log", "worker-7", "--count", "100"]);
        log.contains("serving multihosting-server")
    });
    let mut plain = Command::new(bin("plain-xy-server"))
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(plain.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let plain_port: u16 = line.trim().rsplit(':').next().unwrap().parse().unwrap();

    let mut rows = Vec::new();
    for connections in [1, 8, 64] {
        let c = wrk(port, connections, seconds);
        let p = wrk(plain_port, connections, seconds);
        rows.push((connections, c, p));
    }
    let pids = t.role_pids();
    let pid_of = |role: &str| pids.iter().find(|(r, _)| r == role).map(|(_, p)| *p).unwrap();
    let (rss_server, rss_worker, rss_plain) = (
        layer_cake_tests::procfs::rss_kib(pid_of("server")),
        layer_cake_tests::procfs::rss_kib(pid_of("worker-0")),
        layer_cake_tests::procfs::rss_kib(plain.id()),
    );
    let _ = plain.kill();
    let _ = plain.wait();
    t.ok(&["stop"]);

    println!();
    println!(
        "multihosting benchmark: GET /Xy?x=2&y=2, {seconds} s per run, loopback, CPUs allowed: {}, workers: {worker}",
        layer_cake_tests::procfs::cpus_allowed()
    );
    println!();
    println!(
        "| conns | composite req/s | p50 ms | p99 ms | plain req/s | p50 ms | p99 ms | composite/plain |"
    );
    println!(
        "|------:|----------------:|-------:|-------:|------------:|-------:|-------:|----------------:|"
    );
    for (connections, c, p) in &rows {
        println!(
            "| {connections:>5} | {:>15.0} | {:>6.3} | {:>6.3} | {:>11.0} | {:>6.3} | {:>6.3} | {:>15.2} |",
            c.rps,
            c.p50_ms,
            c.p99_ms,
            p.rps,
            p.p50_ms,
            p.p99_ms,
            c.rps / p.rps
        );
        for (who, w) in [("composite", c), ("plain", p)] {
            if !w.errors.is_empty() {
                println!("  {who} at {connections}: {}", w.errors);
            }
        }
    }
    println!();
    println!(
        "RSS after the load: server {rss_server} KiB, one worker {rss_worker} KiB, plain server {rss_plain} KiB"
    );
    println!(
        "layer-cake start -> first 200 ({START_RUNS} runs): median {:.1} ms, min {:.1} ms, max {:.1} ms",
        firsts[firsts.len() / 2].as_secs_f64() * 1e3,
        firsts[0].as_secs_f64() * 1e3,
        firsts[firsts.len() - 1].as_secs_f64() * 1e3
    );
}
