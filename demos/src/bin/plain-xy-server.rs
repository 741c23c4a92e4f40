//! plain-xy-server: the multihosting demo's baseline, for benchmarks.
//!
//! The same HTTP front as `multihosting-server`, answering `GET /Xy?x=2&y=2` with the same
//! table, but computing it itself: no directory, no workers, one process. Comparing the two
//! gives the cost of the hop to a worker.

use clap::Parser;
use layer_cake::http::{HttpError, HttpFront, HttpReply};
use layer_cake_demos::{texture, Xy};
use std::net::SocketAddr;

/// Serve `Xy` requests over HTTP, computing every table in this process.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Where to listen for HTTP.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5050")]
    listen: SocketAddr,
    /// Tokio worker threads (1: everything on one thread).
    #[arg(long, value_name = "N", default_value_t = 1)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = layer_cake_demos::runtime(cli.threads)?;
    runtime.block_on(async {
        let front = HttpFront::new().accept::<Xy>().bind(cli.listen).await?;
        println!("listening {}", front.local_addr()?);
        front
            .serve(
                |request| async move {
                    let xy: Xy = request.decode()?;
                    xy.check().map_err(HttpError::BadRequest)?;
                    HttpReply::new(&texture(xy))
                },
                layer_cake_demos::wait_for_signal(),
            )
            .await?;
        Ok(())
    })
}
