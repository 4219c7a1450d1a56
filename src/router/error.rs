//! The one error type of the router, and how it maps to JSON-RPC.

use rmcp::model::{ErrorCode, ErrorData};

use crate::downstream::DownstreamError;

/// Why the router could not produce a result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RouterError {
    /// No tool with that exposed name.
    #[error("unknown tool '{0}'")]
    UnknownTool(String),
    /// No server with that name.
    #[error("unknown server '{0}'")]
    UnknownServer(String),
    /// No prompt with that exposed name.
    #[error("unknown prompt '{0}'")]
    UnknownPrompt(String),
    /// No server owns that URI.
    #[error("no server has a resource '{0}'")]
    UnknownUri(String),
    /// Several servers could own that URI.
    #[error(
        "resource '{uri}' could belong to several servers ({}); address one with \
         mcp-orch://<server>/<percent-encoded URI>",
        servers.join(", ")
    )]
    AmbiguousUri { uri: String, servers: Vec<String> },
    /// The downstream could not answer.
    #[error(transparent)]
    Downstream(#[from] DownstreamError),
}

impl RouterError {
    /// The JSON-RPC error an MCP client receives. A downstream's own JSON-RPC error is passed
    /// through with its code, message and data.
    pub fn to_jsonrpc(&self) -> ErrorData {
        match self {
            RouterError::UnknownTool(name) => ErrorData::new(
                ErrorCode::INVALID_PARAMS,
                format!("Unknown tool: {name}"),
                Some(serde_json::json!({ "tool": name })),
            ),
            RouterError::UnknownServer(name) => ErrorData::new(
                ErrorCode::INVALID_PARAMS,
                format!("Unknown server: {name}"),
                Some(serde_json::json!({ "server": name })),
            ),
            RouterError::UnknownPrompt(name) => ErrorData::new(
                ErrorCode::INVALID_PARAMS,
                format!("Unknown prompt: {name}"),
                Some(serde_json::json!({ "prompt": name })),
            ),
            RouterError::UnknownUri(uri) => ErrorData::new(
                ErrorCode::RESOURCE_NOT_FOUND,
                format!("Resource not found: {uri}"),
                Some(serde_json::json!({ "uri": uri })),
            ),
            RouterError::AmbiguousUri { uri, servers } => ErrorData::new(
                ErrorCode::INVALID_PARAMS,
                self.to_string(),
                Some(serde_json::json!({ "uri": uri, "servers": servers })),
            ),
            RouterError::Downstream(DownstreamError::Rpc { error, .. }) => error.clone(),
            RouterError::Downstream(other) => ErrorData::internal_error(other.to_string(), None),
        }
    }

    /// Whether a `tools/call` failing this way should become an `isError` tool result (so
    /// the model reads the message) rather than a JSON-RPC error: the server was unreachable,
    /// went away, or took too long.
    pub fn is_tool_result_error(&self) -> bool {
        matches!(
            self,
            RouterError::Downstream(
                DownstreamError::Unavailable { .. }
                    | DownstreamError::Unreachable { .. }
                    | DownstreamError::Closed { .. }
                    | DownstreamError::Timeout { .. }
                    | DownstreamError::Protocol { .. }
            )
        )
    }
}
