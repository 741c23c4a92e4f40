//! What a directory's children have published, by the role of each publisher: what group-cake
//! watches to start a role once the names it waits for are published (`--after`) and to
//! tell when a role is ready (`--ready-when-published`).

use std::collections::BTreeSet;

/// The names published through a directory's children (standbys included), each with the
/// role (`LC_ROLE`) its publishing process greeted with, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// (name, role), sorted.
    entries: BTreeSet<(String, Option<String>)>,
}

impl Published {
    /// A snapshot of these (name, role) pairs.
    pub fn new(entries: impl IntoIterator<Item = (String, Option<String>)>) -> Published {
        Published {
            entries: entries.into_iter().collect(),
        }
    }

    /// Every (name, role) pair, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.entries.iter().map(|(n, r)| (n.as_str(), r.as_deref()))
    }

    /// How many (name, role) pairs there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is published.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
