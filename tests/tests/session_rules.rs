//! The session protocol's rules, held by a real node against a raw client on its socket and
//! against itself: nothing a peer sends is dropped without an error it can see, and one bad
//! message fails only itself.

use bytes::{Buf, BytesMut};
use layer_cake::wire::{Hello, PeerKind};
use layer_cake::{
    FailKind, Node, NodeConfig, ProcessId, Publication, PublicationEvent, RequestError, Scope, SendError,
    Session, SubscriptionEvent,
};
use layer_cake_tests::WAIT;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Xy {
    x: usize,
    y: usize,
}
layer_cake::message!(Xy);

async fn node() -> Node {
    Node::with_config(NodeConfig::new(None, "rules-test"))
        .await
        .unwrap()
}

/// Answers every `Xy` request with `x * y`, for ever.
fn multiply(mut publication: Publication) {
    tokio::spawn(async move {
        while let Some(event) = publication.next().await {
            if let PublicationEvent::Message(m) = event {
                if let Ok(xy) = m.decode::<Xy>() {
                    let _ = m.reply(&(xy.x * xy.y)).await;
                }
            }
        }
    });
}

fn frame(json: &str) -> Vec<u8> {
    let mut out = (json.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(json.as_bytes());
    out
}

/// A raw client on a publisher's session listener, greeted.
struct Raw {
    stream: TcpStream,
    buf: BytesMut,
}

impl Raw {
    async fn connect(node: &Node) -> Raw {
        let mut stream = TcpStream::connect(node.session_addr()).await.unwrap();
        let hello = Hello::new(
            PeerKind::Process,
            ProcessId::random(),
            Scope::Process,
            "raw-client",
        );
        let json = serde_json::json!({ "Hello": hello }).to_string();
        stream.write_all(&frame(&json)).await.unwrap();
        let mut raw = Raw {
            stream,
            buf: BytesMut::new(),
        };
        let greeting = raw.next().await;
        assert!(greeting["Hello"]["magic"] == "layer-cake", "{greeting}");
        raw
    }

    /// The next frame, as JSON.
    async fn next(&mut self) -> serde_json::Value {
        let read = async {
            loop {
                if self.buf.len() >= 4 {
                    let len = u32::from_be_bytes(self.buf[..4].try_into().unwrap()) as usize;
                    if self.buf.len() >= 4 + len {
                        self.buf.advance(4);
                        let body = self.buf.split_to(len);
                        return serde_json::from_slice(&body).unwrap();
                    }
                }
                assert!(
                    self.stream.read_buf(&mut self.buf).await.unwrap() > 0,
                    "closed by the node"
                );
            }
        };
        tokio::time::timeout(WAIT, read).await.expect("a frame in time")
    }

    fn open(session: u64, publication: &Publication) -> String {
        format!(
            r#"{{"Open":{{"session":{session},"publication":"{}","name":"{}","subscription":"00000000-0000-0000-0000-000000000001","at":"PROCESS"}}}}"#,
            publication.id(),
            publication.name()
        )
    }

    fn request(session: u64, corr: u64, x: usize) -> String {
        format!(r#"{{"Data":{{"session":{session},"corr":{corr},"type":"Xy","body":{{"x":{x},"y":2}}}}}}"#)
    }
}

/// A subscriber may send right after its `Open`: every request written in the same write as
/// the `Open` is answered, and `Opened` comes before any reply.
#[tokio::test]
async fn requests_sent_with_the_open_are_all_answered_after_opened() {
    let n = node().await;
    let publication = n.publish("rules:multiply", Scope::Process).await.unwrap();
    let mut raw = Raw::connect(&n).await;
    let mut bytes = frame(&Raw::open(1, &publication));
    for corr in 1..=40 {
        bytes.extend(frame(&Raw::request(1, corr, corr as usize)));
    }
    multiply(publication);
    raw.stream.write_all(&bytes).await.unwrap();
    assert_eq!(raw.next().await, serde_json::json!({"Opened": {"session": 1}}));
    let mut answered = std::collections::BTreeMap::new();
    while answered.len() < 40 {
        let reply = raw.next().await;
        let data = &reply["Data"];
        assert_eq!(data["type"], "int", "{reply}");
        answered.insert(data["reply"].as_u64().unwrap(), data["body"].as_u64().unwrap());
    }
    assert!(
        answered.iter().all(|(corr, product)| *product == corr * 2),
        "{answered:?}"
    );
}

/// A malformed message fails only itself: the sender hears `Failed` for it, and the other
/// session on the same connection, and the same session, go on.
#[tokio::test]
async fn one_malformed_message_fails_only_itself() {
    let n = node().await;
    let publication = n.publish("rules:bad", Scope::Process).await.unwrap();
    let mut raw = Raw::connect(&n).await;
    let mut bytes = frame(&Raw::open(1, &publication));
    bytes.extend(frame(&Raw::open(2, &publication)));
    multiply(publication);
    raw.stream.write_all(&bytes).await.unwrap();
    raw.next().await;
    raw.next().await;
    let mut bytes = frame(r#"{"Data":{"session":1,"corr":null,"type":"Xy","body":{"x":1,"y":2}}}"#);
    bytes.extend(frame(
        r#"{"Data":{"session":1,"corr":5,"type":"Xy","body":"not an Xy"}}"#,
    ));
    bytes.extend(frame(&Raw::request(2, 6, 3)));
    bytes.extend(frame(&Raw::request(1, 7, 4)));
    raw.stream.write_all(&bytes).await.unwrap();
    let failed = raw.next().await;
    assert_eq!(failed["Failed"]["session"], 1, "{failed}");
    assert_eq!(
        (&failed["Failed"]["reply"], &failed["Failed"]["kind"]),
        (&0.into(), &"malformed".into())
    );
    // The publisher could not decode the second as an Xy, and said so.
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(raw.next().await);
    }
    let undecodable = seen
        .iter()
        .find(|f| f["Failed"]["reply"] == 5)
        .expect("a Failed for corr 5");
    assert_eq!(undecodable["Failed"]["kind"], "undecodable", "{undecodable}");
    let replies: Vec<(u64, u64)> = seen
        .iter()
        .filter_map(|f| Some((f["Data"]["reply"].as_u64()?, f["Data"]["body"].as_u64()?)))
        .collect();
    assert!(replies.contains(&(6, 6)) && replies.contains(&(7, 8)), "{seen:?}");
}

/// A session with this very process, and the publisher's side of it.
async fn pair(n: &Node, name: &str) -> (Session, Publication, layer_cake::Subscription) {
    let mut publication = n.publish(name, Scope::Process).await.unwrap();
    let mut subscription = n.subscribe(name, Scope::Process).await.unwrap();
    let session = match tokio::time::timeout(WAIT, subscription.next()).await.unwrap() {
        Some(SubscriptionEvent::Available(s)) => s,
        other => panic!("expected Available, got {other:?}"),
    };
    match tokio::time::timeout(WAIT, publication.next()).await.unwrap() {
        Some(PublicationEvent::Delivered(_)) => {}
        other => panic!("expected Delivered, got {other:?}"),
    }
    (session, publication, subscription)
}

async fn next_request(publication: &mut Publication) -> layer_cake::Incoming {
    loop {
        match tokio::time::timeout(WAIT, publication.next()).await.unwrap() {
            Some(PublicationEvent::Message(m)) => return m,
            Some(_) => continue,
            None => panic!("publication ended"),
        }
    }
}

/// A reply over the frame limit fails at once on both sides, with typed errors; a request the
/// publisher cannot decode, or drops, is answered with a failure.
#[tokio::test]
async fn requests_that_cannot_be_answered_fail_at_once() {
    let n = node().await;
    let (session, mut publication, _subscription) = pair(&n, "rules:fail").await;
    let long = Duration::from_secs(60);

    let asking = tokio::spawn({
        let s = session.clone();
        async move { s.request::<_, String>(&Xy { x: 1, y: 1 }, long).await }
    });
    let m = next_request(&mut publication).await;
    let huge = "x".repeat(layer_cake::wire::MAX_SESSION_FRAME);
    let sent = m.reply(&huge).await.unwrap_err();
    assert!(matches!(sent, SendError::TooLarge { .. }), "{sent}");
    match asking.await.unwrap().unwrap_err() {
        RequestError::Failed { kind, reason } => {
            assert_eq!(kind, FailKind::ReplyUnsendable);
            assert!(reason.contains("frame limit"), "{reason}");
        }
        other => panic!("expected Failed, got {other}"),
    }

    let asking = tokio::spawn({
        let s = session.clone();
        async move { s.request::<_, String>(&"not an Xy", long).await }
    });
    let m = next_request(&mut publication).await;
    assert!(m.decode::<Xy>().is_err());
    drop(m);
    match asking.await.unwrap().unwrap_err() {
        RequestError::Failed { kind, reason } => {
            assert_eq!(kind, FailKind::Undecodable);
            assert!(reason.contains("cannot decode string as Xy"), "{reason}");
        }
        other => panic!("expected Failed, got {other}"),
    }

    let asking = tokio::spawn({
        let s = session.clone();
        async move { s.request::<_, String>(&Xy { x: 2, y: 2 }, long).await }
    });
    drop(next_request(&mut publication).await);
    let err = asking.await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::Failed {
                kind: FailKind::Unanswered,
                ..
            }
        ),
        "{err}"
    );
}

#[derive(Debug)]
struct Explodes;
impl Serialize for Explodes {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        panic!("this Serialize panics")
    }
}
layer_cake::message!(Explodes);

/// A message whose `Serialize` panics takes down only the task that sent it: no lock is held
/// while user code runs, so the connection and its other sessions carry on.
#[tokio::test]
async fn a_panicking_serialize_harms_nothing_else() {
    let n = node().await;
    let (session, publication, _subscription) = pair(&n, "rules:panic").await;
    multiply(publication);
    let s = session.clone();
    let crashed = tokio::spawn(async move { s.send(&Explodes).await }).await;
    assert!(crashed.unwrap_err().is_panic());
    let product: usize = session.request(&Xy { x: 6, y: 7 }, WAIT).await.unwrap();
    assert_eq!(product, 42);
}

/// Session 0 is never a session: an `Open` for it is refused, and `Data` on it (a probe) is
/// answered with `Failed` at once, which tells the sender the process is running.
#[tokio::test]
async fn session_zero_is_a_probe_not_a_session() {
    let n = node().await;
    let publication = n.publish("rules:probe", Scope::Process).await.unwrap();
    let mut raw = Raw::connect(&n).await;
    raw.stream
        .write_all(&frame(&Raw::open(0, &publication)))
        .await
        .unwrap();
    let refused = raw.next().await;
    assert_eq!(refused["Refused"]["session"], 0, "{refused}");
    let probe = r#"{"Data":{"session":0,"corr":9,"type":"probe","body":null}}"#;
    raw.stream.write_all(&frame(probe)).await.unwrap();
    let answer = raw.next().await;
    assert_eq!(answer["Failed"]["session"], 0, "{answer}");
    assert_eq!(answer["Failed"]["reply"], 9, "{answer}");
    assert_eq!(answer["Failed"]["kind"], "undeliverable", "{answer}");
}
