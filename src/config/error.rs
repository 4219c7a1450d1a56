//! The one error type of the config layer.

use std::path::PathBuf;

/// Why a configuration could not be used. Every variant names the file it is about.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The path as given.
        file: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid JSON/YAML.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The path as given, or `<mcp-config.json>` / `<config.yaml>` for parsed strings.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message, one line, without the position.
        message: String,
    },
    /// A value has the wrong shape or an invalid value.
    #[error("{file}: at `{path}`: expected {expected}{found}")]
    Invalid {
        /// The path as given, or `<mcp-config.json>` / `<config.yaml>` for parsed strings.
        file: PathBuf,
        /// Key path, e.g. `mcpServers.github.args[1]`; keys that are not plain words are
        /// quoted (`mcpServers["my.server"]`); `(top level)` for the document itself.
        path: String,
        /// What would have been accepted.
        expected: String,
        /// `", found ..."`, `", but ..."` or empty. Never contains the value of a
        /// `${VAR}`-expanded string (its unexpanded text is shown instead).
        found: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_displays_as_one_line_naming_the_file() {
        let read = ConfigError::Read {
            file: "a/mcp-config.json".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        };
        assert_eq!(
            read.to_string(),
            "a/mcp-config.json: cannot read: no such file"
        );
        let syntax = ConfigError::Syntax {
            file: "config.yaml".into(),
            line: 3,
            column: 7,
            message: "expected `:`".into(),
        };
        assert_eq!(syntax.to_string(), "config.yaml:3:7: expected `:`");
        let invalid = ConfigError::Invalid {
            file: "mcp-config.json".into(),
            path: "mcpServers.github.timeout".into(),
            expected: "a number of seconds or a duration like \"30s\"".into(),
            found: ", found \"soon\"".into(),
        };
        assert_eq!(
            invalid.to_string(),
            "mcp-config.json: at `mcpServers.github.timeout`: expected a number of seconds or \
             a duration like \"30s\", found \"soon\""
        );
    }
}
