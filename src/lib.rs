//! mcp-orch: an aggregating MCP proxy.
//!
//! A tour of the crate, in the direction data flows:
//!
//! - [`config`] reads `mcp-config.json` (which servers) and `config.yaml` (how to run).

pub mod config;
