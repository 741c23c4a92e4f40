//! Churn soak: prints how host-cake's and group-cake's memory and descriptors move under
//! minutes of steady churn. Run with `cargo bench -p layer-cake-tests --bench soak`
//! (`LC_SOAK_SECS=600` for longer; default 180 s).
//!
//! Real host-cake, and group-cake under it, on loopback, with a publisher demo at each scope
//! as the anchor. Four tasks churn without pause, alternating GROUP (through group-cake) and
//! HOST: each cycle a process joins, publishes a name of its own, subscribes to the anchor,
//! makes one request on the session and goes (`layer_cake_tests::churn::cycle`). Every 15 s a
//! row: cycles so far, their rate, and each directory's RSS and descriptors.

use layer_cake::Scope;
use layer_cake_tests::churn::cycle;
use layer_cake_tests::procfs::{fd_count, rss_kib};
use layer_cake_tests::{publisher, Daemon};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHURNERS: u64 = 4;
const ROW_EVERY: Duration = Duration::from_secs(15);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs: u64 = std::env::var("LC_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    let host = Daemon::host_cake().await;
    let group = Daemon::group_cake(host.addr).await;
    let mut host_anchor = publisher("host-anchor", &host.env(), "soak:host", "HOST");
    host_anchor.expect(&["published soak:host"]).await;
    let mut group_anchor = publisher("group-anchor", &group.env(), "soak:group", "GROUP");
    group_anchor.expect(&["published soak:group"]).await;
    let (host_pid, group_pid) = (host.proc.pid(), group.proc.pid());

    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(secs);
    let mut churners = Vec::new();
    for c in 0..CHURNERS {
        let done = done.clone();
        let (host_addr, group_addr) = (host.addr, group.addr);
        churners.push(tokio::spawn(async move {
            let mut i = c;
            while Instant::now() < until {
                if i % 2 == 0 {
                    cycle(group_addr, Scope::Group, "soak:group", i).await;
                } else {
                    cycle(host_addr, Scope::Host, "soak:host", i).await;
                }
                done.fetch_add(1, Ordering::Relaxed);
                i += CHURNERS;
            }
        }));
    }

    println!("churn soak: {secs} s, {CHURNERS} churners, GROUP and HOST alternately (unpinned)");
    println!();
    println!(
        "| elapsed | cycles | cycles/s | host-cake RSS | group-cake RSS | host-cake fds | group-cake fds |"
    );
    println!("|---|---|---|---|---|---|---|");
    let started = Instant::now();
    let (mut last, mut last_at) = (0, started);
    let mut rows = Vec::new();
    let mut row = |at: Instant| {
        let n = done.load(Ordering::Relaxed);
        let rate = (n - last) as f64 / at.duration_since(last_at).as_secs_f64().max(1e-9);
        let (h, g) = (rss_kib(host_pid), rss_kib(group_pid));
        println!(
            "| {:.0} s | {n} | {rate:.0} | {h} KiB | {g} KiB | {} | {} |",
            at.duration_since(started).as_secs_f64(),
            fd_count(host_pid),
            fd_count(group_pid)
        );
        rows.push((h, g));
        (last, last_at) = (n, at);
    };
    row(started);
    while Instant::now() + ROW_EVERY <= until {
        tokio::time::sleep(ROW_EVERY).await;
        row(Instant::now());
    }
    for c in churners {
        c.await.expect("a churner failed");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    row(Instant::now());
    // Flat: compare the second row (after warm-up) with the last.
    let (first, last) = (rows[1.min(rows.len() - 1)], rows[rows.len() - 1]);
    println!();
    println!(
        "RSS from the first sample after warm-up to the end: host-cake {:+} KiB, group-cake {:+} KiB",
        last.0 as i64 - first.0 as i64,
        last.1 as i64 - first.1 as i64
    );
}
