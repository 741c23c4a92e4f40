//! subscriber: subscribes to a search and prints one line per event.
//!
//! On each new session it sends a `Ping` and prints the `Pong`:
//! `available NAME SCOPE ...`, `reply NAME ...`, `dropped NAME SCOPE ...`.

use clap::Parser;
use layer_cake::{Scope, SubscriptionEvent};
use layer_cake_demos::{DirectoryArgs, LogArgs, Ping, Pong};
use std::time::Duration;

/// Subscribe with SEARCH (an exact name, or a regular expression that must match the whole
/// name) at SCOPE; exchange a request and its response on every session.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// An exact name or a regular expression.
    #[arg(long)]
    search: String,
    /// How far to look: PROCESS, GROUP, HOST or LAN.
    #[arg(long, default_value = "HOST")]
    scope: Scope,
    /// How long to wait for each reply, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    deadline_ms: u64,
    #[command(flatten)]
    directory: DirectoryArgs,
    #[command(flatten)]
    log: LogArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli.log.init();
    let node = cli.directory.start().await?;
    let mut subscription = node.subscribe(&cli.search, cli.scope).await?;
    println!("subscribed {} {} id={}", cli.search, cli.scope, node.id().short());
    let deadline = Duration::from_millis(cli.deadline_ms);
    let mut seq = 0;
    // Made once: a signal that came between two turns of the loop must not be missed.
    let stop = layer_cake_demos::wait_for_signal();
    tokio::pin!(stop);
    loop {
        let event = tokio::select! {
            e = subscription.next() => e,
            _ = &mut stop => break,
        };
        let Some(event) = event else { break };
        match event {
            SubscriptionEvent::Available(session) => {
                println!(
                    "available {} {} session={} publisher={} addr={}",
                    session.name(),
                    session.matched_at(),
                    session.id(),
                    session.peer().short(),
                    session
                        .peer_addr()
                        .map(|a| a.to_string())
                        .unwrap_or_else(|| "in-process".into()),
                );
                seq += 1;
                let ping = Ping {
                    seq,
                    text: "hello".into(),
                };
                // Answered on a task of its own so events keep flowing while it waits.
                tokio::spawn(async move {
                    match session.request::<_, Pong>(&ping, deadline).await {
                        Ok(pong) => println!(
                            "reply {} seq={} pid={} session={}",
                            pong.name,
                            pong.seq,
                            pong.pid,
                            session.id()
                        ),
                        Err(e) => println!(
                            "no-reply {} session={} error={:?}",
                            session.name(),
                            session.id(),
                            e.to_string()
                        ),
                    }
                });
            }
            SubscriptionEvent::Dropped(d) => println!(
                "dropped {} {} session={} publisher={} reason={:?}",
                d.name,
                d.scope,
                d.session,
                d.peer.short(),
                d.reason.to_string()
            ),
            SubscriptionEvent::Message(m) => {
                println!("message {} type={}", m.session().name(), m.type_name())
            }
        }
    }
    Ok(())
}
