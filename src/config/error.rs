//! The one error type of the config layer.

use std::path::PathBuf;

/// Why a configuration could not be used. Every variant names the file it is about.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid JSON/YAML.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A value has the wrong shape or an invalid value.
    #[error("{file}: at `{path}`: expected {expected}{found}")]
    Invalid {
        file: PathBuf,
        /// Key path, e.g. `mcpServers.github.args[1]`.
        path: String,
        /// What would have been accepted.
        expected: String,
        /// `", found ..."` or empty.
        found: String,
    },
}
