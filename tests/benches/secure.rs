//! The cost of encryption: session round trip and throughput between two hosts of the
//! namespace lab, on a plain LAN and on an encrypted one, side by side. Needs root (it builds
//! the lab); run with `cargo bench -p layer-cake-tests --bench secure`.
//!
//! Each setting: lan-cake on h0, host-cake on h1 and h2, `bench-echo` publishing at LAN scope on
//! h1, and `bench-echo --client` on h2 timing 2,000 round trips of 64 bytes one at a time and
//! 2,000 requests of 64 KiB (echoed back) with 16 in flight. Encrypted: the same with one
//! secret file given to every daemon (`--secret-file`) and process (`LC_SECRET_FILE`).

use layer_cake_tests::field;
use layer_cake_tests::lab::Lab;

const ROUNDS: usize = 3;

/// One measurement: (p50 µs, p99 µs, MiB/s).
async fn measure(lab: &Lab, key: Option<&str>) -> (f64, f64, f64) {
    let envs: Vec<(&str, &str)> = key.map(|k| vec![("LC_SECRET_FILE", k)]).unwrap_or_default();
    let daemons = lab.directories(key).await;
    let mut echo = lab.spawn_env(
        1,
        "echo",
        "bench-echo",
        &["--name", "bench:echo", "--scope", "LAN"],
        &envs,
    );
    echo.expect(&["published bench:echo"]).await;
    let mut client = lab.spawn_env(
        2,
        "client",
        "bench-echo",
        &["--client", "bench:echo", "--scope", "LAN", "--runs", "2000"],
        &envs,
    );
    let line = client.expect(&["rtt_p50_us="]).await;
    let num = |key: &str| field(&line, key).parse::<f64>().expect("a number");
    let result = (num("rtt_p50_us"), num("rtt_p99_us"), num("mib_s"));
    // Everything ends before the next setting starts.
    client.kill9().await;
    echo.kill9().await;
    for d in daemons {
        d.kill9().await;
    }
    result
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let Some(lab) = Lab::new(3) else { return };
    let folder = tempfile::tempdir().unwrap();
    let key = folder.path().join("lan.key");
    layer_cake::secure::Secret::create_file(&key).unwrap();
    let key = key.to_str().unwrap().to_string();
    println!("encryption cost across two lab hosts (veth + bridge), unpinned, {ROUNDS} rounds each");
    println!();
    println!("| LAN | round | RTT p50 | RTT p99 | 64 KiB echo, 16 in flight |");
    println!("|---|---|---|---|---|");
    for round in 1..=ROUNDS {
        for (label, k) in [("plain", None), ("encrypted", Some(key.as_str()))] {
            let (p50, p99, mib) = measure(&lab, k).await;
            println!("| {label} | {round} | {p50:.1} µs | {p99:.1} µs | {mib:.1} MiB/s |");
        }
    }
}
