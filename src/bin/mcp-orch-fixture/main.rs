//! `mcp-orch-fixture`: a small, deterministic MCP server that mcp-orch's
//! integration tests, benchmarks and the official MCP conformance suite run
//! against.
//!
//! This file owns the command line, the start-up/shutdown behaviours tests
//! rely on (`--fail-start`, `--start-delay-ms`, `--exit-after-ms`,
//! `--spawn-grandchild`) and the two transports (stdio, Streamable HTTP).
//! `--page-size` and `--list-delay-ms` only shape the list requests.
//! What the server *does* lives in the modules:
//!
//! - [`server`]: the `ServerHandler` (capabilities, protocol versions,
//!   logging level, subscriptions, completion, list requests) and shared
//!   state;
//! - [`pagination`]: `nextCursor` paging of the list requests;
//! - [`tools`]: our own tools (`echo`, `add`, `sleep`, ...);
//! - [`dynamic`]: `add_tool`/`remove_tool`, which change the tool list at
//!   runtime, and the copy-on-write tool set;
//! - [`client_tools`]: tools that call back into the client (sampling,
//!   elicitation, roots, logging, notifications);
//! - [`conformance`]: the `test_*` tools the conformance suite expects;
//! - [`prompts`]: prompts; [`resources`]: resources, templates, completion.
//!
//! Diagnostics go to stderr only: in stdio mode stdout is the MCP channel.

mod client_tools;
mod conformance;
mod dynamic;
mod pagination;
mod prompts;
mod resources;
mod server;
mod tools;

use std::{process::Stdio, sync::Arc, time::Duration};

use clap::Parser;
use rmcp::{
    ServiceExt,
    service::ServerInitializeError,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};

use crate::server::{Fixture, FixtureConfig, Shared};

/// Exit code of `--fail-start`.
const FAIL_START_EXIT_CODE: i32 = 3;

/// A deterministic MCP server for mcp-orch's tests and benchmarks.
#[derive(Debug, Parser)]
#[command(name = "mcp-orch-fixture", version)]
struct Cli {
    /// Serve MCP over stdin/stdout (the default).
    #[arg(long, conflicts_with = "http")]
    stdio: bool,

    /// Serve Streamable HTTP at http://127.0.0.1:PORT/mcp instead of stdio
    /// (0 picks a free port). Prints `listening on 127.0.0.1:<port>` to stderr.
    #[arg(long, value_name = "PORT")]
    http: Option<u16>,

    /// The serverInfo.name to report.
    #[arg(long, default_value = "mcp-orch-fixture")]
    name: String,

    /// Add N extra trivial tools `tool_0000`..`tool_{N-1}` that echo `text`.
    #[arg(long, value_name = "N", default_value_t = 0)]
    tools: usize,

    /// Return at most N items per page from tools/list, prompts/list,
    /// resources/list and resources/templates/list, with a `nextCursor`
    /// (0: everything in one page).
    #[arg(long, value_name = "N", default_value_t = 0)]
    page_size: usize,

    /// Sleep this long before answering each tools/list.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    list_delay_ms: u64,

    /// Print a line to stderr and exit with code 3 immediately.
    #[arg(long)]
    fail_start: bool,

    /// Sleep this long before serving.
    #[arg(long, value_name = "MS")]
    start_delay_ms: Option<u64>,

    /// Exit (code 0) this long after start.
    #[arg(long, value_name = "MS")]
    exit_after_ms: Option<u64>,

    /// Spawn a long-lived `sleep 3600` child at start and print
    /// `grandchild pid <pid>` to stderr.
    #[arg(long)]
    spawn_grandchild: bool,

    /// Instructions to return from `initialize`.
    #[arg(long, value_name = "TEXT")]
    instructions: Option<String>,
}

fn main() {
    let cli = Cli::parse();
    if cli.fail_start {
        eprintln!("mcp-orch-fixture: failing on start as requested (--fail-start)");
        std::process::exit(FAIL_START_EXIT_CODE);
    }
    init_tracing();

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("mcp-orch-fixture: cannot start the tokio runtime: {error}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(run(cli));
    // Exit explicitly: in-flight tool calls (a long `sleep`) must not keep a
    // server whose client went away alive.
    std::process::exit(code);
}

/// Logs from rmcp and the fixture, to stderr; `RUST_LOG` overrides the level.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

async fn run(cli: Cli) -> i32 {
    if let Some(ms) = cli.exit_after_ms {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            eprintln!("mcp-orch-fixture: exiting after {ms}ms as requested (--exit-after-ms)");
            std::process::exit(0);
        });
    }
    if cli.spawn_grandchild {
        spawn_grandchild();
    }
    if let Some(ms) = cli.start_delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    let shared = Arc::new(Shared::new(FixtureConfig {
        name: cli.name,
        instructions: cli.instructions,
        extra_tools: cli.tools,
        page_size: cli.page_size,
        list_delay: Duration::from_millis(cli.list_delay_ms),
    }));
    let result = match cli.http {
        Some(port) => serve_http(shared, port).await,
        None => serve_stdio(shared).await,
    };
    match result {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("mcp-orch-fixture: {error}");
            1
        }
    }
}

/// Starts `sleep 3600` as our own child (same process group) so tests can
/// check that the proxy cleans up whole process groups. Its stdio is detached
/// so it never holds our MCP channel open.
fn spawn_grandchild() {
    let spawned = std::process::Command::new("sleep")
        .arg("3600")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        // The `Child` handle is dropped on purpose: that neither waits for nor
        // kills the process.
        Ok(child) => eprintln!("grandchild pid {}", child.id()),
        Err(error) => eprintln!("mcp-orch-fixture: cannot spawn grandchild: {error}"),
    }
}

/// stdin/stdout driven by the event loop when they are pipes or sockets (as when a client
/// launches the server), like mcp-orch's own stdio face; tokio's blocking-pool stdio
/// otherwise. The blocking pool costs thread hand-offs on every read and write, which made
/// this server the bottleneck of the throughput benchmarks.
fn stdio_transport() -> (
    mcp_orch::upstream::StdinReader,
    mcp_orch::upstream::StdoutWriter,
) {
    let (stdin, stdout, _, _) = mcp_orch::upstream::stdio_streams();
    (stdin, stdout)
}

/// Serves one client on stdin/stdout until stdin reaches EOF (also a clean
/// exit when it comes before `initialize`).
async fn serve_stdio(shared: Arc<Shared>) -> Result<(), String> {
    let service = match Fixture::new(shared).serve(stdio_transport()).await {
        Ok(service) => service,
        Err(ServerInitializeError::ConnectionClosed(_)) => {
            eprintln!("mcp-orch-fixture: stdin closed before initialize");
            return Ok(());
        }
        Err(error) => return Err(format!("stdio session did not start: {error}")),
    };
    service
        .waiting()
        .await
        .map_err(|error| format!("stdio session failed: {error}"))?;
    Ok(())
}

/// Serves Streamable HTTP at `http://127.0.0.1:<port>/mcp`, one `Fixture` per
/// session. Host and Origin must be loopback (DNS-rebinding protection).
async fn serve_http(shared: Arc<Shared>, port: u16) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|error| format!("cannot listen on 127.0.0.1:{port}: {error}"))?;
    let address = listener
        .local_addr()
        .map_err(|error| format!("cannot read the listening address: {error}"))?;
    eprintln!("listening on {address}");

    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(["localhost", "127.0.0.1", "::1"])
        .with_allowed_origins(["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]);
    let service = StreamableHttpService::new(
        move || Ok(Fixture::new(shared.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let app = axum::Router::new().nest_service("/mcp", service);
    // Without TCP_NODELAY the SSE body written after the response head waits for the
    // client's delayed ACK (~40 ms per request on Linux); benchmarks use this server as
    // the "direct HTTP" baseline, so it must not carry that stall.
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .await
        .map_err(|error| format!("HTTP server failed: {error}"))
}
