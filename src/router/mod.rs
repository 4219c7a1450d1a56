//! The router: the shared core every face calls.
//!
//! Owns the merged [`Catalog`] (rebuilt whenever a server's tools change, swapped atomically
//! so lookups never lock), the registry of upstream sessions (for `list_changed`), and the
//! forwarding of calls to the server that owns a name. It never knows which face a request
//! came from, and faces never reach a downstream except through it.

mod error;
mod sessions;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, ClientRequest, JsonObject,
    RequestMetaObject, ServerNotification,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::catalog::{Catalog, CatalogTool, ServerTools};
use crate::config::ServerEntry;
use crate::downstream::{
    CallEvent, CallOptions, Defaults, Downstream, DownstreamError, DownstreamObserver,
    DownstreamSet, Reply, Status,
};

pub use error::RouterError;
pub use sessions::{SessionRegistration, Sessions};

/// How the router is set up.
#[derive(Debug, Clone)]
pub struct RouterSettings {
    /// Between prefix and tool name in exposed names.
    pub separator: String,
    /// Timeouts for servers that set none.
    pub defaults: Defaults,
}

/// What a caller passes along with a call besides the arguments.
#[derive(Debug, Default)]
pub struct CallContext {
    /// The upstream request's `_meta`, forwarded downstream (its progress token is replaced
    /// by the downstream one).
    pub meta: Option<RequestMetaObject>,
    /// Where progress and server→client requests for this call go.
    pub events: Option<mpsc::UnboundedSender<CallEvent>>,
    /// Cancelled when the caller gives up.
    pub cancel: Option<CancellationToken>,
}

/// The shared core.
pub struct Router {
    settings: RouterSettings,
    /// Every configured server.
    downstreams: DownstreamSet,
    /// The merged tools of the ready servers; replaced, never mutated.
    catalog: ArcSwap<Catalog>,
    /// The same, built from what every server listed when it was last ready; only consulted
    /// to explain why a name that is not in `catalog` cannot be called.
    known: ArcSwap<Catalog>,
    /// Connected upstream sessions.
    sessions: Arc<Sessions>,
    /// Serialises catalogue rebuilds so two concurrent changes cannot publish out of order.
    rebuild: std::sync::Mutex<()>,
    /// Set once every server has finished its first start (ready or failed).
    started: std::sync::atomic::AtomicBool,
}

/// How long a call for a name not (yet) in the catalogue waits for servers still starting.
const STARTUP_WAIT: Duration = Duration::from_secs(120);

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("tools", &self.catalog.load().len())
            .finish()
    }
}

/// Forwards downstream events to the router without keeping it alive.
struct RouterObserver(std::sync::Weak<Router>);

impl DownstreamObserver for RouterObserver {
    fn tools_changed(&self, _server: &str) {
        if let Some(router) = self.0.upgrade() {
            router.rebuild_catalog();
        }
    }

    fn notification(&self, server: &str, notification: ServerNotification) {
        tracing::debug!(%server, ?notification, "downstream notification");
    }
}

impl Router {
    /// Creates the router and starts every enabled server concurrently. Returns at once;
    /// servers join the catalogue as they become ready.
    pub fn start(entries: &[ServerEntry], settings: RouterSettings) -> Arc<Router> {
        let router = Arc::new_cyclic(|weak: &std::sync::Weak<Router>| {
            let observer = Arc::new(RouterObserver(weak.clone()));
            Router {
                downstreams: DownstreamSet::new(entries, settings.defaults, observer),
                settings,
                catalog: ArcSwap::from_pointee(Catalog::default()),
                known: ArcSwap::from_pointee(Catalog::default()),
                sessions: Arc::new(Sessions::default()),
                rebuild: std::sync::Mutex::new(()),
                started: std::sync::atomic::AtomicBool::new(false),
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

    /// Waits (at most `limit`) until every server has finished starting, so the first
    /// `tools/list` of a freshly started proxy is complete.
    pub async fn wait_started(&self, limit: Duration) -> bool {
        use std::sync::atomic::Ordering;
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

    /// Waits (bounded) for the first start of every server; what list and call paths use.
    pub async fn startup_complete(&self) -> bool {
        self.wait_started(STARTUP_WAIT).await
    }

    /// Stops every server and waits until their processes are gone.
    pub async fn shutdown(&self) {
        self.downstreams.shutdown().await;
    }

    /// Resolves `{server}.{tool}` (the REST form) using the catalogue, never by splitting:
    /// every server name that is a prefix of `target` followed by `.` is tried, longest
    /// first. An exposed name is accepted too.
    pub async fn resolve_rest_name(&self, target: &str) -> Option<CatalogTool> {
        if let Some(found) = self.resolve_in(&self.catalog(), target) {
            return Some(found);
        }
        if self.wait_started(STARTUP_WAIT).await
            && let Some(found) = self.resolve_in(&self.catalog(), target)
        {
            return Some(found);
        }
        self.resolve_in(&self.known.load(), target)
    }

    fn resolve_in(&self, catalog: &Catalog, target: &str) -> Option<CatalogTool> {
        let mut servers: Vec<&Arc<Downstream>> = self
            .downstreams
            .iter()
            .filter(|d| {
                target.len() > d.name().len() + 1
                    && target.starts_with(&**d.name())
                    && target.as_bytes()[d.name().len()] == b'.'
            })
            .collect();
        servers.sort_by_key(|d| std::cmp::Reverse(d.name().len()));
        for downstream in servers {
            let tool = &target[downstream.name().len() + 1..];
            if let Some(found) = catalog.get_original(downstream.name(), tool) {
                return Some(found.clone());
            }
        }
        catalog.get(target).cloned()
    }

    /// Calls the tool clients know as `exposed`.
    pub async fn call_tool(
        &self,
        exposed: &str,
        arguments: Option<JsonObject>,
        context: CallContext,
    ) -> Result<CallToolResult, RouterError> {
        let reply = self.forward_call(exposed, arguments, context).await?;
        reply
            .decode::<CallToolResult>()
            .map_err(|e| self.invalid_result(exposed, e))
    }

    /// Calls a tool and returns its result as raw JSON (the REST face passes it through).
    pub async fn call_tool_json(
        &self,
        exposed: &str,
        arguments: Option<JsonObject>,
        context: CallContext,
    ) -> Result<serde_json::Value, RouterError> {
        let reply = self.forward_call(exposed, arguments, context).await?;
        reply
            .into_value()
            .map_err(|e| self.invalid_result(exposed, e))
    }

    async fn forward_call(
        &self,
        exposed: &str,
        arguments: Option<JsonObject>,
        context: CallContext,
    ) -> Result<Reply, RouterError> {
        let mut catalog = self.catalog.load();
        if catalog.get(exposed).is_none() && self.wait_started(STARTUP_WAIT).await {
            // A call that raced the servers' startup sees the finished catalogue.
            catalog = self.catalog.load();
        }
        let Some(tool) = catalog.get(exposed) else {
            return Err(self.why_missing(exposed));
        };
        let downstream = self
            .downstreams
            .get(&tool.server)
            .ok_or_else(|| RouterError::UnknownServer(tool.server.to_string()))?;
        let connection = downstream.connection()?;
        let mut params = CallToolRequestParams::new(tool.original.to_string());
        params.arguments = arguments;
        drop(catalog);
        let mut request = CallToolRequest::new(params);
        if let Some(meta) = context.meta {
            use rmcp::model::GetExtensions;
            request.extensions_mut().insert(meta);
        }
        let options = CallOptions {
            timeout: downstream.call_timeout(),
            events: context.events,
            cancel: context.cancel,
        };
        Ok(connection
            .request(ClientRequest::CallToolRequest(request), options)
            .await?)
    }

    /// A name that is not callable: either unknown, or a tool of a server that is down.
    fn why_missing(&self, exposed: &str) -> RouterError {
        let known = self.known.load();
        let owner = known
            .get(exposed)
            .and_then(|t| self.downstreams.get(&t.server));
        match owner.map(|d| d.connection()) {
            Some(Err(unavailable)) => RouterError::Downstream(unavailable),
            _ => RouterError::UnknownTool(exposed.to_owned()),
        }
    }

    fn invalid_result(&self, exposed: &str, error: serde_json::Error) -> RouterError {
        let server = self
            .catalog
            .load()
            .get(exposed)
            .map(|t| t.server.to_string())
            .unwrap_or_default();
        RouterError::Downstream(DownstreamError::Protocol {
            server,
            what: "tools/call result",
            detail: error.to_string(),
        })
    }

    /// Rebuilds the catalogue from the ready servers and, when what clients see changed,
    /// tells every upstream session.
    fn rebuild_catalog(&self) {
        let _serialised = self.rebuild.lock().unwrap_or_else(|p| p.into_inner());
        let servers: Vec<ServerTools> = self
            .downstreams
            .iter()
            .filter(|d| d.status() == Status::Ready)
            .map(|d| ServerTools {
                server: d.name().clone(),
                prefix: d.prefix().to_owned(),
                tools: d.tools(),
            })
            .collect();
        let known: Vec<ServerTools> = self
            .downstreams
            .iter()
            .map(|d| ServerTools {
                server: d.name().clone(),
                prefix: d.prefix().to_owned(),
                tools: d.known_tools(),
            })
            .collect();
        self.known
            .store(Arc::new(Catalog::build(known, &self.settings.separator)));
        let next = Catalog::build(servers, &self.settings.separator);
        let changed = !next.same_tools_as(&self.catalog.load());
        self.catalog.store(Arc::new(next));
        if changed {
            tracing::debug!(tools = self.catalog.load().len(), "catalogue changed");
            self.sessions.broadcast_tools_changed();
        }
    }
}
