//! The record of one batch: its state, its plan and every task's state, attempts, resolved
//! arguments and (bounded) output. It is what `GET /batch/status|result` render and what
//! the store saves as JSON. The executor writes it; nothing here runs anything.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The state of a whole batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    /// The LLM is writing the plan.
    Planning,
    /// Tasks are running.
    Running,
    /// Every task succeeded.
    Succeeded,
    /// Some tasks succeeded, some failed or were skipped.
    PartialFailure,
    /// No task succeeded, the plan was invalid, or planning failed.
    Failed,
    /// Cancelled by `DELETE /batch/cancel/{id}`.
    Cancelled,
    /// mcp-orch stopped (or died) while it ran.
    Interrupted,
}

impl BatchStatus {
    /// Whether the batch is over.
    pub fn is_final(self) -> bool {
        !matches!(self, BatchStatus::Planning | BatchStatus::Running)
    }

    /// The name used in JSON and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Planning => "planning",
            BatchStatus::Running => "running",
            BatchStatus::Succeeded => "succeeded",
            BatchStatus::PartialFailure => "partial_failure",
            BatchStatus::Failed => "failed",
            BatchStatus::Cancelled => "cancelled",
            BatchStatus::Interrupted => "interrupted",
        }
    }
}

/// The state of one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting for its dependencies or a free slot.
    Pending,
    /// A call is in flight (or waiting to be retried).
    Running,
    Succeeded,
    Failed,
    /// A dependency failed, or the batch ended first.
    Skipped,
    Cancelled,
}

impl TaskState {
    /// Whether the task is over.
    pub fn is_final(self) -> bool {
        !matches!(self, TaskState::Pending | TaskState::Running)
    }
}

/// One task's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// The plan's task id.
    pub id: String,
    /// The tool it calls.
    pub tool: String,
    pub state: TaskState,
    /// Calls made so far (retries and foreach elements included).
    pub attempts: u32,
    /// Unix ms of the first call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<u64>,
    /// Unix ms when it reached its final state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
    /// The arguments after references were resolved (an array, one per element, for
    /// `foreach`), bounded like outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    /// Its output (see the README for how a tool result becomes an output), bounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// Why it failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Number of elements for a `foreach` task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<usize>,
}

/// A whole batch's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRecord {
    /// The batch id (`task_id` in the API, as in the seed contract).
    pub id: String,
    /// The natural-language request, if any.
    pub request: String,
    /// The plan's goal.
    pub goal: String,
    pub status: BatchStatus,
    /// Unix ms.
    pub created_at_ms: u64,
    /// Unix ms when the first task could start (after planning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<u64>,
    /// Unix ms when the batch reached its final state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
    /// How long the LLM took to plan, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planning_ms: Option<u64>,
    /// Why the batch failed as a whole (planning error, invalid plan, deadline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// The plan that ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Value>,
    /// The task ids whose outputs form the result.
    #[serde(default)]
    pub output_ids: Vec<String>,
    pub tasks: Vec<TaskRecord>,
}

/// Now, in unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// RFC 3339 with milliseconds, from unix ms.
pub fn rfc3339_ms(ms: u64) -> String {
    let secs =
        crate::api::humantime_rfc3339(UNIX_EPOCH + std::time::Duration::from_secs(ms / 1000));
    format!("{}.{:03}Z", secs.trim_end_matches('Z'), ms % 1000)
}

impl BatchRecord {
    /// A new batch in `status`, with no tasks yet.
    pub fn new(id: String, request: String, status: BatchStatus) -> Self {
        BatchRecord {
            id,
            request,
            goal: String::new(),
            status,
            created_at_ms: now_ms(),
            started_at_ms: None,
            finished_at_ms: None,
            planning_ms: None,
            error: None,
            plan: None,
            output_ids: Vec::new(),
            tasks: Vec::new(),
        }
    }

    /// How many tasks are in each state.
    pub fn counts(&self) -> Value {
        let count = |state: TaskState| self.tasks.iter().filter(|t| t.state == state).count();
        json!({
            "pending": count(TaskState::Pending),
            "running": count(TaskState::Running),
            "succeeded": count(TaskState::Succeeded),
            "failed": count(TaskState::Failed),
            "skipped": count(TaskState::Skipped),
            "cancelled": count(TaskState::Cancelled),
        })
    }

    fn timings(&self) -> Value {
        let end = self.finished_at_ms.unwrap_or_else(now_ms);
        json!({
            "created_at": rfc3339_ms(self.created_at_ms),
            "started_at": self.started_at_ms.map(rfc3339_ms),
            "finished_at": self.finished_at_ms.map(rfc3339_ms),
            "planning_ms": self.planning_ms,
            "running_ms": self.started_at_ms.map(|s| end.saturating_sub(s)),
            "elapsed_ms": end.saturating_sub(self.created_at_ms),
        })
    }

    /// `GET /batch/status/{id}`
    pub fn status_json(&self) -> Value {
        let mut out = json!({
            "task_id": self.id,
            "status": self.status.as_str(),
            "request": self.request,
            "goal": self.goal,
            "total_tasks": self.tasks.len(),
            "counts": self.counts(),
            "timings": self.timings(),
        });
        if let (Some(error), Some(map)) = (&self.error, out.as_object_mut()) {
            map.insert("error".into(), error.clone());
        }
        out
    }

    /// `GET /batch/result/{id}`
    pub fn result_json(&self) -> Value {
        let mut outputs = serde_json::Map::new();
        for id in &self.output_ids {
            if let Some(task) = self.tasks.iter().find(|t| &t.id == id) {
                outputs.insert(id.clone(), task.output.clone().unwrap_or(Value::Null));
            }
        }
        let tasks: Vec<Value> = self
            .tasks
            .iter()
            .map(|t| {
                let mut v = json!({
                    "id": t.id,
                    "tool": t.tool,
                    "state": t.state,
                    "attempts": t.attempts,
                });
                if let Some(map) = v.as_object_mut() {
                    if let Some(ms) = t.started_at_ms {
                        map.insert("started_at".into(), json!(rfc3339_ms(ms)));
                    }
                    if let (Some(s), Some(f)) = (t.started_at_ms, t.finished_at_ms) {
                        map.insert("duration_ms".into(), json!(f.saturating_sub(s)));
                    }
                    for (key, value) in [("args", &t.args), ("output", &t.output)] {
                        if let Some(value) = value {
                            map.insert(key.into(), value.clone());
                        }
                    }
                    if let Some(items) = t.items {
                        map.insert("items".into(), json!(items));
                    }
                    if let Some(error) = &t.error {
                        map.insert("error".into(), json!(error));
                    }
                }
                v
            })
            .collect();
        let mut out = json!({
            "task_id": self.id,
            "status": self.status.as_str(),
            "goal": self.goal,
            "outputs": outputs,
            "tasks": tasks,
            "timings": self.timings(),
        });
        if let Some(map) = out.as_object_mut() {
            if let Some(error) = &self.error {
                map.insert("error".into(), error.clone());
            }
            if let Some(plan) = &self.plan {
                map.insert("plan".into(), plan.clone());
            }
        }
        out
    }

    /// One entry of `GET /batch/tasks`.
    pub fn summary_json(&self) -> Value {
        json!({
            "task_id": self.id,
            "status": self.status.as_str(),
            "request": self.request,
            "goal": self.goal,
            "total_tasks": self.tasks.len(),
            "counts": self.counts(),
            "timings": self.timings(),
        })
    }
}

/// Bounds a JSON value to about `max_bytes` of serialized JSON. A larger value becomes
/// `{"truncated": true, "original_bytes": N, "preview": "<first bytes of its JSON>"}`.
pub fn bound(value: Value, max_bytes: usize) -> Value {
    let text = value.to_string();
    if text.len() <= max_bytes {
        return value;
    }
    let mut cut = max_bytes.min(text.len());
    while cut > 0 && !text.is_char_boundary(cut) {
        cut -= 1;
    }
    json!({
        "truncated": true,
        "original_bytes": text.len(),
        "preview": &text[..cut],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounding_marks_truncation() {
        assert_eq!(bound(json!("short"), 100), json!("short"));
        let big = json!("é".repeat(100));
        let bounded = bound(big, 11);
        assert_eq!(bounded["truncated"], true);
        assert_eq!(bounded["original_bytes"], 202);
        assert_eq!(bounded["preview"], "\"ééééé");
    }

    #[test]
    fn timestamps_have_milliseconds() {
        assert_eq!(rfc3339_ms(1_705_316_400_123), "2024-01-15T11:00:00.123Z");
    }

    #[test]
    fn counts_and_result_outputs() {
        let mut record = BatchRecord::new("b".into(), "r".into(), BatchStatus::Running);
        record.tasks.push(TaskRecord {
            id: "a".into(),
            tool: "t".into(),
            state: TaskState::Succeeded,
            attempts: 1,
            started_at_ms: Some(1),
            finished_at_ms: Some(5),
            args: None,
            output: Some(json!(3)),
            error: None,
            items: None,
        });
        record.output_ids = vec!["a".into()];
        assert_eq!(record.status_json()["counts"]["succeeded"], 1);
        let result = record.result_json();
        assert_eq!(result["outputs"], json!({"a": 3}));
        assert_eq!(result["tasks"][0]["duration_ms"], 4);
    }
}
