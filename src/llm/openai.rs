//! OpenAI-compatible chat completions (`POST .../chat/completions`): OpenAI, Azure OpenAI
//! and Azure AI Foundry (`api-key` header), Gemini's OpenAI-compatible endpoint, and local
//! servers such as llama.cpp, vLLM or Ollama (`llm.endpoint`, key optional).
//!
//! A structured answer is requested as a forced function call (`tool_choice` naming it),
//! or as `response_format` `json_schema` / `json_object`.

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::http::{client, post_json};
use super::{ChatRequest, ChatResponse, LlmError, LlmProvider, extract_json};
use crate::config::{LlmSettings, PlanOutput};

/// Default Azure OpenAI `api-version` (deployments API).
pub const AZURE_OPENAI_API_VERSION: &str = "2024-10-21";
/// Default Azure AI Foundry model-inference `api-version`.
pub const AZURE_FOUNDRY_API_VERSION: &str = "2024-05-01-preview";

/// How the key is sent.
#[derive(Clone)]
enum Auth {
    Bearer(String),
    ApiKeyHeader(String),
    None,
}

/// An OpenAI-compatible chat-completions endpoint.
pub struct OpenAiCompatible {
    /// `openai`, `azure` or `gemini`, for messages.
    provider: &'static str,
    /// The full chat-completions URL (query included).
    url: String,
    auth: Auth,
    model: String,
    max_tokens: u32,
    temperature: f64,
    timeout: Duration,
    client: reqwest::Client,
}

fn require(provider: &'static str, value: Option<String>, what: &str) -> Result<String, LlmError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| LlmError::Config {
            provider,
            detail: format!("set {what}"),
        })
}

/// `base/chat/completions`, unless `base` already is the full URL.
fn chat_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.contains("/chat/completions") {
        base.to_owned()
    } else {
        format!("{base}/chat/completions")
    }
}

impl OpenAiCompatible {
    fn with(
        provider: &'static str,
        settings: &LlmSettings,
        url: String,
        auth: Auth,
    ) -> Result<Self, LlmError> {
        Ok(OpenAiCompatible {
            provider,
            url,
            auth,
            model: require(provider, settings.model.clone(), "`llm.model`")?,
            max_tokens: settings.max_tokens,
            temperature: settings.temperature,
            timeout: settings.timeout,
            client: client(provider, settings.timeout)?,
        })
    }

    /// OpenAI (default endpoint `https://api.openai.com/v1`, key required there) or any
    /// OpenAI-compatible server at `llm.endpoint` (key optional).
    pub fn openai(settings: &LlmSettings, key: Option<String>) -> Result<Self, LlmError> {
        let endpoint = settings
            .endpoint
            .clone()
            .unwrap_or_else(|| "https://api.openai.com/v1".into());
        let auth = match key {
            Some(key) => Auth::Bearer(key),
            None if endpoint.starts_with("https://api.openai.com") => {
                return Err(LlmError::Config {
                    provider: "openai",
                    detail: "set `llm.api_key` or OPENAI_API_KEY".into(),
                });
            }
            None => Auth::None,
        };
        Self::with("openai", settings, chat_url(&endpoint), auth)
    }

    /// Gemini's OpenAI-compatible endpoint with `GEMINI_API_KEY`.
    pub fn gemini(settings: &LlmSettings, key: Option<String>) -> Result<Self, LlmError> {
        let endpoint = settings
            .endpoint
            .clone()
            .unwrap_or_else(|| "https://generativelanguage.googleapis.com/v1beta/openai".into());
        let key = require("gemini", key, "`llm.api_key` or GEMINI_API_KEY")?;
        Self::with("gemini", settings, chat_url(&endpoint), Auth::Bearer(key))
    }

    /// Azure OpenAI (`https://NAME.openai.azure.com`: the deployment is `llm.model`) or Azure
    /// AI Foundry (`https://NAME.services.ai.azure.com/models`), key in the `api-key` header.
    pub fn azure(
        settings: &LlmSettings,
        endpoint: Option<String>,
        key: Option<String>,
    ) -> Result<Self, LlmError> {
        let endpoint = require("azure", endpoint, "`llm.endpoint` or AZURE_AI_ENDPOINT")?;
        let key = require("azure", key, "`llm.api_key` or AZURE_AI_API_KEY")?;
        let model = require(
            "azure",
            settings.model.clone(),
            "`llm.model` (the deployment name)",
        )?;
        let url = azure_url(&endpoint, &model, settings.api_version.as_deref());
        Self::with("azure", settings, url, Auth::ApiKeyHeader(key))
    }

    fn body(&self, request: &ChatRequest) -> Value {
        let mut messages = vec![json!({"role": "system", "content": request.system})];
        for message in &request.messages {
            messages.push(json!({"role": message.role.as_str(), "content": message.content}));
        }
        let mut body = json!({
            "model": self.model,
            "messages": messages,
            "max_tokens": request.max_tokens.unwrap_or(self.max_tokens),
            "temperature": self.temperature,
        });
        let Some(map) = body.as_object_mut() else {
            return body;
        };
        match &request.structured {
            Some(s) if s.mode == PlanOutput::Tool => {
                map.insert(
                    "tools".into(),
                    json!([{"type": "function", "function": {
                        "name": s.name, "description": s.description, "parameters": s.schema}}]),
                );
                map.insert(
                    "tool_choice".into(),
                    json!({"type": "function", "function": {"name": s.name}}),
                );
            }
            Some(s) if s.mode == PlanOutput::JsonSchema => {
                map.insert(
                    "response_format".into(),
                    json!({"type": "json_schema", "json_schema": {"name": s.name, "schema": s.schema}}),
                );
            }
            Some(s) if s.mode == PlanOutput::JsonObject => {
                map.insert(
                    "response_format".into(),
                    json!({"type": "json_object", "schema": s.schema}),
                );
            }
            _ if request.json_mode => {
                map.insert("response_format".into(), json!({"type": "json_object"}));
            }
            _ => {}
        }
        body
    }
}

/// The chat-completions URL for an Azure endpoint.
pub fn azure_url(endpoint: &str, deployment: &str, api_version: Option<&str>) -> String {
    let base = endpoint.trim_end_matches('/');
    let with_version = |url: String, default: &str| {
        if url.contains("api-version=") {
            url
        } else {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}api-version={}", api_version.unwrap_or(default))
        }
    };
    if base.contains("/chat/completions") {
        return with_version(base.to_owned(), AZURE_OPENAI_API_VERSION);
    }
    if base.contains("/openai/v1") {
        return format!("{base}/chat/completions");
    }
    let host = base
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    if host.ends_with(".openai.azure.com") || host.ends_with(".cognitiveservices.azure.com") {
        return with_version(
            format!("{base}/openai/deployments/{deployment}/chat/completions"),
            AZURE_OPENAI_API_VERSION,
        );
    }
    let models = if base.ends_with("/models") {
        base.to_owned()
    } else {
        format!("{base}/models")
    };
    with_version(
        format!("{models}/chat/completions"),
        AZURE_FOUNDRY_API_VERSION,
    )
}

/// Reads `choices[0].message`: its text and, when asked for, the structured answer.
pub fn parse_response(
    provider: &'static str,
    value: &Value,
    request: &ChatRequest,
) -> Result<ChatResponse, LlmError> {
    let message = &value["choices"][0]["message"];
    if !message.is_object() {
        return Err(LlmError::Invalid {
            provider,
            detail: format!(
                "no choices[0].message in {}",
                super::preview(&value.to_string())
            ),
        });
    }
    let text = match &message["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    };
    let call = message["tool_calls"]
        .as_array()
        .and_then(|calls| calls.first())
        .map(|call| &call["function"]["arguments"]);
    let structured = match (call, &request.structured) {
        (Some(Value::String(arguments)), _) => extract_json(arguments),
        (Some(arguments @ Value::Object(_)), _) => Some(arguments.clone()),
        (_, Some(s)) if s.mode != PlanOutput::Tool && s.mode != PlanOutput::Text => {
            extract_json(&text)
        }
        _ => None,
    };
    Ok(ChatResponse { text, structured })
}

impl LlmProvider for OpenAiCompatible {
    fn describe(&self) -> String {
        let url = self.url.split('?').next().unwrap_or_default();
        format!("{} {} at {url}", self.provider, self.model)
    }

    fn complete(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse, LlmError>> {
        async move {
            let body = serde_json::to_vec(&self.body(&request)).unwrap_or_default();
            let headers = match &self.auth {
                Auth::Bearer(key) => vec![("authorization".to_owned(), format!("Bearer {key}"))],
                Auth::ApiKeyHeader(key) => vec![("api-key".to_owned(), key.clone())],
                Auth::None => Vec::new(),
            };
            let answer = post_json(
                &self.client,
                self.provider,
                self.timeout,
                &self.url,
                &headers,
                body,
            )
            .await?;
            parse_response(self.provider, &answer, &request)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{ChatMessage, StructuredOutput};

    #[test]
    fn azure_urls() {
        assert_eq!(
            azure_url("https://me.openai.azure.com/", "gpt-4", None),
            "https://me.openai.azure.com/openai/deployments/gpt-4/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            azure_url(
                "https://me.services.ai.azure.com/models",
                "x",
                Some("2025-01-01")
            ),
            "https://me.services.ai.azure.com/models/chat/completions?api-version=2025-01-01"
        );
        assert_eq!(
            azure_url("https://me.openai.azure.com/openai/v1", "x", None),
            "https://me.openai.azure.com/openai/v1/chat/completions"
        );
        assert_eq!(
            azure_url("https://h/x/chat/completions?api-version=1", "x", None),
            "https://h/x/chat/completions?api-version=1"
        );
    }

    #[test]
    fn forced_tool_call_request_and_answer() {
        let settings = LlmSettings {
            model: Some("m".into()),
            endpoint: Some("http://127.0.0.1:1/v1".into()),
            ..LlmSettings::default()
        };
        let provider = OpenAiCompatible::openai(&settings, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(provider.url, "http://127.0.0.1:1/v1/chat/completions");
        let request = ChatRequest {
            system: "sys".into(),
            messages: vec![ChatMessage::user("hi")],
            structured: Some(StructuredOutput {
                name: "submit_plan".into(),
                description: "d".into(),
                schema: json!({"type": "object"}),
                mode: PlanOutput::Tool,
            }),
            json_mode: false,
            max_tokens: None,
        };
        let body = provider.body(&request);
        assert_eq!(
            body["messages"][0],
            json!({"role": "system", "content": "sys"})
        );
        assert_eq!(body["tool_choice"]["function"]["name"], "submit_plan");
        assert_eq!(
            body["tools"][0]["function"]["parameters"],
            json!({"type": "object"})
        );
        let answer = json!({"choices": [{"message": {"content": null, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "submit_plan", "arguments": "{\"tasks\": []}"}}]}}]});
        let parsed = parse_response("openai", &answer, &request).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.structured, Some(json!({"tasks": []})));
        assert!(parse_response("openai", &json!({"error": 1}), &request).is_err());
    }
}
