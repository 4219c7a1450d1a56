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
//! the store or HTTP.

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
use super::plan::FOREACH_ITEM;
use super::refs::{self, RefPath};
use super::schema;
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
    /// fires.
    fn call(
        &self,
        tool: &str,
        args: Map<String, Value>,
        progress: ProgressFn,
        cancel: CancellationToken,
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
            })
            .collect();
        let (progress_tx, progress_rx) = mpsc::unbounded_channel();
        let calls = handles.cancel.child_token();
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

    /// Resolves a task whose dependencies all succeeded and queues its calls.
    fn make_ready(&mut self, task: usize) {
        let plan = self.plan.clone();
        let spec = &plan.plan.tasks[task];
        let scope_outputs = &self.outputs;
        let index = &self.index;
        let lookup = |root: &str| index.get(root).and_then(|&i| scope_outputs[i].clone());
        let resolved: Result<Vec<Map<String, Value>>, String> = match &spec.foreach {
            None => refs::resolve(&spec.args, &lookup).map(|args| vec![args]),
            Some(foreach) => (|| {
                let path = RefPath::parse(&foreach.over)?;
                let root = lookup(&path.root)
                    .ok_or_else(|| format!("foreach.over: no output for `{}`", path.root))?;
                let items = match path.lookup(&root)? {
                    Value::Array(items) => items.clone(),
                    other => {
                        return Err(format!(
                            "foreach.over `{}` is {}, not an array",
                            foreach.over,
                            refs::kind(other)
                        ));
                    }
                };
                let max = foreach.max_items.unwrap_or(0);
                if items.len() > max {
                    return Err(format!(
                        "foreach.over `{}` has {} elements, more than max_items {max}",
                        foreach.over,
                        items.len()
                    ));
                }
                items
                    .into_iter()
                    .map(|item| {
                        let scope = |root: &str| {
                            if root == FOREACH_ITEM {
                                Some(item.clone())
                            } else {
                                lookup(root)
                            }
                        };
                        refs::resolve(&spec.args, &scope)
                    })
                    .collect()
            })(),
        };
        let resolved = resolved.and_then(|all| {
            if let Some(schema) = &plan.nodes[task].input_schema {
                for args in &all {
                    let problems = schema::check(schema, args, false);
                    if !problems.is_empty() {
                        return Err(format!(
                            "resolved arguments do not match the input schema of `{}`: {}",
                            spec.tool,
                            problems.join("; ")
                        ));
                    }
                }
            }
            Ok(all)
        });
        let all = match resolved {
            Ok(all) => all,
            Err(error) => return self.task_failed(task, error),
        };
        let shown = if spec.foreach.is_some() {
            Value::Array(all.iter().cloned().map(Value::Object).collect())
        } else {
            all.first()
                .cloned()
                .map(Value::Object)
                .unwrap_or(Value::Null)
        };
        let max = self.options.result_max_bytes;
        {
            let mut record = self.record();
            let entry = &mut record.tasks[task];
            entry.args = Some(bound(shown, max));
            if spec.foreach.is_some() {
                entry.items = Some(all.len());
            }
        }
        let units = all.len();
        let priority = self.plan.nodes[task].priority;
        let exec = &mut self.tasks[task];
        exec.remaining = units;
        exec.unit_outputs = vec![None; units];
        exec.attempts = vec![0; units];
        exec.args = all;
        if units == 0 {
            self.task_succeeded(task, Value::Array(Vec::new()));
            return;
        }
        for unit in 0..units {
            self.ready.push((priority, Reverse(task), Reverse(unit)));
        }
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
        let token = self.calls.child_token();
        let tx = self.progress_tx.clone();
        let progress: ProgressFn = Arc::new(move |value| {
            let _ = tx.send(((task, unit), value));
        });
        let call = self.runner.call(&spec.tool, args, progress, token.clone());
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

    fn finished(&mut self, (task, unit): Unit, outcome: CallOutcome) {
        self.release(task);
        if self.tasks[task].state.is_final() {
            return;
        }
        let error = match outcome {
            CallOutcome::Success(value) => return self.unit_succeeded(task, unit, value),
            _ if self.stopping.is_some() => {
                return self.task_stopped(task);
            }
            CallOutcome::Transport(error) => {
                let spec = &self.plan.plan.tasks[task];
                let retries = spec.retries.unwrap_or(self.options.retry_count);
                let attempts = self.tasks[task].attempts[unit];
                let allowed = self.plan.nodes[task].retry_safe || self.options.retry_unsafe;
                if allowed && attempts <= retries {
                    return self.schedule_retry(task, unit, attempts, error);
                }
                if !allowed && retries > 0 {
                    format!(
                        "{error} (not retried: the tool is not annotated read-only or idempotent)"
                    )
                } else if attempts > 1 {
                    format!("{error} (after {attempts} attempts)")
                } else {
                    error
                }
            }
            CallOutcome::ToolError(error) => format!("the tool reported an error: {error}"),
            CallOutcome::Failed(error) => error,
        };
        let error = if self.tasks[task].is_foreach {
            format!("element {unit}: {error}")
        } else {
            error
        };
        self.task_failed(task, error);
    }

    fn schedule_retry(&mut self, task: usize, unit: usize, attempts: u32, error: String) {
        let delay = backoff(self.options.retry_backoff, attempts);
        let mut data = json!({
            "task": self.id(task),
            "attempt": attempts,
            "next_attempt": attempts + 1,
            "delay_ms": delay.as_millis() as u64,
            "error": error,
        });
        if self.tasks[task].is_foreach
            && let Some(map) = data.as_object_mut()
        {
            map.insert("item".into(), json!(unit));
        }
        self.emit("task.retrying", data);
        let stop = self.calls.clone();
        self.in_flight.spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stop.cancelled() => {}
            }
            Message::RetryDue { unit: (task, unit) }
        });
    }

    fn retry_due(&mut self, (task, unit): Unit) {
        if self.tasks[task].state.is_final() {
            return;
        }
        if self.stopping.is_some() {
            return self.task_stopped(task);
        }
        let priority = self.plan.nodes[task].priority;
        self.ready.push((priority, Reverse(task), Reverse(unit)));
    }

    fn progress(&mut self, (task, unit): Unit, progress: Value) {
        let mut data = json!({ "task": self.id(task) });
        if let (Some(map), Value::Object(extra)) = (data.as_object_mut(), progress) {
            map.extend(extra);
            if self.tasks[task].is_foreach {
                map.insert("item".into(), json!(unit));
            }
        }
        self.emit("task.progress", data);
    }

    fn unit_succeeded(&mut self, task: usize, unit: usize, value: Value) {
        let exec = &mut self.tasks[task];
        exec.unit_outputs[unit] = Some(value);
        exec.remaining = exec.remaining.saturating_sub(1);
        if exec.remaining > 0 {
            return;
        }
        let output = if exec.is_foreach {
            Value::Array(
                exec.unit_outputs
                    .iter_mut()
                    .map(|o| o.take().unwrap_or(Value::Null))
                    .collect(),
            )
        } else {
            exec.unit_outputs
                .first_mut()
                .and_then(Option::take)
                .unwrap_or(Value::Null)
        };
        self.task_succeeded(task, output);
    }

    fn task_succeeded(&mut self, task: usize, output: Value) {
        self.tasks[task].state = TaskState::Succeeded;
        let bounded = bound(output.clone(), self.options.result_max_bytes);
        self.outputs[task] = Some(output);
        let duration_ms = {
            let mut record = self.record();
            let entry = &mut record.tasks[task];
            let now = now_ms();
            entry.state = TaskState::Succeeded;
            entry.finished_at_ms = Some(now);
            entry.output = Some(bounded.clone());
            now.saturating_sub(entry.started_at_ms.unwrap_or(now))
        };
        self.emit(
            "task.succeeded",
            json!({
                "task": self.id(task),
                "duration_ms": duration_ms,
                "attempts": self.tasks[task].attempts.iter().sum::<u32>(),
                "output": bounded,
            }),
        );
        for dependent in self.plan.nodes[task].dependents.clone() {
            let exec = &mut self.tasks[dependent];
            exec.waiting = exec.waiting.saturating_sub(1);
            if exec.waiting == 0 && exec.state == TaskState::Pending {
                self.make_ready(dependent);
            }
        }
    }

    fn task_failed(&mut self, task: usize, error: String) {
        self.tasks[task].state = TaskState::Failed;
        {
            let mut record = self.record();
            let entry = &mut record.tasks[task];
            entry.state = TaskState::Failed;
            entry.finished_at_ms = Some(now_ms());
            entry.error = Some(error.clone());
        }
        self.emit(
            "task.failed",
            json!({
                "task": self.id(task),
                "error": error,
                "attempts": self.tasks[task].attempts.iter().sum::<u32>(),
            }),
        );
        // Skip everything downstream of it.
        let mut stack = self.plan.nodes[task].dependents.clone();
        while let Some(next) = stack.pop() {
            if self.tasks[next].state != TaskState::Pending {
                continue;
            }
            let reason = format!(
                "skipped: dependency `{}` did not succeed",
                self.plan.plan.tasks[next]
                    .depends_on
                    .iter()
                    .find(|d| {
                        self.index.get(d.as_str()).is_some_and(|&i| {
                            self.tasks[i].state.is_final()
                                && self.tasks[i].state != TaskState::Succeeded
                        })
                    })
                    .cloned()
                    .unwrap_or_else(|| self.id(task).to_owned())
            );
            self.set_final(next, TaskState::Skipped, Some(reason.clone()));
            self.emit(
                "task.skipped",
                json!({ "task": self.id(next), "reason": reason }),
            );
            stack.extend(self.plan.nodes[next].dependents.iter().copied());
        }
    }

    /// A task whose call ended because the batch is stopping.
    fn task_stopped(&mut self, task: usize) {
        match self.stopping {
            Some(Stopping::Deadline) => self.task_failed(
                task,
                "the batch deadline passed while it ran (the call was cancelled)".into(),
            ),
            _ => self.set_final(
                task,
                TaskState::Cancelled,
                Some("the batch was cancelled".into()),
            ),
        }
    }

    fn set_final(&mut self, task: usize, state: TaskState, error: Option<String>) {
        self.tasks[task].state = state;
        let mut record = self.record();
        let entry = &mut record.tasks[task];
        entry.state = state;
        entry.finished_at_ms = Some(now_ms());
        entry.error = error;
    }

    fn finish(&mut self) -> BatchStatus {
        let (leftover, reason) = match self.stopping {
            Some(Stopping::Stop(StopReason::Cancelled)) => {
                (TaskState::Cancelled, "the batch was cancelled")
            }
            Some(Stopping::Stop(StopReason::Shutdown)) => {
                (TaskState::Cancelled, "mcp-orch stopped")
            }
            Some(Stopping::Deadline) => (TaskState::Skipped, "the batch deadline passed first"),
            None => (TaskState::Skipped, "never became ready"),
        };
        for task in 0..self.tasks.len() {
            if !self.tasks[task].state.is_final() {
                self.set_final(task, leftover, Some(reason.into()));
                if leftover == TaskState::Skipped {
                    self.emit(
                        "task.skipped",
                        json!({ "task": self.id(task), "reason": reason }),
                    );
                }
            }
        }
        let succeeded = self
            .tasks
            .iter()
            .filter(|t| t.state == TaskState::Succeeded)
            .count();
        let status = match self.stopping {
            Some(Stopping::Stop(StopReason::Cancelled)) => BatchStatus::Cancelled,
            Some(Stopping::Stop(StopReason::Shutdown)) => BatchStatus::Interrupted,
            _ if succeeded == self.tasks.len() => BatchStatus::Succeeded,
            _ if succeeded == 0 => BatchStatus::Failed,
            _ => BatchStatus::PartialFailure,
        };
        let counts = {
            let mut record = self.record();
            record.status = status;
            record.finished_at_ms = Some(now_ms());
            if self.stopping == Some(Stopping::Deadline) {
                record.error = Some(json!({
                    "code": "DEADLINE_EXCEEDED",
                    "message": format!(
                        "the batch did not finish within {}",
                        crate::downstream::humanize(self.options.deadline.unwrap_or_default())
                    ),
                }));
            }
            record.counts()
        };
        self.emit(
            "batch.completed",
            json!({
                "status": status.as_str(),
                "counts": counts,
                "elapsed_ms": self.started.elapsed().as_millis() as u64,
            }),
        );
        status
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
    let jitter = random_fraction();
    half + half.mul_f64(jitter)
}

/// A random number in [0, 1) from the standard library's per-process random hasher keys.
fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
#[path = "executor_tests.rs"]
mod tests;
