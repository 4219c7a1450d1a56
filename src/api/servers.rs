//! `GET /servers` and `GET /health`.

use axum::extract::State;
use axum::{Extension, Json};
use serde_json::{Value, json};

use crate::config::Permission;
use crate::downstream::Status;
use crate::security::Caller;

use super::ApiState;

/// `GET /servers`: every configured server with its status.
pub async fn list(State(state): State<ApiState>) -> Json<Value> {
    let servers = state.router.downstreams().snapshot();
    Json(json!({ "count": servers.len(), "servers": servers }))
}

/// `GET /health`: `ok` when every enabled server is ready, `degraded` when some are not;
/// always 200 while the process serves. Open to anyone: a caller without the `read`
/// permission (no credentials while auth is on) learns only `{"status": "ok"}`.
pub async fn health(
    State(state): State<ApiState>,
    caller: Option<Extension<Caller>>,
) -> Json<Value> {
    if !caller.is_some_and(|Extension(c)| c.may(Permission::Read)) {
        return Json(json!({ "status": "ok" }));
    }
    let servers = state.router.downstreams().snapshot();
    let count = |status: Status| servers.iter().filter(|s| s.status == status).count();
    let (ready, starting, failed) = (
        count(Status::Ready),
        count(Status::Starting),
        count(Status::Failed),
    );
    let status = if failed == 0 && starting == 0 {
        "ok"
    } else {
        "degraded"
    };
    Json(json!({
        "status": status,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "servers": { "ready": ready, "starting": starting, "failed": failed, "total": servers.len() },
        "tools": state.router.catalog().len(),
    }))
}
