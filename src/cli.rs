//! The command line: flags, the environment variables the seed documents, and the rule that
//! decides which faces run.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  mcp-orch --mode proxy --port 3000
      Serve every server of ./mcp-config.json at http://127.0.0.1:3000/mcp (+ REST).
  mcp-orch --mcp-config ~/mcp-config.json
      Launched by an MCP client (stdin is a pipe): speak MCP on stdin/stdout.
  PROXY_PORT=3000 mcp-orch
      From a client: MCP on stdio AND HTTP on port 3000.
  mcp-orch --stdio --port 3000
      Force both faces.
  curl localhost:3000/tools ; curl -X POST localhost:3000/tools/everything.echo -d '{\"message\":\"hi\"}'

Faces:
  stdio  on with --stdio; off with --no-stdio; otherwise on when --port is not given
         and stdin is not a terminal (i.e. an MCP client launched mcp-orch).
  HTTP   on when --port or PROXY_PORT is given, or when stdio is off (port from
         config.yaml, default 3000). Binds 127.0.0.1 unless --host says otherwise.

Config files (first found wins):
  --mcp-config FILE | ./mcp-config.json | ~/.config/mcp-orch/mcp-config.json | ./mcp-config.example.json
  --config FILE     | ./config.yaml     | ~/.config/mcp-orch/config.yaml     | built-in defaults

Environment: PROXY_PORT, LOG_LEVEL, RUST_LOG, and ${VAR} references inside both files.";

/// mcp-orch: many MCP servers served as one, over stdio, Streamable HTTP and REST.
#[derive(Debug, Clone, Parser)]
#[command(name = "mcp-orch", version, about, after_long_help = EXAMPLES, after_help = "Run with --help for examples.")]
pub struct Cli {
    /// proxy: serve the merged servers; batch: also accept LLM-planned batches.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// HTTP port (also PROXY_PORT). Giving --port means "serve HTTP" and turns off the
    /// automatic stdio face.
    #[arg(long)]
    pub port: Option<u16>,
    /// Address to bind (default 127.0.0.1, or server.host in config.yaml).
    #[arg(long)]
    pub host: Option<String>,
    /// Service settings (config.yaml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// MCP servers to aggregate (mcp-config.json).
    #[arg(long = "mcp-config", value_name = "FILE")]
    pub mcp_config: Option<PathBuf>,
    /// Serve MCP on stdin/stdout.
    #[arg(long, conflicts_with = "no_stdio")]
    pub stdio: bool,
    /// Never serve MCP on stdin/stdout.
    #[arg(long)]
    pub no_stdio: bool,
    /// Log level: error, warn, info, debug, trace (also LOG_LEVEL; RUST_LOG overrides).
    #[arg(long, env = "LOG_LEVEL")]
    pub log_level: Option<String>,
}

/// `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    Proxy,
    Batch,
}

/// Which faces run, decided once at startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Faces {
    pub stdio: bool,
    /// The HTTP port, when HTTP runs.
    pub http_port: Option<u16>,
}

/// The face rule (see `--help`). `env_port` is PROXY_PORT, `config_port` the config file's.
pub fn choose_faces(
    cli: &Cli,
    env_port: Option<u16>,
    config_port: u16,
    stdin_is_terminal: bool,
) -> Faces {
    let stdio = if cli.stdio {
        true
    } else if cli.no_stdio {
        false
    } else {
        cli.port.is_none() && !stdin_is_terminal
    };
    let explicit = cli.port.or(env_port);
    let http_port = match explicit {
        Some(port) => Some(port),
        None if stdio => None,
        None => Some(config_port),
    };
    Faces { stdio, http_port }
}

/// Whether stdin is a terminal (a person typing, not an MCP client).
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// Reads `PROXY_PORT`; a value that is not a port is an error naming the variable.
pub fn proxy_port_env() -> Result<Option<u16>, String> {
    match std::env::var("PROXY_PORT") {
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => value
            .trim()
            .parse::<u16>()
            .map(Some)
            .map_err(|_| format!("PROXY_PORT={value:?} is not a port number (1-65535)")),
        Err(_) => Ok(None),
    }
}

/// How many threads run mcp-orch's own work: `TOKIO_WORKER_THREADS` when it is a positive
/// number, else half the CPUs (at least one). mcp-orch's work per message is small next to
/// its servers', which run as its children on the same machine: on two cores one worker
/// did ~15 % more calls/s at 32 in flight with half the context switches, same p50
/// (README, Performance). A value that is not a positive number comes back as a warning
/// (tokio itself would panic on it).
pub fn worker_threads(env: Option<&str>, cpus: usize) -> (usize, Option<String>) {
    let default = (cpus / 2).max(1);
    match env.map(str::trim) {
        None | Some("") => (default, None),
        Some(value) => match value.parse::<usize>() {
            Ok(n) if n > 0 => (n, None),
            _ => (
                default,
                Some(format!(
                    "TOKIO_WORKER_THREADS={value:?} is not a positive number; using {default}"
                )),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_threads_default_to_half_the_cpus_and_follow_the_variable() {
        assert_eq!(worker_threads(None, 1), (1, None));
        assert_eq!(worker_threads(None, 2), (1, None));
        assert_eq!(worker_threads(None, 8), (4, None));
        assert_eq!(worker_threads(Some(" "), 8), (4, None));
        assert_eq!(worker_threads(Some("3"), 2), (3, None));
        let (n, warning) = worker_threads(Some("0"), 4);
        assert_eq!(n, 2);
        assert!(warning.is_some_and(|w| w.contains("TOKIO_WORKER_THREADS=\"0\"")));
        assert!(worker_threads(Some("many"), 2).1.is_some());
    }

    fn cli(args: &[&str]) -> Cli {
        let mut all = vec!["mcp-orch"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn launched_by_a_client_speaks_stdio_only() {
        let faces = choose_faces(&cli(&["--mode", "proxy"]), None, 3000, false);
        assert_eq!(
            faces,
            Faces {
                stdio: true,
                http_port: None
            }
        );
    }

    #[test]
    fn the_seed_snippet_speaks_stdio_and_http() {
        let faces = choose_faces(&cli(&["--mode", "proxy"]), Some(3000), 3000, false);
        assert_eq!(
            faces,
            Faces {
                stdio: true,
                http_port: Some(3000)
            }
        );
    }

    #[test]
    fn a_port_flag_means_http_only_even_without_a_terminal() {
        let faces = choose_faces(
            &cli(&["--mode", "proxy", "--port", "4000"]),
            None,
            3000,
            false,
        );
        assert_eq!(
            faces,
            Faces {
                stdio: false,
                http_port: Some(4000)
            }
        );
    }

    #[test]
    fn a_terminal_gets_http_on_the_config_port() {
        let faces = choose_faces(&cli(&[]), None, 3100, true);
        assert_eq!(
            faces,
            Faces {
                stdio: false,
                http_port: Some(3100)
            }
        );
    }

    #[test]
    fn explicit_flags_win() {
        let faces = choose_faces(&cli(&["--stdio", "--port", "4000"]), None, 3000, true);
        assert_eq!(
            faces,
            Faces {
                stdio: true,
                http_port: Some(4000)
            }
        );
        let faces = choose_faces(&cli(&["--no-stdio"]), None, 3000, false);
        assert_eq!(
            faces,
            Faces {
                stdio: false,
                http_port: Some(3000)
            }
        );
        assert!(Cli::try_parse_from(["mcp-orch", "--stdio", "--no-stdio"]).is_err());
    }

    #[test]
    fn modes_parse() {
        assert_eq!(cli(&["--mode", "batch"]).mode, Some(ModeArg::Batch));
        assert!(Cli::try_parse_from(["mcp-orch", "--mode", "nope"]).is_err());
    }
}
