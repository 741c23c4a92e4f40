//! What a directory's children have published, by the role of each publisher: what group-cake
//! watches to start a role once the names it waits for are published (`--after`) and to
//! tell when a role is ready (`--ready-when-published`).
//!
//! The directory keeps it up to date in place, one publication at a time (no snapshot is
//! built per change), and a search is answered from the names that start with its literal
//! prefix, as the engine matches them.

use super::search::Search;
use std::collections::BTreeMap;
use std::ops::Bound;

/// The names published through a directory's children (standbys included), each with the
/// role (`LC_ROLE`) its publishing process greeted with, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// (name, role) → how many publications there are of it.
    entries: BTreeMap<(String, Option<String>), u32>,
}

impl Published {
    /// Counts one more publication of `name` by a process of `role`.
    pub fn add(&mut self, name: String, role: Option<String>) {
        *self.entries.entry((name, role)).or_default() += 1;
    }

    /// Counts one publication of `name` by a process of `role` fewer.
    pub fn remove(&mut self, name: String, role: Option<String>) {
        let key = (name, role);
        if let Some(count) = self.entries.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                self.entries.remove(&key);
            }
        }
    }

    /// Every (name, role) pair, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.entries.keys().map(|(n, r)| (n.as_str(), r.as_deref()))
    }

    /// The (name, role) pairs whose name `search` matches: only the names that start with
    /// its literal prefix are tried.
    pub fn matching<'a>(
        &'a self,
        search: &'a Search,
    ) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
        let prefix = search.prefix();
        self.entries
            .range((Bound::Included((prefix.to_string(), None)), Bound::Unbounded))
            .map(|((n, r), _)| (n.as_str(), r.as_deref()))
            .take_while(move |(n, _)| n.starts_with(prefix))
            .filter(|(n, _)| search.matches(n))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn of(pairs: &[(&str, Option<&str>)]) -> Published {
        let mut p = Published::default();
        for (n, r) in pairs {
            p.add(n.to_string(), r.map(str::to_string));
        }
        p
    }

    #[test]
    fn a_search_finds_the_names_it_matches_whole_and_their_roles() {
        let p = of(&[
            ("db:main", Some("db")),
            ("db:main", Some("db")),
            ("db:replica", Some("db-2")),
            ("dbx", None),
            ("api:x", Some("api")),
        ]);
        let found = |s: &str| -> Vec<(String, Option<String>)> {
            let search = Search::new(s).unwrap();
            p.matching(&search)
                .map(|(n, r)| (n.to_string(), r.map(str::to_string)))
                .collect()
        };
        assert_eq!(
            found("db:.*"),
            [
                ("db:main".into(), Some("db".into())),
                ("db:replica".into(), Some("db-2".into()))
            ]
        );
        assert_eq!(found("db:main"), [("db:main".into(), Some("db".into()))]);
        assert_eq!(
            found(".*x"),
            [("api:x".into(), Some("api".into())), ("dbx".into(), None)]
        );
        assert!(found("db").is_empty(), "whole names only");
        assert_eq!(p.len(), 4);
    }

    #[test]
    fn a_name_published_twice_stays_until_both_go() {
        let mut p = of(&[("a", Some("r")), ("a", Some("r"))]);
        p.remove("a".into(), Some("r".into()));
        assert_eq!(p.iter().collect::<Vec<_>>(), [("a", Some("r"))]);
        p.remove("a".into(), Some("r".into()));
        assert!(p.is_empty());
        // Removing what is not there changes nothing.
        p.remove("a".into(), Some("r".into()));
        assert!(p.is_empty());
    }
}
