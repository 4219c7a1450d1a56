//! Tools that talk back to the client: `sample` (sampling/createMessage),
//! `elicit` (elicitation/create), `roots` (roots/list), `log`
//! (notifications/message) and two notification triggers,
//! `notify_resource_updated` and `notify_list_changed`, for testing that a
//! proxy forwards server notifications.
//!
//! The helpers [`sample_text`] and [`elicit_form`] are shared with the
//! conformance tools.
// Sampling, roots and logging are deprecated by SEP-2577 for protocol
// 2026-07-28, but they are what 2025-11-25 clients speak.
#![allow(deprecated)]

use rmcp::{
    Peer, RoleServer,
    handler::server::wrapper::Parameters,
    model::{
        CallToolResult, ClientResult, ContentBlock, CreateMessageRequestParams, ElicitRequest,
        ElicitRequestParams, ElicitResult, ElicitationSchema, LoggingLevel,
        ResourceUpdatedNotificationParam, SamplingMessage, SamplingMessageContentBlock,
        ServerRequest,
    },
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{server::Fixture, tools::error_result};

/// `maxTokens` of our sampling requests.
const SAMPLING_MAX_TOKENS: u32 = 100;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SampleArgs {
    /// The prompt, sent to the client as one user text message.
    pub prompt: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ElicitArgs {
    /// The message to show the user.
    pub message: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct LogArgs {
    /// The log level.
    #[schemars(extend("enum" = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]))]
    pub level: String,
    /// The message to log.
    pub message: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UriArgs {
    /// The resource URI.
    pub uri: String,
}

/// Which list changed.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ListKind {
    Tools,
    Prompts,
    Resources,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListChangedArgs {
    /// The list to announce as changed.
    pub list: ListKind,
}

#[tool_router(router = client_tools, vis = "pub(crate)")]
impl Fixture {
    #[tool(
        description = "Asks the client to sample (sampling/createMessage) with `prompt` as a user text message; returns `sampled: <answer text>`, or a tool error if the client refuses or lacks the capability."
    )]
    async fn sample(
        &self,
        Parameters(SampleArgs { prompt }): Parameters<SampleArgs>,
        peer: Peer<RoleServer>,
    ) -> CallToolResult {
        match sample_text(&peer, prompt).await {
            Ok(text) => {
                CallToolResult::success(vec![ContentBlock::text(format!("sampled: {text}"))])
            }
            Err(error) => error_result(error),
        }
    }

    #[tool(
        description = "Asks the client for input (elicitation/create, form mode, one string property `answer`); returns `elicited: <action> <content JSON>`."
    )]
    async fn elicit(
        &self,
        Parameters(ElicitArgs { message }): Parameters<ElicitArgs>,
        peer: Peer<RoleServer>,
    ) -> CallToolResult {
        let schema = json!({
            "type": "object",
            "properties": {"answer": {"type": "string", "description": "Your answer"}},
            "required": ["answer"],
        });
        match elicit_form(&peer, message, schema).await {
            Ok(result) => CallToolResult::success(vec![ContentBlock::text(format!(
                "elicited: {} {}",
                action_name(&result),
                result.content.unwrap_or(Value::Null)
            ))]),
            Err(error) => error_result(error),
        }
    }

    #[tool(
        description = "Asks the client for its roots (roots/list); returns their URIs, one per line."
    )]
    async fn roots(&self, peer: Peer<RoleServer>) -> CallToolResult {
        let supported = peer
            .peer_info()
            .is_some_and(|info| info.capabilities.roots.is_some());
        if !supported {
            return error_result("the client does not support roots");
        }
        match peer.list_roots().await {
            Ok(result) => {
                let uris: Vec<String> = result.roots.into_iter().map(|root| root.uri).collect();
                CallToolResult::success(vec![ContentBlock::text(uris.join("\n"))])
            }
            Err(error) => error_result(format!("roots/list failed: {error}")),
        }
    }

    #[tool(
        description = "Sends a notifications/message log notification with `message` at `level` (subject to logging/setLevel); returns `logged`."
    )]
    async fn log(
        &self,
        Parameters(LogArgs { level, message }): Parameters<LogArgs>,
        peer: Peer<RoleServer>,
    ) -> CallToolResult {
        let Ok(level) = serde_json::from_value::<LoggingLevel>(Value::String(level.clone())) else {
            return error_result(format!("unknown log level {level:?}"));
        };
        match self.send_log(&peer, level, message).await {
            Ok(_) => CallToolResult::success(vec![ContentBlock::text("logged")]),
            Err(error) => error_result(error),
        }
    }

    #[tool(
        description = "Sends notifications/resources/updated for `uri` if the client subscribed to it; returns `notified` or `not subscribed`."
    )]
    async fn notify_resource_updated(
        &self,
        Parameters(UriArgs { uri }): Parameters<UriArgs>,
        peer: Peer<RoleServer>,
    ) -> CallToolResult {
        if !self.is_subscribed(&uri) {
            return CallToolResult::success(vec![ContentBlock::text("not subscribed")]);
        }
        match peer
            .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
            .await
        {
            Ok(()) => CallToolResult::success(vec![ContentBlock::text("notified")]),
            Err(error) => error_result(format!("cannot notify: {error}")),
        }
    }

    #[tool(
        description = "Sends notifications/{tools,prompts,resources}/list_changed (the lists do not actually change); returns `notified`."
    )]
    async fn notify_list_changed(
        &self,
        Parameters(ListChangedArgs { list }): Parameters<ListChangedArgs>,
        peer: Peer<RoleServer>,
    ) -> CallToolResult {
        let sent = match list {
            ListKind::Tools => peer.notify_tool_list_changed().await,
            ListKind::Prompts => peer.notify_prompt_list_changed().await,
            ListKind::Resources => peer.notify_resource_list_changed().await,
        };
        match sent {
            Ok(()) => CallToolResult::success(vec![ContentBlock::text("notified")]),
            Err(error) => error_result(format!("cannot notify: {error}")),
        }
    }
}

/// Sends `sampling/createMessage` with `prompt` as one user text message and
/// returns the text of the answer.
pub async fn sample_text(peer: &Peer<RoleServer>, prompt: String) -> Result<String, String> {
    let supported = peer
        .peer_info()
        .is_some_and(|info| info.capabilities.sampling.is_some());
    if !supported {
        return Err("the client does not support sampling".to_owned());
    }
    let params = CreateMessageRequestParams::new(
        vec![SamplingMessage::user_text(prompt)],
        SAMPLING_MAX_TOKENS,
    );
    let result = peer
        .create_message(params)
        .await
        .map_err(|error| format!("sampling failed: {error}"))?;
    result
        .message
        .content
        .into_vec()
        .into_iter()
        .find_map(|block| match block {
            SamplingMessageContentBlock::Text(text) => Some(text.text),
            _ => None,
        })
        .ok_or_else(|| "the sampling answer has no text".to_owned())
}

/// Sends a form-mode `elicitation/create` with `message` and the JSON schema
/// `schema` (an object schema of primitive properties).
pub async fn elicit_form(
    peer: &Peer<RoleServer>,
    message: String,
    schema: Value,
) -> Result<ElicitResult, String> {
    let supported = peer
        .peer_info()
        .is_some_and(|info| info.capabilities.elicitation.is_some());
    if !supported {
        return Err("the client does not support elicitation".to_owned());
    }
    let requested_schema: ElicitationSchema = serde_json::from_value(schema)
        .map_err(|error| format!("invalid elicitation schema: {error}"))?;
    let request = ElicitRequest::new(ElicitRequestParams::FormElicitationParams {
        meta: None,
        message,
        requested_schema,
    });
    match peer
        .send_request(ServerRequest::ElicitRequest(request))
        .await
    {
        Ok(ClientResult::ElicitResult(result)) => Ok(result),
        Ok(other) => Err(format!(
            "unexpected answer to elicitation/create: {other:?}"
        )),
        Err(error) => Err(format!("elicitation failed: {error}")),
    }
}

/// `accept`, `decline` or `cancel`.
pub fn action_name(result: &ElicitResult) -> String {
    match serde_json::to_value(&result.action) {
        Ok(Value::String(action)) => action,
        _ => format!("{:?}", result.action).to_lowercase(),
    }
}
