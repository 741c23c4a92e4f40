//! Property tests: every wire type, with arbitrary field values, survives encoding into a frame
//! and decoding back unchanged, through the same codecs the connections use.

use super::directory::{
    ChildReport, DirectoryReport, Down, PubInfo, PubState, Route, RouteKey, SessionInfo, SubInfo, TreeNode,
    Up,
};
use super::peer::{encode_control, encode_data, DataHeader, Open, PeerMsg};
use super::{Hello, JsonCodec, MessageCodec, PeerKind, MAX_DIRECTORY_FRAME, MAX_SESSION_FRAME};
use crate::ids::{ProcessId, PubId, SessionId, SubId};
use crate::scope::Scope;
use bytes::BytesMut;
use proptest::collection::vec;
use proptest::prelude::*;
use std::net::SocketAddr;
use tokio_util::codec::{Decoder, Encoder};
use uuid::Uuid;

fn scope() -> impl Strategy<Value = Scope> {
    prop_oneof![
        Just(Scope::Process),
        Just(Scope::Group),
        Just(Scope::Host),
        Just(Scope::Lan),
        Just(Scope::Wan),
    ]
}

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

fn process() -> impl Strategy<Value = ProcessId> {
    uuid().prop_map(ProcessId)
}

fn addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
        (any::<[u16; 8]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
    ]
}

/// Any text, including quotes, escapes and characters outside ASCII.
fn text() -> impl Strategy<Value = String> {
    ".{0,40}"
}

fn pub_info() -> impl Strategy<Value = PubInfo> {
    (uuid(), text(), scope(), process(), addr()).prop_map(|(id, name, scope, process, addr)| PubInfo {
        id: PubId(id),
        name,
        scope,
        process,
        addr,
    })
}

fn sub_info() -> impl Strategy<Value = SubInfo> {
    (uuid(), text(), scope(), process()).prop_map(|(id, search, scope, process)| SubInfo {
        id: SubId(id),
        search,
        scope,
        process,
    })
}

fn hello() -> impl Strategy<Value = Hello> {
    (
        prop_oneof![Just(PeerKind::Process), Just(PeerKind::Directory)],
        process(),
        scope(),
        text(),
        proptest::option::of(addr()),
        proptest::option::of(text()),
    )
        .prop_map(|(kind, id, scope, name, listen, role)| {
            let mut h = Hello::new(kind, id, scope, name).with_role(role);
            h.listen = listen;
            h
        })
}

fn tree_node() -> impl Strategy<Value = TreeNode> {
    hello().prop_map(|h| TreeNode::from(&h))
}

fn session_info() -> impl Strategy<Value = SessionInfo> {
    (any::<u64>(), uuid(), scope(), pub_info(), any::<bool>()).prop_map(
        |(session, sub, at, publisher, open)| SessionInfo {
            session: SessionId(session),
            sub: SubId(sub),
            at,
            publisher,
            open,
        },
    )
}

fn report() -> impl Strategy<Value = DirectoryReport> {
    (
        tree_node(),
        proptest::option::of(addr()),
        proptest::option::of(tree_node()),
        vec(
            (tree_node(), vec(pub_info(), 0..3), vec(sub_info(), 0..3)).prop_map(
                |(node, publishes, subscribes)| ChildReport {
                    node,
                    publishes,
                    subscribes,
                },
            ),
            0..4,
        ),
    )
        .prop_map(|(node, parent_addr, parent, children)| DirectoryReport {
            node,
            parent_addr,
            parent,
            children,
        })
}

fn up() -> impl Strategy<Value = Up> {
    prop_oneof![
        pub_info().prop_map(Up::Publish),
        uuid().prop_map(|id| Up::Retract { id: PubId(id) }),
        sub_info().prop_map(Up::Subscribe),
        uuid().prop_map(|id| Up::Unsubscribe { id: SubId(id) }),
        Just(Up::Heartbeat),
        any::<u64>().prop_map(|query| Up::Inspect { query }),
        (any::<u64>(), process()).prop_map(|(seq, target)| Up::Ping { seq, target }),
        any::<u64>().prop_map(|seq| Up::Pong { seq }),
        (any::<u64>(), process()).prop_map(|(query, target)| Up::AskSessions { query, target }),
        (any::<u64>(), vec(session_info(), 0..3))
            .prop_map(|(query, sessions)| Up::Sessions { query, sessions }),
    ]
}

fn pub_state() -> impl Strategy<Value = PubState> {
    prop_oneof![
        Just(PubState::Active),
        process().prop_map(|holder| PubState::Standby { holder }),
        text().prop_map(|reason| PubState::Refused { reason }),
    ]
}

fn down() -> impl Strategy<Value = Down> {
    prop_oneof![
        (uuid(), scope(), pub_state()).prop_map(|(id, at, state)| Down::PubStatus {
            id: PubId(id),
            at,
            state
        }),
        (uuid(), scope(), text()).prop_map(|(id, at, reason)| Down::SubRefused {
            id: SubId(id),
            at,
            reason
        }),
        (uuid(), scope(), pub_info()).prop_map(|(sub, at, publisher)| Down::Route(Route {
            sub: SubId(sub),
            at,
            publisher
        })),
        (uuid(), scope(), uuid(), text()).prop_map(|(sub, at, publication, name)| Down::RouteCleared(
            RouteKey {
                sub: SubId(sub),
                at,
                publication: PubId(publication),
                name
            }
        )),
        Just(Down::Heartbeat),
        (any::<u64>(), report()).prop_map(|(query, report)| Down::Report { query, report }),
        any::<u64>().prop_map(|seq| Down::Ping { seq }),
        any::<u64>().prop_map(|seq| Down::Pong { seq }),
        any::<u64>().prop_map(|query| Down::AskSessions { query }),
        (any::<u64>(), vec(session_info(), 0..3))
            .prop_map(|(query, sessions)| Down::Sessions { query, sessions }),
    ]
}

/// `PeerMsg` control frames (all but `Data`, which borrows its body; tested below).
fn control() -> impl Strategy<Value = PeerMsg<'static>> {
    prop_oneof![
        (any::<u64>(), uuid(), text(), uuid(), scope()).prop_map(
            |(session, publication, name, subscription, at)| {
                PeerMsg::Open(Open {
                    session: SessionId(session),
                    publication: PubId(publication),
                    name,
                    subscription: SubId(subscription),
                    at,
                })
            }
        ),
        any::<u64>().prop_map(|session| PeerMsg::Opened {
            session: SessionId(session)
        }),
        (any::<u64>(), text()).prop_map(|(session, reason)| PeerMsg::Refused {
            session: SessionId(session),
            reason
        }),
        (any::<u64>(), text()).prop_map(|(session, reason)| PeerMsg::Close {
            session: SessionId(session),
            reason
        }),
        Just(PeerMsg::Heartbeat),
    ]
}

/// Encodes `frame` with the codec of one side and decodes it with the other's.
fn through<Out: serde::Serialize, In: serde::de::DeserializeOwned>(frame: Out) -> In {
    let mut buf = BytesMut::new();
    MessageCodec::<Out, In>::new(MAX_DIRECTORY_FRAME)
        .encode(frame, &mut buf)
        .expect("encodes");
    let decoded = MessageCodec::<Out, In>::new(MAX_DIRECTORY_FRAME)
        .decode(&mut buf)
        .expect("decodes")
        .expect("a whole frame");
    assert!(buf.is_empty(), "one frame, all of it read");
    decoded
}

/// The session reader's framing: a 4-byte length, then the body.
fn session_body(buf: &BytesMut) -> &[u8] {
    let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
    assert_eq!(len, buf.len() - 4);
    &buf[4..]
}

proptest! {
    #[test]
    fn every_up_frame_round_trips(frame in up()) {
        prop_assert_eq!(through::<Up, Up>(frame.clone()), frame);
    }

    #[test]
    fn every_down_frame_round_trips(frame in down()) {
        prop_assert_eq!(through::<Down, Down>(frame.clone()), frame);
    }

    #[test]
    fn every_session_control_frame_round_trips(msg in control()) {
        let mut buf = BytesMut::new();
        encode_control(&JsonCodec, &mut buf, MAX_SESSION_FRAME, &msg).unwrap();
        let decoded: PeerMsg<'_> = serde_json::from_slice(session_body(&buf)).unwrap();
        prop_assert_eq!(serde_json::to_string(&decoded).unwrap(), serde_json::to_string(&msg).unwrap());
    }

    /// The hand-written `Data` envelope decodes as the enum, with its body intact, whatever the
    /// type name and the body hold.
    #[test]
    fn every_data_frame_round_trips(
        session in any::<u64>(),
        corr in any::<u64>(),
        reply in any::<u64>(),
        type_name in text(),
        body in vec((text(), any::<f64>().prop_filter("finite", |f| f.is_finite())), 0..4),
    ) {
        let mut buf = BytesMut::new();
        let header = DataHeader { session: SessionId(session), corr, reply, call: corr, type_name: &type_name };
        encode_data(&JsonCodec, &mut buf, MAX_SESSION_FRAME, header, &body).unwrap();
        let decoded: PeerMsg<'_> = serde_json::from_slice(session_body(&buf)).unwrap();
        let PeerMsg::Data(d) = decoded else { panic!("not Data: {decoded:?}") };
        prop_assert_eq!((d.session, d.corr, d.reply, d.call), (SessionId(session), corr, reply, corr));
        prop_assert_eq!(&*d.type_name, type_name.as_str());
        let back: Vec<(String, f64)> = serde_json::from_str(d.body.get()).unwrap();
        prop_assert_eq!(back, body);
    }

    /// A greeting round-trips, and checks out exactly when its magic, version and codec are ours.
    #[test]
    fn every_greeting_round_trips(h in hello(), magic in prop_oneof![Just("layer-cake".to_string()), text()], version in 0u32..3) {
        let mut h = h;
        h.magic = magic;
        h.version = version;
        let back: Hello = serde_json::from_slice::<serde_json::Value>(&super::greeting::body(&h))
            .ok()
            .and_then(|v| serde_json::from_value(v["Hello"].clone()).ok())
            .expect("a greeting decodes");
        prop_assert_eq!(&back, &h);
        let checked = super::greeting::decode(&super::greeting::body(&h));
        prop_assert_eq!(checked.is_ok(), h.magic == super::MAGIC && h.version == super::PROTOCOL_VERSION);
    }
}
