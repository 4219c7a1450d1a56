//! Wiring: from parsed command line to running faces, and the one shutdown path.
//!
//! Loads the configuration, starts the router (which starts every server concurrently),
//! runs the stdio and/or HTTP faces, and on SIGINT/SIGTERM or the end of the stdio session
//! stops accepting, closes the faces and stops every server so no child outlives us.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiState};
use crate::batch::{BatchService, BatchSettings};
use crate::cli::{self, Cli, Faces, ModeArg};
use crate::config::{self, ConfigError, Located, Mode, ServiceConfig};
use crate::reload::Reloader;
use crate::router::{Router, RouterSettings};
use crate::security::{self, Security};
use crate::upstream::{self, HttpFaceSettings};

mod http_front;
pub mod runtime;

pub use http_front::HttpFront;

/// Why mcp-orch could not run; `main` prints it and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl AppError {
    /// Process exit code: 2 for configuration and usage problems, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Config(_) | AppError::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// Everything decided before anything starts.
#[derive(Debug)]
pub struct Plan {
    /// `--mcp-config` and `--config` as given (reloads search again when absent).
    pub mcp_config_arg: Option<std::path::PathBuf>,
    pub service_config_arg: Option<std::path::PathBuf>,
    pub service: ServiceConfig,
    pub servers: config::McpServers,
    pub mode: Mode,
    pub faces: Faces,
    pub host: String,
}

/// Reads the configuration and decides faces; no side effects besides reading files.
pub fn plan(cli: &Cli) -> Result<Plan, AppError> {
    let service = match config::locate_service_config(cli.config.as_deref()) {
        Located::None => ServiceConfig::default(),
        located => {
            let path = located.path().map(|p| p.to_owned()).unwrap_or_default();
            tracing::info!(file = %path.display(), "service config");
            config::load_service_config(&path)?
        }
    };
    let servers = match config::locate_mcp_config(cli.mcp_config.as_deref()) {
        Located::None => {
            tracing::warn!(
                "no mcp-config.json found (looked for ./mcp-config.json, \
                 ~/.config/mcp-orch/mcp-config.json, ./mcp-config.example.json); serving no servers"
            );
            config::McpServers::default()
        }
        located => {
            let path = located.path().map(|p| p.to_owned()).unwrap_or_default();
            if path.ends_with("mcp-config.example.json") {
                tracing::info!(file = %path.display(), "no mcp-config.json: using the example config");
            } else {
                tracing::info!(file = %path.display(), "servers config");
            }
            config::load_mcp_servers(&path)?
        }
    };
    for warning in service.warnings.iter().chain(&servers.warnings) {
        tracing::warn!("{warning}");
    }
    let env_port = cli::proxy_port_env().map_err(AppError::Usage)?;
    let faces = cli::choose_faces(cli, env_port, service.server.port, cli::stdin_is_terminal());
    let mode = match cli.mode {
        Some(ModeArg::Proxy) => Mode::Proxy,
        Some(ModeArg::Batch) => Mode::Batch,
        None => service.server.mode,
    };
    let host = cli
        .host
        .clone()
        .unwrap_or_else(|| service.server.host.clone());
    Ok(Plan {
        mcp_config_arg: cli.mcp_config.clone(),
        service_config_arg: cli.config.clone(),
        service,
        servers,
        mode,
        faces,
        host,
    })
}

/// Runs until a shutdown signal or the end of the stdio session.
pub async fn run(plan: Plan) -> Result<(), AppError> {
    let started = Instant::now();
    security::register_secrets(&plan.service.security, &plan.servers.servers, &|name| {
        std::env::var(name).ok()
    });
    let settings = RouterSettings::from_service(&plan.service);
    let router = Router::start(&plan.servers.servers, settings);
    let batch = if plan.mode == Mode::Batch {
        match start_batch(&plan, router.clone()) {
            Ok(batch) => Some(batch),
            Err(error) => {
                router.shutdown().await;
                return Err(error);
            }
        }
    } else {
        None
    };
    let reloader = Reloader::new(
        router.clone(),
        plan.mcp_config_arg.clone(),
        plan.service_config_arg.clone(),
        plan.service.clone(),
    );
    // Shutdown runs in two steps: stop accepting (`shutdown`), let calls in flight finish
    // for up to `shutdown_grace`, then end every session (`sessions_end`) and stop servers.
    let shutdown = CancellationToken::new();
    let sessions_end = CancellationToken::new();
    spawn_startup_report(router.clone(), started);
    if plan.service.proxy.watch_config
        && let Err(error) = reloader.watch(shutdown.clone())
    {
        tracing::warn!(%error, "cannot watch the configuration files; reload with POST /servers/reload");
    }

    let mut http_task = None;
    if let Some(port) = plan.faces.http_port {
        match bind(&plan.host, port).await {
            Ok(listener) => {
                let state = ApiState {
                    router: router.clone(),
                    reloader: Some(reloader.clone()),
                    started,
                    batch: batch.clone(),
                };
                http_task = Some(tokio::spawn(serve_http(
                    listener,
                    state,
                    http_security(&plan),
                    shutdown.clone(),
                    sessions_end.clone(),
                )));
            }
            Err(error) if plan.faces.stdio => {
                tracing::error!(%error, "HTTP face not started; serving stdio only");
            }
            Err(error) => {
                if let Some(batch) = &batch {
                    batch.shutdown().await;
                }
                router.shutdown().await;
                return Err(error);
            }
        }
    } else if batch.is_some() {
        tracing::warn!(
            "batch mode without an HTTP face: the /batch endpoints need --port or PROXY_PORT"
        );
    }

    let stdio_task = plan.faces.stdio.then(|| {
        let router = router.clone();
        let shutdown = shutdown.clone();
        let sessions_end = sessions_end.clone();
        tokio::spawn(async move {
            if let Err(error) = upstream::serve_stdio(router, sessions_end).await {
                tracing::error!(%error, "stdio face failed");
            }
            // The client closed stdin: we were launched for it, so we are done.
            shutdown.cancel();
        })
    });

    tokio::select! {
        _ = shutdown.cancelled() => {}
        signal = wait_for_signal() => tracing::info!(signal, "shutting down"),
    }
    shutdown.cancel();
    // Running batches stop (recorded as interrupted) and cancel their calls first.
    if let Some(batch) = &batch {
        batch.shutdown().await;
    }
    let grace = plan.service.proxy.shutdown_grace;
    let unfinished = router.drain(grace).await;
    if unfinished > 0 {
        tracing::warn!(unfinished, grace = %crate::downstream::humanize(grace),
            "calls still in flight after the grace period; stopping anyway");
    }
    sessions_end.cancel();
    if let Some(task) = http_task {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    if let Some(task) = stdio_task {
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    router.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

async fn bind(host: &str, port: u16) -> Result<tokio::net::TcpListener, AppError> {
    let addr = format!("{}:{port}", bracket_ipv6(host));
    tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| AppError::Bind { addr, source })
}

fn bracket_ipv6(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// The security layer for the HTTP faces, from `security:` and the environment; logs what
/// is on and every warning (never a secret).
fn http_security(plan: &Plan) -> Arc<Security> {
    let (security, warnings) = Security::new(&plan.service.security, &plan.host, &|name| {
        std::env::var(name).ok()
    });
    tracing::info!("security: {}", security.summary());
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    Arc::new(security)
}

/// Serves the HTTP faces (REST, `/mcp`) behind the security layer until `shutdown`.
async fn serve_http(
    listener: tokio::net::TcpListener,
    state: ApiState,
    security: Arc<Security>,
    shutdown: CancellationToken,
    sessions_end: CancellationToken,
) {
    let router = state.router.clone();
    let batch_routes = if state.batch.is_some() {
        ", batch at /batch"
    } else {
        ""
    };
    let local: Option<SocketAddr> = listener.local_addr().ok();
    let mcp = upstream::mcp_service(
        router.clone(),
        HttpFaceSettings {
            max_body_bytes: security.max_body_bytes(),
            shutdown: sessions_end.child_token(),
        },
    );
    security.spawn_housekeeping(shutdown.child_token());
    let rest = api::routes(state).merge(upstream::sse::routes(router, sessions_end.child_token()));
    let header_timeout = security.header_timeout;
    let front = Arc::new(HttpFront::new(security, mcp, rest));
    if let Some(addr) = local {
        tracing::info!(
            "listening on http://{addr} (MCP at /mcp, REST at /tools, /servers, /health{batch_routes})"
        );
    }
    let handler = move |request, peer| front.clone().handle(request, peer);
    security::serve(listener, handler, header_timeout, shutdown).await;
}

/// Batch mode: the LLM provider (if configured) and the batch service with its history.
fn start_batch(plan: &Plan, router: Arc<Router>) -> Result<Arc<BatchService>, AppError> {
    let llm = crate::llm::build(&plan.service.llm, &|name| std::env::var(name).ok())
        .map_err(|error| AppError::Usage(format!("config.yaml: llm: {error}")))?;
    match &llm {
        Some(provider) => tracing::info!(llm = %provider.describe(), "batch mode: planner ready"),
        None => tracing::info!(
            "batch mode: no `llm.provider` configured; batches must come with a plan"
        ),
    }
    let settings = BatchSettings::from_config(&plan.service.execution, &plan.service.llm);
    let history = settings.history_db.clone();
    let service = BatchService::new(router, llm, settings)
        .map_err(|error| AppError::Usage(format!("execution.history_db: {error}")))?;
    tracing::info!(history = %history, "batch mode: history database open");
    Ok(service)
}

/// Logs, once, how long it took until every server was ready or failed.
fn spawn_startup_report(router: Arc<Router>, started: Instant) {
    tokio::spawn(async move {
        router.downstreams().settled().await;
        let servers = router.downstreams().snapshot();
        let ready = servers
            .iter()
            .filter(|s| s.status == crate::downstream::Status::Ready)
            .count();
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            ready,
            total = servers.len(),
            tools = router.catalog().len(),
            "startup complete"
        );
    });
}

async fn wait_for_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            std::future::pending::<()>().await;
            return "none";
        };
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "ctrl-c"
    }
}
