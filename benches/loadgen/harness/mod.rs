//! The load generator's engine, shared by the `loadgen` bench binary and the smoke test
//! (`tests/bench_smoke.rs` includes this folder with `#[path]`).
//!
//! It speaks raw JSON-RPC over three wires — a child's stdin/stdout, Streamable HTTP and
//! legacy HTTP+SSE — with its own minimal HTTP/1.1 client (one `write` per request,
//! `TCP_NODELAY`, keep-alive, no pooling library), so the client costs a few microseconds
//! per call and is never what is measured. It starts the target process itself (so it
//! knows its pid for memory and the instant it started for cold start), runs bounded
//! phases, and emits one JSON line per measurement.
//!
//! - [`process`] — spawning a target in its own process group, ports, memory, stopping;
//! - [`http`] — the HTTP/1.1 connection and the SSE event parser;
//! - [`session`] — one MCP session over any wire (initialize, requests, notifications);
//! - [`measure`] — the phases (cold start, tools/list, sequential calls, in-flight levels,
//!   many sessions, memory, soak) and their JSON lines;
//! - [`relay`] — `loadgen relay`, the null proxy of the floor rows;
//! - [`stats`] — percentiles;
//! - [`table`] — reads the JSON lines of a matrix run and prints the Markdown summary.
//!
//! Everything here talks to 127.0.0.1 only, and every wait is bounded.

pub mod http;
pub mod measure;
pub mod process;
pub mod relay;
pub mod session;
pub mod stats;
pub mod table;
