//! Non-fatal findings while loading a config file: keys mcp-orch does not know (real client
//! configs carry many) and `${VAR}` references to unset variables. They are returned with the
//! parsed config so the caller decides how to log them; none of them ever contains a value.

use std::fmt;
use std::path::PathBuf;

use super::ExpandWarning;

/// Something in a config file that was accepted but deserves the user's attention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The file, as given (or `<mcp-config.json>` / `<config.yaml>` for parsed strings).
    pub file: PathBuf,
    /// Key path, e.g. `mcpServers.github.autoApprove`.
    pub path: String,
    /// What was found there.
    pub kind: WarningKind,
}

/// The kinds of [`ConfigWarning`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarningKind {
    /// A key mcp-orch does not use; it was ignored. The key is the last element of `path`.
    UnknownKey,
    /// A known key that does not apply here (e.g. `args` on a remote server); it was ignored.
    NotApplicable {
        /// Why it does not apply, e.g. "`args` only applies to servers with `command`".
        reason: String,
    },
    /// `${variable}` without a default referenced an unset variable; it expanded to `""`.
    UnsetVariable {
        /// The variable name (never its value).
        variable: String,
    },
}

impl ConfigWarning {
    pub(super) fn unset(file: &std::path::Path, warning: ExpandWarning) -> Self {
        ConfigWarning {
            file: file.to_path_buf(),
            path: warning.path,
            kind: WarningKind::UnsetVariable {
                variable: warning.variable,
            },
        }
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(top level)"
        } else {
            &self.path
        };
        write!(f, "{}: at `{path}`: ", self.file.display())?;
        match &self.kind {
            WarningKind::UnknownKey => f.write_str("unknown key, ignored"),
            WarningKind::NotApplicable { reason } => write!(f, "ignored: {reason}"),
            WarningKind::UnsetVariable { variable } => write!(
                f,
                "environment variable `{variable}` is not set; `${{{variable}}}` expanded to an empty string"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line_naming_file_and_path() {
        let unknown = ConfigWarning {
            file: PathBuf::from("mcp-config.json"),
            path: "mcpServers.a.autoApprove".into(),
            kind: WarningKind::UnknownKey,
        };
        assert_eq!(
            unknown.to_string(),
            "mcp-config.json: at `mcpServers.a.autoApprove`: unknown key, ignored"
        );
        let unset = ConfigWarning::unset(
            std::path::Path::new("config.yaml"),
            ExpandWarning {
                path: "llm.api_key".into(),
                variable: "KEY".into(),
            },
        );
        assert_eq!(
            unset.to_string(),
            "config.yaml: at `llm.api_key`: environment variable `KEY` is not set; \
             `${KEY}` expanded to an empty string"
        );
    }
}
