//! Messages on a session connection between two processes.
//!
//! A subscriber's process connects to a publisher's process (one connection per pair, carrying
//! any number of sessions). Each side sends its [`Hello`](super::Hello) first. Then the
//! subscriber opens sessions; either side sends data on them and closes them.

use super::body::BodyCodec;
use super::frame::{finish_frame, WireError};
use crate::ids::{PubId, SessionId, SubId};
use crate::scope::Scope;
use bytes::{BufMut, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;

/// Asks the publisher's process to open a session with one of its publications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Open {
    /// Chosen by the subscriber's process; unique on this connection.
    pub session: SessionId,
    /// The publication.
    pub publication: PubId,
    /// The publication's name (a check, and for the publisher's logs).
    pub name: String,
    /// The subscription on whose behalf the session is opened.
    pub subscription: SubId,
    /// The scope of the directory that made the match.
    pub at: Scope,
}

/// One application message on a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Data<'a> {
    /// The session.
    pub session: SessionId,
    /// Non-zero on a request: the reply will carry it in `reply`.
    #[serde(default)]
    pub corr: u64,
    /// Non-zero on a reply: the `corr` of the request it answers.
    #[serde(default)]
    pub reply: u64,
    /// Non-zero on a request made by a call that may try more than one instance: the same on
    /// every try, so a handler can tell a retry from a new request.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub call: u64,
    /// The message's type name (`Xy`, `Table`, `Vec<f64>`).
    #[serde(borrow, rename = "type")]
    pub type_name: Cow<'a, str>,
    /// The message, encoded by the connection's codec.
    #[serde(borrow)]
    pub body: &'a RawValue,
}

/// Frames between two processes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum PeerMsg<'a> {
    /// Open a session (subscriber to publisher).
    Open(Open),
    /// The session is open (publisher to subscriber).
    Opened {
        /// The session.
        session: SessionId,
    },
    /// The session could not be opened (publisher to subscriber).
    Refused {
        /// The session.
        session: SessionId,
        /// Why.
        reason: String,
    },
    /// The session is over (either way).
    Close {
        /// The session.
        session: SessionId,
        /// Why.
        reason: String,
    },
    /// An application message (either way).
    #[serde(borrow)]
    Data(Data<'a>),
    /// A request on `session` will get no reply (either way): the answerer could not decode
    /// it, dropped it, or its reply could not be sent. The requester's call ends with `reason`.
    Failed {
        /// The session.
        session: SessionId,
        /// The `corr` of the request that failed (0: a plain message that was not delivered).
        reply: u64,
        /// What kind of failure.
        kind: FailKind,
        /// Why, in words.
        reason: String,
    },
    /// Still here (between hosts only; see [`HEARTBEAT_EVERY`](super::HEARTBEAT_EVERY)).
    Heartbeat,
}

/// Why a message got no answer (the `kind` of a `Failed` frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailKind {
    /// The frame did not decode.
    Malformed,
    /// The receiving application could not decode the message as the type it carries.
    Undecodable,
    /// The receiving application dropped the request without answering (it was not
    /// processed: an idempotent request may be sent elsewhere).
    Unanswered,
    /// The message names no open session here, or came too early or too fast.
    Undeliverable,
    /// The reply could not be sent (over the frame limit, or it did not encode).
    ReplyUnsendable,
}

/// The fields of a `Data` frame other than its body.
#[derive(Debug, Clone, Copy)]
pub struct DataHeader<'a> {
    /// The session.
    pub session: SessionId,
    /// Non-zero on a request.
    pub corr: u64,
    /// Non-zero on a reply.
    pub reply: u64,
    /// Non-zero on a request of a call that may be tried again elsewhere.
    pub call: u64,
    /// The body's type name.
    pub type_name: &'a str,
}

/// Appends one `Data` frame to `dst`, encoding `value` straight into it (no intermediate copy).
pub fn encode_data<C: BodyCodec, T: Serialize + ?Sized>(
    codec: &C,
    dst: &mut BytesMut,
    max: usize,
    header: DataHeader<'_>,
    value: &T,
) -> Result<(), WireError> {
    let DataHeader {
        session,
        corr,
        reply,
        call,
        type_name,
    } = header;
    let start = dst.len();
    dst.put_u32(0);
    // The envelope is written by hand so the body is encoded once, in place; it is the same
    // JSON that serialising `PeerMsg::Data` would produce.
    dst.put_slice(b"{\"Data\":{\"session\":");
    put_number(dst, session.0);
    if corr != 0 {
        dst.put_slice(b",\"corr\":");
        put_number(dst, corr);
    }
    if reply != 0 {
        dst.put_slice(b",\"reply\":");
        put_number(dst, reply);
    }
    if call != 0 {
        dst.put_slice(b",\"call\":");
        put_number(dst, call);
    }
    dst.put_slice(b",\"type\":");
    codec.encode(type_name, dst).map_err(WireError::Malformed)?;
    dst.put_slice(b",\"body\":");
    if let Err(e) = codec.encode(value, dst) {
        dst.truncate(start);
        return Err(WireError::Malformed(e));
    }
    dst.put_slice(b"}}");
    finish_frame(dst, start, max)
}

/// Appends one control frame (anything but `Data`) to `dst`.
pub fn encode_control<C: BodyCodec>(
    codec: &C,
    dst: &mut BytesMut,
    max: usize,
    msg: &PeerMsg<'_>,
) -> Result<(), WireError> {
    let start = dst.len();
    dst.put_u32(0);
    codec.encode(msg, dst).map_err(WireError::Malformed)?;
    finish_frame(dst, start, max)
}

/// A frame that did not decode, with what could be read of it: the session and the request it
/// belongs to, so that only that message (or that session) fails, not its neighbours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFrame {
    /// The session it names, if that much could be read.
    pub session: Option<SessionId>,
    /// Its request number, if it is a readable request.
    pub corr: Option<u64>,
    /// What is wrong with it.
    pub reason: String,
}

/// Decodes one frame's body as a session connection reads it (the fuzz target feeds this very
/// function). `Data` bodies and type names borrow from `frame`; a type name written with JSON
/// escapes is refused, so that it can be referred to in place.
pub fn decode_frame(frame: &[u8]) -> Result<PeerMsg<'_>, BadFrame> {
    if let Some(data) = canonical_data(frame) {
        return Ok(PeerMsg::Data(data));
    }
    let reason = match serde_json::from_slice::<PeerMsg<'_>>(frame) {
        Ok(PeerMsg::Data(data)) if matches!(data.type_name, Cow::Owned(_)) => {
            return Err(BadFrame {
                session: Some(data.session),
                corr: Some(data.corr).filter(|c| *c != 0),
                reason: "a message's type name may not contain escapes".into(),
            })
        }
        Ok(msg) => return Ok(msg),
        Err(e) => format!("malformed frame: {e}"),
    };
    // Salvage what identifies the message, so that only it fails.
    let value: Option<serde_json::Value> = serde_json::from_slice(frame).ok();
    let data = value.as_ref().and_then(|v| v.get("Data"));
    let field = |name: &str| data.and_then(|d| d.get(name)).and_then(serde_json::Value::as_u64);
    // A request number means something only within its session.
    let session = field("session").map(SessionId);
    Err(BadFrame {
        session,
        corr: session.and(field("corr")).filter(|c| *c != 0),
        reason,
    })
}

/// Reads a `Data` frame written exactly as [`encode_data`] writes it (no whitespace, fields
/// in that order, a type name without escapes) without the general decoder, which costs a
/// good part of a round trip. Anything else is `None`, and the general decoder reads it (or
/// says what is wrong with it); both read a frame this accepts alike (the fuzz target checks).
pub(crate) fn canonical_data(frame: &[u8]) -> Option<Data<'_>> {
    let mut rest = frame.strip_prefix(b"{\"Data\":{\"session\":")?;
    let session = take_number(&mut rest)?;
    let mut field = |name: &[u8]| match rest.strip_prefix(name) {
        Some(after) => {
            rest = after;
            take_number(&mut rest)
        }
        None => Some(0),
    };
    let corr = field(b",\"corr\":")?;
    let reply = field(b",\"reply\":")?;
    let call = field(b",\"call\":")?;
    let rest = rest.strip_prefix(b",\"type\":\"")?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    if rest[end] != b'"' {
        return None;
    }
    let type_name = std::str::from_utf8(&rest[..end]).ok()?;
    let body = rest[end..].strip_prefix(b"\",\"body\":")?.strip_suffix(b"}}")?;
    let body: &RawValue = serde_json::from_slice(body).ok()?;
    Some(Data {
        session: SessionId(session),
        corr,
        reply,
        call,
        type_name: Cow::Borrowed(type_name),
        body,
    })
}

/// Checks that what [`canonical_data`] reads of `frame` (if it reads it at all) is what the
/// general decoder reads; panics naming the difference. For the tests and the fuzz target.
#[cfg(any(test, feature = "fuzz"))]
pub(crate) fn check_fast_reading(frame: &[u8]) {
    let Some(fast) = canonical_data(frame) else {
        return;
    };
    let Ok(PeerMsg::Data(slow)) = serde_json::from_slice::<PeerMsg<'_>>(frame) else {
        panic!("the fast reading accepted what the general decoder does not")
    };
    let fields = |d: &Data<'_>| {
        (
            d.session,
            d.corr,
            d.reply,
            d.call,
            d.type_name.to_string(),
            d.body.get().to_string(),
        )
    };
    assert_eq!(
        fields(&fast),
        fields(&slow),
        "the fast and the general readings differ"
    );
}

/// Reads a JSON number that is a `u64` (digits, no leading zero, no overflow) off the front of
/// `rest`.
fn take_number(rest: &mut &[u8]) -> Option<u64> {
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || (digits > 1 && rest[0] == b'0') {
        return None;
    }
    let mut n: u64 = 0;
    for &d in &rest[..digits] {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    *rest = &rest[digits..];
    Some(n)
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Writes a decimal number in place (no temporary string).
fn put_number(dst: &mut BytesMut, n: u64) {
    dst.put_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::JsonCodec;

    #[test]
    fn a_bad_data_frame_names_its_session_and_request() {
        let bad = decode_frame(br#"{"Data":{"session":4,"corr":null,"type":"Xy","body":1}}"#).unwrap_err();
        assert_eq!((bad.session, bad.corr), (Some(SessionId(4)), None));
        let bad = decode_frame(br#"{"Data":{"session":4,"corr":9,"type":7,"body":1}}"#).unwrap_err();
        assert_eq!((bad.session, bad.corr), (Some(SessionId(4)), Some(9)));
        let bad = decode_frame(br#"{"Data":{"session":4,"corr":9,"type":"X\u0079","body":1}}"#).unwrap_err();
        assert_eq!((bad.session, bad.corr), (Some(SessionId(4)), Some(9)));
        let bad = decode_frame(b"not json").unwrap_err();
        assert_eq!((bad.session, bad.corr), (None, None));
        assert!(bad.reason.starts_with("malformed frame"), "{}", bad.reason);
    }

    #[test]
    fn the_fast_reading_of_a_data_frame_agrees_with_the_general_one() {
        let same = |frame: &str| {
            assert!(
                canonical_data(frame.as_bytes()).is_some(),
                "not read fast: {frame}"
            );
            check_fast_reading(frame.as_bytes());
        };
        same(r#"{"Data":{"session":1,"type":"Xy","body":{"x":1,"y":2}}}"#);
        same(r#"{"Data":{"session":18446744073709551615,"corr":7,"type":"","body":"a}}"}}"#);
        same(r#"{"Data":{"session":0,"reply":3,"type":"Vec<f64>","body":[1.5]}}"#);
        same(r#"{"Data":{"session":2,"corr":1,"reply":2,"type":"é","body":null}}"#);
        same(r#"{"Data":{"session":2,"corr":1,"call":99,"type":"Xy","body":[]}}"#);
        // Anything else is left to the general decoder, which accepts or refuses it.
        for other in [
            r#"{"Data":{"corr":7,"session":1,"type":"Xy","body":1}}"#,
            r#"{"Data": {"session":1,"type":"Xy","body":1}}"#,
            r#"{"Data":{"session":01,"type":"Xy","body":1}}"#,
            r#"{"Data":{"session":18446744073709551616,"type":"Xy","body":1}}"#,
            r#"{"Data":{"session":1,"type":"X\u0079","body":1}}"#,
            r#"{"Data":{"session":1,"type":"Xy","body":1}}}}"#,
            r#"{"Data":{"session":1,"type":"Xy","body":}}"#,
            r#"{"Data":{"session":1,"type":"Xy","body":1}} "#,
        ] {
            assert!(canonical_data(other.as_bytes()).is_none(), "{other}");
        }
        assert!(decode_frame(br#"{"Data":{"corr":7,"session":1,"type":"Xy","body":1}}"#).is_ok());
        assert!(decode_frame(br#"{"Data":{"session":1,"type":"Xy","body":1}}}}"#).is_err());
    }

    #[test]
    fn hand_written_data_frame_decodes_as_the_enum() {
        let mut buf = BytesMut::new();
        let value = vec![vec![1.5f64, 2.0]];
        encode_data(
            &JsonCodec,
            &mut buf,
            1 << 20,
            DataHeader {
                session: SessionId(7),
                corr: 3,
                reply: 0,
                call: 0,
                type_name: "Vec<Vec<f64>>",
            },
            &value,
        )
        .unwrap();
        let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
        assert_eq!(len, buf.len() - 4);
        let msg: PeerMsg<'_> = serde_json::from_slice(&buf[4..]).unwrap();
        match msg {
            PeerMsg::Data(d) => {
                assert_eq!(d.session, SessionId(7));
                assert_eq!(d.corr, 3);
                assert_eq!(d.reply, 0);
                assert_eq!(d.type_name, "Vec<Vec<f64>>");
                assert_eq!(d.body.get(), "[[1.5,2.0]]");
            }
            other => panic!("decoded {other:?}"),
        }
    }
}

#[cfg(test)]
mod format_tests {
    //! These pin the session wire format: the same frames appear in `docs/protocol.md`.
    use super::*;
    use uuid::Uuid;

    #[test]
    fn control_frames_have_the_documented_json() {
        let open = PeerMsg::Open(Open {
            session: SessionId(1),
            publication: PubId(Uuid::from_u128(2)),
            name: "svc".into(),
            subscription: SubId(Uuid::from_u128(3)),
            at: Scope::Host,
        });
        assert_eq!(
            serde_json::to_string(&open).unwrap(),
            r#"{"Open":{"session":1,"publication":"00000000-0000-0000-0000-000000000002","name":"svc","subscription":"00000000-0000-0000-0000-000000000003","at":"HOST"}}"#
        );
        assert_eq!(
            serde_json::to_string(&PeerMsg::Opened {
                session: SessionId(1)
            })
            .unwrap(),
            r#"{"Opened":{"session":1}}"#
        );
        let close = PeerMsg::Close {
            session: SessionId(1),
            reason: "publication retracted".into(),
        };
        assert_eq!(
            serde_json::to_string(&close).unwrap(),
            r#"{"Close":{"session":1,"reason":"publication retracted"}}"#
        );
        let mut buf = BytesMut::new();
        #[derive(Serialize)]
        struct Xy {
            x: u32,
            y: u32,
        }
        let header = DataHeader {
            session: SessionId(1),
            corr: 7,
            reply: 0,
            call: 0,
            type_name: "Xy",
        };
        encode_data(
            &crate::wire::JsonCodec,
            &mut buf,
            1024,
            header,
            &Xy { x: 2, y: 2 },
        )
        .unwrap();
        assert_eq!(&buf[..4], &[0, 0, 0, 64]);
        assert_eq!(
            &buf[4..],
            br#"{"Data":{"session":1,"corr":7,"type":"Xy","body":{"x":2,"y":2}}}"#
        );
        let failed = PeerMsg::Failed {
            session: SessionId(1),
            reply: 7,
            kind: FailKind::ReplyUnsendable,
            reason: "the reply is over the 16777216-byte frame limit".into(),
        };
        assert_eq!(
            serde_json::to_string(&failed).unwrap(),
            r#"{"Failed":{"session":1,"reply":7,"kind":"reply-unsendable","reason":"the reply is over the 16777216-byte frame limit"}}"#
        );
        assert_eq!(
            serde_json::to_string(&PeerMsg::Heartbeat).unwrap(),
            r#""Heartbeat""#
        );
    }
}
