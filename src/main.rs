//! The `mcp-orch` binary: parse the command line, set up logging, run.

use std::process::ExitCode;

use clap::Parser;
use mcp_orch::{app, cli::Cli, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(warning) = telemetry::init(cli.log_level.as_deref()) {
        tracing::warn!("{warning}");
    }
    // TLS towards remote servers uses rustls with the ring provider.
    mcp_orch::downstream::ensure_tls_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
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
