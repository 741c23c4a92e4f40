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
    Beat, Hello, Liveness, MessageCodec, OpeningError, PeerKind, WireError, HANDSHAKE_TIMEOUT,
    HEARTBEAT_CHECK, HEARTBEAT_DEAD, MAX_DIRECTORY_FRAME,
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
    /// Heartbeats, on a link between hosts: the directory drops a child it hears nothing from
    /// for [`HEARTBEAT_DEAD`], so the client says it is there (and notices a directory gone).
    live: Liveness,
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
            live: Liveness::new(addr),
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
    /// out whenever this side has been quiet for [`HEARTBEAT_EVERY`](crate::wire::HEARTBEAT_EVERY).
    pub async fn idle(&mut self, period: Duration) -> Result<(), WireError> {
        let until = Instant::now() + period;
        while self.next_frame(until).await?.is_some() {}
        Ok(())
    }

    async fn send(&mut self, frame: Up) -> Result<(), WireError> {
        self.live.sent();
        self.framed.send(frame).await
    }

    /// The next frame from the directory, or `None` once `until` passes; heartbeats both ways
    /// are handled here.
    async fn next_frame(&mut self, until: Instant) -> Result<Option<Down>, WireError> {
        let until = tokio::time::Instant::from_std(until);
        let mut check = tokio::time::interval(HEARTBEAT_CHECK);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return Ok(None),
                _ = check.tick(), if self.live.on() => match self.live.tick() {
                    Beat::Quiet => {}
                    Beat::Send => self.framed.send(Up::Heartbeat).await?,
                    Beat::Dead => {
                        return Err(WireError::Protocol(format!("nothing from the directory for {HEARTBEAT_DEAD:?}")))
                    }
                },
                frame = self.framed.next() => match frame {
                    Some(Ok(frame)) => {
                        self.live.heard();
                        if !matches!(frame, Down::Heartbeat) {
                            return Ok(Some(frame));
                        }
                    }
                    Some(Err(e)) => return Err(e),
                    None => return Err(WireError::Protocol("the directory closed the connection".into())),
                },
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
