//! Session connections begun: dialling a publisher's process, and accepting the connections of
//! subscribers' processes. Both hand the greeted connection to the node as a [`Note`].

use super::conn::Conn;
use super::connection::{new_conn, Starter};
use super::task::{Note, ToNode};
use crate::ids::ProcessId;
use crate::secure::Secret;
use crate::wire::opening::{self, next_connection, Opened};
use crate::wire::{Hello, HANDSHAKE_TIMEOUT};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tracing::{warn, Instrument};

/// How long a publisher's process has to answer a new connection.
pub(crate) const DIAL_TIMEOUT: Duration = Duration::from_secs(3);

/// Connects to the publisher's process at `addr`, which must be process `expected`, and tells
/// the node how it went.
pub(crate) async fn dial_publisher(
    to_node: ToNode,
    addr: SocketAddr,
    expected: ProcessId,
    hello: Hello,
    secret: Option<Secret>,
) {
    // An unspecified address (`0.0.0.0:<port>`): a publisher on this host listening on every
    // interface; reach it over loopback.
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let note = match opening::dial(addr, &hello, secret.as_ref(), DIAL_TIMEOUT).await {
        Ok((_, remote)) if remote.id != expected => Note::ConnectFailed {
            remote: expected,
            reason: format!(
                "{addr} is now process {} ({}), not {}",
                remote.id.short(),
                remote.name,
                expected.short()
            ),
        },
        Ok((stream, remote)) => {
            let (conn, starter) = hand_over(&to_node, stream, &remote, addr);
            Note::Connected(conn, starter)
        }
        Err(e) => Note::ConnectFailed {
            remote: expected,
            reason: e.to_string(),
        },
    };
    to_node.note(note);
}

/// Accepts session connections on `listener` until the node stops; with a `secret` (the LAN
/// listener of an encrypted LAN), each that comes from another host must pass the Noise
/// handshake first.
pub(crate) async fn accept_sessions(
    listener: TcpListener,
    hello: Hello,
    to_node: ToNode,
    secret: Option<Secret>,
) {
    loop {
        let (stream, addr) = tokio::select! {
            _ = to_node.shutdown.cancelled() => return,
            a = next_connection(&listener, "session") => a,
        };
        let (hello, to_node, secret) = (hello.clone(), to_node.clone(), secret.clone());
        let greeted = async move {
            match opening::accept(stream, addr, &hello, secret.as_ref(), HANDSHAKE_TIMEOUT).await {
                Ok((stream, remote)) => {
                    let (conn, starter) = hand_over(&to_node, stream, &remote, addr);
                    to_node.note(Note::Inbound(conn, starter));
                }
                Err(e) => warn!(%addr, reason = %e.reason(), "refused a session connection"),
            }
        };
        tokio::spawn(greeted.in_current_span());
    }
}

/// A greeted connection, made into the node's connection (not yet started: the node
/// registers it first).
fn hand_over(to_node: &ToNode, stream: Opened, remote: &Hello, addr: SocketAddr) -> (Arc<Conn>, Starter) {
    new_conn(to_node.next_conn_id(), stream, remote, addr, to_node.clone())
}
