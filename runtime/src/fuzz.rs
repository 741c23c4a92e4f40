//! Entry points for the fuzz targets (`fuzz/`, run with `cargo +nightly fuzz run TARGET`) and
//! for the test that replays their committed corpora on every `cargo test`. Not part of the
//! API: each takes arbitrary bytes, feeds them to the real decoders the way a connection would,
//! and panics only if an invariant breaks. Bad input must come back as an error, never as a
//! panic, a hang, or an allocation beyond the connection's frame bound.

use crate::directory::{Engine, Output};
use crate::scope::Scope;
use crate::wire::directory::{Down, Up};
use crate::wire::peer::{decode_frame, PeerMsg};
use crate::wire::{Hello, MessageCodec, WireError, MAX_DIRECTORY_FRAME, MAX_SESSION_FRAME};
use bytes::BytesMut;
#[cfg(feature = "http")]
use serde::{Deserialize, Serialize};
use tokio_util::codec::{Decoder, LengthDelimitedCodec};

/// One fuzz target: arbitrary bytes in, a panic only if an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target, by the name of its folder under `fuzz/corpus/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("directory_up", directory_up),
    ("directory_down", directory_down),
    ("session", session),
    ("handshake", handshake),
    ("noise", noise),
    #[cfg(feature = "http")]
    ("http_query", http_query),
];

/// Decodes frames from `data` with `codec` until it wants more bytes or refuses one; calls
/// `each` with every frame decoded. Checks that nothing was buffered past the frame bound.
fn frames<T>(
    mut codec: impl Decoder<Item = T, Error = WireError>,
    data: &[u8],
    max: usize,
    mut each: impl FnMut(T),
) {
    let mut buf = BytesMut::from(data);
    loop {
        match codec.decode(&mut buf) {
            Ok(Some(frame)) => each(frame),
            Ok(None) | Err(_) => break,
        }
        // A length prefix may make the codec reserve room for its frame, never more.
        assert!(
            buf.capacity() <= data.len().max(max + 4) + 4,
            "buffered {} bytes",
            buf.capacity()
        );
    }
}

/// What a directory reads from its children: `Up` frames, fed to a HOST engine from three
/// links in turn. Once every link is gone, the engine must hold nothing.
pub fn directory_up(data: &[u8]) {
    let mut engine = Engine::new(Scope::Host);
    let mut out: Vec<Output> = Vec::new();
    let mut n = 0u64;
    frames(
        MessageCodec::<Down, Up>::new(MAX_DIRECTORY_FRAME),
        data,
        MAX_DIRECTORY_FRAME,
        |frame| {
            n += 1;
            engine.on_child_frame(n % 3 + 1, frame, &mut out);
            out.clear();
        },
    );
    for link in 1..=3 {
        engine.link_lost(link, &mut out);
    }
    assert_eq!(engine.counts(), (0, 0), "listings outlived their links");
}

/// What a process (or lower directory) reads from its directory: `Down` frames, fed to a
/// GROUP engine's parent side and to a process's own decisions (the node's core, with a
/// subscription that matches everything).
pub fn directory_down(data: &[u8]) {
    let mut engine = Engine::new(Scope::Group);
    let mut core = crate::node::NodeCore::new(true);
    let mut out = Vec::new();
    engine.parent_connected(&mut out);
    core.parent_connected();
    let everything = crate::wire::directory::SubInfo {
        id: crate::ids::SubId::random(),
        search: ".*".into(),
        scope: Scope::Lan,
        process: crate::ids::ProcessId::random(),
    };
    core.subscribe(everything).expect("a valid search");
    frames(
        MessageCodec::<Up, Down>::new(MAX_DIRECTORY_FRAME),
        data,
        MAX_DIRECTORY_FRAME,
        |frame| {
            core.parent_frame(frame.clone());
            core.effects().for_each(drop);
            engine.on_parent_frame(frame, &mut out);
            out.clear();
        },
    );
    engine.parent_lost(&mut out);
    core.parent_lost();
    core.effects().for_each(drop);
}

/// What a session connection reads: length-prefixed `PeerMsg` frames, decoded by the very
/// function the connection's task uses ([`decode_frame`]).
pub fn session(data: &[u8]) {
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(MAX_SESSION_FRAME)
        .new_codec();
    let mut buf = BytesMut::from(data);
    let mut codec = codec;
    while let Ok(Some(frame)) = codec.decode(&mut buf) {
        // The fast reading of a Data frame agrees with the general decoder.
        crate::wire::peer::check_fast_reading(&frame);
        match decode_frame(&frame) {
            Ok(PeerMsg::Data(d)) => {
                // The body is valid JSON, inside the frame, and so is the type name.
                let _: &serde_json::value::RawValue =
                    serde_json::from_str(d.body.get()).expect("a decoded body re-parses");
                let within = |s: &str| {
                    let start = s.as_ptr() as usize;
                    let base = frame.as_ptr() as usize;
                    start >= base && start + s.len() <= base + frame.len()
                };
                assert!(
                    within(d.body.get()) && within(&d.type_name),
                    "borrowed from the frame"
                );
            }
            Ok(_) => {}
            // A bad frame that names a session fails only that session's message.
            Err(bad) => assert!(bad.corr.is_none() || bad.session.is_some()),
        }
    }
}

/// A greeting, read by the very exchange every connection begins with
/// ([`crate::wire::greeting::exchange`], as the accepting side): what it accepts survives a
/// round trip; anything else is an error, never a panic or a hang.
pub fn handshake(data: &[u8]) {
    use crate::wire::greeting::{exchange, Side};
    use tokio::io::AsyncWriteExt;
    let ours = Hello::new(
        crate::wire::PeerKind::Directory,
        crate::ids::ProcessId::random(),
        Scope::Host,
        "fuzz",
    );
    RUNTIME.with(|rt| {
        rt.block_on(async {
            let (mut peer, mut io) = tokio::io::duplex(1 << 17);
            peer.write_all(data).await.expect("the duplex takes it");
            drop(peer);
            // (The input ends: the exchange must end with it.)
            if let Ok(hello) = exchange(&mut io, &ours, Side::Accepting).await {
                let again: Hello = serde_json::from_slice(&serde_json::to_vec(&hello).unwrap()).unwrap();
                assert_eq!(again, hello);
            }
        })
    });
}

thread_local! {
    /// One runtime per fuzzing thread, for the targets that drive async code.
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
}

/// What an encrypted LAN's listener reads from a stranger: the Noise handshake, then (should
/// a first message ever check out) transport messages. Without the secret nothing may get
/// through, and nothing may panic or hang (the input ends; the handshake must end with it).
pub fn noise(data: &[u8]) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let secret = crate::secure::Secret::from_hex(&"5a".repeat(32)).expect("a secret");
    RUNTIME.with(|rt| {
        rt.block_on(async {
            let (mut peer, ours) = tokio::io::duplex(1 << 17);
            peer.write_all(data).await.expect("the duplex takes it");
            drop(peer);
            if let Ok(mut stream) = crate::secure::accept(ours, &secret).await {
                // Only a peer with the secret gets here; then the rest must decrypt or fail.
                let mut rest = Vec::new();
                let _ = stream.read_to_end(&mut rest).await;
            }
        })
    });
}

/// A message type as an HTTP front might accept it.
#[cfg(feature = "http")]
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Query {
    x: u32,
    y: u32,
    name: Option<String>,
    scale: Option<f64>,
    exact: Option<bool>,
}

/// The HTTP front's decoding of a query string (`GET /Query?x=1&y=2`) and of a JSON body
/// (`POST /Query`): the first byte picks which. What decodes re-encodes and decodes the same.
#[cfg(feature = "http")]
pub fn http_query(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(json) = (if which & 1 == 0 {
        crate::http::decode_query::<Query>(&String::from_utf8_lossy(rest))
    } else {
        crate::http::decode_body::<Query>(rest)
    }) else {
        return;
    };
    let value: Query = serde_json::from_str(json.get()).expect("re-encoded JSON decodes");
    let again = serde_json::value::to_raw_value(&value).unwrap();
    assert_eq!(again.get(), json.get());
}

#[cfg(test)]
mod tests {
    //! The committed corpora (`fuzz/corpus/TARGET/`), replayed: every input the fuzzer kept,
    //! and every crash it ever found once fixed, stays a test.
    use super::TARGETS;
    use std::path::Path;

    #[test]
    fn every_corpus_input_is_handled() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        for (name, target) in TARGETS {
            let dir = root.join(name);
            let mut n = 0;
            for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
                let path = entry.unwrap().path();
                target(&std::fs::read(&path).unwrap());
                n += 1;
            }
            assert!(n > 0, "the {name} corpus is empty");
        }
    }
}
