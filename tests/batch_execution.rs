//! Batch mode end to end with given plans (no LLM): the real mcp-orch binary in batch mode
//! against the fixture server (and server-everything for an annotated tool): bounded
//! parallelism, dependency order, references and foreach, failures skipping dependents,
//! retries only where allowed, timeouts and cancellation reaching the server, validation
//! errors, the event stream, and history across a restart.

mod batch_support;
mod common;

use std::time::{Duration, Instant};

use batch_support::{events, position, result, run_plan, start, submit, task, wait_final};
use common::{everything_entry, fixture_entry};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);

fn count(proxy: &common::Proxy, needle: &str) -> usize {
    proxy.logs().matches(needle).count()
}

/// Waits (bounded) until mcp-orch's log contains `needle` `n` times.
async fn wait_log(proxy: &common::Proxy, needle: &str, n: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if count(proxy, needle) >= n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_sleeps_at_width_five_take_about_four_rounds() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let proxy = start(
        json!({"fixture": fixture_entry("fixture")}),
        "execution:\n  max_parallel_tasks: 5",
        dir.path(),
    )
    .await;
    proxy.settled().await;
    let tasks: Vec<Value> = (0..20)
        .map(|i| json!({"id": format!("s{i}"), "tool": "fixture__sleep", "args": {"ms": 200}}))
        .collect();
    let id = run_plan(&proxy, json!({"goal": "sleep", "tasks": tasks}), json!({})).await;
    let status = wait_final(&proxy, &id, LIMIT).await;
    assert_eq!(status["status"], "succeeded", "{status}");
    assert_eq!(status["counts"]["succeeded"], 20);
    let result = result(&proxy, &id).await;

    // At most 5 calls overlapped, and 5 did: computed from each task's start and duration.
    let mut edges: Vec<(i64, i32)> = Vec::new();
    for t in result["tasks"].as_array().unwrap_or(&Vec::new()) {
        let start = millis(t["started_at"].as_str().unwrap_or(""));
        let end = start + t["duration_ms"].as_i64().unwrap_or(0);
        edges.push((start, 1));
        edges.push((end, -1));
    }
    edges.sort();
    let (mut now, mut peak) = (0, 0);
    for (_, delta) in edges {
        now += delta;
        peak = peak.max(now);
    }
    assert!((4..=5).contains(&peak), "peak overlap {peak}");

    // About 4 × 200 ms, far from 20 × 200 ms (wide margins; real figures are in the bench).
    let running = status["timings"]["running_ms"].as_u64().unwrap_or(u64::MAX);
    assert!(
        running >= 700,
        "running_ms {running}: faster than 4 rounds of 200 ms?"
    );
    assert!(
        running < 2000,
        "running_ms {running}: not ~4 rounds (20 sequential = 4000)"
    );
}

/// Milliseconds of the day from `...THH:MM:SS.mmmZ` (enough to compare within a test).
fn millis(rfc3339: &str) -> i64 {
    let time = rfc3339
        .split('T')
        .nth(1)
        .unwrap_or("")
        .trim_end_matches('Z');
    let mut parts = time.split(':');
    let h: i64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let m: i64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let s: f64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0.0);
    (h * 3600 + m * 60) * 1000 + (s * 1000.0).round() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diamond_refs_interpolation_and_foreach_produce_the_right_arguments() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let proxy = start(json!({"fixture": fixture_entry("fixture")}), "", dir.path()).await;
    proxy.settled().await;
    let plan = json!({"goal": "diamond", "tasks": [
        {"id": "a", "tool": "fixture__add", "args": {"a": 2, "b": 3}},
        {"id": "b", "tool": "fixture__echo", "args": {"text": "sum=${a.sum}"}, "depends_on": ["a"]},
        {"id": "c", "tool": "fixture__add", "args": {"a": {"$ref": "a.sum"}, "b": 10}, "depends_on": ["a"]},
        {"id": "d", "tool": "fixture__echo", "args": {"text": "${b} and ${c.sum}"}, "depends_on": ["b", "c"]},
        {"id": "list", "tool": "fixture__echo", "args": {"text": "[{\"n\": 1}, {\"n\": 2}, {\"n\": 3}]"}},
        {"id": "each", "tool": "fixture__add", "args": {"a": {"$ref": "item.n"}, "b": 100},
         "depends_on": ["list"], "foreach": {"over": "list", "max_items": 5}}
    ], "output": ["d", "each"]});
    let id = run_plan(&proxy, plan, json!({})).await;
    let status = wait_final(&proxy, &id, LIMIT).await;
    assert_eq!(status["status"], "succeeded", "{status}");
    let result = result(&proxy, &id).await;
    assert_eq!(
        result["outputs"],
        json!({"d": "sum=5 and 15", "each": [{"sum": 101.0}, {"sum": 102.0}, {"sum": 103.0}]})
    );
    // `$ref` keeps the type; interpolation makes a string.
    assert_eq!(task(&result, "c")["args"], json!({"a": 5.0, "b": 10}));
    assert_eq!(task(&result, "b")["args"], json!({"text": "sum=5"}));
    assert_eq!(task(&result, "each")["items"], 3);
    assert_eq!(
        task(&result, "each")["args"],
        json!([{"a": 1, "b": 100}, {"a": 2, "b": 100}, {"a": 3, "b": 100}])
    );

    let events = events(&proxy, &id, None).await;
    assert_eq!(events.first().map(|e| e.kind.as_str()), Some("plan.ready"));
    assert_eq!(
        events.last().map(|e| e.kind.as_str()),
        Some("batch.completed")
    );
    let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids, (1..=events.len() as u64).collect::<Vec<_>>());
    // Dependency order: b and c start after a succeeded; d after both.
    let a_done = position(&events, "task.succeeded", "a");
    assert!(position(&events, "task.started", "b") > a_done);
    assert!(position(&events, "task.started", "c") > a_done);
    let d_start = position(&events, "task.started", "d");
    assert!(d_start > position(&events, "task.succeeded", "b"));
    assert!(d_start > position(&events, "task.succeeded", "c"));
    // Resuming with Last-Event-ID replays only what came after.
    let resumed = batch_support::events(&proxy, &id, Some(3)).await;
    assert_eq!(resumed.first().map(|e| e.id), Some(4));
    assert_eq!(resumed.len(), events.len() - 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_skips_exactly_its_dependents() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let proxy = start(json!({"fixture": fixture_entry("fixture")}), "", dir.path()).await;
    proxy.settled().await;
    let plan = json!({"tasks": [
        {"id": "bad", "tool": "fixture__fail", "args": {"message": "no luck"}, "retries": 3},
        {"id": "child", "tool": "fixture__echo", "args": {"text": "${bad}"}, "depends_on": ["bad"]},
        {"id": "grandchild", "tool": "fixture__echo", "args": {"text": "${child}"}, "depends_on": ["child"]},
        {"id": "other", "tool": "fixture__sleep", "args": {"ms": 100}},
        {"id": "after", "tool": "fixture__echo", "args": {"text": "${other}"}, "depends_on": ["other"]},
        {"id": "steps", "tool": "fixture__progress", "args": {"steps": 3, "interval_ms": 10}}
    ]});
    let id = run_plan(&proxy, plan, json!({})).await;
    let status = wait_final(&proxy, &id, LIMIT).await;
    assert_eq!(status["status"], "partial_failure", "{status}");
    assert_eq!(
        status["counts"],
        json!({"pending": 0, "running": 0, "succeeded": 3, "failed": 1, "skipped": 2, "cancelled": 0})
    );
    // Progress notifications of a call become task.progress events, before it succeeds.
    let events = events(&proxy, &id, None).await;
    let progress: Vec<(Value, Value)> = events
        .iter()
        .filter(|e| e.kind == "task.progress" && e.data["task"] == "steps")
        .map(|e| (e.data["progress"].clone(), e.data["message"].clone()))
        .collect();
    assert_eq!(
        progress,
        [
            (json!(1.0), json!("step 1")),
            (json!(2.0), json!("step 2")),
            (json!(3.0), json!("step 3"))
        ]
    );
    assert!(
        position(&events, "task.progress", "steps") < position(&events, "task.succeeded", "steps")
    );
    let result = result(&proxy, &id).await;
    let bad = task(&result, "bad");
    assert_eq!(
        bad["attempts"], 1,
        "a tool's own error is never retried: {bad}"
    );
    assert!(
        bad["error"].as_str().is_some_and(|e| e.contains("no luck")),
        "{bad}"
    );
    assert_eq!(task(&result, "child")["state"], "skipped");
    assert_eq!(task(&result, "grandchild")["state"], "skipped");
    assert_eq!(task(&result, "after")["output"], "slept 100ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_only_for_annotated_tools_and_timeouts_cancel_downstream() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let proxy = start(
        json!({"fixture": fixture_entry("fixture"), "everything": everything_entry()}),
        "execution:\n  retry_backoff: 20ms",
        dir.path(),
    )
    .await;
    proxy.settled().await;
    let plan = json!({"tasks": [
        // Annotated read-only + idempotent: the timeout is retried (3 attempts).
        {"id": "annotated", "tool": "everything__trigger-long-running-operation",
         "args": {"duration": 5, "steps": 5}, "timeout_ms": 300, "retries": 2},
        // Not annotated: the timeout is not retried.
        {"id": "plain", "tool": "fixture__sleep", "args": {"ms": 10000}, "timeout_ms": 300, "retries": 2},
        // A tool error is never retried.
        {"id": "error", "tool": "fixture__fail", "retries": 2}
    ]});
    let id = run_plan(&proxy, plan, json!({})).await;
    let status = wait_final(&proxy, &id, LIMIT).await;
    assert_eq!(status["status"], "failed", "{status}");
    let result = result(&proxy, &id).await;
    let annotated = task(&result, "annotated");
    assert_eq!(annotated["attempts"], 3, "{annotated}");
    assert!(annotated["error"].as_str().is_some_and(|e| e.contains("no result within 300ms") && e.contains("after 3 attempts")), "{annotated}");
    let plain = task(&result, "plain");
    assert_eq!(plain["attempts"], 1, "{plain}");
    assert!(
        plain["error"]
            .as_str()
            .is_some_and(|e| e.contains("not retried")),
        "{plain}"
    );
    assert_eq!(task(&result, "error")["attempts"], 1);
    let events = events(&proxy, &id, None).await;
    let retrying: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "task.retrying")
        .filter_map(|e| e.data["task"].as_str())
        .collect();
    assert_eq!(retrying, ["annotated", "annotated"]);
    // The timed-out sleep was cancelled in the fixture (its stderr is logged at debug).
    assert!(
        wait_log(&proxy, "sleep cancelled", 1).await,
        "{}",
        proxy.logs()
    );

    // With retry_non_idempotent the plain tool is retried too.
    let plan = json!({"tasks": [{"id": "plain", "tool": "fixture__sleep", "args": {"ms": 10000}, "timeout_ms": 200, "retries": 1}]});
    let id = run_plan(&proxy, plan, json!({"retry_non_idempotent": true})).await;
    wait_final(&proxy, &id, LIMIT).await;
    assert_eq!(task(&result_of(&proxy, &id).await, "plain")["attempts"], 2);
    assert!(
        wait_log(&proxy, "sleep cancelled", 3).await,
        "{}",
        proxy.logs()
    );
}

async fn result_of(proxy: &common::Proxy, id: &str) -> Value {
    result(proxy, id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_calls_in_flight_downstream() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let proxy = start(json!({"fixture": fixture_entry("fixture")}), "", dir.path()).await;
    proxy.settled().await;
    let tasks: Vec<Value> = (0..3)
        .map(|i| json!({"id": format!("s{i}"), "tool": "fixture__sleep", "args": {"ms": 30000}}))
        .chain([json!({"id": "later", "tool": "fixture__echo", "args": {"text": "${s0}"}, "depends_on": ["s0"]})])
        .collect();
    let id = run_plan(&proxy, json!({"tasks": tasks}), json!({})).await;
    let deadline = Instant::now() + LIMIT;
    loop {
        let (_, status) = proxy.get(&format!("/batch/status/{id}")).await;
        if status["counts"]["running"] == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let asked = Instant::now();
    let response = proxy
        .http
        .delete(format!("{}/batch/cancel/{id}", proxy.base))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let took = asked.elapsed();
    eprintln!("cancel of 3 calls in flight answered after {took:?}");
    assert_eq!(body["status"], "cancelled", "{body}");
    assert_eq!(body["counts"]["cancelled"], 4, "{body}");
    assert!(took < Duration::from_secs(5), "cancel took {took:?}");
    // Every in-flight call was cancelled in the server itself.
    assert!(
        wait_log(&proxy, "sleep cancelled", 3).await,
        "{}",
        proxy.logs()
    );
    // Cancelling again: the batch is already over.
    let again = proxy
        .http
        .delete(format!("{}/batch/cancel/{id}", proxy.base))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.status().as_u16(), 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_plans_and_requests_are_rejected_with_every_problem() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let proxy = start(json!({"fixture": fixture_entry("fixture")}), "", dir.path()).await;
    proxy.settled().await;
    let (status, body) = submit(
        &proxy,
        json!({"plan": {"tasks": [
            {"id": "a", "tool": "fixture__nope"},
            {"id": "b", "tool": "fixture__echo", "args": {"text": 5}},
            {"id": "c", "tool": "fixture__echo", "args": {"text": "${d}"}, "depends_on": ["d"]},
            {"id": "d", "tool": "fixture__echo", "args": {"text": "${c}"}, "depends_on": ["c"]},
            {"id": "e", "tool": "fixture__echo", "args": {"text": {"$ref": "a"}}},
            {"id": "f", "tool": "fixture__add", "args": {"a": 1, "b": 2}, "depends_on": ["a"], "foreach": {"over": "a"}}
        ]}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "INVALID_PLAN");
    let problems: Vec<(String, String)> = body["error"]["details"]["problems"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|p| {
                    (
                        p["task"].as_str().unwrap_or("").to_owned(),
                        p["code"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    for expected in [
        ("a", "UNKNOWN_TOOL"),
        ("b", "INVALID_ARGUMENTS"),
        ("e", "UNDECLARED_DEPENDENCY"),
        ("f", "UNBOUNDED_FANOUT"),
    ] {
        assert!(
            problems.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} not in {problems:?}"
        );
    }
    assert!(
        problems.iter().any(|(_, code)| code == "CYCLE"),
        "{problems:?}"
    );
    assert!(body["error"]["request_id"].as_str().is_some());

    let (status, body) = submit(&proxy, json!({"plan": {"tasks": "x"}})).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (422, json!("INVALID_PLAN")),
        "{body}"
    );
    let (status, body) = submit(&proxy, json!({"request": "do things"})).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("LLM_NOT_CONFIGURED")),
        "{body}"
    );
    let (status, body) = submit(&proxy, json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("INVALID_REQUEST")),
        "{body}"
    );
    let (status, body) = submit(
        &proxy,
        json!({"plan": {"tasks": []}, "options": {"max_parallel_tasks": 1000}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = submit(&proxy, json!({"plna": {}})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = proxy.get("/batch/status/batch-nope").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (404, json!("BATCH_NOT_FOUND"))
    );

    // dry_run validates and runs nothing.
    let (status, body) = submit(
        &proxy,
        json!({"dry_run": true, "plan": {"tasks": [
            {"id": "a", "tool": "fixture__echo", "args": {"text": "x"}},
            {"id": "b", "tool": "fixture__echo", "args": {"text": "${a}"}, "depends_on": ["a"]}]}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "valid");
    assert_eq!(body["schedule"][0]["critical_path"], 2);
    let (_, history) = proxy.get("/batch/tasks").await;
    assert_eq!(history["total"], 0, "{history}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_survives_a_restart_and_running_batches_become_interrupted() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let servers = json!({"fixture": fixture_entry("fixture")});
    let proxy = start(servers.clone(), "", dir.path()).await;
    proxy.settled().await;
    let done = run_plan(
        &proxy,
        json!({"goal": "kept", "tasks": [{"id": "e", "tool": "fixture__echo", "args": {"text": "remember me"}}]}),
        json!({}),
    )
    .await;
    wait_final(&proxy, &done, LIMIT).await;
    let before = result(&proxy, &done).await;
    let running = run_plan(
        &proxy,
        json!({"goal": "long", "tasks": [{"id": "s", "tool": "fixture__sleep", "args": {"ms": 60000}}]}),
        json!({}),
    )
    .await;
    let deadline = Instant::now() + LIMIT;
    while proxy.get(&format!("/batch/status/{running}")).await.1["counts"]["running"] != 1 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let the periodic save record the running task, then die without any cleanup.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let pid = proxy.pid();
    assert!(pid > 0, "no pid");
    // SAFETY: killing our own child process.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    drop(proxy);

    let proxy = start(servers, "", dir.path()).await;
    let (status, history) = proxy.get("/batch/tasks?limit=10").await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["total"], 2, "{history}");
    assert_eq!(history["tasks"][0]["task_id"], running.as_str());
    assert_eq!(history["tasks"][0]["status"], "interrupted");
    assert_eq!(history["tasks"][1]["status"], "succeeded");
    let after = result(&proxy, &done).await;
    assert_eq!(after["outputs"], before["outputs"]);
    assert_eq!(after["outputs"]["e"], "remember me");
    let interrupted = result(&proxy, &running).await;
    assert_eq!(interrupted["status"], "interrupted");
    assert_eq!(task(&interrupted, "s")["state"], "cancelled");
    let events = events(&proxy, &running, None).await;
    assert_eq!(events.first().map(|e| e.kind.as_str()), Some("plan.ready"));
    let last = events
        .last()
        .map(|e| (e.kind.clone(), e.data["status"].clone()));
    assert_eq!(last, Some(("batch.completed".into(), json!("interrupted"))));
    let (_, page) = proxy.get("/batch/tasks?limit=1&offset=1").await;
    assert_eq!(page["tasks"][0]["task_id"], done.as_str());
    let (status, _) = proxy.get("/batch/tasks?limit=x").await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_outputs_are_stored_truncated_and_marked_but_references_see_everything() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let proxy = start(
        json!({"fixture": fixture_entry("fixture")}),
        "execution:\n  max_result_bytes: 1000",
        dir.path(),
    )
    .await;
    proxy.settled().await;
    let plan = json!({"tasks": [
        {"id": "big", "tool": "fixture__large", "args": {"bytes": 5000}},
        // Echoes the full text back if the reference carried all of it.
        {"id": "again", "tool": "fixture__echo", "args": {"text": "${big}"}, "depends_on": ["big"]}
    ]});
    let id = run_plan(&proxy, plan, json!({})).await;
    let status = wait_final(&proxy, &id, LIMIT).await;
    assert_eq!(status["status"], "succeeded", "{status}");
    let result = result(&proxy, &id).await;
    let big = &task(&result, "big")["output"];
    assert_eq!(big["truncated"], true, "{big}");
    // 5000 bytes of text, as JSON (newlines escaped, quotes).
    let original = big["original_bytes"].as_u64().unwrap_or(0);
    assert!(original > 5000, "{big}");
    assert!(
        big["preview"]
            .as_str()
            .is_some_and(|p| p.len() <= 1000 && p.starts_with("\"abcdef"))
    );
    // The dependent call received the whole text: its own output is the same 5000 bytes.
    assert_eq!(task(&result, "again")["output"]["original_bytes"], original);
}
