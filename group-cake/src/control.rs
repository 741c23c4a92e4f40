//! The control socket (`run/control.sock`): requests from `layer-cake restart`, `start ROLE`,
//! `stop ROLE` and `reload`, passed to the supervisor, one at a time, each answered.

use layer_cake::home::control::{Answer, Request, ANSWER_WITHIN, MAX_REQUEST};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

/// A request, and where its answer goes.
pub struct Asked {
    /// What is asked.
    pub request: Request,
    /// The answer.
    pub answer: oneshot::Sender<Answer>,
}

/// Listens at `path` (replacing a socket left by an earlier run); the requests arrive on the
/// receiver. The socket file is removed when the returned guard is dropped.
pub fn listen(path: &Path) -> std::io::Result<(mpsc::Receiver<Asked>, Removed)> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Err(e) = serve(stream, tx).await {
                    warn!(error = %e, "a control request failed");
                }
            });
        }
    });
    Ok((rx, Removed(path.to_path_buf())))
}

/// Removes the socket file when dropped.
pub struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn serve(stream: tokio::net::UnixStream, tx: mpsc::Sender<Asked>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let read = tokio::time::timeout(
        ANSWER_WITHIN,
        BufReader::new(read.take(MAX_REQUEST as u64)).read_line(&mut line),
    )
    .await;
    let answer = match read {
        Err(_) => Answer::Error("no request within the deadline".into()),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(_)) => match serde_json::from_str::<Request>(&line) {
            Err(e) => Answer::Error(format!("not a request: {e}")),
            Ok(request) => {
                info!(?request, "asked");
                let (answer, heard) = oneshot::channel();
                if tx.send(Asked { request, answer }).await.is_err() {
                    Answer::Error("group-cake is stopping".into())
                } else {
                    tokio::time::timeout(ANSWER_WITHIN, heard)
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .unwrap_or_else(|| Answer::Error("group-cake did not answer in time".into()))
                }
            }
        },
    };
    let mut text = serde_json::to_vec(&answer).expect("answers encode");
    text.push(b'\n');
    write.write_all(&text).await
}
