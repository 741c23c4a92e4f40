//! `layer-cake network`: the live directory tree.

use super::tree::{gather, DirectoryArgs, Node};
use anyhow::Result;
use clap::Args;
use layer_cake::Search;
use std::collections::HashMap;
use std::path::Path;

/// Show the live directory tree: the host's directory (under its LAN directory, when it has
/// one), the composites and processes joined to it, and theirs. A process a composite runs is
/// shown with its role (`multihosting-worker as worker-3`), and SEARCH matches either.
///
/// Asks host-cake at 127.0.0.1:54195 (or, in a home whose composite runs, the directory above
/// its group-cake; or --directory), then each directory below it. Each line is
/// `[SCOPE] name (id)`, one `+   ` per level; the ids are what `layer-cake ping` takes.
#[derive(Args)]
pub struct Network {
    /// Only nodes whose name matches this regular expression (whole name), with the nodes
    /// above them.
    search: Option<String>,
    /// Also what each node publishes (name, scope, address), subscribes to (search, scope),
    /// and the sessions it holds as a subscriber (name, scope of the route, publisher).
    #[arg(short, long)]
    long_listing: bool,
    /// One JSON document, for scripts.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    directory: DirectoryArgs,
}

impl Network {
    pub fn run(self, home_path: &Path) -> Result<()> {
        let search = self.search.as_deref().map(Search::new).transpose()?;
        let (named, sessions) = (self.directory.named(), self.long_listing || self.json);
        let tree = self.directory.block_on(home_path, |addr, secret| async move {
            gather(addr, named, sessions, secret.as_ref()).await
        })?;
        let mut root = tree.root;
        if let Some(re) = &search {
            if !keep(&mut root, re) {
                root.children.clear();
            }
        }
        if self.json {
            let doc = serde_json::json!({ "parent": tree.parent, "root": root });
            println!("{}", serde_json::to_string_pretty(&doc)?);
            return Ok(());
        }
        let mut depth = 0;
        if let Some(parent) = &tree.parent {
            print_node(parent, 0, None);
            depth = 1;
        }
        let mut nodes = Vec::new();
        root.walk(depth, &mut nodes);
        let names: HashMap<&str, &Node> = nodes.iter().map(|(_, n)| (n.id.as_str(), *n)).collect();
        for (d, node) in &nodes {
            print_node(node, *d, self.long_listing.then_some(&names));
        }
        Ok(())
    }
}

/// Keeps the children whose name or role matches `search`, or that lead to one that does;
/// says whether `node` is kept.
fn keep(node: &mut Node, search: &Search) -> bool {
    node.children.retain_mut(|c| keep(c, search));
    search.matches(&node.name)
        || node.role.as_deref().is_some_and(|r| search.matches(r))
        || !node.children.is_empty()
}

/// One node's line; with `long` (every node by id), its listings and sessions below it.
fn print_node(node: &Node, depth: usize, long: Option<&HashMap<&str, &Node>>) {
    let indent = "+   ".repeat(depth);
    println!("{indent}[{}] {} ({})", node.scope, node.label(), node.short());
    if let Some(nodes) = long {
        let pad = format!("{}    ", "    ".repeat(depth));
        for p in &node.publishes {
            println!("{pad}publishes {} {} {}", p.name, p.scope, p.addr);
        }
        for s in &node.subscribes {
            println!("{pad}subscribes {} {}", s.search, s.scope);
        }
        for s in node.sessions.iter().flatten() {
            let process = s.publisher.process.to_string();
            let publisher = match nodes.get(process.as_str()) {
                Some(p) => format!("{} ({})", p.label(), p.short()),
                None => format!("({})", &process[..8]),
            };
            let opening = if s.open { "" } else { " (opening)" };
            println!(
                "{pad}session {} {} -> {publisher} {}{opening}",
                s.publisher.name, s.at, s.publisher.addr
            );
        }
    }
}
