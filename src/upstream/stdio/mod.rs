//! The stdio face: one MCP session on the process's own stdin and stdout.
//!
//! Every line the client sends is looked at once ([`lines`]). A plain `tools/call` or
//! `tools/list` of the initialized session is answered by the direct path ([`direct`]);
//! everything else — `initialize`, other methods, answers to sampling, malformed input — goes
//! to rmcp's line transport as the bytes the client sent, so rmcp's parsing, errors and
//! protocol handling stay the only ones for it. Both write through one task that owns
//! stdout ([`output`]) and only ever writes whole messages: stdout carries nothing but MCP.

mod direct;
mod lines;
mod output;
pub(crate) mod streams;

use std::sync::Arc;

use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;

use super::ProxyHandler;
use super::direct::Calls;
use crate::router::Router;

/// Serves one MCP session on stdin/stdout until the client closes stdin or `shutdown` is
/// cancelled.
pub async fn serve_stdio(router: Arc<Router>, shutdown: CancellationToken) -> std::io::Result<()> {
    let handler = ProxyHandler::new(router.clone());
    let (stdin, stdout, stdin_kind, stdout_kind) = streams::streams();
    tracing::debug!(?stdin_kind, ?stdout_kind, "stdio face");
    let calls = Arc::new(Calls::default());
    let output = output::Output::start(stdout, calls.clone());
    let direct = direct::Direct::new(router, handler.id(), output.clone(), calls);
    let (to_rmcp, rmcp_input) = lines::rmcp_input();
    let reader = tokio::spawn(lines::read(stdin, direct, to_rmcp));
    let started = handler
        .serve_with_ct((rmcp_input, output.rmcp_writer()), shutdown.child_token())
        .await;
    let service = match started {
        Ok(service) => service,
        Err(error) => {
            reader.abort();
            return Err(std::io::Error::other(format!(
                "stdio session failed to start: {error}"
            )));
        }
    };
    let reason = service.waiting().await;
    reader.abort();
    tracing::info!(?reason, "stdio session ended");
    Ok(())
}
