//! The MCP server clients talk to: one rmcp `ServerHandler` per upstream session, the same
//! code behind the stdio face, `/mcp` and `/sse`.
//!
//! It answers `initialize` with the protocol versions deployed clients speak (rmcp would
//! offer 2026-07-28) and the capabilities of an aggregator, serves lists from the router's
//! cached catalogue, and forwards every other request through the router. While a request
//! runs, what the server sends for it comes back here: progress is relayed with the
//! client's own token, and server→client requests (sampling, elicitation, roots) are asked
//! of this session's client — inside the request's task, so over Streamable HTTP they
//! travel on the stream of the request that caused them.

#![allow(deprecated)]

use std::borrow::Cow;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use rmcp::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams, CompleteResult,
    ContentBlock, ErrorData, GetPromptRequestParams, GetPromptResponse, Implementation,
    InitializeRequestParams, InitializeResult, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
    ProgressToken, ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse,
    ServerCapabilities, SetLevelRequestParams, SubscribeRequestParams, UnsubscribeRequestParams,
};
use rmcp::service::{NotificationContext, Peer, RequestContext, RoleServer};
use tokio::sync::mpsc;

use super::http_sessions::HttpSessions;
use crate::downstream::CallEvent;
use crate::router::{CallContext, Router, RouterError, SessionRegistration, UpstreamSession};

/// Protocol revisions accepted from clients, newest first. (The `/mcp` face's cached
/// `tools/list` has the shape of these; a 2026-07-28 entry would need its own.)
pub const UPSTREAM_PROTOCOL_VERSIONS: [ProtocolVersion; 4] = [
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_03_26,
    ProtocolVersion::V_2024_11_05,
];

/// How long `initialize` waits for servers still starting, so the merged instructions are
/// complete for most setups without making a client wait for a slow server.
const INITIALIZE_WAIT: Duration = Duration::from_secs(5);

/// One upstream session's handler.
pub struct ProxyHandler {
    router: Arc<Router>,
    /// This session's id (allocated when the transport created the handler).
    id: u64,
    /// Registered with the router once the client has initialized; dropped with the session.
    registration: Mutex<Option<SessionRegistration>>,
    /// For a `/mcp` session: where it is recorded under its `Mcp-Session-Id` once known.
    http: Option<HttpIdentity>,
}

/// A `/mcp` handler's place in the [`HttpSessions`] directory.
struct HttpIdentity {
    directory: Arc<HttpSessions>,
    /// Its `Mcp-Session-Id`, once a message carried it.
    id: std::sync::OnceLock<String>,
}

impl Drop for ProxyHandler {
    fn drop(&mut self) {
        if let Some(http) = &self.http
            && let Some(id) = http.id.get()
        {
            http.directory.remove(id);
        }
    }
}

impl ProxyHandler {
    /// A handler for a new session.
    pub fn new(router: Arc<Router>) -> Self {
        let id = router.sessions().next_id();
        ProxyHandler {
            router,
            id,
            registration: Mutex::new(None),
            http: None,
        }
    }

    /// A handler for a new `/mcp` session, which records itself in `directory` under its
    /// `Mcp-Session-Id` once it knows it.
    pub fn for_http(router: Arc<Router>, directory: Arc<HttpSessions>) -> Self {
        let mut handler = ProxyHandler::new(router);
        handler.http = Some(HttpIdentity {
            directory,
            id: std::sync::OnceLock::new(),
        });
        handler
    }

    /// Records this `/mcp` session under the `Mcp-Session-Id` that `extensions` (rmcp puts
    /// the HTTP request's parts there) carries, the first time one does.
    fn learn_http_id(&self, extensions: &rmcp::model::Extensions) {
        let Some(http) = &self.http else { return };
        if http.id.get().is_some() {
            return;
        }
        let id = extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.headers.get("mcp-session-id"))
            .and_then(|value| value.to_str().ok());
        if let (Some(id), Some(session)) = (id, self.session())
            && http.id.set(id.to_owned()).is_ok()
        {
            http.directory.insert(id.to_owned(), session);
        }
    }

    /// This session's id (its [`UpstreamSession`] has it once the client has initialized).
    pub fn id(&self) -> u64 {
        self.id
    }

    fn session(&self) -> Option<Arc<UpstreamSession>> {
        self.registration
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|r| r.session().clone())
    }

    fn require_session(&self) -> Result<Arc<UpstreamSession>, ErrorData> {
        self.session()
            .ok_or_else(|| ErrorData::invalid_request("the session has not been initialized", None))
    }

    /// Runs one forwarded request, relaying its progress and server→client requests to
    /// this session until it completes (or the client cancels it).
    ///
    /// The work runs in one heap allocation: rmcp spawns a task per request and moves the
    /// handler's future several times on the way, so a small future (a pointer) instead of
    /// the whole forwarding state machine saves kilobytes of copying per call.
    async fn forward<T, F, Fut>(
        &self,
        context: &RequestContext<RoleServer>,
        run: F,
    ) -> Result<T, RouterError>
    where
        F: FnOnce(CallContext) -> Fut,
        Fut: Future<Output = Result<T, RouterError>>,
    {
        Box::pin(self.forward_inline(context, run)).await
    }

    async fn forward_inline<T, F, Fut>(
        &self,
        context: &RequestContext<RoleServer>,
        run: F,
    ) -> Result<T, RouterError>
    where
        F: FnOnce(CallContext) -> Fut,
        Fut: Future<Output = Result<T, RouterError>>,
    {
        let session = self.session();
        let progress = context
            .meta
            .get_progress_token()
            .map(|token| (&context.peer, token));
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let call = run(CallContext {
            session: session.clone(),
            meta: Some(context.meta.clone()),
            events: Some(events_tx),
            cancel: Some(context.ct.clone()),
            internal: false,
            timeout: None,
        });
        relay_during(&self.router, &session, progress, events_rx, call).await
    }
}

/// Server→client requests being relayed during one call.
type Asks = FuturesUnordered<BoxFuture<'static, ()>>;

/// Waits for `call`, relaying what its server sends for it meanwhile (`events`): progress
/// to `progress` (the session's peer, with the caller's own token; dropped without one) and
/// server→client requests to `session`'s client. Progress the server sent before its reply
/// is already queued when the call ends: it is delivered before returning, so none is lost
/// and the order is kept. Shared by rmcp's path and the direct path.
pub(super) async fn relay_during<T>(
    router: &Arc<Router>,
    session: &Option<Arc<UpstreamSession>>,
    progress: Option<(&Peer<RoleServer>, ProgressToken)>,
    mut events: mpsc::UnboundedReceiver<CallEvent>,
    call: impl Future<Output = T>,
) -> T {
    tokio::pin!(call);
    // Made at the first server→client request (most calls have none: no allocation).
    let mut asks: Option<Asks> = None;
    let outcome = loop {
        tokio::select! {
            biased;
            Some(event) = events.recv() => {
                // Boxed: relaying is rare and its future large; inline, every call's
                // future would carry (and copy) it.
                Box::pin(on_event(event, router, session, &progress, &mut asks)).await;
            }
            Some(()) = async { asks.as_mut()?.next().await },
                if asks.as_ref().is_some_and(|asks| !asks.is_empty()) => {}
            outcome = &mut call => break outcome,
        }
    };
    while let Ok(event) = events.try_recv() {
        Box::pin(on_event(event, router, session, &progress, &mut asks)).await;
    }
    outcome
}

async fn on_event(
    event: CallEvent,
    router: &Arc<Router>,
    session: &Option<Arc<UpstreamSession>>,
    progress: &Option<(&Peer<RoleServer>, ProgressToken)>,
    asks: &mut Option<Asks>,
) {
    match event {
        CallEvent::Progress(update) => {
            if let Some((peer, token)) = progress {
                let mut param = ProgressNotificationParam::new(token.clone(), update.progress);
                param.total = update.total;
                param.message = update.message;
                let _ = peer.notify_progress(param).await;
            }
        }
        CallEvent::ServerRequest {
            server,
            request,
            respond,
        } => {
            let (router, session) = (router.clone(), session.clone());
            asks.get_or_insert_with(Asks::new)
                .push(Box::pin(async move {
                    let answer = match session {
                        Some(session) => router.relay(&server, &session, request).await,
                        None => Err(ErrorData::invalid_request(
                            "the session has not been initialized",
                            None,
                        )),
                    };
                    let _ = respond.send(answer);
                }));
        }
    }
}

impl ServerHandler for ProxyHandler {
    fn get_info(&self) -> InitializeResult {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_resources_list_changed()
            .enable_logging()
            .enable_completions()
            .build();
        let mut info = InitializeResult::new(capabilities);
        info.protocol_version = ProtocolVersion::V_2025_11_25;
        info.server_info = Implementation::new("mcp-orch", env!("CARGO_PKG_VERSION"));
        info.instructions = Some(self.router.instructions());
        info
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Owned(UPSTREAM_PROTOCOL_VERSIONS.to_vec())
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        context.peer.set_peer_info(request.clone());
        let registration = self.router.register_session(
            self.id,
            context.peer.clone(),
            request.capabilities.clone(),
        );
        tracing::debug!(session = self.id, client = %request.client_info.name,
            version = %request.protocol_version, "client initialized");
        *self.registration.lock().unwrap_or_else(|p| p.into_inner()) = Some(registration);
        self.router.wait_started(INITIALIZE_WAIT).await;
        self.negotiate_initialize(&request)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.learn_http_id(&context.extensions);
        self.router.startup_complete().await;
        let catalog = self.router.catalog();
        Ok(ListToolsResult::with_all_items(
            catalog.tools().iter().map(|t| t.tool.clone()).collect(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.learn_http_id(&context.extensions);
        let router = self.router.clone();
        let name = request.name.to_string();
        let outcome = self
            .forward(&context, |call| async move {
                router.call_tool(&name, request.arguments, call).await
            })
            .await;
        match outcome {
            Ok(result) => Ok(CallToolResponse::Complete(result)),
            Err(error) if error.is_tool_result_error() => {
                Ok(CallToolResponse::Complete(CallToolResult::error(vec![
                    ContentBlock::text(error.to_string()),
                ])))
            }
            Err(error) => Err(error.to_jsonrpc()),
        }
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.router.startup_complete().await;
        let catalog = self.router.catalog();
        Ok(ListPromptsResult::with_all_items(
            catalog.prompts().iter().map(|p| p.prompt.clone()).collect(),
        ))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let router = self.router.clone();
        self.forward(&context, |call| async move {
            router
                .get_prompt(&request.name, request.arguments, call)
                .await
        })
        .await
        .map(GetPromptResponse::Complete)
        .map_err(|e| e.to_jsonrpc())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.router.startup_complete().await;
        let catalog = self.router.catalog();
        Ok(ListResourcesResult::with_all_items(
            catalog
                .resources()
                .iter()
                .map(|r| r.resource.clone())
                .collect(),
        ))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.router.startup_complete().await;
        let catalog = self.router.catalog();
        Ok(ListResourceTemplatesResult::with_all_items(
            catalog
                .templates()
                .iter()
                .map(|t| t.template.clone())
                .collect(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let router = self.router.clone();
        self.forward(&context, |call| async move {
            router.read_resource(&request.uri, call).await
        })
        .await
        .map(ReadResourceResponse::Complete)
        .map_err(|e| e.to_jsonrpc())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let session = self.require_session()?;
        self.router
            .subscribe(&session, &request.uri)
            .await
            .map_err(|e| e.to_jsonrpc())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let session = self.require_session()?;
        self.router
            .unsubscribe(&session, &request.uri)
            .await
            .map_err(|e| e.to_jsonrpc())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let router = self.router.clone();
        self.forward(&context, |call| async move {
            router.complete(request, call).await
        })
        .await
        .map_err(|e| e.to_jsonrpc())
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let session = self.require_session()?;
        self.router.set_level(&session, request.level).await;
        Ok(())
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        self.learn_http_id(&context.extensions);
    }

    async fn on_roots_list_changed(&self, _context: NotificationContext<RoleServer>) {
        if let Some(session) = self.session() {
            self.router.roots_list_changed(&session).await;
        }
    }
}
