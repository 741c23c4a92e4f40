//! idle-role: the trivial runtime role of the composite benchmark.
//!
//! Joins the directory in `LC_DIRECTORY` (as any role of a composite does), publishes
//! `role:<LC_ROLE>` at GROUP scope, and waits for SIGTERM.

use layer_cake::{Node, Scope};

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let node = Node::start().await?;
        let role = layer_cake::role::role_name().unwrap_or_else(|| "unnamed".into());
        let _publication = node.publish(&format!("role:{role}"), Scope::Group).await?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        term.recv().await;
        Ok(())
    })
}
