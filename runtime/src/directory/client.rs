//! A client for inspecting a directory: what `layer-cake network` and `layer-cake ping` use.
//!
//! It joins the directory as a child (so it shows in the tree itself, as `[PROCESS]
//! layer-cake`), registers nothing, and asks.

use crate::ids::ProcessId;
use crate::scope::Scope;
use crate::secure::Secret;
use crate::wire::directory::{DirectoryReport, Down, SessionInfo, Up};
use crate::wire::opening::{self, Opened};
use crate::wire::{
    Hello, MessageCodec, OpeningError, PeerKind, WireError, HANDSHAKE_TIMEOUT, HEARTBEAT_EVERY,
    MAX_DIRECTORY_FRAME,
};
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio_util::codec::Framed;

/// A connection to one directory, for inspection.
pub struct DirectoryClient {
    framed: Framed<Opened, MessageCodec<Up, Down>>,
    /// The directory's greeting.
    pub peer: Hello,
    /// This client's own identity (it is one of the directory's children while connected).
    pub id: ProcessId,
    next: u64,
    /// The link crosses hosts: the directory drops a child it hears nothing from for
    /// [`HEARTBEAT_DEAD`](crate::wire::HEARTBEAT_DEAD), so the client says it is there.
    beats: bool,
    last_sent: Instant,
}

impl DirectoryClient {
    /// Connects to the directory at `addr` and greets it as `name`, within the handshake
    /// deadline. With the LAN's `secret`, a directory on another host (an encrypted lan-cake)
    /// is reached through the Noise handshake, as every other connection between hosts is.
    pub async fn connect(
        addr: SocketAddr,
        name: &str,
        secret: Option<&Secret>,
    ) -> Result<DirectoryClient, OpeningError> {
        let id = ProcessId::random();
        let hello = Hello::new(PeerKind::Process, id, Scope::Process, name);
        let (stream, peer) = opening::dial(addr, &hello, secret, HANDSHAKE_TIMEOUT).await?;
        Ok(DirectoryClient {
            framed: Framed::new(stream, MessageCodec::new(MAX_DIRECTORY_FRAME)),
            peer,
            id,
            next: 0,
            beats: crate::wire::needs_heartbeat(addr),
            last_sent: Instant::now(),
        })
    }

    /// Asks the directory to describe itself, its parent and its children.
    pub async fn inspect(&mut self, deadline: Duration) -> Result<DirectoryReport, WireError> {
        let query = self.number();
        self.send(Up::Inspect { query }).await?;
        let report = self
            .answer(deadline, |frame| match frame {
                Down::Report { query: q, report } if q == query => Some(report),
                _ => None,
            })
            .await?;
        report.ok_or_else(|| WireError::Protocol(format!("no report within {deadline:?}")))
    }

    /// Pings `target` (the directory itself or one of its children) through the directory:
    /// the round trip's time, or `None` when no answer came within `deadline`.
    pub async fn ping(
        &mut self,
        target: ProcessId,
        deadline: Duration,
    ) -> Result<Option<Duration>, WireError> {
        let seq = self.number();
        let sent = Instant::now();
        self.send(Up::Ping { seq, target }).await?;
        self.answer(deadline, |frame| match frame {
            Down::Pong { seq: s } if s == seq => Some(sent.elapsed()),
            _ => None,
        })
        .await
    }

    /// Asks `target` (a process that is one of the directory's children) which sessions it
    /// holds as a subscriber; `None` when no answer came within `deadline`.
    pub async fn sessions(
        &mut self,
        target: ProcessId,
        deadline: Duration,
    ) -> Result<Option<Vec<SessionInfo>>, WireError> {
        let query = self.number();
        self.send(Up::AskSessions { query, target }).await?;
        self.answer(deadline, |frame| match frame {
            Down::Sessions { query: q, sessions } if q == query => Some(sessions),
            _ => None,
        })
        .await
    }

    fn number(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// Waits `period`, keeping the link alive meanwhile (between `ping`s, say): frames the
    /// directory sends are read and set aside, and on a link between hosts a heartbeat goes
    /// out whenever this side has been quiet for [`HEARTBEAT_EVERY`].
    pub async fn idle(&mut self, period: Duration) -> Result<(), WireError> {
        let until = Instant::now() + period;
        while self.next_frame(until).await?.is_some() {}
        Ok(())
    }

    async fn send(&mut self, frame: Up) -> Result<(), WireError> {
        self.last_sent = Instant::now();
        self.framed.send(frame).await
    }

    /// The next frame from the directory, or `None` once `until` passes; heartbeats both ways
    /// are handled here.
    async fn next_frame(&mut self, until: Instant) -> Result<Option<Down>, WireError> {
        loop {
            let now = Instant::now();
            if now >= until {
                return Ok(None);
            }
            let mut wait = until - now;
            if self.beats {
                wait = wait.min((self.last_sent + HEARTBEAT_EVERY).saturating_duration_since(now));
            }
            match tokio::time::timeout(wait, self.framed.next()).await {
                Err(_) => {
                    if self.beats && self.last_sent.elapsed() >= HEARTBEAT_EVERY {
                        self.send(Up::Heartbeat).await?;
                    }
                }
                Ok(Some(Ok(Down::Heartbeat))) => {}
                Ok(Some(Ok(frame))) => return Ok(Some(frame)),
                Ok(Some(Err(e))) => return Err(e),
                Ok(None) => return Err(WireError::Protocol("the directory closed the connection".into())),
            }
        }
    }

    /// Reads frames until `pick` takes one, the connection ends (an error), or `deadline`
    /// passes (`None`). Frames `pick` leaves (late answers, routes) are skipped.
    async fn answer<T>(
        &mut self,
        deadline: Duration,
        mut pick: impl FnMut(Down) -> Option<T>,
    ) -> Result<Option<T>, WireError> {
        let until = Instant::now() + deadline;
        while let Some(frame) = self.next_frame(until).await? {
            if let Some(t) = pick(frame) {
                return Ok(Some(t));
            }
        }
        Ok(None)
    }
}
