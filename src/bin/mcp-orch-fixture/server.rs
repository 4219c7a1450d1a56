//! The fixture's `ServerHandler`: what it advertises (capabilities, protocol
//! versions, instructions), per-session state (logging level, resource
//! subscriptions) and the non-tool, non-prompt requests (`logging/setLevel`,
//! `resources/*`, `completion/complete`), and the list requests, paginated
//! by `pagination.rs`.
//!
//! One [`Fixture`] serves one session: stdio makes one, Streamable HTTP makes
//! one per `Mcp-Session-Id`. Everything process-wide (CLI settings, the tools
//! `add_tool` may change, the prompt router) is in [`Shared`].
// Logging (and sampling/roots, see client_tools.rs) are deprecated by SEP-2577
// for protocol 2026-07-28, but they are what 2025-11-25 clients speak.
#![allow(deprecated)]

use std::{
    borrow::Cow,
    collections::BTreeSet,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use rmcp::{
    ErrorData as McpError, Peer, RoleServer, ServerHandler,
    handler::server::{prompt::PromptContext, router::prompt::PromptRouter, tool::ToolCallContext},
    model::{
        CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult,
        GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
        ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, LoggingLevel,
        LoggingMessageNotificationParam, PaginatedRequestParams, ProtocolVersion,
        ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
        SetLevelRequestParams, SubscribeRequestParams, Tool, UnsubscribeRequestParams,
    },
    service::{NotificationContext, RequestContext},
};
use serde_json::Value;

use crate::{dynamic::ToolSet, pagination, resources};

/// The newest protocol revision the fixture speaks. rmcp 3.x defaults to
/// 2026-07-28, which deployed clients do not speak yet.
pub const PROTOCOL_VERSION: ProtocolVersion = ProtocolVersion::V_2025_11_25;

/// What the command line configures.
#[derive(Debug, Clone)]
pub struct FixtureConfig {
    /// `serverInfo.name`.
    pub name: String,
    /// `instructions` in the `initialize` result, if any.
    pub instructions: Option<String>,
    /// How many `tool_NNNN` benchmark tools to add.
    pub extra_tools: usize,
    /// The most items per list page; 0 is no pagination.
    pub page_size: usize,
    /// How long `tools/list` waits before answering.
    pub list_delay: Duration,
}

/// State shared by every session of one fixture process.
pub struct Shared {
    pub config: FixtureConfig,
    pub tools: ToolSet,
    pub prompts: PromptRouter<Fixture>,
    /// The next [`Fixture::session`].
    next_session: AtomicU64,
}

impl Shared {
    pub fn new(config: FixtureConfig) -> Self {
        let tools = Fixture::fixture_tools()
            + Fixture::client_tools()
            + Fixture::conformance_tools()
            + Fixture::dynamic_tools()
            + Fixture::bulk_tools(config.extra_tools);
        Self {
            config,
            tools: ToolSet::new(tools),
            prompts: Fixture::prompt_router(),
            next_session: AtomicU64::new(0),
        }
    }
}

/// The MCP server for one session.
pub struct Fixture {
    pub shared: Arc<Shared>,
    /// Tells this session apart from the others of the process.
    pub session: u64,
    /// The minimum level set by `logging/setLevel`; `None` sends everything.
    log_level: Mutex<Option<LoggingLevel>>,
    /// URIs the client subscribed to with `resources/subscribe`.
    subscriptions: Mutex<BTreeSet<String>>,
}

impl Fixture {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self {
            session: shared.next_session.fetch_add(1, Ordering::Relaxed),
            shared,
            log_level: Mutex::new(None),
            subscriptions: Mutex::new(BTreeSet::new()),
        }
    }

    pub fn name(&self) -> &str {
        &self.shared.config.name
    }

    /// Sends a `notifications/message` unless the client's `logging/setLevel`
    /// filters it out. Returns whether it was sent.
    pub async fn send_log(
        &self,
        peer: &Peer<RoleServer>,
        level: LoggingLevel,
        data: impl Into<Value>,
    ) -> Result<bool, String> {
        let minimum = *self
            .log_level
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if minimum.is_some_and(|minimum| severity(level) < severity(minimum)) {
            return Ok(false);
        }
        let params =
            LoggingMessageNotificationParam::new(level, data.into()).with_logger(self.name());
        peer.notify_logging_message(params)
            .await
            .map_err(|error| format!("cannot send the log notification: {error}"))?;
        Ok(true)
    }

    /// The page of a list `request` asks for, and the next page's cursor.
    fn page<T>(
        &self,
        items: Vec<T>,
        request: Option<PaginatedRequestParams>,
    ) -> Result<(Vec<T>, Option<rmcp::model::Cursor>), McpError> {
        pagination::page(items, request.as_ref(), self.shared.config.page_size)
    }

    pub fn is_subscribed(&self, uri: &str) -> bool {
        self.subscriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(uri)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.shared.tools.forget(self.session);
    }
}

/// RFC 5424 order: debug is the least severe.
fn severity(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

impl ServerHandler for Fixture {
    fn get_info(&self) -> ServerConfig {
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
        let info = ServerConfig::new(capabilities)
            .with_protocol_version(PROTOCOL_VERSION)
            .with_server_info(Implementation::new(self.name(), env!("CARGO_PKG_VERSION")));
        match &self.shared.config.instructions {
            Some(instructions) => info.with_instructions(instructions.clone()),
            None => info,
        }
    }

    /// 2024-11-05 up to 2025-11-25: everything with an `initialize` handshake.
    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::known_up_to(&PROTOCOL_VERSION))
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        self.shared.tools.watch(self.session, &context.peer);
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let delay = self.shared.config.list_delay;
        if !delay.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = context.ct.cancelled() => {
                    return Err(McpError::internal_error("tools/list cancelled", None));
                }
            }
        }
        self.shared.tools.watch(self.session, &context.peer);
        let all = self.shared.tools.snapshot().list_all();
        let (tools, next_cursor) = self.page(all, request)?;
        let mut result = ListToolsResult::with_all_items(tools);
        result.next_cursor = next_cursor;
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let tools = self.shared.tools.snapshot();
        tools
            .call(ToolCallContext::new(self, request, context))
            .await
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.shared.tools.snapshot().get(name).cloned()
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let (prompts, next_cursor) = self.page(self.shared.prompts.list_all(), request)?;
        let mut result = ListPromptsResult::with_all_items(prompts);
        result.next_cursor = next_cursor;
        Ok(result)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let prompt = PromptContext::new(self, request.name, request.arguments, context);
        self.shared.prompts.get_prompt(prompt).await
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        *self
            .log_level
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(request.level);
        Ok(())
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let (resources, next_cursor) = self.page(resources::list(), request)?;
        let mut result = ListResourcesResult::with_all_items(resources);
        result.next_cursor = next_cursor;
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let (templates, next_cursor) = self.page(resources::templates(), request)?;
        let mut result = ListResourceTemplatesResult::with_all_items(templates);
        result.next_cursor = next_cursor;
        Ok(result)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        resources::read(self.name(), &request.uri).map(Into::into)
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        // Tests count these lines to check that the proxy shares one subscription.
        eprintln!("subscribe {}", request.uri);
        self.subscriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(request.uri);
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        eprintln!("unsubscribe {}", request.uri);
        self.subscriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&request.uri);
        Ok(())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        resources::complete(&request.r#ref, &request.argument)
    }
}
