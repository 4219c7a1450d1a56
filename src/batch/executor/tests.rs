//! Executor tests against a stub runner (no processes): ordering, bounds, priorities,
//! retries, skipping, foreach, cancellation and the deadline.

use std::sync::atomic::{AtomicUsize, Ordering};

use futures::FutureExt;
use serde_json::json;

use super::*;
use crate::batch::plan::Plan;
use crate::batch::validate::{Limits, ValidationContext, validate};
use crate::catalog::{Catalog, ServerTools};

/// What the stub saw.
#[derive(Default)]
struct Stub {
    /// (tool, args, started at, ended at) per call.
    calls: Mutex<Vec<(String, Value, Instant, Instant)>>,
    /// Calls in flight now, and the most seen at once.
    now: AtomicUsize,
    peak: AtomicUsize,
    /// Calls of `flaky` so far.
    flaky: AtomicUsize,
    /// Calls that ended because their token fired.
    cancelled: AtomicUsize,
}

struct StubRunner(Arc<Stub>);

impl ToolRunner for StubRunner {
    fn call(
        &self,
        tool: &str,
        args: Map<String, Value>,
        progress: ProgressFn,
        cancel: CancellationToken,
        _timeout: std::time::Duration,
    ) -> BoxFuture<'static, CallOutcome> {
        let stub = self.0.clone();
        let tool = tool.trim_start_matches("s__").to_owned();
        async move {
            let start = Instant::now();
            let now = stub.now.fetch_add(1, Ordering::SeqCst) + 1;
            stub.peak.fetch_max(now, Ordering::SeqCst);
            let ms = args.get("ms").and_then(Value::as_u64).unwrap_or(0);
            let fails = args.get("fail") == Some(&Value::Bool(true));
            let outcome = tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(ms)) => match tool.as_str() {
                    "fail" => CallOutcome::ToolError("boom".into()),
                    _ if fails => CallOutcome::ToolError("element failed".into()),
                    "flaky" | "getflaky" => {
                        let n = stub.flaky.fetch_add(1, Ordering::SeqCst);
                        if n < 2 { CallOutcome::Transport(format!("lost {n}")) } else { CallOutcome::Success(json!("finally")) }
                    }
                    "progress" => {
                        progress(json!({"progress": 1, "total": 2}));
                        CallOutcome::Success(json!("p"))
                    }
                    _ => CallOutcome::Success(Value::Object(args.clone())),
                },
                () = cancel.cancelled() => {
                    stub.cancelled.fetch_add(1, Ordering::SeqCst);
                    CallOutcome::Transport("cancelled".into())
                }
            };
            stub.now.fetch_sub(1, Ordering::SeqCst);
            stub.calls
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((tool, Value::Object(args), start, Instant::now()));
            outcome
        }
        .boxed()
    }
}

fn catalog() -> Catalog {
    let tools = ["ok", "fail", "flaky", "getflaky", "progress", "other"]
        .iter()
        .map(|name| {
            let mut value = json!({"name": name, "inputSchema": {"type": "object"}});
            if name.starts_with("get") {
                value["annotations"] = json!({"idempotentHint": true});
            }
            serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let other = serde_json::from_value(json!({"name": "ok", "inputSchema": {"type": "object"}}))
        .unwrap_or_else(|e| panic!("{e}"));
    Catalog::build(
        vec![
            ServerTools::tools_only("s".into(), "s", Arc::new(tools)),
            ServerTools::tools_only("t".into(), "t", Arc::new(vec![other])),
        ],
        "__",
    )
}

struct Ran {
    status: BatchStatus,
    record: BatchRecord,
    events: Vec<super::super::events::Event>,
    stub: Arc<Stub>,
}

fn handles() -> RunHandles {
    RunHandles {
        record: Arc::new(Mutex::new(BatchRecord::new(
            "b".into(),
            String::new(),
            BatchStatus::Running,
        ))),
        events: Arc::new(EventLog::default()),
        cancel: CancellationToken::new(),
        stop: Arc::new(OnceLock::new()),
    }
}

async fn run_with(plan: Value, options: ExecOptions, handles: RunHandles) -> Ran {
    let catalog = catalog();
    let plan = Plan::from_value(&plan).unwrap_or_else(|e| panic!("{e}"));
    let validated = validate(
        plan,
        &ValidationContext {
            catalog: &catalog,
            limits: Limits {
                max_tasks: 1000,
                max_fanout: 100,
            },
            llm_available: false,
            allow: None,
        },
    )
    .unwrap_or_else(|p| panic!("{p:?}"));
    let stub = Arc::new(Stub::default());
    let status = execute(
        Arc::new(validated),
        Arc::new(StubRunner(stub.clone())),
        options,
        handles.clone(),
    )
    .await;
    let record = handles
        .record
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    Ran {
        status,
        record,
        events: handles.events.all(),
        stub,
    }
}

async fn run(plan: Value, options: ExecOptions) -> Ran {
    run_with(plan, options, handles()).await
}

fn states(ran: &Ran) -> Vec<(String, TaskState)> {
    ran.record
        .tasks
        .iter()
        .map(|t| (t.id.clone(), t.state))
        .collect()
}

fn kinds(ran: &Ran) -> Vec<String> {
    ran.events
        .iter()
        .map(|e| format!("{} {}", e.kind, e.data["task"].as_str().unwrap_or("")))
        .collect()
}

#[tokio::test]
async fn width_bounds_calls_in_flight() {
    let tasks: Vec<Value> = (0..12)
        .map(|i| json!({"id": format!("t{i}"), "tool": "s__ok", "args": {"ms": 40}}))
        .collect();
    let ran = run(
        json!({"tasks": tasks}),
        ExecOptions {
            max_parallel: 3,
            ..ExecOptions::default()
        },
    )
    .await;
    assert_eq!(ran.status, BatchStatus::Succeeded);
    assert_eq!(ran.stub.peak.load(Ordering::SeqCst), 3);
    assert_eq!(ran.stub.calls.lock().map(|c| c.len()).unwrap_or(0), 12);
}

#[tokio::test]
async fn per_server_bound_leaves_room_for_other_servers() {
    let mut tasks: Vec<Value> = (0..4)
        .map(|i| json!({"id": format!("s{i}"), "tool": "s__ok", "args": {"ms": 60}}))
        .collect();
    tasks.extend(
        (0..2).map(|i| json!({"id": format!("t{i}"), "tool": "t__ok", "args": {"ms": 60}})),
    );
    let ran = run(
        json!({"tasks": tasks}),
        ExecOptions {
            max_parallel: 10,
            per_server: Some(1),
            ..ExecOptions::default()
        },
    )
    .await;
    assert_eq!(ran.status, BatchStatus::Succeeded);
    // One call per server at a time: at most 2 at once, and the s-calls never overlap.
    assert_eq!(ran.stub.peak.load(Ordering::SeqCst), 2);
    let calls = ran.stub.calls.lock().map(|c| c.clone()).unwrap_or_default();
    let mut s_calls: Vec<(Instant, Instant)> = calls
        .iter()
        .filter(|c| c.0 == "ok")
        .map(|c| (c.2, c.3))
        .collect();
    s_calls.sort();
    assert_eq!((calls.len(), s_calls.len()), (6, 4));
    for pair in s_calls.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "calls to server s overlapped: {pair:?}"
        );
    }
}

#[tokio::test]
async fn diamond_order_refs_and_longest_chain_first() {
    let ran = run(
        json!({"tasks": [
            {"id": "lone", "tool": "s__ok", "args": {"ms": 10, "v": "lone"}},
            {"id": "a", "tool": "s__ok", "args": {"ms": 10, "v": [1, 2]}},
            {"id": "b", "tool": "s__ok", "args": {"n": {"$ref": "a.v[1]"}}, "depends_on": ["a"]},
            {"id": "c", "tool": "s__ok", "args": {"s": "got ${a.v}"}, "depends_on": ["a"]},
            {"id": "d", "tool": "s__ok", "args": {"b": {"$ref": "b.n"}, "c": "${c.s}!"}, "depends_on": ["b", "c"]}
        ]}),
        ExecOptions { max_parallel: 1, ..ExecOptions::default() },
    )
    .await;
    assert_eq!(ran.status, BatchStatus::Succeeded);
    let order: Vec<String> = ran
        .stub
        .calls
        .lock()
        .map(|c| {
            c.iter()
                .map(|c| {
                    c.1.get("v")
                        .or(c.1.get("n"))
                        .or(c.1.get("s"))
                        .or(c.1.get("b"))
                        .map(|v| v.to_string())
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default();
    // Width 1: `a` (chain of 3), then `b` and `c` (chains of 2) go before `lone` (chain of 1),
    // although it is listed first; `lone` and `d` tie and keep plan order.
    assert_eq!(order, ["[1,2]", "2", "\"got [1,2]\"", "\"lone\"", "2"]);
    let d = &ran.record.tasks[4];
    assert_eq!(d.output, Some(json!({"b": 2, "c": "got [1,2]!"})));
    assert_eq!(d.args, Some(json!({"b": 2, "c": "got [1,2]!"})));
}

#[tokio::test]
async fn a_task_starts_when_its_own_dependencies_end_not_in_waves() {
    let ran = run(
        json!({"tasks": [
            {"id": "quick", "tool": "s__ok", "args": {"ms": 20, "v": "quick"}},
            {"id": "slow", "tool": "s__ok", "args": {"ms": 400, "v": "slow"}},
            {"id": "next", "tool": "s__ok", "args": {"v": "next", "after": "${quick.v}"}, "depends_on": ["quick"]}
        ]}),
        ExecOptions::default(),
    )
    .await;
    assert_eq!(ran.status, BatchStatus::Succeeded);
    let calls = ran.stub.calls.lock().map(|c| c.clone()).unwrap_or_default();
    let call = |v: &str| {
        calls
            .iter()
            .find(|c| c.1["v"] == v)
            .map(|c| (c.2, c.3))
            .unwrap_or_else(|| panic!("no call {v}"))
    };
    // `next` ran while `slow` (same first "wave" as `quick`) was still running.
    let (next_start, next_end) = call("next");
    let (_, slow_end) = call("slow");
    assert!(next_start < slow_end && next_end < slow_end);
}

#[tokio::test]
async fn a_failure_skips_exactly_its_dependents() {
    let ran = run(
        json!({"tasks": [
            {"id": "bad", "tool": "s__fail", "retries": 3},
            {"id": "child", "tool": "s__ok", "args": {"x": "${bad}"}, "depends_on": ["bad"]},
            {"id": "grandchild", "tool": "s__ok", "depends_on": ["child"]},
            {"id": "other", "tool": "s__ok", "args": {"ms": 30}},
            {"id": "after_other", "tool": "s__ok", "depends_on": ["other"]}
        ]}),
        ExecOptions::default(),
    )
    .await;
    assert_eq!(ran.status, BatchStatus::PartialFailure);
    assert_eq!(
        states(&ran),
        [
            ("bad".into(), TaskState::Failed),
            ("child".into(), TaskState::Skipped),
            ("grandchild".into(), TaskState::Skipped),
            ("other".into(), TaskState::Succeeded),
            ("after_other".into(), TaskState::Succeeded),
        ]
    );
    // A tool's own error is not retried.
    assert_eq!(ran.record.tasks[0].attempts, 1);
    assert!(
        ran.record.tasks[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("boom"))
    );
    assert_eq!(
        ran.record.tasks[2].error.as_deref(),
        Some("skipped: dependency `child` did not succeed")
    );
    assert_eq!(
        kinds(&ran).last().map(String::as_str),
        Some("batch.completed ")
    );
}

#[tokio::test]
async fn transport_errors_are_retried_only_for_safe_tools() {
    let options = ExecOptions {
        retry_backoff: Duration::from_millis(5),
        ..ExecOptions::default()
    };
    let ran = run(
        json!({"tasks": [{"id": "g", "tool": "s__getflaky", "retries": 2}]}),
        options.clone(),
    )
    .await;
    assert_eq!(ran.status, BatchStatus::Succeeded);
    assert_eq!(ran.record.tasks[0].attempts, 3);
    assert_eq!(
        kinds(&ran)
            .iter()
            .filter(|k| k.starts_with("task.retrying"))
            .count(),
        2
    );

    let ran = run(
        json!({"tasks": [{"id": "f", "tool": "s__flaky", "retries": 2}]}),
        options.clone(),
    )
    .await;
    assert_eq!(ran.status, BatchStatus::Failed);
    assert_eq!(ran.record.tasks[0].attempts, 1);
    assert!(
        ran.record.tasks[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("not retried"))
    );

    let ran = run(
        json!({"tasks": [{"id": "f", "tool": "s__flaky", "retries": 1}]}),
        ExecOptions {
            retry_unsafe: true,
            ..options
        },
    )
    .await;
    assert_eq!(ran.status, BatchStatus::Failed);
    assert_eq!(ran.record.tasks[0].attempts, 2);
    assert!(
        ran.record.tasks[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("after 2 attempts"))
    );
}

#[tokio::test]
async fn timeouts_cancel_the_call() {
    let ran = run(
        json!({"tasks": [{"id": "slow", "tool": "s__ok", "args": {"ms": 5000}, "timeout_ms": 50}]}),
        ExecOptions::default(),
    )
    .await;
    assert_eq!(ran.status, BatchStatus::Failed);
    assert_eq!(ran.stub.cancelled.load(Ordering::SeqCst), 1);
    assert!(
        ran.record.tasks[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("no result within 50ms"))
    );
}

#[tokio::test]
async fn foreach_fans_out_in_input_order_within_its_bound() {
    let ran = run(
        json!({"tasks": [
            {"id": "list", "tool": "s__ok", "args": {"items": [{"ms": 30, "k": "a"}, {"ms": 1, "k": "b"}, {"ms": 15, "k": "c"}]}},
            {"id": "each", "tool": "s__ok", "args": {"ms": {"$ref": "item.ms"}, "label": "${item.k}-${list.items[0].k}"},
             "depends_on": ["list"], "foreach": {"over": "list.items", "max_items": 3}},
            {"id": "too_many", "tool": "s__ok", "depends_on": ["list"], "foreach": {"over": "list.items", "max_items": 2}},
            {"id": "empty", "tool": "s__ok", "depends_on": ["list"], "foreach": {"over": "list.none", "max_items": 2}}
        ], "output": ["each"]}),
        ExecOptions::default(),
    )
    .await;
    let each = &ran.record.tasks[1];
    assert_eq!(each.state, TaskState::Succeeded);
    assert_eq!(each.items, Some(3));
    let labels: Vec<Value> = each
        .output
        .as_ref()
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|o| o["label"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(labels, [json!("a-a"), json!("b-a"), json!("c-a")]);
    assert!(
        ran.record.tasks[2]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("3 elements, more than max_items 2"))
    );
    assert!(
        ran.record.tasks[3]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("no key `none`"))
    );
    assert_eq!(ran.status, BatchStatus::PartialFailure);
}

#[tokio::test]
async fn a_failed_foreach_element_cancels_its_siblings_in_flight() {
    let started = Instant::now();
    let ran = run(
        json!({"tasks": [
            {"id": "list", "tool": "s__ok", "args": {"items": [
                {"ms": 5000, "fail": false}, {"ms": 20, "fail": true}, {"ms": 5000, "fail": false}]}},
            {"id": "each", "tool": "s__ok", "args": {"ms": {"$ref": "item.ms"}, "fail": {"$ref": "item.fail"}},
             "depends_on": ["list"], "foreach": {"over": "list.items", "max_items": 3}},
            {"id": "next", "tool": "s__ok", "depends_on": ["each"]}
        ]}),
        ExecOptions::default(),
    )
    .await;
    // The two slow elements were cancelled as soon as element 1 failed, not awaited.
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(ran.stub.cancelled.load(Ordering::SeqCst), 2);
    assert_eq!(ran.status, BatchStatus::PartialFailure);
    assert_eq!(
        states(&ran),
        [
            ("list".into(), TaskState::Succeeded),
            ("each".into(), TaskState::Failed),
            ("next".into(), TaskState::Skipped),
        ]
    );
    assert!(
        ran.record.tasks[1]
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("element 1: the tool reported an error")),
        "{:?}",
        ran.record.tasks[1].error
    );
    // One task.failed for the task, not one per element.
    assert_eq!(
        kinds(&ran)
            .iter()
            .filter(|k| *k == "task.failed each")
            .count(),
        1
    );
}

#[tokio::test]
async fn progress_becomes_events() {
    let ran = run(
        json!({"tasks": [{"id": "p", "tool": "s__progress"}]}),
        ExecOptions::default(),
    )
    .await;
    let progress: Vec<&super::super::events::Event> = ran
        .events
        .iter()
        .filter(|e| e.kind == "task.progress")
        .collect();
    assert_eq!(progress.len(), 1);
    assert_eq!(
        progress[0].data,
        json!({"task": "p", "progress": 1, "total": 2})
    );
    let order: Vec<String> = kinds(&ran);
    assert_eq!(
        order,
        [
            "task.started p",
            "task.progress p",
            "task.succeeded p",
            "batch.completed "
        ]
    );
}

#[tokio::test]
async fn cancel_stops_calls_in_flight_at_once() {
    let handles = handles();
    let cancel = handles.cancel.clone();
    let stop = handles.stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = stop.set(StopReason::Cancelled);
        cancel.cancel();
    });
    let started = Instant::now();
    let tasks: Vec<Value> = (0..6)
        .map(|i| json!({"id": format!("t{i}"), "tool": "s__ok", "args": {"ms": 10_000}}))
        .collect();
    let ran = run_with(
        json!({"tasks": tasks}),
        ExecOptions {
            max_parallel: 3,
            ..ExecOptions::default()
        },
        handles,
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(ran.status, BatchStatus::Cancelled);
    assert_eq!(ran.stub.cancelled.load(Ordering::SeqCst), 3);
    assert!(
        ran.record
            .tasks
            .iter()
            .all(|t| t.state == TaskState::Cancelled)
    );
}

#[tokio::test]
async fn the_deadline_ends_the_batch() {
    let ran = run(
        json!({"tasks": [
            {"id": "quick", "tool": "s__ok", "args": {"ms": 1}},
            {"id": "slow", "tool": "s__ok", "args": {"ms": 10_000}},
            {"id": "after", "tool": "s__ok", "depends_on": ["slow"]}
        ]}),
        ExecOptions {
            deadline: Some(Duration::from_millis(100)),
            ..ExecOptions::default()
        },
    )
    .await;
    assert_eq!(ran.status, BatchStatus::PartialFailure);
    assert_eq!(
        states(&ran),
        [
            ("quick".into(), TaskState::Succeeded),
            ("slow".into(), TaskState::Failed),
            ("after".into(), TaskState::Skipped),
        ]
    );
    assert_eq!(
        ran.record.error.as_ref().map(|e| e["code"].clone()),
        Some(json!("DEADLINE_EXCEEDED"))
    );
}

#[test]
fn backoff_doubles_with_jitter_and_a_cap() {
    let base = Duration::from_millis(100);
    for attempt in 1..=4u32 {
        let full = base * 2u32.pow(attempt - 1);
        let d = backoff(base, attempt);
        assert!(d >= full / 2 && d <= full, "{attempt}: {d:?}");
    }
    assert!(backoff(base, 40) <= MAX_BACKOFF);
}
