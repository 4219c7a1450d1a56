//! The REST face for scripts: tools, servers, health. Every route answers JSON; errors use
//! the format in [`error`]. Routes only call the router; none touches a downstream.
//!
//! | Route | What |
//! |---|---|
//! | `GET /tools` | every merged tool: exposed name, server, original name, description, schemas |
//! | `GET /tools/{server}` | one server's tools |
//! | `POST /tools/{server}.{tool}` | call a tool; body = arguments, response = the tool result |
//! | `GET /servers` | status of every configured server |
//! | `GET /health` | up/down and server counts |
//! | `/batch/...` | batch mode only: execute, status, result, cancel, history, events ([`batch`]) |

pub mod batch;
mod error;
mod request_id;
mod servers;
mod tools;

use std::sync::Arc;
use std::time::Instant;

use axum::routing::get;

use crate::batch::BatchService;
use crate::router::Router;

pub use error::{ApiError, humantime_rfc3339};
pub use request_id::RequestId;

/// What every REST handler can reach.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub router: Arc<Router>,
    /// When the process started serving, for uptime.
    pub started: Instant,
    /// The batch service, in batch mode only (its routes exist only then).
    pub batch: Option<Arc<BatchService>>,
}

/// The REST routes (merged by the caller with `/mcp`).
pub fn routes(state: ApiState) -> axum::Router {
    let batch = state.batch.clone();
    let routes = axum::Router::new()
        .route("/tools", get(tools::list_all))
        .route("/tools/{target}", get(tools::list_server).post(tools::call))
        .route("/servers", get(servers::list))
        .route("/health", get(servers::health))
        .with_state(state);
    match batch {
        Some(service) => routes.merge(batch::routes(service)),
        None => routes,
    }
}

/// Middleware that gives every request (REST and MCP) a request id.
pub use request_id::assign as assign_request_id;
