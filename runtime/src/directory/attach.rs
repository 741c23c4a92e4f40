//! Attachments: the subscriber side of matching, a pure state machine.
//!
//! A subscriber's process receives [`Route`]s from every directory level that matched one of its
//! subscriptions. For each (subscription, name) it keeps every route it was given and holds at
//! most one session, with the publisher of the **nearest** usable route:
//! - no session yet: open the nearest route;
//! - a nearer route appears while attached to a wider one: close the session and open the
//!   nearer one (**upgrade**);
//! - a wider route appears: nothing changes;
//! - the session ends (its publisher went, or retracted): open the nearest remaining route
//!   (**fallback**); a route cleared by a directory does not end a live session.
//!
//! Inputs are routes, route clearances and session outcomes; outputs are [`Action`]s for the
//! process to carry out (open, close) and the events for the application
//! ([`Action::Available`], [`Action::Dropped`]).

use crate::ids::{ProcessId, PubId, SessionId, SubId};
use crate::scope::Scope;
use crate::wire::directory::{PubInfo, Route, RouteKey};
use std::collections::HashMap;

/// What the attachment state asks of its process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Connect to `publisher` (if not already) and open `session` with it.
    Open {
        /// The new session's id.
        session: SessionId,
        /// The subscription it is for.
        sub: SubId,
        /// The scope of the route it follows.
        at: Scope,
        /// The publication.
        publisher: PubInfo,
    },
    /// Close `session` (tell the publisher). An open one was also reported [`Action::Dropped`].
    Close {
        /// The session.
        session: SessionId,
        /// The publisher's process.
        process: ProcessId,
        /// Why, for the publisher.
        reason: crate::node::DropReason,
    },
    /// Tell the application: a session is open.
    Available {
        /// The session.
        session: SessionId,
        /// The subscription.
        sub: SubId,
        /// The scope of the route.
        at: Scope,
        /// The publication.
        publisher: PubInfo,
    },
    /// Tell the application: a session it was told of is over.
    Dropped {
        /// The session.
        session: SessionId,
        /// The subscription.
        sub: SubId,
        /// The scope of the route.
        at: Scope,
        /// The publication.
        publisher: PubInfo,
        /// Why.
        reason: String,
    },
}

#[derive(Debug)]
struct Candidate {
    at: Scope,
    publisher: PubInfo,
    /// A session over this route failed; skip it until the route is given again (or a retry).
    broken: bool,
}

#[derive(Debug)]
struct Current {
    session: SessionId,
    at: Scope,
    publisher: PubInfo,
    /// `Available` was reported (the publisher accepted).
    open: bool,
}

#[derive(Debug, Default)]
struct NameState {
    routes: Vec<Candidate>,
    current: Option<Current>,
}

/// Every (subscription, name) of one process and the session each holds. See the
/// [module docs](self).
#[derive(Debug, Default)]
pub struct Attachments {
    names: HashMap<(SubId, String), NameState>,
    sessions: HashMap<SessionId, (SubId, String)>,
    next_session: u64,
}

impl Attachments {
    /// No subscriptions yet.
    pub fn new() -> Attachments {
        Attachments::default()
    }

    /// The session held for `(sub, name)`, if any, and whether it is open.
    pub fn current(&self, sub: SubId, name: &str) -> Option<(SessionId, Scope, PubId, bool)> {
        let state = self.names.get(&(sub, name.to_string()))?;
        state
            .current
            .as_ref()
            .map(|c| (c.session, c.at, c.publisher.id, c.open))
    }

    /// Every session held (opening or open), with its subscription and publication.
    pub fn sessions(&self) -> impl Iterator<Item = (SessionId, SubId, &PubInfo, bool)> + '_ {
        self.names.iter().filter_map(|((sub, _), state)| {
            state
                .current
                .as_ref()
                .map(|c| (c.session, *sub, &c.publisher, c.open))
        })
    }

    /// Every session held, in the wire's terms, ordered by subscription then name (what a
    /// process answers [`Down::AskSessions`](crate::wire::directory::Down::AskSessions) with).
    pub fn describe(&self) -> Vec<crate::wire::directory::SessionInfo> {
        let mut held: Vec<_> = self
            .names
            .iter()
            .filter_map(|((sub, name), state)| {
                let c = state.current.as_ref()?;
                Some((
                    (sub.0, name),
                    crate::wire::directory::SessionInfo {
                        session: c.session,
                        sub: *sub,
                        at: c.at,
                        publisher: c.publisher.clone(),
                        open: c.open,
                    },
                ))
            })
            .collect();
        held.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        held.into_iter().map(|(_, info)| info).collect()
    }

    /// A directory matched `route.sub` to a publication.
    pub fn route(&mut self, route: Route, out: &mut Vec<Action>) {
        let key = (route.sub, route.publisher.name.clone());
        let state = self.names.entry(key.clone()).or_default();
        match state
            .routes
            .iter_mut()
            .find(|c| c.at == route.at && c.publisher.id == route.publisher.id)
        {
            Some(c) => {
                c.broken = false;
                c.publisher = route.publisher.clone();
            }
            None => state.routes.push(Candidate {
                at: route.at,
                publisher: route.publisher.clone(),
                broken: false,
            }),
        }
        if let Some(current) = &mut state.current {
            if current.publisher.id == route.publisher.id {
                current.at = current.at.min(route.at);
                return;
            }
            if route.at >= current.at {
                return;
            }
            // Upgrade: a nearer publisher appeared.
            let current = state.current.take().expect("checked above");
            self.sessions.remove(&current.session);
            Self::end(route.sub, current, crate::node::DropReason::Upgraded, out);
        }
        self.open_best(&key, out);
    }

    /// A directory's match no longer holds. A live session over it carries on.
    pub fn route_cleared(&mut self, key: &RouteKey, out: &mut Vec<Action>) {
        let k = (key.sub, key.name.clone());
        if let Some(state) = self.names.get_mut(&k) {
            state
                .routes
                .retain(|c| !(c.at == key.at && c.publisher.id == key.publication));
            if state.routes.is_empty() && state.current.is_none() {
                self.names.remove(&k);
            }
        }
        let _ = out;
    }

    /// The publisher accepted `session`.
    pub fn opened(&mut self, session: SessionId, out: &mut Vec<Action>) {
        let Some(key) = self.sessions.get(&session) else {
            return;
        };
        let state = self.names.get_mut(key).expect("session's name is tracked");
        if let Some(c) = state.current.as_mut().filter(|c| c.session == session && !c.open) {
            c.open = true;
            out.push(Action::Available {
                session,
                sub: key.0,
                at: c.at,
                publisher: c.publisher.clone(),
            });
        }
    }

    /// `session` could not be opened, or ended after opening. Its route is skipped from now on
    /// (until given again, or [`retry`](Self::retry)) and the nearest other route is opened.
    pub fn ended(&mut self, session: SessionId, reason: &str, out: &mut Vec<Action>) {
        let Some(key) = self.sessions.remove(&session) else {
            return;
        };
        let state = self.names.get_mut(&key).expect("session's name is tracked");
        let Some(current) = state.current.take() else {
            return;
        };
        for c in state
            .routes
            .iter_mut()
            .filter(|c| c.publisher.id == current.publisher.id)
        {
            c.broken = true;
        }
        if current.open {
            out.push(Action::Dropped {
                session,
                sub: key.0,
                at: current.at,
                publisher: current.publisher,
                reason: reason.to_string(),
            });
        }
        self.open_best(&key, out);
        if self
            .names
            .get(&key)
            .is_some_and(|s| s.current.is_none() && s.routes.is_empty())
        {
            self.names.remove(&key);
        }
    }

    /// How many (subscription, name) pairs are tracked (for tests: nothing leaks).
    pub fn tracked(&self) -> usize {
        self.names.len()
    }

    /// The connection to `process` is gone: every session with it has ended, and every route
    /// to it is skipped until given again.
    pub fn process_lost(&mut self, process: ProcessId, reason: &str, out: &mut Vec<Action>) {
        for state in self.names.values_mut() {
            for c in state.routes.iter_mut().filter(|c| c.publisher.process == process) {
                c.broken = true;
            }
        }
        let mut ended: Vec<SessionId> = self
            .sessions()
            .filter(|(_, _, p, _)| p.process == process)
            .map(|(s, _, _, _)| s)
            .collect();
        ended.sort_unstable();
        for session in ended {
            self.ended(session, reason, out);
        }
    }

    /// Tries again every (subscription, name) left with routes but no session, in case the
    /// failures that broke its routes have passed.
    pub fn retry(&mut self, out: &mut Vec<Action>) {
        let idle: Vec<(SubId, String)> = self
            .names
            .iter()
            .filter(|(_, s)| s.current.is_none() && !s.routes.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        for key in idle {
            for c in &mut self.names.get_mut(&key).expect("listed above").routes {
                c.broken = false;
            }
            self.open_best(&key, out);
        }
    }

    /// Are there names with routes but no session (so [`retry`](Self::retry) has work)?
    pub fn has_idle(&self) -> bool {
        self.names
            .values()
            .any(|s| s.current.is_none() && !s.routes.is_empty())
    }

    /// The application withdrew `sub`: close its sessions, forget its routes.
    pub fn unsubscribe(&mut self, sub: SubId, out: &mut Vec<Action>) {
        let keys: Vec<(SubId, String)> = self.names.keys().filter(|k| k.0 == sub).cloned().collect();
        for key in keys {
            let state = self.names.remove(&key).expect("listed above");
            if let Some(c) = state.current {
                self.sessions.remove(&c.session);
                out.push(Action::Close {
                    session: c.session,
                    process: c.publisher.process,
                    reason: crate::node::DropReason::Cleared,
                });
            }
        }
    }

    fn end(sub: SubId, current: Current, reason: crate::node::DropReason, out: &mut Vec<Action>) {
        let text = reason.to_string();
        out.push(Action::Close {
            session: current.session,
            process: current.publisher.process,
            reason,
        });
        if current.open {
            out.push(Action::Dropped {
                session: current.session,
                sub,
                at: current.at,
                publisher: current.publisher,
                reason: text,
            });
        }
    }

    fn open_best(&mut self, key: &(SubId, String), out: &mut Vec<Action>) {
        let Some(state) = self.names.get_mut(key) else {
            return;
        };
        if state.current.is_some() {
            return;
        }
        // Nearest first; among equals, the first given.
        let Some(best) = state.routes.iter().filter(|c| !c.broken).min_by_key(|c| c.at) else {
            return;
        };
        self.next_session += 1;
        let session = SessionId(self.next_session);
        let (at, publisher) = (best.at, best.publisher.clone());
        state.current = Some(Current {
            session,
            at,
            publisher: publisher.clone(),
            open: false,
        });
        self.sessions.insert(session, key.clone());
        out.push(Action::Open {
            session,
            sub: key.0,
            at,
            publisher,
        });
    }
}
