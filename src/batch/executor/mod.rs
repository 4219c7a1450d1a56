//! The executor: runs a validated plan, event-driven (a task starts the moment its
//! dependencies have succeeded, never in waves), within a global bound on calls in flight
//! and an optional bound per server; among ready calls the one with the longest remaining
//! chain of dependents goes first.
//!
//! Each attempt has a timeout; on timeout, cancel or the batch deadline the call's
//! cancellation token fires, which the router turns into `notifications/cancelled`
//! downstream. Transport failures and timeouts are retried (exponential backoff with
//! jitter) only for tools annotated read-only or idempotent unless told otherwise; a tool's
//! own error result is never retried. A failed task skips everything that depends on it;
//! other branches go on.
//!
//! The executor calls tools only through a [`ToolRunner`] (the router in production, a
//! stub in benchmarks), writes the [`BatchRecord`] and the [`EventLog`], and never touches
//! the store or HTTP. This file owns the loop (scheduling, bounds, attempts, stopping);
//! [`ready`] resolves a task's arguments when it becomes ready, [`outcomes`] handles what
//! a finished call means for its task, its dependents and the batch.

mod outcomes;
mod ready;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::events::EventLog;
use super::state::{BatchRecord, BatchStatus, TaskRecord, TaskState, bound, now_ms};
use super::validate::ValidatedPlan;

/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Largest argument preview put in a `task.started` event.
const EVENT_ARGS_BYTES: usize = 4096;

/// How a plan runs.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Most calls in flight at once (`execution.max_parallel_tasks`).
    pub max_parallel: usize,
    /// Most calls in flight per server, if bounded (`execution.max_parallel_per_server`).
    pub per_server: Option<usize>,
    /// Per-attempt timeout when the task sets none (`execution.task_timeout`).
    pub task_timeout: Duration,
    /// Retries when the task sets none (`execution.retry_count`).
    pub retry_count: u32,
    /// First retry delay; doubled per attempt, with jitter (`execution.retry_backoff`).
    pub retry_backoff: Duration,
    /// Retry tools that are not annotated read-only or idempotent too.
    pub retry_unsafe: bool,
    /// The whole batch must finish within this (`execution.batch_timeout`).
    pub deadline: Option<Duration>,
    /// Largest output or argument JSON kept in the record (`execution.max_result_bytes`).
    pub result_max_bytes: usize,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            max_parallel: 10,
            per_server: None,
            task_timeout: Duration::from_secs(300),
            retry_count: 3,
            retry_backoff: Duration::from_millis(500),
            retry_unsafe: false,
            deadline: None,
            result_max_bytes: 64 * 1024,
        }
    }
}

/// What one call produced, classified for retries.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutcome {
    /// The tool's output (see `runner.rs` for how a tool result becomes one).
    Success(Value),
    /// The tool reported an error (`isError`); never retried.
    ToolError(String),
    /// The call did not complete (timeout, connection lost, server not running); retried
    /// when allowed.
    Transport(String),
    /// Any other failure (protocol error, JSON-RPC error, unknown tool); never retried.
    Failed(String),
}

/// Receives progress of one call as a JSON object (`progress`, `total`, `message`).
pub type ProgressFn = Arc<dyn Fn(Value) + Send + Sync>;

/// Makes the calls. Implemented over the router for real batches.
pub trait ToolRunner: Send + Sync {
    /// Calls `tool` with `args`; must stop promptly (and cancel downstream) when `cancel`
    /// fires. `timeout` is the attempt's limit (the executor enforces it too; a runner
    /// passes it on so that no shorter default of its own cuts the attempt first).
    fn call(
        &self,
        tool: &str,
        args: Map<String, Value>,
        progress: ProgressFn,
        cancel: CancellationToken,
        timeout: Duration,
    ) -> BoxFuture<'static, CallOutcome>;
}

/// Why a batch stopped before its tasks finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `DELETE /batch/cancel/{id}`.
    Cancelled,
    /// mcp-orch is shutting down.
    Shutdown,
}

/// The shared handles of one running batch.
#[derive(Clone)]
pub struct RunHandles {
    /// The record status/result endpoints read.
    pub record: Arc<Mutex<BatchRecord>>,
    /// The event stream.
    pub events: Arc<EventLog>,
    /// Fired to stop the batch; `stop` says why.
    pub cancel: CancellationToken,
    /// Set before `cancel` fires.
    pub stop: Arc<OnceLock<StopReason>>,
}

/// A call identified by task index and element index (0 for tasks without `foreach`).
type Unit = (usize, usize);

enum Message {
    Done { unit: Unit, outcome: CallOutcome },
    RetryDue { unit: Unit },
}

struct TaskExec {
    /// Dependencies not yet succeeded.
    waiting: usize,
    state: TaskState,
    /// Resolved arguments, one per unit.
    args: Vec<Map<String, Value>>,
    /// Outputs of the units so far (one for a plain task, one per element for foreach).
    unit_outputs: Vec<Option<Value>>,
    /// Units not yet succeeded.
    remaining: usize,
    /// Attempts per unit.
    attempts: Vec<u32>,
    is_foreach: bool,
    /// Parent of this task's attempt tokens (a child of the batch's): fired when the task
    /// fails, so its other `foreach` calls in flight stop too.
    cancel: CancellationToken,
}

/// Runs `plan` to the end (or until stopped) and returns the final batch status.
pub async fn execute(
    plan: Arc<ValidatedPlan>,
    runner: Arc<dyn ToolRunner>,
    options: ExecOptions,
    handles: RunHandles,
) -> BatchStatus {
    let mut exec = Exec::new(plan, runner, options, handles);
    exec.run().await
}

struct Exec {
    plan: Arc<ValidatedPlan>,
    runner: Arc<dyn ToolRunner>,
    options: ExecOptions,
    handles: RunHandles,
    index: HashMap<String, usize>,
    tasks: Vec<TaskExec>,
    /// Full outputs (unbounded) for references.
    outputs: Vec<Option<Value>>,
    ready: BinaryHeap<(usize, Reverse<usize>, Reverse<usize>)>,
    running: usize,
    per_server: HashMap<Arc<str>, usize>,
    in_flight: JoinSet<Message>,
    /// Parent of every attempt's token: fired on cancel, shutdown and deadline.
    calls: CancellationToken,
    progress_tx: mpsc::UnboundedSender<(Unit, Value)>,
    progress_rx: mpsc::UnboundedReceiver<(Unit, Value)>,
    stopping: Option<Stopping>,
    started: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopping {
    Stop(StopReason),
    Deadline,
}

impl Exec {
    fn new(
        plan: Arc<ValidatedPlan>,
        runner: Arc<dyn ToolRunner>,
        options: ExecOptions,
        handles: RunHandles,
    ) -> Exec {
        let n = plan.plan.tasks.len();
        let index = plan
            .plan
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.clone(), i))
            .collect();
        let calls = handles.cancel.child_token();
        let tasks = plan
            .nodes
            .iter()
            .zip(&plan.plan.tasks)
            .map(|(node, spec)| TaskExec {
                waiting: node.deps.len(),
                state: TaskState::Pending,
                args: Vec::new(),
                unit_outputs: Vec::new(),
                remaining: 0,
                attempts: Vec::new(),
                is_foreach: spec.foreach.is_some(),
                cancel: calls.child_token(),
            })
            .collect();
        let (progress_tx, progress_rx) = mpsc::unbounded_channel();
        Exec {
            plan,
            runner,
            options,
            handles,
            index,
            tasks,
            outputs: vec![None; n],
            ready: BinaryHeap::new(),
            running: 0,
            per_server: HashMap::new(),
            in_flight: JoinSet::new(),
            calls,
            progress_tx,
            progress_rx,
            stopping: None,
            started: Instant::now(),
        }
    }

    fn record(&self) -> std::sync::MutexGuard<'_, BatchRecord> {
        self.handles
            .record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn emit(&self, kind: &str, data: Value) {
        self.handles.events.push(kind, data);
    }

    fn id(&self, task: usize) -> &str {
        &self.plan.plan.tasks[task].id
    }

    async fn run(&mut self) -> BatchStatus {
        {
            let plan = &self.plan.plan;
            let mut record = self.record();
            record.status = BatchStatus::Running;
            record.goal = plan.goal.clone();
            record.started_at_ms = Some(now_ms());
            record.output_ids = plan.output_ids();
            record.plan = serde_json::to_value(plan).ok();
            record.tasks = plan
                .tasks
                .iter()
                .map(|t| TaskRecord {
                    id: t.id.clone(),
                    tool: t.tool.clone(),
                    state: TaskState::Pending,
                    attempts: 0,
                    started_at_ms: None,
                    finished_at_ms: None,
                    args: None,
                    output: None,
                    error: None,
                    items: None,
                })
                .collect();
        }
        for task in 0..self.tasks.len() {
            if self.tasks[task].waiting == 0 {
                self.make_ready(task);
            }
        }
        let deadline = self
            .options
            .deadline
            .map(|d| tokio::time::Instant::now() + d);
        let cancel = self.handles.cancel.clone();
        loop {
            self.dispatch();
            if self.in_flight.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                _ = cancel.cancelled(), if self.stopping.is_none() => {
                    let reason = self.handles.stop.get().copied().unwrap_or(StopReason::Cancelled);
                    self.stopping = Some(Stopping::Stop(reason));
                    self.calls.cancel();
                }
                _ = sleep_until_opt(deadline), if self.stopping.is_none() && deadline.is_some() => {
                    self.stopping = Some(Stopping::Deadline);
                    self.calls.cancel();
                }
                Some(joined) = self.in_flight.join_next() => {
                    // Progress sent before the call ended comes first.
                    while let Ok((unit, progress)) = self.progress_rx.try_recv() {
                        self.progress(unit, progress);
                    }
                    match joined {
                        Ok(Message::Done { unit, outcome }) => self.finished(unit, outcome),
                        Ok(Message::RetryDue { unit }) => self.retry_due(unit),
                        Err(error) => tracing::error!(%error, "batch call task failed"),
                    }
                }
                Some((unit, progress)) = self.progress_rx.recv() => self.progress(unit, progress),
            }
        }
        self.finish()
    }

    /// Starts queued calls while slots are free.
    fn dispatch(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        let mut deferred = Vec::new();
        while self.running < self.options.max_parallel {
            let Some(entry) = self.ready.pop() else { break };
            let (_, Reverse(task), Reverse(unit)) = entry;
            if self.tasks[task].state.is_final() {
                continue;
            }
            let server = self.plan.nodes[task].server.clone();
            if let (Some(limit), Some(server)) = (self.options.per_server, &server)
                && self.per_server.get(server).copied().unwrap_or(0) >= limit
            {
                deferred.push(entry);
                continue;
            }
            self.start(task, unit, server);
        }
        self.ready.extend(deferred);
    }

    fn start(&mut self, task: usize, unit: usize, server: Option<Arc<str>>) {
        self.running += 1;
        if let Some(server) = server {
            *self.per_server.entry(server).or_insert(0) += 1;
        }
        let plan = self.plan.clone();
        let spec = &plan.plan.tasks[task];
        let exec = &mut self.tasks[task];
        exec.attempts[unit] += 1;
        let attempt = exec.attempts[unit];
        let args = exec.args[unit].clone();
        let first_call = exec.state == TaskState::Pending;
        exec.state = TaskState::Running;
        {
            let mut record = self.record();
            let entry = &mut record.tasks[task];
            entry.state = TaskState::Running;
            entry.attempts += 1;
            if first_call {
                entry.started_at_ms = Some(now_ms());
            }
        }
        let mut data = json!({
            "task": spec.id,
            "tool": spec.tool,
            "attempt": attempt,
            "args": bound(Value::Object(args.clone()), EVENT_ARGS_BYTES),
        });
        if self.tasks[task].is_foreach
            && let Some(map) = data.as_object_mut()
        {
            map.insert("item".into(), json!(unit));
        }
        self.emit("task.started", data);

        let timeout = spec
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(self.options.task_timeout);
        let token = self.tasks[task].cancel.child_token();
        let tx = self.progress_tx.clone();
        let progress: ProgressFn = Arc::new(move |value| {
            let _ = tx.send(((task, unit), value));
        });
        let call = self
            .runner
            .call(&spec.tool, args, progress, token.clone(), timeout);
        self.in_flight.spawn(async move {
            let mut call = call;
            let outcome = tokio::select! {
                outcome = &mut call => outcome,
                () = tokio::time::sleep(timeout) => {
                    token.cancel();
                    let _ = call.await;
                    CallOutcome::Transport(format!(
                        "no result within {} (the call was cancelled)",
                        crate::downstream::humanize(timeout)
                    ))
                }
            };
            Message::Done {
                unit: (task, unit),
                outcome,
            }
        });
    }

    fn release(&mut self, task: usize) {
        self.running = self.running.saturating_sub(1);
        if let Some(server) = &self.plan.nodes[task].server
            && let Some(count) = self.per_server.get_mut(server)
        {
            *count = count.saturating_sub(1);
        }
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The wait before attempt `attempts + 1`: `base × 2^(attempts-1)`, capped, with equal
/// jitter (between half and all of it).
pub fn backoff(base: Duration, attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(16);
    let full = base.saturating_mul(1u32 << exponent).min(MAX_BACKOFF);
    let half = full / 2;
    half + half.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests;
