//! The event stream of one batch: `plan.ready`, `task.started`, `task.progress`,
//! `task.retrying`, `task.succeeded`, `task.failed`, `task.skipped`, `batch.completed`.
//!
//! Events are numbered from 1 in the order they happened and kept (bounded) so a reader can
//! replay from any id (SSE `Last-Event-ID`) and then follow live ones; `batch.completed`
//! is always the last. The log never blocks the executor: readers poll it after a `watch`
//! notification.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

use super::state::now_ms;

/// Most events kept per batch; `task.progress` events beyond it are dropped (others never).
pub const MAX_EVENTS: usize = 20_000;

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// 1, 2, 3, ... within the batch: the SSE `id:`.
    pub id: u64,
    /// `task.started`, ...: the SSE `event:`.
    pub kind: String,
    /// The SSE `data:` (a JSON object).
    pub data: Value,
    /// Unix ms.
    pub at_ms: u64,
}

/// A batch's events, appended by the executor, read by any number of subscribers.
#[derive(Debug)]
pub struct EventLog {
    events: Mutex<Vec<Event>>,
    /// The id of the last event, and whether `batch.completed` has been appended.
    notify: watch::Sender<(u64, bool)>,
}

impl Default for EventLog {
    fn default() -> Self {
        EventLog {
            events: Mutex::new(Vec::new()),
            notify: watch::channel((0, false)).0,
        }
    }
}

impl EventLog {
    /// A log that already holds `events` (from the store); `completed` when the batch ended.
    pub fn restored(events: Vec<Event>, completed: bool) -> Self {
        let last = events.last().map(|e| e.id).unwrap_or(0);
        EventLog {
            events: Mutex::new(events),
            notify: watch::channel((last, completed)).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Event>> {
        self.events.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends an event; returns it (or `None` when a progress event was dropped because
    /// the log is full).
    pub fn push(&self, kind: &str, data: Value) -> Option<Event> {
        let mut events = self.lock();
        if events.len() >= MAX_EVENTS && kind == "task.progress" {
            return None;
        }
        let id = events.last().map(|e| e.id).unwrap_or(0) + 1;
        let event = Event {
            id,
            kind: kind.to_owned(),
            data,
            at_ms: now_ms(),
        };
        events.push(event.clone());
        let completed = kind == "batch.completed";
        drop(events);
        self.notify.send_modify(|state| {
            state.0 = id;
            state.1 |= completed;
        });
        Some(event)
    }

    /// Every event with an id above `after`.
    pub fn since(&self, after: u64) -> Vec<Event> {
        let events = self.lock();
        let start = events.partition_point(|e| e.id <= after);
        events[start..].to_vec()
    }

    /// All events.
    pub fn all(&self) -> Vec<Event> {
        self.lock().clone()
    }

    /// Whether `batch.completed` was appended.
    pub fn completed(&self) -> bool {
        self.notify.borrow().1
    }

    /// A receiver that changes whenever an event is appended.
    pub fn subscribe(&self) -> watch::Receiver<(u64, bool)> {
        self.notify.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn replays_and_notifies() {
        let log = EventLog::default();
        let mut rx = log.subscribe();
        log.push("task.started", json!({"task": "a"}));
        log.push("task.succeeded", json!({"task": "a"}));
        assert!(rx.changed().await.is_ok());
        assert_eq!(log.since(0).len(), 2);
        assert_eq!(log.since(1)[0].kind, "task.succeeded");
        assert!(log.since(2).is_empty());
        assert!(!log.completed());
        log.push("batch.completed", json!({}));
        assert!(log.completed());
        assert_eq!(log.all().last().map(|e| e.id), Some(3));
    }
}
