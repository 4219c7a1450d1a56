//! Configuration: the two files a user writes and the environment they run in.
//!
//! Owns reading, `${VAR}` / `${VAR:-default}` expansion, typed parsing and validation of
//! `mcp-config.json` (which MCP servers to run, in the format every MCP client uses) and
//! `config.yaml` (how mcp-orch itself runs). Everything downstream of this module receives
//! already-validated values; nothing here spawns, connects or listens.
//!
//! Errors name the file, the key path (`mcpServers.github.args[1]`) and what was expected.

mod duration;
mod error;
mod expand;
mod locate;
mod mcp_servers;
mod service;

pub use duration::parse_duration;
pub use error::ConfigError;
pub use expand::{expand_env, ExpandWarning};
pub use locate::{locate_mcp_config, locate_service_config, Located};
pub use mcp_servers::{
    load_mcp_servers, parse_mcp_servers, McpServers, ServerEntry, ToolFilter, TransportSpec,
};
pub use service::{
    load_service_config, parse_service_config, ApiKeyEntry, ExecutionSettings, LlmSettings, Mode,
    Permission, ProxySettings, SecuritySettings, ServerSettings, ServiceConfig,
};
