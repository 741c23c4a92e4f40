//! How a node joins the tree: its configuration, from the environment or a builder.

use super::{Node, StartError, DEFAULT_HOST_DIRECTORY, DIRECTORY_ENV};
use std::net::SocketAddr;

/// How a node joins the tree.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The parent directory; `None` runs without one (PROCESS scope only).
    pub directory: Option<SocketAddr>,
    /// The name this process gives (its executable's name by default).
    pub name: String,
    /// The role a composite runs this process as (`LC_ROLE`), shown beside the name.
    pub role: Option<String>,
    /// The LAN's secret, when the LAN is encrypted: sessions to and from LAN publications
    /// then run the Noise handshake ([`crate::secure`]). From the file named in
    /// `LC_SECRET_FILE`.
    pub secret: Option<crate::secure::Secret>,
}

/// The environment variable naming the file that holds the LAN's secret (see
/// [`crate::secure`]); the directories take it as `--secret-file` too.
pub const SECRET_ENV: &str = "LC_SECRET_FILE";

/// The environment held something unusable: `LC_DIRECTORY` not an address, or
/// `LC_SECRET_FILE` not a secret file.
#[derive(Debug, thiserror::Error)]
pub enum BadDirectoryEnv {
    /// `LC_DIRECTORY` is not `host:port` or `none`.
    #[error("{DIRECTORY_ENV}={value:?} is not host:port or \"none\"")]
    Directory {
        /// What it held.
        value: String,
    },
    /// `LC_SECRET_FILE` names no usable secret.
    #[error("{SECRET_ENV}: {0}")]
    Secret(#[from] crate::secure::SecretError),
}

impl NodeConfig {
    /// Joins `directory` (none: PROCESS scope only) as `name`, with no LAN secret.
    pub fn new(directory: Option<SocketAddr>, name: impl Into<String>) -> NodeConfig {
        NodeConfig {
            directory,
            name: name.into(),
            role: None,
            secret: None,
        }
    }

    /// With the LAN's secret: sessions across hosts are encrypted and authenticated.
    pub fn with_secret(mut self, secret: crate::secure::Secret) -> NodeConfig {
        self.secret = Some(secret);
        self
    }

    /// From the environment: the directory in `LC_DIRECTORY`, else host-cake's standard
    /// address `127.0.0.1:54195`; the LAN's secret from the file in `LC_SECRET_FILE`.
    pub fn from_env() -> Result<NodeConfig, BadDirectoryEnv> {
        let directory = match std::env::var(DIRECTORY_ENV) {
            Ok(value) if value.eq_ignore_ascii_case("none") => None,
            Ok(value) => Some(value.parse().map_err(|_| BadDirectoryEnv::Directory { value })?),
            Err(_) => Some(DEFAULT_HOST_DIRECTORY),
        };
        let file = std::env::var_os(SECRET_ENV);
        let secret = crate::secure::Secret::from_optional_file(file.as_deref().map(std::path::Path::new))?;
        Ok(NodeConfig {
            directory,
            name: executable_name(),
            role: std::env::var(crate::role::ROLE_ENV)
                .ok()
                .filter(|r| !r.is_empty()),
            secret,
        })
    }
}

/// The basename of this process's executable.
pub fn executable_name() -> String {
    std::env::args()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "process".to_string())
}

/// Options for a new node, set one by one: `Node::builder().name("billing").start().await`.
/// Unset, a node joins host-cake at its standard address, under this executable's name, with
/// no LAN secret (nothing is read from the environment: that is [`Node::start`]).
#[derive(Debug, Clone)]
pub struct NodeBuilder {
    config: NodeConfig,
}

impl NodeBuilder {
    pub(super) fn new() -> NodeBuilder {
        NodeBuilder {
            config: NodeConfig::new(Some(DEFAULT_HOST_DIRECTORY), executable_name()),
        }
    }

    /// The parent directory to join (a group-cake, host-cake or lan-cake address).
    pub fn directory(mut self, addr: SocketAddr) -> NodeBuilder {
        self.config.directory = Some(addr);
        self
    }

    /// Joins no directory: the node's names match within this process only (PROCESS scope).
    pub fn no_directory(mut self) -> NodeBuilder {
        self.config.directory = None;
        self
    }

    /// The readable name this process gives the directories (shown by `layer-cake network`).
    pub fn name(mut self, name: impl Into<String>) -> NodeBuilder {
        self.config.name = name.into();
        self
    }

    /// The role this process runs as (shown beside its name by `layer-cake network`; a
    /// process a composite starts is told it in `LC_ROLE`, which [`Node::start`] reads).
    pub fn role(mut self, role: impl Into<String>) -> NodeBuilder {
        self.config.role = Some(role.into());
        self
    }

    /// The LAN's secret: sessions with processes on other hosts are encrypted and authenticated.
    pub fn secret(mut self, secret: crate::secure::Secret) -> NodeBuilder {
        self.config.secret = Some(secret);
        self
    }

    /// Starts the node.
    pub async fn start(self) -> Result<Node, StartError> {
        Node::with_config(self.config).await
    }
}
