//! A message that arrived on a session, and its answer.

use super::conn::ConnCommand;
use super::outbox::Flush;
use super::session::{DecodeError, Numbers, Reply, SendError, Session, SEND_TIMEOUT};
use crate::message::{Message, Received};
use crate::wire::peer::{Data, FailKind};
use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// A message that arrived on a session. Decode it as the type it carries; answer it if it is
/// a request. A request dropped without an answer is answered for you, with a failure the
/// requester sees at once (saying why, when [`decode`](Self::decode) had failed).
pub struct Incoming {
    session: Session,
    corr: u64,
    /// The call this request is a try of (0: none).
    call: u64,
    message: Reply,
    /// A reply (or a failure) has gone back.
    answered: AtomicBool,
    /// The first decoding failure, said to the requester if the request goes unanswered.
    undecodable: OnceLock<DecodeError>,
    /// More messages were waiting behind this one when the application took it: its reply
    /// can wait for theirs, to go in one write.
    more_behind: bool,
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("session", &self.session.id())
            .field("type", &self.type_name())
            .field("request", &self.is_request())
            .finish()
    }
}

impl Incoming {
    pub(crate) fn new(session: Session, data: &Data<'_>, frame: Bytes) -> Incoming {
        Incoming {
            corr: data.corr,
            call: data.call,
            message: Reply::new(data, frame),
            session,
            answered: AtomicBool::new(false),
            undecodable: OnceLock::new(),
            more_behind: false,
        }
    }

    /// (The application's handle, as it hands this over.) More messages wait behind it.
    pub(crate) fn set_more_behind(&mut self, more: bool) {
        self.more_behind = more;
    }

    /// When a reply to this should be written: with the replies to the messages behind it,
    /// when there are any.
    fn flush(&self) -> Flush {
        if self.more_behind {
            Flush::Soon
        } else {
            Flush::Now
        }
    }

    /// The session it came on.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The type name it carries (`Xy`).
    pub fn type_name(&self) -> &str {
        self.message.type_name()
    }

    /// The message's body: one JSON value, exactly as the peer encoded it.
    pub fn json(&self) -> &[u8] {
        self.message.json()
    }

    /// Does it carry a `T`?
    pub fn is<T: Message + ?Sized>(&self) -> bool {
        self.type_name() == T::NAME
    }

    /// Decodes it as a `T`; fails if it carries another type or does not decode.
    pub fn decode<T: Received>(&self) -> Result<T, DecodeError> {
        self.message.decode_as(T::NAME).inspect_err(|e| {
            let _ = self.undecodable.set(e.clone());
        })
    }

    /// The call this request belongs to, when the caller may try it on more than one instance
    /// ([`Caller`](crate::caller::Caller) with retries or hedging): the same on every try, so a
    /// handler that must not act twice can recognise a request it has already seen.
    pub fn call_id(&self) -> Option<u64> {
        (self.call != 0).then_some(self.call)
    }

    /// Was it sent with [`Session::request`] (so it expects a [`reply`](Self::reply))?
    pub fn is_request(&self) -> bool {
        self.corr != 0
    }

    /// Answers a request. (For a plain message, sends `reply` as a plain message.) A reply that
    /// cannot be sent (over the frame limit, or not encodable) fails here, and the requester
    /// is told at once.
    pub async fn reply<T: Message + ?Sized>(&self, reply: &T) -> Result<(), SendError> {
        self.reply_as(T::NAME, reply).await
    }

    /// [`reply`](Self::reply) with a body already encoded (`body`, JSON) under `type_name`.
    pub async fn reply_raw(&self, type_name: &str, body: &RawValue) -> Result<(), SendError> {
        self.reply_as(type_name, body).await
    }

    async fn reply_as<T: Serialize + ?Sized>(&self, type_name: &str, reply: &T) -> Result<(), SendError> {
        if self.corr != 0 {
            self.answered.store(true, Ordering::Relaxed);
        }
        let sent = self
            .session
            .write(
                type_name,
                reply,
                Numbers {
                    corr: 0,
                    reply: self.corr,
                    call: 0,
                },
                SEND_TIMEOUT,
                self.flush(),
            )
            .await;
        if let (Err(e @ (SendError::TooLarge { .. } | SendError::Encode(_))), true) =
            (&sent, self.is_request())
        {
            self.fail_as(
                FailKind::ReplyUnsendable,
                format!("the reply could not be sent: {e}"),
            );
        }
        sent
    }

    /// Answers a request with a failure: the requester's call ends with `reason`
    /// ([`RequestError::Failed`], kind [`FailKind::Undecodable`]: this side could not make
    /// sense of it).
    pub fn fail(&self, reason: impl Into<String>) {
        self.fail_as(FailKind::Undecodable, reason);
    }

    fn fail_as(&self, kind: FailKind, reason: impl Into<String>) {
        if self.corr == 0 {
            return;
        }
        self.answered.store(true, Ordering::Relaxed);
        self.session.command(ConnCommand::Fail {
            session: self.session.id(),
            corr: self.corr,
            kind,
            reason: reason.into(),
        });
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if self.corr == 0 || *self.answered.get_mut() {
            return;
        }
        match self.undecodable.get() {
            Some(e) => {
                let reason = format!("the other end could not decode the request: {e}");
                self.fail_as(FailKind::Undecodable, reason)
            }
            None => self.fail_as(
                FailKind::Unanswered,
                "the other end dropped the request without answering",
            ),
        }
    }
}
