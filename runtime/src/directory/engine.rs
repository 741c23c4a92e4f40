//! The directory engine: a pure state machine that matches subscriptions to publications.
//!
//! One engine runs in every directory (group-cake, host-cake, lan-cake) and one in every
//! process, each at its own [`Scope`]. It keeps the tables of publications and subscriptions
//! registered through its links, and turns each input (a listing arriving or leaving, a link
//! lost, the parent connecting or going) into [`Output`]s: frames for one of its links, or for its
//! parent. It opens no sockets and reads no clock, so it is tested by feeding it inputs.
//!
//! Rules it keeps:
//! - A listing is accepted when its scope is at least as wide as the engine's, and passed up to
//!   the parent while its scope is wider.
//! - One publication of a name is active in an engine (the first registered); later ones are
//!   told they are standbys and the first in line is promoted when the active one goes.
//! - Every subscription whose search matches the active publication of a name gets a
//!   [`Route`] at this engine's scope; the subscriber's process picks the nearest of the routes
//!   it gets from every level.
//! - Routes that came from the parent are passed down to the subscription's link, and cleared
//!   when the parent goes.
//!
//! Cost: an exact search is found by hash lookup. A pattern is filed under its literal prefix
//! ([`Search::prefix`]), so a new publication is tried only against the patterns whose prefix
//! it starts with, and a new pattern only against the names (kept sorted) that start with its
//! prefix: neither grows with the number of unrelated listings (`cargo bench -p layer-cake
//! --bench matching`).

use super::search::{PrefixIndex, Search};
use crate::ids::{ProcessId, PubId, SubId};
use crate::scope::Scope;
use crate::wire::directory::{Down, PubInfo, PubState, Route, RouteKey, SubInfo, Up};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Names one of an engine's links (a child connection, or the process's own API).
pub type LinkId = u64;

/// What an input makes the engine say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A frame for one link.
    ToLink(LinkId, Down),
    /// A frame for the parent directory (sent only while the parent is connected).
    ToParent(Up),
}

struct PubEntry {
    info: PubInfo,
    link: LinkId,
    /// Registration order, kept so re-registration upstream preserves who came first.
    seq: u64,
}

struct SubEntry {
    info: SubInfo,
    link: LinkId,
    seq: u64,
    search: Search,
    /// The publications this engine has routed the subscription to.
    routed: HashSet<PubId>,
}

/// The listings one link holds.
#[derive(Default)]
struct LinkListings {
    pubs: HashSet<PubId>,
    subs: HashSet<SubId>,
}

/// The matching engine of one directory. See the [module docs](self).
pub struct Engine {
    scope: Scope,
    seq: u64,
    pubs: HashMap<PubId, PubEntry>,
    /// Publications by name; the first is the active one, the rest wait in order. Sorted, so
    /// a new pattern is tried only against the names that start with its prefix.
    names: BTreeMap<String, Vec<PubId>>,
    subs: HashMap<SubId, SubEntry>,
    /// Subscriptions whose search is an exact name, by that name (matched by lookup).
    exact: HashMap<String, HashSet<SubId>>,
    /// Subscriptions whose search is a pattern, by literal prefix (a new name is tried only
    /// against those it starts with).
    patterns: PrefixIndex,
    /// For each active publication, the subscriptions this engine routed to it.
    routed: HashMap<PubId, HashSet<SubId>>,
    /// Routes passed down from the parent, by subscription, to clear when the parent goes.
    parent_routes: HashMap<SubId, HashSet<RouteKey>>,
    /// What each link registered, so that losing a link costs what it held, not a scan.
    by_link: HashMap<LinkId, LinkListings>,
    /// How many listings are wider than this engine's scope (and so want a parent).
    wider: usize,
    parent_up: bool,
}

impl Engine {
    /// An empty engine for a directory at `scope`.
    pub fn new(scope: Scope) -> Engine {
        Engine {
            scope,
            seq: 0,
            pubs: HashMap::new(),
            names: BTreeMap::new(),
            subs: HashMap::new(),
            exact: HashMap::new(),
            patterns: PrefixIndex::default(),
            routed: HashMap::new(),
            parent_routes: HashMap::new(),
            by_link: HashMap::new(),
            wider: 0,
            parent_up: false,
        }
    }

    /// The engine's scope.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// Does any listing here reach wider than this engine, so that it needs its parent?
    pub fn wants_parent(&self) -> bool {
        self.wider > 0
    }

    /// Every listing held here, by the link that registered it, each in registration order.
    pub fn listings(&self) -> HashMap<LinkId, (Vec<PubInfo>, Vec<SubInfo>)> {
        let mut pubs: Vec<&PubEntry> = self.pubs.values().collect();
        pubs.sort_unstable_by_key(|p| p.seq);
        let mut subs: Vec<&SubEntry> = self.subs.values().collect();
        subs.sort_unstable_by_key(|s| s.seq);
        let mut by_link: HashMap<LinkId, (Vec<PubInfo>, Vec<SubInfo>)> = HashMap::new();
        for p in pubs {
            by_link.entry(p.link).or_default().0.push(p.info.clone());
        }
        for s in subs {
            by_link.entry(s.link).or_default().1.push(s.info.clone());
        }
        by_link
    }

    /// How many publications and subscriptions the engine holds.
    pub fn counts(&self) -> (usize, usize) {
        (self.pubs.len(), self.subs.len())
    }

    /// Handles one frame from a child link.
    pub fn on_child_frame(&mut self, link: LinkId, frame: Up, out: &mut Vec<Output>) {
        match frame {
            // Inspection and pings are the daemon's business, not matching.
            Up::Heartbeat
            | Up::Inspect { .. }
            | Up::Ping { .. }
            | Up::Pong { .. }
            | Up::AskSessions { .. }
            | Up::Sessions { .. } => {}
            Up::Publish(info) => self.publish(link, info, out),
            Up::Retract { id } => {
                if self.pubs.get(&id).is_some_and(|p| p.link == link) {
                    self.retract(id, out);
                }
            }
            Up::Subscribe(info) => self.subscribe(link, info, out),
            Up::Unsubscribe { id } => {
                if self.subs.get(&id).is_some_and(|s| s.link == link) {
                    self.unsubscribe(id, out);
                }
            }
        }
    }

    fn forwards(&self, scope: Scope) -> bool {
        scope > self.scope
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Why a listing at `scope` cannot be held here, if it cannot.
    fn too_narrow(&self, scope: Scope) -> Option<String> {
        (scope < self.scope).then(|| {
            format!(
                "scope {scope} is narrower than this {} directory (is the process outside a composite?)",
                self.scope
            )
        })
    }

    fn publish(&mut self, link: LinkId, info: PubInfo, out: &mut Vec<Output>) {
        let at = self.scope;
        let refusal = if super::valid_name(&info.name) {
            self.too_narrow(info.scope)
        } else {
            Some(format!(
                "{:?} is not a name: 1 to 1024 bytes, no whitespace or control characters",
                info.name
            ))
        };
        if let Some(reason) = refusal {
            let state = PubState::Refused { reason };
            out.push(Output::ToLink(
                link,
                Down::PubStatus {
                    id: info.id,
                    at,
                    state,
                },
            ));
            return;
        }
        if let Some(entry) = self.pubs.get_mut(&info.id) {
            // Re-registration of a publication we hold (its link reconnected): adopt the new
            // link and report its standing again. Links are numbered in the order they connect,
            // so a late frame from an older link cannot take the listing back.
            if link < entry.link {
                return;
            }
            let old = std::mem::replace(&mut entry.link, link);
            self.unfile_pub(old, info.id);
            self.by_link.entry(link).or_default().pubs.insert(info.id);
            let state = self.state_of(info.id);
            out.push(Output::ToLink(
                link,
                Down::PubStatus {
                    id: info.id,
                    at,
                    state,
                },
            ));
            return;
        }
        let seq = self.next_seq();
        let id = info.id;
        let forward = self.forwards(info.scope);
        let line = self.names.entry(info.name.clone()).or_default();
        line.push(id);
        let active = line.len() == 1;
        self.pubs.insert(
            id,
            PubEntry {
                info: info.clone(),
                link,
                seq,
            },
        );
        self.by_link.entry(link).or_default().pubs.insert(id);
        let state = self.state_of(id);
        out.push(Output::ToLink(link, Down::PubStatus { id, at, state }));
        if active {
            self.route_holder(id, out);
        }
        if forward {
            self.wider += 1;
            if self.parent_up {
                out.push(Output::ToParent(Up::Publish(info)));
            }
        }
    }

    fn state_of(&self, id: PubId) -> PubState {
        let name = &self.pubs[&id].info.name;
        let holder = self.names[name][0];
        if holder == id {
            PubState::Active
        } else {
            PubState::Standby {
                holder: self.pubs[&holder].info.process,
            }
        }
    }

    /// Routes every matching subscription to `id`, the active publication of its name.
    fn route_holder(&mut self, id: PubId, out: &mut Vec<Output>) {
        let info = &self.pubs[&id].info;
        let mut matched: Vec<SubId> = self
            .exact
            .get(&info.name)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        matched.extend(
            self.patterns
                .candidates(&info.name)
                .filter(|sub| self.subs[sub].search.matches(&info.name)),
        );
        for sub in matched {
            self.route(sub, id, out);
        }
    }

    fn route(&mut self, sub: SubId, publication: PubId, out: &mut Vec<Output>) {
        let publisher = self.pubs[&publication].info.clone();
        let entry = self.subs.get_mut(&sub).expect("routed subscription exists");
        entry.routed.insert(publication);
        self.routed.entry(publication).or_default().insert(sub);
        let route = Route {
            sub,
            at: self.scope,
            publisher,
        };
        out.push(Output::ToLink(entry.link, Down::Route(route)));
    }

    fn retract(&mut self, id: PubId, out: &mut Vec<Output>) {
        let Some(entry) = self.pubs.remove(&id) else {
            return;
        };
        self.unfile_pub(entry.link, id);
        let name = entry.info.name.clone();
        let line = self.names.get_mut(&name).expect("published name has a line");
        let was_active = line.first() == Some(&id);
        line.retain(|p| *p != id);
        let line = line.clone();
        if line.is_empty() {
            self.names.remove(&name);
        }
        if was_active {
            for sub in self.routed.remove(&id).unwrap_or_default() {
                let sub_entry = self.subs.get_mut(&sub).expect("routed subscription exists");
                sub_entry.routed.remove(&id);
                let key = RouteKey {
                    sub,
                    at: self.scope,
                    publication: id,
                    name: name.clone(),
                };
                out.push(Output::ToLink(sub_entry.link, Down::RouteCleared(key)));
            }
            if let Some(&next) = line.first() {
                // Promote the first standby, tell the rest who holds the name now, and route.
                for p in &line {
                    let state = self.state_of(*p);
                    let link = self.pubs[p].link;
                    out.push(Output::ToLink(
                        link,
                        Down::PubStatus {
                            id: *p,
                            at: self.scope,
                            state,
                        },
                    ));
                }
                self.route_holder(next, out);
            }
        }
        if self.forwards(entry.info.scope) {
            self.wider -= 1;
            if self.parent_up {
                out.push(Output::ToParent(Up::Retract { id }));
            }
        }
    }

    fn subscribe(&mut self, link: LinkId, info: SubInfo, out: &mut Vec<Output>) {
        let at = self.scope;
        let search = match self
            .too_narrow(info.scope)
            .map_or_else(|| Search::new(&info.search).map_err(|e| e.to_string()), Err)
        {
            Ok(search) => search,
            Err(reason) => {
                out.push(Output::ToLink(
                    link,
                    Down::SubRefused {
                        id: info.id,
                        at,
                        reason,
                    },
                ));
                return;
            }
        };
        if let Some(existing) = self.subs.get(&info.id) {
            // Re-registration: start afresh so the subscription gets its routes again (unless
            // it is a late frame from an older link than the one that holds it).
            if link < existing.link {
                return;
            }
            self.remove_subscription(info.id);
        }
        let id = info.id;
        match search.exact() {
            Some(name) => {
                self.exact.entry(name.to_string()).or_default().insert(id);
            }
            None => self.patterns.insert(search.prefix(), id),
        }
        let holders: Vec<PubId> = match search.exact() {
            Some(name) => self.names.get(name).map(|line| line[0]).into_iter().collect(),
            None => {
                let prefix = search.prefix();
                self.names
                    .range::<str, _>((std::ops::Bound::Included(prefix), std::ops::Bound::Unbounded))
                    .take_while(|(name, _)| name.starts_with(prefix))
                    .filter(|(name, _)| search.matches(name))
                    .map(|(_, line)| line[0])
                    .collect()
            }
        };
        let forward = self.forwards(info.scope);
        let seq = self.next_seq();
        self.by_link.entry(link).or_default().subs.insert(id);
        self.subs.insert(
            id,
            SubEntry {
                info: info.clone(),
                link,
                seq,
                search,
                routed: HashSet::new(),
            },
        );
        for holder in holders {
            self.route(id, holder, out);
        }
        if forward {
            self.wider += 1;
            if self.parent_up {
                out.push(Output::ToParent(Up::Subscribe(info)));
            }
        }
    }

    /// Forgets a subscription without telling anyone (its owner asked, or is gone).
    fn remove_subscription(&mut self, id: SubId) -> Option<SubEntry> {
        let entry = self.subs.remove(&id)?;
        if let Some(held) = self.by_link.get_mut(&entry.link) {
            held.subs.remove(&id);
            if held.pubs.is_empty() && held.subs.is_empty() {
                self.by_link.remove(&entry.link);
            }
        }
        match entry.search.exact() {
            Some(name) => {
                if let Some(set) = self.exact.get_mut(name) {
                    set.remove(&id);
                    if set.is_empty() {
                        self.exact.remove(name);
                    }
                }
            }
            None => self.patterns.remove(entry.search.prefix(), id),
        }
        for publication in &entry.routed {
            if let Some(set) = self.routed.get_mut(publication) {
                set.remove(&id);
            }
        }
        self.parent_routes.remove(&id);
        if self.forwards(entry.info.scope) {
            self.wider -= 1;
        }
        Some(entry)
    }

    fn unsubscribe(&mut self, id: SubId, out: &mut Vec<Output>) {
        if let Some(entry) = self.remove_subscription(id) {
            if self.forwards(entry.info.scope) && self.parent_up {
                out.push(Output::ToParent(Up::Unsubscribe { id }));
            }
        }
    }

    /// A child link is gone: everything registered through it is withdrawn.
    pub fn link_lost(&mut self, link: LinkId, out: &mut Vec<Output>) {
        let Some(held) = self.by_link.remove(&link) else {
            return;
        };
        let mut pubs: Vec<(u64, PubId)> = held
            .pubs
            .iter()
            .filter_map(|id| self.pubs.get(id).map(|p| (p.seq, *id)))
            .collect();
        pubs.sort_unstable();
        for (_, id) in pubs {
            self.retract(id, out);
        }
        for id in held.subs {
            self.unsubscribe(id, out);
        }
    }

    /// Takes publication `id` off `link`'s list.
    fn unfile_pub(&mut self, link: LinkId, id: PubId) {
        if let Some(held) = self.by_link.get_mut(&link) {
            held.pubs.remove(&id);
            if held.pubs.is_empty() && held.subs.is_empty() {
                self.by_link.remove(&link);
            }
        }
    }

    /// The parent is connected: register every listing that reaches beyond this engine, in the
    /// order they first came.
    pub fn parent_connected(&mut self, out: &mut Vec<Output>) {
        self.parent_up = true;
        let mut ups: Vec<(u64, Up)> = Vec::new();
        for p in self.pubs.values().filter(|p| self.forwards(p.info.scope)) {
            ups.push((p.seq, Up::Publish(p.info.clone())));
        }
        for s in self.subs.values().filter(|s| self.forwards(s.info.scope)) {
            ups.push((s.seq, Up::Subscribe(s.info.clone())));
        }
        ups.sort_unstable_by_key(|(seq, _)| *seq);
        out.extend(ups.into_iter().map(|(_, up)| Output::ToParent(up)));
    }

    /// The parent is gone: the routes it made no longer stand, so they are cleared below.
    /// (Sessions opened over them are not affected: they end only when their own connection does.)
    pub fn parent_lost(&mut self, out: &mut Vec<Output>) {
        self.parent_up = false;
        let mut cleared: Vec<(u64, RouteKey)> = Vec::new();
        for (sub, keys) in self.parent_routes.drain() {
            if let Some(entry) = self.subs.get(&sub) {
                cleared.extend(keys.into_iter().map(|k| (entry.link, k)));
            }
        }
        cleared.sort_unstable_by_key(|(link, k)| (*link, k.sub, k.at, k.publication));
        out.extend(
            cleared
                .into_iter()
                .map(|(link, k)| Output::ToLink(link, Down::RouteCleared(k))),
        );
    }

    /// Handles one frame from the parent: passes it down to the link it concerns.
    pub fn on_parent_frame(&mut self, frame: Down, out: &mut Vec<Output>) {
        match frame {
            Down::Heartbeat
            | Down::Report { .. }
            | Down::Ping { .. }
            | Down::Pong { .. }
            | Down::AskSessions { .. }
            | Down::Sessions { .. } => {}
            Down::PubStatus { id, .. } => {
                if let Some(entry) = self.pubs.get(&id) {
                    out.push(Output::ToLink(entry.link, frame));
                }
            }
            Down::SubRefused { id, .. } => {
                if let Some(entry) = self.subs.get(&id) {
                    out.push(Output::ToLink(entry.link, frame));
                }
            }
            Down::Route(route) => {
                if let Some(entry) = self.subs.get(&route.sub) {
                    self.parent_routes
                        .entry(route.sub)
                        .or_default()
                        .insert(route.key());
                    out.push(Output::ToLink(entry.link, Down::Route(route)));
                }
            }
            Down::RouteCleared(key) => {
                let known = self
                    .parent_routes
                    .get_mut(&key.sub)
                    .is_some_and(|keys| keys.remove(&key));
                if known {
                    let link = self.subs[&key.sub].link;
                    out.push(Output::ToLink(link, Down::RouteCleared(key)));
                }
            }
        }
    }

    /// Publication `id`, if held here (active or standby).
    pub fn publication(&self, id: PubId) -> Option<&PubInfo> {
        self.pubs.get(&id).map(|p| &p.info)
    }

    /// The process holding the active publication of `name`, if any.
    pub fn holder(&self, name: &str) -> Option<ProcessId> {
        self.names.get(name).map(|line| self.pubs[&line[0]].info.process)
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
