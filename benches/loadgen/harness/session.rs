//! One MCP session over any of the three wires, speaking raw JSON-RPC.
//!
//! - stdio: requests are written straight to the child's stdin (one `write` each, under a
//!   lock); one reader task hands each reply line to the caller waiting for its id.
//! - Streamable HTTP: each caller borrows a keep-alive connection from the session's pool,
//!   POSTs, and reads the answer itself (JSON body or SSE stream) — no task hop at all.
//! - legacy SSE: one reader task on the `GET` stream hands replies to callers by id; each
//!   caller POSTs to the announced endpoint on a pooled connection and expects `202`.
//!
//! A caller gets the reply's JSON text back; what it means is [`measure`](super::measure)'s
//! business. Server→client requests (e.g. `ping`) on stdio and SSE are answered with an
//! empty result so a server never waits on us.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::oneshot;

use super::http::{Connection, SseParser, Url};

/// The protocol revision offered in `initialize` (every peer under test speaks it).
pub const PROTOCOL_VERSION: &str = "2025-06-18";

/// Which wire a target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Stdio,
    Http,
    Sse,
}

impl Wire {
    /// Parses `stdio`, `http` or `sse`.
    pub fn parse(text: &str) -> Result<Wire, String> {
        match text {
            "stdio" => Ok(Wire::Stdio),
            "http" | "streamable-http" => Ok(Wire::Http),
            "sse" => Ok(Wire::Sse),
            other => Err(format!("unknown wire `{other}` (stdio, http, sse)")),
        }
    }

    /// The name used in JSON lines.
    pub fn name(self) -> &'static str {
        match self {
            Wire::Stdio => "stdio",
            Wire::Http => "http",
            Wire::Sse => "sse",
        }
    }
}

/// Why a request failed.
#[derive(Debug, Clone)]
pub struct CallError(pub String);

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn io_error(what: &str, error: std::io::Error) -> CallError {
    CallError(format!("{what}: {error}"))
}

/// The fields needed to route a message and tell a reply from a request.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    method: Option<&'a str>,
}

/// Replies are routed by our numeric ids; anything else is not ours.
fn numeric_id(raw: Option<&RawValue>) -> Option<u64> {
    raw.and_then(|id| id.get().parse().ok())
}

/// What a message from the server is, as far as routing goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Kind {
    /// A reply to our request with this id (`None`: an id that is not one of ours).
    Reply(Option<u64>),
    /// A request from the server, with its raw id.
    Request(String),
    /// A notification (or something unreadable): nothing to route.
    Other,
}

/// Classifies a message. Fast path for the shape rmcp and most servers write,
/// `{"jsonrpc":"2.0","id":N,"result"…` / `…"error"…`, so a large reply (a 1,000-tool list)
/// is not parsed twice inside the measured latency; anything else is parsed properly.
pub fn classify(text: &str) -> Kind {
    if let Some(rest) = text.strip_prefix(r#"{"jsonrpc":"2.0","id":"#) {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let after = &rest[digits..];
        if digits > 0 && (after.starts_with(r#","result""#) || after.starts_with(r#","error""#)) {
            return Kind::Reply(rest[..digits].parse().ok());
        }
    }
    match serde_json::from_str::<Envelope<'_>>(text) {
        Ok(Envelope { method: None, id }) => Kind::Reply(numeric_id(id)),
        Ok(Envelope {
            method: Some(_),
            id: Some(id),
        }) => Kind::Request(id.get().to_owned()),
        _ => Kind::Other,
    }
}

type Waiters = Mutex<HashMap<u64, oneshot::Sender<String>>>;

/// One initialized MCP session.
pub struct Session {
    /// Our request ids, never reused in this session.
    next_id: AtomicU64,
    /// How long one request may take before it counts as an error.
    timeout: Duration,
    wire: WireSession,
}

enum WireSession {
    Stdio(Arc<StdioWire>),
    Http(HttpWire),
    Sse(Arc<SseWire>),
}

impl Session {
    /// An uninitialized session on a child's stdin/stdout.
    pub fn stdio(stdin: ChildStdin, stdout: ChildStdout, timeout: Duration) -> Session {
        let wire = Arc::new(StdioWire {
            stdin: tokio::sync::Mutex::new(Some(stdin)),
            waiters: Mutex::new(HashMap::new()),
        });
        tokio::spawn(stdio_reader(wire.clone(), stdout));
        Session::new(WireSession::Stdio(wire), timeout)
    }

    /// An uninitialized Streamable HTTP session at `url`.
    pub fn http(url: Url, timeout: Duration) -> Session {
        Session::new(
            WireSession::Http(HttpWire {
                url,
                session_id: Mutex::new(None),
                protocol: Mutex::new(PROTOCOL_VERSION.to_owned()),
                pool: Mutex::new(Vec::new()),
            }),
            timeout,
        )
    }

    /// Opens the legacy SSE stream at `url` and waits for its `endpoint` event.
    pub async fn sse(url: Url, timeout: Duration) -> Result<Session, CallError> {
        let mut connection = Connection::connect(&url.authority)
            .await
            .map_err(|e| io_error("connect", e))?;
        connection
            .send("GET", &url, &[("Accept", "text/event-stream")], b"")
            .await
            .map_err(|e| io_error("GET the SSE stream", e))?;
        let (head, body) = connection
            .read_head()
            .await
            .map_err(|e| io_error("SSE stream head", e))?;
        if head.status != 200 || !head.is_event_stream() {
            return Err(CallError(format!(
                "GET {} answered {} ({})",
                url.path, head.status, head.content_type
            )));
        }
        let (endpoint_tx, endpoint_rx) = oneshot::channel();
        let wire = Arc::new(SseWire {
            post_url: Mutex::new(None),
            waiters: Mutex::new(HashMap::new()),
            pool: Mutex::new(Vec::new()),
        });
        tokio::spawn(sse_reader(
            wire.clone(),
            url.clone(),
            connection,
            body,
            endpoint_tx,
        ));
        let endpoint = tokio::time::timeout(timeout, endpoint_rx)
            .await
            .map_err(|_| CallError("no `endpoint` event on the SSE stream".to_owned()))?
            .map_err(|_| CallError("the SSE stream ended before `endpoint`".to_owned()))??;
        *wire.post_url.lock().unwrap_or_else(|p| p.into_inner()) = Some(endpoint);
        Ok(Session::new(WireSession::Sse(wire), timeout))
    }

    fn new(wire: WireSession, timeout: Duration) -> Session {
        Session {
            next_id: AtomicU64::new(1),
            timeout,
            wire,
        }
    }

    /// A fresh request id.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Runs `initialize` and sends `notifications/initialized`; returns the result text.
    pub async fn initialize(&self) -> Result<String, CallError> {
        let id = self.next_id();
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"initialize","params":{{"protocolVersion":"{PROTOCOL_VERSION}","capabilities":{{}},"clientInfo":{{"name":"mcp-orch-loadgen","version":"0"}}}}}}"#
        );
        let reply = self.request(id, &body).await?;
        #[derive(Deserialize)]
        struct Init {
            result: Option<InitResult>,
        }
        #[derive(Deserialize)]
        struct InitResult {
            #[serde(rename = "protocolVersion")]
            protocol_version: String,
        }
        let init: Init = serde_json::from_str(&reply)
            .map_err(|e| CallError(format!("initialize reply is not JSON-RPC: {e}")))?;
        let Some(result) = init.result else {
            return Err(CallError(format!("initialize failed: {reply}")));
        };
        if let WireSession::Http(http) = &self.wire {
            *http.protocol.lock().unwrap_or_else(|p| p.into_inner()) = result.protocol_version;
        }
        self.notify(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await?;
        Ok(reply)
    }

    /// Sends request `id` (already in `body`) and returns the reply's JSON text.
    pub async fn request(&self, id: u64, body: &str) -> Result<String, CallError> {
        let call = async {
            match &self.wire {
                WireSession::Stdio(wire) => wire.request(id, body).await,
                WireSession::Http(wire) => wire.request(id, body).await,
                WireSession::Sse(wire) => wire.request(id, body).await,
            }
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => {
                self.forget(id);
                Err(CallError(format!(
                    "no reply to request {id} within {:?}",
                    self.timeout
                )))
            }
        }
    }

    /// Sends a notification.
    pub async fn notify(&self, body: &str) -> Result<(), CallError> {
        match &self.wire {
            WireSession::Stdio(wire) => wire.write(body).await,
            WireSession::Http(wire) => wire.post(body, None).await.map(|_| ()),
            WireSession::Sse(wire) => wire.post(body).await,
        }
    }

    /// Ends the session politely: Streamable HTTP `DELETE`; stdio closes the child's stdin
    /// (an MCP server's cue to exit). The legacy SSE stream ends when the session is dropped.
    pub async fn close(&self) {
        match &self.wire {
            WireSession::Http(wire) => wire.delete().await,
            WireSession::Stdio(wire) => *wire.stdin.lock().await = None,
            WireSession::Sse(_) => {}
        }
    }

    fn forget(&self, id: u64) {
        let waiters = match &self.wire {
            WireSession::Stdio(wire) => &wire.waiters,
            WireSession::Sse(wire) => &wire.waiters,
            WireSession::Http(_) => return,
        };
        waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }
}

/// The stdio wire.
struct StdioWire {
    /// Written by whichever caller holds it: one `write` per message. `None` once closed.
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    /// Callers waiting for a reply, by id.
    waiters: Waiters,
}

impl StdioWire {
    async fn request(&self, id: u64, body: &str) -> Result<String, CallError> {
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
        self.write(body).await?;
        rx.await
            .map_err(|_| CallError("the process closed its stdout".to_owned()))
    }

    async fn write(&self, body: &str) -> Result<(), CallError> {
        let mut line = String::with_capacity(body.len() + 1);
        line.push_str(body);
        line.push('\n');
        let mut stdin = self.stdin.lock().await;
        let Some(stdin) = stdin.as_mut() else {
            return Err(CallError("stdin is closed".to_owned()));
        };
        stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|e| io_error("write to stdin", e))
    }
}

async fn stdio_reader(wire: Arc<StdioWire>, stdout: ChildStdout) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let Ok(text) = std::str::from_utf8(&line) else {
            continue;
        };
        let text = text.trim_end();
        match classify(text) {
            Kind::Reply(Some(id)) => {
                let waiter = wire
                    .waiters
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                if let Some(waiter) = waiter {
                    let _ = waiter.send(text.to_owned());
                }
            }
            Kind::Request(id) => {
                let answer = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#);
                let _ = wire.write(&answer).await;
            }
            Kind::Reply(None) | Kind::Other => {}
        }
    }
    // Waking every caller with an error: dropping the senders does it.
    wire.waiters
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clear();
}

/// The Streamable HTTP wire.
struct HttpWire {
    url: Url,
    /// Assigned by the server in the `initialize` answer (none for stateless servers).
    session_id: Mutex<Option<String>>,
    /// The negotiated revision, sent as `MCP-Protocol-Version`.
    protocol: Mutex<String>,
    /// Idle keep-alive connections; a caller takes one or opens a new one.
    pool: Mutex<Vec<Connection>>,
}

impl HttpWire {
    async fn request(&self, id: u64, body: &str) -> Result<String, CallError> {
        self.post(body, Some(id))
            .await?
            .ok_or_else(|| CallError(format!("no reply to request {id} in the POST answer")))
    }

    fn take_connection(&self) -> Option<Connection> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn headers(&self) -> (Option<String>, String) {
        let session = self
            .session_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let protocol = self
            .protocol
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        (session, protocol)
    }

    /// POSTs one message; returns the reply with `want` when one was asked for. A pooled
    /// connection the server has closed meanwhile is retried once on a new one.
    async fn post(&self, body: &str, want: Option<u64>) -> Result<Option<String>, CallError> {
        let (session, protocol) = self.headers();
        let mut headers: Vec<(&str, &str)> = vec![
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("MCP-Protocol-Version", &protocol),
        ];
        if let Some(session) = &session {
            headers.push(("Mcp-Session-Id", session));
        }
        let pooled = self.take_connection();
        let reused = pooled.is_some();
        let mut connection = match pooled {
            Some(connection) => connection,
            None => Connection::connect(&self.url.authority)
                .await
                .map_err(|e| io_error("connect", e))?,
        };
        let outcome = match exchange(&mut connection, &self.url, &headers, body, want).await {
            Err(ExchangeError::Io(_)) if reused => {
                connection = Connection::connect(&self.url.authority)
                    .await
                    .map_err(|e| io_error("connect", e))?;
                exchange(&mut connection, &self.url, &headers, body, want).await
            }
            other => other,
        };
        match outcome {
            Ok((reply, head)) => {
                if let Some(id) = head.session_id
                    && session.is_none()
                {
                    *self.session_id.lock().unwrap_or_else(|p| p.into_inner()) = Some(id);
                }
                if !head.close {
                    self.pool
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(connection);
                }
                Ok(reply)
            }
            Err(ExchangeError::Io(e)) => Err(io_error("POST", e)),
            Err(ExchangeError::Status(message)) => Err(CallError(message)),
        }
    }

    async fn delete(&self) {
        let (Some(session), protocol) = self.headers() else {
            return;
        };
        let Ok(mut connection) = Connection::connect(&self.url.authority).await else {
            return;
        };
        let headers = [
            ("Mcp-Session-Id", session.as_str()),
            ("MCP-Protocol-Version", protocol.as_str()),
        ];
        if connection
            .send("DELETE", &self.url, &headers, b"")
            .await
            .is_ok()
            && let Ok(Ok((_, mut body))) =
                tokio::time::timeout(Duration::from_secs(2), connection.read_head()).await
        {
            let mut sink = Vec::new();
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                connection.read_to_end(&mut body, &mut sink),
            )
            .await;
        }
    }
}

enum ExchangeError {
    Io(std::io::Error),
    Status(String),
}

/// One POST and its answer: a JSON body, or an SSE stream read until it ends (the reply is
/// recognised as soon as its event arrives; the rest of the stream is drained so the
/// connection can be reused).
async fn exchange(
    connection: &mut Connection,
    url: &Url,
    headers: &[(&str, &str)],
    body: &str,
    want: Option<u64>,
) -> Result<(Option<String>, super::http::Head), ExchangeError> {
    connection
        .send("POST", url, headers, body.as_bytes())
        .await
        .map_err(ExchangeError::Io)?;
    let (head, mut stream) = connection.read_head().await.map_err(ExchangeError::Io)?;
    let mut bytes = Vec::new();
    if head.status == 202 || head.status == 204 {
        connection
            .read_to_end(&mut stream, &mut bytes)
            .await
            .map_err(ExchangeError::Io)?;
        return Ok((None, head));
    }
    if head.status != 200 {
        connection
            .read_to_end(&mut stream, &mut bytes)
            .await
            .map_err(ExchangeError::Io)?;
        return Err(ExchangeError::Status(format!(
            "HTTP {} from POST {}: {}",
            head.status,
            url.path,
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        )));
    }
    if !head.is_event_stream() {
        connection
            .read_to_end(&mut stream, &mut bytes)
            .await
            .map_err(ExchangeError::Io)?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        return Ok((want.map(|_| text), head));
    }
    let mut parser = SseParser::default();
    let mut reply = None;
    while connection
        .read_piece(&mut stream, &mut bytes)
        .await
        .map_err(ExchangeError::Io)?
    {
        parser.push(&bytes);
        bytes.clear();
        while let Some(event) = parser.next_event() {
            if reply.is_none()
                && let Kind::Reply(id) = classify(&event.data)
                && id == want
            {
                reply = Some(event.data);
            }
        }
    }
    Ok((reply, head))
}

/// The legacy HTTP+SSE wire.
struct SseWire {
    /// Where messages are POSTed (from the `endpoint` event).
    post_url: Mutex<Option<Url>>,
    /// Callers waiting for a reply on the stream, by id.
    waiters: Waiters,
    /// Idle keep-alive connections for the POSTs.
    pool: Mutex<Vec<Connection>>,
}

impl SseWire {
    async fn request(&self, id: u64, body: &str) -> Result<String, CallError> {
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
        self.post(body).await?;
        rx.await
            .map_err(|_| CallError("the SSE stream ended".to_owned()))
    }

    async fn post(&self, body: &str) -> Result<(), CallError> {
        let url = self
            .post_url
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| CallError("no endpoint yet".to_owned()))?;
        let headers = [("Content-Type", "application/json")];
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let reused = pooled.is_some();
        let mut connection = match pooled {
            Some(connection) => connection,
            None => Connection::connect(&url.authority)
                .await
                .map_err(|e| io_error("connect", e))?,
        };
        let mut outcome = post_once(&mut connection, &url, &headers, body).await;
        if outcome.is_err() && reused {
            connection = Connection::connect(&url.authority)
                .await
                .map_err(|e| io_error("connect", e))?;
            outcome = post_once(&mut connection, &url, &headers, body).await;
        }
        let (status, close, text) = outcome.map_err(|e| io_error("POST", e))?;
        if !close {
            self.pool
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(connection);
        }
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(CallError(format!(
                "HTTP {status} from POST {}: {text}",
                url.path
            )))
        }
    }
}

async fn post_once(
    connection: &mut Connection,
    url: &Url,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, bool, String)> {
    connection
        .send("POST", url, headers, body.as_bytes())
        .await?;
    let (head, mut stream) = connection.read_head().await?;
    let mut bytes = Vec::new();
    connection.read_to_end(&mut stream, &mut bytes).await?;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
    Ok((head.status, head.close, text))
}

async fn sse_reader(
    wire: Arc<SseWire>,
    url: Url,
    mut connection: Connection,
    mut body: super::http::Body,
    endpoint: oneshot::Sender<Result<Url, CallError>>,
) {
    let mut endpoint = Some(endpoint);
    let mut parser = SseParser::default();
    let mut bytes = Vec::with_capacity(16 * 1024);
    while let Ok(true) = connection.read_piece(&mut body, &mut bytes).await {
        parser.push(&bytes);
        bytes.clear();
        while let Some(event) = parser.next_event() {
            if event.name == "endpoint" {
                if let Some(tx) = endpoint.take() {
                    let _ = tx.send(url.join(event.data.trim()).map_err(CallError));
                }
                continue;
            }
            match classify(&event.data) {
                Kind::Reply(Some(id)) => {
                    let waiter = wire
                        .waiters
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&id);
                    if let Some(waiter) = waiter {
                        let _ = waiter.send(event.data);
                    }
                }
                Kind::Request(id) => {
                    let answer = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#);
                    let _ = wire.post(&answer).await;
                }
                Kind::Reply(None) | Kind::Other => {}
            }
        }
    }
    wire.waiters
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clear();
}
