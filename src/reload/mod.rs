//! Hot reload: when `mcp-config.json` or `config.yaml` changes on disk, or on
//! `POST /servers/reload`, the new configuration is read and validated; if it is invalid the
//! old one keeps serving and the error is reported (log, the reload response, `GET /servers`);
//! if it is valid, only what changed is touched — added servers start, removed ones stop,
//! changed ones restart, the rest keep their processes, connections and calls in flight —
//! and clients get `list_changed`.
//!
//! Editors save by writing a temporary file and renaming it over the original, so the
//! watcher watches the files' directories and reacts to any event naming either file,
//! debounced (a burst of events is one reload).

mod watch;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::config::{self, ConfigError, Located, McpServers, ServiceConfig};
use crate::downstream::SetChange;
use crate::router::{Router, RouterSettings};

/// What a successful reload did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadOutcome {
    #[serde(flatten)]
    pub change: SetChange,
    /// `config.yaml` keys that changed but only take effect after a restart of mcp-orch.
    pub needs_restart: Vec<&'static str>,
}

/// The reload history shown in `GET /servers`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReloadStatus {
    /// Which files are read.
    pub mcp_config: Option<String>,
    pub service_config: Option<String>,
    /// Successful reloads since start.
    pub reloads: u32,
    /// When the last reload attempt happened (RFC 3339).
    pub last_attempt: Option<String>,
    /// Why the last attempt was refused, while the old configuration keeps serving.
    pub last_error: Option<String>,
}

/// Reloads the configuration into the running router.
pub struct Reloader {
    router: Arc<Router>,
    /// What the command line named (`None` = search the usual places each time).
    given_mcp_config: Option<PathBuf>,
    given_service_config: Option<PathBuf>,
    /// The service settings in force, to tell which changes need a restart.
    current: Mutex<ServiceConfig>,
    status: Mutex<ReloadStatus>,
    /// One reload at a time.
    running: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("status", &self.status())
            .finish()
    }
}

impl Reloader {
    /// A reloader for the files the command line named (or the usual places).
    pub fn new(
        router: Arc<Router>,
        given_mcp_config: Option<PathBuf>,
        given_service_config: Option<PathBuf>,
        current: ServiceConfig,
    ) -> Arc<Reloader> {
        let reloader = Reloader {
            router,
            given_mcp_config,
            given_service_config,
            current: Mutex::new(current),
            status: Mutex::new(ReloadStatus::default()),
            running: tokio::sync::Mutex::new(()),
        };
        let (mcp, service) = reloader.paths();
        {
            let mut status = reloader.lock_status();
            status.mcp_config = mcp.map(|p| p.display().to_string());
            status.service_config = service.map(|p| p.display().to_string());
        }
        Arc::new(reloader)
    }

    /// The files a reload reads now.
    pub fn paths(&self) -> (Option<PathBuf>, Option<PathBuf>) {
        let mcp = config::locate_mcp_config(self.given_mcp_config.as_deref());
        let service = config::locate_service_config(self.given_service_config.as_deref());
        let path = |located: Located| located.path().map(|p| p.to_owned());
        (path(mcp), path(service))
    }

    /// The reload history.
    pub fn status(&self) -> ReloadStatus {
        self.lock_status().clone()
    }

    /// Reads, validates and applies the configuration. On error nothing changes.
    pub async fn reload(&self, trigger: &str) -> Result<ReloadOutcome, ConfigError> {
        let _one_at_a_time = self.running.lock().await;
        let now = crate::api::humantime_rfc3339(SystemTime::now());
        let loaded = self.load();
        let mut status = self.lock_status().clone();
        status.last_attempt = Some(now);
        let (servers, service) = match loaded {
            Ok(loaded) => loaded,
            Err(error) => {
                tracing::error!(%trigger, %error, "configuration not reloaded; the previous one keeps serving");
                status.last_error = Some(error.to_string());
                *self.lock_status() = status;
                return Err(error);
            }
        };
        for warning in service.warnings.iter().chain(&servers.warnings) {
            tracing::warn!("{warning}");
        }
        let needs_restart = {
            let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
            let needs = restart_only_changes(&current, &service);
            *current = service.clone();
            needs
        };
        for key in &needs_restart {
            tracing::warn!(
                key,
                "changed in config.yaml; takes effect when mcp-orch restarts"
            );
        }
        let change = self
            .router
            .apply_config(&servers.servers, RouterSettings::from_service(&service))
            .await;
        tracing::info!(%trigger, added = ?change.added, removed = ?change.removed,
            changed = ?change.changed, unchanged = change.unchanged.len(), "configuration reloaded");
        status.reloads += 1;
        status.last_error = None;
        let (mcp, service_path) = self.paths();
        status.mcp_config = mcp.map(|p| p.display().to_string());
        status.service_config = service_path.map(|p| p.display().to_string());
        *self.lock_status() = status;
        Ok(ReloadOutcome {
            change,
            needs_restart,
        })
    }

    fn load(&self) -> Result<(McpServers, ServiceConfig), ConfigError> {
        let (mcp, service) = self.paths();
        let service = match service {
            Some(path) => config::load_service_config(&path)?,
            None => ServiceConfig::default(),
        };
        let servers = match mcp {
            Some(path) => config::load_mcp_servers(&path)?,
            None => McpServers::default(),
        };
        Ok((servers, service))
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, ReloadStatus> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The `config.yaml` settings a running mcp-orch cannot change (listeners, auth, mode).
fn restart_only_changes(old: &ServiceConfig, new: &ServiceConfig) -> Vec<&'static str> {
    let mut keys = Vec::new();
    if old.server.host != new.server.host {
        keys.push("server.host");
    }
    if old.server.port != new.server.port {
        keys.push("server.port");
    }
    if old.server.mode != new.server.mode {
        keys.push("server.mode");
    }
    if old.security != new.security {
        keys.push("security");
    }
    if old.llm != new.llm {
        keys.push("llm");
    }
    if old.execution != new.execution {
        keys.push("execution");
    }
    keys
}
