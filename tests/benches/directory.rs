//! The directory and session benchmark: prints one table of medians and 99th percentiles.
//!
//! Run with `cargo bench -p layer-cake-tests` (pin to one core with `taskset -c 0 cargo bench
//! ...` to compare without cross-core wake-ups). Everything runs on loopback against real
//! host-cake, group-cake and bench-echo processes.
//!
//! - **available**: a new node joins host-cake and publishes; time until an already-waiting
//!   subscriber (another node) has its session `Available`. Process spawn excluded.
//! - **fallback**: a GROUP publisher process is SIGKILLed; time until the subscriber in the
//!   group is attached to the HOST publisher of the same name.
//! - **session rtt**: request/response of a 64-byte string over a session to another process.
//! - **raw tcp rtt**: the same payload through a plain tokio TCP echo in another process.
//! - **64 in flight**: the same two, with 64 requests outstanding at all times (pipelined):
//!   requests per second, session against raw echo.

use layer_cake::{Node, NodeConfig, Scope, Subscription, SubscriptionEvent};
use layer_cake_tests::{Daemon, Proc, WAIT};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const AVAILABLE_RUNS: usize = 300;
const FALLBACK_RUNS: usize = 40;
const RTT_RUNS: usize = 20_000;
const PAYLOAD: usize = 64;
const IN_FLIGHT: usize = 64;
const PIPELINED_RUNS: usize = 200_000;

fn node_config(directory: SocketAddr) -> NodeConfig {
    NodeConfig::new(Some(directory), "bench")
}

async fn available(sub: &mut Subscription, scope: Scope) -> layer_cake::Session {
    loop {
        match tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("event in time")
            .expect("open")
        {
            SubscriptionEvent::Available(s) if s.matched_at() == scope => return s,
            _ => {}
        }
    }
}

struct Stats {
    name: &'static str,
    samples: Vec<Duration>,
}

impl Stats {
    fn quantile(&mut self, q: f64) -> Duration {
        self.samples.sort_unstable();
        let i = ((self.samples.len() as f64 - 1.0) * q).round() as usize;
        self.samples[i]
    }
}

fn micros(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

async fn bench_available(host: SocketAddr) -> Stats {
    let subscriber = Node::with_config(node_config(host)).await.unwrap();
    let mut sub = subscriber.subscribe("avail:[0-9]+", Scope::Host).await.unwrap();
    let mut samples = Vec::with_capacity(AVAILABLE_RUNS);
    for i in 0..AVAILABLE_RUNS {
        let start = Instant::now();
        let publisher = Node::with_config(node_config(host)).await.unwrap();
        let _publication = publisher
            .publish(&format!("avail:{i}"), Scope::Host)
            .await
            .unwrap();
        available(&mut sub, Scope::Host).await;
        samples.push(start.elapsed());
        publisher.stop();
    }
    Stats {
        name: "publish -> Available",
        samples,
    }
}

async fn bench_fallback(host: &Daemon, group: &Daemon) -> Stats {
    let mut host_pub = Proc::spawn(
        "host-pub",
        "bench-echo",
        &["--name", "fb", "--scope", "HOST"],
        &[("LC_DIRECTORY", &host.env())],
    );
    host_pub.expect(&["published"]).await;
    let node = Node::with_config(node_config(group.addr)).await.unwrap();
    let mut sub = node.subscribe("fb", Scope::Host).await.unwrap();
    available(&mut sub, Scope::Host).await;
    let mut samples = Vec::with_capacity(FALLBACK_RUNS);
    for _ in 0..FALLBACK_RUNS {
        let mut group_pub = Proc::spawn(
            "group-pub",
            "bench-echo",
            &["--name", "fb", "--scope", "GROUP"],
            &[("LC_DIRECTORY", &group.env())],
        );
        group_pub.expect(&["published"]).await;
        available(&mut sub, Scope::Group).await;
        let start = Instant::now();
        group_pub.signal(nix::sys::signal::Signal::SIGKILL);
        available(&mut sub, Scope::Host).await;
        samples.push(start.elapsed());
        group_pub.kill9().await;
    }
    Stats {
        name: "SIGKILL GROUP pub -> HOST Available",
        samples,
    }
}

async fn bench_session_rtt(host: &Daemon) -> Stats {
    let mut echo = Proc::spawn(
        "echo",
        "bench-echo",
        &["--name", "rtt", "--scope", "HOST"],
        &[("LC_DIRECTORY", &host.env())],
    );
    echo.expect(&["published"]).await;
    let node = Node::with_config(node_config(host.addr)).await.unwrap();
    let mut sub = node.subscribe("rtt", Scope::Host).await.unwrap();
    let session = available(&mut sub, Scope::Host).await;
    let payload = "x".repeat(PAYLOAD);
    let mut samples = Vec::with_capacity(RTT_RUNS);
    for i in 0..RTT_RUNS + 1000 {
        let start = Instant::now();
        let back: String = session.request(&payload, Duration::from_secs(5)).await.unwrap();
        let elapsed = start.elapsed();
        assert_eq!(back.len(), PAYLOAD);
        if i >= 1000 {
            samples.push(elapsed);
        }
    }
    Stats {
        name: "session request/response (64 B)",
        samples,
    }
}

/// Requests per second over one session with [`IN_FLIGHT`] outstanding at all times.
async fn bench_session_pipelined(host: &Daemon) -> f64 {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    let mut echo = Proc::spawn(
        "echo",
        "bench-echo",
        &["--name", "pipe", "--scope", "HOST"],
        &[("LC_DIRECTORY", &host.env())],
    );
    echo.expect(&["published"]).await;
    let node = Node::with_config(node_config(host.addr)).await.unwrap();
    let mut sub = node.subscribe("pipe", Scope::Host).await.unwrap();
    let session = available(&mut sub, Scope::Host).await;
    let payload = "x".repeat(PAYLOAD);
    let ask = || session.request::<_, String>(&payload, Duration::from_secs(5));
    let mut pending: FuturesUnordered<_> = (0..IN_FLIGHT).map(|_| ask()).collect();
    let start = Instant::now();
    let mut sent = IN_FLIGHT;
    let mut done = 0;
    while let Some(back) = pending.next().await {
        assert_eq!(back.unwrap().len(), PAYLOAD);
        done += 1;
        if sent < PIPELINED_RUNS {
            pending.push(ask());
            sent += 1;
        }
    }
    assert_eq!(done, PIPELINED_RUNS);
    PIPELINED_RUNS as f64 / start.elapsed().as_secs_f64()
}

/// Frames per second through the raw echo with [`IN_FLIGHT`] outstanding at all times.
async fn bench_raw_pipelined() -> f64 {
    let mut echo = Proc::spawn("raw", "bench-echo", &["--raw"], &[]);
    let line = echo.expect(&["listening"]).await;
    let addr: SocketAddr = line.trim_start_matches("listening ").parse().unwrap();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let mut frame = (PAYLOAD as u32).to_be_bytes().to_vec();
    frame.extend(std::iter::repeat_n(b'x', PAYLOAD));
    let credit = std::sync::Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let start = Instant::now();
    let writing = tokio::spawn({
        let credit = credit.clone();
        async move {
            for _ in 0..PIPELINED_RUNS {
                credit.acquire().await.unwrap().forget();
                writer.write_all(&frame).await.unwrap();
            }
        }
    });
    let mut back = vec![0u8; PAYLOAD + 4];
    for _ in 0..PIPELINED_RUNS {
        reader.read_exact(&mut back).await.unwrap();
        credit.add_permits(1);
    }
    writing.await.unwrap();
    PIPELINED_RUNS as f64 / start.elapsed().as_secs_f64()
}

async fn bench_raw_rtt() -> Stats {
    let mut echo = Proc::spawn("raw", "bench-echo", &["--raw"], &[]);
    let line = echo.expect(&["listening"]).await;
    let addr: SocketAddr = line.trim_start_matches("listening ").parse().unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut frame = (PAYLOAD as u32).to_be_bytes().to_vec();
    frame.extend(std::iter::repeat_n(b'x', PAYLOAD));
    let mut back = vec![0u8; frame.len()];
    let mut samples = Vec::with_capacity(RTT_RUNS);
    for i in 0..RTT_RUNS + 1000 {
        let start = Instant::now();
        stream.write_all(&frame).await.unwrap();
        stream.read_exact(&mut back).await.unwrap();
        let elapsed = start.elapsed();
        if i >= 1000 {
            samples.push(elapsed);
        }
    }
    Stats {
        name: "raw tokio TCP echo (64 B)",
        samples,
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs us too: keep that quick.
    if !layer_cake_tests::bench_requested() {
        return;
    }
    // The whole suite runs once per tokio runtime flavour; bench-echo, spawned by it, reads
    // LC_BENCH_FLAVOR and runs the same flavour, so both ends of every round trip match.
    let flavors = std::env::var("LC_BENCH_FLAVORS").unwrap_or_else(|_| "current_thread,multi_thread".into());
    for flavor in flavors.split(',') {
        std::env::set_var("LC_BENCH_FLAVOR", flavor);
        let runtime = match flavor {
            "current_thread" => tokio::runtime::Builder::new_current_thread().enable_all().build(),
            _ => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
        };
        // Spawned, not run by block_on: under the multi-thread runtime the block_on future lives
        // on the main thread, and every wake-up of it is a cross-thread hand-off.
        let flavor = flavor.to_string();
        runtime.expect("runtime").block_on(async move {
            tokio::spawn(async move { suite(&flavor).await })
                .await
                .expect("suite")
        });
    }
}

async fn suite(flavor: &str) {
    // LC_BENCH_ONLY=rtt (a substring of the row names' keys) runs a subset.
    let only = std::env::var("LC_BENCH_ONLY").unwrap_or_default();
    let wanted = |key: &str| key.contains(only.as_str());
    let host = Daemon::host_cake().await;
    let group = Daemon::group_cake(host.addr).await;
    let mut rows = Vec::new();
    if wanted("available") {
        rows.push(bench_available(host.addr).await);
    }
    if wanted("fallback") {
        rows.push(bench_fallback(&host, &group).await);
    }
    if wanted("session-rtt") {
        rows.push(bench_session_rtt(&host).await);
    }
    if wanted("raw-rtt") {
        rows.push(bench_raw_rtt().await);
    }
    let cpus = layer_cake_tests::procfs::cpus_allowed();
    println!("\nlayer-cake directory benchmark (loopback, tokio {flavor} runtime at both ends, CPUs allowed: {cpus})\n");
    println!(
        "| {:<38} | {:>7} | {:>12} | {:>12} |",
        "measure", "runs", "median (us)", "p99 (us)"
    );
    println!("|{:-<40}|{:->9}|{:->14}|{:->14}|", "", "", "", "");
    let mut medians = Vec::new();
    for row in &mut rows {
        let (median, p99) = (row.quantile(0.5), row.quantile(0.99));
        medians.push(median);
        println!(
            "| {:<38} | {:>7} | {:>12} | {:>12} |",
            row.name,
            row.samples.len(),
            micros(median),
            micros(p99)
        );
    }
    if only.is_empty() {
        let ratio = medians[2].as_secs_f64() / medians[3].as_secs_f64();
        println!("\nsession rtt / raw tcp rtt (medians): {ratio:.2}x");
    }
    if wanted("pipelined") {
        let session = bench_session_pipelined(&host).await;
        let raw = bench_raw_pipelined().await;
        println!(
            "{IN_FLIGHT} in flight, {PIPELINED_RUNS} requests of {PAYLOAD} B: session {session:.0}/s, raw tcp echo {raw:.0}/s: {:.2}x",
            session / raw
        );
    }
}
