//! Upstream faces: how MCP clients reach mcp-orch. One [`ProxyHandler`] type serves every
//! face; a face only adapts a transport to it and never touches a downstream.
//!
//! - stdio: the process's stdin/stdout (what a client that launches mcp-orch uses);
//! - Streamable HTTP at `/mcp`, with sessions (rmcp's `StreamableHttpService`);
//! - legacy HTTP+SSE at `GET /sse` + `POST /message?sessionId=…` ([`sse`]).

mod handler;
pub mod sse;

use std::sync::Arc;

use rmcp::ServiceExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::router::Router;

pub use handler::{ProxyHandler, UPSTREAM_PROTOCOL_VERSIONS};

/// Serves one MCP session on stdin/stdout until the client closes stdin or `shutdown` is
/// cancelled. stdout carries only MCP messages.
pub async fn serve_stdio(router: Arc<Router>, shutdown: CancellationToken) -> std::io::Result<()> {
    let handler = ProxyHandler::new(router);
    let service = handler
        .serve_with_ct(rmcp::transport::stdio(), shutdown.child_token())
        .await
        .map_err(|e| std::io::Error::other(format!("stdio session failed to start: {e}")))?;
    let reason = service.waiting().await;
    tracing::info!(?reason, "stdio session ended");
    Ok(())
}

/// Settings for the `/mcp` face.
#[derive(Debug, Clone)]
pub struct HttpFaceSettings {
    /// `Host` header values accepted (DNS-rebinding protection); `None` accepts any. The
    /// security layer checks the same list first; this is rmcp's own second check.
    pub allowed_hosts: Option<Vec<String>>,
    /// `Origin` header values accepted; `None` accepts any.
    pub allowed_origins: Option<Vec<String>>,
    /// Largest POST body rmcp accepts.
    pub max_body_bytes: usize,
    /// Cancelled to end every session.
    pub shutdown: CancellationToken,
}

/// The `/mcp` Streamable HTTP service: one [`ProxyHandler`] per session.
pub fn mcp_service(
    router: Arc<Router>,
    settings: HttpFaceSettings,
) -> StreamableHttpService<ProxyHandler, LocalSessionManager> {
    let mut config = StreamableHttpServerConfig::default()
        .with_max_request_body_bytes(settings.max_body_bytes)
        .with_cancellation_token(settings.shutdown);
    config = match settings.allowed_hosts {
        Some(hosts) => config.with_allowed_hosts(hosts),
        None => config.disable_allowed_hosts(),
    };
    config = match settings.allowed_origins {
        Some(origins) => config
            .with_allowed_origins(origins)
            .enforce_origin_validation(),
        None => config.disable_allowed_origins(),
    };
    StreamableHttpService::new(
        move || Ok(ProxyHandler::new(router.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}
