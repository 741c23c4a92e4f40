//! multihosting-server: the HTTP front of the multihosting demo.
//!
//! Listens for `GET /Xy?x=2&y=2` (or `POST /Xy` with `{"x": 2, "y": 2}`), subscribes to the
//! workers by regular expression (`test-multihosting:worker-10:[-a-f0-9]+`, or with
//! `--single` the one `test-multihosting:worker-9`), and spreads the requests over every
//! worker the subscription finds. The answer is `{"type": "Table", "value": [[...]]}`.

use clap::Parser;
use layer_cake::caller::{CallerConfig, Policy};
use layer_cake::http::{forward, HttpError, HttpFront};
use layer_cake::Scope;
use layer_cake_demos::{DirectoryArgs, LogArgs, Xy};
use std::net::SocketAddr;
use std::time::Duration;

/// Serve `Xy` requests over HTTP with a pool of workers found by name.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Where to listen for HTTP.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5050")]
    listen: SocketAddr,
    /// Find the single worker `test-multihosting:worker-9`, not every
    /// `test-multihosting:worker-10:<uuid>`.
    #[arg(long)]
    single: bool,
    /// How far to look for workers: PROCESS, GROUP, HOST or LAN.
    #[arg(long, default_value = "HOST")]
    scope: Scope,
    /// How long a request may take, waiting for a worker included, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    deadline_ms: u64,
    /// Requests in flight on one worker, at most.
    #[arg(long, value_name = "N", default_value_t = 64)]
    per_worker: usize,
    /// Requests waiting for a worker, at most; more are answered 503 at once.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    waiting: usize,
    /// Tokio worker threads (1: everything on one thread).
    #[arg(long, value_name = "N", default_value_t = 1)]
    threads: usize,
    #[command(flatten)]
    directory: DirectoryArgs,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli.log.init();
    let runtime = layer_cake_demos::runtime(cli.threads)?;
    runtime.block_on(serve(cli))
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    let node = cli.directory.start().await?;
    let search = if cli.single {
        "test-multihosting:worker-9"
    } else {
        "test-multihosting:worker-10:[-a-f0-9]+"
    };
    // The least busy worker, whatever its scope: the workers are alike, and spreading the
    // load matters more here than nearness.
    let config = CallerConfig {
        per_instance: cli.per_worker,
        waiting: cli.waiting,
        deadline: Duration::from_millis(cli.deadline_ms),
        policy: Policy::LeastOutstanding,
        ..CallerConfig::default()
    };
    let workers = node.caller(search, cli.scope, config).await?;
    let front = HttpFront::new().accept::<Xy>().bind(cli.listen).await?;
    println!("listening {}", front.local_addr()?);
    println!("subscribed {search} {}", cli.scope);
    front
        .serve(
            move |request| {
                let workers = workers.clone();
                async move {
                    let xy: Xy = request.decode()?;
                    xy.check().map_err(HttpError::BadRequest)?;
                    forward(&workers, request).await
                }
            },
            layer_cake_demos::wait_for_signal(),
        )
        .await?;
    Ok(())
}
