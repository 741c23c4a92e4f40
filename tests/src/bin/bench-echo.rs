//! bench-echo: the far end of the round-trip benchmarks.
//!
//! `bench-echo --name NAME [--scope S]` publishes NAME and answers every message with the
//! same message. `bench-echo --raw` is a plain tokio TCP echo of length-prefixed frames, the
//! baseline. Either prints one line when ready (`published ...` / `listening ADDR`).

use layer_cake::{Event, Node, Scope};
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
    while let Some(event) = publication.next().await {
        if let Event::Message(m) = event {
            let text: String = m.decode()?;
            m.reply(&text).await?;
        }
    }
    Ok(())
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
