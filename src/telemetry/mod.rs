//! Logging: tracing to stderr only (stdout is the MCP channel in stdio mode).
//!
//! `RUST_LOG` (full `tracing` directives) wins; otherwise `LOG_LEVEL` / `--log-level`
//! (`error`, `warn`, `info`, `debug`, `trace`; case-insensitive) sets mcp-orch's level,
//! while the SDK and HTTP libraries stay at `warn` unless `RUST_LOG` says otherwise. Every
//! line goes through [`crate::security::RedactingStderr`], which blanks registered secrets
//! and bearer tokens.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Returns a warning to log when `level` was not understood.
pub fn init(level: Option<&str>) -> Option<String> {
    let (filter, warning) = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => match EnvFilter::try_new(&directives) {
            Ok(filter) => (filter, None),
            Err(e) => (
                default_filter("info"),
                Some(format!(
                    "RUST_LOG={directives:?} is not valid ({e}); using info"
                )),
            ),
        },
        _ => {
            let requested = level.unwrap_or("info").trim().to_ascii_lowercase();
            let level = match requested.as_str() {
                "error" | "warn" | "info" | "debug" | "trace" => requested.clone(),
                "warning" => "warn".to_owned(),
                "critical" | "fatal" => "error".to_owned(),
                _ => String::new(),
            };
            if level.is_empty() {
                (
                    default_filter("info"),
                    Some(format!(
                        "LOG_LEVEL={requested:?} is not one of error, warn, info, debug, trace; using info"
                    )),
                )
            } else {
                (default_filter(&level), None)
            }
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::security::RedactingStderr)
        .with_ansi(false)
        .with_target(false)
        .try_init();
    warning
}

fn default_filter(level: &str) -> EnvFilter {
    EnvFilter::new(format!("warn,mcp_orch={level},mcp_orch_fixture={level}"))
}
