//! The MCP server clients talk to: one rmcp `ServerHandler` per upstream session, the same
//! code behind the stdio face and `/mcp`.
//!
//! It answers `initialize` with the protocol versions deployed clients speak (rmcp would
//! offer 2026-07-28), serves `tools/list` from the router's cached catalogue, and forwards
//! `tools/call` through the router while relaying the call's progress back with the
//! client's own progress token and honouring the client's cancellation.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use rmcp::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientResult, ContentBlock, ErrorCode,
    ErrorData, Implementation, InitializeRequestParams, InitializeResult, ListToolsResult,
    PaginatedRequestParams, ProgressNotificationParam, ProtocolVersion, ServerCapabilities,
};
use rmcp::service::{RequestContext, RoleServer};
use tokio::sync::mpsc;

use crate::downstream::CallEvent;
use crate::router::{CallContext, Router, SessionRegistration};

/// Protocol revisions accepted from clients, newest first.
pub const UPSTREAM_PROTOCOL_VERSIONS: [ProtocolVersion; 4] = [
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_03_26,
    ProtocolVersion::V_2024_11_05,
];

/// One upstream session's handler.
pub struct ProxyHandler {
    router: Arc<Router>,
    /// Registered with the router once the client has initialized; dropped with the session.
    registration: Mutex<Option<SessionRegistration>>,
}

impl ProxyHandler {
    /// A handler for a new session.
    pub fn new(router: Arc<Router>) -> Self {
        ProxyHandler {
            router,
            registration: Mutex::new(None),
        }
    }
}

impl ServerHandler for ProxyHandler {
    fn get_info(&self) -> InitializeResult {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .build();
        let mut info = InitializeResult::new(capabilities);
        info.protocol_version = ProtocolVersion::V_2025_11_25;
        info.server_info = Implementation::new("mcp-orch", env!("CARGO_PKG_VERSION"));
        info.instructions = Some(
            "mcp-orch aggregates several MCP servers; each tool name starts with the name of \
             the server that provides it."
                .to_owned(),
        );
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
        let registration = self.router.sessions().register(context.peer.clone());
        tracing::debug!(session = registration.id(), client = %request.client_info.name,
            version = %request.protocol_version, "client initialized");
        *self.registration.lock().unwrap_or_else(|p| p.into_inner()) = Some(registration);
        self.negotiate_initialize(&request)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
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
        let progress_token = context.meta.get_progress_token();
        let mut meta = context.meta.clone();
        meta.0.0.remove("progressToken");
        let (events_tx, mut events_rx) = match progress_token {
            Some(_) => {
                let (tx, rx) = mpsc::unbounded_channel();
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        let call = self.router.call_tool(
            &request.name,
            request.arguments,
            CallContext {
                meta: (!meta.0.0.is_empty()).then_some(meta),
                events: events_tx,
                cancel: Some(context.ct.clone()),
            },
        );
        tokio::pin!(call);
        let outcome = loop {
            let event = match events_rx.as_mut() {
                Some(rx) => tokio::select! {
                    biased;
                    outcome = &mut call => break outcome,
                    event = rx.recv() => event,
                },
                None => break (&mut call).await,
            };
            match event {
                Some(CallEvent::Progress(progress)) => {
                    if let Some(token) = &progress_token {
                        let mut param =
                            ProgressNotificationParam::new(token.clone(), progress.progress);
                        param.total = progress.total;
                        param.message = progress.message;
                        let _ = context.peer.notify_progress(param).await;
                    }
                }
                Some(CallEvent::ServerRequest { respond, .. }) => {
                    let _ = respond.send(Err::<ClientResult, _>(ErrorData::new(
                        ErrorCode::METHOD_NOT_FOUND,
                        "mcp-orch does not relay server-to-client requests yet",
                        None,
                    )));
                }
                None => events_rx = None,
            }
        };
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
}
