//! exposed-directory: a HOST-scope directory bound on every interface, as a library user might
//! bind one by mistake (host-cake refuses to). For the lab test that checks the directory
//! itself still turns away connections from other hosts. Prints `listening ADDR`.

use layer_cake::directory::server::{self, DirectoryConfig};
use layer_cake::Scope;
use tokio_util::sync::CancellationToken;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await?;
        println!("listening {}", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            stop.cancel();
        });
        server::run(
            listener,
            DirectoryConfig::new(Scope::Host, "exposed-directory"),
            shutdown,
        )
        .await;
        Ok(())
    })
}
