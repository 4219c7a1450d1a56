//! Batch mode's live view and stopping rules end to end (real binary, fixture server): the
//! SSE stream followed while the batch runs, dropped and resumed with `Last-Event-ID`
//! without losing or repeating an event, carrying every event kind; the batch deadline
//! cancelling calls downstream; a cancel while the LLM is still planning.

mod batch_support;
mod common;

use std::time::{Duration, Instant};

use batch_support::{
    FakeLlm, SseEvent, events, openai_tool_call, parse_sse, result, run_plan, start, submit, task,
    wait_final,
};
use common::{Proxy, fixture_entry};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(60);

/// Reads `/batch/events/{id}` live until at least `n` events arrived (or the stream ended),
/// then drops the connection.
async fn first_events(proxy: &Proxy, id: &str, n: usize) -> Vec<SseEvent> {
    let mut response = proxy
        .http
        .get(format!("{}/batch/events/{id}", proxy.base))
        .send()
        .await
        .unwrap_or_else(|e| panic!("SSE: {e}"));
    assert_eq!(response.status().as_u16(), 200);
    let mut text = String::new();
    let deadline = Instant::now() + LIMIT;
    loop {
        // Only whole events (a blank line ends one).
        let complete = text.rfind("\n\n").map(|end| &text[..end + 2]).unwrap_or("");
        let events = parse_sse(complete);
        if events.len() >= n {
            return events;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, response.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Ok(None)) => return parse_sse(&text),
            Ok(Err(e)) => panic!("SSE chunk: {e}"),
            Err(_) => panic!("no {n} events within {LIMIT:?}: {text}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_stream_resumes_with_last_event_id_and_carries_every_kind() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let proxy = start(
        json!({"fixture": fixture_entry("fixture")}),
        "execution:\n  retry_backoff: 20ms",
        dir.path(),
    )
    .await;
    proxy.settled().await;
    let plan = json!({"tasks": [
        {"id": "steps", "tool": "fixture__progress", "args": {"steps": 3, "interval_ms": 50}},
        {"id": "flaky", "tool": "fixture__sleep", "args": {"ms": 5000}, "timeout_ms": 150, "retries": 1},
        {"id": "child", "tool": "fixture__echo", "args": {"text": "${flaky}"}, "depends_on": ["flaky"]},
        {"id": "slow", "tool": "fixture__sleep", "args": {"ms": 1500}}
    ]});
    let id = run_plan(&proxy, plan, json!({"retry_non_idempotent": true})).await;

    // Follow the stream while the batch runs, then drop the connection.
    let first = first_events(&proxy, &id, 3).await;
    let (_, status) = proxy.get(&format!("/batch/status/{id}")).await;
    assert_eq!(status["status"], "running", "{status}");
    let last_seen = first.last().map(|e| e.id).unwrap_or(0);
    // Reconnect where it left off; the rest arrives live, up to `batch.completed`.
    let rest = events(&proxy, &id, Some(last_seen)).await;
    let mut all = first.clone();
    all.extend(rest.iter().cloned());
    let ids: Vec<u64> = all.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        (1..=all.len() as u64).collect::<Vec<_>>(),
        "lost or repeated events"
    );
    assert_eq!(all.last().map(|e| e.kind.as_str()), Some("batch.completed"));
    // The same as a replay from the start.
    let replay = events(&proxy, &id, None).await;
    let shown = |events: &[SseEvent]| -> Vec<(u64, String, String)> {
        events
            .iter()
            .map(|e| (e.id, e.kind.clone(), e.data["task"].to_string()))
            .collect()
    };
    assert_eq!(shown(&replay), shown(&all));

    for kind in [
        "plan.ready",
        "task.started",
        "task.progress",
        "task.retrying",
        "task.succeeded",
        "task.failed",
        "task.skipped",
        "batch.completed",
    ] {
        assert!(all.iter().any(|e| e.kind == kind), "no {kind}: {all:?}");
    }
    let of = |kind: &str, task: &str| {
        all.iter()
            .find(|e| e.kind == kind && e.data["task"] == task)
            .unwrap_or_else(|| panic!("no {kind} for {task}: {all:?}"))
            .data
            .clone()
    };
    assert_eq!(of("task.retrying", "flaky")["next_attempt"], 2);
    assert!(
        of("task.failed", "flaky")["error"]
            .as_str()
            .is_some_and(|e| e.contains("after 2 attempts")),
        "{all:?}"
    );
    assert_eq!(
        of("task.skipped", "child")["reason"],
        "skipped: dependency `flaky` did not succeed"
    );
    assert_eq!(of("task.progress", "steps")["total"], 3.0);
    let completed = all.last().map(|e| e.data.clone()).unwrap_or_default();
    assert_eq!(completed["status"], "partial_failure");
    assert_eq!(
        completed["counts"],
        json!({"pending": 0, "running": 0, "succeeded": 2, "failed": 1, "skipped": 1, "cancelled": 0})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_batch_deadline_cancels_calls_downstream() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let proxy = start(json!({"fixture": fixture_entry("fixture")}), "", dir.path()).await;
    proxy.settled().await;
    let plan = json!({"tasks": [
        {"id": "quick", "tool": "fixture__echo", "args": {"text": "done"}},
        {"id": "long", "tool": "fixture__sleep", "args": {"ms": 10000}},
        {"id": "after", "tool": "fixture__echo", "args": {"text": "${long}"}, "depends_on": ["long"]}
    ]});
    let id = run_plan(&proxy, plan, json!({"batch_timeout_ms": 400})).await;
    let status = wait_final(&proxy, &id, LIMIT).await;
    assert_eq!(status["status"], "partial_failure", "{status}");
    assert_eq!(status["error"]["code"], "DEADLINE_EXCEEDED", "{status}");
    assert_eq!(
        status["counts"],
        json!({"pending": 0, "running": 0, "succeeded": 1, "failed": 1, "skipped": 1, "cancelled": 0})
    );
    // It ended at the deadline, far before the 10 s call would have.
    let running = status["timings"]["running_ms"].as_u64().unwrap_or(u64::MAX) as f64;
    assert!(running / 10_000.0 < 0.5, "running_ms {running}");
    let result = result(&proxy, &id).await;
    assert!(
        task(&result, "long")["error"]
            .as_str()
            .is_some_and(|e| e.contains("deadline")),
        "{result}"
    );
    // The server itself saw the cancellation.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !proxy.logs().contains("sleep cancelled") {
        assert!(Instant::now() < deadline, "{}", proxy.logs());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_while_planning_stops_the_batch_at_once() {
    let plan = json!({"goal": "g", "tasks": [
        {"id": "t1", "tool": "fixture__echo", "args": {"text": "x"}, "depends_on": []}], "output": ["t1"]});
    let llm = FakeLlm::start(vec![FakeLlm::delayed(30_000, openai_tool_call(&plan))]).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let yaml = format!(
        "llm:\n  provider: openai\n  endpoint: {}/v1\n  model: m\n",
        llm.base
    );
    let proxy = start(
        json!({"fixture": fixture_entry("fixture")}),
        &yaml,
        dir.path(),
    )
    .await;
    proxy.settled().await;
    let (code, body) = submit(&proxy, json!({"request": "echo x"})).await;
    assert_eq!(
        (code, body["status"].clone()),
        (202, json!("planning")),
        "{body}"
    );
    let id = body["task_id"].as_str().unwrap_or_default().to_owned();
    let deadline = Instant::now() + LIMIT;
    while llm.requests().is_empty() {
        assert!(Instant::now() < deadline, "the LLM was never asked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let asked = Instant::now();
    let response = proxy
        .http
        .delete(format!("{}/batch/cancel/{id}", proxy.base))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let took = asked.elapsed();
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    assert_eq!(body["status"], "cancelled", "{body}");
    // The bound: everything stops within a second (it takes milliseconds).
    assert!(took < Duration::from_secs(1), "cancel took {took:?}");
    let events = events(&proxy, &id, None).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["batch.completed"], "{events:?}");
    assert_eq!(events[0].data["status"], "cancelled");
}
