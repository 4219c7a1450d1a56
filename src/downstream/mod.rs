//! Downstreams: one live connection per configured MCP server, and its lifecycle.
//!
//! A [`Downstream`] owns one server: it starts it (child process or remote session), runs the
//! `initialize` handshake with the pinned protocol version, lists what it offers (tools after
//! its filter, prompts, resources, templates — following pagination), keeps its status
//! (`starting`, `ready`, `failed`, `stopped`, `disabled`) with pid, uptime, last error and its
//! stderr buffer, and re-lists when the server says a list changed. A [`DownstreamSet`] holds
//! them all and starts them concurrently, so startup takes as long as the slowest server.
//!
//! It reports through a [`DownstreamObserver`] and never knows who is upstream. One server
//! failing never affects another: each runs in its own task.

mod connection;
mod error;
pub mod guard;
mod http;
mod isolated;
mod lists;
mod outbound;
mod server;
mod sse;
mod stderr_log;
mod stdio;
mod supervisor;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rmcp::model::{ClientResult, ErrorData, ServerNotification, ServerRequest};

use crate::config::{HealthPolicy, RestartPolicy, ServerEntry};

pub use connection::{
    ACCEPTED_DOWNSTREAM_VERSIONS, CallEvent, CallOptions, Connection, DOWNSTREAM_PROTOCOL_VERSION,
    Reply,
};
pub use error::{DownstreamError, humanize};
pub use lists::{ListKind, Lists};
pub use server::{Control, Downstream};

pub use stderr_log::{LogLine, StderrLog};
pub use stdio::{describe_exit, use_child_guard};

/// Installs rustls' ring crypto provider for the process (idempotent). reqwest is built
/// without a default provider, and refuses to create a client until one is installed;
/// everything in mcp-orch that builds an HTTP client calls this first.
pub fn ensure_tls_provider() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Told about what matters to the merged view and to upstream sessions.
pub trait DownstreamObserver: Send + Sync + 'static {
    /// What a server offers changed: one list (`Some`), or everything because it became
    /// ready or went away (`None`).
    fn lists_changed(&self, server: &str, kind: Option<ListKind>);
    /// A notification from a server that belongs to no call (log messages, resource
    /// updates, elicitation completions). `session` is set for a per-session instance.
    fn notification(&self, server: &str, session: Option<u64>, notification: ServerNotification);
    /// A server→client request no call in flight can take. `session` is set for a
    /// per-session instance.
    fn server_request(
        &self,
        server: &str,
        session: Option<u64>,
        request: ServerRequest,
    ) -> BoxFuture<'static, Result<ClientResult, ErrorData>>;
    /// Something notable happened to a server (it went away); told to clients as a log
    /// message.
    fn server_event(&self, server: &str, message: &str);
}

/// What applies to every server unless its entry says otherwise.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    /// Per-call timeout.
    pub call_timeout: Duration,
    /// Time to start, initialize and list.
    pub startup_timeout: Duration,
    /// Ceiling on a call even while progress keeps extending it.
    pub max_timeout: Duration,
    /// How servers that went away are restarted.
    pub restart: RestartPolicy,
    /// Periodic pings.
    pub health: HealthPolicy,
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
    pub prompt_count: usize,
    pub resource_count: usize,
    pub last_error: Option<String>,
    pub protocol_version: Option<String>,
    pub server_info: Option<ServerInfo>,
    /// How long startup took (spawn → everything listed), in milliseconds.
    pub startup_ms: Option<u64>,
    /// `shared` or `session`.
    pub isolation: &'static str,
    /// Per-session instances running (isolated servers).
    pub session_instances: usize,
    /// Restarts since mcp-orch started.
    pub restarts: u32,
    /// How its last process ended (`code 7`, `signal 9`).
    pub last_exit: Option<String>,
    /// Its last exit code.
    pub last_exit_code: Option<i32>,
    /// Seconds until the next automatic restart, while waiting for one.
    pub next_retry_seconds: Option<f64>,
}

/// Name and version the server reported in `initialize`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerInfo {
    pub name: String,
    pub version: String,
}

/// All configured servers. The set can change at runtime ([`DownstreamSet::apply`]); readers
/// get a consistent snapshot without locking.
pub struct DownstreamSet {
    /// The servers by name; replaced as a whole on reload.
    servers: arc_swap::ArcSwap<BTreeMap<Arc<str>, Arc<Downstream>>>,
    /// Settings for servers created from now on.
    defaults: std::sync::Mutex<Defaults>,
    /// Told about every server's events.
    observer: Arc<dyn DownstreamObserver>,
    /// Serialises reloads.
    editing: tokio::sync::Mutex<()>,
}

/// What a reload changed, by server name.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SetChange {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Restarted because their entry changed.
    pub changed: Vec<String>,
    /// Left running, connections and calls untouched.
    pub unchanged: Vec<String>,
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
                (downstream.name().clone(), downstream)
            })
            .collect();
        DownstreamSet {
            servers: arc_swap::ArcSwap::from_pointee(servers),
            defaults: std::sync::Mutex::new(defaults),
            observer,
            editing: tokio::sync::Mutex::new(()),
        }
    }

    /// Starts every enabled server concurrently; returns at once.
    pub fn start_all(&self) {
        for downstream in self.servers.load().values() {
            tokio::spawn(downstream.clone().run());
        }
    }

    /// The server called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Downstream>> {
        self.servers.load().get(name).cloned()
    }

    /// All servers, by name (a snapshot).
    pub fn iter(&self) -> std::vec::IntoIter<Arc<Downstream>> {
        let snapshot: Vec<Arc<Downstream>> = self.servers.load().values().cloned().collect();
        snapshot.into_iter()
    }

    /// Waits until every server is past `starting`.
    pub async fn settled(&self) {
        let servers = self.servers.load_full();
        futures::future::join_all(servers.values().map(|d| d.settled())).await;
    }

    /// Stops every server concurrently and waits until all processes are gone.
    pub async fn shutdown(&self) {
        let servers = self.servers.load_full();
        futures::future::join_all(servers.values().map(|d| d.shutdown())).await;
    }

    /// Stops the per-session instances a session had.
    pub async fn release_session(&self, session: u64) {
        let servers = self.servers.load_full();
        futures::future::join_all(servers.values().map(|d| d.release_session(session))).await;
    }

    /// Status of every server, by name.
    pub fn snapshot(&self) -> Vec<ServerStatus> {
        self.servers.load().values().map(|d| d.snapshot()).collect()
    }

    /// Makes the set match `entries`: starts added servers, stops removed ones, restarts
    /// only those whose entry changed; the others keep their process, connection and calls
    /// in flight. `defaults` apply to the servers created by this reload.
    pub async fn apply(&self, entries: &[ServerEntry], defaults: Defaults) -> SetChange {
        let _editing = self.editing.lock().await;
        *self.defaults.lock().unwrap_or_else(|p| p.into_inner()) = defaults;
        let old = self.servers.load_full();
        let mut next = BTreeMap::new();
        let mut change = SetChange::default();
        let mut retired = Vec::new();
        let mut fresh = Vec::new();
        for entry in entries {
            match old.get(entry.name.as_str()) {
                Some(current) if current.entry() == entry => {
                    change.unchanged.push(entry.name.clone());
                    next.insert(current.name().clone(), current.clone());
                }
                existing => {
                    if let Some(current) = existing {
                        change.changed.push(entry.name.clone());
                        retired.push(current.clone());
                    } else {
                        change.added.push(entry.name.clone());
                    }
                    let downstream =
                        Downstream::new(entry.clone(), defaults, self.observer.clone());
                    next.insert(downstream.name().clone(), downstream.clone());
                    fresh.push(downstream);
                }
            }
        }
        for (name, current) in old.iter() {
            if !next.contains_key(name) {
                change.removed.push(name.to_string());
                retired.push(current.clone());
            }
        }
        // Publish first, so no new call reaches a server that is going away; then stop the
        // old processes before starting their replacements (a server may hold a port).
        self.servers.store(Arc::new(next));
        futures::future::join_all(retired.iter().map(|d| d.shutdown())).await;
        for downstream in fresh {
            tokio::spawn(downstream.run());
        }
        self.observer.lists_changed("", None);
        change
    }
}
