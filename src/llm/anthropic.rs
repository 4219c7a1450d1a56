//! Anthropic Messages (`POST /v1/messages`, `x-api-key`, `anthropic-version`). A structured
//! answer is requested as a forced tool call (`tool_choice: {type: tool, name}`); the
//! `json_schema`/`json_object` modes fall back to the tool call, which Anthropic models
//! follow reliably.

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::http::{client, post_json};
use super::{ChatRequest, ChatResponse, LlmError, LlmProvider};
use crate::config::{LlmSettings, PlanOutput};

/// The API version header value.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The Anthropic Messages API.
pub struct Anthropic {
    url: String,
    key: String,
    model: String,
    max_tokens: u32,
    temperature: f64,
    timeout: Duration,
    client: reqwest::Client,
}

impl Anthropic {
    /// Default endpoint `https://api.anthropic.com`; key from `llm.api_key` or
    /// `ANTHROPIC_API_KEY`.
    pub fn new(settings: &LlmSettings, key: Option<String>) -> Result<Self, LlmError> {
        let missing = |detail: &str| LlmError::Config {
            provider: "anthropic",
            detail: detail.into(),
        };
        let endpoint = settings
            .endpoint
            .clone()
            .unwrap_or_else(|| "https://api.anthropic.com".into());
        let base = endpoint.trim_end_matches('/');
        let url = if base.ends_with("/v1/messages") {
            base.to_owned()
        } else if base.ends_with("/v1") {
            format!("{base}/messages")
        } else {
            format!("{base}/v1/messages")
        };
        Ok(Anthropic {
            url,
            key: key.ok_or_else(|| missing("set `llm.api_key` or ANTHROPIC_API_KEY"))?,
            model: settings
                .model
                .clone()
                .ok_or_else(|| missing("set `llm.model`"))?,
            max_tokens: settings.max_tokens,
            temperature: settings.temperature,
            timeout: settings.timeout,
            client: client("anthropic", settings.timeout)?,
        })
    }

    fn body(&self, request: &ChatRequest) -> Value {
        let messages: Vec<Value> = request
            .messages
            .iter()
            .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
            .collect();
        let mut system = request.system.clone();
        if request.json_mode {
            system.push_str("\nAnswer with a single JSON value and nothing else.");
        }
        let mut body = json!({
            "model": self.model,
            "max_tokens": request.max_tokens.unwrap_or(self.max_tokens),
            "temperature": self.temperature,
            "system": system,
            "messages": messages,
        });
        if let (Some(s), Some(map)) = (&request.structured, body.as_object_mut())
            && s.mode != PlanOutput::Text
        {
            map.insert(
                "tools".into(),
                json!([{"name": s.name, "description": s.description, "input_schema": s.schema}]),
            );
            map.insert(
                "tool_choice".into(),
                json!({"type": "tool", "name": s.name}),
            );
        }
        body
    }
}

/// Reads the `content` blocks: text, and the first `tool_use` input.
pub fn parse_response(value: &Value) -> Result<ChatResponse, LlmError> {
    let Some(blocks) = value["content"].as_array() else {
        return Err(LlmError::Invalid {
            provider: "anthropic",
            detail: format!("no `content` in {}", super::preview(&value.to_string())),
        });
    };
    let text = blocks
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str())
        .collect::<Vec<_>>()
        .join("");
    let structured = blocks
        .iter()
        .find(|b| b["type"] == "tool_use")
        .map(|b| b["input"].clone());
    Ok(ChatResponse { text, structured })
}

impl LlmProvider for Anthropic {
    fn describe(&self) -> String {
        format!("anthropic {} at {}", self.model, self.url)
    }

    /// A forced tool call, or text: no response formats.
    fn plan_outputs(&self) -> &'static [PlanOutput] {
        &[PlanOutput::Tool, PlanOutput::Text]
    }

    fn complete(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse, LlmError>> {
        async move {
            let body = serde_json::to_vec(&self.body(&request)).unwrap_or_default();
            let headers = vec![
                ("x-api-key".to_owned(), self.key.clone()),
                ("anthropic-version".to_owned(), ANTHROPIC_VERSION.to_owned()),
            ];
            let answer = post_json(
                &self.client,
                "anthropic",
                self.timeout,
                &self.url,
                &headers,
                body,
            )
            .await?;
            parse_response(&answer)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_use_blocks_are_the_structured_answer() {
        let answer = json!({"content": [
            {"type": "text", "text": "Here is the plan."},
            {"type": "tool_use", "id": "t", "name": "submit_plan", "input": {"tasks": []}}
        ]});
        let parsed = parse_response(&answer).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.text, "Here is the plan.");
        assert_eq!(parsed.structured, Some(json!({"tasks": []})));
    }
}
