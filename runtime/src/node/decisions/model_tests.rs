//! A property test of the whole matching protocol with the shipped decisions: host-cake and two
//! group-cakes (real [`Engine`]s) and six processes (real [`NodeCore`]s), wired by one message
//! queue, under random publishes, subscriptions, retractions, process deaths and host-directory
//! restarts. Only the plumbing is modelled: links to parents (with epochs), session connections
//! (the frames `Open`, `Opened`, `Refused`, `Close` in order, each end's sessions), and timers.
//!
//! At quiescence every subscription must be attached to the nearest live publisher of each
//! name it matches, and the sessions the subscribers hold open must be exactly those the
//! publishers admitted and hold open.

use super::{ConnId, Due, Effect, NodeCore};
use crate::directory::{Engine, LinkId, Output, Search};
use crate::ids::{ProcessId, PubId, SessionId, SubId};
use crate::scope::Scope;
use crate::wire::directory::{Down, PubInfo, SubInfo, Up};
use crate::wire::peer::Open;
use proptest::prelude::*;
use std::collections::{HashMap, HashSet, VecDeque};

const HOST: usize = 0;
const NAMES: [&str; 2] = ["a", "b"];
const SEARCHES: [&str; 4] = ["a", "b", "a|b", "[ab]"];
/// Processes 0 and 1 are in group 1, 2 and 3 in group 2, 4 and 5 stand alone under host-cake.
const PROCESSES: usize = 6;
/// How many rounds of timers fire once the queue is empty (each may start more work).
const TIMER_ROUNDS: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    Publish { p: usize, name: usize, scope: usize },
    Retract { p: usize, k: usize },
    Subscribe { p: usize, search: usize, scope: usize },
    Unsubscribe { p: usize, k: usize },
    Kill { p: usize },
    HostDown,
    HostUp,
    Step { n: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..PROCESSES, 0..2usize, 0..3usize).prop_map(|(p, name, scope)| Op::Publish { p, name, scope }),
        1 => (0..PROCESSES, 0..3usize).prop_map(|(p, k)| Op::Retract { p, k }),
        3 => (0..PROCESSES, 0..4usize, 0..3usize).prop_map(|(p, search, scope)| Op::Subscribe { p, search, scope }),
        1 => (0..PROCESSES, 0..3usize).prop_map(|(p, k)| Op::Unsubscribe { p, k }),
        1 => (0..PROCESSES).prop_map(|p| Op::Kill { p }),
        1 => Just(Op::HostDown),
        1 => Just(Op::HostUp),
        4 => (1..20usize).prop_map(|n| Op::Step { n }),
    ]
}

/// A frame on a session connection.
#[derive(Debug)]
enum Peer {
    Open(Open),
    Opened(SessionId),
    Refused(SessionId),
    Close(SessionId),
}

enum Msg {
    Up {
        to: usize,
        link: LinkId,
        epoch: u64,
        frame: Up,
    },
    Down {
        to: usize,
        epoch: u64,
        frame: Down,
    },
    Dial {
        from: usize,
        publisher: PubInfo,
    },
    Peer {
        to: usize,
        conn: ConnId,
        frame: Peer,
    },
}

/// A directory daemon (`core` is None) or a process.
struct SimNode {
    /// A directory's engine (a process's is inside its core).
    engine: Engine,
    core: Option<NodeCore>,
    /// (parent node, our link id there)
    parent: Option<(usize, LinkId)>,
    up: bool,
    epoch: u64,
    alive: bool,
    id: ProcessId,
    pubs: Vec<PubInfo>,
    subs: Vec<SubInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionState {
    /// The subscriber's end, before `Opened`.
    Opening,
    /// The subscriber's end, open.
    Open,
    /// The publisher's end (open once admitted).
    Admitted,
}

struct Sim {
    nodes: Vec<SimNode>,
    queue: VecDeque<Msg>,
    /// Session connections: (node, its connection id) → (peer node, the peer's id for it).
    links: HashMap<(usize, ConnId), (usize, ConnId)>,
    /// Each end's sessions, as its connection holds them.
    sessions: HashMap<(usize, ConnId, SessionId), SessionState>,
    next_conn: ConnId,
    /// Timers set and not yet fired: (node, what).
    timers: Vec<(usize, Due)>,
}

fn proc_node(p: usize) -> usize {
    3 + p
}

impl Sim {
    fn new() -> Sim {
        let mut nodes = Vec::new();
        let mk = |scope, parent: Option<(usize, LinkId)>| SimNode {
            engine: Engine::new(scope),
            core: (scope == Scope::Process).then(|| NodeCore::new(true)),
            parent,
            up: false,
            epoch: 0,
            alive: true,
            id: ProcessId::random(),
            pubs: Vec::new(),
            subs: Vec::new(),
        };
        nodes.push(mk(Scope::Host, None));
        nodes.push(mk(Scope::Group, Some((HOST, 1))));
        nodes.push(mk(Scope::Group, Some((HOST, 2))));
        for p in 0..PROCESSES {
            let parent = match p {
                0 | 1 => (1, p as LinkId + 1),
                2 | 3 => (2, p as LinkId - 1),
                _ => (HOST, p as LinkId - 1),
            };
            nodes.push(mk(Scope::Process, Some(parent)));
        }
        let mut sim = Sim {
            nodes,
            queue: VecDeque::new(),
            links: HashMap::new(),
            sessions: HashMap::new(),
            next_conn: 0,
            timers: Vec::new(),
        };
        for n in 1..sim.nodes.len() {
            sim.set_link(n, true);
        }
        sim
    }

    fn core(&mut self, n: usize) -> &mut NodeCore {
        self.nodes[n].core.as_mut().expect("a process")
    }

    fn child_at(&self, parent: usize, link: LinkId) -> Option<usize> {
        (1..self.nodes.len()).find(|&n| self.nodes[n].parent == Some((parent, link)))
    }

    /// Node `n`'s link to its parent comes up (`up`) or goes, with a new epoch either way.
    fn set_link(&mut self, n: usize, up: bool) {
        let node = &mut self.nodes[n];
        if node.up == up {
            return;
        }
        node.up = up;
        node.epoch += 1;
        match (&mut node.core, up) {
            (Some(core), true) => core.parent_connected(),
            (Some(core), false) => core.parent_lost(),
            (None, true) => {
                let mut out = Vec::new();
                node.engine.parent_connected(&mut out);
                return self.emit(n, out);
            }
            (None, false) => {
                let mut out = Vec::new();
                node.engine.parent_lost(&mut out);
                return self.emit(n, out);
            }
        }
        self.effects(n);
    }

    fn send_up(&mut self, n: usize, frame: Up) {
        let node = &self.nodes[n];
        if let (true, Some((to, link))) = (node.up, node.parent) {
            self.queue.push_back(Msg::Up {
                to,
                link,
                epoch: node.epoch,
                frame,
            });
        }
    }

    /// A directory's outputs.
    fn emit(&mut self, n: usize, out: Vec<Output>) {
        for o in out {
            match o {
                Output::ToParent(frame) => self.send_up(n, frame),
                Output::ToLink(link, frame) => {
                    let child = self.child_at(n, link).expect("link has a child");
                    let epoch = self.nodes[child].epoch;
                    self.queue.push_back(Msg::Down {
                        to: child,
                        epoch,
                        frame,
                    });
                }
            }
        }
    }

    /// Carries out what process node `n`'s core decided, as the node task would.
    fn effects(&mut self, n: usize) {
        let effects: Vec<Effect> = self.core(n).effects().collect();
        for effect in effects {
            match effect {
                Effect::ToParent(frame) => self.send_up(n, frame),
                Effect::Answer { id, answer } => {
                    if answer.is_err() {
                        self.nodes[n].pubs.retain(|p| p.id != id);
                    }
                }
                Effect::Standing { .. } => {}
                Effect::Dial(publisher) => self.queue.push_back(Msg::Dial { from: n, publisher }),
                Effect::Open { conn, open } => {
                    self.sessions
                        .insert((n, conn, open.session), SessionState::Opening);
                    self.send(n, conn, Peer::Open(open));
                }
                Effect::Admit { conn, session, .. } => {
                    self.sessions.insert((n, conn, session), SessionState::Admitted);
                    self.send(n, conn, Peer::Opened(session));
                }
                Effect::Refuse { conn, session, .. } => self.send(n, conn, Peer::Refused(session)),
                Effect::Close { conn, session, .. } => {
                    if self.sessions.remove(&(n, conn, session)).is_some() {
                        self.send(n, conn, Peer::Close(session));
                    }
                }
                Effect::Wake { due, .. } => self.timers.push((n, due)),
            }
        }
    }

    fn send(&mut self, n: usize, conn: ConnId, frame: Peer) {
        if let Some(&(to, conn)) = self.links.get(&(n, conn)) {
            self.queue.push_back(Msg::Peer { to, conn, frame });
        }
    }

    fn step(&mut self) -> bool {
        let Some(msg) = self.queue.pop_front() else {
            return false;
        };
        match msg {
            Msg::Up {
                to,
                link,
                epoch,
                frame,
            } => {
                let Some(child) = self.child_at(to, link) else {
                    return true;
                };
                let c = &self.nodes[child];
                if !self.nodes[to].alive || !c.alive || !c.up || c.epoch != epoch {
                    return true;
                }
                let mut out = Vec::new();
                self.nodes[to].engine.on_child_frame(link, frame, &mut out);
                self.emit(to, out);
            }
            Msg::Down { to, epoch, frame } => {
                let node = &mut self.nodes[to];
                if !node.alive || !node.up || node.epoch != epoch {
                    return true;
                }
                if node.core.is_some() {
                    self.core(to).parent_frame(frame);
                    self.effects(to);
                } else {
                    let mut out = Vec::new();
                    node.engine.on_parent_frame(frame, &mut out);
                    self.emit(to, out);
                }
            }
            Msg::Dial { from, publisher } => {
                if !self.nodes[from].alive {
                    return true;
                }
                let target = (3..self.nodes.len()).find(|&m| self.nodes[m].id == publisher.process);
                match target.filter(|&m| self.nodes[m].alive) {
                    Some(m) => {
                        let (ours, theirs) = (self.next_conn + 1, self.next_conn + 2);
                        self.next_conn += 2;
                        self.links.insert((from, ours), (m, theirs));
                        self.links.insert((m, theirs), (from, ours));
                        let (from_id, m_id) = (self.nodes[from].id, self.nodes[m].id);
                        self.core(m).connection_up(theirs, from_id, false, false);
                        self.effects(m);
                        self.core(from).connection_up(ours, m_id, false, true);
                        self.effects(from);
                    }
                    None => {
                        self.core(from).connect_failed(publisher.process, "refused");
                        self.effects(from);
                    }
                }
            }
            Msg::Peer { to, conn, frame } => {
                if !self.nodes[to].alive || !self.links.contains_key(&(to, conn)) {
                    return true;
                }
                match frame {
                    Peer::Open(open) => self.core(to).inbound_open(conn, open),
                    Peer::Opened(session) => {
                        let entry = self.sessions.get_mut(&(to, conn, session));
                        if let Some(state @ SessionState::Opening) = entry {
                            *state = SessionState::Open;
                            self.core(to).opened(conn, session);
                        }
                    }
                    Peer::Refused(session) | Peer::Close(session) => {
                        if self.sessions.remove(&(to, conn, session)).is_some() {
                            self.core(to)
                                .session_ended(conn, session, "ended by the other end");
                        }
                    }
                }
                self.effects(to);
            }
        }
        true
    }

    /// Runs until nothing is queued, firing the timers set meanwhile a few rounds.
    fn settle(&mut self) {
        for _ in 0..TIMER_ROUNDS {
            while self.step() {}
            let timers = std::mem::take(&mut self.timers);
            if timers.is_empty() {
                return;
            }
            for (n, due) in timers {
                if self.nodes[n].alive {
                    self.core(n).due(due);
                    self.effects(n);
                }
            }
        }
        while self.step() {}
    }

    fn scope_for(&self, p: usize, choice: usize) -> Scope {
        match (p, choice) {
            (_, 0) => Scope::Process,
            (0..=3, 1) => Scope::Group,
            _ => Scope::Host,
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Publish { p, name, scope } => {
                let n = proc_node(p);
                let scope = self.scope_for(p, scope);
                if !self.nodes[n].alive || self.core(n).check_publish(NAMES[name]).is_err() {
                    return;
                }
                let info = PubInfo {
                    id: PubId::random(),
                    name: NAMES[name].into(),
                    scope,
                    process: self.nodes[n].id,
                    addr: "127.0.0.1:1".parse().unwrap(),
                };
                self.nodes[n].pubs.push(info.clone());
                self.core(n).publish(info);
                self.effects(n);
            }
            Op::Retract { p, k } => {
                let n = proc_node(p);
                if !self.nodes[n].alive || k >= self.nodes[n].pubs.len() {
                    return;
                }
                let id = self.nodes[n].pubs.remove(k).id;
                self.core(n).retract(id);
                self.effects(n);
            }
            Op::Subscribe { p, search, scope } => {
                let n = proc_node(p);
                let scope = self.scope_for(p, scope);
                if !self.nodes[n].alive {
                    return;
                }
                let info = SubInfo {
                    id: SubId::random(),
                    search: SEARCHES[search].into(),
                    scope,
                    process: self.nodes[n].id,
                };
                self.nodes[n].subs.push(info.clone());
                self.core(n).subscribe(info).expect("a valid search");
                self.effects(n);
            }
            Op::Unsubscribe { p, k } => {
                let n = proc_node(p);
                if !self.nodes[n].alive || k >= self.nodes[n].subs.len() {
                    return;
                }
                let sub = self.nodes[n].subs.remove(k);
                self.core(n).unsubscribe(sub.id);
                self.effects(n);
            }
            Op::Kill { p } => {
                let n = proc_node(p);
                if !self.nodes[n].alive {
                    return;
                }
                self.nodes[n].alive = false;
                let (parent, link) = self.nodes[n].parent.unwrap();
                if self.nodes[n].up {
                    let mut out = Vec::new();
                    self.nodes[parent].engine.link_lost(link, &mut out);
                    self.emit(parent, out);
                }
                // Its session connections close: each peer hears at once (loopback).
                let ends: Vec<((usize, ConnId), (usize, ConnId))> = self
                    .links
                    .iter()
                    .filter(|((m, _), _)| *m == n)
                    .map(|(a, b)| (*a, *b))
                    .collect();
                for ((_, ours), (m, theirs)) in ends {
                    self.links.remove(&(n, ours));
                    self.links.remove(&(m, theirs));
                    self.sessions
                        .retain(|(k, c, _), _| !((*k == n && *c == ours) || (*k == m && *c == theirs)));
                    if self.nodes[m].alive {
                        self.core(m).connection_lost(theirs, "killed");
                        self.effects(m);
                    }
                }
            }
            Op::HostDown => {
                for n in 1..self.nodes.len() {
                    if self.nodes[n].parent.map(|(p, _)| p) == Some(HOST) && self.nodes[n].alive {
                        self.set_link(n, false);
                    }
                }
                self.nodes[HOST].engine = Engine::new(Scope::Host);
            }
            Op::HostUp => {
                for n in 1..self.nodes.len() {
                    if self.nodes[n].parent.map(|(p, _)| p) == Some(HOST)
                        && self.nodes[n].alive
                        && !self.nodes[n].up
                    {
                        self.set_link(n, true);
                    }
                }
            }
            Op::Step { n } => {
                for _ in 0..n {
                    if !self.step() {
                        break;
                    }
                }
            }
        }
    }

    /// The engine that matches at node `n`'s level.
    fn engine(&self, n: usize) -> &Engine {
        match &self.nodes[n].core {
            Some(core) => core.engine(),
            None => &self.nodes[n].engine,
        }
    }

    /// The nearest level at which `sub` of process node `n` sees a live holder of `name`.
    fn expected_level(&self, n: usize, sub: &SubInfo, name: &str) -> Option<Scope> {
        let mut level = Some(n);
        let mut reachable = true;
        while let (Some(d), true) = (level, reachable) {
            let engine = self.engine(d);
            if sub.scope < engine.scope() {
                break;
            }
            if Search::new(&sub.search).unwrap().matches(name) && engine.holder(name).is_some() {
                return Some(engine.scope());
            }
            reachable = self.nodes[d].up;
            level = self.nodes[d].parent.map(|(p, _)| p);
        }
        None
    }

    fn check(&self) {
        let live = |n: usize| self.nodes[n].alive;
        // The subscribers' open sessions (as their connections hold them) are exactly the open
        // attachments, and the publishers hold open exactly those.
        // (Session ids are the subscriber's: a session is known by its subscriber and its id.)
        let attached: HashSet<(usize, SessionId)> = (3..self.nodes.len())
            .filter(|&n| live(n))
            .flat_map(|n| {
                let core = self.nodes[n].core.as_ref().unwrap();
                core.attachments()
                    .sessions()
                    .filter(|s| s.3)
                    .map(move |s| (n, s.0))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut open_at_subscriber = HashSet::new();
        let mut open_at_publisher = HashSet::new();
        for (&(n, conn, session), state) in &self.sessions {
            let Some(&(m, _)) = self.links.get(&(n, conn)) else {
                continue;
            };
            if !live(n) || !live(m) {
                continue;
            }
            match state {
                SessionState::Open => assert!(open_at_subscriber.insert((n, session))),
                SessionState::Admitted => assert!(open_at_publisher.insert((m, session))),
                SessionState::Opening => {}
            }
        }
        assert_eq!(
            attached, open_at_subscriber,
            "subscribers hold open exactly their attachments"
        );
        assert_eq!(
            open_at_publisher, open_at_subscriber,
            "publishers hold open exactly the sessions subscribers hold"
        );
        for n in 3..self.nodes.len() {
            if !live(n) {
                continue;
            }
            let core = self.nodes[n].core.as_ref().unwrap();
            for sub in &self.nodes[n].subs {
                for name in NAMES {
                    let expected = self.expected_level(n, sub, name);
                    let current = core.attachments().current(sub.id, name);
                    match (expected, current) {
                        (None, None) => {}
                        (Some(level), Some((_, at, publication, open))) => {
                            assert!(open, "{name} for {sub:?} still opening after quiescence");
                            assert_eq!(
                                at, level,
                                "{name} for {sub:?}: attached at {at}, nearest is {level}"
                            );
                            let live_pub = (3..self.nodes.len())
                                .any(|m| live(m) && self.nodes[m].pubs.iter().any(|p| p.id == publication));
                            assert!(live_pub, "attached to a publication that is gone");
                        }
                        (e, c) => panic!("{name} for {sub:?} (node {n}): expected {e:?}, attached {c:?}"),
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn subscribers_attach_to_the_nearest_live_publisher(ops in proptest::collection::vec(op(), 1..60)) {
        let mut sim = Sim::new();
        for op in ops {
            sim.apply(op);
        }
        sim.apply(Op::HostUp);
        sim.settle();
        sim.check();
    }
}
