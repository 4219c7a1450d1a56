//! The batch routes (batch mode only): `POST /batch/execute`, `GET /batch/status/{id}`,
//! `GET /batch/result/{id}`, `DELETE /batch/cancel/{id}`, `GET /batch/tasks`,
//! `GET /batch/events/{id}` (SSE, resumable with `Last-Event-ID`). Handlers only translate
//! HTTP to [`BatchService`] calls and errors to the REST error format; they are registered
//! from the route table (`crate::security::ROUTES`) like every REST route.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::batch::events::{Event, EventLog};
use crate::batch::planner::PlanningError;
use crate::batch::{
    BatchError, BatchService, CallerPermissions, EventSource, RequestOptions, Submission, Submitted,
};

use super::{ApiError, ApiState, RequestId};

/// Largest `limit` of `GET /batch/tasks`.
const MAX_PAGE: usize = 100;

/// The batch service, or 404 when mcp-orch does not run in batch mode.
fn service(state: &ApiState, request_id: &RequestId) -> Result<Arc<BatchService>, ApiError> {
    state.batch.clone().ok_or_else(|| {
        ApiError::new(
            request_id,
            StatusCode::NOT_FOUND,
            "BATCH_MODE_OFF",
            "batch mode is off: start mcp-orch with --mode batch (or server.mode: batch)",
        )
    })
}

/// The body of `POST /batch/execute`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecuteBody {
    #[serde(default)]
    request: String,
    #[serde(default)]
    plan: Option<Value>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    options: RequestOptions,
}

fn to_api(request_id: &RequestId, error: BatchError) -> ApiError {
    let message = error.to_string();
    let (status, code, details) = match &error {
        BatchError::InvalidPlan(problems) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_PLAN",
            json!({ "problems": problems }),
        ),
        BatchError::BadRequest(_) => (StatusCode::BAD_REQUEST, "INVALID_REQUEST", json!({})),
        BatchError::NoLlm => (StatusCode::BAD_REQUEST, "LLM_NOT_CONFIGURED", json!({})),
        BatchError::Planning(PlanningError::Invalid { problems, answer }) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_PLAN",
            json!({ "problems": problems, "answer": answer }),
        ),
        BatchError::Planning(PlanningError::Llm(_)) => {
            (StatusCode::BAD_GATEWAY, "LLM_ERROR", json!({}))
        }
        BatchError::NotFound(id) => (
            StatusCode::NOT_FOUND,
            "BATCH_NOT_FOUND",
            json!({ "task_id": id }),
        ),
        BatchError::Finished { id, status } => (
            StatusCode::CONFLICT,
            "BATCH_FINISHED",
            json!({ "task_id": id, "status": status }),
        ),
        BatchError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "STORE_ERROR", json!({})),
    };
    ApiError::new(request_id, status, code, message).with_details(details)
}

/// `POST /batch/execute` → 202 `{task_id, status}`, or 200 with the plan for `dry_run`.
pub async fn execute(
    State(state): State<ApiState>,
    request_id: RequestId,
    permissions: Option<axum::Extension<CallerPermissions>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let parsed: ExecuteBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            &request_id,
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            format!("the body must be {{\"request\", \"plan\"?, \"dry_run\"?, \"options\"?}}: {e}"),
        )
    })?;
    let submission = Submission {
        request: parsed.request,
        plan: parsed.plan,
        dry_run: parsed.dry_run,
        options: parsed.options,
        allow: permissions.map(|p| p.0.0.clone()),
    };
    match service(&state, &request_id)?.submit(submission).await {
        Ok(Submitted::Started { id, status }) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({
                "task_id": id,
                "status": status.as_str(),
                "links": {
                    "status": format!("/batch/status/{id}"),
                    "result": format!("/batch/result/{id}"),
                    "events": format!("/batch/events/{id}"),
                    "cancel": format!("/batch/cancel/{id}"),
                },
            })),
        )
            .into_response()),
        Ok(Submitted::DryRun(plan)) => Ok(Json(plan).into_response()),
        Err(error) => Err(to_api(&request_id, error)),
    }
}

/// `GET /batch/status/{id}`
pub async fn status(
    State(state): State<ApiState>,
    request_id: RequestId,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let record = service(&state, &request_id)?
        .record(&id)
        .await
        .map_err(|e| to_api(&request_id, e))?;
    Ok(Json(record.status_json()))
}

/// `GET /batch/result/{id}`
pub async fn result(
    State(state): State<ApiState>,
    request_id: RequestId,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let record = service(&state, &request_id)?
        .record(&id)
        .await
        .map_err(|e| to_api(&request_id, e))?;
    Ok(Json(record.result_json()))
}

/// `DELETE /batch/cancel/{id}`: answers once the batch has stopped.
pub async fn cancel(
    State(state): State<ApiState>,
    request_id: RequestId,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let record = service(&state, &request_id)?
        .cancel(&id)
        .await
        .map_err(|e| to_api(&request_id, e))?;
    Ok(Json(record.status_json()))
}

/// `GET /batch/tasks?limit=20&offset=0`: history, newest first.
pub async fn history(
    State(state): State<ApiState>,
    request_id: RequestId,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let number = |key: &str, default: usize| -> Result<usize, ApiError> {
        match query.get(key) {
            None => Ok(default),
            Some(text) => text.parse::<usize>().map_err(|_| {
                ApiError::new(
                    &request_id,
                    StatusCode::BAD_REQUEST,
                    "INVALID_REQUEST",
                    format!("`{key}` must be a whole number, not {text:?}"),
                )
            }),
        }
    };
    let limit = number("limit", 20)?.clamp(1, MAX_PAGE);
    let offset = number("offset", 0)?;
    let (tasks, total) = service(&state, &request_id)?
        .list(limit, offset)
        .await
        .map_err(|e| to_api(&request_id, e))?;
    Ok(Json(json!({
        "tasks": tasks,
        "total": total,
        "limit": limit,
        "offset": offset,
    })))
}

/// `GET /batch/events/{id}`: every event after `Last-Event-ID` (all without it), then live
/// ones until `batch.completed`.
pub async fn events(
    State(state): State<ApiState>,
    request_id: RequestId,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let source = service(&state, &request_id)?
        .events(&id)
        .await
        .map_err(|e| to_api(&request_id, e))?;
    Ok(Sse::new(event_stream(source, after)).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("keep-alive"),
    ))
}

fn to_sse(event: &Event) -> SseEvent {
    SseEvent::default()
        .id(event.id.to_string())
        .event(event.kind.clone())
        .data(event.data.to_string())
}

enum Cursor {
    Live {
        log: Arc<EventLog>,
        notify: tokio::sync::watch::Receiver<(u64, bool)>,
        after: u64,
        pending: std::collections::VecDeque<Event>,
        done: bool,
    },
    Stored(std::vec::IntoIter<Event>),
}

fn event_stream(
    source: EventSource,
    after: u64,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let cursor = match source {
        EventSource::Live(log) => Cursor::Live {
            notify: log.subscribe(),
            log,
            after,
            pending: Default::default(),
            done: false,
        },
        EventSource::Stored(events) => Cursor::Stored(
            events
                .into_iter()
                .filter(|e| e.id > after)
                .collect::<Vec<_>>()
                .into_iter(),
        ),
    };
    futures::stream::unfold(cursor, |mut cursor| async move {
        match &mut cursor {
            Cursor::Stored(events) => {
                let event = events.next()?;
                Some((Ok(to_sse(&event)), cursor))
            }
            Cursor::Live {
                log,
                notify,
                after,
                pending,
                done,
            } => loop {
                if let Some(event) = pending.pop_front() {
                    *after = event.id;
                    if event.kind == "batch.completed" {
                        *done = true;
                    }
                    return Some((Ok(to_sse(&event)), cursor));
                }
                if *done {
                    return None;
                }
                notify.borrow_and_update();
                pending.extend(log.since(*after));
                if !pending.is_empty() {
                    continue;
                }
                if log.completed() {
                    return None;
                }
                if notify.changed().await.is_err() {
                    return None;
                }
            },
        }
    })
}
