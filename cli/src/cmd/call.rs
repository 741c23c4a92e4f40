//! `layer-cake call`: calls a published name from a shell.

use super::tree::DirectoryArgs;
use anyhow::{bail, Context, Result};
use clap::Args;
use layer_cake::caller::{Answer, Call, CallerConfig, Instance, Policy};
use layer_cake::node::{ParentState, RawReply};
use layer_cake::{Node, Scope, Search};
use serde_json::value::RawValue;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Call a published name and print the reply, as `nats request` does.
///
/// Joins the directory `layer-cake network` asks (host-cake at 127.0.0.1:54195; in a home
/// whose composite runs, its group-cake; or --directory), opens a session with every publisher
/// SEARCH matches, and sends TYPE with body JSON to one of them, chosen by --policy (or to
/// each of them, with --all). The reply's JSON goes to stdout; which instance answered goes
/// to stderr (both to stdout as one document with --json).
///
/// Example: layer-cake call 'test-multihosting:worker-10:.*' Xy '{"x":2,"y":2}'
#[derive(Args)]
pub struct CallCmd {
    /// A published name, or a regular expression that must match the whole name.
    search: String,
    /// The message's type, as it travels (its declared name: `Xy`, `string`, ...).
    #[arg(value_name = "TYPE")]
    type_name: String,
    /// The message, as JSON.
    #[arg(value_name = "JSON")]
    body: String,
    /// Call every instance, and print one answer per instance.
    #[arg(long)]
    all: bool,
    /// Wait for this many instances before calling (default: those found within 100 ms of
    /// the first). The policy chooses among them, or --all calls each. If fewer come within
    /// --timeout, those there are are called, and the command fails after their answers.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    count: Option<u32>,
    /// How to choose the instance: nearest-first, least-outstanding, round-robin, random,
    /// key-affinity.
    #[arg(long, value_name = "POLICY", default_value = "nearest-first")]
    policy: Policy,
    /// Send the call to the instance that owns this key (key affinity).
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// Seconds to wait for the instances (--count, or the first), and as long again for the
    /// answers.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0, value_parser = super::parse_seconds)]
    timeout: f64,
    /// How widely to look: GROUP, HOST or LAN.
    #[arg(long, default_value = "HOST")]
    scope: Scope,
    /// One JSON document on stdout, for scripts.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    directory: DirectoryArgs,
}

/// How long the instances of `--all` may take to appear after the first (without --count).
const SETTLE: Duration = Duration::from_millis(100);

impl CallCmd {
    pub fn run(self, home_path: &Path) -> Result<()> {
        Search::new(&self.search)?;
        let body: Box<RawValue> = serde_json::from_str(&self.body)
            .with_context(|| format!("the message is not JSON: {}", self.body))?;
        // (WAN is refused when the scope is read.)
        if self.scope == Scope::Process {
            bail!("--scope must be GROUP, HOST or LAN");
        }
        self.directory.block_on(home_path, |addr, secret| async move {
            let timeout = Duration::from_secs_f64(self.timeout);
            let until = tokio::time::Instant::now() + timeout;
            let mut node = Node::builder().directory(addr).name("layer-cake call");
            if let Some(secret) = secret {
                node = node.secret(secret);
            }
            let node = node.start().await?;
            joined(&node, addr, timeout).await?;
            let caller = node
                .caller(&self.search, self.scope, CallerConfig::default())
                .await?;
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            if caller.wait_for(1, left).await.is_err() {
                bail!(
                    "no instance of {:?} at {} scope within {:?}",
                    self.search,
                    self.scope,
                    timeout
                );
            }
            // The policy chooses among every instance there is (the nearest, a key's owner),
            // not just the first to be found.
            let mut short = None;
            match self.count {
                Some(count) => {
                    let left = until.saturating_duration_since(tokio::time::Instant::now());
                    if let Err(e) = caller.wait_for(count as usize, left).await {
                        eprintln!("layer-cake: {e}; calling those there are");
                        short = Some(e);
                    }
                }
                None => settle(&caller, until).await,
            }
            // The answers get the whole timeout again, however long finding took.
            let mut call = Call::new().policy(self.policy).deadline(timeout);
            if let Some(key) = &self.key {
                call = call.key(key.clone());
            }
            if self.all {
                let answers = caller.all_raw(&self.type_name, &body, &call).await;
                print_all(&answers, self.json)?;
            } else {
                let (instance, reply) = caller.one_raw(&self.type_name, &body, &call).await?;
                print_one(&instance, &reply, self.json)?;
            }
            match short {
                Some(e) => Err(e.into()),
                None => Ok(()),
            }
        })
    }
}

/// Waits until the node has joined its directory (an error naming it if it does not).
async fn joined(node: &Node, addr: SocketAddr, timeout: Duration) -> Result<()> {
    let mut parent = node.parent();
    let connected = tokio::time::timeout(
        timeout.min(Duration::from_secs(2)),
        parent.wait_for(|p| matches!(p, ParentState::Connected { .. })),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    if !connected {
        bail!("no directory answers at {addr} (is host-cake running? `layer-cake network` shows the tree)");
    }
    Ok(())
}

/// Waits until no new instance has come for [`SETTLE`] (or `until`).
async fn settle(caller: &layer_cake::caller::Caller, until: tokio::time::Instant) {
    let mut seen = caller.instances().len();
    loop {
        let quiet = (tokio::time::Instant::now() + SETTLE).min(until);
        let more = caller
            .wait_for(
                seen + 1,
                quiet.saturating_duration_since(tokio::time::Instant::now()),
            )
            .await;
        match more {
            Ok(n) => seen = n,
            Err(_) => return,
        }
    }
}

fn reply_json(reply: &RawReply) -> Result<&RawValue> {
    let text = std::str::from_utf8(reply.json()).context("the reply is not UTF-8")?;
    serde_json::from_str(text).context("the reply is not JSON")
}

fn print_one(instance: &Instance, reply: &RawReply, json: bool) -> Result<()> {
    let body = reply_json(reply)?;
    if json {
        let doc = serde_json::json!({ "instance": instance, "type": reply.type_name(), "reply": body });
        println!("{doc}");
    } else {
        eprintln!("reply from {instance}: {}", reply.type_name());
        println!("{}", body.get());
    }
    Ok(())
}

fn print_all(answers: &[Answer<RawReply>], json: bool) -> Result<()> {
    let mut failed = 0;
    let mut docs = Vec::new();
    for a in answers {
        let entry = match &a.result {
            Ok(reply) => match reply_json(reply) {
                Ok(body) => Ok((reply.type_name(), body)),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        match entry {
            Ok((type_name, body)) => {
                if json {
                    docs.push(
                        serde_json::json!({ "instance": a.instance, "type": type_name, "reply": body }),
                    );
                } else {
                    println!("{}: {}", a.instance, body.get());
                }
            }
            Err(error) => {
                failed += 1;
                if json {
                    docs.push(serde_json::json!({ "instance": a.instance, "error": error }));
                } else {
                    println!("{}: error: {error}", a.instance);
                }
            }
        }
    }
    if json {
        println!("{}", serde_json::Value::Array(docs));
    }
    if failed > 0 {
        bail!("{failed} of {} instances did not answer", answers.len());
    }
    Ok(())
}
