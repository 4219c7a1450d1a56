//! `GET /servers`, `GET /health`, and per-server control and logs:
//! `POST /servers/{name}/restart|stop|start`, `GET /servers/{name}/logs`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::config::Permission;
use crate::downstream::{Control, Downstream, LogLine, Status};
use crate::security::Caller;

use super::error::rfc3339_millis;
use super::{ApiError, ApiState, RequestId};

/// `GET /servers`: every configured server with its status.
pub async fn list(State(state): State<ApiState>) -> Json<Value> {
    let servers = state.router.downstreams().snapshot();
    let config = state.reloader.as_ref().map(|r| r.status());
    Json(json!({ "count": servers.len(), "servers": servers, "config": config }))
}

/// `POST /servers/reload`: re-reads both configuration files; `200` with what changed, or
/// `422 INVALID_CONFIGURATION` (the previous configuration keeps serving).
pub async fn reload(
    State(state): State<ApiState>,
    request_id: RequestId,
) -> Result<Json<Value>, ApiError> {
    let Some(reloader) = state.reloader.as_ref() else {
        return Err(ApiError::new(
            &request_id,
            StatusCode::CONFLICT,
            "RELOAD_UNAVAILABLE",
            "this mcp-orch was not started from configuration files",
        ));
    };
    match reloader.reload("POST /servers/reload").await {
        Ok(outcome) => Ok(Json(json!(outcome))),
        Err(error) => Err(ApiError::new(
            &request_id,
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_CONFIGURATION",
            format!("configuration not reloaded (the previous one keeps serving): {error}"),
        )),
    }
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

/// The server a path names, or 404 in the error format.
fn server(
    state: &ApiState,
    request_id: &RequestId,
    name: &str,
) -> Result<Arc<Downstream>, ApiError> {
    state.router.downstreams().get(name).ok_or_else(|| {
        ApiError::new(
            request_id,
            StatusCode::NOT_FOUND,
            "SERVER_NOT_FOUND",
            format!("no server named '{name}' is configured"),
        )
        .with_details(json!({ "server": name }))
    })
}

/// `POST /servers/{name}/restart`, `/stop`, `/start`: asks the server's supervisor and
/// answers `202` with the status at that moment (poll `GET /servers` for the outcome).
async fn control(
    state: ApiState,
    request_id: RequestId,
    name: String,
    command: Control,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let downstream = server(&state, &request_id, &name)?;
    if !downstream.control(command) {
        let why = if downstream.entry().disabled {
            "it is disabled in the configuration"
        } else {
            "mcp-orch is shutting down"
        };
        return Err(ApiError::new(
            &request_id,
            StatusCode::CONFLICT,
            "SERVER_NOT_CONTROLLABLE",
            format!("server '{name}' cannot be controlled: {why}"),
        )
        .with_details(json!({ "server": name })));
    }
    let requested = match command {
        Control::Restart => "restart",
        Control::Stop => "stop",
        Control::Start => "start",
    };
    tracing::info!(server = %name, requested, "server control requested");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "server": name, "requested": requested, "status": downstream.status() })),
    ))
}

/// `POST /servers/{name}/restart`
pub async fn restart(
    State(state): State<ApiState>,
    request_id: RequestId,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    control(state, request_id, name, Control::Restart).await
}

/// `POST /servers/{name}/stop`
pub async fn stop(
    State(state): State<ApiState>,
    request_id: RequestId,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    control(state, request_id, name, Control::Stop).await
}

/// `POST /servers/{name}/start`
pub async fn start(
    State(state): State<ApiState>,
    request_id: RequestId,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    control(state, request_id, name, Control::Start).await
}

/// Query of `GET /servers/{name}/logs`.
#[derive(Debug, serde::Deserialize)]
pub struct LogsQuery {
    /// How many of the last lines (default 100, at most the buffer).
    lines: Option<usize>,
    /// Keep the response open and stream new lines as SSE.
    #[serde(default)]
    follow: bool,
}

fn log_line(line: &LogLine) -> Value {
    json!({ "at": rfc3339_millis(line.at), "line": line.line })
}

/// `GET /servers/{name}/logs?lines=N[&follow=true]`: the last N lines the server wrote to
/// stderr, with timestamps; with `follow`, an SSE stream of those lines then every new one
/// (`event: line`, data `{"at", "line"}`).
pub async fn logs(
    State(state): State<ApiState>,
    request_id: RequestId,
    Path(name): Path<String>,
    Query(query): Query<LogsQuery>,
) -> Result<Response, ApiError> {
    let downstream = server(&state, &request_id, &name)?;
    let wanted = query.lines.unwrap_or(100);
    if !query.follow {
        let lines: Vec<Value> = downstream
            .stderr()
            .tail(wanted)
            .iter()
            .map(log_line)
            .collect();
        return Ok(
            Json(json!({ "server": name, "count": lines.len(), "lines": lines })).into_response(),
        );
    }
    let (backlog, receiver) = downstream.stderr().tail_and_follow(wanted);
    let event = |line: &LogLine| {
        Ok::<_, Infallible>(
            Event::default()
                .event("line")
                .data(log_line(line).to_string()),
        )
    };
    let backlog = futures::stream::iter(backlog.iter().map(event).collect::<Vec<_>>());
    let live = futures::stream::unfold(receiver, move |mut receiver| async move {
        let item = match receiver.recv().await {
            Ok(line) => event(&line),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => Ok(Event::default()
                .event("lagged")
                .data(format!("{{\"missed\":{missed}}}"))),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
        };
        Some((item, receiver))
    });
    Ok(Sse::new(backlog.chain(live))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}
