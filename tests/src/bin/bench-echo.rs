//! bench-echo: the far end of the round-trip benchmarks.
//!
//! `bench-echo --name NAME [--scope S]` publishes NAME and answers every request with the
//! same message (`"count?"` with the number of plain messages it got). `bench-echo --raw` is
//! a plain tokio TCP echo of length-prefixed frames, the baseline; `bench-echo --raw-sink`
//! counts such frames and answers an empty one with the count. Each prints one line when
//! ready (`published ...` / `listening ADDR`).
//!
//! `bench-echo --client SEARCH [--scope S] [--runs N] [--big-runs M]` is the near end, for
//! benchmarks that run it on another host (the namespace lab): it subscribes, and once a
//! session is available times N round trips of 64 bytes one at a time, then M (2,000) of
//! 64 KiB with 16 in flight, and
//! prints `rtt_p50_us=.. rtt_p99_us=.. mib_s=..` (bytes both ways per second).

use layer_cake::{Node, PublicationEvent, Scope, SubscriptionEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn main() -> anyhow::Result<()> {
    let runtime = match std::env::var("LC_BENCH_FLAVOR").as_deref() {
        Ok("current_thread") => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        _ => tokio::runtime::Builder::new_multi_thread().enable_all().build()?,
    };
    // Spawned so the loop runs on a worker (see the benchmark's note on block_on).
    runtime.block_on(async { tokio::spawn(run()).await? })
}

async fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--raw") {
        return raw_echo().await;
    }
    if args.first().map(String::as_str) == Some("--client") {
        return client(&args).await;
    }
    if args.first().map(String::as_str) == Some("--raw-sink") {
        return raw_sink().await;
    }
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let name = value("--name")
        .ok_or_else(|| anyhow::anyhow!("usage: bench-echo --name NAME [--scope S] | --raw"))?;
    let scope: Scope = value("--scope").unwrap_or_else(|| "HOST".into()).parse()?;
    let node = Node::start().await?;
    let mut publication = node.publish(&name, scope).await?;
    println!("published {name} {scope} id={}", node.id().short());
    // Plain messages (casts) are counted; a request gets itself back, or with "count?" the
    // number of plain messages so far (sent after casts on the same session, it comes after
    // them all).
    let mut casts: u64 = 0;
    while let Some(event) = publication.next().await {
        if let PublicationEvent::Message(m) = event {
            if !m.is_request() {
                casts += 1;
                continue;
            }
            let text: String = m.decode()?;
            if text == "count?" {
                m.reply(&casts.to_string()).await?;
            } else {
                m.reply(&text).await?;
            }
        }
    }
    Ok(())
}

/// Reads length-prefixed frames and counts them; after each read that ends on a frame
/// boundary, writes the count so far (8 bytes) back if the peer asked (a frame of length 0).
async fn raw_sink() -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("listening {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let mut stream = tokio::io::BufReader::with_capacity(64 * 1024, stream);
            let mut frames: u64 = 0;
            let mut body = Vec::new();
            loop {
                let mut len = [0u8; 4];
                if stream.read_exact(&mut len).await.is_err() {
                    return;
                }
                let len = u32::from_be_bytes(len) as usize;
                if len == 0 {
                    if stream.get_mut().write_all(&frames.to_be_bytes()).await.is_err() {
                        return;
                    }
                    continue;
                }
                body.resize(len, 0);
                if stream.read_exact(&mut body).await.is_err() {
                    return;
                }
                frames += 1;
            }
        });
    }
}

async fn raw_echo() -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("listening {}", listener.local_addr()?);
    loop {
        let (mut stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let mut buf = Vec::new();
            loop {
                let mut len = [0u8; 4];
                if stream.read_exact(&mut len).await.is_err() {
                    return;
                }
                buf.resize(u32::from_be_bytes(len) as usize, 0);
                if stream.read_exact(&mut buf).await.is_err() {
                    return;
                }
                let mut frame = len.to_vec();
                frame.extend_from_slice(&buf);
                if stream.write_all(&frame).await.is_err() {
                    return;
                }
            }
        });
    }
}

async fn client(args: &[String]) -> anyhow::Result<()> {
    use std::time::{Duration, Instant};
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let search = args
        .get(1)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("--client SEARCH"))?;
    let scope: Scope = value("--scope").unwrap_or_else(|| "HOST".into()).parse()?;
    let runs: usize = value("--runs").unwrap_or_else(|| "2000".into()).parse()?;
    let big_runs: usize = value("--big-runs").unwrap_or_else(|| "2000".into()).parse()?;
    let node = Node::start().await?;
    let mut subscription = node.subscribe(&search, scope).await?;
    let session = loop {
        match tokio::time::timeout(Duration::from_secs(15), subscription.next()).await? {
            Some(SubscriptionEvent::Available(s)) => break s,
            Some(_) => continue,
            None => anyhow::bail!("the subscription ended"),
        }
    };
    let deadline = Duration::from_secs(5);
    let small = "x".repeat(64);
    for _ in 0..100 {
        session.request::<_, String>(&small, deadline).await?;
    }
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        session.request::<_, String>(&small, deadline).await?;
        samples.push(t.elapsed());
    }
    samples.sort_unstable();
    let q = |f: f64| samples[((samples.len() - 1) as f64 * f).round() as usize].as_secs_f64() * 1e6;
    // Throughput: 2,000 requests of 64 KiB, 16 in flight at a time.
    let big = std::sync::Arc::new("y".repeat(64 * 1024));
    let started = Instant::now();
    let mut inflight = tokio::task::JoinSet::new();
    for _ in 0..big_runs {
        if inflight.len() >= 16 {
            inflight.join_next().await.expect("a task")??;
        }
        let (s, big) = (session.clone(), big.clone());
        inflight.spawn(async move { s.request::<_, String>(&*big, deadline).await.map(|_| ()) });
    }
    while let Some(done) = inflight.join_next().await {
        done??;
    }
    let mib_s = 2.0 * big_runs.max(1) as f64 * 64.0 / 1024.0 / started.elapsed().as_secs_f64();
    println!(
        "rtt_p50_us={:.1} rtt_p99_us={:.1} mib_s={mib_s:.1}",
        q(0.5),
        q(0.99)
    );
    Ok(())
}
