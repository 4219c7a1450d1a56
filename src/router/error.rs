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
                    | DownstreamError::Closed { .. }
                    | DownstreamError::Timeout { .. }
                    | DownstreamError::Protocol { .. }
            )
        )
    }
}
