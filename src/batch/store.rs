//! Batch history in an embedded SQLite file (`execution.history_db`): one row per batch
//! (its [`BatchRecord`] as JSON plus indexed columns) and its events, so status, results,
//! history and event replay survive a restart. On open, batches that were still planning
//! or running (the process died) are marked `interrupted`.
//!
//! Calls are blocking; the service runs them on the blocking thread pool. This module
//! never decides what to store, only how.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use super::events::Event;
use super::state::{BatchRecord, BatchStatus, TaskState, now_ms};

/// Why the store failed; messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("batch history {file}: {source}")]
    Sqlite {
        file: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("batch history {file}: a stored record is unreadable: {detail}")]
    Corrupt { file: String, detail: String },
}

/// The history database. Cloning shares the connection.
#[derive(Clone)]
pub struct Store {
    file: Arc<str>,
    connection: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("file", &self.file).finish()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY,
    created_at_ms INTEGER NOT NULL,
    status TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS batches_created ON batches (created_at_ms DESC);
CREATE TABLE IF NOT EXISTS events (
    batch_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (batch_id, seq)
);
";

impl Store {
    /// Opens (creating if needed) the database at `path` and marks unfinished batches
    /// interrupted. Returns the store and the ids it marked.
    pub fn open(path: &Path) -> Result<(Store, Vec<String>), StoreError> {
        let file: Arc<str> = path.display().to_string().into();
        let wrap = |source| StoreError::Sqlite {
            file: file.to_string(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(parent);
        }
        let connection = Connection::open(path).map_err(wrap)?;
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;")
            .map_err(wrap)?;
        connection.execute_batch(SCHEMA).map_err(wrap)?;
        let store = Store {
            file,
            connection: Arc::new(Mutex::new(connection)),
        };
        let interrupted = store.mark_interrupted()?;
        Ok((store, interrupted))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sqlite(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            file: self.file.to_string(),
            source,
        }
    }

    fn corrupt(&self, detail: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            file: self.file.to_string(),
            detail: detail.to_string(),
        }
    }

    fn mark_interrupted(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String, String)> = {
            let connection = self.lock();
            let mut statement = connection
                .prepare("SELECT id, record FROM batches WHERE status IN ('planning', 'running')")
                .map_err(|e| self.sqlite(e))?;
            statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .and_then(Iterator::collect)
                .map_err(|e| self.sqlite(e))?
        };
        let mut ids = Vec::new();
        for (id, text) in rows {
            let Ok(mut record) = serde_json::from_str::<BatchRecord>(&text) else {
                tracing::warn!(batch = %id, "unreadable stored batch left as is");
                continue;
            };
            let now = now_ms();
            record.status = BatchStatus::Interrupted;
            record.finished_at_ms = Some(now);
            record.error = Some(json!({
                "code": "INTERRUPTED",
                "message": "mcp-orch stopped while this batch was running",
            }));
            for task in &mut record.tasks {
                if !task.state.is_final() {
                    task.state = TaskState::Cancelled;
                    task.finished_at_ms = Some(now);
                    task.error = Some("interrupted: mcp-orch stopped".into());
                }
            }
            self.save(&record)?;
            let next = self.last_event_id(&id)? + 1;
            self.append_events(
                &id,
                &[Event {
                    id: next,
                    kind: "batch.completed".into(),
                    data: json!({"status": "interrupted", "counts": record.counts()}),
                    at_ms: now,
                }],
            )?;
            ids.push(id);
        }
        Ok(ids)
    }

    /// Inserts or replaces a batch's record.
    pub fn save(&self, record: &BatchRecord) -> Result<(), StoreError> {
        let text = serde_json::to_string(record).map_err(|e| self.corrupt(e))?;
        self.lock()
            .execute(
                "INSERT INTO batches (id, created_at_ms, status, record) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(id) DO UPDATE SET status = excluded.status, record = excluded.record",
                params![
                    record.id,
                    record.created_at_ms as i64,
                    record.status.as_str(),
                    text
                ],
            )
            .map_err(|e| self.sqlite(e))?;
        Ok(())
    }

    /// Appends events (ids already assigned); existing ids are kept.
    pub fn append_events(&self, batch: &str, events: &[Event]) -> Result<(), StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction().map_err(|e| self.sqlite(e))?;
        {
            let mut statement = transaction
                .prepare_cached(
                    "INSERT OR IGNORE INTO events (batch_id, seq, kind, data, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(|e| self.sqlite(e))?;
            for event in events {
                statement
                    .execute(params![
                        batch,
                        event.id as i64,
                        event.kind,
                        event.data.to_string(),
                        event.at_ms as i64
                    ])
                    .map_err(|e| self.sqlite(e))?;
            }
        }
        transaction.commit().map_err(|e| self.sqlite(e))
    }

    fn last_event_id(&self, batch: &str) -> Result<u64, StoreError> {
        let last: Option<i64> = self
            .lock()
            .query_row(
                "SELECT MAX(seq) FROM events WHERE batch_id = ?1",
                params![batch],
                |row| row.get(0),
            )
            .map_err(|e| self.sqlite(e))?;
        Ok(last.unwrap_or(0).max(0) as u64)
    }

    /// One batch's record.
    pub fn get(&self, batch: &str) -> Result<Option<BatchRecord>, StoreError> {
        let text: Option<String> = self
            .lock()
            .query_row(
                "SELECT record FROM batches WHERE id = ?1",
                params![batch],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.sqlite(e))?;
        text.map(|t| serde_json::from_str(&t).map_err(|e| self.corrupt(e)))
            .transpose()
    }

    /// A batch's events with ids above `after`.
    pub fn events(&self, batch: &str, after: u64) -> Result<Vec<Event>, StoreError> {
        let connection = self.lock();
        let mut statement = connection
            .prepare_cached(
                "SELECT seq, kind, data, at_ms FROM events WHERE batch_id = ?1 AND seq > ?2 ORDER BY seq",
            )
            .map_err(|e| self.sqlite(e))?;
        let rows: Vec<(i64, String, String, i64)> = statement
            .query_map(params![batch, after as i64], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .and_then(Iterator::collect)
            .map_err(|e| self.sqlite(e))?;
        Ok(rows
            .into_iter()
            .map(|(seq, kind, data, at)| Event {
                id: seq.max(0) as u64,
                kind,
                data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
                at_ms: at.max(0) as u64,
            })
            .collect())
    }

    /// Newest first: `limit` records after skipping `offset`, and the total count.
    pub fn list(
        &self,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<BatchRecord>, usize), StoreError> {
        let connection = self.lock();
        let total: i64 = connection
            .query_row("SELECT COUNT(*) FROM batches", [], |row| row.get(0))
            .map_err(|e| self.sqlite(e))?;
        let mut statement = connection
            .prepare_cached(
                "SELECT record FROM batches ORDER BY created_at_ms DESC, id DESC LIMIT ?1 OFFSET ?2",
            )
            .map_err(|e| self.sqlite(e))?;
        let texts: Vec<String> = statement
            .query_map(params![limit as i64, offset as i64], |row| row.get(0))
            .and_then(Iterator::collect)
            .map_err(|e| self.sqlite(e))?;
        let records = texts
            .iter()
            .filter_map(|t| serde_json::from_str(t).ok())
            .collect();
        Ok((records, total.max(0) as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::state::TaskRecord;

    fn record(id: &str, status: BatchStatus, created: u64) -> BatchRecord {
        let mut r = BatchRecord::new(id.into(), "req".into(), status);
        r.created_at_ms = created;
        r.tasks.push(TaskRecord {
            id: "t".into(),
            tool: "x".into(),
            state: TaskState::Running,
            attempts: 1,
            started_at_ms: None,
            finished_at_ms: None,
            args: None,
            output: None,
            error: None,
            items: None,
        });
        r
    }

    #[test]
    fn survives_reopen_and_marks_unfinished_batches_interrupted() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("sub/history.db");
        {
            let (store, marked) = Store::open(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(marked.is_empty());
            let mut done = record("a", BatchStatus::Succeeded, 1);
            done.tasks[0].state = TaskState::Succeeded;
            store.save(&done).unwrap_or_else(|e| panic!("{e}"));
            store
                .save(&record("b", BatchStatus::Running, 2))
                .unwrap_or_else(|e| panic!("{e}"));
            let event = Event {
                id: 1,
                kind: "task.started".into(),
                data: json!({"task": "t"}),
                at_ms: 5,
            };
            store
                .append_events("b", &[event.clone(), event])
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let (store, marked) = Store::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(marked, ["b"]);
        let b = store
            .get("b")
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("b is stored"));
        assert_eq!(b.status, BatchStatus::Interrupted);
        assert_eq!(b.tasks[0].state, TaskState::Cancelled);
        let events = store.events("b", 0).unwrap_or_default();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["task.started", "batch.completed"]);
        assert_eq!(store.events("b", 1).map(|e| e.len()).unwrap_or(0), 1);
        assert_eq!(
            store.get("a").ok().flatten().map(|a| a.status),
            Some(BatchStatus::Succeeded)
        );
        let (page, total) = store.list(1, 0).unwrap_or_default();
        assert_eq!(total, 2);
        assert_eq!(page[0].id, "b");
        assert!(store.get("zz").ok().flatten().is_none());
    }
}
