//! The live directory tree, as `network` shows it and `ping` searches it: gathered by asking
//! the host's directory, then each directory below it, what they hold.

use anyhow::{anyhow, bail, Result};
use layer_cake::directory::client::DirectoryClient;
use layer_cake::home::Home;
use layer_cake::node::DEFAULT_HOST_DIRECTORY;
use layer_cake::secure::Secret;
use layer_cake::wire::directory::{DirectoryReport, PubInfo, SessionInfo, SubInfo, TreeNode};
use layer_cake::wire::PeerKind;
use serde::Serialize;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// How long one directory has to answer.
const ASK: Duration = Duration::from_secs(3);
/// How long one process has to list its sessions.
const ASK_SESSIONS: Duration = Duration::from_secs(1);
/// How deep the walk goes (host, group, and what is under them).
const MAX_DEPTH: usize = 6;

/// One node of the tree and what its directory knows of it.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// DIRECTORY or PROCESS.
    pub kind: PeerKind,
    /// The scope of the node's own directory.
    pub scope: layer_cake::Scope,
    /// Its name.
    pub name: String,
    /// The role a composite runs it as, when one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Its identity, full.
    pub id: String,
    /// Where a directory accepts children.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// What it publishes, as its parent directory holds it.
    pub publishes: Vec<PubInfo>,
    /// What it subscribes to, as its parent directory holds it.
    pub subscribes: Vec<SubInfo>,
    /// The sessions it holds as a subscriber, when they were asked for and it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<Vec<SessionInfo>>,
    /// Its children (a directory's).
    pub children: Vec<Node>,
    /// Where to ask to reach it: the directory it is a child of (itself, for the root; the
    /// root, for the root's parent).
    #[serde(skip)]
    pub via: Option<SocketAddr>,
}

impl Node {
    fn new(n: &TreeNode, publishes: Vec<PubInfo>, subscribes: Vec<SubInfo>, via: Option<SocketAddr>) -> Node {
        Node {
            kind: n.kind,
            scope: n.scope,
            name: n.name.clone(),
            role: n.role.clone(),
            id: n.id.to_string(),
            listen: n.listen,
            publishes,
            subscribes,
            sessions: None,
            children: Vec::new(),
            via,
        }
    }

    /// Its name as shown: `multihosting-worker as worker-3` for a role (just the name when
    /// the role is named after it).
    pub fn label(&self) -> String {
        match &self.role {
            Some(role) if *role != self.name => format!("{} as {role}", self.name),
            _ => self.name.clone(),
        }
    }

    /// The first 8 characters of the id, as shown.
    pub fn short(&self) -> &str {
        &self.id[..8.min(self.id.len())]
    }

    /// Every node, depth first, with its depth.
    pub fn walk<'n>(&'n self, depth: usize, out: &mut Vec<(usize, &'n Node)>) {
        out.push((depth, self));
        for c in &self.children {
            c.walk(depth + 1, out);
        }
    }
}

/// The tree: the host's directory (or the one asked), under its parent when it has one.
pub struct Tree {
    /// The directory's parent (lan-cake above host-cake), shown at the top.
    pub parent: Option<Node>,
    /// The directory asked and everything below it.
    pub root: Node,
}

/// Where the commands that walk the tree start (`network`, `ping`, `call`): the options they
/// share, and what those options resolve to.
#[derive(Debug, Clone, clap::Args)]
pub struct DirectoryArgs {
    /// The directory to start from (default: in a home whose composite runs, its group-cake;
    /// else host-cake at 127.0.0.1:54195).
    #[arg(long, value_name = "ADDR")]
    pub directory: Option<SocketAddr>,
    /// The LAN's secret, to reach an encrypted LAN's directory on another host (default: the
    /// one the home's composite is made with).
    #[arg(long, value_name = "FILE", env = "LC_SECRET_FILE")]
    pub secret_file: Option<std::path::PathBuf>,
}

impl DirectoryArgs {
    /// Runs `work` (which talks to the tree) on a runtime of its own, with the directory to
    /// start from and the LAN's secret.
    pub fn block_on<T, F>(
        &self,
        home_path: &Path,
        work: impl FnOnce(SocketAddr, Option<Secret>) -> F,
    ) -> Result<T>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let (addr, secret) = (self.address(home_path), self.secret(home_path)?);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(work(addr, secret))
    }

    /// The directory to start from: `--directory`, else the running composite's group-cake,
    /// else host-cake.
    pub fn address(&self, home_path: &Path) -> SocketAddr {
        if let Some(d) = self.directory {
            return d;
        }
        if let Ok(home) = Home::open(home_path) {
            if let Ok(Some(status)) = home.running() {
                return status.directory;
            }
        }
        DEFAULT_HOST_DIRECTORY
    }

    /// Whether the directory was named (`--directory`), not found.
    pub fn named(&self) -> bool {
        self.directory.is_some()
    }

    /// The LAN's secret, for directories on other hosts (an encrypted lan-cake): the file
    /// given (`--secret-file`, or `LC_SECRET_FILE`), else the one the home's composite is made
    /// with.
    pub fn secret(&self, home_path: &Path) -> Result<Option<Secret>> {
        let home_file = || Home::open(home_path).ok()?.group().ok()?.secret_file;
        let file = layer_cake::secure::named(self.secret_file.as_deref())
            .map(Path::to_path_buf)
            .or_else(home_file);
        Ok(Secret::from_optional_file(file.as_deref())?)
    }
}

/// Gathers the tree from the directory at `addr`. A group-cake with a live parent is left
/// for that parent, so the whole host is shown. With `sessions`, each process is also asked
/// which sessions it holds. Directories on other hosts are reached with `secret`.
pub async fn gather(
    addr: SocketAddr,
    explicit: bool,
    sessions: bool,
    secret: Option<&Secret>,
) -> Result<Tree> {
    let mut client = DirectoryClient::connect(addr, "layer-cake", secret)
        .await
        .map_err(|e| anyhow!(unreachable(addr, explicit, &e)))?;
    let mut report = client.inspect(ASK).await?;
    let mut root_addr = addr;
    // Climb from a group-cake to its host's directory when it is there.
    if !explicit && report.node.scope < layer_cake::Scope::Host {
        if let (Some(_), Some(up)) = (&report.parent, report.parent_addr) {
            if let Ok(mut c) = DirectoryClient::connect(up, "layer-cake", secret).await {
                if let Ok(r) = c.inspect(ASK).await {
                    client = c;
                    report = r;
                    root_addr = up;
                }
            }
        }
    }
    // The parent is reached through the directory below it.
    let parent = report
        .parent
        .as_ref()
        .map(|p| Node::new(p, Vec::new(), Vec::new(), Some(root_addr)));
    let mut root = Node::new(&report.node, Vec::new(), Vec::new(), Some(root_addr));
    // The root's report shows this command itself, as the original's does.
    let walk = Walk { sessions, secret };
    walk.fill(&mut root, report, &mut client, root_addr, false, 0)
        .await;
    Ok(Tree { parent, root })
}

/// What to say when the first directory does not answer: plainly, with how to start host-cake
/// when it was the host's default address that was tried.
fn unreachable(addr: SocketAddr, explicit: bool, e: &dyn std::fmt::Display) -> String {
    if explicit || addr != DEFAULT_HOST_DIRECTORY {
        format!("no directory answers at {addr}: {e}")
    } else {
        format!(
            "no host-cake is running at {addr} ({e}); start one with `host-cake &`, or install it as a \
             boot service with `layer-cake service install host-cake`"
        )
    }
}

/// How far one walk goes.
struct Walk<'s> {
    /// Ask each process for its sessions.
    sessions: bool,
    /// The LAN's secret, for directories on other hosts.
    secret: Option<&'s Secret>,
}

impl Walk<'_> {
    /// Adds `report`'s children under `node`, asking each child directory in turn, and each
    /// process for its sessions, through `client` (connected to `addr`, the directory that
    /// gave the report). With `hide_asker`, the client's own connection is left out.
    fn fill<'a>(
        &'a self,
        node: &'a mut Node,
        report: DirectoryReport,
        client: &'a mut DirectoryClient,
        addr: SocketAddr,
        hide_asker: bool,
        depth: usize,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>> {
        Box::pin(async move {
            let asker = client.id;
            for child in report
                .children
                .into_iter()
                .filter(|c| !hide_asker || c.node.id != asker)
                // Other inspections going on (`network`, `ping` from another shell): passing
                // visitors that list nothing, not part of the tree.
                .filter(|c| !is_inspector(c))
            {
                let mut c = Node::new(&child.node, child.publishes, child.subscribes, Some(addr));
                match child.node.kind {
                    PeerKind::Directory if depth < MAX_DEPTH => {
                        if let Some(listen) = child.node.listen {
                            if let Ok(mut below) =
                                DirectoryClient::connect(listen, "layer-cake", self.secret).await
                            {
                                if let Ok(r) = below.inspect(ASK).await {
                                    self.fill(&mut c, r, &mut below, listen, true, depth + 1).await;
                                }
                            }
                        }
                    }
                    PeerKind::Process if self.sessions && child.node.id != asker => {
                        c.sessions = client.sessions(child.node.id, ASK_SESSIONS).await.ok().flatten();
                    }
                    _ => {}
                }
                node.children.push(c);
            }
            // Directories first, then by name and role: the same tree prints the same way
            // every time.
            node.children.sort_by(|a, b| {
                (a.kind != PeerKind::Directory, &a.name, &a.role, &a.id).cmp(&(
                    b.kind != PeerKind::Directory,
                    &b.name,
                    &b.role,
                    &b.id,
                ))
            });
        })
    }
}

/// Finds the node whose id is `id` or starts with it.
pub fn find<'t>(tree: &'t Tree, id: &str) -> Result<&'t Node> {
    fn search<'n>(n: &'n Node, id: &str, found: &mut Vec<&'n Node>) {
        if n.id.starts_with(id) {
            found.push(n);
        }
        for c in &n.children {
            search(c, id, found);
        }
    }
    let id = id.to_ascii_lowercase();
    if id.is_empty() {
        bail!("give the id of a node, as `layer-cake network` shows it");
    }
    let mut found = Vec::new();
    if let Some(parent) = &tree.parent {
        search(parent, &id, &mut found);
    }
    search(&tree.root, &id, &mut found);
    // The CLI's own connections (this one's and the walk's) are not targets.
    match found.as_slice() {
        [one] => Ok(one),
        [] => bail!("no node with id {id} in the tree (see `layer-cake network`)"),
        many => bail!(
            "{id} matches {} nodes ({}); give more of it",
            many.len(),
            many.iter().map(|n| n.short()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// A `layer-cake` command that only looks (it registers nothing).
fn is_inspector(child: &layer_cake::wire::directory::ChildReport) -> bool {
    child.node.kind == PeerKind::Process
        && child.node.name == "layer-cake"
        && child.publishes.is_empty()
        && child.subscribes.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_no_host_cake_it_says_so_and_how_to_start_one() {
        let refused = "i/o: Connection refused (os error 111)";
        assert_eq!(
            unreachable(DEFAULT_HOST_DIRECTORY, false, &refused),
            "no host-cake is running at 127.0.0.1:54195 (i/o: Connection refused (os error 111)); start one \
             with `host-cake &`, or install it as a boot service with `layer-cake service install host-cake`"
        );
        let other: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(
            unreachable(other, false, &refused),
            "no directory answers at 127.0.0.1:1: i/o: Connection refused (os error 111)"
        );
        assert!(unreachable(DEFAULT_HOST_DIRECTORY, true, &refused).starts_with("no directory answers"));
    }
}
