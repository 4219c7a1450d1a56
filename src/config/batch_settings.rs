//! The batch-mode sections of `config.yaml`: `llm:` (which provider plans and how to reach
//! it) and `execution:` (bounds of the executor and where history is kept). Types, defaults
//! and the typed walk with exact key paths; secrets (`api_key`, AWS keys) are never printed
//! by `Debug` nor echoed in errors. Environment fallbacks (`AZURE_AI_API_KEY`, ...) are
//! applied where the provider is built (`crate::llm`), not here.

use std::time::Duration;

use serde_json::{Map, Value};

use super::ConfigError;
use super::tree::{Walk, child, field};

/// `llm.provider`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// Azure OpenAI / Azure AI Foundry (OpenAI-compatible chat completions, `api-key`).
    Azure,
    /// AWS Bedrock Converse (SigV4, or a Bedrock API key as bearer token).
    Bedrock,
    /// OpenAI or any OpenAI-compatible server (llama.cpp, vLLM, Ollama) via `endpoint`.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Gemini through its OpenAI-compatible endpoint.
    Gemini,
}

impl ProviderKind {
    /// Every provider with its config name.
    pub const ALL: [(ProviderKind, &'static str); 5] = [
        (ProviderKind::Azure, "azure"),
        (ProviderKind::Bedrock, "bedrock"),
        (ProviderKind::OpenAi, "openai"),
        (ProviderKind::Anthropic, "anthropic"),
        (ProviderKind::Gemini, "gemini"),
    ];

    /// Its name in `config.yaml`.
    pub fn name(self) -> &'static str {
        ProviderKind::ALL
            .iter()
            .find(|(kind, _)| *kind == self)
            .map(|(_, name)| *name)
            .unwrap_or("openai")
    }
}

/// `llm.plan_output`: how the planner asks for a machine-readable plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlanOutput {
    /// A forced `submit_plan` tool call.
    #[default]
    Tool,
    /// OpenAI-compatible `response_format: json_schema`.
    JsonSchema,
    /// OpenAI-compatible `response_format: json_object` (with the schema attached, which
    /// llama.cpp honours).
    JsonObject,
    /// Plain text; the plan is taken from a fenced JSON block.
    Text,
}

impl PlanOutput {
    /// Every mode, in the planner's fallback order.
    pub const ALL: [PlanOutput; 4] = [
        PlanOutput::Tool,
        PlanOutput::JsonSchema,
        PlanOutput::JsonObject,
        PlanOutput::Text,
    ];

    /// The name `llm.plan_output` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            PlanOutput::Tool => "tool",
            PlanOutput::JsonSchema => "json_schema",
            PlanOutput::JsonObject => "json_object",
            PlanOutput::Text => "text",
        }
    }
}

/// `llm:` — the planner's LLM.
#[derive(Clone, PartialEq)]
pub struct LlmSettings {
    /// None: no LLM; batches must come with a `plan`.
    pub provider: Option<ProviderKind>,
    /// Model (or Azure deployment, or Bedrock model id).
    pub model: Option<String>,
    /// Base URL; each provider has a default except Azure (`AZURE_AI_ENDPOINT`).
    pub endpoint: Option<String>,
    /// API key (secret). Falls back to the provider's environment variable.
    pub api_key: Option<String>,
    /// Azure `api-version`.
    pub api_version: Option<String>,
    /// Bedrock region; falls back to `AWS_REGION`.
    pub region: Option<String>,
    /// Bedrock SigV4 credentials (secrets); fall back to `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Time one LLM request may take. Default 120 s.
    pub timeout: Duration,
    /// Most tokens in an answer. Default 4096.
    pub max_tokens: u32,
    /// Sampling temperature. Default 0 (plans should be repeatable).
    pub temperature: f64,
    /// How the plan is requested first. Default `tool`; a mode the provider refuses is
    /// replaced by the next (`tool` → `json_schema` → `json_object` → `text`).
    pub plan_output: PlanOutput,
    /// Budget for the planner prompt (catalogue included), in characters; the catalogue is
    /// trimmed to fit. Default 24,000 (fits an 8k-token context).
    pub max_prompt_chars: usize,
}

impl Default for LlmSettings {
    fn default() -> Self {
        LlmSettings {
            provider: None,
            model: None,
            endpoint: None,
            api_key: None,
            api_version: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            timeout: Duration::from_secs(120),
            max_tokens: 4096,
            temperature: 0.0,
            plan_output: PlanOutput::Tool,
            max_prompt_chars: 24_000,
        }
    }
}

impl std::fmt::Debug for LlmSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("LlmSettings")
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("endpoint", &self.endpoint)
            .field("api_key", &secret(&self.api_key))
            .field("api_version", &self.api_version)
            .field("region", &self.region)
            .field(
                "aws_credentials",
                &(self.access_key_id.is_some() || self.session_token.is_some())
                    .then_some("<redacted>"),
            )
            .field("timeout", &self.timeout)
            .field("max_tokens", &self.max_tokens)
            .field("temperature", &self.temperature)
            .field("plan_output", &self.plan_output)
            .field("max_prompt_chars", &self.max_prompt_chars)
            .finish()
    }
}

/// `execution:` — bounds for batch mode.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionSettings {
    /// Calls in flight at once. Default 10.
    pub max_parallel_tasks: usize,
    /// Calls in flight per server; 0 = no per-server bound. Default 0.
    pub max_parallel_per_server: usize,
    /// Per-attempt timeout. Default 300 s.
    pub task_timeout: Duration,
    /// Deadline of a whole batch. Default 1 h.
    pub batch_timeout: Duration,
    /// Retries after a transport failure or timeout. Default 3.
    pub retry_count: u32,
    /// First retry delay (doubled each time, with jitter). Default 500 ms.
    pub retry_backoff: Duration,
    /// Also retry tools not annotated read-only or idempotent. Default false.
    pub retry_non_idempotent: bool,
    /// Most tasks in one plan. Default 100.
    pub max_tasks: usize,
    /// Largest `foreach.max_items`. Default 100.
    pub max_fanout: usize,
    /// Largest task output (or arguments) kept, in bytes of JSON; larger ones are stored
    /// truncated and marked. Default 65,536.
    pub max_result_bytes: usize,
    /// SQLite file for batch history (relative to the working directory); `:memory:` keeps
    /// history only while running. Default `mcp-orch-batches.db`.
    pub history_db: String,
}

impl Default for ExecutionSettings {
    fn default() -> Self {
        ExecutionSettings {
            max_parallel_tasks: 10,
            max_parallel_per_server: 0,
            task_timeout: Duration::from_secs(300),
            batch_timeout: Duration::from_secs(3600),
            retry_count: 3,
            retry_backoff: Duration::from_millis(500),
            retry_non_idempotent: false,
            max_tasks: 100,
            max_fanout: 100,
            max_result_bytes: 65_536,
            history_db: "mcp-orch-batches.db".into(),
        }
    }
}

/// Keys allowed both at `llm.*` and in a provider section `llm.<provider>.*`.
const LLM_KEYS: &[&str] = &[
    "model",
    "endpoint",
    "api_key",
    "api_version",
    "region",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "timeout",
    "max_tokens",
    "temperature",
    "plan_output",
    "max_prompt_chars",
];

/// Parses `llm:`. Keys may sit at `llm.*` or in the section named after the provider
/// (`llm.azure.endpoint`, as in the original README); the provider's section wins.
pub(super) fn parse_llm(walk: &mut Walk, value: &Value) -> Result<LlmSettings, ConfigError> {
    let map = walk.object("llm", value, "a mapping of LLM settings")?;
    let mut known: Vec<&str> = vec!["provider"];
    known.extend(LLM_KEYS);
    known.extend(ProviderKind::ALL.iter().map(|(_, name)| *name));
    walk.unknown_keys("llm", map, &known);
    let mut out = LlmSettings::default();
    if let Some(v) = field(map, "provider") {
        let name = v.as_str().unwrap_or_default();
        out.provider = match ProviderKind::ALL.iter().find(|(_, n)| *n == name) {
            Some((kind, _)) => Some(*kind),
            None => {
                return Err(walk.invalid(
                    "llm.provider",
                    "one of `azure`, `bedrock`, `openai`, `anthropic`, `gemini`",
                    Some(v),
                ));
            }
        };
    }
    apply_llm_keys(walk, "llm", map, &mut out)?;
    for (kind, name) in ProviderKind::ALL {
        let Some(section) = field(map, name) else {
            continue;
        };
        let path = child("llm", name);
        let section = walk.object(&path, section, &format!("a mapping of `{name}` settings"))?;
        walk.unknown_keys(&path, section, LLM_KEYS);
        let mut scratch = out.clone();
        apply_llm_keys(walk, &path, section, &mut scratch)?;
        if out.provider == Some(kind) {
            out = scratch;
        }
    }
    Ok(out)
}

fn apply_llm_keys(
    walk: &mut Walk,
    path: &str,
    map: &Map<String, Value>,
    out: &mut LlmSettings,
) -> Result<(), ConfigError> {
    let text = |walk: &Walk, key: &str, expected: &str| -> Result<Option<String>, ConfigError> {
        field(map, key)
            .map(|v| walk.non_empty_string(&child(path, key), v, expected))
            .transpose()
    };
    let secret = |walk: &Walk, key: &str| -> Result<Option<String>, ConfigError> {
        match field(map, key) {
            // An unset `${VAR}` is absent, so the environment fallback still applies.
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(v) => walk
                .secret_string(&child(path, key), v, "a non-empty string")
                .map(Some),
            None => Ok(None),
        }
    };
    if let Some(v) = text(walk, "model", "a model name")? {
        out.model = Some(v);
    }
    if let Some(v) = text(walk, "endpoint", "a URL")? {
        if !(v.starts_with("http://") || v.starts_with("https://")) {
            return Err(walk.invalid(
                &child(path, "endpoint"),
                "an http:// or https:// URL",
                field(map, "endpoint"),
            ));
        }
        out.endpoint = Some(v);
    }
    if let Some(v) = text(walk, "api_version", "an API version")? {
        out.api_version = Some(v);
    }
    if let Some(v) = text(walk, "region", "an AWS region like us-east-1")? {
        out.region = Some(v);
    }
    for (key, slot) in [
        ("api_key", &mut out.api_key),
        ("access_key_id", &mut out.access_key_id),
        ("secret_access_key", &mut out.secret_access_key),
        ("session_token", &mut out.session_token),
    ] {
        if let Some(v) = secret(walk, key)? {
            *slot = Some(v);
        }
    }
    if let Some(v) = field(map, "timeout") {
        out.timeout = walk.duration(&child(path, "timeout"), v)?;
    }
    if let Some(v) = field(map, "max_tokens") {
        let n = walk.integer(
            &child(path, "max_tokens"),
            v,
            1,
            1_000_000,
            "a whole number of at least 1",
        )?;
        out.max_tokens = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(v) = field(map, "temperature") {
        let t = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        out.temperature = match t {
            Some(t) if (0.0..=2.0).contains(&t) => t,
            _ => {
                return Err(walk.invalid(
                    &child(path, "temperature"),
                    "a number from 0 to 2",
                    Some(v),
                ));
            }
        };
    }
    if let Some(v) = field(map, "plan_output") {
        let named = v
            .as_str()
            .and_then(|name| PlanOutput::ALL.into_iter().find(|m| m.as_str() == name));
        out.plan_output = match named {
            Some(mode) => mode,
            None => {
                return Err(walk.invalid(
                    &child(path, "plan_output"),
                    "one of `tool`, `json_schema`, `json_object`, `text`",
                    Some(v),
                ));
            }
        };
    }
    if let Some(v) = field(map, "max_prompt_chars") {
        let n = walk.integer(
            &child(path, "max_prompt_chars"),
            v,
            1000,
            10_000_000,
            "a whole number from 1000",
        )?;
        out.max_prompt_chars = usize::try_from(n).unwrap_or(usize::MAX);
    }
    Ok(())
}

/// Parses `execution:` on top of the defaults in `out`.
pub(super) fn parse_execution(
    walk: &mut Walk,
    map: &Map<String, Value>,
    out: &mut ExecutionSettings,
) -> Result<(), ConfigError> {
    walk.unknown_keys(
        "execution",
        map,
        &[
            "max_parallel_tasks",
            "max_parallel_per_server",
            "task_timeout",
            "batch_timeout",
            "retry_count",
            "retry_backoff",
            "retry_non_idempotent",
            "max_tasks",
            "max_fanout",
            "max_result_bytes",
            "history_db",
        ],
    );
    let usize_max = u64::try_from(usize::MAX).unwrap_or(u64::MAX);
    let count = |walk: &Walk, key: &str, min: u64| -> Result<Option<usize>, ConfigError> {
        let expected = if min == 0 {
            "a whole number (0 or more)".to_owned()
        } else {
            format!("a whole number of at least {min}")
        };
        field(map, key)
            .map(|v| {
                walk.integer(&child("execution", key), v, min, usize_max, &expected)
                    .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            })
            .transpose()
    };
    if let Some(n) = count(walk, "max_parallel_tasks", 1)? {
        out.max_parallel_tasks = n;
    }
    if let Some(n) = count(walk, "max_parallel_per_server", 0)? {
        out.max_parallel_per_server = n;
    }
    if let Some(n) = count(walk, "max_tasks", 1)? {
        out.max_tasks = n;
    }
    if let Some(n) = count(walk, "max_fanout", 1)? {
        out.max_fanout = n;
    }
    if let Some(n) = count(walk, "max_result_bytes", 256)? {
        out.max_result_bytes = n;
    }
    for (key, slot) in [
        ("task_timeout", &mut out.task_timeout),
        ("batch_timeout", &mut out.batch_timeout),
        ("retry_backoff", &mut out.retry_backoff),
    ] {
        if let Some(v) = field(map, key) {
            *slot = walk.duration(&child("execution", key), v)?;
        }
    }
    if let Some(v) = field(map, "retry_count") {
        let n = walk.integer(
            "execution.retry_count",
            v,
            0,
            u64::from(u32::MAX),
            "a whole number (0 or more)",
        )?;
        out.retry_count = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(v) = field(map, "retry_non_idempotent") {
        out.retry_non_idempotent = walk.boolean("execution.retry_non_idempotent", v)?;
    }
    if let Some(v) = field(map, "history_db") {
        out.history_db =
            walk.non_empty_string("execution.history_db", v, "a file path (or `:memory:`)")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{ServiceConfig, parse_service_config_with};
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "AZURE_KEY" => Some("az-secret".into()),
            _ => None,
        }
    }

    fn parse(yaml: &str) -> ServiceConfig {
        parse_service_config_with(yaml, None, &env).unwrap_or_else(|e| panic!("{yaml}: {e}"))
    }

    fn error(yaml: &str) -> String {
        match parse_service_config_with(yaml, None, &env) {
            Err(err) => err.to_string(),
            Ok(config) => panic!("{yaml}: parsed {config:?}"),
        }
    }

    #[test]
    fn provider_sections_win_over_top_level_keys() {
        let config = parse(
            "llm:\n  provider: azure\n  model: top\n  timeout: 5s\n  azure:\n    endpoint: https://x.openai.azure.com\n    api_key: ${AZURE_KEY}\n    model: gpt-4\n  openai: {model: other}\n",
        );
        let llm = &config.llm;
        assert_eq!(llm.provider, Some(ProviderKind::Azure));
        assert_eq!(llm.model.as_deref(), Some("gpt-4"));
        assert_eq!(llm.endpoint.as_deref(), Some("https://x.openai.azure.com"));
        assert_eq!(llm.api_key.as_deref(), Some("az-secret"));
        assert_eq!(llm.timeout, Duration::from_secs(5));
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        let shown = format!("{llm:?}");
        assert!(
            !shown.contains("az-secret") && shown.contains("<redacted>"),
            "{shown}"
        );
        // An unset variable leaves the key absent, so the provider's env fallback applies.
        let config = parse("llm: {provider: openai, api_key: '${NOPE}'}");
        assert_eq!(config.llm.api_key, None);
    }

    #[test]
    fn every_execution_key_can_be_set() {
        let config = parse(
            "execution: {max_parallel_tasks: 4, max_parallel_per_server: 1, task_timeout: 2s, batch_timeout: 1m, retry_count: 0, retry_backoff: 10ms, retry_non_idempotent: true, max_tasks: 7, max_fanout: 8, max_result_bytes: 1000, history_db: /tmp/h.db}",
        );
        assert_eq!(
            config.execution,
            ExecutionSettings {
                max_parallel_tasks: 4,
                max_parallel_per_server: 1,
                task_timeout: Duration::from_secs(2),
                batch_timeout: Duration::from_secs(60),
                retry_count: 0,
                retry_backoff: Duration::from_millis(10),
                retry_non_idempotent: true,
                max_tasks: 7,
                max_fanout: 8,
                max_result_bytes: 1000,
                history_db: "/tmp/h.db".into(),
            }
        );
    }

    #[test]
    fn errors_name_exact_paths() {
        #[rustfmt::skip]
        let cases = [
            ("llm: {provider: OpenAI}", "llm.provider", "expected one of `azure`, `bedrock`, `openai`, `anthropic`, `gemini`, found \"OpenAI\""),
            ("llm: {azure: {endpoint: ftp://x}}", "llm.azure.endpoint", "expected an http:// or https:// URL, found \"ftp://x\""),
            ("llm: {temperature: 3}", "llm.temperature", "expected a number from 0 to 2, found a number (3)"),
            ("llm: {bedrock: {api_key: 5}}", "llm.bedrock.api_key", "expected a non-empty string, found a number"),
            ("llm: {plan_output: json}", "llm.plan_output", "expected one of `tool`, `json_schema`, `json_object`, `text`, found \"json\""),
            ("llm: {max_tokens: 0}", "llm.max_tokens", "expected a whole number of at least 1, found a number (0)"),
            ("execution: {max_tasks: 0}", "execution.max_tasks", "expected a whole number of at least 1, found a number (0)"),
            ("execution: {retry_non_idempotent: maybe}", "execution.retry_non_idempotent", "expected true or false, found \"maybe\""),
            ("execution: {history_db: ''}", "execution.history_db", "expected a file path (or `:memory:`), found an empty string"),
        ];
        for (yaml, path, message) in cases {
            assert_eq!(
                error(yaml),
                format!("<config.yaml>: at `{path}`: {message}"),
                "{yaml}"
            );
        }
    }

    #[test]
    fn unknown_llm_keys_are_warnings() {
        let config = parse("llm: {provider: openai, modle: x, openai: {nope: 1}}");
        let paths: Vec<&str> = config.warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(paths, ["llm.modle", "llm.openai.nope"]);
    }
}
