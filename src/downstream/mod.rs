//! Downstreams: one live connection per configured MCP server, and its lifecycle.
//!
//! A [`Downstream`] owns one server: it starts it (child process or remote session), runs the
//! `initialize` handshake with the pinned protocol version, lists its tools (following
//! pagination, applying the tool filter), keeps its status (`starting`, `ready`, `failed`,
//! `stopped`, `disabled`) with pid, uptime, last error, and its stderr buffer, and re-lists
//! when the server says its tools changed. A [`DownstreamSet`] holds them all and starts
//! them concurrently, so startup takes as long as the slowest server, not the sum.
//!
//! It reports changes through a [`DownstreamObserver`] and never knows who is upstream.
//! One server failing never affects another: each runs in its own task.

mod connection;
mod error;
mod http;
mod stderr_log;
mod stdio;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use rmcp::model::{
    ClientCapabilities, ClientRequest, ListToolsRequest, ListToolsResult, PaginatedRequestParams,
    ServerNotification, Tool,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{ServerEntry, TransportSpec};

pub use connection::{
    ACCEPTED_DOWNSTREAM_VERSIONS, CallEvent, CallOptions, Connection, DOWNSTREAM_PROTOCOL_VERSION,
    Reply,
};
pub use error::{DownstreamError, humanize};
pub use stderr_log::{LogLine, StderrLog};
pub use stdio::describe_exit;

/// How many stderr lines are kept per server, and how many bytes at most.
const STDERR_LINES: usize = 1000;
const STDERR_BYTES: usize = 512 * 1024;

/// A server that keeps paginating past this many pages is treated as broken.
const MAX_LIST_PAGES: usize = 1000;

/// Told about changes that matter to the merged view and to upstream sessions.
pub trait DownstreamObserver: Send + Sync + 'static {
    /// The tools a server contributes changed: it became ready, re-listed, or went away.
    fn tools_changed(&self, server: &str);
    /// A notification from a server that belongs to no call (log messages, resource
    /// updates, prompt/resource list changes).
    fn notification(&self, server: &str, notification: ServerNotification);
}

/// Timeouts that apply when a server entry sets none.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    pub call_timeout: Duration,
    pub startup_timeout: Duration,
}

/// Where a server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Starting,
    Ready,
    Failed,
    Stopped,
    Disabled,
}

/// A point-in-time view of one server, for `GET /servers` and messages.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerStatus {
    pub name: String,
    pub transport: &'static str,
    pub status: Status,
    pub pid: Option<u32>,
    pub uptime_seconds: Option<f64>,
    pub tool_count: usize,
    pub last_error: Option<String>,
    pub protocol_version: Option<String>,
    pub server_info: Option<ServerInfo>,
    /// How long startup took (spawn → tools listed), in milliseconds.
    pub startup_ms: Option<u64>,
}

/// Name and version the server reported in `initialize`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerInfo {
    pub name: String,
    pub version: String,
}

#[derive(Debug)]
struct State {
    status: Status,
    pid: Option<u32>,
    ready_since: Option<Instant>,
    last_error: Option<String>,
    /// Exposed tools while ready; empty otherwise.
    tools: Arc<Vec<Tool>>,
    /// The tools it had when last ready (kept after it fails, for clearer errors).
    known_tools: Arc<Vec<Tool>>,
    startup: Option<Duration>,
}

/// What keeps the server's process or session alive; stopped on shutdown.
#[derive(Debug, Clone)]
enum Wire {
    Child(stdio::ChildHandle),
    Http(http::HttpHandle),
}

impl Wire {
    async fn stop(&self) {
        match self {
            Wire::Child(child) => {
                child.stop().await;
            }
            Wire::Http(http) => http.stop().await,
        }
    }
}

/// One configured server.
pub struct Downstream {
    /// The `mcpServers` key.
    name: Arc<str>,
    /// Its configuration as loaded.
    entry: ServerEntry,
    /// Global timeouts for what the entry leaves unset.
    defaults: Defaults,
    /// Status and tools; behind a short-held lock.
    state: Mutex<State>,
    /// Mirrors `state.status` so waiters can watch it.
    status_tx: watch::Sender<Status>,
    /// The live connection while ready.
    connection: ArcSwapOption<Connection>,
    /// The last lines the server wrote to stderr.
    stderr: Arc<StderrLog>,
    /// Who hears about tool changes and notifications.
    observer: Arc<dyn DownstreamObserver>,
    /// Cancelled to stop the server for good.
    stop: CancellationToken,
    /// Cancelled when the supervisor task has finished (process reaped).
    finished: CancellationToken,
}

impl std::fmt::Debug for Downstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downstream")
            .field("name", &self.name)
            .finish()
    }
}

impl Downstream {
    fn new(
        entry: ServerEntry,
        defaults: Defaults,
        observer: Arc<dyn DownstreamObserver>,
    ) -> Arc<Self> {
        let status = if entry.disabled {
            Status::Disabled
        } else {
            Status::Starting
        };
        Arc::new(Downstream {
            name: Arc::from(entry.name.as_str()),
            entry,
            defaults,
            state: Mutex::new(State {
                status,
                pid: None,
                ready_since: None,
                last_error: None,
                tools: Arc::new(Vec::new()),
                known_tools: Arc::new(Vec::new()),
                startup: None,
            }),
            status_tx: watch::channel(status).0,
            connection: ArcSwapOption::empty(),
            stderr: Arc::new(StderrLog::new(STDERR_LINES, STDERR_BYTES)),
            observer,
            stop: CancellationToken::new(),
            finished: CancellationToken::new(),
        })
    }

    /// The server's name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Its configuration.
    pub fn entry(&self) -> &ServerEntry {
        &self.entry
    }

    /// The namespace prefix for its tools.
    pub fn prefix(&self) -> &str {
        self.entry.prefix.as_deref().unwrap_or(&self.entry.name)
    }

    /// The per-call timeout for this server.
    pub fn call_timeout(&self) -> Duration {
        self.entry.timeout.unwrap_or(self.defaults.call_timeout)
    }

    /// The tools it exposes (after its filter); empty unless ready.
    pub fn tools(&self) -> Arc<Vec<Tool>> {
        self.lock_state().tools.clone()
    }

    /// The tools it had when it was last ready (empty if it never was).
    pub fn known_tools(&self) -> Arc<Vec<Tool>> {
        self.lock_state().known_tools.clone()
    }

    /// Its current status.
    pub fn status(&self) -> Status {
        self.lock_state().status
    }

    /// Its stderr buffer.
    pub fn stderr(&self) -> &Arc<StderrLog> {
        &self.stderr
    }

    /// The live connection, or why there is none.
    pub fn connection(&self) -> Result<Arc<Connection>, DownstreamError> {
        if let Some(connection) = self.connection.load_full()
            && !connection.is_closed()
        {
            return Ok(connection);
        }
        let state = self.lock_state();
        let reason = match state.status {
            Status::Starting => "it is still starting".to_owned(),
            Status::Ready => "its connection just ended".to_owned(),
            Status::Failed => format!(
                "it failed: {}",
                state.last_error.as_deref().unwrap_or("unknown error")
            ),
            Status::Stopped => "it was stopped".to_owned(),
            Status::Disabled => "it is disabled in the configuration".to_owned(),
        };
        Err(DownstreamError::Unavailable {
            server: self.name.to_string(),
            reason,
        })
    }

    /// A snapshot for status output.
    pub fn snapshot(&self) -> ServerStatus {
        let info = self
            .connection
            .load()
            .as_ref()
            .and_then(|c| c.info().cloned());
        let state = self.lock_state();
        ServerStatus {
            name: self.name.to_string(),
            transport: self.entry.transport.kind(),
            status: state.status,
            pid: state.pid,
            uptime_seconds: state
                .ready_since
                .filter(|_| state.status == Status::Ready)
                .map(|t| (t.elapsed().as_secs_f64() * 1000.0).round() / 1000.0),
            tool_count: state.tools.len(),
            last_error: state.last_error.clone(),
            protocol_version: info.as_ref().map(|i| i.protocol_version.to_string()),
            server_info: info.map(|i| ServerInfo {
                name: i.server_info.name,
                version: i.server_info.version,
            }),
            startup_ms: state.startup.map(|d| d.as_millis() as u64),
        }
    }

    /// Resolves once the server is past `starting` (ready, failed, stopped or disabled).
    pub async fn settled(&self) {
        let mut rx = self.status_tx.subscribe();
        let _ = rx.wait_for(|s| *s != Status::Starting).await;
    }

    /// Stops the server and waits until its process is gone.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        self.finished.cancelled().await;
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a new status. A change into or out of `ready` is reported to the observer
    /// (which rebuilds the catalogue) before anyone watching the status sees it, so a
    /// waiter woken by `ready` finds the tools already listed.
    fn set_status(&self, status: Status, error: Option<String>) {
        let was_ready = {
            let mut state = self.lock_state();
            let was_ready = state.status == Status::Ready;
            state.status = status;
            if status != Status::Ready {
                state.tools = Arc::new(Vec::new());
                state.ready_since = None;
            }
            if error.is_some() {
                state.last_error = error;
            }
            was_ready
        };
        if was_ready || status == Status::Ready {
            self.observer.tools_changed(&self.name);
        }
        self.status_tx.send_replace(status);
    }

    /// The supervisor: start, serve until the connection ends or a stop is asked, clean up.
    async fn run(self: Arc<Self>) {
        if self.entry.disabled {
            self.finished.cancel();
            return;
        }
        let started = Instant::now();
        let startup_timeout = self
            .entry
            .startup_timeout
            .unwrap_or(self.defaults.startup_timeout);
        let mut wire_slot: Option<Wire> = None;
        let attempt = tokio::select! {
            result = tokio::time::timeout(startup_timeout, self.start(&mut wire_slot, startup_timeout)) => match result {
                Ok(result) => result,
                Err(_) => Err(format!("it did not finish starting within {}", humanize(startup_timeout))),
            },
            _ = self.stop.cancelled() => Err("stopped while starting".to_owned()),
        };
        match attempt {
            Ok((connection, tools)) => {
                {
                    let mut state = self.lock_state();
                    let tools = Arc::new(tools);
                    state.known_tools = tools.clone();
                    state.tools = tools;
                    state.ready_since = Some(Instant::now());
                    state.startup = Some(started.elapsed());
                    state.last_error = None;
                }
                self.connection.store(Some(connection.clone()));
                tracing::info!(server = %self.name, tools = self.tools().len(),
                    startup_ms = started.elapsed().as_millis() as u64, "server ready");
                self.set_status(Status::Ready, None);
                tokio::select! {
                    _ = connection.closed() => {
                        let mut reason = connection.close_reason().unwrap_or_else(|| "the connection ended".into());
                        if let Some(line) = self.stderr.last_line() {
                            reason.push_str(&format!("; last stderr line: {line}"));
                        }
                        tracing::warn!(server = %self.name, %reason, "server went away");
                        self.set_status(Status::Failed, Some(reason));
                    }
                    _ = self.stop.cancelled() => self.set_status(Status::Stopped, None),
                }
            }
            Err(mut reason) => {
                if let Some(wire) = &wire_slot {
                    wire.stop().await;
                }
                if let Some(line) = self.stderr.last_line() {
                    reason.push_str(&format!("; last stderr line: {line}"));
                }
                if self.stop.is_cancelled() {
                    self.set_status(Status::Stopped, None);
                } else {
                    tracing::error!(server = %self.name, %reason, "server failed to start");
                    self.set_status(Status::Failed, Some(reason));
                }
            }
        }
        if let Some(wire) = wire_slot {
            wire.stop().await;
        }
        self.connection.store(None);
        self.finished.cancel();
    }

    /// Spawns or connects, initializes, lists tools. The wire is put in `wire_slot` as soon
    /// as it exists so the caller can stop it whatever happens next.
    async fn start(
        self: &Arc<Self>,
        wire_slot: &mut Option<Wire>,
        startup_timeout: Duration,
    ) -> Result<(Arc<Connection>, Vec<Tool>), String> {
        let sink = self.notification_sink();
        let connection = match &self.entry.transport {
            TransportSpec::Stdio {
                command,
                args,
                env,
                cwd,
            } => {
                let spec = stdio::StdioSpec {
                    command,
                    args,
                    env,
                    cwd: cwd.as_deref(),
                };
                let (connection, child) =
                    stdio::spawn(self.name.clone(), &spec, sink, self.stderr.clone())
                        .map_err(|e| format!("cannot run `{command}`: {e}"))?;
                self.lock_state().pid = Some(child.pid());
                *wire_slot = Some(Wire::Child(child));
                connection
            }
            TransportSpec::StreamableHttp { url, headers } => {
                let (connection, handle) = http::connect(self.name.clone(), url, headers, sink)?;
                *wire_slot = Some(Wire::Http(handle));
                connection
            }
            TransportSpec::Sse { .. } => {
                return Err("legacy HTTP+SSE servers are not supported yet".to_owned());
            }
        };
        // The whole start is bounded by `startup_timeout`; the per-call timeout does not apply.
        let info = connection
            .initialize(ClientCapabilities::default(), startup_timeout)
            .await
            .map_err(|e| format!("initialize failed: {e}"))?;
        let tools = if info.capabilities.tools.is_some() {
            self.list_tools(&connection, startup_timeout).await?
        } else {
            Vec::new()
        };
        Ok((connection, tools))
    }

    /// Lists every page of tools and applies the tool filter.
    async fn list_tools(
        &self,
        connection: &Connection,
        timeout: Duration,
    ) -> Result<Vec<Tool>, String> {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let request = match cursor.take() {
                Some(cursor) => ListToolsRequest::with_param(
                    PaginatedRequestParams::default().with_cursor(Some(cursor)),
                ),
                None => ListToolsRequest::default(),
            };
            let request = ClientRequest::ListToolsRequest(request);
            let reply = connection
                .request(
                    request,
                    CallOptions {
                        timeout,
                        ..CallOptions::default()
                    },
                )
                .await
                .map_err(|e| format!("tools/list failed: {e}"))?;
            let page: ListToolsResult = reply
                .decode()
                .map_err(|e| format!("tools/list returned an invalid result: {e}"))?;
            tools.extend(
                page.tools
                    .into_iter()
                    .filter(|t| self.entry.tools.allows(&t.name)),
            );
            match page.next_cursor {
                Some(next) if !next.is_empty() => cursor = Some(next),
                _ => return Ok(tools),
            }
        }
        Err(format!(
            "tools/list kept paginating past {MAX_LIST_PAGES} pages"
        ))
    }

    /// The connection's sink: tool-list changes re-list here; everything else goes up.
    fn notification_sink(self: &Arc<Self>) -> connection::NotificationSink {
        let weak: Weak<Downstream> = Arc::downgrade(self);
        Arc::new(move |notification| {
            let Some(downstream) = weak.upgrade() else {
                return;
            };
            match notification {
                ServerNotification::ToolListChangedNotification(_) => {
                    tokio::spawn(async move { downstream.refresh_tools().await });
                }
                other => downstream.observer.notification(&downstream.name, other),
            }
        })
    }

    /// Re-lists tools after `notifications/tools/list_changed`.
    async fn refresh_tools(&self) {
        let Ok(connection) = self.connection() else {
            return;
        };
        match self.list_tools(&connection, self.call_timeout()).await {
            Ok(tools) => {
                {
                    let mut state = self.lock_state();
                    let tools = Arc::new(tools);
                    state.known_tools = tools.clone();
                    state.tools = tools;
                }
                tracing::info!(server = %self.name, tools = self.tools().len(), "tool list changed");
                self.observer.tools_changed(&self.name);
            }
            Err(error) => tracing::warn!(server = %self.name, %error, "could not re-list tools"),
        }
    }
}

/// All configured servers.
pub struct DownstreamSet {
    servers: BTreeMap<Arc<str>, Arc<Downstream>>,
}

impl DownstreamSet {
    /// Creates every server without starting anything.
    pub fn new(
        entries: &[ServerEntry],
        defaults: Defaults,
        observer: Arc<dyn DownstreamObserver>,
    ) -> DownstreamSet {
        let servers = entries
            .iter()
            .map(|entry| {
                let downstream = Downstream::new(entry.clone(), defaults, observer.clone());
                (downstream.name.clone(), downstream)
            })
            .collect();
        DownstreamSet { servers }
    }

    /// Starts every enabled server concurrently; returns at once.
    pub fn start_all(&self) {
        for downstream in self.servers.values() {
            tokio::spawn(downstream.clone().run());
        }
    }

    /// The server called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Downstream>> {
        self.servers.get(name)
    }

    /// All servers, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Downstream>> {
        self.servers.values()
    }

    /// Waits until every server is past `starting`.
    pub async fn settled(&self) {
        futures::future::join_all(self.servers.values().map(|d| d.settled())).await;
    }

    /// Stops every server concurrently and waits until all processes are gone.
    pub async fn shutdown(&self) {
        futures::future::join_all(self.servers.values().map(|d| d.shutdown())).await;
    }

    /// Status of every server, by name.
    pub fn snapshot(&self) -> Vec<ServerStatus> {
        self.servers.values().map(|d| d.snapshot()).collect()
    }
}
