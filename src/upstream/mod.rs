//! Upstream faces: how MCP clients reach mcp-orch. One [`ProxyHandler`] type serves every
//! face; a face only adapts a transport to it and never touches a downstream.
//!
//! - stdio: the process's stdin/stdout (what a client that launches mcp-orch uses);
//! - Streamable HTTP at `/mcp`, with sessions (rmcp's `StreamableHttpService`);
//! - legacy HTTP+SSE at `GET /sse` + `POST /message?sessionId=…` ([`sse`]).

mod direct;
mod handler;
mod http_sessions;
mod mcp_face;
pub mod sse;
mod stdio;

use std::sync::Arc;

use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::router::Router;

pub use direct::{Call as PlainCall, parse_call as parse_plain_call};
pub use handler::{ProxyHandler, UPSTREAM_PROTOCOL_VERSIONS};
pub use mcp_face::McpFace;
pub use stdio::serve_stdio;
/// The process's stdin/stdout on the event loop when they are pipes or sockets (also what
/// the fixture server uses, so a direct connection to it is not slowed by thread hops).
pub use stdio::streams::{StdinReader, StdioKind, StdoutWriter, streams as stdio_streams};

/// Settings for the `/mcp` face.
#[derive(Debug, Clone)]
pub struct HttpFaceSettings {
    /// Largest POST body rmcp accepts.
    pub max_body_bytes: usize,
    /// Cancelled to end every session.
    pub shutdown: CancellationToken,
}

/// The `/mcp` Streamable HTTP service: one [`ProxyHandler`] per session, `tools/list`
/// answered from the catalogue's serialized listing ([`McpFace`]).
pub fn mcp_service(router: Arc<Router>, settings: HttpFaceSettings) -> McpFace {
    // `Host` and `Origin` (DNS-rebinding protection) are checked by the security layer in
    // front of every route, `/mcp` included, with our error format. rmcp's own copy of the
    // check is off: it clones its lists with the service on every request.
    let config = StreamableHttpServerConfig::default()
        .with_max_request_body_bytes(settings.max_body_bytes)
        .with_cancellation_token(settings.shutdown)
        .disable_allowed_hosts()
        .disable_allowed_origins();
    let sessions = Arc::new(LocalSessionManager::default());
    let directory = Arc::new(http_sessions::HttpSessions::default());
    let handlers = router.clone();
    let known = directory.clone();
    let rmcp = StreamableHttpService::new(
        move || Ok(ProxyHandler::for_http(handlers.clone(), known.clone())),
        sessions.clone(),
        config,
    );
    McpFace::new(rmcp, sessions, directory, router)
}
