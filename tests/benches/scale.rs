//! Scale: one host-cake with 1,000 connected processes publishing 20 names each (20,000
//! publications) and 10,000 live pattern subscriptions. Prints how long it took to get there,
//! host-cake's memory and descriptors, and publish → `Available` for a new name with all of
//! that live, beside the same on an empty host-cake.
//! Run with `cargo bench -p layer-cake-tests --bench scale`.
//!
//! The 1,000 "processes" are 1,000 runtime nodes in this one bench process, each with its own
//! connection to host-cake and its own session listener: to host-cake they are 1,000
//! processes. (1,000 separate OS processes also work, but on 2 vCPUs their start-up, not
//! host-cake, would be what is measured.) The subscriptions, 100 on each of 100 nodes, match
//! nothing, as subscribers waiting for publishers would: half are prefix searches
//! (`idle:<s>:<k>:.*`, no regular expression compiled), half general patterns
//! (`idle:<s>:<k>:[a-z]+`), so each kind's memory shows.

use layer_cake::{Node, NodeConfig, Publication, Scope, Subscription, SubscriptionEvent};
use layer_cake_tests::procfs::{fd_count, rss_kib};
use layer_cake_tests::{Daemon, WAIT};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const PROCESSES: usize = 1_000;
const NAMES_EACH: usize = 20;
/// Nodes with subscriptions: half with prefix searches, half with general patterns.
const SUBSCRIBERS: usize = 100;
const SUBSCRIPTIONS_EACH: usize = 100;
const PROBES: usize = 50;
/// How many nodes join at once.
const BATCH: usize = 50;

async fn node(directory: SocketAddr, name: &str) -> Node {
    Node::with_config(NodeConfig::new(Some(directory), name))
        .await
        .expect("node starts")
}

/// One publish → `Available` round, once everything host-cake has queued is done.
async fn probe_once(directory: SocketAddr) -> Duration {
    let subscriber = node(directory, "sync-subscriber").await;
    let mut sub = subscriber.subscribe("sync", Scope::Host).await.unwrap();
    let publisher = node(directory, "sync-publisher").await;
    let t = Instant::now();
    let _publication = publisher.publish("sync", Scope::Host).await.unwrap();
    loop {
        if let SubscriptionEvent::Available(_) = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("in time")
            .expect("open")
        {
            break t.elapsed();
        }
    }
}

/// Publish → `Available` at a waiting subscriber, `PROBES` times: median and p99.
async fn probe(directory: SocketAddr) -> (Duration, Duration) {
    let subscriber = node(directory, "probe-subscriber").await;
    let mut sub: Subscription = subscriber.subscribe("probe:.*", Scope::Host).await.unwrap();
    let publisher = node(directory, "probe-publisher").await;
    let mut samples = Vec::with_capacity(PROBES);
    // Round 0 is not counted: it waits behind whatever host-cake still has queued.
    for k in 0..=PROBES {
        let t = Instant::now();
        let publication: Publication = publisher
            .publish(&format!("probe:{k}"), Scope::Host)
            .await
            .unwrap();
        loop {
            match tokio::time::timeout(WAIT, sub.next())
                .await
                .expect("in time")
                .expect("open")
            {
                SubscriptionEvent::Available(s) if s.name() == format!("probe:{k}") => break,
                _ => {}
            }
        }
        if k > 0 {
            samples.push(t.elapsed());
        }
        publication.retract().await.expect("the node runs");
        loop {
            if let SubscriptionEvent::Dropped(_) = tokio::time::timeout(WAIT, sub.next())
                .await
                .expect("in time")
                .expect("open")
            {
                break;
            }
        }
    }
    samples.sort_unstable();
    let q = |f: f64| samples[((samples.len() - 1) as f64 * f).round() as usize];
    (q(0.5), q(0.99))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // This process holds two descriptors per node; host-cake raises its own limit.
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard);
    let host = Daemon::host_cake().await;
    let (addr, pid) = (host.addr, host.proc.pid());
    println!("scale: host-cake with {PROCESSES} processes x {NAMES_EACH} names and {} pattern subscriptions (unpinned)", SUBSCRIBERS * SUBSCRIPTIONS_EACH);
    println!();
    println!("| stage | took | host-cake RSS | host-cake fds |");
    println!("|---|---|---|---|");
    let row = |stage: &str, took: Duration| {
        println!(
            "| {stage} | {} | {} KiB | {} |",
            ms(took),
            rss_kib(pid),
            fd_count(pid)
        );
    };
    row("empty", Duration::ZERO);
    let (empty_p50, empty_p99) = probe(addr).await;

    let started = Instant::now();
    let mut nodes = Vec::with_capacity(PROCESSES);
    let mut publications = Vec::with_capacity(PROCESSES * NAMES_EACH);
    for batch in (0..PROCESSES).collect::<Vec<_>>().chunks(BATCH) {
        let joined = futures_util::future::join_all(batch.iter().map(|&p| async move {
            let n = node(addr, "scale").await;
            let mut pubs = Vec::with_capacity(NAMES_EACH);
            for k in 0..NAMES_EACH {
                pubs.push(
                    n.publish(&format!("scale:{p}:{k}"), Scope::Host)
                        .await
                        .expect("publishes"),
                );
            }
            (n, pubs)
        }))
        .await;
        for (n, pubs) in joined {
            nodes.push(n);
            publications.extend(pubs);
        }
    }
    row(
        &format!(
            "{PROCESSES} processes joined, {} names published",
            publications.len()
        ),
        started.elapsed(),
    );

    let mut subscriptions = Vec::with_capacity(SUBSCRIBERS * SUBSCRIPTIONS_EACH);
    for (kind, tail) in [("prefix", ".*"), ("regex", "[a-z]+")] {
        let started = Instant::now();
        for s in 0..SUBSCRIBERS / 2 {
            let n = node(addr, "scale-subscriber").await;
            for k in 0..SUBSCRIPTIONS_EACH {
                let search = format!("idle:{kind}:{s}:{k}:{tail}");
                subscriptions.push(n.subscribe(&search, Scope::Host).await.expect("subscribes"));
            }
            nodes.push(n);
        }
        // A probe round waits behind them all: then host-cake holds every one.
        let _ = probe_once(addr).await;
        row(
            &format!(
                "+{} {kind} subscriptions (`idle:..:{tail}`)",
                SUBSCRIBERS / 2 * SUBSCRIPTIONS_EACH
            ),
            started.elapsed(),
        );
    }
    let (full_p50, full_p99) = probe(addr).await;
    row("after the probes", Duration::ZERO);

    let started = Instant::now();
    for n in &nodes {
        n.stop();
    }
    drop(publications);
    drop(subscriptions);
    let deadline = Instant::now() + WAIT;
    while fd_count(pid) > 20 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    row(&format!("all {} nodes gone", nodes.len()), started.elapsed());

    println!();
    println!("| publish -> Available | median | p99 |");
    println!("|---|---|---|");
    println!("| empty host-cake | {} | {} |", ms(empty_p50), ms(empty_p99));
    println!(
        "| 20,000 names, 10,000 subscriptions live | {} | {} |",
        ms(full_p50),
        ms(full_p99)
    );
}
