//! One module per sub-command, plus the group-settings flags several of them share.

pub mod add;
pub mod create;
pub mod delete;
pub mod destroy;
pub mod list;
pub mod update;

use clap::Args;
use layer_cake::home::{GroupSettings, RetryPolicy};
use std::net::SocketAddr;

/// The group's settings, as flags (`create`, and `update group`).
#[derive(Debug, Clone, Default, Args)]
pub struct GroupFlags {
    /// Restart roles that end, e.g. '{"regular_steps": 30.0}' or '{"min": 0.1, "max": 30}'
    /// (JSON; fields: first_steps, regular_steps, min, max, randomized, stable, intensity, period).
    #[arg(long, value_name = "JSON", value_parser = parse_retry)]
    pub retry: Option<RetryPolicy>,
    /// The role whose end ends the composite, with its exit status.
    #[arg(long, value_name = "ROLE")]
    pub main_role: Option<String>,
    /// The host directory to join, when not host-cake's standard 127.0.0.1:54195.
    #[arg(long, value_name = "ADDR", conflicts_with = "directory_at_lan")]
    pub directory_at_host: Option<SocketAddr>,
    /// A LAN directory to join directly, with no host-cake.
    #[arg(long, value_name = "ADDR")]
    pub directory_at_lan: Option<SocketAddr>,
}

impl GroupFlags {
    /// Lays the flags given over `group`; returns whether any was given.
    pub fn apply(&self, group: &mut GroupSettings) -> bool {
        let mut changed = false;
        if let Some(retry) = &self.retry {
            group.retry = Some(retry.clone());
            changed = true;
        }
        if let Some(role) = &self.main_role {
            group.main_role = Some(role.clone());
            changed = true;
        }
        if let Some(addr) = self.directory_at_host {
            group.directory_at_host = Some(addr);
            group.directory_at_lan = None;
            changed = true;
        }
        if let Some(addr) = self.directory_at_lan {
            group.directory_at_lan = Some(addr);
            group.directory_at_host = None;
            changed = true;
        }
        changed
    }
}

/// Parses and checks a restart policy given as JSON.
pub fn parse_retry(text: &str) -> Result<RetryPolicy, String> {
    let policy: RetryPolicy = serde_json::from_str(text).map_err(|e| format!("not a restart policy: {e}"))?;
    policy.validate()?;
    Ok(policy)
}
