//! The LAN benchmark, in the namespace lab (needs root and `ip netns`; skips otherwise).
//!
//! Run with `cargo bench -p layer-cake-tests --bench lan`. Three hosts: lan-cake on h0
//! (10.0.0.195), host-cakes on h1 and h2. Medians over repeated runs of:
//! - **publish → Available across hosts**: a publisher on h1 says it published at LAN scope;
//!   time until a subscriber already waiting on h2 reports the session `Available`;
//! - **host loss**: h1's link is taken down; time until the subscriber on h2 reports
//!   `Dropped` (heartbeats), and, once the link is up again, until it is `Available` again;
//! - **failover**: a GROUP publisher on h2 is SIGKILLed; time until the subscriber is attached
//!   to the LAN publisher on h1.
//!
//! Times are taken when the bench reads each process's line, so process start-up is not in them.

use layer_cake_tests::lab::Lab;
use layer_cake_tests::Proc;
use std::time::{Duration, Instant};

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "| {name:44} | {:>4} | {:>10.1} | {:>10.1} | {:>10.1} |",
        samples.len(),
        ms(samples[samples.len() / 2]),
        ms(samples[0]),
        ms(samples[samples.len() - 1])
    );
}

#[tokio::main]
async fn main() {
    let Some(lab) = Lab::new(3) else { return };
    let _directories = lab.directories(None).await;

    // publish -> Available, across hosts.
    let mut subscriber = lab.subscriber(2, "subscriber", "bench:.*", "LAN", &[]);
    subscriber.expect(&["subscribed"]).await;
    let mut available = Vec::new();
    for i in 0..20 {
        let name = format!("bench:p{i}");
        let mut publisher = lab.publisher(1, "publisher", &name, "LAN", &[]);
        publisher.expect(&["published", &name]).await;
        let t0 = Instant::now();
        subscriber.expect(&["available", &name]).await;
        available.push(t0.elapsed());
        publisher.kill9().await;
        subscriber.expect(&["dropped", &name]).await;
    }

    // Host loss and return.
    let mut publisher = lab.publisher(1, "publisher", "bench:lost", "LAN", &[]);
    publisher.expect(&["published"]).await;
    subscriber.expect(&["available bench:lost"]).await;
    let (mut lost, mut back) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        lab.ip(1, &["link", "set", "eth0", "down"]);
        let t0 = Instant::now();
        subscriber.expect(&["dropped bench:lost"]).await;
        lost.push(t0.elapsed());
        lab.ip(1, &["link", "set", "eth0", "up"]);
        let t1 = Instant::now();
        subscriber.expect(&["available bench:lost"]).await;
        back.push(t1.elapsed());
    }
    publisher.kill9().await;
    subscriber.kill9().await;

    // Failover GROUP -> LAN.
    let mut far = lab.publisher(1, "publisher", "bench:svc", "LAN", &[]);
    far.expect(&["published"]).await;
    let mut group = lab.spawn(2, "group-cake", "group-cake", &["--listen", "127.0.0.1:0"]);
    let line = group.expect(&["listening "]).await;
    let group_addr = line.trim_start_matches("listening ").trim().to_string();
    let mut subscriber = lab.spawn(
        2,
        "subscriber",
        "subscriber",
        &[
            "--search",
            "bench:svc",
            "--scope",
            "LAN",
            "--directory",
            &group_addr,
        ],
    );
    subscriber.expect(&["subscribed"]).await;
    let mut failover = Vec::new();
    for _ in 0..10 {
        let mut near: Proc = lab.spawn(
            2,
            "near",
            "publisher",
            &[
                "--name",
                "bench:svc",
                "--scope",
                "GROUP",
                "--directory",
                &group_addr,
            ],
        );
        near.expect(&["published"]).await;
        subscriber.expect(&["available bench:svc GROUP"]).await;
        let t0 = Instant::now();
        near.kill9().await;
        subscriber.expect(&["available bench:svc LAN"]).await;
        failover.push(t0.elapsed());
    }

    println!();
    println!("layer-cake LAN benchmark (namespace lab: 3 hosts on a bridge, veth links)");
    println!();
    println!(
        "| {:44} | {:>4} | {:>10} | {:>10} | {:>10} |",
        "measure", "runs", "median ms", "min ms", "max ms"
    );
    println!("|{:-<46}|{:-<6}|{:-<12}|{:-<12}|{:-<12}|", "", "", "", "", "");
    summary("publish on h1 -> Available on h2", available);
    summary("h1 link down -> Dropped on h2", lost);
    summary("h1 link up -> Available again on h2", back);
    summary("SIGKILL GROUP publisher -> LAN Available", failover);
}
