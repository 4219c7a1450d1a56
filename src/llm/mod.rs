//! LLM providers: one small trait and thin clients over an HTTP client (no SDKs).
//!
//! - [`openai`]: OpenAI-compatible chat completions — OpenAI, Azure OpenAI / Azure AI
//!   Foundry, Gemini's OpenAI-compatible endpoint, and local servers (llama.cpp, vLLM,
//!   Ollama) via `llm.endpoint`.
//! - [`anthropic`]: Anthropic Messages.
//! - [`bedrock`]: AWS Bedrock Converse, signed with SigV4 ([`sigv4`]) or a Bedrock API key.
//!
//! A request may ask for a structured answer (a forced tool call, or a JSON-schema / JSON
//! response format); the answer carries it as a JSON value when the model complied.
//! Secrets come from config (after `${VAR}` expansion) or the provider's environment
//! variable, and are never logged. This module knows nothing about plans or tools.

pub mod anthropic;
pub mod bedrock;
mod http;
pub mod openai;
pub mod sigv4;

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::config::{LlmSettings, PlanOutput, ProviderKind};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    /// The role's name in every provider's wire format.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One message of a conversation (the system prompt is separate).
#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn user(content: impl Into<String>) -> Self {
        ChatMessage {
            role: Role::User,
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        ChatMessage {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// A request for a structured answer.
#[derive(Debug, Clone, PartialEq)]
pub struct StructuredOutput {
    /// The tool (function) name, e.g. `submit_plan`.
    pub name: String,
    /// What it is for, shown to the model.
    pub description: String,
    /// The JSON Schema of the answer.
    pub schema: Value,
    /// How to ask for it.
    pub mode: PlanOutput,
}

/// One completion request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The system prompt.
    pub system: String,
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
    /// Ask for a structured answer.
    pub structured: Option<StructuredOutput>,
    /// Ask for a JSON answer without a schema (`llm.generate` with `json: true`).
    pub json_mode: bool,
    /// Overrides `llm.max_tokens`.
    pub max_tokens: Option<u32>,
}

/// What the model answered.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatResponse {
    /// The text part (may be empty when the model only made the tool call).
    pub text: String,
    /// The structured answer (tool-call arguments or JSON content), when there is one.
    pub structured: Option<Value>,
}

/// Why a completion failed. Messages name the provider; they never contain a secret.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    #[error("LLM provider `{provider}`: cannot reach {url}: {detail}")]
    Connect {
        provider: &'static str,
        url: String,
        detail: String,
    },
    #[error("LLM provider `{provider}`: no answer within {timeout_s} s")]
    Timeout {
        provider: &'static str,
        timeout_s: u64,
    },
    #[error("LLM provider `{provider}` answered HTTP {status}: {body}")]
    Http {
        provider: &'static str,
        status: u16,
        body: String,
    },
    #[error("LLM provider `{provider}` sent an answer mcp-orch cannot read: {detail}")]
    Invalid {
        provider: &'static str,
        detail: String,
    },
    #[error("LLM provider `{provider}` is not configured: {detail}")]
    Config {
        provider: &'static str,
        detail: String,
    },
}

impl LlmError {
    /// Worth retrying: network trouble, timeouts, rate limits, server errors.
    pub fn is_transient(&self) -> bool {
        match self {
            LlmError::Connect { .. } | LlmError::Timeout { .. } => true,
            LlmError::Http { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// A chat model.
pub trait LlmProvider: Send + Sync {
    /// `openai gpt-4o-mini at https://...`, for logs and status.
    fn describe(&self) -> String;
    /// One completion.
    fn complete(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse, LlmError>>;
    /// The ways of asking for a structured answer this API has (the planner falls back
    /// through them, in [`PlanOutput`] order, when one is refused). Default: all.
    fn plan_outputs(&self) -> &'static [PlanOutput] {
        &PlanOutput::ALL
    }
}

/// The environment variables providers read secrets from.
pub const SECRET_VARIABLES: [&str; 7] = [
    "OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "AZURE_AI_API_KEY",
    "ANTHROPIC_API_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_BEARER_TOKEN_BEDROCK",
];

/// Builds the configured provider; `Ok(None)` when `llm.provider` is not set. `env` answers
/// the fallback environment variables (`AZURE_AI_API_KEY`, `AWS_REGION`, ...).
pub fn build(
    settings: &LlmSettings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Arc<dyn LlmProvider>>, LlmError> {
    let Some(kind) = settings.provider else {
        return Ok(None);
    };
    let non_empty = |name: &str| env(name).filter(|v| !v.is_empty());
    // The log redactor blanks these from every line, whatever logs them by mistake.
    crate::security::redact::register(
        [
            &settings.api_key,
            &settings.secret_access_key,
            &settings.session_token,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .chain(SECRET_VARIABLES.iter().filter_map(|name| non_empty(name))),
    );
    let provider: Arc<dyn LlmProvider> = match kind {
        ProviderKind::OpenAi => Arc::new(openai::OpenAiCompatible::openai(
            settings,
            settings
                .api_key
                .clone()
                .or_else(|| non_empty("OPENAI_API_KEY")),
        )?),
        ProviderKind::Gemini => Arc::new(openai::OpenAiCompatible::gemini(
            settings,
            settings
                .api_key
                .clone()
                .or_else(|| non_empty("GEMINI_API_KEY")),
        )?),
        ProviderKind::Azure => Arc::new(openai::OpenAiCompatible::azure(
            settings,
            settings
                .endpoint
                .clone()
                .or_else(|| non_empty("AZURE_AI_ENDPOINT")),
            settings
                .api_key
                .clone()
                .or_else(|| non_empty("AZURE_AI_API_KEY")),
        )?),
        ProviderKind::Anthropic => Arc::new(anthropic::Anthropic::new(
            settings,
            settings
                .api_key
                .clone()
                .or_else(|| non_empty("ANTHROPIC_API_KEY")),
        )?),
        ProviderKind::Bedrock => {
            let credentials = match (
                settings
                    .access_key_id
                    .clone()
                    .or_else(|| non_empty("AWS_ACCESS_KEY_ID")),
                settings
                    .secret_access_key
                    .clone()
                    .or_else(|| non_empty("AWS_SECRET_ACCESS_KEY")),
            ) {
                (Some(access_key_id), Some(secret_access_key)) => Some(sigv4::Credentials {
                    access_key_id,
                    secret_access_key,
                    session_token: settings
                        .session_token
                        .clone()
                        .or_else(|| non_empty("AWS_SESSION_TOKEN")),
                }),
                _ => None,
            };
            Arc::new(bedrock::Bedrock::new(
                settings,
                settings
                    .region
                    .clone()
                    .or_else(|| non_empty("AWS_REGION"))
                    .or_else(|| non_empty("AWS_DEFAULT_REGION")),
                settings
                    .api_key
                    .clone()
                    .or_else(|| non_empty("AWS_BEARER_TOKEN_BEDROCK")),
                credentials,
            )?)
        }
    };
    Ok(Some(provider))
}

/// The JSON value in a model's text answer: the whole text, else the first ```json fenced
/// block, else the first balanced `{...}`.
pub fn extract_json(text: &str) -> Option<Value> {
    let trimmed = text.trim();
    if let Ok(value) = serde_json::from_str::<Value>(trimmed) {
        return Some(value);
    }
    let mut rest = trimmed;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let body_start = after.find('\n').map(|i| i + 1).unwrap_or(0);
        let body = &after[body_start..];
        let Some(end) = body.find("```") else { break };
        if let Ok(value) = serde_json::from_str::<Value>(body[..end].trim()) {
            return Some(value);
        }
        rest = &body[end + 3..];
    }
    let start = trimmed.find('{')?;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in trimmed[start..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '{' if !in_string => depth += 1,
            '}' if !in_string => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return serde_json::from_str(&trimmed[start..start + i + 1]).ok();
                }
            }
            _ => {}
        }
    }
    None
}

/// The first 300 characters of `text`, for messages.
pub fn preview(text: &str) -> String {
    let mut out: String = text.chars().take(300).collect();
    if text.chars().count() > 300 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_is_found_in_prose_and_fences() {
        assert_eq!(extract_json(" {\"a\": 1} "), Some(json!({"a": 1})));
        assert_eq!(
            extract_json("Here:\n```json\n{\"a\": [1]}\n```\nDone"),
            Some(json!({"a": [1]}))
        );
        assert_eq!(
            extract_json("The plan is {\"a\": \"}\"} and more {x}"),
            Some(json!({"a": "}"}))
        );
        assert_eq!(extract_json("no json here"), None);
    }

    #[test]
    fn no_provider_means_no_llm() {
        let built = build(&LlmSettings::default(), &|_| None);
        assert!(matches!(built, Ok(None)));
    }

    #[test]
    fn providers_report_missing_settings() {
        let settings = LlmSettings {
            provider: Some(ProviderKind::Azure),
            ..LlmSettings::default()
        };
        let err = build(&settings, &|_| None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("AZURE_AI_ENDPOINT"), "{err}");
        let settings = LlmSettings {
            provider: Some(ProviderKind::Bedrock),
            model: Some("m".into()),
            ..LlmSettings::default()
        };
        let err = build(&settings, &|_| None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("AWS_REGION"), "{err}");
        let ok = build(&settings, &|name| match name {
            "AWS_REGION" => Some("us-east-1".into()),
            "AWS_ACCESS_KEY_ID" => Some("AKID".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("secret".into()),
            _ => None,
        });
        let shown = ok.ok().flatten().map(|p| p.describe()).unwrap_or_default();
        assert!(
            shown.contains("bedrock-runtime.us-east-1.amazonaws.com"),
            "{shown}"
        );
        assert!(!shown.contains("secret"), "{shown}");
    }
}
