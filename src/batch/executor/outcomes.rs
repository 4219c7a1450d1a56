//! What happens when a call ends: a success completes its unit (and, with the last unit,
//! its task, which readies the tasks waiting for it); a transport failure or timeout of a
//! retry-safe tool is retried after a backoff; anything else fails the task, cancels its
//! other calls still in flight (`foreach` elements) and skips everything downstream of it.
//! At the end, leftovers are settled and the batch's final status is decided. Writes only
//! the record and the event log.

use std::cmp::Reverse;

use serde_json::{Value, json};

use super::{CallOutcome, Exec, Message, StopReason, Stopping, Unit, backoff};
use crate::batch::state::{BatchStatus, TaskState, bound, now_ms};

impl Exec {
    pub(super) fn finished(&mut self, (task, unit): Unit, outcome: CallOutcome) {
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

    pub(super) fn schedule_retry(
        &mut self,
        task: usize,
        unit: usize,
        attempts: u32,
        error: String,
    ) {
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
        // The task's own token: a failed sibling element ends the wait too (it is a child of
        // `calls`, so cancel, shutdown and the deadline still do).
        let stop = self.tasks[task].cancel.clone();
        self.in_flight.spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stop.cancelled() => {}
            }
            Message::RetryDue { unit: (task, unit) }
        });
    }

    pub(super) fn retry_due(&mut self, (task, unit): Unit) {
        if self.tasks[task].state.is_final() {
            return;
        }
        if self.stopping.is_some() {
            return self.task_stopped(task);
        }
        let priority = self.plan.nodes[task].priority;
        self.ready.push((priority, Reverse(task), Reverse(unit)));
    }

    pub(super) fn progress(&mut self, (task, unit): Unit, progress: Value) {
        let mut data = json!({ "task": self.id(task) });
        if let (Some(map), Value::Object(extra)) = (data.as_object_mut(), progress) {
            map.extend(extra);
            if self.tasks[task].is_foreach {
                map.insert("item".into(), json!(unit));
            }
        }
        self.emit("task.progress", data);
    }

    pub(super) fn unit_succeeded(&mut self, task: usize, unit: usize, value: Value) {
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

    pub(super) fn task_succeeded(&mut self, task: usize, output: Value) {
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

    pub(super) fn task_failed(&mut self, task: usize, error: String) {
        self.tasks[task].state = TaskState::Failed;
        // Its other calls still in flight (`foreach` elements) are of no use any more.
        self.tasks[task].cancel.cancel();
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
    pub(super) fn task_stopped(&mut self, task: usize) {
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

    pub(super) fn set_final(&mut self, task: usize, state: TaskState, error: Option<String>) {
        self.tasks[task].state = state;
        let mut record = self.record();
        let entry = &mut record.tasks[task];
        entry.state = state;
        entry.finished_at_ms = Some(now_ms());
        entry.error = error;
    }

    pub(super) fn finish(&mut self) -> BatchStatus {
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
