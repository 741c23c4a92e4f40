//! One cycle of churn, for the leak test (`tests/churn.rs`) and the soak benchmark
//! (`benches/soak.rs`): a process joins a directory, publishes, subscribes, opens a session
//! with a long-lived publisher demo, exchanges a request, and goes.

use crate::WAIT;
use layer_cake::{Node, NodeConfig, Scope, SubscriptionEvent};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// The publisher demo's request (matched by type name).
#[derive(Debug, Serialize, Deserialize)]
pub struct Ping {
    /// Echoed back.
    pub seq: u64,
    /// Echoed back.
    pub text: String,
}
layer_cake::message!(Ping);

/// The publisher demo's answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct Pong {
    /// The request's `seq`.
    pub seq: u64,
    /// The request's `text`.
    pub text: String,
    /// The name the publisher published.
    pub name: String,
    /// The publisher's pid.
    pub pid: u32,
}
layer_cake::message!(Pong);

/// One cycle at `scope` through the directory at `directory`, where a publisher demo
/// publishes `anchor`: join, publish `churn:<i>`, subscribe to `anchor`, one request on the
/// session, go. Panics (with what went wrong) if any step fails within the harness deadline.
pub async fn cycle(directory: SocketAddr, scope: Scope, anchor: &str, i: u64) {
    let n = Node::with_config(NodeConfig::new(Some(directory), "churn"))
        .await
        .expect("the node starts");
    let _publication = n.publish(&format!("churn:{i}"), scope).await.expect("publishes");
    let mut sub = n.subscribe(anchor, scope).await.expect("subscribes");
    let session = loop {
        match tokio::time::timeout(WAIT, sub.next()).await {
            Ok(Some(SubscriptionEvent::Available(s))) => break s,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the subscription ended"),
            Err(_) => panic!("no session with {anchor} within {WAIT:?}"),
        }
    };
    let pong: Pong = session
        .request(
            &Ping {
                seq: i,
                text: "churn".into(),
            },
            WAIT,
        )
        .await
        .expect("the anchor answers");
    assert_eq!(pong.seq, i);
    n.stop();
}
