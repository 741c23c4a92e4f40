//! publisher: publishes a name and answers every request on its sessions.
//!
//! Prints one line per event on stdout: `published`, `delivered`, `request`, `dropped`,
//! `status`.

use clap::Parser;
use layer_cake::{PubState, PublicationEvent, Scope};
use layer_cake_demos::{DirectoryArgs, LogArgs, Ping, Pong};

/// Publish NAME at SCOPE and answer each `Ping` with a `Pong`.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// The name to publish.
    #[arg(long)]
    name: String,
    /// How far it reaches: PROCESS, GROUP, HOST or LAN.
    #[arg(long, default_value = "HOST")]
    scope: Scope,
    #[command(flatten)]
    directory: DirectoryArgs,
    #[command(flatten)]
    log: LogArgs,
}

fn state_text(state: &PubState) -> String {
    match state {
        PubState::Active => "active".to_string(),
        PubState::Standby { holder } => format!("standby holder={}", holder.short()),
        PubState::Refused { reason } => format!("refused reason={reason:?}"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli.log.init();
    let node = cli.directory.start().await?;
    let mut publication = node.publish(&cli.name, cli.scope).await?;
    let status = publication.status().clone();
    println!(
        "published {} {} at={} {} id={}",
        cli.name,
        cli.scope,
        status.at,
        state_text(&status.state),
        node.id().short()
    );
    let pid = std::process::id();
    // Made once: a signal that came between two turns of the loop must not be missed.
    let stop = layer_cake_demos::wait_for_signal();
    tokio::pin!(stop);
    loop {
        let event = tokio::select! {
            e = publication.next() => e,
            _ = &mut stop => break,
        };
        let Some(event) = event else { break };
        match event {
            PublicationEvent::Delivered(s) => println!(
                "delivered {} {} session={} subscriber={}",
                s.name(),
                s.matched_at(),
                s.id(),
                s.peer().short()
            ),
            PublicationEvent::Dropped(d) => println!(
                "dropped {} {} session={} reason={:?}",
                d.name,
                d.scope,
                d.session,
                d.reason.to_string()
            ),
            PublicationEvent::Status { at, state } => {
                println!("status {} at={} {}", cli.name, at, state_text(&state))
            }
            PublicationEvent::Message(m) => match m.decode::<Ping>() {
                Ok(ping) => {
                    println!(
                        "request {} seq={} session={}",
                        cli.name,
                        ping.seq,
                        m.session().id()
                    );
                    let pong = Pong {
                        seq: ping.seq,
                        text: ping.text,
                        name: cli.name.clone(),
                        pid,
                    };
                    if let Err(e) = m.reply(&pong).await {
                        eprintln!("reply failed: {e}");
                    }
                }
                Err(e) => eprintln!("ignored a message: {e}"),
            },
        }
    }
    Ok(())
}
