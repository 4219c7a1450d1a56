//! The batch service the REST face calls: accepts submissions (a plan, or a request the
//! planner turns into one), runs each batch in its own task, answers status / result /
//! history / events, cancels, and persists every batch to the store (at start, about once a
//! second while it runs, and at the end). On shutdown, running batches are stopped and
//! recorded as interrupted.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{ExecutionSettings, LlmSettings};
use crate::llm::LlmProvider;
use crate::router::Router;

use super::events::{Event, EventLog};
use super::executor::{self, ExecOptions, RunHandles, StopReason, ToolRunner};
use super::plan::Plan;
use super::planner::{Planner, PlannerSettings, PlanningError};
use super::runner::RouterRunner;
use super::state::{BatchRecord, BatchStatus, now_ms};
use super::store::{Store, StoreError};
use super::validate::{
    Limits, MAX_RETRIES, Problem, ToolPermission, ValidatedPlan, ValidationContext, validate,
};

/// Finished batches kept in memory (older ones are read from the store).
const LIVE_FINISHED: usize = 256;
/// How often a running batch is saved.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Everything the service is configured with.
#[derive(Debug, Clone)]
pub struct BatchSettings {
    /// Executor defaults.
    pub exec: ExecOptions,
    /// Plan bounds.
    pub limits: Limits,
    /// `execution.history_db`.
    pub history_db: String,
    /// How the planner asks.
    pub planner: PlannerSettings,
}

impl BatchSettings {
    /// From `config.yaml`'s `execution:` and `llm:`.
    pub fn from_config(execution: &ExecutionSettings, llm: &LlmSettings) -> Self {
        BatchSettings {
            exec: ExecOptions {
                max_parallel: execution.max_parallel_tasks,
                per_server: (execution.max_parallel_per_server > 0)
                    .then_some(execution.max_parallel_per_server),
                task_timeout: execution.task_timeout,
                retry_count: execution.retry_count,
                retry_backoff: execution.retry_backoff,
                retry_unsafe: execution.retry_non_idempotent,
                deadline: Some(execution.batch_timeout),
                result_max_bytes: execution.max_result_bytes,
            },
            limits: Limits {
                max_tasks: execution.max_tasks,
                max_fanout: execution.max_fanout,
            },
            history_db: execution.history_db.clone(),
            planner: PlannerSettings {
                output: llm.plan_output,
                max_prompt_chars: llm.max_prompt_chars,
            },
        }
    }
}

/// `options` of `POST /batch/execute`: per-batch overrides, within the configured bounds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestOptions {
    pub max_parallel_tasks: Option<usize>,
    pub max_parallel_per_server: Option<usize>,
    pub task_timeout_ms: Option<u64>,
    pub batch_timeout_ms: Option<u64>,
    pub retry_count: Option<u32>,
    pub retry_non_idempotent: Option<bool>,
}

/// What `POST /batch/execute` asks for.
#[derive(Default)]
pub struct Submission {
    /// The natural-language request (required without `plan`).
    pub request: String,
    /// A ready plan; no LLM is used.
    pub plan: Option<Value>,
    /// Validate (and plan) only; run nothing.
    pub dry_run: bool,
    pub options: RequestOptions,
    /// The caller's permissions, from the security layer.
    pub allow: Option<ToolPermission>,
}

/// What a submission produced.
#[derive(Debug)]
pub enum Submitted {
    /// A batch started (or is planning).
    Started { id: String, status: BatchStatus },
    /// `dry_run`: the validated plan.
    DryRun(Value),
}

/// Why a batch request failed.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("the plan is invalid ({} problem(s))", .0.len())]
    InvalidPlan(Vec<Problem>),
    #[error("{0}")]
    BadRequest(String),
    #[error("no plan was given and no LLM is configured (set `llm.provider` in config.yaml)")]
    NoLlm,
    #[error(transparent)]
    Planning(#[from] PlanningError),
    #[error("no batch '{0}'")]
    NotFound(String),
    #[error("batch '{id}' is already {status}")]
    Finished { id: String, status: &'static str },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a batch's events come from.
pub enum EventSource {
    /// A batch of this process: replay, then follow.
    Live(Arc<EventLog>),
    /// A stored batch (finished or interrupted): replay only.
    Stored(Vec<Event>),
}

#[derive(Default)]
struct Live {
    batches: HashMap<String, RunHandles>,
    /// Ids in submission order, for eviction.
    order: VecDeque<String>,
}

/// The batch service.
pub struct BatchService {
    router: Arc<Router>,
    runner: Arc<dyn ToolRunner>,
    planner: Option<Arc<Planner>>,
    llm_available: bool,
    settings: BatchSettings,
    live: Mutex<Live>,
    store: Option<Store>,
    tracker: TaskTracker,
    counter: AtomicU64,
}

impl std::fmt::Debug for BatchService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchService")
            .field("llm", &self.llm_available)
            .field("store", &self.store)
            .finish()
    }
}

impl BatchService {
    /// Opens the history database and wires the planner (when an LLM is given).
    pub fn new(
        router: Arc<Router>,
        llm: Option<Arc<dyn LlmProvider>>,
        settings: BatchSettings,
    ) -> Result<Arc<BatchService>, StoreError> {
        let (store, interrupted) = Store::open(Path::new(&settings.history_db))?;
        if !interrupted.is_empty() {
            tracing::warn!(batches = ?interrupted, "batches that were running when mcp-orch stopped are marked interrupted");
        }
        let planner = llm
            .clone()
            .map(|llm| Arc::new(Planner::new(llm, settings.planner.clone())));
        Ok(Arc::new(BatchService {
            runner: Arc::new(RouterRunner {
                router: router.clone(),
                llm: llm.clone(),
            }),
            router,
            planner,
            llm_available: llm.is_some(),
            settings,
            live: Mutex::new(Live::default()),
            store: Some(store),
            tracker: TaskTracker::new(),
            counter: AtomicU64::new(0),
        }))
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn options(&self, request: &RequestOptions) -> Result<ExecOptions, BatchError> {
        let mut exec = self.settings.exec.clone();
        let bad = |what: String| Err(BatchError::BadRequest(format!("options.{what}")));
        if let Some(n) = request.max_parallel_tasks {
            if n == 0 || n > self.settings.exec.max_parallel {
                return bad(format!(
                    "max_parallel_tasks must be from 1 to {} (execution.max_parallel_tasks)",
                    self.settings.exec.max_parallel
                ));
            }
            exec.max_parallel = n;
        }
        if let Some(n) = request.max_parallel_per_server {
            exec.per_server = (n > 0).then_some(n);
        }
        if let Some(ms) = request.task_timeout_ms {
            if ms == 0 {
                return bad("task_timeout_ms must be more than 0".into());
            }
            exec.task_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = request.batch_timeout_ms {
            let max = self.settings.exec.deadline.unwrap_or(Duration::MAX);
            if ms == 0 || Duration::from_millis(ms) > max {
                return bad(format!(
                    "batch_timeout_ms must be from 1 to {} (execution.batch_timeout)",
                    max.as_millis()
                ));
            }
            exec.deadline = Some(Duration::from_millis(ms));
        }
        if let Some(n) = request.retry_count {
            if n > MAX_RETRIES {
                return bad(format!("retry_count may be at most {MAX_RETRIES}"));
            }
            exec.retry_count = n;
        }
        if let Some(b) = request.retry_non_idempotent {
            exec.retry_unsafe = b;
        }
        Ok(exec)
    }

    /// Accepts a submission: validates (or plans) and starts the batch.
    pub async fn submit(self: &Arc<Self>, submission: Submission) -> Result<Submitted, BatchError> {
        let exec = self.options(&submission.options)?;
        self.router.startup_complete().await;
        let catalog = self.router.catalog();
        let context = ValidationContext {
            catalog: &catalog,
            limits: self.settings.limits,
            llm_available: self.llm_available,
            allow: submission.allow.as_ref(),
        };
        if let Some(value) = &submission.plan {
            let plan = Plan::from_value(value).map_err(|message| {
                BatchError::InvalidPlan(vec![Problem {
                    task: None,
                    code: "INVALID_PLAN_JSON",
                    message,
                }])
            })?;
            let validated = validate(plan, &context).map_err(BatchError::InvalidPlan)?;
            if submission.dry_run {
                return Ok(Submitted::DryRun(describe_plan(&validated, None)));
            }
            return Ok(self
                .start(submission.request, Some(validated), exec, None)
                .await);
        }
        if submission.request.trim().is_empty() {
            return Err(BatchError::BadRequest(
                "give `request` (what to do) or `plan` (a ready plan)".into(),
            ));
        }
        let Some(planner) = &self.planner else {
            return Err(BatchError::NoLlm);
        };
        if submission.dry_run {
            let started = Instant::now();
            let planned = planner
                .plan(&submission.request, &catalog, &context)
                .await?;
            return Ok(Submitted::DryRun(describe_plan(
                &planned.plan,
                Some(json!({
                    "planning_ms": started.elapsed().as_millis() as u64,
                    "llm_calls": planned.llm_calls,
                    "plan_output": planned.output.as_str(),
                    "tools_in_prompt": planned.tools_in_prompt,
                })),
            )));
        }
        Ok(self
            .start(submission.request, None, exec, submission.allow)
            .await)
    }

    async fn start(
        self: &Arc<Self>,
        request: String,
        plan: Option<ValidatedPlan>,
        exec: ExecOptions,
        allow: Option<ToolPermission>,
    ) -> Submitted {
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let id = format!("batch-{:x}-{n}", now_ms());
        let status = if plan.is_some() {
            BatchStatus::Running
        } else {
            BatchStatus::Planning
        };
        let handles = RunHandles {
            record: Arc::new(Mutex::new(BatchRecord::new(id.clone(), request, status))),
            events: Arc::new(EventLog::default()),
            cancel: CancellationToken::new(),
            stop: Arc::new(OnceLock::new()),
        };
        {
            let mut live = self.live();
            live.batches.insert(id.clone(), handles.clone());
            live.order.push_back(id.clone());
        }
        self.persist(&handles, 0).await;
        let service = self.clone();
        self.tracker
            .spawn(async move { service.drive(handles, plan, exec, allow).await });
        Submitted::Started { id, status }
    }

    /// Plans (if needed) and runs one batch, saving it as it goes.
    async fn drive(
        self: Arc<Self>,
        handles: RunHandles,
        plan: Option<ValidatedPlan>,
        exec: ExecOptions,
        allow: Option<ToolPermission>,
    ) {
        let mut saved = 0;
        let plan = match plan {
            Some(plan) => plan,
            None => match self.plan_for(&handles, allow).await {
                Ok(plan) => plan,
                Err((status, error)) => {
                    {
                        let mut record = lock(&handles.record);
                        record.status = status;
                        record.finished_at_ms = Some(now_ms());
                        record.error = error;
                    }
                    handles.events.push(
                        "batch.completed",
                        json!({"status": status.as_str(), "counts": lock(&handles.record).counts()}),
                    );
                    self.persist(&handles, saved).await;
                    self.evict();
                    return;
                }
            },
        };
        {
            let planning_ms = lock(&handles.record).planning_ms;
            let mut data = describe_plan(&plan, None);
            if let (Some(map), Some(ms)) = (data.as_object_mut(), planning_ms) {
                map.insert("planning_ms".into(), json!(ms));
            }
            handles.events.push("plan.ready", data);
        }
        let run = executor::execute(Arc::new(plan), self.runner.clone(), exec, handles.clone());
        tokio::pin!(run);
        let mut tick = tokio::time::interval(SAVE_EVERY);
        tick.tick().await;
        let status = loop {
            tokio::select! {
                status = &mut run => break status,
                _ = tick.tick() => saved = self.persist(&handles, saved).await,
            }
        };
        self.persist(&handles, saved).await;
        tracing::info!(batch = %lock(&handles.record).id, status = status.as_str(), "batch finished");
        self.evict();
    }

    /// Asks the planner; on failure returns the final status and error to record.
    async fn plan_for(
        &self,
        handles: &RunHandles,
        allow: Option<ToolPermission>,
    ) -> Result<ValidatedPlan, (BatchStatus, Option<Value>)> {
        let Some(planner) = &self.planner else {
            return Err((
                BatchStatus::Failed,
                Some(json!({"code": "LLM_NOT_CONFIGURED"})),
            ));
        };
        let request = lock(&handles.record).request.clone();
        let catalog = self.router.catalog();
        let context = ValidationContext {
            catalog: &catalog,
            limits: self.settings.limits,
            llm_available: self.llm_available,
            allow: allow.as_ref(),
        };
        let started = Instant::now();
        let planned = tokio::select! {
            planned = planner.plan(&request, &catalog, &context) => planned,
            () = handles.cancel.cancelled() => {
                let status = match handles.stop.get() {
                    Some(StopReason::Shutdown) => BatchStatus::Interrupted,
                    _ => BatchStatus::Cancelled,
                };
                return Err((status, None));
            }
        };
        let planning_ms = started.elapsed().as_millis() as u64;
        lock(&handles.record).planning_ms = Some(planning_ms);
        match planned {
            Ok(planned) => Ok(planned.plan),
            Err(error) => {
                tracing::warn!(%error, "planning failed");
                let mut detail = json!({"code": "PLANNING_FAILED", "message": error.to_string()});
                if let (PlanningError::Invalid { problems, answer }, Some(map)) =
                    (&error, detail.as_object_mut())
                {
                    map.insert("problems".into(), json!(problems));
                    map.insert("answer".into(), json!(answer));
                }
                Err((BatchStatus::Failed, Some(detail)))
            }
        }
    }

    /// Saves the record and the events after `saved`; returns the last saved event id.
    async fn persist(&self, handles: &RunHandles, saved: u64) -> u64 {
        let Some(store) = self.store.clone() else {
            return saved;
        };
        let record = lock(&handles.record).clone();
        let events = handles.events.since(saved);
        let last = events.last().map(|e| e.id).unwrap_or(saved);
        let id = record.id.clone();
        let result = tokio::task::spawn_blocking(move || {
            store.save(&record)?;
            store.append_events(&record.id, &events)
        })
        .await;
        match result {
            Ok(Ok(())) => last,
            Ok(Err(error)) => {
                tracing::error!(batch = %id, %error, "cannot save batch");
                saved
            }
            Err(error) => {
                tracing::error!(batch = %id, %error, "cannot save batch");
                saved
            }
        }
    }

    /// Forgets the oldest finished batches beyond [`LIVE_FINISHED`] (they stay in the store).
    fn evict(&self) {
        let mut live = self.live();
        let mut finished: usize = 0;
        let mut keep = VecDeque::new();
        let order: Vec<String> = live.order.drain(..).rev().collect();
        for id in order {
            let done = live
                .batches
                .get(&id)
                .is_some_and(|h| lock(&h.record).status.is_final());
            if done {
                finished += 1;
                if finished > LIVE_FINISHED {
                    live.batches.remove(&id);
                    continue;
                }
            }
            keep.push_front(id);
        }
        live.order = keep;
    }

    fn live_handles(&self, id: &str) -> Option<RunHandles> {
        self.live().batches.get(id).cloned()
    }

    async fn stored(&self, id: &str) -> Result<BatchRecord, BatchError> {
        let Some(store) = self.store.clone() else {
            return Err(BatchError::NotFound(id.to_owned()));
        };
        let key = id.to_owned();
        let found = tokio::task::spawn_blocking(move || store.get(&key))
            .await
            .map_err(|_| BatchError::NotFound(id.to_owned()))??;
        found.ok_or_else(|| BatchError::NotFound(id.to_owned()))
    }

    /// A batch's record, live or stored.
    pub async fn record(&self, id: &str) -> Result<BatchRecord, BatchError> {
        match self.live_handles(id) {
            Some(handles) => Ok(lock(&handles.record).clone()),
            None => self.stored(id).await,
        }
    }

    /// Stops a running batch; answers once it has stopped (at most a few seconds).
    pub async fn cancel(&self, id: &str) -> Result<BatchRecord, BatchError> {
        let Some(handles) = self.live_handles(id) else {
            let record = self.stored(id).await?;
            return Err(BatchError::Finished {
                id: id.to_owned(),
                status: record.status.as_str(),
            });
        };
        let status = lock(&handles.record).status;
        if status.is_final() {
            return Err(BatchError::Finished {
                id: id.to_owned(),
                status: status.as_str(),
            });
        }
        let _ = handles.stop.set(StopReason::Cancelled);
        handles.cancel.cancel();
        let mut events = handles.events.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while !handles.events.completed() {
                if events.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
        Ok(lock(&handles.record).clone())
    }

    /// History, newest first, and the total count.
    pub async fn list(
        &self,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<Value>, usize), BatchError> {
        let Some(store) = self.store.clone() else {
            return Ok((Vec::new(), 0));
        };
        let (records, total) = tokio::task::spawn_blocking(move || store.list(limit, offset))
            .await
            .map_err(|e| BatchError::BadRequest(e.to_string()))??;
        let summaries = records
            .into_iter()
            .map(|stored| match self.live_handles(&stored.id) {
                Some(handles) => lock(&handles.record).summary_json(),
                None => stored.summary_json(),
            })
            .collect();
        Ok((summaries, total))
    }

    /// The events of a batch.
    pub async fn events(&self, id: &str) -> Result<EventSource, BatchError> {
        if let Some(handles) = self.live_handles(id) {
            return Ok(EventSource::Live(handles.events));
        }
        self.stored(id).await?;
        let Some(store) = self.store.clone() else {
            return Err(BatchError::NotFound(id.to_owned()));
        };
        let key = id.to_owned();
        let events = tokio::task::spawn_blocking(move || store.events(&key, 0))
            .await
            .map_err(|_| BatchError::NotFound(id.to_owned()))??;
        Ok(EventSource::Stored(events))
    }

    /// Stops every running batch (recorded as interrupted) and waits, bounded, for them to
    /// be saved.
    pub async fn shutdown(&self) {
        let running: Vec<RunHandles> = self.live().batches.values().cloned().collect();
        for handles in running {
            let _ = handles.stop.set(StopReason::Shutdown);
            handles.cancel.cancel();
        }
        self.tracker.close();
        if tokio::time::timeout(Duration::from_secs(5), self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "batches still stopping after 5 s; they will be marked interrupted on the next start"
            );
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The plan as `plan.ready` and dry runs show it: the plan itself plus, per task, its
/// server, retry safety and priority.
fn describe_plan(plan: &ValidatedPlan, extra: Option<Value>) -> Value {
    let tasks: Vec<Value> = plan
        .plan
        .tasks
        .iter()
        .zip(&plan.nodes)
        .map(|(task, node)| {
            json!({
                "id": task.id,
                "tool": task.tool,
                "depends_on": task.depends_on,
                "server": node.server.as_deref(),
                "retry_safe": node.retry_safe,
                "critical_path": node.priority,
            })
        })
        .collect();
    let mut out = json!({
        "status": "valid",
        "goal": plan.plan.goal,
        "task_count": plan.plan.tasks.len(),
        "plan": serde_json::to_value(&plan.plan).unwrap_or(Value::Null),
        "schedule": tasks,
    });
    if let (Some(map), Some(Value::Object(extra))) = (out.as_object_mut(), extra) {
        map.extend(extra);
    }
    out
}
