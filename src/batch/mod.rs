//! Batch mode: an LLM (or a script) plans a DAG of tool calls over the merged catalogue;
//! mcp-orch validates it and runs it in parallel with bounded concurrency, with a live view.
//!
//! In the direction data flows:
//! - [`plan`]: the plan JSON (`goal`, `tasks` with `depends_on` / `foreach`, `output`).
//! - [`refs`]: `{"$ref": "t1.a[0]"}` and `"${t1.a}"` references, found and resolved.
//! - [`schema`]: arguments checked against a tool's input schema.
//! - [`validate`]: every problem of a plan, with its task id; a [`ValidatedPlan`] graph.
//! - [`planner`]: request + catalogue → prompt → LLM → validated plan (one repair).
//! - [`executor`]: the event-driven scheduler (bounds, priorities, timeouts, retries).
//! - [`runner`]: calls through the router (and `llm.generate` through the LLM).
//! - [`state`], [`events`], [`store`]: the batch record, its event stream, SQLite history.
//! - [`service`]: what the REST face (`src/api/batch.rs`) calls.
//!
//! Batch mode never reaches a downstream except through the router, and never talks HTTP
//! itself (the faces do).

pub mod events;
pub mod executor;
pub mod plan;
pub mod planner;
pub mod refs;
pub mod runner;
pub mod schema;
pub mod service;
pub mod state;
pub mod store;
pub mod validate;

pub use service::{
    BatchError, BatchService, BatchSettings, EventSource, RequestOptions, Submission, Submitted,
};
pub use validate::{Problem, ToolPermission, ValidatedPlan};

/// A per-request restriction of which tools a batch may call, read from the request's
/// extensions by `POST /batch/execute` (which itself needs the `execute` permission, the
/// one tool calls need). When one is attached it validates plans (`TOOL_NOT_ALLOWED`) and
/// filters the catalogue the planner sees; absent, every tool is allowed. Nothing in the
/// security layer attaches one yet: today's keys grant `execute` for all tools at once.
#[derive(Clone)]
pub struct CallerPermissions(pub ToolPermission);
