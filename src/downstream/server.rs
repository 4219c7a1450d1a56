//! One configured server: its lifecycle, status and lists, and its per-session copies.
//!
//! The supervisor starts the shared instance (spawn or connect, `initialize` with the pinned
//! protocol version and the client capabilities configured for it, then list everything it
//! offers), keeps the status, re-lists when the server says a list changed, and cleans up
//! when the connection ends or a stop is asked. For `"isolation": "session"` servers,
//! [`Downstream::connection_for`] additionally starts one instance per upstream session.

#![allow(deprecated)]

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use futures::FutureExt;
use rmcp::model::{ClientCapabilities, InitializeResult, ServerNotification};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::connection::{Connection, ConnectionHooks};
use super::isolated::SessionInstances;
use super::lists::{self, ListKind, Lists};
use super::stderr_log::StderrLog;
use super::{
    Defaults, DownstreamError, DownstreamObserver, ServerInfo, ServerStatus, Status, http, sse,
    stdio,
};
use crate::config::{ForwardedCapabilities, Isolation, ServerEntry, TransportSpec};

/// How many stderr lines are kept per server, and how many bytes at most.
const STDERR_LINES: usize = 1000;
const STDERR_BYTES: usize = 512 * 1024;
/// How long a failure reason waits for the rest of an exited child's stderr (a grandchild
/// holding the pipe open must not delay it further).
const STDERR_DRAIN_WAIT: Duration = Duration::from_millis(300);

#[derive(Debug)]
pub(super) struct State {
    pub(super) status: Status,
    pub(super) pid: Option<u32>,
    pub(super) ready_since: Option<Instant>,
    pub(super) last_error: Option<String>,
    /// What it offers while ready; empty otherwise.
    pub(super) lists: Lists,
    /// What it offered when last ready (kept after it fails, for clearer errors).
    pub(super) known: Lists,
    /// How long the last start took.
    pub(super) startup: Option<Duration>,
    /// Its `initialize` answer while ready.
    pub(super) info: Option<InitializeResult>,
    /// Restarts since mcp-orch started (crashes, health failures, operator restarts).
    pub(super) restarts: u32,
    /// How its last process ended, e.g. `code 7` or `signal 9`.
    pub(super) last_exit: Option<String>,
    /// Its last exit code, when it exited with one.
    pub(super) last_exit_code: Option<i32>,
    /// When the next automatic restart is due, while waiting for one.
    pub(super) next_retry_at: Option<Instant>,
}

/// What keeps an instance's process or session alive.
#[derive(Debug, Clone)]
pub(super) enum Wire {
    Child(stdio::ChildHandle),
    Http(http::HttpHandle),
    Sse(sse::SseHandle),
}

impl Wire {
    pub(super) async fn stop(&self) {
        match self {
            Wire::Child(child) => {
                child.stop().await;
            }
            Wire::Http(http) => http.stop().await,
            Wire::Sse(sse) => sse.stop().await,
        }
    }

    /// For a child process: waits (bounded) until its stderr is all in the log.
    pub(super) async fn stderr_drained(&self) {
        if let Wire::Child(child) = self {
            child.stderr_drained(STDERR_DRAIN_WAIT).await;
        }
    }

    /// For a child process that has exited: `("code 7", Some(7))` or `("signal 9", None)`.
    pub(super) fn exit(&self) -> Option<(String, Option<i32>)> {
        let Wire::Child(child) = self else {
            return None;
        };
        let status = child.exit_status()?;
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            if let Some(signal) = status.signal() {
                return Some((format!("signal {signal}"), None));
            }
        }
        status
            .code()
            .map(|code| (format!("code {code}"), Some(code)))
    }

    pub(super) fn pid(&self) -> Option<u32> {
        match self {
            Wire::Child(child) => Some(child.pid()),
            Wire::Http(_) | Wire::Sse(_) => None,
        }
    }
}

/// One configured server.
pub struct Downstream {
    /// The `mcpServers` key.
    pub(super) name: Arc<str>,
    /// Its configuration as loaded.
    pub(super) entry: ServerEntry,
    /// Global timeouts for what the entry leaves unset.
    pub(super) defaults: Defaults,
    /// Status and lists; behind a short-held lock.
    state: Mutex<State>,
    /// Mirrors `state.status` so waiters can watch it.
    status_tx: watch::Sender<Status>,
    /// The shared instance's connection while ready.
    pub(super) connection: ArcSwapOption<Connection>,
    /// The last lines the server wrote to stderr (all instances).
    pub(super) stderr: Arc<StderrLog>,
    /// Who hears about list changes, notifications and unattributed server requests.
    pub(super) observer: Arc<dyn DownstreamObserver>,
    /// Per-session instances (`"isolation": "session"`).
    sessions: SessionInstances,
    /// Cancelled to stop the server for good.
    pub(super) stop: CancellationToken,
    /// Cancelled when the supervisor task has finished (process reaped).
    pub(super) finished: CancellationToken,
    /// Operator commands (restart, stop, start) for the supervisor.
    control: mpsc::UnboundedSender<Control>,
    /// The supervisor's end of `control`, taken when it starts.
    pub(super) control_rx: Mutex<Option<mpsc::UnboundedReceiver<Control>>>,
}

/// What an operator can ask of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Stop the current process (if any) and start again now.
    Restart,
    /// Stop it and keep it stopped.
    Stop,
    /// Start a stopped (or failed, waiting) server now.
    Start,
}

impl std::fmt::Debug for Downstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downstream")
            .field("name", &self.name)
            .finish()
    }
}

impl Downstream {
    pub(super) fn new(
        entry: ServerEntry,
        defaults: Defaults,
        observer: Arc<dyn DownstreamObserver>,
    ) -> Arc<Self> {
        let status = if entry.disabled {
            Status::Disabled
        } else {
            Status::Starting
        };
        let (control, control_rx) = mpsc::unbounded_channel();
        Arc::new(Downstream {
            control,
            control_rx: Mutex::new(Some(control_rx)),
            name: Arc::from(entry.name.as_str()),
            sessions: SessionInstances::new(entry.max_sessions),
            entry,
            defaults,
            state: Mutex::new(State {
                status,
                pid: None,
                ready_since: None,
                last_error: None,
                lists: Lists::default(),
                known: Lists::default(),
                startup: None,
                info: None,
                restarts: 0,
                last_exit: None,
                last_exit_code: None,
                next_retry_at: None,
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

    /// The namespace prefix for its tools and prompts.
    pub fn prefix(&self) -> &str {
        self.entry.prefix.as_deref().unwrap_or(&self.entry.name)
    }

    /// The per-call timeout for this server.
    pub fn call_timeout(&self) -> Duration {
        self.entry.timeout.unwrap_or(self.defaults.call_timeout)
    }

    /// The timeout of one tool: its `toolTimeouts` entry, else the server's.
    pub fn timeout_for(&self, tool: &str) -> Duration {
        self.entry
            .tool_timeouts
            .get(tool)
            .copied()
            .unwrap_or_else(|| self.call_timeout())
    }

    /// The ceiling on a call even while progress keeps extending it.
    pub fn max_timeout(&self) -> Duration {
        self.entry.max_timeout.unwrap_or(self.defaults.max_timeout)
    }

    /// What it offers (tools after its filter); empty unless ready.
    pub fn lists(&self) -> Lists {
        self.lock_state().lists.clone()
    }

    /// For a catalogue rebuild, read together: its current lists if they belong in the
    /// catalogue (it is ready: set just before the catalogue is rebuilt, and
    /// [`status`](Self::status) is published after it), and what it offered when it was
    /// last ready (empty if it never was).
    pub fn catalog_lists(&self) -> (Option<Lists>, Lists) {
        let state = self.lock_state();
        let listed = (state.status == Status::Ready).then(|| state.lists.clone());
        (listed, state.known.clone())
    }

    /// Its `initialize` answer while ready (capabilities, instructions).
    pub fn info(&self) -> Option<InitializeResult> {
        self.lock_state().info.clone()
    }

    /// Its current status as the outside sees it: a change is published only once the
    /// catalogue has followed it, so a caller who sees `ready` finds the server's tools.
    pub fn status(&self) -> Status {
        *self.status_tx.borrow()
    }

    /// Its stderr buffer.
    pub fn stderr(&self) -> &Arc<StderrLog> {
        &self.stderr
    }

    /// The shared instance's connection, or why there is none.
    pub fn connection(&self) -> Result<Arc<Connection>, DownstreamError> {
        let current = self.connection.load_full();
        if let Some(connection) = &current
            && !connection.is_closed()
        {
            return Ok(connection.clone());
        }
        let state = self.lock_state();
        let reason = match (state.status, current) {
            // The supervisor has not caught up with the end of the connection yet.
            (Status::Ready, Some(closed)) => format!(
                "it went away: {}",
                closed
                    .close_reason()
                    .unwrap_or_else(|| "the connection ended".to_owned())
            ),
            (Status::Ready, None) => "its connection just ended".to_owned(),
            (Status::Starting, _) if state.restarts > 0 => format!(
                "it is restarting after: {}",
                state.last_error.as_deref().unwrap_or("a failure")
            ),
            (Status::Starting, _) => "it is still starting".to_owned(),
            (Status::Failed, _) => format!(
                "it failed: {}",
                state.last_error.as_deref().unwrap_or("unknown error")
            ),
            (Status::Stopped, _) => "it was stopped".to_owned(),
            (Status::Disabled, _) => "it is disabled in the configuration".to_owned(),
        };
        Err(DownstreamError::Unavailable {
            server: self.name.to_string(),
            reason,
        })
    }

    /// The connection a call from `session` uses: the session's own instance for an
    /// `"isolation": "session"` server (started on first use), else the shared one.
    pub async fn connection_for(
        self: &Arc<Self>,
        session: Option<u64>,
    ) -> Result<Arc<Connection>, DownstreamError> {
        match (self.entry.isolation, session) {
            (Isolation::Session, Some(session)) => {
                // Only serve sessions while the server itself is up.
                self.connection()?;
                // Boxed: starting an instance makes a large future, which every call's
                // future would otherwise carry (and copy) inline.
                Box::pin(self.sessions.connection(self, session)).await
            }
            _ => self.connection(),
        }
    }

    /// Stops the instance a session had (if any); called when the session ends.
    pub async fn release_session(&self, session: u64) {
        self.sessions.release(session).await;
    }

    /// A snapshot for status output.
    pub fn snapshot(&self) -> ServerStatus {
        let connection_ended = self
            .connection
            .load()
            .as_ref()
            .is_none_or(|c| c.is_closed());
        let published = self.status();
        let state = self.lock_state();
        // Between a connection ending and the supervisor noticing, report it as failed.
        let status = match published {
            Status::Ready if connection_ended => Status::Failed,
            status => status,
        };
        ServerStatus {
            name: self.name.to_string(),
            transport: self.entry.transport.kind(),
            status,
            pid: state.pid,
            uptime_seconds: state
                .ready_since
                .filter(|_| state.status == Status::Ready)
                .map(|t| (t.elapsed().as_secs_f64() * 1000.0).round() / 1000.0),
            tool_count: state.lists.tools.len(),
            prompt_count: state.lists.prompts.len(),
            resource_count: state.lists.resources.len(),
            last_error: state.last_error.clone(),
            protocol_version: state.info.as_ref().map(|i| i.protocol_version.to_string()),
            server_info: state.info.as_ref().map(|i| ServerInfo {
                name: i.server_info.name.clone(),
                version: i.server_info.version.clone(),
            }),
            startup_ms: state.startup.map(|d| d.as_millis() as u64),
            isolation: match self.entry.isolation {
                Isolation::Shared => "shared",
                Isolation::Session => "session",
            },
            session_instances: self.sessions.len(),
            restarts: state.restarts,
            last_exit: state.last_exit.clone(),
            last_exit_code: state.last_exit_code,
            next_retry_seconds: state.next_retry_at.map(|at| {
                let left = at.saturating_duration_since(Instant::now()).as_secs_f64();
                (left * 10.0).round() / 10.0
            }),
        }
    }

    /// Asks the supervisor to restart, stop or start the server. `false` when the server
    /// is disabled or mcp-orch is shutting down.
    pub fn control(&self, command: Control) -> bool {
        !self.entry.disabled && !self.stop.is_cancelled() && self.control.send(command).is_ok()
    }

    /// Resolves once the server is past `starting` (ready, failed, stopped or disabled).
    pub async fn settled(&self) {
        let mut rx = self.status_tx.subscribe();
        let _ = rx.wait_for(|s| *s != Status::Starting).await;
    }

    /// Stops the server (and its per-session instances) and waits until every process is
    /// gone.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        self.finished.cancelled().await;
        self.sessions.release_all().await;
    }

    pub(super) fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a new status. A change into or out of `ready` is reported to the observer
    /// (which rebuilds the catalogue) before anyone watching the status sees it, so a
    /// waiter woken by `ready` finds the lists already merged.
    pub(super) fn set_status(&self, status: Status, error: Option<String>) {
        let was_ready = {
            let mut state = self.lock_state();
            let was_ready = state.status == Status::Ready;
            state.status = status;
            if status != Status::Ready {
                state.lists = Lists::default();
                state.ready_since = None;
                state.info = None;
            }
            if error.is_some() {
                state.last_error = error;
            }
            was_ready
        };
        if was_ready || status == Status::Ready {
            self.observer.lists_changed(&self.name, None);
        }
        self.status_tx.send_replace(status);
    }

    /// Starts the shared instance and lists what it offers.
    pub(super) async fn start(
        self: &Arc<Self>,
        hooks: ConnectionHooks,
        wire_slot: &mut Option<Wire>,
        startup_timeout: Duration,
    ) -> Result<(Arc<Connection>, InitializeResult, Lists), String> {
        let (connection, info) = self.launch(hooks, wire_slot, startup_timeout).await?;
        self.lock_state().pid = wire_slot.as_ref().and_then(Wire::pid);
        let lists = lists::list_everything(
            &connection,
            &info.capabilities,
            &self.entry.tools,
            startup_timeout,
        )
        .await?;
        Ok((connection, info, lists))
    }

    /// Spawns or connects one instance and runs `initialize`. The wire is put in
    /// `wire_slot` as soon as it exists so the caller can stop it whatever happens next.
    pub(super) async fn launch(
        &self,
        hooks: ConnectionHooks,
        wire_slot: &mut Option<Wire>,
        timeout: Duration,
    ) -> Result<(Arc<Connection>, InitializeResult), String> {
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
                    stdio::spawn(self.name.clone(), &spec, hooks, self.stderr.clone())
                        .map_err(|e| format!("cannot run `{command}`: {e}"))?;
                *wire_slot = Some(Wire::Child(child));
                connection
            }
            TransportSpec::StreamableHttp { url, headers } => {
                let (connection, handle) = http::connect(self.name.clone(), url, headers, hooks)?;
                *wire_slot = Some(Wire::Http(handle));
                connection
            }
            TransportSpec::Sse { url, headers } => {
                let (connection, handle) =
                    sse::connect(self.name.clone(), url, headers, hooks).await?;
                *wire_slot = Some(Wire::Sse(handle));
                connection
            }
        };
        let info = connection
            .initialize(client_capabilities(&self.entry.capabilities), timeout)
            .await
            .map_err(|e| format!("initialize failed: {e}"))?;
        Ok((connection, info))
    }

    /// The start timeout for this server.
    pub(super) fn startup_timeout(&self) -> Duration {
        self.entry
            .startup_timeout
            .unwrap_or(self.defaults.startup_timeout)
    }

    /// The hooks of an instance: the shared one (`session` = `None`) re-lists on list
    /// changes; a per-session one reports everything for its session only.
    pub(super) fn hooks(self: &Arc<Self>, session: Option<u64>) -> ConnectionHooks {
        let weak: Weak<Downstream> = Arc::downgrade(self);
        let sink_weak = weak.clone();
        let sink = Arc::new(move |notification: ServerNotification| {
            let Some(downstream) = sink_weak.upgrade() else {
                return;
            };
            let kind = match &notification {
                ServerNotification::ToolListChangedNotification(_) => Some(ListKind::Tools),
                ServerNotification::PromptListChangedNotification(_) => Some(ListKind::Prompts),
                ServerNotification::ResourceListChangedNotification(_) => Some(ListKind::Resources),
                _ => None,
            };
            match (kind, session) {
                (Some(kind), None) => {
                    tokio::spawn(async move { downstream.refresh(kind).await });
                }
                (Some(_), Some(_)) => {
                    tracing::debug!(server = %downstream.name, "ignoring a per-session instance's list change");
                }
                (None, _) => {
                    downstream
                        .observer
                        .notification(&downstream.name, session, notification)
                }
            }
        });
        let fallback = Arc::new(move |request| match weak.upgrade() {
            Some(downstream) => {
                downstream
                    .observer
                    .server_request(&downstream.name, session, request)
            }
            None => async {
                Err(rmcp::model::ErrorData::internal_error(
                    "mcp-orch is shutting down",
                    None,
                ))
            }
            .boxed(),
        });
        ConnectionHooks { sink, fallback }
    }

    /// Re-lists one list after the server said it changed.
    async fn refresh(&self, kind: ListKind) {
        let Ok(connection) = self.connection() else {
            return;
        };
        let timeout = self.call_timeout();
        let result = match kind {
            ListKind::Tools => lists::list_tools(&connection, &self.entry.tools, timeout)
                .await
                .map(|tools| {
                    let tools = Arc::new(tools);
                    let mut state = self.lock_state();
                    state.lists.tools = tools.clone();
                    state.known.tools = tools;
                }),
            ListKind::Prompts => lists::list_prompts(&connection, timeout)
                .await
                .map(|prompts| {
                    let prompts = Arc::new(prompts);
                    let mut state = self.lock_state();
                    state.lists.prompts = prompts.clone();
                    state.known.prompts = prompts;
                }),
            ListKind::Resources => {
                lists::list_resources(&connection, timeout)
                    .await
                    .map(|(resources, templates)| {
                        let (resources, templates) = (Arc::new(resources), Arc::new(templates));
                        let mut state = self.lock_state();
                        state.lists.resources = resources.clone();
                        state.lists.templates = templates.clone();
                        state.known.resources = resources;
                        state.known.templates = templates;
                    })
            }
        };
        match result {
            Ok(()) => {
                tracing::info!(server = %self.name, ?kind, "list changed");
                self.observer.lists_changed(&self.name, Some(kind));
            }
            Err(error) => tracing::warn!(server = %self.name, %error, "could not re-list"),
        }
    }
}

/// The client capabilities advertised to a server on behalf of upstream clients.
fn client_capabilities(forwarded: &ForwardedCapabilities) -> ClientCapabilities {
    let mut capabilities = serde_json::Map::new();
    if forwarded.sampling {
        capabilities.insert("sampling".into(), serde_json::json!({}));
    }
    if forwarded.elicitation {
        capabilities.insert(
            "elicitation".into(),
            serde_json::json!({ "form": {}, "url": {} }),
        );
    }
    if forwarded.roots {
        capabilities.insert("roots".into(), serde_json::json!({ "listChanged": true }));
    }
    serde_json::from_value(serde_json::Value::Object(capabilities)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use futures::future::BoxFuture;
    use rmcp::ErrorData;
    use rmcp::model::{ClientResult, ServerRequest};

    use super::*;
    use crate::downstream::{DownstreamObserver, DownstreamSet};

    /// Records, each time the catalogue would be rebuilt, what the server reports then.
    #[derive(Default)]
    struct AtRebuild {
        server: OnceLock<Arc<Downstream>>,
        seen: Mutex<Vec<(Status, bool)>>,
    }

    impl DownstreamObserver for AtRebuild {
        fn lists_changed(&self, _server: &str, _kind: Option<ListKind>) {
            if let (Some(server), Ok(mut seen)) = (self.server.get(), self.seen.lock()) {
                seen.push((server.status(), server.catalog_lists().0.is_some()));
            }
        }
        fn notification(&self, _: &str, _: Option<u64>, _: ServerNotification) {}
        fn server_request(
            &self,
            _: &str,
            _: Option<u64>,
            _: ServerRequest,
        ) -> BoxFuture<'static, Result<ClientResult, ErrorData>> {
            Box::pin(async { Err(ErrorData::internal_error("not in this test", None)) })
        }
        fn server_event(&self, _: &str, _: &str) {}
    }

    /// A caller who sees `ready` (or sees it end) must find the catalogue already changed:
    /// the catalogue is rebuilt from `catalog_lists` while the published status is still the
    /// old one, and the new status is published after.
    #[test]
    fn a_status_is_published_only_after_the_catalogue_followed_it() {
        let config = r#"{"mcpServers": {"s": {"command": "true"}}}"#;
        let servers = crate::config::parse_mcp_servers(config, None)
            .unwrap_or_else(|e| panic!("config: {e}"));
        let settings =
            crate::router::RouterSettings::from_service(&crate::config::ServiceConfig::default());
        let observer = Arc::new(AtRebuild::default());
        let set = DownstreamSet::new(&servers.servers, settings.defaults, observer.clone());
        let server = set.get("s").unwrap_or_else(|| panic!("no server s"));
        let _ = observer.server.set(server.clone());
        assert_eq!(server.status(), Status::Starting);

        server.set_status(Status::Ready, None);
        server.set_status(Status::Failed, Some("went away".into()));
        let seen = observer.seen.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(
            seen,
            vec![(Status::Starting, true), (Status::Ready, false)],
            "at each rebuild: (published status, listed)"
        );
        assert_eq!(server.status(), Status::Failed);
        assert!(server.catalog_lists().0.is_none());
    }
}
