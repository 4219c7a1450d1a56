//! The REST face for scripts: tools, servers, health. Every route answers JSON; errors use
//! the format in [`error`]. Routes only call the router; none touches a downstream.
//!
//! Routes are registered only from the route table ([`crate::security::ROUTES`]), which
//! also says what permission each needs; a handler is attached here per [`Endpoint`].
//!
//! | Route | What |
//! |---|---|
//! | `GET /tools` | every merged tool: exposed name, server, original name, description, schemas |
//! | `GET /tools/{server}` | one server's tools |
//! | `POST /tools/{server}.{tool}` | call a tool; body = arguments, response = the tool result |
//! | `GET /servers` | status of every configured server |
//! | `POST /servers/{name}/restart`, `/stop`, `/start` | control one server |
//! | `GET /servers/{name}/logs?lines=N&follow=true` | its stderr, or a live SSE stream of it |
//! | `POST /servers/reload` | re-read the configuration and apply what changed |
//! | `GET /health` | up/down and server counts |
//! | `/batch/...` | batch mode: execute, status, result, cancel, history, events ([`batch`]) |

pub mod batch;
mod error;
mod request_id;
mod servers;
mod tools;

use std::sync::Arc;
use std::time::Instant;

use axum::routing::{MethodFilter, MethodRouter, on};

use crate::batch::BatchService;
use crate::router::Router;
use crate::security::{Endpoint, ROUTES, Route};

pub use error::{ApiError, humantime_rfc3339};
pub use request_id::RequestId;

/// What every REST handler can reach.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub router: Arc<Router>,
    /// Applies configuration changes (`POST /servers/reload`); `None` when embedded without
    /// configuration files.
    pub reloader: Option<Arc<crate::reload::Reloader>>,
    /// When the process started serving, for uptime.
    pub started: Instant,
    /// The batch service, in batch mode only (the `/batch` routes answer 404 otherwise).
    pub batch: Option<Arc<BatchService>>,
}

/// The REST routes: every row of the route table this face serves (merged by the caller
/// with `/mcp`).
pub fn routes(state: ApiState) -> axum::Router {
    let mut router = axum::Router::new();
    for route in ROUTES {
        if let Some(handler) = handler(route) {
            router = router.route(route.path, handler);
        }
    }
    router.with_state(state)
}

/// The handler of a REST row; `None` for rows other faces serve (or not built yet).
fn handler(route: &Route) -> Option<MethodRouter<ApiState>> {
    let filter = MethodFilter::try_from(route.method.clone()).ok()?;
    Some(match route.endpoint {
        Endpoint::Health => on(filter, servers::health),
        Endpoint::Tools => on(filter, tools::list_all),
        Endpoint::ToolsOfServer => on(filter, tools::list_server),
        Endpoint::CallTool => on(filter, tools::call),
        Endpoint::Servers => on(filter, servers::list),
        Endpoint::RestartServer => on(filter, servers::restart),
        Endpoint::StopServer => on(filter, servers::stop),
        Endpoint::StartServer => on(filter, servers::start),
        Endpoint::ServerLogs => on(filter, servers::logs),
        Endpoint::BatchExecute => on(filter, batch::execute),
        Endpoint::BatchCancel => on(filter, batch::cancel),
        Endpoint::BatchStatus => on(filter, batch::status),
        Endpoint::BatchResult => on(filter, batch::result),
        Endpoint::BatchEvents => on(filter, batch::events),
        Endpoint::BatchTasks => on(filter, batch::history),
        Endpoint::ReloadServers => on(filter, servers::reload),
        Endpoint::McpPost
        | Endpoint::McpStream
        | Endpoint::McpDelete
        | Endpoint::SseOpen
        | Endpoint::SseMessage => return None,
    })
}

/// Every HTTP request's id (REST and MCP): taken or made by the HTTP front.
pub use request_id::{echo as echo_request_id, of as request_id_of};
