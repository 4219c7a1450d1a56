//! Configuration: the two files a user writes and the environment they run in.
//!
//! Owns reading, `${VAR}` / `${VAR:-default}` expansion, typed parsing and validation of
//! `mcp-config.json` (which MCP servers to run, in the format every MCP client uses) and
//! `config.yaml` (how mcp-orch itself runs). Everything downstream of this module receives
//! already-validated values; nothing here spawns, connects or listens.
//!
//! Both files go through the same pipeline: text → `serde_json::Value` (JSON, or YAML via
//! serde-saphyr) → `${VAR}` expansion of every string value → a typed walk that knows the
//! exact key path of everything it reads. Errors name the file, the key path
//! (`mcpServers.github.args[1]`) and what was expected; unknown keys and unset variables are
//! returned as [`ConfigWarning`]s rather than failing.

mod batch_settings;
mod duration;
mod error;
mod expand;
mod lifecycle;
mod locate;
mod mcp_servers;
mod security_section;
mod server_entry;
mod service;
mod service_sections;
mod syntax;
mod transport;
mod tree;
mod warning;

pub use duration::parse_duration;
pub use error::ConfigError;
pub use expand::{ExpandWarning, expand_env};
pub use lifecycle::{HealthPolicy, RestartPolicy};
pub use locate::{Located, locate_mcp_config, locate_service_config};
pub use mcp_servers::{
    ForwardedCapabilities, Isolation, McpServers, ServerEntry, ToolFilter, TransportSpec,
    load_mcp_servers, parse_mcp_servers, parse_mcp_servers_with,
};
pub use service::{
    ApiKeyEntry, ExecutionSettings, LlmSettings, Mode, Permission, PlanOutput, ProviderKind,
    ProxySettings, Rate, RateLimitSettings, SecuritySettings, ServerSettings, ServiceConfig,
    load_service_config, parse_service_config, parse_service_config_with,
};
pub use warning::{ConfigWarning, WarningKind};
