//! Scopes: how far a publication or subscription reaches.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How far a publication or a subscription reaches, nearest first.
///
/// A listing at scope `S` is recorded by every directory from the process's own up to and
/// including the directory at `S`. When a subscription matches a name in several directories,
/// the nearest one wins (`Process` beats `Group` beats `Host` beats `Lan`).
///
/// The derived ordering is nearest-first: `Scope::Process < Scope::Group < ... < Scope::Wan`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Scope {
    /// Inside one process.
    Process,
    /// Inside one composite process (the processes under one group-cake).
    Group,
    /// On one machine (everything under one host-cake). The default.
    #[default]
    Host,
    /// On one local network (everything under one lan-cake).
    Lan,
    /// Reserved for a wide-area directory; defined so the protocol need not change.
    Wan,
}

impl Scope {
    /// Every scope, nearest first.
    pub const ALL: [Scope; 5] = [Scope::Process, Scope::Group, Scope::Host, Scope::Lan, Scope::Wan];

    /// The upper-case name used on the wire, in logs and on command lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Process => "PROCESS",
            Scope::Group => "GROUP",
            Scope::Host => "HOST",
            Scope::Lan => "LAN",
            Scope::Wan => "WAN",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text given for a scope was not one of PROCESS, GROUP, HOST, LAN (WAN is reserved:
/// there is no WAN directory).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", if .0.eq_ignore_ascii_case("WAN") { "WAN is reserved: there is no WAN directory yet (PROCESS, GROUP, HOST or LAN)".to_string() } else { format!("unknown scope {:?} (PROCESS, GROUP, HOST or LAN)", .0) })]
pub struct ParseScopeError(String);

impl FromStr for Scope {
    type Err = ParseScopeError;

    /// A scope a user may give: any but WAN, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .filter(|scope| *scope != Scope::Wan)
            .find(|scope| scope.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseScopeError(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_may_give_every_scope_but_the_reserved_wan() {
        assert_eq!("host".parse::<Scope>(), Ok(Scope::Host));
        let wan = "WAN".parse::<Scope>().unwrap_err().to_string();
        assert!(wan.contains("WAN is reserved"), "{wan}");
        let other = "WIDE".parse::<Scope>().unwrap_err().to_string();
        assert_eq!(other, "unknown scope \"WIDE\" (PROCESS, GROUP, HOST or LAN)");
    }

    #[test]
    fn nearest_orders_first() {
        assert!(Scope::Process < Scope::Group);
        assert!(Scope::Group < Scope::Host);
        assert!(Scope::Host < Scope::Lan);
        assert!(Scope::Lan < Scope::Wan);
    }

    #[test]
    fn parses_any_case_and_round_trips() {
        for scope in Scope::ALL {
            if scope != Scope::Wan {
                assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
                assert_eq!(scope.as_str().to_lowercase().parse::<Scope>(), Ok(scope));
            }
            let json = serde_json::to_string(&scope).unwrap();
            assert_eq!(json, format!("\"{}\"", scope.as_str()));
        }
        assert!("nearby".parse::<Scope>().is_err());
    }
}
