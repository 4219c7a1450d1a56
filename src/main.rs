//! The `mcp-orch` binary: parse the command line, set up logging, run.

use std::process::ExitCode;

use clap::Parser;
use mcp_orch::downstream::guard;
use mcp_orch::{app, cli::Cli, telemetry};

fn main() -> ExitCode {
    // `mcp-orch <GUARD_ARG> command args…`: act as the child guard of one stdio server.
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == guard::GUARD_ARG) {
        let code = guard::run(args.collect());
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let cli = Cli::parse();
    if let Some(warning) = telemetry::init(cli.log_level.as_deref()) {
        tracing::warn!("{warning}");
    }
    // TLS towards remote servers uses rustls with the ring provider.
    mcp_orch::downstream::ensure_tls_provider();
    // stdio servers run behind this same binary acting as their guard.
    if let Ok(program) = std::env::current_exe() {
        mcp_orch::downstream::use_child_guard(program);
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let variable = std::env::var("TOKIO_WORKER_THREADS").ok();
    let (workers, warning) = mcp_orch::cli::worker_threads(variable.as_deref(), cpus);
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
    let variable = std::env::var("MCP_ORCH_IDLE_POLL_US").ok();
    let (idle_poll, warning) = app::runtime::idle_poll(variable.as_deref());
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
    let runtime = match app::runtime::build(workers, idle_poll) {
        Ok((runtime, polling)) => {
            tracing::debug!(workers, polling, "async runtime ready");
            runtime
        }
        Err(error) => {
            eprintln!("mcp-orch: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        let plan = app::plan(&cli)?;
        app::run(plan).await
    });
    // Tasks still parked on stdin must not hold the process open.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mcp-orch: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
