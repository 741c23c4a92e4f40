//! What a directory's children have published, by the role of each publisher: what group-cake
//! watches to start a role once the names it waits for are published (`--after`) and to
//! tell when a role is ready (`--ready-when-published`).
//!
//! The directory keeps it up to date in place, one publication at a time (no snapshot is
//! built per change), and a search is answered from the names that start with its literal
//! prefix, as the engine matches them.

use super::engine::{Engine, LinkId};
use super::search::Search;
use crate::ids::{ProcessId, PubId};
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use tokio::sync::watch;

/// The names published through a directory's children (standbys included), each with the
/// publishing process and the role (`LC_ROLE`) it greeted with, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// (name, role, process) → how many publications there are of it.
    entries: BTreeMap<Entry, u32>,
}

type Entry = (String, Option<String>, ProcessId);

/// One published name as [`Published`] tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed<'a> {
    /// The name.
    pub name: &'a str,
    /// The role of the process that published it, if it has one.
    pub role: Option<&'a str>,
    /// The process that published it.
    pub process: ProcessId,
}

impl Published {
    /// Counts one more publication of `name` by `process`, of `role`.
    pub fn add(&mut self, name: String, role: Option<String>, process: ProcessId) {
        *self.entries.entry((name, role, process)).or_default() += 1;
    }

    /// Counts one publication of `name` by `process`, of `role`, fewer.
    pub fn remove(&mut self, name: String, role: Option<String>, process: ProcessId) {
        let key = (name, role, process);
        if let Some(count) = self.entries.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                self.entries.remove(&key);
            }
        }
    }

    /// Every published name, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = Listed<'_>> {
        self.entries.keys().map(listed)
    }

    /// The published names `search` matches: only the names that start with its literal
    /// prefix are tried.
    pub fn matching<'a>(&'a self, search: &'a Search) -> impl Iterator<Item = Listed<'a>> + 'a {
        let prefix = search.prefix();
        let from = (prefix.to_string(), None, ProcessId(uuid::Uuid::nil()));
        self.entries
            .range((Bound::Included(from), Bound::Unbounded))
            .map(|(entry, _)| listed(entry))
            .take_while(move |l| l.name.starts_with(prefix))
            .filter(|l| search.matches(l.name))
    }

    /// How many (name, role, process) entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is published.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A directory's side of the watch: what it has told, so that a publication is told once
/// (whichever link holds it now) and taken back only once the engine no longer holds it.
pub(crate) struct PublishedWatch {
    sender: watch::Sender<Published>,
    told: HashMap<PubId, Told>,
}

/// A publication as the watcher was told of it.
struct Told {
    /// The link that holds it now.
    link: LinkId,
    name: String,
    role: Option<String>,
    process: ProcessId,
}

impl PublishedWatch {
    /// Tells what is published through `sender`.
    pub(crate) fn new(sender: watch::Sender<Published>) -> PublishedWatch {
        PublishedWatch {
            sender,
            told: HashMap::new(),
        }
    }

    /// Publication `id` came on `link`, from a process of `role`: told, if the engine took it.
    /// (A publication the engine already held, sent again on a new link, is now that link's.)
    pub(crate) fn published(&mut self, engine: &Engine, link: LinkId, id: PubId, role: Option<String>) {
        let Some(info) = engine.publication(id) else {
            return;
        };
        if let Some(told) = self.told.get_mut(&id) {
            told.link = link;
            return;
        }
        let (name, process) = (info.name.clone(), info.process);
        let told = Told {
            link,
            name: name.clone(),
            role: role.clone(),
            process,
        };
        self.told.insert(id, told);
        self.sender
            .send_modify(|published| published.add(name, role, process));
    }

    /// Publication `id` was retracted: told, if the engine no longer holds it (it ignores a
    /// retract from a link that does not hold the publication).
    pub(crate) fn retracted(&mut self, engine: &Engine, id: PubId) {
        if engine.publication(id).is_none() {
            self.take(std::iter::once(id));
        }
    }

    /// `link` is gone: what it held, and the engine no longer holds, is told gone.
    pub(crate) fn link_lost(&mut self, engine: &Engine, link: LinkId) {
        let ids: Vec<PubId> = self
            .told
            .iter()
            .filter(|(id, told)| told.link == link && engine.publication(**id).is_none())
            .map(|(id, _)| *id)
            .collect();
        self.take(ids);
    }

    /// Tells that the publications `ids` have gone.
    fn take(&mut self, ids: impl IntoIterator<Item = PubId>) {
        let removed: Vec<Told> = ids.into_iter().filter_map(|id| self.told.remove(&id)).collect();
        if removed.is_empty() {
            return;
        }
        self.sender.send_modify(|published| {
            for told in removed {
                published.remove(told.name, told.role, told.process);
            }
        });
    }
}

fn listed((name, role, process): &Entry) -> Listed<'_> {
    Listed {
        name,
        role: role.as_deref(),
        process: *process,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: ProcessId = ProcessId(uuid::Uuid::nil());

    fn of(pairs: &[(&str, Option<&str>)]) -> Published {
        let mut p = Published::default();
        for (n, r) in pairs {
            p.add(n.to_string(), r.map(str::to_string), P);
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
                .map(|l| (l.name.to_string(), l.role.map(str::to_string)))
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
        p.remove("a".into(), Some("r".into()), P);
        let left: Vec<(&str, Option<&str>)> = p.iter().map(|l| (l.name, l.role)).collect();
        assert_eq!(left, [("a", Some("r"))]);
        p.remove("a".into(), Some("r".into()), P);
        assert!(p.is_empty());
        // Removing what is not there changes nothing.
        p.remove("a".into(), Some("r".into()), P);
        assert!(p.is_empty());
    }
}
