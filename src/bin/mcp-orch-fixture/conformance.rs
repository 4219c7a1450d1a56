//! The tools the official MCP conformance suite
//! (`@modelcontextprotocol/conformance` 0.1.16, `conformance server`) calls,
//! with the names, arguments and results of the suite's reference
//! "everything" server. Its prompts are in `prompts.rs`, its resources in
//! `resources.rs`.
//!
//! To run the suite (it needs Node >= 22, which the `node` npm package ships):
//!
//! ```text
//! mkdir -p /tmp/conf && cd /tmp/conf && npm init -y >/dev/null
//! npm i @modelcontextprotocol/conformance@0.1.16 node@22
//! mcp-orch-fixture --http 0   # prints `listening on 127.0.0.1:<port>`
//! PATH=/tmp/conf/node_modules/.bin:$PATH npx conformance server \
//!     --url http://127.0.0.1:<port>/mcp           # add --suite all for pending ones
//! ```
// Logging is deprecated by SEP-2577 for protocol 2026-07-28, but it is what
// 2025-11-25 clients speak.
#![allow(deprecated)]

use std::{sync::Arc, time::Duration};

use rmcp::{
    Peer, RoleServer,
    handler::server::wrapper::Parameters,
    model::{
        CallToolResult, ContentBlock, JsonObject, LoggingLevel, ProgressNotificationParam,
        RequestMetaObject, ResourceContents,
    },
    tool, tool_router,
};
use serde_json::{Value, json};

use crate::{
    client_tools::{ElicitArgs, SampleArgs, action_name, elicit_form, sample_text},
    server::Fixture,
    tools::error_result,
};

/// A 1x1 PNG.
pub const TEST_IMAGE_PNG_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A minimal WAV file.
const TEST_AUDIO_WAV_BASE64: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";
/// The pause between the notifications of the logging and progress tools.
const STEP_DELAY: Duration = Duration::from_millis(50);

fn text(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

/// SEP-1613: an input schema using JSON Schema 2020-12 keywords that a
/// proxy must pass through untouched.
fn json_schema_2020_12_input() -> Arc<JsonObject> {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"}}
            }
        },
        "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
        "additionalProperties": false
    });
    match schema {
        Value::Object(object) => Arc::new(object),
        _ => Arc::default(),
    }
}

/// Formats an elicitation answer as the reference server does.
async fn elicit_summary(
    peer: &Peer<RoleServer>,
    prefix: &str,
    message: String,
    schema: Value,
) -> CallToolResult {
    match elicit_form(peer, message, schema).await {
        Ok(result) => text(format!(
            "{prefix}: action={}, content={}",
            action_name(&result),
            result.content.unwrap_or_else(|| json!({}))
        )),
        Err(error) => error_result(error),
    }
}

#[tool_router(router = conformance_tools, vis = "pub(crate)")]
impl Fixture {
    #[tool(description = "Tests simple text content response")]
    async fn test_simple_text(&self) -> CallToolResult {
        text("This is a simple text response for testing.")
    }

    #[tool(description = "Tests image content response")]
    async fn test_image_content(&self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::image(
            TEST_IMAGE_PNG_BASE64,
            "image/png",
        )])
    }

    #[tool(description = "Tests audio content response")]
    async fn test_audio_content(&self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::audio(
            TEST_AUDIO_WAV_BASE64,
            "audio/wav",
        )])
    }

    #[tool(description = "Tests embedded resource content response")]
    async fn test_embedded_resource(&self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::resource(ResourceContents::text(
            "This is an embedded resource content.",
            "test://embedded-resource",
        ))])
    }

    #[tool(description = "Tests response with multiple content types (text, image, resource)")]
    async fn test_multiple_content_types(&self) -> CallToolResult {
        let resource = ResourceContents::text(
            json!({"test": "data", "value": 123}).to_string(),
            "test://mixed-content-resource",
        )
        .with_mime_type("application/json");
        CallToolResult::success(vec![
            ContentBlock::text("Multiple content types test:"),
            ContentBlock::image(TEST_IMAGE_PNG_BASE64, "image/png"),
            ContentBlock::resource(resource),
        ])
    }

    #[tool(description = "Tests tool that emits log messages during execution")]
    async fn test_tool_with_logging(&self, peer: Peer<RoleServer>) -> CallToolResult {
        let messages = [
            "Tool execution started",
            "Tool processing data",
            "Tool execution completed",
        ];
        for (index, message) in messages.into_iter().enumerate() {
            if index > 0 {
                tokio::time::sleep(STEP_DELAY).await;
            }
            if let Err(error) = self.send_log(&peer, LoggingLevel::Info, message).await {
                return error_result(error);
            }
        }
        text("Tool with logging executed successfully")
    }

    #[tool(description = "Tests tool that reports progress notifications")]
    async fn test_tool_with_progress(
        &self,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> CallToolResult {
        let token = meta.get_progress_token();
        for (index, progress) in [0.0, 50.0, 100.0].into_iter().enumerate() {
            if index > 0 {
                tokio::time::sleep(STEP_DELAY).await;
            }
            if let Some(token) = &token {
                let notification = ProgressNotificationParam::new(token.clone(), progress)
                    .with_total(100.0)
                    .with_message(format!("Completed step {progress} of 100"));
                if let Err(error) = peer.notify_progress(notification).await {
                    return error_result(format!("cannot send progress: {error}"));
                }
            }
        }
        text("Tool with progress executed successfully")
    }

    #[tool(description = "Tests error response handling")]
    async fn test_error_handling(&self) -> CallToolResult {
        error_result("This tool intentionally returns an error for testing")
    }

    #[tool(description = "Tests server-initiated sampling (LLM completion request)")]
    async fn test_sampling(
        &self,
        Parameters(SampleArgs { prompt }): Parameters<SampleArgs>,
        peer: Peer<RoleServer>,
    ) -> CallToolResult {
        match sample_text(&peer, prompt).await {
            Ok(answer) => text(format!("LLM response: {answer}")),
            Err(error) => error_result(error),
        }
    }

    #[tool(description = "Tests server-initiated elicitation (user input request)")]
    async fn test_elicitation(
        &self,
        Parameters(ElicitArgs { message }): Parameters<ElicitArgs>,
        peer: Peer<RoleServer>,
    ) -> CallToolResult {
        let schema = json!({
            "type": "object",
            "properties": {
                "username": {"type": "string", "description": "User's response"},
                "email": {"type": "string", "description": "User's email address"}
            },
            "required": ["username", "email"]
        });
        elicit_summary(&peer, "User response", message, schema).await
    }

    #[tool(description = "Tests elicitation with default values per SEP-1034")]
    async fn test_elicitation_sep1034_defaults(&self, peer: Peer<RoleServer>) -> CallToolResult {
        let schema = json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "User name", "default": "John Doe"},
                "age": {"type": "integer", "description": "User age", "default": 30},
                "score": {"type": "number", "description": "User score", "default": 95.5},
                "status": {
                    "type": "string",
                    "description": "User status",
                    "enum": ["active", "inactive", "pending"],
                    "default": "active"
                },
                "verified": {"type": "boolean", "description": "Verification status", "default": true}
            },
            "required": []
        });
        let message = "Please review and update the form fields with defaults".to_owned();
        elicit_summary(&peer, "Elicitation completed", message, schema).await
    }

    #[tool(description = "Tests elicitation with enum schema improvements per SEP-1330")]
    async fn test_elicitation_sep1330_enums(&self, peer: Peer<RoleServer>) -> CallToolResult {
        let titled = |prefix: &str, noun: &str| {
            json!([
                {"const": format!("{prefix}1"), "title": format!("First {noun}")},
                {"const": format!("{prefix}2"), "title": format!("Second {noun}")},
                {"const": format!("{prefix}3"), "title": format!("Third {noun}")}
            ])
        };
        let schema = json!({
            "type": "object",
            "properties": {
                "untitledSingle": {
                    "type": "string",
                    "description": "Select one option",
                    "enum": ["option1", "option2", "option3"]
                },
                "titledSingle": {
                    "type": "string",
                    "description": "Select one option with titles",
                    "oneOf": titled("value", "Option")
                },
                "legacyEnum": {
                    "type": "string",
                    "description": "Select one option (legacy)",
                    "enum": ["opt1", "opt2", "opt3"],
                    "enumNames": ["Option One", "Option Two", "Option Three"]
                },
                "untitledMulti": {
                    "type": "array",
                    "description": "Select multiple options",
                    "minItems": 1,
                    "maxItems": 3,
                    "items": {"type": "string", "enum": ["option1", "option2", "option3"]}
                },
                "titledMulti": {
                    "type": "array",
                    "description": "Select multiple options with titles",
                    "minItems": 1,
                    "maxItems": 3,
                    "items": {"anyOf": titled("value", "Choice")}
                }
            },
            "required": []
        });
        let message = "Please select options from the enum fields".to_owned();
        elicit_summary(&peer, "Elicitation completed", message, schema).await
    }

    #[tool(
        description = "Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)",
        input_schema = json_schema_2020_12_input()
    )]
    async fn json_schema_2020_12_tool(&self, arguments: JsonObject) -> CallToolResult {
        text(format!(
            "JSON Schema 2020-12 tool called with: {}",
            Value::Object(arguments)
        ))
    }

    #[tool(
        description = "Tests SSE stream disconnection and client reconnection (SEP-1699). This fixture answers on the same stream."
    )]
    async fn test_reconnection(&self) -> CallToolResult {
        tokio::time::sleep(Duration::from_millis(100)).await;
        text(
            "Reconnection test completed successfully. If you received this, the client properly reconnected after stream closure.",
        )
    }
}
