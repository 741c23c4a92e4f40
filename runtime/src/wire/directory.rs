//! Messages on a directory link: a child (process or directory) below, a directory above.
//!
//! After the greetings (`super::greeting`), the child sends [`Up`] frames: listings. The parent
//! sends [`Down`] frames: the status of the child's publications and the routes its
//! matches produce. Application traffic never flows on these links.

use crate::ids::{ProcessId, PubId, SessionId, SubId};
use crate::scope::Scope;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// A publication as directories see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PubInfo {
    /// Unique for the life of the publication.
    pub id: PubId,
    /// The published name.
    pub name: String,
    /// How far the publication reaches.
    pub scope: Scope,
    /// The publishing process.
    pub process: ProcessId,
    /// Where subscribers connect to open sessions with it.
    pub addr: SocketAddr,
}

/// A subscription as directories see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubInfo {
    /// Unique for the life of the subscription.
    pub id: SubId,
    /// An exact name or a regular expression, matched against the whole name.
    pub search: String,
    /// How far the subscription reaches.
    pub scope: Scope,
    /// The subscribing process.
    pub process: ProcessId,
}

/// A publication's standing in one directory: only one publication of a name is active there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PubState {
    /// This publication is the one subscribers are routed to.
    Active,
    /// Another process holds the name; this one takes over when the holder goes.
    Standby {
        /// The process holding the name.
        holder: ProcessId,
    },
    /// The directory would not take the publication.
    Refused {
        /// Why.
        reason: String,
    },
}

/// A match: the directory at `at` found that `sub` matches the active publication of `name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The subscription that matched.
    pub sub: SubId,
    /// The scope of the directory that made the match (how near the publisher is).
    pub at: Scope,
    /// The publication matched.
    pub publisher: PubInfo,
}

impl Route {
    /// The key that a later [`Down::RouteCleared`] names.
    pub fn key(&self) -> RouteKey {
        RouteKey {
            sub: self.sub,
            at: self.at,
            publication: self.publisher.id,
            name: self.publisher.name.clone(),
        }
    }
}

/// Names one route, for clearing it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RouteKey {
    /// The subscription.
    pub sub: SubId,
    /// The directory scope that made the match.
    pub at: Scope,
    /// The publication.
    pub publication: PubId,
    /// The publication's name.
    pub name: String,
}

/// Frames from a child to its directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Up {
    /// Register a publication (or re-register it after a reconnect).
    Publish(PubInfo),
    /// Withdraw a publication.
    Retract {
        /// The publication.
        id: PubId,
    },
    /// Register a subscription (or re-register it after a reconnect).
    Subscribe(SubInfo),
    /// Withdraw a subscription.
    Unsubscribe {
        /// The subscription.
        id: SubId,
    },
    /// Still here (between hosts only; see [`HEARTBEAT_EVERY`](super::HEARTBEAT_EVERY)).
    Heartbeat,
    /// Asks the directory to describe itself and its children (`layer-cake network`); it
    /// answers [`Down::Report`] with the same `query`.
    Inspect {
        /// Chosen by the asker, echoed in the answer.
        query: u64,
    },
    /// Asks the directory to pass a ping to `target` (itself, or one of its children) and
    /// to answer [`Down::Pong`] when it comes back (`layer-cake ping`).
    Ping {
        /// Chosen by the asker, echoed in the answer.
        seq: u64,
        /// The node to reach.
        target: ProcessId,
    },
    /// The answer to a [`Down::Ping`] from the directory above.
    Pong {
        /// The ping's `seq`.
        seq: u64,
    },
    /// Asks the directory to ask `target` (one of its child processes) which sessions it
    /// holds as a subscriber, and to answer [`Down::Sessions`] (`layer-cake network -l`).
    AskSessions {
        /// Chosen by the asker, echoed in the answer.
        query: u64,
        /// The process to ask.
        target: ProcessId,
    },
    /// A process's answer to [`Down::AskSessions`]: the sessions it holds as a subscriber.
    Sessions {
        /// The question's `query`.
        query: u64,
        /// One entry per session, opening or open.
        sessions: Vec<SessionInfo>,
    },
}

/// One session a subscriber holds: the subscriber → publisher edge of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The session.
    pub session: SessionId,
    /// The subscription it serves.
    pub sub: SubId,
    /// The scope of the route it was opened over (the directory that matched it).
    pub at: Scope,
    /// The publication at the other end.
    pub publisher: PubInfo,
    /// Did the publisher accept it (`Available` reported)?
    pub open: bool,
}

/// One node of the tree, as its directory knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeNode {
    /// A directory or an application process.
    pub kind: super::PeerKind,
    /// The scope of its own directory (`PROCESS` for an application).
    pub scope: Scope,
    /// Its readable name.
    pub name: String,
    /// Its identity.
    pub id: ProcessId,
    /// Where it accepts children, for a directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// The role a composite runs it as, when one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl From<&super::Hello> for TreeNode {
    fn from(h: &super::Hello) -> TreeNode {
        TreeNode {
            kind: h.kind,
            scope: h.scope,
            name: h.name.clone(),
            id: h.id,
            listen: h.listen,
            role: h.role.clone(),
        }
    }
}

/// A child of a directory and what it registered there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildReport {
    /// The child.
    pub node: TreeNode,
    /// Its publications held by this directory.
    pub publishes: Vec<PubInfo>,
    /// Its subscriptions held by this directory.
    pub subscribes: Vec<SubInfo>,
}

/// A directory's answer to [`Up::Inspect`]: itself, its parent, its children.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryReport {
    /// The directory itself.
    pub node: TreeNode,
    /// Where its parent is, when it has one configured.
    pub parent_addr: Option<SocketAddr>,
    /// Its parent, while connected.
    pub parent: Option<TreeNode>,
    /// Every connected child, in the order they connected.
    pub children: Vec<ChildReport>,
}

/// Frames from a directory to a child.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Down {
    /// A publication's standing in the directory at `at`.
    PubStatus {
        /// The publication.
        id: PubId,
        /// The scope of the directory reporting.
        at: Scope,
        /// Its standing there.
        state: PubState,
    },
    /// A subscription was refused by the directory at `at` (the search did not compile there).
    SubRefused {
        /// The subscription.
        id: SubId,
        /// The scope of the directory reporting.
        at: Scope,
        /// Why.
        reason: String,
    },
    /// A new match.
    Route(Route),
    /// A match that no longer holds (the publication went, or stopped being active, or the
    /// directory that made it went away). A session opened over it is not closed by this.
    RouteCleared(RouteKey),
    /// Still here (between hosts only; see [`HEARTBEAT_EVERY`](super::HEARTBEAT_EVERY)).
    Heartbeat,
    /// The answer to [`Up::Inspect`].
    Report {
        /// The asker's `query`.
        query: u64,
        /// What the directory knows.
        report: DirectoryReport,
    },
    /// A ping for this child: answer [`Up::Pong`] with the same `seq`.
    Ping {
        /// Echoed in the answer.
        seq: u64,
    },
    /// The answer to the asker's [`Up::Ping`]: the target answered.
    Pong {
        /// The asker's `seq`.
        seq: u64,
    },
    /// To a process: which sessions do you hold? Answer [`Up::Sessions`] with this `query`.
    AskSessions {
        /// Echoed in the answer.
        query: u64,
    },
    /// The answer to the asker's [`Up::AskSessions`].
    Sessions {
        /// The asker's `query`.
        query: u64,
        /// The target's sessions.
        sessions: Vec<SessionInfo>,
    },
}

#[cfg(test)]
mod tests {
    //! These pin the wire format: the same frames appear in `docs/protocol.md`.
    use super::*;
    use crate::wire::{Hello, PeerKind};
    use uuid::Uuid;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn frames_have_the_documented_json() {
        let hello = Hello::new(PeerKind::Process, ProcessId(id(1)), Scope::Process, "publisher");
        assert_eq!(
            String::from_utf8(crate::wire::greeting::body(&hello)).unwrap(),
            r#"{"Hello":{"magic":"layer-cake","version":2,"codec":"json","kind":"process","id":"00000000-0000-0000-0000-000000000001","scope":"PROCESS","name":"publisher"}}"#
        );
        let info = PubInfo {
            id: PubId(id(2)),
            name: "svc".into(),
            scope: Scope::Host,
            process: ProcessId(id(1)),
            addr: "127.0.0.1:40001".parse().unwrap(),
        };
        assert_eq!(
            serde_json::to_string(&Up::Publish(info.clone())).unwrap(),
            r#"{"Publish":{"id":"00000000-0000-0000-0000-000000000002","name":"svc","scope":"HOST","process":"00000000-0000-0000-0000-000000000001","addr":"127.0.0.1:40001"}}"#
        );
        let sub = SubInfo {
            id: SubId(id(3)),
            search: "s.c".into(),
            scope: Scope::Host,
            process: ProcessId(id(4)),
        };
        assert_eq!(
            serde_json::to_string(&Up::Subscribe(sub)).unwrap(),
            r#"{"Subscribe":{"id":"00000000-0000-0000-0000-000000000003","search":"s.c","scope":"HOST","process":"00000000-0000-0000-0000-000000000004"}}"#
        );
        assert_eq!(
            serde_json::to_string(&Up::Retract { id: PubId(id(2)) }).unwrap(),
            r#"{"Retract":{"id":"00000000-0000-0000-0000-000000000002"}}"#
        );
        let standby = Down::PubStatus {
            id: PubId(id(2)),
            at: Scope::Host,
            state: PubState::Standby {
                holder: ProcessId(id(9)),
            },
        };
        assert_eq!(
            serde_json::to_string(&standby).unwrap(),
            r#"{"PubStatus":{"id":"00000000-0000-0000-0000-000000000002","at":"HOST","state":{"standby":{"holder":"00000000-0000-0000-0000-000000000009"}}}}"#
        );
        let active = Down::PubStatus {
            id: PubId(id(2)),
            at: Scope::Host,
            state: PubState::Active,
        };
        assert!(serde_json::to_string(&active)
            .unwrap()
            .ends_with(r#""state":"active"}}"#));
        let route = Route {
            sub: SubId(id(3)),
            at: Scope::Host,
            publisher: info,
        };
        assert_eq!(
            serde_json::to_string(&Down::Route(route.clone())).unwrap(),
            r#"{"Route":{"sub":"00000000-0000-0000-0000-000000000003","at":"HOST","publisher":{"id":"00000000-0000-0000-0000-000000000002","name":"svc","scope":"HOST","process":"00000000-0000-0000-0000-000000000001","addr":"127.0.0.1:40001"}}}"#
        );
        assert_eq!(
            serde_json::to_string(&Down::RouteCleared(route.key())).unwrap(),
            r#"{"RouteCleared":{"sub":"00000000-0000-0000-0000-000000000003","at":"HOST","publication":"00000000-0000-0000-0000-000000000002","name":"svc"}}"#
        );
        assert_eq!(serde_json::to_string(&Up::Heartbeat).unwrap(), r#""Heartbeat""#);
        assert_eq!(serde_json::to_string(&Down::Heartbeat).unwrap(), r#""Heartbeat""#);
    }

    fn json<T: Serialize>(frame: &T) -> String {
        serde_json::to_string(frame).unwrap()
    }

    #[test]
    fn inspection_frames_have_the_documented_json() {
        assert_eq!(json(&Up::Inspect { query: 1 }), r#"{"Inspect":{"query":1}}"#);
        assert_eq!(
            json(&Up::Ping {
                seq: 2,
                target: ProcessId(id(1))
            }),
            r#"{"Ping":{"seq":2,"target":"00000000-0000-0000-0000-000000000001"}}"#
        );
        assert_eq!(json(&Down::Ping { seq: 7 }), r#"{"Ping":{"seq":7}}"#);
        assert_eq!(json(&Up::Pong { seq: 7 }), r#"{"Pong":{"seq":7}}"#);
        assert_eq!(json(&Down::Pong { seq: 2 }), r#"{"Pong":{"seq":2}}"#);
        assert_eq!(
            json(&Up::AskSessions {
                query: 3,
                target: ProcessId(id(4))
            }),
            r#"{"AskSessions":{"query":3,"target":"00000000-0000-0000-0000-000000000004"}}"#
        );
        assert_eq!(
            json(&Down::AskSessions { query: 8 }),
            r#"{"AskSessions":{"query":8}}"#
        );
        let publisher = PubInfo {
            id: PubId(id(2)),
            name: "svc".into(),
            scope: Scope::Host,
            process: ProcessId(id(1)),
            addr: "127.0.0.1:40001".parse().unwrap(),
        };
        let sessions = vec![SessionInfo {
            session: SessionId(5),
            sub: SubId(id(3)),
            at: Scope::Host,
            publisher,
            open: true,
        }];
        assert_eq!(
            json(&Up::Sessions {
                query: 8,
                sessions: sessions.clone()
            }),
            r#"{"Sessions":{"query":8,"sessions":[{"session":5,"sub":"00000000-0000-0000-0000-000000000003","at":"HOST","publisher":{"id":"00000000-0000-0000-0000-000000000002","name":"svc","scope":"HOST","process":"00000000-0000-0000-0000-000000000001","addr":"127.0.0.1:40001"},"open":true}]}}"#
        );
        let mut hello = Hello::new(PeerKind::Directory, ProcessId(id(9)), Scope::Host, "host-cake");
        hello.listen = Some("127.0.0.1:54195".parse().unwrap());
        let report = DirectoryReport {
            node: TreeNode::from(&hello),
            parent_addr: Some("10.0.0.195:54195".parse().unwrap()),
            parent: None,
            children: vec![ChildReport {
                node: TreeNode {
                    kind: PeerKind::Process,
                    scope: Scope::Process,
                    name: "publisher".into(),
                    id: ProcessId(id(1)),
                    listen: None,
                    role: None,
                },
                publishes: Vec::new(),
                subscribes: Vec::new(),
            }],
        };
        assert_eq!(
            json(&Down::Report { query: 1, report }),
            r#"{"Report":{"query":1,"report":{"node":{"kind":"directory","scope":"HOST","name":"host-cake","id":"00000000-0000-0000-0000-000000000009","listen":"127.0.0.1:54195"},"parent_addr":"10.0.0.195:54195","parent":null,"children":[{"node":{"kind":"process","scope":"PROCESS","name":"publisher","id":"00000000-0000-0000-0000-000000000001"},"publishes":[],"subscribes":[]}]}}}"#
        );
        // A directory's greeting says where it accepts children; a process's says nothing more.
        assert!(serde_json::to_string(&hello)
            .unwrap()
            .ends_with(r#""name":"host-cake","listen":"127.0.0.1:54195"}"#));
    }
}
