//! The freeze benchmark: calls at a steady rate to eight instances (bench-echo processes on
//! loopback) while one at a time is SIGSTOPped for 2-6 s and let go again.
//!
//! Run with `cargo bench -p layer-cake-tests --bench freeze`; `LC_BENCH_SECONDS` (default 20)
//! sets how long each run lasts. Two runs, 200 calls a second each, least-outstanding:
//! - idempotent calls (hedged): how many failed, and the median, p99 and slowest call;
//! - plain calls (5 s deadline, never tried twice): how many were lost to a frozen instance.

use layer_cake::caller::{Call, CallerConfig, Policy};
use layer_cake::{Node, NodeConfig, Scope};
use layer_cake_tests::{Daemon, Proc, WAIT};
use nix::sys::signal::Signal;
use std::sync::Arc;
use std::time::{Duration, Instant};

const INSTANCES: usize = 8;
const RATE: u64 = 200;

struct Outcome {
    took: Vec<Duration>,
    failed: usize,
    freezes: usize,
}

async fn run(
    caller: &layer_cake::caller::Caller,
    procs: &Arc<Vec<Proc>>,
    call: Call,
    seconds: u64,
) -> Outcome {
    let stop = Instant::now() + Duration::from_secs(seconds);
    // One instance at a time frozen for 2-6 s, then 1 s with none frozen.
    let freezer = tokio::spawn({
        let procs = procs.clone();
        async move {
            let mut freezes = 0;
            while Instant::now() < stop {
                let victim = fastrand::usize(..procs.len());
                procs[victim].signal(Signal::SIGSTOP);
                freezes += 1;
                let frozen = Duration::from_millis(2000 + fastrand::u64(..4000));
                tokio::time::sleep(frozen.min(stop.saturating_duration_since(Instant::now()))).await;
                procs[victim].signal(Signal::SIGCONT);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            freezes
        }
    });
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    let mut calls = tokio::task::JoinSet::new();
    while Instant::now() < stop {
        tick.tick().await;
        let (caller, call) = (caller.clone(), call.clone());
        calls.spawn(async move {
            let t = Instant::now();
            let ok = caller.one::<_, String>(&"x".repeat(64), &call).await.is_ok();
            (t.elapsed(), ok)
        });
    }
    let mut outcome = Outcome {
        took: Vec::new(),
        failed: 0,
        freezes: freezer.await.unwrap(),
    };
    while let Some(done) = calls.join_next().await {
        let (took, ok) = done.unwrap();
        outcome.took.push(took);
        if !ok {
            outcome.failed += 1;
        }
    }
    outcome.took.sort_unstable();
    outcome
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    if !layer_cake_tests::bench_requested() {
        return;
    }
    let seconds: u64 = std::env::var("LC_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let host = Daemon::host_cake().await;
        let procs = layer_cake_tests::echoes(&host, "freeze", INSTANCES).await;
        let procs = Arc::new(procs);
        let node = Node::with_config(NodeConfig::new(Some(host.addr), "bench-freeze")).await.unwrap();
        let config = CallerConfig {
            policy: Policy::LeastOutstanding,
            ..CallerConfig::default()
        };
        let caller = node.caller("freeze-[0-9]+", Scope::Host, config).await.unwrap();
        caller.wait_for(INSTANCES, WAIT).await.unwrap();
        println!("\nlayer-cake freeze benchmark: {RATE} calls/s for {seconds} s each, {INSTANCES} instances, one at a time SIGSTOPped 2-6 s\n");
        for (label, call) in [
            ("idempotent (hedged)", Call::new().idempotent()),
            ("plain (5 s deadline)", Call::new()),
        ] {
            let o = run(&caller, &procs, call, seconds).await;
            let q = |f: f64| o.took[((o.took.len() - 1) as f64 * f).round() as usize];
            println!(
                "{label:<22} calls {:>5}  failed {:>3}  freezes {:>2}  median {:>7.2} ms  p99 {:>7.2} ms  slowest {:>8.2} ms",
                o.took.len(),
                o.failed,
                o.freezes,
                ms(q(0.5)),
                ms(q(0.99)),
                ms(*o.took.last().unwrap())
            );
        }
        for p in procs.iter() {
            p.signal(Signal::SIGCONT);
        }
    });
}
