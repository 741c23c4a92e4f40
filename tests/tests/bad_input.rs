//! A directory survives bad input: each offending connection is closed with a logged reason,
//! and the daemon and its other connections carry on. Raw bytes on a socket, loopback only.

use layer_cake::wire::{Hello, PeerKind, MAGIC, PROTOCOL_VERSION};
use layer_cake::{ProcessId, Scope};
use layer_cake_tests::{publisher, subscriber, Daemon, WAIT};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

fn hello_frame(version: u32, magic: &str) -> Vec<u8> {
    let mut hello = Hello::new(PeerKind::Process, ProcessId::random(), Scope::Process, "raw-test");
    hello.version = version;
    hello.magic = magic.to_string();
    frame(&serde_json::to_vec(&serde_json::json!({ "Hello": hello })).unwrap())
}

/// A greeting whose readable name is `len` bytes long.
fn named_hello_frame(len: usize) -> Vec<u8> {
    let mut hello = Hello::new(PeerKind::Process, ProcessId::random(), Scope::Process, "raw-test");
    hello.name = "n".repeat(len);
    frame(&serde_json::to_vec(&serde_json::json!({ "Hello": hello })).unwrap())
}

/// Sends `bytes` and waits for the daemon to close the connection; returns what it sent first.
async fn closed_after(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // A daemon may refuse a frame from its length alone and close while the rest is still
    // being written: the write then fails with a reset, which is the refusal itself.
    let _ = stream.write_all(bytes).await;
    let mut got = Vec::new();
    let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut got)).await;
    assert!(
        read.is_ok(),
        "the daemon kept a bad connection open after {bytes:?}"
    );
    got
}

/// Decodes the frames in `bytes` as JSON values.
fn frames(mut bytes: &[u8]) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        out.push(serde_json::from_slice(&bytes[4..4 + len]).unwrap());
        bytes = &bytes[4 + len..];
    }
    out
}

#[tokio::test]
async fn malformed_oversized_unknown_and_silent_peers_are_cut_off_alone() {
    let host = Daemon::start(
        "host-cake",
        &[
            "--listen",
            "127.0.0.1:0",
            "--handshake-timeout-ms",
            "300",
            "--connect-to-directory",
            layer_cake_tests::NO_DIRECTORY,
        ],
    )
    .await;
    let dir = host.env();
    // A well-behaved pair connected before the abuse starts...
    let mut before = publisher("before", &dir, "steady", "HOST");
    before.expect(&["published", "active"]).await;

    // Garbage in place of a greeting.
    assert!(closed_after(host.addr, &frame(b"{{{{ not json")).await.is_empty());
    // A length far over the maximum: refused from the header alone.
    assert!(closed_after(host.addr, &u32::MAX.to_be_bytes()).await.is_empty());
    // Not layer-cake at all.
    assert!(closed_after(host.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .is_empty());
    // The wrong magic, and a protocol version from the future.
    assert!(
        closed_after(host.addr, &hello_frame(PROTOCOL_VERSION, "not-layer-cake"))
            .await
            .is_empty()
    );
    assert!(closed_after(host.addr, &hello_frame(PROTOCOL_VERSION + 1, MAGIC))
        .await
        .is_empty());
    // A peer that connects and says nothing is closed after the handshake deadline.
    assert!(closed_after(host.addr, b"").await.is_empty());
    // A good greeting followed by an unknown message: greeted, then closed.
    let mut bytes = hello_frame(PROTOCOL_VERSION, MAGIC);
    bytes.extend(frame(br#"{"Bogus":{"x":1}}"#));
    let replies = frames(&closed_after(host.addr, &bytes).await);
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0]["Hello"]["magic"], MAGIC);
    // A good greeting followed by an oversized frame.
    let mut bytes = hello_frame(PROTOCOL_VERSION, MAGIC);
    bytes.extend((2u32 << 20).to_be_bytes());
    bytes.extend(vec![b' '; 1024]);
    assert_eq!(frames(&closed_after(host.addr, &bytes).await).len(), 1);

    // The daemon and the earlier connection are unharmed: a new subscriber finds the old publisher.
    let mut sub = subscriber("after", &dir, "steady", "HOST");
    sub.expect(&["available steady HOST"]).await;
    sub.expect(&["reply steady"]).await;
}

/// A greeting is bounded at a size that fits a name (`MAX_GREETING`), and its name at
/// `MAX_PEER_NAME` bytes, on directories and session ports alike: two processes greeting with
/// megabyte names once made every report of the host's directory too large to send, and
/// `layer-cake network` and `ping` failed for the whole host.
#[tokio::test]
async fn greetings_with_huge_names_are_refused_and_the_tree_still_answers() {
    use layer_cake::wire::{MAX_GREETING, MAX_PEER_NAME};
    let host = Daemon::start(
        "host-cake",
        &[
            "--listen",
            "127.0.0.1:0",
            "--connect-to-directory",
            layer_cake_tests::NO_DIRECTORY,
        ],
    )
    .await;
    for len in [1_000_000, 1_000_000, MAX_GREETING, MAX_PEER_NAME + 1] {
        let replies = closed_after(host.addr, &named_hello_frame(len)).await;
        assert!(replies.is_empty(), "a {len}-byte name was greeted back");
    }
    // The longest name allowed is greeted.
    let mut ok = TcpStream::connect(host.addr).await.unwrap();
    ok.write_all(&named_hello_frame(MAX_PEER_NAME)).await.unwrap();
    let mut len = [0u8; 4];
    tokio::time::timeout(WAIT, ok.read_exact(&mut len))
        .await
        .unwrap()
        .unwrap();
    // And the tree is reported, that long name in it.
    let out = tokio::process::Command::new(layer_cake_tests::bin("layer-cake"))
        .args(["network", "--json", "--directory", &host.addr.to_string()])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(WAIT, out)
        .await
        .expect("network answers")
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tree: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = tree["root"]["children"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(names.contains(&"n".repeat(MAX_PEER_NAME).as_str()), "{names:?}");
}

#[tokio::test]
async fn a_publishers_session_port_also_shrugs_off_bad_input() {
    let host = Daemon::host_cake().await;
    let dir = host.env();
    let mut p = publisher("p", &dir, "gamma", "HOST");
    p.expect(&["published", "active"]).await;
    let mut sub = subscriber("sub", &dir, "gamma", "HOST");
    let line = sub.expect(&["available gamma"]).await;
    let session_addr: SocketAddr = layer_cake_tests::field(&line, "addr").parse().unwrap();
    assert!(closed_after(session_addr, &frame(b"nonsense")).await.is_empty());
    assert!(closed_after(session_addr, &u32::MAX.to_be_bytes())
        .await
        .is_empty());
    assert!(closed_after(session_addr, &named_hello_frame(1_000_000))
        .await
        .is_empty());
    // The publisher still serves: a second subscriber gets a session and a reply.
    let mut sub2 = subscriber("sub2", &dir, "gamma", "HOST");
    sub2.expect(&["reply gamma"]).await;
}

/// GROUP and HOST directories serve their own host only: asked to listen anywhere but
/// loopback, they refuse to start, and say why. (Should the guard ever regress, the daemon is
/// killed at the deadline rather than left to hang the test.)
#[tokio::test]
async fn host_and_group_directories_refuse_to_listen_beyond_loopback() {
    for (program, scope) in [("host-cake", "HOST"), ("group-cake", "GROUP")] {
        let out = tokio::process::Command::new(layer_cake_tests::bin(program))
            .args([
                "--listen",
                "0.0.0.0:0",
                "--connect-to-directory",
                layer_cake_tests::NO_DIRECTORY,
            ])
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(WAIT, out)
            .await
            .unwrap_or_else(|_| panic!("{program} did not refuse within {WAIT:?}"))
            .expect("runs");
        assert!(!out.status.success(), "{program} started on 0.0.0.0");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "a {scope} directory serves this host only: listen on loopback (127.0.0.1), not 0.0.0.0:0"
            )),
            "{program}: {err}"
        );
        assert!(out.stdout.is_empty(), "{program} said it was listening");
    }
}
