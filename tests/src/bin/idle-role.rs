//! idle-role: the trivial runtime role of the composite benchmark.
//!
//! Joins the directory in `LC_DIRECTORY` (as any role of a composite does), publishes
//! `role:<LC_ROLE>` at GROUP scope, answers every string it is asked with the same string, and
//! waits for SIGTERM.

use layer_cake::{Node, PublicationEvent, Scope};

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let node = Node::start().await?;
        let role = layer_cake::role::role_name().unwrap_or_else(|| "unnamed".into());
        let mut publication = node.publish(&format!("role:{role}"), Scope::Group).await?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            tokio::select! {
                _ = term.recv() => break,
                event = publication.next() => match event {
                    Some(PublicationEvent::Message(m)) => match m.decode::<String>() {
                        Ok(text) => {
                            let _ = m.reply(&text).await;
                        }
                        Err(e) => m.fail(e.to_string()),
                    },
                    Some(_) => {}
                    None => break,
                },
            }
        }
        Ok(())
    })
}
