//! Engine unit tests. The property test of the whole matching protocol (engines at every
//! level, each process's shipped decisions) is `node/decisions/model_tests.rs`.

use super::*;
use crate::wire::directory::Route;
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
fn a_name_with_whitespace_or_control_characters_is_refused() {
    let mut e = Engine::new(Scope::Host);
    for name in ["a b", "tab\there", "nl\n", "", &"x".repeat(1025)] {
        let mut out = Vec::new();
        e.on_child_frame(
            1,
            Up::Publish(pub_info(name, Scope::Host, ProcessId::random())),
            &mut out,
        );
        assert!(
            matches!(
                &out[..],
                [Output::ToLink(1, Down::PubStatus { state: PubState::Refused { reason }, .. })]
                    if reason.contains("is not a name")
            ),
            "{name:?}: {out:?}"
        );
    }
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
