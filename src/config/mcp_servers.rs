//! `mcp-config.json`: the `mcpServers` map in the format MCP clients (Claude Desktop, Cursor,
//! Cline, VS Code, Claude Code) already use, plus mcp-orch's own per-server keys
//! (`prefix`, `timeout`, `startupTimeout`, `tools`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::expand::expand_tree;
use super::server_entry::parse_entry;
use super::syntax::parse_json;
use super::tree::{Walk, child, field};
use super::{ConfigError, ConfigWarning};

/// How `mcp-config.json` is named in messages when it was parsed from a string.
const UNNAMED: &str = "<mcp-config.json>";

/// All servers of one `mcp-config.json`, sorted by name (the catalogue order).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct McpServers {
    /// The configured servers, disabled ones included, sorted by name.
    pub servers: Vec<ServerEntry>,
    /// The file they came from, for messages (`None` when parsed from a string).
    pub source: Option<PathBuf>,
    /// Accepted-but-suspicious findings (unknown keys such as `autoApprove`, unset `${VAR}`s),
    /// for the caller to log. Each `Display`s as one line naming file and key path.
    pub warnings: Vec<ConfigWarning>,
}

/// One entry of `mcpServers`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerEntry {
    /// The key under `mcpServers`; unique, non-empty.
    pub name: String,
    /// How to reach the server.
    pub transport: TransportSpec,
    /// `"disabled": true` keeps the entry in the file but starts nothing.
    pub disabled: bool,
    /// Namespace for its tools/prompts; `None` means "use `name`", `Some("")` means unprefixed.
    pub prefix: Option<String>,
    /// Per-call timeout (`"timeout"`, seconds or a duration string); `None` = the global default.
    pub timeout: Option<Duration>,
    /// Time allowed to start and finish `initialize` (`"startupTimeout"`); `None` = global default.
    pub startup_timeout: Option<Duration>,
    /// Which of its tools are exposed (`"tools": {"include": [...], "exclude": [...]}`).
    pub tools: ToolFilter,
    /// `"isolation"`: one process shared by every upstream session (default), or one per
    /// session so server→client requests are always attributed exactly.
    pub isolation: Isolation,
    /// `"maxSessions"`: cap on per-session processes when isolated (default 16).
    pub max_sessions: usize,
    /// `"capabilities"`: which client capabilities mcp-orch advertises to this server on its
    /// clients' behalf (all on by default).
    pub capabilities: ForwardedCapabilities,
    /// `"toolTimeouts"`: per-tool call timeouts (original tool names) overriding `timeout`.
    pub tool_timeouts: BTreeMap<String, Duration>,
    /// `"maxTimeout"`: ceiling on a call even while progress extends it; `None` = global.
    pub max_timeout: Option<Duration>,
}

/// How a server's process is shared between upstream sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// One long-lived process (or remote session) for everyone.
    #[default]
    Shared,
    /// One per upstream session, started on its first use, stopped when it ends.
    Session,
}

/// Client capabilities advertised to a server; requests of a kind turned off are never
/// relayed (the server should not send them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardedCapabilities {
    pub sampling: bool,
    pub elicitation: bool,
    pub roots: bool,
}

impl Default for ForwardedCapabilities {
    fn default() -> Self {
        ForwardedCapabilities {
            sampling: true,
            elicitation: true,
            roots: true,
        }
    }
}

/// Where a server lives and how mcp-orch talks to it.
///
/// `Debug` prints the names of `env` variables and `headers` but not their values, which
/// routinely hold tokens.
#[derive(Clone, PartialEq)]
pub enum TransportSpec {
    /// A child process speaking MCP on stdin/stdout (`command`, `args`, `env`, `cwd`).
    Stdio {
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, String>,
        cwd: Option<PathBuf>,
    },
    /// A remote Streamable HTTP endpoint (`url`, `headers`; `type` absent, `http`,
    /// `streamable-http`, `streamableHttp` or `streamable_http`).
    StreamableHttp {
        url: String,
        headers: BTreeMap<String, String>,
    },
    /// A remote legacy HTTP+SSE endpoint (`"type": "sse"`, or a URL whose path ends in `/sse`).
    Sse {
        url: String,
        headers: BTreeMap<String, String>,
    },
}

impl TransportSpec {
    /// Short name for status output: `stdio`, `streamable-http`, `sse`.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportSpec::Stdio { .. } => "stdio",
            TransportSpec::StreamableHttp { .. } => "streamable-http",
            TransportSpec::Sse { .. } => "sse",
        }
    }
}

impl std::fmt::Debug for TransportSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn names(map: &BTreeMap<String, String>) -> Vec<&str> {
            map.keys().map(String::as_str).collect()
        }
        match self {
            TransportSpec::Stdio {
                command,
                args,
                env,
                cwd,
            } => f
                .debug_struct("Stdio")
                .field("command", command)
                .field("args", args)
                .field("env (values redacted)", &names(env))
                .field("cwd", cwd)
                .finish(),
            TransportSpec::StreamableHttp { url, headers } => f
                .debug_struct("StreamableHttp")
                .field("url", url)
                .field("headers (values redacted)", &names(headers))
                .finish(),
            TransportSpec::Sse { url, headers } => f
                .debug_struct("Sse")
                .field("url", url)
                .field("headers (values redacted)", &names(headers))
                .finish(),
        }
    }
}

/// Per-server tool filter. Patterns are exact names or contain `*` wildcards.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolFilter {
    /// When set, only tools matching one of these are exposed (`"include": []` exposes none).
    pub include: Option<Vec<String>>,
    /// Tools matching one of these are never exposed (applied after `include`).
    pub exclude: Vec<String>,
}

impl ToolFilter {
    /// Whether a tool with this original (downstream) name is exposed.
    pub fn allows(&self, tool: &str) -> bool {
        let included = match &self.include {
            Some(patterns) => patterns.iter().any(|p| wildcard_match(p, tool)),
            None => true,
        };
        included && !self.exclude.iter().any(|p| wildcard_match(p, tool))
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters (including
/// none) and everything else matches itself.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was in the pattern, and where in the text it started matching.
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            backtrack = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star, start)) = backtrack {
            p = star + 1;
            t = start + 1;
            backtrack = Some((star, start + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Reads, expands and validates an `mcp-config.json` file.
pub fn load_mcp_servers(path: &Path) -> Result<McpServers, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    parse_mcp_servers(&text, Some(path))
}

/// Parses `mcp-config.json` text; `source` names the file in error messages.
pub fn parse_mcp_servers(text: &str, source: Option<&Path>) -> Result<McpServers, ConfigError> {
    parse_mcp_servers_with(text, source, &|name| std::env::var(name).ok())
}

/// [`parse_mcp_servers`] with `${VAR}` lookups answered by `lookup` instead of the process
/// environment, so tests and embedders control what variables exist.
pub fn parse_mcp_servers_with(
    text: &str,
    source: Option<&Path>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<McpServers, ConfigError> {
    let file = source.unwrap_or(Path::new(UNNAMED));
    let mut tree = parse_json(text, file)?;
    let expansion = expand_tree(&mut tree, lookup);
    let mut walk = Walk::new(file, false, expansion);
    let root = walk.object("", &tree, "an object with a `mcpServers` key")?;
    walk.unknown_keys("", root, &["mcpServers"]);
    let base_dir = source.and_then(Path::parent);
    let mut servers = Vec::new();
    if let Some(entries) = field(root, "mcpServers") {
        let entries = walk.object(
            "mcpServers",
            entries,
            "an object mapping server names to server entries",
        )?;
        for (name, entry) in entries {
            let path = child("mcpServers", name);
            servers.push(parse_entry(&mut walk, name, &path, entry, base_dir)?);
        }
    }
    servers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(McpServers {
        servers,
        source: source.map(Path::to_path_buf),
        warnings: walk.into_warnings(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::WarningKind;
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "GITHUB_TOKEN" => Some("ghp_secret".into()),
            "HOME" => Some("/home/u".into()),
            _ => None,
        }
    }

    fn parse(json: &str) -> McpServers {
        match parse_mcp_servers_with(json, None, &env) {
            Ok(servers) => servers,
            Err(err) => panic!("{json}: {err}"),
        }
    }

    fn warning_paths(servers: &McpServers) -> Vec<(&str, &WarningKind)> {
        servers
            .warnings
            .iter()
            .map(|w| (w.path.as_str(), &w.kind))
            .collect()
    }

    #[test]
    fn empty_configs_have_no_servers() {
        for json in [
            "{}",
            r#"{"mcpServers": {}}"#,
            r#"{"mcpServers": null}"#,
            "",
            "  \n",
        ] {
            let parsed = parse(json);
            assert!(parsed.servers.is_empty(), "{json}");
            assert!(parsed.warnings.is_empty(), "{json}");
            assert_eq!(parsed.source, None);
        }
    }

    #[test]
    fn claude_desktop_cursor_cline_style_configs_parse_with_warnings() {
        let parsed = parse(
            r#"{
              "mcpServers": {
                "a": {"command": "npx", "args": ["-y", "x"], "env": {"K": "${K}"},
                      "autoApprove": [], "disabled": false},
                "github": {"command": "docker", "args": ["run", "-i", "--rm", "ghcr.io/github/github-mcp-server"],
                           "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "${GITHUB_TOKEN}"},
                           "alwaysAllow": ["get_me"], "transportType": "stdio", "description": "GitHub"},
                "remote": {"url": "https://example.com/sse", "headers": {"Authorization": "Bearer ${GITHUB_TOKEN}"}},
                "windsurf": {"serverUrl": "https://example.com/mcp"},
                "vscode": {"type": "http", "url": "https://example.com/mcp"},
                "off": {"command": "uvx", "args": ["mcp-server-fetch"], "disabled": true}
              },
              "globalShortcut": "Ctrl+Space"
            }"#,
        );
        let names: Vec<&str> = parsed.servers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["a", "github", "off", "remote", "vscode", "windsurf"]
        );
        let kinds: Vec<&str> = parsed.servers.iter().map(|s| s.transport.kind()).collect();
        assert_eq!(
            kinds,
            [
                "stdio",
                "stdio",
                "stdio",
                "sse",
                "streamable-http",
                "streamable-http"
            ]
        );
        assert!(parsed.servers[2].disabled);
        match &parsed.servers[1].transport {
            TransportSpec::Stdio { env, .. } => {
                assert_eq!(env["GITHUB_PERSONAL_ACCESS_TOKEN"], "ghp_secret");
            }
            other => panic!("{other:?}"),
        }
        let unset = WarningKind::UnsetVariable {
            variable: "K".into(),
        };
        assert_eq!(
            warning_paths(&parsed),
            vec![
                ("mcpServers.a.env.K", &unset),
                ("globalShortcut", &WarningKind::UnknownKey),
                ("mcpServers.a.autoApprove", &WarningKind::UnknownKey),
                ("mcpServers.github.alwaysAllow", &WarningKind::UnknownKey),
                ("mcpServers.github.description", &WarningKind::UnknownKey),
                ("mcpServers.github.transportType", &WarningKind::UnknownKey),
            ]
        );
        let shown = format!("{:?} {}", parsed, parsed.warnings[0]);
        assert!(!shown.contains("ghp_secret"), "{shown}");
    }

    #[test]
    fn servers_are_sorted_by_name() {
        let parsed = parse(
            r#"{"mcpServers": {"zeta": {"command": "z"}, "Alpha": {"command": "a"},
                              "beta": {"command": "b"}}}"#,
        );
        let names: Vec<&str> = parsed.servers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Alpha", "beta", "zeta"]);
    }

    #[test]
    fn top_level_shape_errors() {
        let err = |json: &str| match parse_mcp_servers_with(json, None, &env) {
            Err(err) => err.to_string(),
            Ok(parsed) => panic!("{json}: parsed {parsed:?}"),
        };
        assert_eq!(
            err("[]"),
            "<mcp-config.json>: at `(top level)`: expected an object with a `mcpServers` key, \
             found an array"
        );
        assert_eq!(
            err(r#"{"mcpServers": [{"command": "x"}]}"#),
            "<mcp-config.json>: at `mcpServers`: expected an object mapping server names to \
             server entries, found an array"
        );
        assert_eq!(
            err(r#"{"mcpServers": {"my.server": {"command": "x", "args": [1]}}}"#),
            "<mcp-config.json>: at `mcpServers[\"my.server\"].args[0]`: expected a string, \
             found a number (1)"
        );
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        let err = parse_mcp_servers_with(
            "{\"mcpServers\": {\n  \"a\": {\"command\": \"x\",}\n}}",
            Some(Path::new("conf/mcp-config.json")),
            &env,
        )
        .unwrap_err();
        match &err {
            ConfigError::Syntax {
                file, line, column, ..
            } => {
                assert_eq!(file, Path::new("conf/mcp-config.json"));
                assert_eq!((*line, *column), (2, 24));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            err.to_string().starts_with("conf/mcp-config.json:2:24: "),
            "{err}"
        );
    }

    #[test]
    fn load_reads_the_file_and_reports_missing_files() {
        let dir = std::env::temp_dir().join(format!("mcp-orch-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("mcp-config.json");
        std::fs::write(
            &path,
            r#"{"mcpServers": {"a": {"command": "x", "cwd": "sub"}}}"#,
        )
        .unwrap();
        let loaded = load_mcp_servers(&path).unwrap();
        assert_eq!(loaded.source.as_deref(), Some(path.as_path()));
        match &loaded.servers[0].transport {
            TransportSpec::Stdio { cwd, .. } => {
                assert_eq!(cwd.as_deref(), Some(dir.join("sub").as_path()))
            }
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
        let err = load_mcp_servers(&path).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
        assert!(
            err.to_string()
                .starts_with(&format!("{}: cannot read: ", path.display()))
        );
    }

    #[test]
    fn tool_filter_wildcards() {
        let all = ToolFilter::default();
        assert!(all.allows("anything"));
        let filter = ToolFilter {
            include: Some(vec!["get_*".into(), "search".into(), "*_issue".into()]),
            exclude: vec!["get_secret*".into(), "delete_issue".into()],
        };
        assert!(filter.allows("get_me"));
        assert!(filter.allows("get_"));
        assert!(filter.allows("search"));
        assert!(filter.allows("create_issue"));
        assert!(!filter.allows("search_code"));
        assert!(!filter.allows("get_secret_key"));
        assert!(!filter.allows("delete_issue"));
        assert!(!filter.allows("list"));
        let none = ToolFilter {
            include: Some(Vec::new()),
            exclude: Vec::new(),
        };
        assert!(!none.allows("x"));
        let exclude_only = ToolFilter {
            include: None,
            exclude: vec!["*write*".into()],
        };
        assert!(exclude_only.allows("read_file"));
        assert!(!exclude_only.allows("write_file"));
        assert!(!exclude_only.allows("overwrite"));
    }

    #[test]
    fn wildcard_matching() {
        let cases = [
            ("*", "", true),
            ("*", "abc", true),
            ("", "", true),
            ("", "a", false),
            ("abc", "abc", true),
            ("abc", "abcd", false),
            ("a*c", "ac", true),
            ("a*c", "abbbc", true),
            ("a*c", "abcb", false),
            ("a*b*c", "aXbYbZc", true),
            ("**a**", "bab", true),
            ("*ab", "aab", true),
            ("a*a*a", "aaaa", true),
            ("a*a*a", "aa", false),
            ("é*ü", "éxxü", true),
            ("get?", "get?", true),
            ("get?", "gets", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                wildcard_match(pattern, text),
                expected,
                "{pattern} ~ {text}"
            );
        }
    }
}
