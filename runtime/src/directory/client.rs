//! A client for inspecting a directory: what `layer-cake network` and `layer-cake ping` use.
//!
//! It joins the directory as a child (so it shows in the tree itself, as `[PROCESS]
//! layer-cake`), registers nothing, and asks.

use crate::ids::ProcessId;
use crate::scope::Scope;
use crate::wire::directory::{DirectoryReport, Down, SessionInfo, Up};
use crate::wire::{Hello, MessageCodec, PeerKind, WireError, HANDSHAKE_TIMEOUT, MAX_DIRECTORY_FRAME};
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// A connection to one directory, for inspection.
pub struct DirectoryClient {
    framed: Framed<TcpStream, MessageCodec<Up, Down>>,
    /// The directory's greeting.
    pub peer: Hello,
    /// This client's own identity (it is one of the directory's children while connected).
    pub id: ProcessId,
    next: u64,
}

impl DirectoryClient {
    /// Connects to the directory at `addr` and greets it as `name`, within the handshake
    /// deadline.
    pub async fn connect(addr: SocketAddr, name: &str) -> Result<DirectoryClient, WireError> {
        let greet = async {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let mut framed = Framed::new(stream, MessageCodec::<Up, Down>::new(MAX_DIRECTORY_FRAME));
            let id = ProcessId::random();
            let hello = Hello::new(PeerKind::Process, id, Scope::Process, name);
            framed.send(Up::Hello(hello)).await?;
            match framed.next().await {
                Some(Ok(Down::Hello(peer))) => {
                    peer.check().map_err(|e| WireError::Protocol(e.to_string()))?;
                    Ok(DirectoryClient {
                        framed,
                        peer,
                        id,
                        next: 0,
                    })
                }
                Some(Ok(other)) => Err(WireError::Protocol(format!("expected a greeting, got {other:?}"))),
                Some(Err(e)) => Err(e),
                None => Err(WireError::Protocol("closed during the greeting".into())),
            }
        };
        tokio::time::timeout(HANDSHAKE_TIMEOUT, greet)
            .await
            .unwrap_or_else(|_| Err(WireError::Protocol("no greeting in time".into())))
    }

    /// Asks the directory to describe itself, its parent and its children.
    pub async fn inspect(&mut self, deadline: Duration) -> Result<DirectoryReport, WireError> {
        let query = self.number();
        self.framed.send(Up::Inspect { query }).await?;
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
        self.framed.send(Up::Ping { seq, target }).await?;
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
        self.framed.send(Up::AskSessions { query, target }).await?;
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

    /// Reads frames until `pick` takes one, the connection ends (an error), or `deadline`
    /// passes (`None`). Frames `pick` leaves (late answers, routes) are skipped.
    async fn answer<T>(
        &mut self,
        deadline: Duration,
        mut pick: impl FnMut(Down) -> Option<T>,
    ) -> Result<Option<T>, WireError> {
        let read = async {
            loop {
                match self.framed.next().await {
                    Some(Ok(frame)) => {
                        if let Some(t) = pick(frame) {
                            return Ok(t);
                        }
                    }
                    Some(Err(e)) => return Err(e),
                    None => return Err(WireError::Protocol("the directory closed the connection".into())),
                }
            }
        };
        match tokio::time::timeout(deadline, read).await {
            Ok(r) => r.map(Some),
            Err(_) => Ok(None),
        }
    }
}
