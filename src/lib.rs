//! mcp-orch: an aggregating MCP proxy — many MCP servers served as one.
//!
//! A tour of the crate, in the direction data flows:
//!
//! - [`config`] reads `mcp-config.json` (which servers) and `config.yaml` (how to run),
//!   expands `${VAR}`, validates, and reports errors by file and key path.
//! - [`downstream`] keeps one live connection per server (a child process on stdio, or a
//!   remote Streamable HTTP session), with its lifecycle, status and stderr buffer.
//! - [`catalog`] is the merged, namespaced view of every server's tools: exposed name ↔
//!   `(server, original name)`, unique and client-safe by construction.
//! - [`router`] is the shared core: it forwards calls to the owning server, maps progress
//!   and cancellation, and tells upstream sessions when the catalogue changes.
//! - [`upstream`] is the MCP face (stdio and Streamable HTTP at `/mcp`, one rmcp handler
//!   behind both); [`api`] is the REST face for scripts.
//! - [`batch`] is batch mode: plans (from an LLM via [`llm`], or given) validated against
//!   the catalogue and run in parallel through the router, with status, events and history.
//! - [`security`] wraps the HTTP faces: credentials, permissions, rate limits, Host/Origin
//!   allow-lists, body limits, connection timeouts, log redaction.
//! - [`reload`] watches the configuration files and applies changes to the running router,
//!   touching only the servers that changed.
//! - [`telemetry`] sets up logging (stderr only); [`cli`] and [`app`] parse the command line
//!   and wire everything together.

pub mod api;
pub mod app;
pub mod batch;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod downstream;
pub mod llm;
pub mod reload;
pub mod router;
pub mod security;
pub mod telemetry;
#[cfg(test)]
mod testing;
pub mod upstream;
