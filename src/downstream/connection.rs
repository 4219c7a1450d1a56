//! One live MCP session with a downstream server, shared by every upstream session.
//!
//! Owns the request ids mcp-orch uses towards the server (a counter, never reused on this
//! connection), the table of requests in flight, the progress tokens it hands out (equal to
//! the request id), cancellation towards the server, and the dispatch of everything the
//! server sends: replies go to the one caller that asked, progress to the call it belongs
//! to, server→client requests to the call that caused them (or an error when that cannot be
//! known), other notifications to the owner's sink. A reply whose caller has gone (timed
//! out, cancelled) is dropped, never handed to anyone else.
//!
//! A connection knows nothing about processes or HTTP: a wire (`stdio.rs`, `http.rs`) feeds
//! it [`Inbound`] messages and drains its outbound queue.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use foldhash::{HashMap, HashMapExt};
use futures::future::BoxFuture;
use rmcp::model::{
    CancelledNotification, CancelledNotificationParam, ClientCapabilities, ClientJsonRpcMessage,
    ClientNotification, ClientRequest, ClientResult, EmptyResult, ErrorCode, ErrorData, GetMeta,
    Implementation, InitializeRequest, InitializeRequestParams, InitializeResult,
    InitializedNotification, NumberOrString, ProgressNotificationParam, ProgressToken,
    ProtocolVersion, RequestId, ServerNotification, ServerRequest, ServerResult,
};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::error::DownstreamError;
pub(crate) use super::outbound::{Outbound, RawCall};

/// The protocol revision mcp-orch offers downstream (deployed servers don't speak 2026-07-28).
pub const DOWNSTREAM_PROTOCOL_VERSION: ProtocolVersion = ProtocolVersion::V_2025_11_25;

/// Revisions mcp-orch accepts in a downstream's `initialize` answer.
pub const ACCEPTED_DOWNSTREAM_VERSIONS: [ProtocolVersion; 4] = [
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_03_26,
    ProtocolVersion::V_2024_11_05,
];

/// How many outbound messages may queue for a server's wire before senders wait.
pub(crate) const OUTBOUND_QUEUE: usize = 1024;

/// A successful result as the wire delivered it: raw JSON from stdio (decoded by the caller
/// straight into the type its method returns) or a typed result from the rmcp HTTP client.
#[derive(Debug)]
pub enum Reply {
    Raw(Box<RawValue>),
    Typed(Box<ServerResult>),
}

impl Reply {
    /// Decodes into the result type of the method that was called.
    pub fn decode<T: DeserializeOwned>(self) -> Result<T, serde_json::Error> {
        match self {
            Reply::Raw(raw) => serde_json::from_str(raw.get()),
            Reply::Typed(result) => serde_json::from_value(serde_json::to_value(*result)?),
        }
    }

    /// The result as a JSON value (the REST face returns it as is).
    pub fn into_value(self) -> Result<serde_json::Value, serde_json::Error> {
        match self {
            Reply::Raw(raw) => serde_json::from_str(raw.get()),
            Reply::Typed(result) => serde_json::to_value(*result),
        }
    }
}

/// What a wire hands to [`Connection::dispatch`].
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A reply (result or error) to one of our requests.
    Reply {
        id: RequestId,
        result: Result<Reply, ErrorData>,
    },
    /// The wire could not deliver one of our requests (the server is unreachable). Not a
    /// sign of life from the server.
    SendFailed { id: RequestId, reason: String },
    /// A request from the server (ping, sampling, elicitation, roots).
    Request {
        id: RequestId,
        request: ServerRequest,
        /// For Streamable HTTP: the id of our request whose response stream carried it.
        origin: Option<RequestId>,
    },
    /// A notification from the server.
    Notification(ServerNotification),
}

/// Something that happens during one call besides its reply.
#[derive(Debug)]
pub enum CallEvent {
    /// The server reported progress (the token is still the downstream one).
    Progress(ProgressNotificationParam),
    /// The server asked the client something on behalf of this call; answer via `respond`.
    ServerRequest {
        /// The server that asked.
        server: Arc<str>,
        request: ServerRequest,
        respond: oneshot::Sender<Result<ClientResult, ErrorData>>,
    },
}

/// Per-request options.
#[derive(Debug, Default)]
pub struct CallOptions {
    /// The upstream session the call comes from (`None` for REST and batch callers); used to
    /// attribute server→client requests when the wire cannot say which call caused them.
    pub session: Option<u64>,
    /// mcp-orch's own request (listing, subscribing, log level): it cannot have caused a
    /// server→client request, so it never makes attribution ambiguous.
    pub internal: bool,
    /// Ask the server for progress (the caller had a progress token); needs `events`.
    pub progress: bool,
    /// Give up (and cancel downstream) after this long without an answer or progress.
    pub timeout: Duration,
    /// Progress extends `timeout`, but never past this long after the start; `None` (or
    /// not more than `timeout`) = no extension.
    pub max_timeout: Option<Duration>,
    /// Where progress and server→client requests for this call go. When set, the request
    /// carries a progress token.
    pub events: Option<mpsc::UnboundedSender<CallEvent>>,
    /// Cancelled when the caller gives up (e.g. the upstream client sent `cancelled`).
    pub cancel: Option<CancellationToken>,
}

/// Receives the notifications that are not tied to a request (list changes, resource
/// updates, log messages).
pub type NotificationSink = Arc<dyn Fn(ServerNotification) + Send + Sync>;

/// Answers a server→client request that no call in flight can take (e.g. `roots/list` sent
/// after `roots/list_changed`).
pub type RequestFallback =
    Arc<dyn Fn(ServerRequest) -> BoxFuture<'static, Result<ClientResult, ErrorData>> + Send + Sync>;

/// What a connection reports to its owner.
#[derive(Clone)]
pub struct ConnectionHooks {
    pub sink: NotificationSink,
    pub fallback: RequestFallback,
}

struct Pending {
    reply: oneshot::Sender<Result<Reply, Failure>>,
    events: Option<mpsc::UnboundedSender<CallEvent>>,
    session: Option<u64>,
    internal: bool,
    /// Milliseconds after the connection was made when progress last arrived for this
    /// request (`NO_PROGRESS` if never); progress extends the request's deadline. Only a
    /// request with a ceiling above its timeout has one (no allocation for the others).
    progress_at: Option<Arc<AtomicU64>>,
}

/// Why a request got no result.
#[derive(Debug)]
enum Failure {
    /// The server answered with a JSON-RPC error.
    Rpc(ErrorData),
    /// The request never reached it.
    Unreachable(String),
}

/// `Pending::progress_at` before any progress.
const NO_PROGRESS: u64 = u64::MAX;

/// The shared session with one downstream server.
pub struct Connection {
    /// The server's name, for every message and error.
    server: Arc<str>,
    /// Next request id; ids are never reused on one connection.
    next_id: AtomicI64,
    /// Requests in flight, by id (our own ids: a fast seeded hash is enough).
    pending: Mutex<HashMap<i64, Pending>>,
    /// Messages for the wire to send, in order.
    outbound: mpsc::Sender<Outbound>,
    /// Cancelled once the wire has ended.
    closed: CancellationToken,
    /// Why it ended (first reason wins).
    close_reason: OnceLock<String>,
    /// Where notifications that belong to no call, and requests no call can take, go.
    hooks: ConnectionHooks,
    /// What the server said in `initialize`.
    info: OnceLock<InitializeResult>,
    /// When the connection was made; `last_inbound_ms` counts from here.
    created: std::time::Instant,
    /// Milliseconds after `created` when the server last sent anything (health checks
    /// count any traffic as a sign of life, so a busy server is not restarted).
    last_inbound_ms: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("server", &self.server)
            .field("closed", &self.closed.is_cancelled())
            .finish()
    }
}

impl Connection {
    /// A connection whose outbound messages go to the returned receiver (the wire's).
    pub(crate) fn new(
        server: Arc<str>,
        hooks: ConnectionHooks,
    ) -> (Arc<Connection>, mpsc::Receiver<Outbound>) {
        let (outbound, rx) = mpsc::channel(OUTBOUND_QUEUE);
        let connection = Arc::new(Connection {
            server,
            next_id: AtomicI64::new(1),
            pending: Mutex::new(HashMap::new()),
            outbound,
            closed: CancellationToken::new(),
            close_reason: OnceLock::new(),
            hooks,
            info: OnceLock::new(),
            created: std::time::Instant::now(),
            last_inbound_ms: AtomicU64::new(0),
        });
        (connection, rx)
    }

    /// The server's name.
    pub fn server(&self) -> &Arc<str> {
        &self.server
    }

    /// What the server answered to `initialize` (set once initialized).
    pub fn info(&self) -> Option<&InitializeResult> {
        self.info.get()
    }

    /// Whether the wire has ended.
    pub fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// Resolves when the wire has ended.
    pub async fn closed(&self) {
        self.closed.cancelled().await
    }

    /// Why the wire ended, if it has.
    pub fn close_reason(&self) -> Option<String> {
        self.close_reason.get().cloned()
    }

    /// How many requests are waiting for a reply.
    pub fn in_flight(&self) -> usize {
        self.lock_pending().len()
    }

    /// Ends the connection: every request in flight fails at once with `reason`.
    pub(crate) fn close(&self, reason: impl Into<String>) {
        let _ = self.close_reason.set(reason.into());
        self.closed.cancel();
        // Dropping the reply senders wakes every waiting caller.
        let drained: Vec<Pending> = self.lock_pending().drain().map(|(_, p)| p).collect();
        drop(drained);
    }

    /// Runs the `initialize` handshake: offers [`DOWNSTREAM_PROTOCOL_VERSION`], checks the
    /// server's choice, then sends `notifications/initialized`.
    pub async fn initialize(
        &self,
        capabilities: ClientCapabilities,
        timeout: Duration,
    ) -> Result<InitializeResult, DownstreamError> {
        let params = InitializeRequestParams::new(
            capabilities,
            Implementation::new("mcp-orch", env!("CARGO_PKG_VERSION")),
        )
        .with_protocol_version(DOWNSTREAM_PROTOCOL_VERSION);
        let request = ClientRequest::InitializeRequest(InitializeRequest::new(params));
        let reply = self
            .request(
                request,
                CallOptions {
                    timeout,
                    internal: true,
                    ..CallOptions::default()
                },
            )
            .await?;
        let result: InitializeResult = reply
            .decode()
            .map_err(|e| self.protocol("initialize result", e))?;
        if !ACCEPTED_DOWNSTREAM_VERSIONS.contains(&result.protocol_version) {
            return Err(DownstreamError::Start {
                server: self.server.to_string(),
                reason: format!(
                    "it answered with protocol version {} (mcp-orch speaks {})",
                    result.protocol_version,
                    ACCEPTED_DOWNSTREAM_VERSIONS
                        .map(|v| v.to_string())
                        .join(", ")
                ),
            });
        }
        self.notify(ClientNotification::InitializedNotification(
            InitializedNotification::default(),
        ))
        .await?;
        let _ = self.info.set(result.clone());
        Ok(result)
    }

    /// Sends a request and waits for its reply, honouring the timeout, the caller's
    /// cancellation and the connection closing. On timeout or cancellation the server is
    /// sent `notifications/cancelled` for this request, and a late reply is dropped.
    pub async fn request(
        &self,
        mut request: ClientRequest,
        options: CallOptions,
    ) -> Result<Reply, DownstreamError> {
        self.send_request(options, |id, progress| {
            if progress {
                request
                    .get_meta_mut()
                    .set_progress_token(ProgressToken(NumberOrString::Number(id)));
            }
            ClientJsonRpcMessage::request(request, NumberOrString::Number(id)).into()
        })
        .await
    }

    /// Like [`Connection::request`], for a `tools/call` whose `arguments` (a JSON object) go
    /// to the server as they are.
    pub async fn call_raw(
        &self,
        name: Arc<str>,
        arguments: Option<Box<RawValue>>,
        options: CallOptions,
    ) -> Result<Reply, DownstreamError> {
        self.send_request(options, |id, progress| {
            Outbound::RawCall(RawCall {
                id,
                name,
                arguments,
                progress,
            })
        })
        .await
    }

    /// Sends the request `message` builds from its id and whether it carries a progress
    /// token, and waits for its reply.
    async fn send_request(
        &self,
        options: CallOptions,
        message: impl FnOnce(i64, bool) -> Outbound,
    ) -> Result<Reply, DownstreamError> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let ceiling = options.max_timeout.filter(|max| *max > options.timeout);
        // A token lets progress reach the caller, and lets progress extend the deadline.
        let progress = (options.progress && options.events.is_some()) || ceiling.is_some();
        let progress_at = ceiling.map(|_| Arc::new(AtomicU64::new(NO_PROGRESS)));
        let (reply_tx, reply_rx) = oneshot::channel();
        self.lock_pending().insert(
            id,
            Pending {
                reply: reply_tx,
                events: options.events,
                session: options.session,
                internal: options.internal,
                progress_at: progress_at.clone(),
            },
        );
        let mut guard = PendingGuard {
            connection: self,
            id,
            sent: false,
            armed: true,
        };
        let start = tokio::time::Instant::now();
        let mut deadline = start + options.timeout;
        let last_chance = ceiling.map(|max| start + max);
        let cancel = options.cancel.unwrap_or_default();
        let message = message(id, progress);

        tokio::select! {
            biased;
            sent = self.outbound.send(message) => {
                if sent.is_err() {
                    return Err(self.closed_error());
                }
                guard.sent = true;
            }
            _ = self.closed.cancelled() => return Err(self.closed_error()),
            _ = cancel.cancelled() => return Err(self.cancelled_error()),
            _ = tokio::time::sleep_until(deadline) => return Err(self.timeout_error(options.timeout)),
        }

        tokio::pin!(reply_rx);
        loop {
            tokio::select! {
                biased;
                reply = &mut reply_rx => {
                    guard.armed = false;
                    return match reply {
                        Ok(Ok(reply)) => Ok(reply),
                        Ok(Err(Failure::Rpc(error))) => Err(DownstreamError::Rpc { server: self.server.to_string(), error }),
                        Ok(Err(Failure::Unreachable(reason))) => Err(DownstreamError::Unreachable { server: self.server.to_string(), reason }),
                        Err(_) => Err(self.closed_error()),
                    };
                }
                _ = self.closed.cancelled() => return Err(self.closed_error()),
                _ = cancel.cancelled() => {
                    guard.cancel_downstream("cancelled by the client");
                    return Err(self.cancelled_error());
                }
                _ = tokio::time::sleep_until(deadline) => {
                    // Progress since the deadline was set buys another `timeout`, up to
                    // the ceiling.
                    let last = progress_at
                        .as_ref()
                        .map_or(NO_PROGRESS, |at| at.load(Ordering::Relaxed));
                    if let Some(last_chance) = last_chance
                        && last != NO_PROGRESS
                    {
                        let progressed = tokio::time::Instant::from_std(self.created)
                            + Duration::from_millis(last);
                        let extended = (progressed + options.timeout).min(last_chance);
                        if extended > deadline {
                            deadline = extended;
                            continue;
                        }
                    }
                    let waited = start.elapsed();
                    guard.cancel_downstream("timed out in mcp-orch");
                    return Err(self.timeout_error(if last != NO_PROGRESS { waited } else { options.timeout }));
                }
            }
        }
    }

    /// Sends a notification.
    pub async fn notify(&self, notification: ClientNotification) -> Result<(), DownstreamError> {
        self.outbound
            .send(ClientJsonRpcMessage::notification(notification).into())
            .await
            .map_err(|_| self.closed_error())
    }

    /// How long since the server last sent anything.
    pub fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_inbound_ms.load(Ordering::Relaxed));
        self.created.elapsed().saturating_sub(last)
    }

    /// Sends MCP `ping` and waits for the answer.
    pub async fn ping(&self, timeout: Duration) -> Result<(), DownstreamError> {
        let request = ClientRequest::PingRequest(rmcp::model::PingRequest::default());
        let options = CallOptions {
            timeout,
            internal: true,
            ..CallOptions::default()
        };
        self.request(request, options).await.map(|_| ())
    }

    /// Routes one message from the wire. Never blocks on a caller.
    pub(crate) fn dispatch(self: &Arc<Self>, inbound: Inbound) {
        if !matches!(inbound, Inbound::SendFailed { .. }) {
            self.last_inbound_ms
                .store(self.created.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
        match inbound {
            Inbound::Reply { id, result } => {
                self.deliver(id, result.map_err(Failure::Rpc));
            }
            Inbound::SendFailed { id, reason } => {
                self.deliver(id, Err(Failure::Unreachable(reason)));
            }
            Inbound::Notification(ServerNotification::ProgressNotification(progress)) => {
                let now = self.created.elapsed().as_millis() as u64;
                let target = match &progress.params.progress_token.0 {
                    NumberOrString::Number(n) => self.lock_pending().get(n).map(|p| {
                        if let Some(at) = &p.progress_at {
                            at.store(now, Ordering::Relaxed);
                        }
                        p.events.clone()
                    }),
                    NumberOrString::String(_) => None,
                };
                match target {
                    Some(Some(events)) => {
                        let _ = events.send(CallEvent::Progress(progress.params));
                    }
                    // Progress that only extends the deadline: the caller did not ask for it.
                    Some(None) => {}
                    None => tracing::debug!(server = %self.server,
                        "dropping progress for a request no longer in flight"),
                }
            }
            Inbound::Notification(notification) => (self.hooks.sink)(notification),
            Inbound::Request {
                id,
                request,
                origin,
            } => self.handle_server_request(id, request, origin),
        }
    }

    fn deliver(&self, id: RequestId, result: Result<Reply, Failure>) {
        let pending = match id {
            NumberOrString::Number(n) => self.lock_pending().remove(&n),
            NumberOrString::String(_) => None,
        };
        match pending {
            Some(pending) => {
                let _ = pending.reply.send(result);
            }
            None => tracing::debug!(server = %self.server, %id,
                "dropping a reply nobody waits for (timed out, cancelled or unknown)"),
        }
    }

    /// Answers `ping` itself; hands other server→client requests to the call that caused
    /// them. With an exact origin (Streamable HTTP) that is the call whose stream carried
    /// it; otherwise a call in flight that accepts such requests, provided every such call
    /// belongs to one upstream session. Calls of several sessions make it ambiguous: the
    /// server gets an error rather than a guess. With no call in flight, the owner's
    /// fallback decides.
    fn handle_server_request(
        self: &Arc<Self>,
        id: RequestId,
        request: ServerRequest,
        origin: Option<RequestId>,
    ) {
        if let ServerRequest::PingRequest(_) = request {
            self.respond(id, Ok(ClientResult::EmptyResult(EmptyResult {})));
            return;
        }
        let method = server_request_method(&request);
        let target = {
            let pending = self.lock_pending();
            match origin {
                Some(NumberOrString::Number(n)) => match pending.get(&n) {
                    Some(call) => match &call.events {
                        Some(events) => Target::Call(events.clone()),
                        None => Target::Unanswerable,
                    },
                    None => Target::Fallback,
                },
                _ => {
                    let callers: Vec<&Pending> = pending.values().filter(|p| !p.internal).collect();
                    let first_session = callers.first().map(|p| p.session);
                    if callers.is_empty() {
                        Target::Fallback
                    } else if callers.iter().any(|p| Some(p.session) != first_session) {
                        Target::Ambiguous
                    } else {
                        match callers.iter().find_map(|p| p.events.clone()) {
                            Some(events) => Target::Call(events),
                            None => Target::Unanswerable,
                        }
                    }
                }
            }
        };
        let answer = match target {
            Target::Ambiguous => {
                tracing::warn!(server = %self.server, method,
                    "cannot attribute a server request: calls of several sessions are in flight");
                self.respond(
                    id,
                    Err(ErrorData::new(
                        ErrorCode::INVALID_REQUEST,
                        format!(
                            "mcp-orch cannot relay {method} from server '{}': calls of several \
                             sessions are in flight on this shared server, so the request cannot \
                             be attributed; configure \"isolation\": \"session\" for it",
                            self.server
                        ),
                        None,
                    )),
                );
                return;
            }
            Target::Unanswerable => {
                self.respond(
                    id,
                    Err(ErrorData::new(
                        ErrorCode::INVALID_REQUEST,
                        format!(
                            "mcp-orch cannot relay {method} from server '{}': the call that caused \
                             it came from a caller that cannot answer (REST or batch)",
                            self.server
                        ),
                        None,
                    )),
                );
                return;
            }
            Target::Fallback => (self.hooks.fallback)(request),
            Target::Call(events) => {
                let (respond, answer) = oneshot::channel();
                let delivered = events
                    .send(CallEvent::ServerRequest {
                        server: self.server.clone(),
                        request,
                        respond,
                    })
                    .is_ok();
                if !delivered {
                    self.respond(
                        id,
                        Err(ErrorData::internal_error(
                            format!("mcp-orch: the call that caused {method} has ended"),
                            None,
                        )),
                    );
                    return;
                }
                Box::pin(async move {
                    answer.await.unwrap_or_else(|_| {
                        Err(ErrorData::internal_error(
                            format!("mcp-orch: {method} was not answered by the client"),
                            None,
                        ))
                    })
                })
            }
        };
        let connection = Arc::clone(self);
        tokio::spawn(async move {
            let result = answer.await;
            connection.respond(id, result);
        });
    }

    fn respond(&self, id: RequestId, result: Result<ClientResult, ErrorData>) {
        let message = match result {
            Ok(result) => ClientJsonRpcMessage::response(result, id),
            Err(error) => ClientJsonRpcMessage::error(error, Some(id)),
        };
        if self.outbound.try_send(message.into()).is_err() {
            tracing::warn!(server = %self.server, "could not queue a reply to the server");
        }
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn closed_error(&self) -> DownstreamError {
        DownstreamError::Closed {
            server: self.server.to_string(),
            reason: self
                .close_reason()
                .unwrap_or_else(|| "the connection ended".to_owned()),
        }
    }

    fn cancelled_error(&self) -> DownstreamError {
        DownstreamError::Cancelled {
            server: self.server.to_string(),
        }
    }

    fn timeout_error(&self, timeout: Duration) -> DownstreamError {
        DownstreamError::Timeout {
            server: self.server.to_string(),
            timeout,
        }
    }

    fn protocol(&self, what: &'static str, error: serde_json::Error) -> DownstreamError {
        DownstreamError::Protocol {
            server: self.server.to_string(),
            what,
            detail: error.to_string(),
        }
    }
}

/// Who gets a server→client request.
enum Target {
    /// The call that caused it.
    Call(mpsc::UnboundedSender<CallEvent>),
    /// No call is in flight: the owner decides.
    Fallback,
    /// Calls of several callers are in flight.
    Ambiguous,
    /// It was caused by a caller that cannot answer (REST, batch).
    Unanswerable,
}

/// Removes a request from the table when its caller stops waiting for any reason, and tells
/// the server when the request had already been sent.
struct PendingGuard<'a> {
    connection: &'a Connection,
    id: i64,
    sent: bool,
    armed: bool,
}

impl PendingGuard<'_> {
    fn cancel_downstream(&mut self, reason: &str) {
        self.disarm_with(Some(reason));
    }

    fn disarm_with(&mut self, reason: Option<&str>) {
        if !self.armed {
            return;
        }
        self.armed = false;
        let removed = self.connection.lock_pending().remove(&self.id);
        if removed.is_some() && self.sent && !self.connection.is_closed() {
            tracing::debug!(server = %self.connection.server, id = self.id,
                reason = reason.unwrap_or("the caller went away"),
                "sending notifications/cancelled downstream");
            let notification = ClientNotification::CancelledNotification(
                CancelledNotification::new(CancelledNotificationParam::new(
                    Some(NumberOrString::Number(self.id)),
                    Some(reason.unwrap_or("the caller went away").to_owned()),
                )),
            );
            if self
                .connection
                .outbound
                .try_send(ClientJsonRpcMessage::notification(notification).into())
                .is_err()
            {
                tracing::debug!(server = %self.connection.server, id = self.id,
                    "could not queue notifications/cancelled");
            }
        }
    }
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.disarm_with(None);
    }
}

/// The JSON-RPC method of a server request, for messages.
pub(crate) fn server_request_method(request: &ServerRequest) -> &'static str {
    match request {
        ServerRequest::PingRequest(_) => "ping",
        ServerRequest::CreateMessageRequest(_) => "sampling/createMessage",
        ServerRequest::ListRootsRequest(_) => "roots/list",
        ServerRequest::ElicitRequest(_) => "elicitation/create",
        _ => "a server request",
    }
}
