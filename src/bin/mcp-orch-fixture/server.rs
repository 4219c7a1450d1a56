//! The fixture's `ServerHandler`: what it advertises (capabilities, protocol
//! versions, instructions), per-session state (logging level, resource
//! subscriptions) and the non-tool, non-prompt requests (`logging/setLevel`,
//! `resources/*`, `completion/complete`).
//!
//! One [`Fixture`] serves one session: stdio makes one, Streamable HTTP makes
//! one per `Mcp-Session-Id`. Everything that does not change per session
//! (CLI settings, the tool and prompt routers) is in [`Shared`].
// Logging (and sampling/roots, see client_tools.rs) are deprecated by SEP-2577
// for protocol 2026-07-28, but they are what 2025-11-25 clients speak.
#![allow(deprecated)]

use std::{
    borrow::Cow,
    collections::BTreeSet,
    sync::{Arc, Mutex, PoisonError},
};

use rmcp::{
    ErrorData as McpError, Peer, RoleServer, ServerHandler,
    handler::server::{router::prompt::PromptRouter, tool::ToolRouter},
    model::{
        CompleteRequestParams, CompleteResult, Implementation, ListResourceTemplatesResult,
        ListResourcesResult, LoggingLevel, LoggingMessageNotificationParam, PaginatedRequestParams,
        ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities,
        ServerConfig, SetLevelRequestParams, SubscribeRequestParams, UnsubscribeRequestParams,
    },
    prompt_handler,
    service::RequestContext,
    tool_handler,
};
use serde_json::Value;

use crate::resources;

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
}

/// State shared by every session of one fixture process.
pub struct Shared {
    pub config: FixtureConfig,
    pub tools: ToolRouter<Fixture>,
    pub prompts: PromptRouter<Fixture>,
}

impl Shared {
    pub fn new(config: FixtureConfig) -> Self {
        let tools = Fixture::fixture_tools()
            + Fixture::client_tools()
            + Fixture::conformance_tools()
            + Fixture::bulk_tools(config.extra_tools);
        Self {
            config,
            tools,
            prompts: Fixture::prompt_router(),
        }
    }
}

/// The MCP server for one session.
pub struct Fixture {
    pub shared: Arc<Shared>,
    /// The minimum level set by `logging/setLevel`; `None` sends everything.
    log_level: Mutex<Option<LoggingLevel>>,
    /// URIs the client subscribed to with `resources/subscribe`.
    subscriptions: Mutex<BTreeSet<String>>,
}

impl Fixture {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self {
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

    pub fn is_subscribed(&self, uri: &str) -> bool {
        self.subscriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(uri)
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

#[tool_handler(router = self.shared.tools)]
#[prompt_handler(router = self.shared.prompts)]
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
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(resources::list()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(
            resources::templates(),
        ))
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
