//! `config.yaml`: how mcp-orch itself runs (listen address, mode, naming, timeouts, security,
//! LLM provider, batch execution limits). Every key is optional; the defaults are the ones
//! documented in `config.example.yaml`.

use std::path::Path;
use std::time::Duration;

use super::ConfigError;

/// The whole of `config.yaml`, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    pub server: ServerSettings,
    pub proxy: ProxySettings,
    pub security: SecuritySettings,
    pub llm: LlmSettings,
    pub execution: ExecutionSettings,
}

/// `server:` — where the HTTP faces listen and which mode runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    /// Default `127.0.0.1`.
    pub host: String,
    /// Default 3000.
    pub port: u16,
    /// Default `proxy`.
    pub mode: Mode,
}

/// `--mode` / `server.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Proxy,
    Batch,
}

/// `proxy:` — how the merged catalogue is named and how long calls may take.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxySettings {
    /// Between prefix and tool name in MCP-facing names. Default `__`; `.` allowed.
    pub separator: String,
    /// Per-call timeout when a server sets none. Default 60 s.
    pub default_timeout: Duration,
    /// Time a server gets to start and initialize when it sets none. Default 60 s.
    pub startup_timeout: Duration,
}

/// `security:` — consumed by the security layer (issue 5).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SecuritySettings {
    pub enable_auth: bool,
    pub api_keys: Vec<ApiKeyEntry>,
}

/// One `security.api_keys[]` entry. `Debug` never prints the key.
#[derive(Clone, PartialEq)]
pub struct ApiKeyEntry {
    pub name: String,
    pub key: String,
    pub permissions: Vec<Permission>,
}

impl std::fmt::Debug for ApiKeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyEntry")
            .field("name", &self.name)
            .field("key", &"<redacted>")
            .field("permissions", &self.permissions)
            .finish()
    }
}

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    Read,
    Write,
    Execute,
}

/// `llm:` — kept as the parsed YAML tree until the batch planner (issue 6) types it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LlmSettings {
    /// `llm.provider` (azure | bedrock | openai | anthropic | gemini), if set.
    pub provider: Option<String>,
    /// The whole `llm:` section after `${VAR}` expansion.
    pub raw: serde_json::Value,
}

/// `execution:` — bounds for batch mode.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionSettings {
    /// Default 10.
    pub max_parallel_tasks: usize,
    /// Default 300 s.
    pub task_timeout: Duration,
    /// Default 3.
    pub retry_count: u32,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        unimplemented!("config helper")
    }
}

/// Reads, expands and validates a `config.yaml` file.
pub fn load_service_config(path: &Path) -> Result<ServiceConfig, ConfigError> {
    let _ = path;
    unimplemented!("config helper")
}

/// Parses `config.yaml` text; `source` names the file in error messages.
pub fn parse_service_config(text: &str, source: Option<&Path>) -> Result<ServiceConfig, ConfigError> {
    let _ = (text, source);
    unimplemented!("config helper")
}
