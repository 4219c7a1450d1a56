//! Batch executor benchmarks (no processes: a stub runner answers every call).
//!
//! 1. Scheduler overhead: plans of 10, 100 and 1000 trivial tasks (the runner answers at
//!    once), independent and layered; criterion reports the time per batch, divide by the
//!    task count for µs per task.
//! 2. Makespan: tasks that take `task_ms`, independent and layered (chains across layers),
//!    at several widths, against the ideal `max(ceil(n / width), layers) × task_ms`.
//!    Printed as a table after the criterion runs.
//!
//! `cargo bench --bench batch_scheduler` (add `-- --quick` for a shorter run).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use futures::FutureExt;
use futures::future::BoxFuture;
use mcp_orch::batch::events::EventLog;
use mcp_orch::batch::executor::{
    CallOutcome, ExecOptions, ProgressFn, RunHandles, ToolRunner, execute,
};
use mcp_orch::batch::plan::Plan;
use mcp_orch::batch::state::{BatchRecord, BatchStatus};
use mcp_orch::batch::validate::{Limits, ValidatedPlan, ValidationContext, validate};
use mcp_orch::catalog::{Catalog, ServerTools};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

/// Answers at once, or after `ms` milliseconds when the arguments say so.
struct Stub;

impl ToolRunner for Stub {
    fn call(
        &self,
        _tool: &str,
        args: Map<String, Value>,
        _progress: ProgressFn,
        _cancel: CancellationToken,
        _timeout: std::time::Duration,
    ) -> BoxFuture<'static, CallOutcome> {
        let ms = args.get("ms").and_then(Value::as_u64).unwrap_or(0);
        async move {
            if ms > 0 {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            CallOutcome::Success(Value::Null)
        }
        .boxed()
    }
}

fn catalog() -> Catalog {
    let tool = serde_json::from_value(json!({"name": "work", "inputSchema": {"type": "object"}}))
        .unwrap_or_else(|e| panic!("tool: {e}"));
    Catalog::build(
        vec![ServerTools::tools_only(
            "s".into(),
            "s",
            Arc::new(vec![tool]),
        )],
        "__",
    )
}

/// `layers` layers of `width` tasks; each task depends on the task at the same position in
/// the previous layer (one layer = independent tasks).
fn plan(layers: usize, width: usize, ms: u64) -> ValidatedPlan {
    let mut tasks = Vec::with_capacity(layers * width);
    for layer in 0..layers {
        for i in 0..width {
            let depends_on: Vec<String> = if layer == 0 {
                Vec::new()
            } else {
                vec![format!("t{}_{i}", layer - 1)]
            };
            tasks.push(json!({"id": format!("t{layer}_{i}"), "tool": "s__work",
                              "args": {"ms": ms}, "depends_on": depends_on}));
        }
    }
    let plan = Plan::from_value(&json!({"tasks": tasks})).unwrap_or_else(|e| panic!("{e}"));
    let catalog = catalog();
    validate(
        plan,
        &ValidationContext {
            catalog: &catalog,
            limits: Limits {
                max_tasks: 100_000,
                max_fanout: 100,
            },
            llm_available: false,
            allow: None,
        },
    )
    .unwrap_or_else(|p| panic!("{p:?}"))
}

async fn run(plan: Arc<ValidatedPlan>, width: usize) -> Duration {
    let handles = RunHandles {
        record: Arc::new(Mutex::new(BatchRecord::new(
            "bench".into(),
            String::new(),
            BatchStatus::Running,
        ))),
        events: Arc::new(EventLog::default()),
        cancel: CancellationToken::new(),
        stop: Arc::new(OnceLock::new()),
    };
    let options = ExecOptions {
        max_parallel: width,
        deadline: None,
        ..ExecOptions::default()
    };
    let started = Instant::now();
    let status = execute(plan, Arc::new(Stub), options, handles).await;
    assert_eq!(status, BatchStatus::Succeeded);
    started.elapsed()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"))
}

fn overhead(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("scheduler_overhead");
    for n in [10usize, 100, 1000] {
        group.throughput(Throughput::Elements(n as u64));
        let independent = Arc::new(plan(1, n, 0));
        group.bench_with_input(BenchmarkId::new("independent", n), &n, |b, _| {
            b.iter(|| rt.block_on(run(independent.clone(), 10)))
        });
        let layered = Arc::new(plan(10, n / 10, 0));
        group.bench_with_input(BenchmarkId::new("layered_10", n), &n, |b, _| {
            b.iter(|| rt.block_on(run(layered.clone(), 10)))
        });
    }
    group.finish();
}

fn makespan_report() {
    let rt = runtime();
    let task_ms = 20u64;
    println!("\nmakespan vs ideal (task_ms = {task_ms}):");
    println!("| plan | tasks | width | ideal ms | makespan ms | ratio |");
    println!("|---|---|---|---|---|---|");
    for (name, layers, per_layer) in [
        ("independent", 1usize, 20usize),
        ("independent", 1, 100),
        ("layered 4x25", 4, 25),
        ("layered 10x10", 10, 10),
    ] {
        for width in [5usize, 10] {
            let plan = Arc::new(plan(layers, per_layer, task_ms));
            let ideal = ((layers * per_layer).div_ceil(width).max(layers)) as u64 * task_ms;
            // Best of 3, to keep machine noise out of a scheduling figure.
            let best = (0..3)
                .map(|_| rt.block_on(run(plan.clone(), width)))
                .min()
                .unwrap_or_default();
            let ms = best.as_secs_f64() * 1000.0;
            println!(
                "| {name} | {} | {width} | {ideal} | {ms:.1} | {:.3} |",
                layers * per_layer,
                ms / ideal as f64
            );
        }
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    overhead(&mut criterion);
    criterion.final_summary();
    // `cargo test --all-targets` runs this binary without `--bench`: criterion then runs
    // each benchmark once as a smoke test, and the timing table is skipped.
    if std::env::args().any(|arg| arg == "--bench") {
        makespan_report();
    }
}
