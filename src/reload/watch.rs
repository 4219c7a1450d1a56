//! Watches the configuration files' directories and reloads, debounced, when either file is
//! written, created, renamed over or removed.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Reloader;

/// Quiet time after the last event before reloading (editors write in several steps).
const DEBOUNCE: Duration = Duration::from_millis(300);

impl Reloader {
    /// Starts watching; the watch ends when `shutdown` is cancelled. Files that do not
    /// exist yet are watched for through their directory.
    pub fn watch(self: &Arc<Self>, shutdown: CancellationToken) -> notify::Result<()> {
        let (mcp, service) = self.paths();
        let wanted: Vec<PathBuf> = [mcp, service]
            .into_iter()
            .flatten()
            .chain(self.given_mcp_config.clone())
            .chain(self.given_service_config.clone())
            .map(|p| absolute(&p))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let names: HashSet<OsString> = wanted
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_owned()))
            .collect();
        let directories: HashSet<PathBuf> = wanted
            .iter()
            .filter_map(|p| p.parent().map(Path::to_path_buf))
            .collect();

        let (events_tx, mut events) = mpsc::unbounded_channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                if event.kind.is_access() {
                    return;
                }
                let ours = event
                    .paths
                    .iter()
                    .any(|p| p.file_name().is_some_and(|n| names.contains(n)));
                if ours {
                    let _ = events_tx.send(());
                }
            })?;
        for directory in &directories {
            watcher.watch(directory, RecursiveMode::NonRecursive)?;
        }
        tracing::info!(directories = ?directories, "watching the configuration for changes");
        let reloader = self.clone();
        tokio::spawn(async move {
            // The watcher lives as long as this task.
            let _watcher = watcher;
            loop {
                tokio::select! {
                    event = events.recv() => if event.is_none() { break },
                    _ = shutdown.cancelled() => break,
                }
                // Let the burst settle.
                loop {
                    tokio::select! {
                        more = tokio::time::timeout(DEBOUNCE, events.recv()) => match more {
                            Ok(Some(())) => continue,
                            Ok(None) => return,
                            Err(_) => break,
                        },
                        _ = shutdown.cancelled() => return,
                    }
                }
                let _ = reloader.reload("a configuration file changed").await;
            }
        });
        Ok(())
    }
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|dir| dir.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}
