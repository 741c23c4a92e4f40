//! Engine unit tests, and a property test of the whole matching protocol: engines at every
//! level plus each process's attachments, wired by a message queue, under random publishes,
//! subscriptions, retractions, process deaths and host-directory restarts.

use super::*;
use crate::directory::attach::{Action, Attachments};
use crate::wire::directory::Route;
use proptest::prelude::*;
use std::collections::VecDeque;
use std::net::SocketAddr;

fn addr() -> SocketAddr {
    "127.0.0.1:1".parse().unwrap()
}

fn pub_info(name: &str, scope: Scope, process: ProcessId) -> PubInfo {
    PubInfo {
        id: PubId::random(),
        name: name.into(),
        scope,
        process,
        addr: addr(),
    }
}

fn sub_info(search: &str, scope: Scope, process: ProcessId) -> SubInfo {
    SubInfo {
        id: SubId::random(),
        search: search.into(),
        scope,
        process,
    }
}

fn routes(out: &[Output]) -> Vec<(LinkId, String)> {
    out.iter()
        .filter_map(|o| match o {
            Output::ToLink(link, Down::Route(r)) => Some((*link, r.publisher.name.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn exact_and_pattern_subscriptions_are_routed_both_ways_round() {
    let mut e = Engine::new(Scope::Host);
    let mut out = Vec::new();
    let (a, b) = (ProcessId::random(), ProcessId::random());
    e.on_child_frame(1, Up::Subscribe(sub_info("w:[0-9]+", Scope::Host, b)), &mut out);
    e.on_child_frame(1, Up::Subscribe(sub_info("w:1", Scope::Host, b)), &mut out);
    assert!(routes(&out).is_empty());
    out.clear();
    e.on_child_frame(2, Up::Publish(pub_info("w:1", Scope::Host, a)), &mut out);
    assert_eq!(routes(&out), vec![(1, "w:1".to_string()), (1, "w:1".to_string())]);
    out.clear();
    e.on_child_frame(2, Up::Publish(pub_info("xw:1", Scope::Host, a)), &mut out);
    assert!(routes(&out).is_empty(), "full match only");
    out.clear();
    e.on_child_frame(3, Up::Subscribe(sub_info("w:.*", Scope::Host, b)), &mut out);
    assert_eq!(routes(&out), vec![(3, "w:1".to_string())]);
}

#[test]
fn a_late_frame_from_an_older_link_does_not_take_a_listing_back() {
    let mut e = Engine::new(Scope::Host);
    let mut out = Vec::new();
    let (a, b) = (ProcessId::random(), ProcessId::random());
    let publication = pub_info("svc", Scope::Host, a);
    let subscription = sub_info("svc", Scope::Host, b);
    // The child reconnected as link 5 and registered again; link 2's frames arrive late.
    e.on_child_frame(5, Up::Publish(publication.clone()), &mut out);
    e.on_child_frame(6, Up::Subscribe(subscription.clone()), &mut out);
    out.clear();
    e.on_child_frame(2, Up::Publish(publication.clone()), &mut out);
    e.on_child_frame(3, Up::Subscribe(subscription.clone()), &mut out);
    assert!(out.is_empty(), "stale re-registrations are ignored: {out:?}");
    // Losing the old links withdraws nothing; losing the new one does.
    e.link_lost(2, &mut out);
    e.link_lost(3, &mut out);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(e.holder("svc"), Some(a));
    e.link_lost(5, &mut out);
    assert_eq!(e.holder("svc"), None);
}

#[test]
fn second_publisher_is_a_standby_and_is_promoted() {
    let mut e = Engine::new(Scope::Host);
    let mut out = Vec::new();
    let (a, b, c) = (ProcessId::random(), ProcessId::random(), ProcessId::random());
    let first = pub_info("svc", Scope::Host, a);
    let second = pub_info("svc", Scope::Host, b);
    e.on_child_frame(1, Up::Publish(first.clone()), &mut out);
    e.on_child_frame(2, Up::Publish(second.clone()), &mut out);
    assert!(out.contains(&Output::ToLink(
        2,
        Down::PubStatus {
            id: second.id,
            at: Scope::Host,
            state: PubState::Standby { holder: a }
        }
    )));
    e.on_child_frame(3, Up::Subscribe(sub_info("svc", Scope::Host, c)), &mut out);
    out.clear();
    e.link_lost(1, &mut out);
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::ToLink(3, Down::RouteCleared(k)) if k.publication == first.id)));
    assert!(out.contains(&Output::ToLink(
        2,
        Down::PubStatus {
            id: second.id,
            at: Scope::Host,
            state: PubState::Active
        }
    )));
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::ToLink(3, Down::Route(r)) if r.publisher.id == second.id)));
}

#[test]
fn listings_go_up_only_when_wider_and_are_replayed_in_order_on_reconnect() {
    let mut e = Engine::new(Scope::Group);
    let mut out = Vec::new();
    let p = ProcessId::random();
    let group_only = pub_info("g", Scope::Group, p);
    let host_wide = pub_info("h", Scope::Host, p);
    let sub = sub_info("x", Scope::Lan, p);
    e.on_child_frame(1, Up::Publish(group_only), &mut out);
    assert!(!e.wants_parent());
    e.on_child_frame(1, Up::Publish(host_wide.clone()), &mut out);
    e.on_child_frame(1, Up::Subscribe(sub.clone()), &mut out);
    assert!(e.wants_parent());
    assert!(
        !out.iter().any(|o| matches!(o, Output::ToParent(_))),
        "nothing sent before the parent is up"
    );
    out.clear();
    e.parent_connected(&mut out);
    assert_eq!(
        out,
        vec![
            Output::ToParent(Up::Publish(host_wide)),
            Output::ToParent(Up::Subscribe(sub))
        ]
    );
}

#[test]
fn narrower_listings_are_refused() {
    let mut e = Engine::new(Scope::Host);
    let mut out = Vec::new();
    let info = pub_info("g", Scope::Group, ProcessId::random());
    e.on_child_frame(1, Up::Publish(info.clone()), &mut out);
    assert!(matches!(
        &out[..],
        [Output::ToLink(
            1,
            Down::PubStatus {
                state: PubState::Refused { .. },
                ..
            }
        )]
    ));
    assert_eq!(e.counts(), (0, 0));
}

#[test]
fn parent_routes_pass_down_and_are_cleared_when_the_parent_goes() {
    let mut e = Engine::new(Scope::Group);
    let mut out = Vec::new();
    let p = ProcessId::random();
    let sub = sub_info("svc", Scope::Host, p);
    e.on_child_frame(4, Up::Subscribe(sub.clone()), &mut out);
    e.parent_connected(&mut out);
    out.clear();
    let route = Route {
        sub: sub.id,
        at: Scope::Host,
        publisher: pub_info("svc", Scope::Host, ProcessId::random()),
    };
    e.on_parent_frame(Down::Route(route.clone()), &mut out);
    assert_eq!(out, vec![Output::ToLink(4, Down::Route(route.clone()))]);
    out.clear();
    e.parent_lost(&mut out);
    assert_eq!(out, vec![Output::ToLink(4, Down::RouteCleared(route.key()))]);
}

// ---- The protocol simulation ----

const HOST: usize = 0;
const NAMES: [&str; 2] = ["a", "b"];
const SEARCHES: [&str; 4] = ["a", "b", "a|b", "[ab]"];
/// Processes 0 and 1 are in group 1, 2 and 3 in group 2, 4 and 5 stand alone under host-cake.
const PROCESSES: usize = 6;

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
    Opened {
        to: usize,
        session: SessionIdT,
    },
    Ended {
        to: usize,
        session: SessionIdT,
    },
}

type SessionIdT = crate::ids::SessionId;

struct SimNode {
    engine: Engine,
    /// (parent node, our link id there)
    parent: Option<(usize, LinkId)>,
    up: bool,
    epoch: u64,
    alive: bool,
    id: ProcessId,
    attach: Attachments,
    pubs: Vec<PubInfo>,
    subs: Vec<SubInfo>,
    /// Sessions this process (as publisher) accepted: (subscriber node, session, publication).
    served: Vec<(usize, SessionIdT, PubId)>,
}

struct Sim {
    nodes: Vec<SimNode>,
    queue: VecDeque<Msg>,
    /// Sessions announced Available and not yet Dropped: (node, session).
    open: HashSet<(usize, SessionIdT)>,
    /// Sessions a publisher accepted: (node, session).
    accepted: HashSet<(usize, SessionIdT)>,
}

fn proc_node(p: usize) -> usize {
    3 + p
}

impl Sim {
    fn new() -> Sim {
        let mut nodes = Vec::new();
        let mk = |scope, parent: Option<(usize, LinkId)>| SimNode {
            engine: Engine::new(scope),
            parent,
            up: false,
            epoch: 0,
            alive: true,
            id: ProcessId::random(),
            attach: Attachments::new(),
            pubs: Vec::new(),
            subs: Vec::new(),
            served: Vec::new(),
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
            open: HashSet::new(),
            accepted: HashSet::new(),
        };
        for n in 1..sim.nodes.len() {
            sim.connect(n);
        }
        sim
    }

    fn child_at(&self, parent: usize, link: LinkId) -> Option<usize> {
        (1..self.nodes.len()).find(|&n| self.nodes[n].parent == Some((parent, link)))
    }

    fn connect(&mut self, n: usize) {
        let node = &mut self.nodes[n];
        node.up = true;
        node.epoch += 1;
        let mut out = Vec::new();
        node.engine.parent_connected(&mut out);
        self.emit(n, out);
    }

    fn disconnect(&mut self, n: usize) {
        let node = &mut self.nodes[n];
        if !node.up {
            return;
        }
        node.up = false;
        node.epoch += 1;
        let mut out = Vec::new();
        node.engine.parent_lost(&mut out);
        self.emit(n, out);
    }

    fn emit(&mut self, n: usize, out: Vec<Output>) {
        for o in out {
            match o {
                Output::ToParent(frame) => {
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
                Output::ToLink(0, frame) if n >= 3 => self.local(n, frame),
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

    fn local(&mut self, n: usize, frame: Down) {
        let mut actions = Vec::new();
        match frame {
            Down::Route(r) => self.nodes[n].attach.route(r, &mut actions),
            Down::RouteCleared(k) => self.nodes[n].attach.route_cleared(&k, &mut actions),
            Down::PubStatus {
                id,
                state: PubState::Refused { .. },
                ..
            } => {
                // The node retracts a refused publication.
                self.retract(n, id);
            }
            _ => {}
        }
        self.act(n, actions);
    }

    fn act(&mut self, n: usize, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Open {
                    session, publisher, ..
                } => {
                    let pn = (3..self.nodes.len())
                        .find(|&m| self.nodes[m].id == publisher.process)
                        .unwrap();
                    let ok = self.nodes[pn].alive && self.nodes[pn].pubs.iter().any(|p| p.id == publisher.id);
                    if ok {
                        self.nodes[pn].served.push((n, session, publisher.id));
                        self.accepted.insert((n, session));
                        self.queue.push_back(Msg::Opened { to: n, session });
                    } else {
                        self.queue.push_back(Msg::Ended { to: n, session });
                    }
                }
                Action::Close { session, .. } => {
                    for m in 3..self.nodes.len() {
                        self.nodes[m]
                            .served
                            .retain(|(s, sess, _)| !(*s == n && *sess == session));
                    }
                }
                Action::Available { session, .. } => {
                    assert!(
                        self.accepted.contains(&(n, session)),
                        "Available for a session no publisher accepted"
                    );
                    assert!(self.open.insert((n, session)), "Available twice for one session");
                }
                Action::Dropped { session, .. } => {
                    assert!(
                        self.open.remove(&(n, session)),
                        "Dropped without Available, or twice"
                    );
                }
            }
        }
    }

    fn retract(&mut self, n: usize, id: PubId) {
        let node = &mut self.nodes[n];
        node.pubs.retain(|p| p.id != id);
        let mut out = Vec::new();
        node.engine.on_child_frame(0, Up::Retract { id }, &mut out);
        let served: Vec<_> = node
            .served
            .iter()
            .filter(|(_, _, p)| *p == id)
            .map(|(s, sess, _)| (*s, *sess))
            .collect();
        node.served.retain(|(_, _, p)| *p != id);
        for (s, session) in served {
            self.queue.push_back(Msg::Ended { to: s, session });
        }
        self.emit(n, out);
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
                let mut out = Vec::new();
                node.engine.on_parent_frame(frame, &mut out);
                self.emit(to, out);
            }
            Msg::Opened { to, session } => {
                if self.nodes[to].alive {
                    let mut actions = Vec::new();
                    self.nodes[to].attach.opened(session, &mut actions);
                    self.act(to, actions);
                }
            }
            Msg::Ended { to, session } => {
                if self.nodes[to].alive {
                    let mut actions = Vec::new();
                    self.nodes[to].attach.ended(session, "ended", &mut actions);
                    self.act(to, actions);
                }
            }
        }
        true
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
                let node = &mut self.nodes[n];
                if !node.alive || node.pubs.iter().any(|x| x.name == NAMES[name]) {
                    return;
                }
                let info = PubInfo {
                    id: PubId::random(),
                    name: NAMES[name].into(),
                    scope,
                    process: node.id,
                    addr: addr(),
                };
                node.pubs.push(info.clone());
                let mut out = Vec::new();
                node.engine.on_child_frame(0, Up::Publish(info), &mut out);
                self.emit(n, out);
            }
            Op::Retract { p, k } => {
                let n = proc_node(p);
                if let Some(id) = self.nodes[n]
                    .pubs
                    .get(k)
                    .map(|x| x.id)
                    .filter(|_| self.nodes[n].alive)
                {
                    self.retract(n, id);
                }
            }
            Op::Subscribe { p, search, scope } => {
                let n = proc_node(p);
                let scope = self.scope_for(p, scope);
                let node = &mut self.nodes[n];
                if !node.alive {
                    return;
                }
                let info = SubInfo {
                    id: SubId::random(),
                    search: SEARCHES[search].into(),
                    scope,
                    process: node.id,
                };
                node.subs.push(info.clone());
                let mut out = Vec::new();
                node.engine.on_child_frame(0, Up::Subscribe(info), &mut out);
                self.emit(n, out);
            }
            Op::Unsubscribe { p, k } => {
                let n = proc_node(p);
                if !self.nodes[n].alive || k >= self.nodes[n].subs.len() {
                    return;
                }
                let sub = self.nodes[n].subs.remove(k);
                let ended: Vec<_> = self.nodes[n]
                    .attach
                    .sessions()
                    .filter(|(_, s, _, _)| *s == sub.id)
                    .map(|(sess, ..)| sess)
                    .collect();
                for session in ended {
                    self.open.remove(&(n, session));
                }
                let (mut out, mut actions) = (Vec::new(), Vec::new());
                self.nodes[n]
                    .engine
                    .on_child_frame(0, Up::Unsubscribe { id: sub.id }, &mut out);
                self.nodes[n].attach.unsubscribe(sub.id, &mut actions);
                self.emit(n, out);
                self.act(n, actions);
            }
            Op::Kill { p } => {
                let n = proc_node(p);
                if !self.nodes[n].alive {
                    return;
                }
                self.nodes[n].alive = false;
                let dead = self.nodes[n].id;
                self.open.retain(|(m, _)| *m != n);
                let (parent, link) = self.nodes[n].parent.unwrap();
                if self.nodes[n].up {
                    let mut out = Vec::new();
                    self.nodes[parent].engine.link_lost(link, &mut out);
                    self.emit(parent, out);
                }
                for m in 3..self.nodes.len() {
                    if m != n
                        && self.nodes[m].alive
                        && self.nodes[m]
                            .attach
                            .sessions()
                            .any(|(_, _, p, _)| p.process == dead)
                    {
                        let mut actions = Vec::new();
                        self.nodes[m].attach.process_lost(dead, "killed", &mut actions);
                        self.act(m, actions);
                    }
                }
            }
            Op::HostDown => {
                for n in 1..self.nodes.len() {
                    if self.nodes[n].parent.map(|(p, _)| p) == Some(HOST) && self.nodes[n].alive {
                        self.disconnect(n);
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
                        self.connect(n);
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

    /// The nearest level at which `sub` of process node `n` sees a live holder of `name`.
    fn expected_level(&self, n: usize, sub: &SubInfo, name: &str) -> Option<Scope> {
        let mut level = Some(n);
        let mut reachable = true;
        while let (Some(d), true) = (level, reachable) {
            let node = &self.nodes[d];
            if sub.scope < node.engine.scope() {
                break;
            }
            if Search::new(&sub.search).unwrap().matches(name) && node.engine.holder(name).is_some() {
                return Some(node.engine.scope());
            }
            reachable = node.up;
            level = node.parent.map(|(p, _)| p);
        }
        None
    }

    fn check(&self) {
        let live: HashSet<(usize, SessionIdT)> = (3..self.nodes.len())
            .filter(|&n| self.nodes[n].alive)
            .flat_map(|n| {
                self.nodes[n]
                    .attach
                    .sessions()
                    .filter(|s| s.3)
                    .map(move |(s, ..)| (n, s))
            })
            .collect();
        assert_eq!(
            live, self.open,
            "every open attachment was announced once, and every ended one dropped once"
        );
        for n in 3..self.nodes.len() {
            let node = &self.nodes[n];
            if !node.alive {
                continue;
            }
            for sub in &node.subs {
                for name in NAMES {
                    let expected = self.expected_level(n, sub, name);
                    let current = node.attach.current(sub.id, name);
                    match (expected, current) {
                        (None, None) => {}
                        (Some(level), Some((_, at, publication, open))) => {
                            assert!(open, "{name} for {sub:?} still opening after quiescence");
                            assert_eq!(
                                at, level,
                                "{name} for {sub:?}: attached at {at}, nearest is {level}"
                            );
                            let live_pub = (3..self.nodes.len()).any(|m| {
                                self.nodes[m].alive && self.nodes[m].pubs.iter().any(|p| p.id == publication)
                            });
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
        while sim.step() {}
        sim.check();
        if std::env::var("SIM_STATS").is_ok() {
            let attached = (3..sim.nodes.len()).map(|n| sim.nodes[n].attach.sessions().count()).sum::<usize>();
            eprintln!("accepted={} attached={}", sim.accepted.len(), attached);
        }
    }
}
