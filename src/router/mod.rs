//! The router: the shared core every face calls.
//!
//! Owns the merged [`Catalog`] (rebuilt whenever a server's lists change, swapped atomically
//! so lookups never lock), the registry of upstream sessions with their log levels and
//! subscriptions, and the forwarding of every request to the server that owns a name or URI
//! ([`forward`]), and of every server event back to the session(s) it belongs to
//! ([`events`]). It never knows which face a request came from, and faces never reach a
//! downstream except through it.

mod error;
mod events;
mod forward;
mod sessions;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rmcp::model::{ClientCapabilities, RequestMetaObject};
use rmcp::service::{Peer, RoleServer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::catalog::{Catalog, ServerTools};
use crate::config::ServerEntry;
use crate::downstream::{CallEvent, Defaults, DownstreamSet, Lists};

pub use error::RouterError;
pub use sessions::{SessionRegistration, Sessions, UpstreamSession, level_rank};

/// How the router is set up.
#[derive(Debug, Clone)]
pub struct RouterSettings {
    /// Between prefix and name in exposed tool and prompt names.
    pub separator: String,
    /// Timeouts for servers that set none.
    pub defaults: Defaults,
}

impl RouterSettings {
    /// The settings `config.yaml` gives.
    pub fn from_service(service: &crate::config::ServiceConfig) -> Self {
        let proxy = &service.proxy;
        RouterSettings {
            separator: proxy.separator.clone(),
            defaults: Defaults {
                call_timeout: proxy.default_timeout,
                startup_timeout: proxy.startup_timeout,
                max_timeout: proxy.max_timeout,
                restart: proxy.restart,
                health: proxy.health,
            },
        }
    }
}

/// What a caller passes along with a request besides its parameters.
#[derive(Debug, Default)]
pub struct CallContext {
    /// The upstream session it comes from (`None` for REST and batch callers).
    pub session: Option<Arc<UpstreamSession>>,
    /// The upstream request's `_meta`, forwarded downstream (its progress token is replaced
    /// by the downstream one).
    pub meta: Option<RequestMetaObject>,
    /// Where progress and server→client requests for this call go.
    pub events: Option<mpsc::UnboundedSender<CallEvent>>,
    /// Cancelled when the caller gives up.
    pub cancel: Option<CancellationToken>,
    /// mcp-orch's own request (subscriptions, log level), not a caller's.
    pub internal: bool,
    /// The caller's own limit for this request (a batch task's attempt timeout), in place of
    /// the server's `timeout`/`toolTimeouts`; still capped by the server's `maxTimeout`.
    pub timeout: Option<Duration>,
}

impl CallContext {
    /// The context of a request mcp-orch makes for itself.
    pub fn internal() -> Self {
        CallContext {
            internal: true,
            ..CallContext::default()
        }
    }
}

/// How long a request for a name not (yet) in the catalogue waits for servers still starting.
const STARTUP_WAIT: Duration = Duration::from_secs(120);

/// The shared core.
pub struct Router {
    /// Replaced on reload.
    settings: ArcSwap<RouterSettings>,
    /// Every configured server.
    downstreams: DownstreamSet,
    /// What the ready servers offer; replaced, never mutated.
    catalog: ArcSwap<Catalog>,
    /// The same, from what every server offered when it was last ready; only consulted to
    /// explain why a name that is not in `catalog` cannot be used.
    known: ArcSwap<Catalog>,
    /// Connected upstream sessions.
    sessions: Arc<Sessions>,
    /// Serialises catalogue rebuilds so two concurrent changes cannot publish out of order.
    rebuild: Mutex<()>,
    /// Set once every server has finished its first start (ready or failed).
    started: AtomicBool,
    /// Set when the process stops its servers for good: their leaving the catalogue one by
    /// one would rebuild it once per server for nobody (sessions have ended by then).
    stopping: AtomicBool,
    /// How many sessions subscribed to each `(server, original URI)` of a shared server.
    subscribers: Mutex<HashMap<(Arc<str>, String), usize>>,
    /// URL-mode elicitations in flight: elicitation id → the session that was asked.
    elicitations: Mutex<HashMap<String, u64>>,
    /// Requests forwarded to servers and not answered yet (for the shutdown drain).
    in_flight: std::sync::atomic::AtomicUsize,
    /// Woken whenever `in_flight` drops.
    drained: tokio::sync::Notify,
}

/// Counts one forwarded request for as long as it lives.
pub(super) struct InFlight<'a>(&'a Router);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.drained.notify_waiters();
    }
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("tools", &self.catalog.load().len())
            .finish()
    }
}

impl Router {
    /// Creates the router and starts every enabled server concurrently. Returns at once;
    /// servers join the catalogue as they become ready.
    pub fn start(entries: &[ServerEntry], settings: RouterSettings) -> Arc<Router> {
        let router = Arc::new_cyclic(|weak: &std::sync::Weak<Router>| {
            let observer = Arc::new(events::RouterObserver(weak.clone()));
            Router {
                downstreams: DownstreamSet::new(entries, settings.defaults, observer),
                settings: ArcSwap::from_pointee(settings),
                catalog: ArcSwap::from_pointee(Catalog::default()),
                known: ArcSwap::from_pointee(Catalog::default()),
                sessions: Arc::new(Sessions::default()),
                rebuild: Mutex::new(()),
                started: AtomicBool::new(false),
                stopping: AtomicBool::new(false),
                subscribers: Mutex::new(HashMap::new()),
                elicitations: Mutex::new(HashMap::new()),
                in_flight: std::sync::atomic::AtomicUsize::new(0),
                drained: tokio::sync::Notify::new(),
            }
        });
        router.downstreams.start_all();
        router
    }

    /// The current merged catalogue.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.load_full()
    }

    /// The configured servers.
    pub fn downstreams(&self) -> &DownstreamSet {
        &self.downstreams
    }

    /// The upstream session registry.
    pub fn sessions(&self) -> &Arc<Sessions> {
        &self.sessions
    }

    /// Registers an upstream session whose client has initialized. Dropping the returned
    /// registration ends it: its subscriptions and per-session server instances are released.
    pub fn register_session(
        self: &Arc<Self>,
        id: u64,
        peer: Peer<RoleServer>,
        capabilities: ClientCapabilities,
    ) -> SessionRegistration {
        let router = Arc::downgrade(self);
        self.sessions.register(
            id,
            peer,
            capabilities,
            Box::new(move |session| {
                if let Some(router) = router.upgrade()
                    && let Ok(runtime) = tokio::runtime::Handle::try_current()
                {
                    runtime.spawn(async move { router.session_ended(session).await });
                }
            }),
        )
    }

    /// Waits (at most `limit`) until every server has finished starting, so the first
    /// `tools/list` of a freshly started proxy is complete.
    pub async fn wait_started(&self, limit: Duration) -> bool {
        if self.started.load(Ordering::Acquire) {
            return true;
        }
        let settled = tokio::time::timeout(limit, self.downstreams.settled())
            .await
            .is_ok();
        if settled {
            self.started.store(true, Ordering::Release);
        }
        settled
    }

    /// Whether every server has finished its first start (no waiting).
    pub fn has_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// Waits (bounded) for the first start of every server; what list and call paths use.
    pub async fn startup_complete(&self) -> bool {
        self.wait_started(STARTUP_WAIT).await
    }

    /// Applies a new configuration: the set of servers (only added, removed and changed
    /// ones are touched) and the settings; then rebuilds the catalogue (clients are told
    /// when it changed).
    pub async fn apply_config(
        &self,
        entries: &[ServerEntry],
        settings: RouterSettings,
    ) -> crate::downstream::SetChange {
        let defaults = settings.defaults;
        self.settings.store(Arc::new(settings));
        let change = self.downstreams.apply(entries, defaults).await;
        self.rebuild_catalog();
        change
    }

    /// Counts a forwarded request until the returned guard is dropped.
    pub(super) fn track(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self)
    }

    /// How many forwarded requests are waiting for an answer.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Waits until no forwarded request is in flight, or `grace` has passed; returns how
    /// many were still in flight.
    pub async fn drain(&self, grace: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let waiting = self.drained.notified();
            let left = self.in_flight();
            if left == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, waiting).await.is_err() {
                return self.in_flight();
            }
        }
    }

    /// Stops every server and waits until their processes are gone. The catalogue is left
    /// as it was: nothing is served after this.
    pub async fn shutdown(&self) {
        self.stopping.store(true, Ordering::Release);
        self.downstreams.shutdown().await;
    }

    /// The downstream servers' `instructions`, merged under one heading per server.
    pub fn instructions(&self) -> String {
        let mut text = String::from(
            "mcp-orch serves several MCP servers as one. Tool and prompt names start with the \
             name of the server that provides them.",
        );
        for downstream in self.downstreams.iter() {
            if let Some(instructions) = downstream
                .info()
                .and_then(|i| i.instructions)
                .filter(|i| !i.trim().is_empty())
            {
                text.push_str(&format!(
                    "\n\n## {}\n\n{}",
                    downstream.name(),
                    instructions.trim()
                ));
            }
        }
        text
    }

    /// Rebuilds the catalogue from the ready servers and, for each kind of list that
    /// changed, tells every upstream session.
    fn rebuild_catalog(&self) {
        if self.stopping.load(Ordering::Acquire) {
            return;
        }
        let _serialised = self.rebuild.lock().unwrap_or_else(|p| p.into_inner());
        let contribution = |lists: Lists, d: &crate::downstream::Downstream| ServerTools {
            server: d.name().clone(),
            prefix: d.prefix().to_owned(),
            tools: lists.tools,
            prompts: lists.prompts,
            resources: lists.resources,
            templates: lists.templates,
            serves_resources: lists.serves_resources,
        };
        // `known` (what every server offered when last ready) usually is exactly what the
        // ready servers offer now (always while servers start): then it is the same
        // snapshot, built once.
        let mut ready = Vec::new();
        let mut known = Vec::new();
        let mut known_is_ready = true;
        for d in self.downstreams.iter() {
            let (listed, known_lists) = d.catalog_lists();
            known_is_ready &= match &listed {
                Some(lists) => known_lists.is_same(lists),
                None => known_lists.is_empty(),
            };
            if let Some(lists) = listed {
                ready.push(contribution(lists, &d));
            }
            known.push(contribution(known_lists, &d));
        }
        let separator = &self.settings.load().separator;
        let next = Arc::new(Catalog::build(ready, separator));
        self.known.store(if known_is_ready {
            next.clone()
        } else {
            Arc::new(Catalog::build(known, separator))
        });
        let previous = self.catalog.load_full();
        let tools_changed = !next.same_tools_as(&previous);
        let prompts_changed = !next.same_prompts_as(&previous);
        let resources_changed = !next.same_resources_as(&previous);
        self.catalog.store(next);
        if tools_changed {
            self.sessions.broadcast(
                |_| true,
                |peer| async move { peer.notify_tool_list_changed().await },
            );
        }
        if prompts_changed {
            self.sessions.broadcast(
                |_| true,
                |peer| async move { peer.notify_prompt_list_changed().await },
            );
        }
        if resources_changed {
            self.sessions.broadcast(
                |_| true,
                |peer| async move { peer.notify_resource_list_changed().await },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn after_shutdown_a_rebuild_leaves_the_catalogue_as_it_was() {
        let settings = RouterSettings::from_service(&crate::config::ServiceConfig::default());
        let router = Router::start(&[], settings);
        let before = router.catalog();
        router.rebuild_catalog();
        assert!(
            !Arc::ptr_eq(&before, &router.catalog()),
            "a rebuild swaps the snapshot"
        );
        router.shutdown().await;
        let stopped = router.catalog();
        router.rebuild_catalog();
        assert!(
            Arc::ptr_eq(&stopped, &router.catalog()),
            "rebuilt after shutdown"
        );
    }
}
