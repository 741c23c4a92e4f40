//! The calls benchmark: a caller over several instances, in other processes, on loopback.
//!
//! Run with `cargo bench -p layer-cake-tests --bench calls` (pin with `taskset -c 0` to
//! compare without cross-core wake-ups). It prints:
//! - `all` to 8 instances against 8 `one` calls made one after another (latency, median and
//!   99th percentile, same run);
//! - `one` to a single instance against `request` on a session with it (the caller's own cost);
//! - the fraction of 100,000 keys that move to another instance when one of 8 leaves (about
//!   1/8 expected);
//! - one-way `cast` throughput on one connection with 64-byte messages, against a raw tokio
//!   TCP writer of length-prefixed frames of the same size, in the same run.

use layer_cake::caller::{Call, Caller, CallerConfig};
use layer_cake::{Node, NodeConfig, Scope};
use layer_cake_tests::{echoes, Daemon, Proc, WAIT};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const INSTANCES: usize = 8;
const RUNS: usize = 2_000;
const KEYS: usize = 100_000;
const CASTS: u64 = 1_000_000;
const PAYLOAD: usize = 64;

fn quantiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort_unstable();
    let q = |f: f64| samples[((samples.len() - 1) as f64 * f).round() as usize].as_secs_f64() * 1e6;
    (q(0.5), q(0.99))
}

async fn caller(node: &Node, search: &str, n: usize) -> Caller {
    let caller = node
        .caller(search, Scope::Host, CallerConfig::default())
        .await
        .unwrap();
    caller.wait_for(n, WAIT).await.unwrap();
    caller
}

async fn bench_all_vs_sequential(node: &Node) {
    let caller = caller(node, "all-[0-9]+", INSTANCES).await;
    let payload = "x".repeat(PAYLOAD);
    let call = Call::new();
    let mut all = Vec::with_capacity(RUNS);
    let mut sequential = Vec::with_capacity(RUNS);
    for i in 0..RUNS + 200 {
        let t = Instant::now();
        let answers = caller.all::<_, String>(&payload, &call).await;
        let took = t.elapsed();
        assert!(answers.iter().all(|a| a.result.is_ok()) && answers.len() == INSTANCES);
        let rr = Call::new().policy(layer_cake::caller::Policy::RoundRobin);
        let t = Instant::now();
        for _ in 0..INSTANCES {
            let _: String = caller.one(&payload, &rr).await.unwrap();
        }
        let took_seq = t.elapsed();
        if i >= 200 {
            all.push(took);
            sequential.push(took_seq);
        }
    }
    let (a50, a99) = quantiles(all);
    let (s50, s99) = quantiles(sequential);
    let rows = [
        (format!("all to {INSTANCES} instances"), a50, a99),
        (format!("{INSTANCES} one calls, one after another"), s50, s99),
    ];
    for (name, p50, p99) in rows {
        println!("| {name:<38} | {p50:>10.1} | {p99:>10.1} |");
    }
    println!("all / sequential (medians): {:.2}x", a50 / s50);
}

/// A caller's own cost: `one` to a single instance against `request` on the same session.
async fn bench_one_vs_request(node: &Node) {
    let caller = caller(node, "all-0", 1).await;
    let mut subscription = node.subscribe("all-0", Scope::Host).await.unwrap();
    let session = loop {
        if let Some(layer_cake::SubscriptionEvent::Available(s)) = subscription.next().await {
            break s;
        }
    };
    let payload = "x".repeat(PAYLOAD);
    let (call, deadline) = (Call::new(), Duration::from_secs(5));
    let mut one = Vec::with_capacity(RUNS * 5);
    let mut request = Vec::with_capacity(RUNS * 5);
    for i in 0..RUNS * 5 + 200 {
        let t = Instant::now();
        let _: String = caller.one(&payload, &call).await.unwrap();
        let took_one = t.elapsed();
        let t = Instant::now();
        let _: String = session.request(&payload, deadline).await.unwrap();
        let took_request = t.elapsed();
        if i >= 200 {
            one.push(took_one);
            request.push(took_request);
        }
    }
    let (o50, o99) = quantiles(one);
    let (r50, r99) = quantiles(request);
    println!("| {:<38} | {o50:>10.1} | {o99:>10.1} |", "one call, one instance");
    println!(
        "| {:<38} | {r50:>10.1} | {r99:>10.1} |",
        "request on a session to it"
    );
    println!("one / request (medians): {:.3}x", o50 / r50);
}

async fn bench_keys_moved(node: &Node, procs: &mut Vec<Proc>) {
    let caller = caller(node, "all-[0-9]+", INSTANCES).await;
    let owners = |caller: Caller| async move {
        let mut owners = HashMap::with_capacity(KEYS);
        for k in 0..KEYS {
            let key = format!("key-{k}");
            let call = Call::new().key(key.clone());
            let (instance, _) = caller
                .one_raw("string", &serde_json::value::to_raw_value("k").unwrap(), &call)
                .await
                .unwrap();
            owners.insert(key, instance.name.clone());
        }
        owners
    };
    let before = owners(caller.clone()).await;
    procs.pop().expect("an instance").kill9().await;
    let left = caller.instances().len();
    let deadline = Instant::now() + WAIT;
    while caller.instances().len() > INSTANCES - 1 {
        assert!(
            Instant::now() < deadline,
            "the killed instance never left ({left})"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let after = owners(caller).await;
    let moved = before.iter().filter(|(k, was)| &after[*k] != *was).count();
    println!(
        "keys moved when 1 of {INSTANCES} instances left: {moved} of {KEYS} ({:.3}; 1/{INSTANCES} = {:.3})",
        moved as f64 / KEYS as f64,
        1.0 / INSTANCES as f64
    );
}

async fn bench_cast(node: &Node) -> f64 {
    let caller = caller(node, "sink-0", 1).await;
    let payload = "x".repeat(PAYLOAD);
    let call = Call::new();
    let start = Instant::now();
    for _ in 0..CASTS {
        caller.cast(&payload, &call).await.unwrap();
    }
    let count: String = caller
        .one(
            &"count?".to_string(),
            &Call::new().deadline(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let rate = CASTS as f64 / start.elapsed().as_secs_f64();
    assert_eq!(count.parse::<u64>().unwrap(), CASTS, "every cast arrived");
    rate
}

/// Frames per second from a plain tokio writer to a process that counts them: one write per
/// frame (`buffered` false), or through a 64 KiB `BufWriter` (true).
async fn bench_raw_writer(buffered: bool) -> f64 {
    let mut sink = Proc::spawn("raw-sink", "bench-echo", &["--raw-sink"], &[]);
    let line = sink.expect(&["listening"]).await;
    let addr: SocketAddr = line.trim_start_matches("listening ").parse().unwrap();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut stream = tokio::io::BufWriter::with_capacity(if buffered { 64 * 1024 } else { 0 }, stream);
    // The same bytes a cast puts on the wire: a length and a Data frame of a 64-byte string.
    let frame_body = format!(
        "{{\"Data\":{{\"session\":1,\"type\":\"string\",\"body\":\"{}\"}}}}",
        "x".repeat(PAYLOAD)
    );
    let mut frame = (frame_body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(frame_body.as_bytes());
    let start = Instant::now();
    for _ in 0..CASTS {
        stream.write_all(&frame).await.unwrap();
    }
    stream.write_all(&0u32.to_be_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    let mut count = [0u8; 8];
    stream.get_mut().read_exact(&mut count).await.unwrap();
    assert_eq!(u64::from_be_bytes(count), CASTS);
    CASTS as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    if !layer_cake_tests::bench_requested() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let host = Daemon::host_cake().await;
        let node = Node::with_config(NodeConfig::new(Some(host.addr), "bench-calls"))
            .await
            .unwrap();
        let cpus = layer_cake_tests::procfs::cpus_allowed();
        println!("\nlayer-cake calls benchmark (loopback, tokio current_thread, CPUs allowed: {cpus})\n");
        println!(
            "| {:<38} | {:>10} | {:>10} |",
            "measure (64 B strings)", "median us", "p99 us"
        );
        println!("|{:-<40}|{:->12}|{:->12}|", "", "", "");
        let mut procs = echoes(&host, "all", INSTANCES).await;
        bench_all_vs_sequential(&node).await;
        bench_one_vs_request(&node).await;
        bench_keys_moved(&node, &mut procs).await;
        drop(procs);
        let _sink = echoes(&host, "sink", 1).await;
        let cast = bench_cast(&node).await;
        let raw = bench_raw_writer(false).await;
        let buffered = bench_raw_writer(true).await;
        println!("one-way, {CASTS} messages of {PAYLOAD} B on one connection:");
        println!("  casts                               {cast:>10.0}/s");
        println!(
            "  raw tcp writer, one write per frame {raw:>10.0}/s  (casts {:.2}x)",
            cast / raw
        );
        println!(
            "  raw tcp writer, 64 KiB buffered     {buffered:>10.0}/s  (casts {:.2}x)",
            cast / buffered
        );
    });
}
