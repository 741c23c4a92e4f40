//! An HTTP front: requests mapped to typed messages, replies returned as JSON.
//!
//! A process declares the message types it accepts; `GET /<Type>?field=value&...` decodes the
//! query string into that type, `POST /<Type>` decodes a JSON body; the handler's reply is
//! the response. Built on hyper (HTTP/1.1, keep-alive).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use layer_cake::http::{HttpFront, HttpReply};
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Xy { x: usize, y: usize }
//! layer_cake::message!(Xy);
//!
//! let front = HttpFront::new().accept::<Xy>().bind("127.0.0.1:5050".parse()?).await?;
//! front
//!     .serve(
//!         |request| async move {
//!             let xy: Xy = request.decode()?;
//!             Ok(HttpReply::new(&vec![vec![0.0f64; xy.y]; xy.x])?)
//!         },
//!         std::future::pending::<()>(),
//!     )
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! To pass every request on to a pool of workers, serve with [`forward`] and a
//! [`Caller`](crate::caller::Caller) over them.
//!
//! | answer | when |
//! |---|---|
//! | 200, `{"type": "<reply type>", "value": <reply>}` | the handler replied |
//! | 400, `{"error": "..."}` | the query or body does not decode as the type (the decoder's words) |
//! | 404 | the path names no accepted type |
//! | 405 | a method other than GET or POST |
//! | 413 | a body over [`MAX_BODY`] |
//! | 502 | the worker went before answering, or failed the request (its reason, e.g. a reply over the frame limit) |
//! | 503 | no worker, or every worker busy and the waiting line full |
//! | 504 | the deadline passed |

use crate::caller::{Call, CallError, Caller, Idempotence};
use crate::message::{Message, Received};
use crate::node::RawReply;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The largest request body accepted (bytes).
pub const MAX_BODY: usize = 1 << 20;
/// The most connections served at once; more wait to be accepted.
pub const MAX_CONNECTIONS: usize = 10_000;

/// Decodes a query string or a JSON body as one type, and encodes it again as JSON.
type Decoder = fn(Source<'_>) -> Result<Box<RawValue>, String>;

/// An accepted type: its name (shared with every request of it) and its decoder.
#[derive(Clone)]
struct Accepted {
    name: Arc<str>,
    decoder: Decoder,
}

type Types = HashMap<String, Accepted>;

enum Source<'a> {
    Query(&'a str),
    Json(&'a [u8]),
}

fn decode_as<T: DeserializeOwned + Serialize>(source: Source<'_>) -> Result<Box<RawValue>, String> {
    match source {
        Source::Query(q) => decode_query::<T>(q),
        Source::Json(b) => decode_body::<T>(b),
    }
}

/// Decodes a query string (`x=2&y=3`) as a `T`, as a `GET /T` is, and encodes it as JSON;
/// or says why it does not decode.
pub fn decode_query<T: DeserializeOwned + Serialize>(query: &str) -> Result<Box<RawValue>, String> {
    let value: T = serde_urlencoded::from_str(query).map_err(|e| e.to_string())?;
    serde_json::value::to_raw_value(&value).map_err(|e| e.to_string())
}

/// Decodes a JSON body as a `T`, as a `POST /T` is, and encodes it again (checked and
/// normalised); or says why it does not decode.
pub fn decode_body<T: DeserializeOwned + Serialize>(body: &[u8]) -> Result<Box<RawValue>, String> {
    let value: T = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    serde_json::value::to_raw_value(&value).map_err(|e| e.to_string())
}

/// An HTTP front under construction: the message types it accepts.
#[derive(Default)]
pub struct HttpFront {
    types: Types,
}

impl HttpFront {
    /// A front that accepts no type yet.
    pub fn new() -> HttpFront {
        HttpFront::default()
    }

    /// Accepts `T` at `/<T's type name>` (`/Xy`).
    pub fn accept<T: Received + 'static>(mut self) -> HttpFront {
        let name = T::NAME;
        self.types.insert(
            name.to_string(),
            Accepted {
                name: Arc::from(name),
                decoder: decode_as::<T>,
            },
        );
        self
    }

    /// Listens on `addr` (port 0: any free port).
    pub async fn bind(self, addr: SocketAddr) -> std::io::Result<BoundFront> {
        let listener = TcpListener::bind(addr).await?;
        Ok(BoundFront {
            listener,
            types: Arc::new(self.types),
        })
    }
}

/// A front listening on its address, ready to [`serve`](BoundFront::serve).
pub struct BoundFront {
    listener: TcpListener,
    types: Arc<Types>,
}

/// A request that decoded as one of the accepted types.
#[derive(Debug)]
pub struct HttpRequest {
    type_name: Arc<str>,
    json: Box<RawValue>,
    idempotent: bool,
}

impl HttpRequest {
    /// The type it decoded as (`Xy`).
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The message, as JSON.
    pub fn json(&self) -> &RawValue {
        &self.json
    }

    /// Decodes the message as a `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_str(self.json.get()).map_err(|e| HttpError::BadRequest(e.to_string()))
    }

    /// Came with GET (which may safely be repeated), not POST.
    pub fn idempotent(&self) -> bool {
        self.idempotent
    }
}

/// A handler's answer: a value and the type name it is sent under.
#[derive(Debug, Clone)]
pub struct HttpReply {
    body: Bytes,
}

impl HttpReply {
    /// Answers with `value`.
    pub fn new<T: Message + ?Sized>(value: &T) -> Result<HttpReply, HttpError> {
        let json = serde_json::to_vec(value).map_err(|e| HttpError::Internal(e.to_string()))?;
        Ok(HttpReply::from_json(T::NAME, &json))
    }

    /// Answers with a value already encoded as JSON.
    pub fn from_json(type_name: &str, json: &[u8]) -> HttpReply {
        let mut body = Vec::with_capacity(json.len() + type_name.len() + 24);
        body.extend_from_slice(b"{\"type\":");
        // A type name is a plain string; encoding it cannot fail.
        serde_json::to_writer(&mut body, type_name).expect("a string encodes");
        body.extend_from_slice(b",\"value\":");
        body.extend_from_slice(json);
        body.push(b'}');
        HttpReply { body: body.into() }
    }

    /// The response body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

impl From<RawReply> for HttpReply {
    fn from(reply: RawReply) -> HttpReply {
        HttpReply::from_json(reply.type_name(), reply.json())
    }
}

/// A request that got no reply, and the status that says why.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// 400: the request does not decode.
    #[error("{0}")]
    BadRequest(String),
    /// 404: no such type.
    #[error("{0}")]
    NotFound(String),
    /// 502: the worker failed.
    #[error("{0}")]
    BadGateway(String),
    /// 503: no worker can take it now.
    #[error("{0}")]
    Unavailable(String),
    /// 504: the deadline passed.
    #[error("{0}")]
    Timeout(String),
    /// 500: something else.
    #[error("{0}")]
    Internal(String),
}

impl HttpError {
    /// The status code it is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            HttpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HttpError::NotFound(_) => StatusCode::NOT_FOUND,
            HttpError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            HttpError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            HttpError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<CallError> for HttpError {
    fn from(e: CallError) -> HttpError {
        let text = e.to_string();
        match e {
            CallError::NoInstances | CallError::Busy(_) | CallError::TooFew { .. } => {
                HttpError::Unavailable(text)
            }
            CallError::Timeout(_) => HttpError::Timeout(text),
            CallError::InstanceLost { .. } | CallError::Failed { .. } | CallError::Decode(_) => {
                HttpError::BadGateway(text)
            }
            CallError::Send(_) | CallError::Cancelled => HttpError::Internal(text),
        }
    }
}

/// Passes `request` to one of `workers` (by the caller's policy) and answers with the
/// worker's reply. A GET is tried once more on another worker if the first goes before
/// answering; a POST is not.
pub async fn forward(workers: &Caller, request: HttpRequest) -> Result<HttpReply, HttpError> {
    let call = Call::new().idempotence(if request.idempotent() {
        Idempotence::Idempotent
    } else {
        Idempotence::Once
    });
    let (_, reply) = workers
        .one_raw(request.type_name(), request.json(), &call)
        .await?;
    Ok(reply.into())
}

impl BoundFront {
    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves requests with `handler` until `shutdown` completes; then stops accepting
    /// (connections already open finish on their own tasks).
    pub async fn serve<H, F>(self, handler: H, shutdown: impl Future<Output = ()>) -> std::io::Result<()>
    where
        H: Fn(HttpRequest) -> F + Send + Sync + 'static,
        F: Future<Output = Result<HttpReply, HttpError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                p = connections.clone().acquire_owned() => p.expect("never closed"),
                _ = &mut shutdown => return Ok(()),
            };
            let (stream, peer) = tokio::select! {
                a = crate::wire::opening::next_connection(&self.listener, "http") => a,
                _ = &mut shutdown => return Ok(()),
            };
            let types = self.types.clone();
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let types = types.clone();
                    let handler = handler.clone();
                    async move { Ok::<_, std::convert::Infallible>(respond(&types, &*handler, req).await) }
                });
                if let Err(e) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(%peer, error = %e, "http connection ended");
                }
                drop(permit);
            });
        }
    }
}

async fn respond<H, F>(types: &Types, handler: &H, req: Request<Incoming>) -> Response<Full<Bytes>>
where
    H: Fn(HttpRequest) -> F,
    F: Future<Output = Result<HttpReply, HttpError>>,
{
    match answer(types, handler, req).await {
        Ok(reply) => json_response(StatusCode::OK, reply.body),
        Err(Refusal::Error(e)) => error_response(e.status(), &e.to_string()),
        Err(Refusal::Method) => {
            let mut r = error_response(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST");
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, POST"));
            r
        }
        Err(Refusal::TooLarge) => error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("a body may be {MAX_BODY} bytes at most"),
        ),
    }
}

enum Refusal {
    Error(HttpError),
    Method,
    TooLarge,
}

impl From<HttpError> for Refusal {
    fn from(e: HttpError) -> Refusal {
        Refusal::Error(e)
    }
}

async fn answer<H, F>(types: &Types, handler: &H, req: Request<Incoming>) -> Result<HttpReply, Refusal>
where
    H: Fn(HttpRequest) -> F,
    F: Future<Output = Result<HttpReply, HttpError>>,
{
    let name = req.uri().path().trim_start_matches('/');
    let Some(accepted) = types.get(name) else {
        let mut known: Vec<&str> = types.keys().map(String::as_str).collect();
        known.sort_unstable();
        return Err(HttpError::NotFound(format!(
            "no message type {name:?} here; this front accepts {}",
            known.join(", ")
        ))
        .into());
    };
    let type_name = accepted.name.clone();
    let decoder = accepted.decoder;
    let (json, idempotent) = match *req.method() {
        Method::GET => {
            let query = req.uri().query().unwrap_or("");
            (decoder(Source::Query(query)), true)
        }
        Method::POST => {
            let body = Limited::new(req.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        Refusal::TooLarge
                    } else {
                        Refusal::Error(HttpError::BadRequest(format!("reading the body: {e}")))
                    }
                })?
                .to_bytes();
            (decoder(Source::Json(&body)), false)
        }
        _ => return Err(Refusal::Method),
    };
    let json = json.map_err(|e| HttpError::BadRequest(format!("not a {type_name}: {e}")))?;
    Ok(handler(HttpRequest {
        type_name,
        json,
        idempotent,
    })
    .await?)
}

fn json_response(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn error_response(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(&serde_json::json!({ "error": text })).unwrap_or_default();
    json_response(status, body.into())
}
