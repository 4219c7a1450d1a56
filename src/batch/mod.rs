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

/// What the security layer (issue 5) puts in a request's extensions to restrict which tools a
/// batch may call: the batch routes read it and validate plans (and filter the planner's
/// catalogue) with it. Absent means every tool is allowed.
#[derive(Clone)]
pub struct CallerPermissions(pub ToolPermission);
