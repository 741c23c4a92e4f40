//! How the engine's matching cost grows with the number of live subscriptions: prints one
//! table. Run with `cargo bench -p layer-cake --bench matching` (pin with `taskset -c 0`).
//!
//! The engine is a pure state machine, so this measures it alone, with no sockets: for each
//! count N, N subscriptions are registered (half exact names, half patterns such as
//! `svc-123:worker-.*`, each on its own prefix, plus 10 patterns with no literal prefix that
//! every publish must try), then a publication of a new name is made and retracted, many
//! times; each publish matches exactly one exact subscription and one pattern.
//!
//! - **publish**: median and p99 of one `Publish` frame, routes included.
//! - **subscribe**: the mean cost of registering one subscription while filling the engine.

use layer_cake::directory::{Engine, Output};
use layer_cake::wire::directory::{PubInfo, SubInfo, Up};
use layer_cake::{ProcessId, PubId, Scope, SubId};
use std::time::{Duration, Instant};

const PUBLISHES: usize = 2_000;
/// Patterns with no literal prefix (`.*:worker-.*`): no index can skip them.
const OPEN_PATTERNS: usize = 10;

fn sub(n: usize, search: String) -> Up {
    Up::Subscribe(SubInfo {
        id: SubId(uuid::Uuid::from_u128(1 << 64 | n as u128)),
        search,
        scope: Scope::Host,
        process: ProcessId(uuid::Uuid::from_u128(7)),
    })
}

fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort_unstable();
    samples[((samples.len() as f64 - 1.0) * q).round() as usize]
}

fn run(n: usize) -> (Duration, Duration, Duration) {
    let mut engine = Engine::new(Scope::Host);
    let mut out: Vec<Output> = Vec::new();
    let started = Instant::now();
    for i in 0..n {
        let search = if i & 1 == 0 {
            format!("svc-{i}:worker")
        } else {
            format!("svc-{i}:worker-.*")
        };
        engine.on_child_frame(1 + (i % 64) as u64, sub(i, search), &mut out);
        out.clear();
    }
    for i in 0..OPEN_PATTERNS {
        engine.on_child_frame(1, sub(n + i, format!(".*:unmatched-{i}-.*")), &mut out);
        out.clear();
    }
    let subscribe = started.elapsed() / (n + OPEN_PATTERNS) as u32;
    let mut samples = Vec::with_capacity(PUBLISHES);
    for k in 0..PUBLISHES {
        // Names that each match one exact subscription (even i) or one pattern (odd i).
        let i = (k * 7919) % n;
        let name = if i & 1 == 0 {
            format!("svc-{i}:worker")
        } else {
            format!("svc-{i}:worker-{k}")
        };
        let id = PubId(uuid::Uuid::from_u128(2 << 64 | k as u128));
        let info = PubInfo {
            id,
            name,
            scope: Scope::Host,
            process: ProcessId(uuid::Uuid::from_u128(9)),
            addr: "127.0.0.1:4000".parse().unwrap(),
        };
        let t = Instant::now();
        engine.on_child_frame(1000, Up::Publish(info), &mut out);
        samples.push(t.elapsed());
        let routes = out
            .iter()
            .filter(|o| matches!(o, Output::ToLink(_, layer_cake::wire::directory::Down::Route(_))))
            .count();
        assert_eq!(routes, 1, "publish {k} should match one subscription");
        out.clear();
        engine.on_child_frame(1000, Up::Retract { id }, &mut out);
        out.clear();
    }
    (
        quantile(&mut samples, 0.5),
        quantile(&mut samples, 0.99),
        subscribe,
    )
}

/// A pattern subscription arriving at an engine that holds `n` live names (`svc-{i}:worker`):
/// median and p99 of one `Subscribe` frame (regex compile and the match against the names
/// included); each matches one name.
fn subscribe_against(n: usize) -> (Duration, Duration) {
    let mut engine = Engine::new(Scope::Host);
    let mut out: Vec<Output> = Vec::new();
    for i in 0..n {
        let info = PubInfo {
            id: PubId(uuid::Uuid::from_u128(3 << 64 | i as u128)),
            name: format!("svc-{i}:worker"),
            scope: Scope::Host,
            process: ProcessId(uuid::Uuid::from_u128(9)),
            addr: "127.0.0.1:4000".parse().unwrap(),
        };
        engine.on_child_frame(1 + (i % 64) as u64, Up::Publish(info), &mut out);
        out.clear();
    }
    let mut samples = Vec::with_capacity(PUBLISHES);
    for k in 0..PUBLISHES {
        let i = (k * 7919) % n;
        let Up::Subscribe(info) = sub(n + k, format!("svc-{i}:work.r")) else {
            unreachable!()
        };
        let id = info.id;
        let t = Instant::now();
        engine.on_child_frame(1000, Up::Subscribe(info), &mut out);
        samples.push(t.elapsed());
        assert_eq!(out.len(), 1, "subscription {k} should match one name: {out:?}");
        out.clear();
        engine.on_child_frame(1000, Up::Unsubscribe { id }, &mut out);
        out.clear();
    }
    (quantile(&mut samples, 0.5), quantile(&mut samples, 0.99))
}

/// A link with 20 publications and 2 subscriptions going, among `links` such links: median
/// and p99 of `link_lost`.
fn link_lost_cost(links: usize) -> (Duration, Duration) {
    let mut engine = Engine::new(Scope::Host);
    let mut out: Vec<Output> = Vec::new();
    for l in 0..links {
        for k in 0..20 {
            let info = PubInfo {
                id: PubId(uuid::Uuid::from_u128(4 << 64 | (l * 20 + k) as u128)),
                name: format!("link-{l}:{k}"),
                scope: Scope::Host,
                process: ProcessId(uuid::Uuid::from_u128(l as u128)),
                addr: "127.0.0.1:4000".parse().unwrap(),
            };
            engine.on_child_frame(l as u64 + 1, Up::Publish(info), &mut out);
        }
        engine.on_child_frame(l as u64 + 1, sub(2 * l, format!("link-{l}:1")), &mut out);
        engine.on_child_frame(l as u64 + 1, sub(2 * l + 1, format!("other-{l}:.*")), &mut out);
        out.clear();
    }
    let mut samples = Vec::with_capacity(links.min(PUBLISHES));
    for l in 0..links.min(PUBLISHES) {
        let t = Instant::now();
        engine.link_lost(l as u64 + 1, &mut out);
        samples.push(t.elapsed());
        out.clear();
    }
    (quantile(&mut samples, 0.5), quantile(&mut samples, 0.99))
}

fn us(d: Duration) -> String {
    format!("{:.2} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    println!("| live subscriptions | publish median | publish p99 | subscribe (mean, filling) |");
    println!("|---|---|---|---|");
    for n in [100, 1_000, 10_000, 100_000] {
        let (p50, p99, subscribe) = run(n);
        println!("| {n} | {} | {} | {} |", us(p50), us(p99), us(subscribe));
    }
    println!();
    println!("| live names | pattern subscribe median | p99 |");
    println!("|---|---|---|");
    for n in [100, 1_000, 10_000, 100_000] {
        let (p50, p99) = subscribe_against(n);
        println!("| {n} | {} | {} |", us(p50), us(p99));
    }
    println!();
    println!("| links (20 names + 2 subscriptions each) | link lost median | p99 |");
    println!("|---|---|---|");
    for links in [100, 1_000, 5_000] {
        let (p50, p99) = link_lost_cost(links);
        println!("| {links} | {} | {} |", us(p50), us(p99));
    }
}
