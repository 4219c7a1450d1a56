//! Which files to read when the command line names none.
//!
//! `mcp-config.json`: `--mcp-config` | `./mcp-config.json` | `~/.config/mcp-orch/mcp-config.json`
//! | `./mcp-config.example.json` (the quick start) | none (no servers).
//! `config.yaml`: `--config` | `./config.yaml` | `~/.config/mcp-orch/config.yaml` | defaults.

use std::path::{Path, PathBuf};

/// Where a file came from, for the startup log.
#[derive(Debug, Clone, PartialEq)]
pub enum Located {
    /// Named on the command line (must exist).
    Given(PathBuf),
    /// Found by the search order.
    Found(PathBuf),
    /// Nothing found.
    None,
}

impl Located {
    /// The path to read, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Located::Given(path) | Located::Found(path) => Some(path),
            Located::None => None,
        }
    }
}

fn user_config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("mcp-orch"));
    }
    std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(|home| PathBuf::from(home).join(".config").join("mcp-orch"))
}

fn first_existing(candidates: Vec<PathBuf>) -> Located {
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .map(Located::Found)
        .unwrap_or(Located::None)
}

/// Finds `mcp-config.json`.
pub fn locate_mcp_config(given: Option<&Path>) -> Located {
    if let Some(path) = given {
        return Located::Given(path.to_owned());
    }
    let mut candidates = vec![PathBuf::from("mcp-config.json")];
    if let Some(dir) = user_config_dir() {
        candidates.push(dir.join("mcp-config.json"));
    }
    candidates.push(PathBuf::from("mcp-config.example.json"));
    first_existing(candidates)
}

/// Finds `config.yaml`.
pub fn locate_service_config(given: Option<&Path>) -> Located {
    if let Some(path) = given {
        return Located::Given(path.to_owned());
    }
    let mut candidates = vec![PathBuf::from("config.yaml")];
    if let Some(dir) = user_config_dir() {
        candidates.push(dir.join("config.yaml"));
    }
    first_existing(candidates)
}
