//! Helpers for the batch-mode tests: start mcp-orch in batch mode with a history file the
//! test owns, submit, wait for the end, read the SSE stream, and a scripted fake LLM HTTP
//! server (OpenAI-compatible and Anthropic formats) that records what it was sent.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};

use crate::common::Proxy;

/// Starts `mcp-orch --mode batch` with `servers` and `config.yaml` = `yaml` plus
/// `execution.history_db` in `history_dir`.
pub async fn start(servers: Value, yaml: &str, history_dir: &Path) -> Proxy {
    start_env(servers, yaml, history_dir, &[]).await
}

/// [`start`] with extra environment variables for mcp-orch.
pub async fn start_env(
    servers: Value,
    yaml: &str,
    history_dir: &Path,
    env: &[(&str, &str)],
) -> Proxy {
    let db = history_dir.join("history.db");
    let yaml = format!("{yaml}\n").replace(
        "execution:\n",
        &format!("execution:\n  history_db: {}\n", db.display()),
    );
    let yaml = if yaml.contains("history_db") {
        yaml
    } else {
        format!("{yaml}execution:\n  history_db: {}\n", db.display())
    };
    Proxy::start_env(
        json!({ "mcpServers": servers }),
        Some(&yaml),
        &["--mode", "batch"],
        env,
    )
    .await
}

/// POSTs a JSON body to `/batch/execute`.
pub async fn submit(proxy: &Proxy, body: Value) -> (u16, Value) {
    proxy.post("/batch/execute", body.to_string()).await
}

/// Submits a plan and returns the batch id (asserting 202).
pub async fn run_plan(proxy: &Proxy, plan: Value, options: Value) -> String {
    let (status, body) = submit(proxy, json!({"plan": plan, "options": options})).await;
    assert_eq!(status, 202, "{body}");
    body["task_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no task_id: {body}"))
        .to_owned()
}

/// Polls `/batch/status/{id}` until the batch is over (bounded by `limit`).
pub async fn wait_final(proxy: &Proxy, id: &str, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let (code, status) = proxy.get(&format!("/batch/status/{id}")).await;
        assert_eq!(code, 200, "{status}");
        let state = status["status"].as_str().unwrap_or("");
        if !matches!(state, "planning" | "running") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "batch {id} still {state}: {status}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// `/batch/result/{id}`.
pub async fn result(proxy: &Proxy, id: &str) -> Value {
    let (code, result) = proxy.get(&format!("/batch/result/{id}")).await;
    assert_eq!(code, 200, "{result}");
    result
}

/// One task of a result by id.
pub fn task<'a>(result: &'a Value, id: &str) -> &'a Value {
    result["tasks"]
        .as_array()
        .and_then(|tasks| tasks.iter().find(|t| t["id"] == id))
        .unwrap_or_else(|| panic!("no task {id} in {result}"))
}

/// An SSE event as read off the wire.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: u64,
    pub kind: String,
    pub data: Value,
}

/// Reads `/batch/events/{id}` until the server ends the stream (bounded).
pub async fn events(proxy: &Proxy, id: &str, last_event_id: Option<u64>) -> Vec<SseEvent> {
    let mut request = proxy.http.get(format!("{}/batch/events/{id}", proxy.base));
    if let Some(last) = last_event_id {
        request = request.header("last-event-id", last.to_string());
    }
    let response = tokio::time::timeout(Duration::from_secs(60), request.send())
        .await
        .unwrap_or_else(|_| panic!("no SSE response"))
        .unwrap_or_else(|e| panic!("SSE: {e}"));
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"))
    );
    let text = tokio::time::timeout(Duration::from_secs(60), response.text())
        .await
        .unwrap_or_else(|_| panic!("SSE stream did not end"))
        .unwrap_or_else(|e| panic!("SSE body: {e}"));
    parse_sse(&text)
}

/// Parses an SSE body into events (comments and keep-alives skipped).
pub fn parse_sse(text: &str) -> Vec<SseEvent> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let (mut id, mut kind, mut data) = (None, None, String::new());
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("event:") {
                kind = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            }
        }
        if let (Some(id), Some(kind)) = (id, kind) {
            out.push(SseEvent {
                id,
                kind,
                data: serde_json::from_str(&data).unwrap_or(Value::Null),
            });
        }
    }
    out
}

/// The index of the first event of `kind` for `task`.
pub fn position(events: &[SseEvent], kind: &str, task: &str) -> usize {
    events
        .iter()
        .position(|e| e.kind == kind && e.data["task"] == task)
        .unwrap_or_else(|| panic!("no {kind} for {task} in {events:?}"))
}

/// A request the fake LLM received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The path as sent (percent-encoding kept).
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Value,
    /// The body bytes exactly as sent (for signature checks).
    pub raw: Vec<u8>,
}

#[derive(Default)]
struct Script {
    answers: Mutex<VecDeque<Value>>,
    seen: Mutex<Vec<Recorded>>,
}

/// A scripted LLM server on 127.0.0.1: answers every POST (`/v1/chat/completions`,
/// `/v1/messages`, Azure and Bedrock paths) with the prepared answers, in order.
pub struct FakeLlm {
    pub base: String,
    script: Arc<Script>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Marks a scripted answer as an HTTP status other than 200 (see [`FakeLlm::status`]).
const STATUS: &str = "__fake_status";
/// Marks a scripted answer as delayed (see [`FakeLlm::delayed`]).
const DELAY_MS: &str = "__fake_delay_ms";
const BODY: &str = "__fake_body";

async fn answer(
    State(script): State<Arc<Script>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> (axum::http::StatusCode, Json<Value>) {
    script
        .seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Recorded {
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            headers,
            body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
            raw: raw.to_vec(),
        });
    let next = script
        .answers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .pop_front();
    let Some(mut answer) = next else {
        return (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "script exhausted"})),
        );
    };
    let mut status = axum::http::StatusCode::OK;
    if let Some(ms) = answer.get(DELAY_MS).and_then(Value::as_u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        answer = answer[BODY].clone();
    }
    if let Some(code) = answer.get(STATUS).and_then(Value::as_u64) {
        status = axum::http::StatusCode::from_u16(code as u16)
            .unwrap_or_else(|e| panic!("status {code}: {e}"));
        answer = answer[BODY].clone();
    }
    (status, Json(answer))
}

impl FakeLlm {
    /// Starts the server with `answers` (full response bodies, in order).
    pub async fn start(answers: Vec<Value>) -> FakeLlm {
        let script = Arc::new(Script {
            answers: Mutex::new(answers.into()),
            seen: Mutex::new(Vec::new()),
        });
        // Every POST path is answered (Azure deployments, Bedrock `/model/{id}/converse`);
        // tests assert the path the provider used.
        let app = axum::Router::new()
            .fallback(post(answer))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeLlm {
            base: format!("http://{addr}"),
            script,
            task,
        }
    }

    /// A scripted answer with HTTP `status` and `body`.
    pub fn status(status: u16, body: Value) -> Value {
        json!({ STATUS: status, BODY: body })
    }

    /// A scripted answer given only after `ms` milliseconds.
    pub fn delayed(ms: u64, answer: Value) -> Value {
        json!({ DELAY_MS: ms, BODY: answer })
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.script
            .seen
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }
}

/// An OpenAI chat-completions answer carrying `plan` as a `submit_plan` tool call.
pub fn openai_tool_call(plan: &Value) -> Value {
    json!({"id": "c1", "object": "chat.completion", "model": "test-model", "choices": [{
        "index": 0, "finish_reason": "tool_calls",
        "message": {"role": "assistant", "content": null, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "submit_plan", "arguments": plan.to_string()}}]}}]})
}

/// An OpenAI chat-completions answer with plain text.
pub fn openai_text(text: &str) -> Value {
    json!({"id": "c2", "object": "chat.completion", "choices": [{
        "index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}]})
}

/// An Anthropic Messages answer carrying `plan` as a `submit_plan` tool use.
pub fn anthropic_tool_use(plan: &Value) -> Value {
    json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
        "stop_reason": "tool_use", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "submit_plan", "input": plan}]})
}

/// A Bedrock Converse answer carrying `plan` as a `submit_plan` tool use.
pub fn bedrock_tool_use(plan: &Value) -> Value {
    json!({"output": {"message": {"role": "assistant", "content": [
        {"toolUse": {"toolUseId": "tu_1", "name": "submit_plan", "input": plan}}]}},
        "stopReason": "tool_use", "usage": {"inputTokens": 10, "outputTokens": 10, "totalTokens": 20}})
}

/// The value of header `name` of a recorded request.
pub fn header<'a>(request: &'a Recorded, name: &str) -> Option<&'a str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}
