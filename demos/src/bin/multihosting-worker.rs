//! multihosting-worker: one worker of the multihosting demo.
//!
//! Publishes `test-multihosting:worker-10:<uuid>` (a name of its own, so any number of
//! workers can run; a server finds them all with one regular expression), or with `--single`
//! the fixed name `test-multihosting:worker-9`, and answers every `Xy { x, y }` request with
//! an x-by-y table of random floats. Prints `published`, `serving` (a server opened a
//! session) and `dropped` lines, and on SIGTERM or Ctrl-C how many tables it served.

use clap::Parser;
use layer_cake::{PublicationEvent, Scope};
use layer_cake_demos::{texture, DirectoryArgs, LogArgs, Refused, Xy};

/// Answer `Xy` requests with tables of random floats.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Publish the fixed name `test-multihosting:worker-9` (one worker at a time), not
    /// `test-multihosting:worker-10:<uuid>`.
    #[arg(long)]
    single: bool,
    /// How far it reaches: PROCESS, GROUP, HOST or LAN.
    #[arg(long, default_value = "HOST")]
    scope: Scope,
    #[command(flatten)]
    directory: DirectoryArgs,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli.log.init();
    // One thread: a worker's job is small, and eight of them share the machine.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(serve(cli))
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    let node = cli.directory.start().await?;
    let name = if cli.single {
        "test-multihosting:worker-9".to_string()
    } else {
        format!("test-multihosting:worker-10:{}", uuid::Uuid::new_v4())
    };
    let mut publication = node.publish(&name, cli.scope).await?;
    println!("published {name} {}", cli.scope);
    let mut served: u64 = 0;
    let stop = layer_cake_demos::wait_for_signal();
    tokio::pin!(stop);
    loop {
        let event = tokio::select! {
            e = publication.next() => e,
            _ = &mut stop => break,
        };
        let Some(event) = event else { break };
        match event {
            PublicationEvent::Message(m) if m.is::<Xy>() => {
                let answer = m.decode::<Xy>().map_err(|e| e.to_string()).and_then(|xy| {
                    xy.check()?;
                    Ok(xy)
                });
                // A reply that cannot be sent means the server went; its Dropped follows.
                let _ = match answer {
                    Ok(xy) => {
                        served += 1;
                        m.reply(&texture(xy)).await
                    }
                    Err(reason) => m.reply(&Refused { reason }).await,
                };
            }
            PublicationEvent::Message(m) => {
                let reason = format!("{} is not a request this worker knows", m.type_name());
                let _ = m.reply(&Refused { reason }).await;
            }
            PublicationEvent::Delivered(s) => println!("serving {} session={}", s.peer_name(), s.id()),
            PublicationEvent::Dropped(d) => {
                println!("dropped session={} reason={:?}", d.session, d.reason.to_string())
            }
            _ => {}
        }
    }
    println!("served {served} tables");
    Ok(())
}
