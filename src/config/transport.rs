//! How an `mcpServers` entry is reached: `command` (stdio child process) or `url` (remote),
//! and the inference rules — `command` → stdio; `url` whose path ends in `/sse` → legacy SSE;
//! any other `url` → Streamable HTTP; an explicit `type` must agree with what is given.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::tree::{Walk, child, field};
use super::{ConfigError, TransportSpec};

/// What `type` accepts, for its error message.
const TYPE_VALUES: &str =
    "one of `stdio`, `http`, `streamable-http`, `streamableHttp`, `streamable_http`, `sse`";

/// The `type` key, normalised.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Stdio,
    StreamableHttp,
    Sse,
}

/// Reads the transport keys of the entry at `path`; `base_dir` resolves a relative `cwd`.
pub(super) fn parse_transport(
    walk: &mut Walk,
    path: &str,
    map: &Map<String, Value>,
    base_dir: Option<&Path>,
) -> Result<TransportSpec, ConfigError> {
    let key = |k: &str| child(path, k);
    let kind = match field(map, "type") {
        Some(v) => Some(match v.as_str() {
            Some("stdio") => Kind::Stdio,
            Some("http" | "streamable-http" | "streamableHttp" | "streamable_http") => {
                Kind::StreamableHttp
            }
            Some("sse") => Kind::Sse,
            _ => return Err(walk.invalid(&key("type"), TYPE_VALUES, Some(v))),
        }),
        None => None,
    };
    let url_key = match (field(map, "url"), field(map, "serverUrl")) {
        (Some(_), Some(_)) => {
            return Err(walk.invalid(
                &key("serverUrl"),
                "either `url` or `serverUrl`, not both",
                None,
            ));
        }
        (Some(_), None) => Some("url"),
        (None, Some(_)) => Some("serverUrl"),
        (None, None) => None,
    };
    let has_command = field(map, "command").is_some();
    match (has_command, url_key) {
        (true, Some(_)) => {
            return Err(walk.invalid_with(
                path,
                "exactly one of `command` (a local process) or `url` (a remote server)",
                ", found both".to_string(),
            ));
        }
        (false, None) => {
            return Err(walk.invalid_with(
                path,
                "exactly one of `command` (a local process) or `url` (a remote server)",
                ", found neither".to_string(),
            ));
        }
        _ => {}
    }

    if let Some(url_key) = url_key {
        if kind == Some(Kind::Stdio) {
            return Err(walk.invalid(
                &key("type"),
                "`http`, `streamable-http` or `sse` for a server with `url` (`stdio` needs `command`)",
                field(map, "type"),
            ));
        }
        for local in ["args", "env", "cwd"] {
            if field(map, local).is_some() {
                walk.not_applicable(
                    &key(local),
                    format!("`{local}` only applies to servers with `command`"),
                );
            }
        }
        let url_path = key(url_key);
        let url_value = field(map, url_key).unwrap_or(&Value::Null);
        let url = walk.string(&url_path, url_value)?;
        let Some(path_part) = http_url_path(&url) else {
            return Err(walk.invalid(
                &url_path,
                "an absolute http:// or https:// URL",
                Some(url_value),
            ));
        };
        let headers = field(map, "headers")
            .map(|v| walk.string_map(&key("headers"), v))
            .transpose()?
            .unwrap_or_default();
        let sse_path = path_part
            .strip_suffix('/')
            .unwrap_or(path_part)
            .ends_with("/sse");
        return Ok(match kind {
            Some(Kind::Sse) => TransportSpec::Sse { url, headers },
            Some(_) => TransportSpec::StreamableHttp { url, headers },
            None if sse_path => TransportSpec::Sse { url, headers },
            None => TransportSpec::StreamableHttp { url, headers },
        });
    }

    if matches!(kind, Some(Kind::Sse | Kind::StreamableHttp)) {
        return Err(walk.invalid(
            &key("type"),
            "`stdio` (or no `type`) for a server with `command` (`http` and `sse` need `url`)",
            field(map, "type"),
        ));
    }
    if field(map, "headers").is_some() {
        walk.not_applicable(
            &key("headers"),
            "`headers` only applies to servers with `url`",
        );
    }
    let command_value = field(map, "command").unwrap_or(&Value::Null);
    let command = walk.non_empty_string(&key("command"), command_value, "a non-empty command")?;
    let args = field(map, "args")
        .map(|v| walk.string_list(&key("args"), v))
        .transpose()?
        .unwrap_or_default();
    let env = field(map, "env")
        .map(|v| walk.string_map(&key("env"), v))
        .transpose()?
        .unwrap_or_default();
    let cwd = match field(map, "cwd") {
        Some(v) => {
            let dir = PathBuf::from(walk.non_empty_string(
                &key("cwd"),
                v,
                "a non-empty directory path",
            )?);
            Some(match base_dir {
                Some(base) if dir.is_relative() => base.join(dir),
                _ => dir,
            })
        }
        None => None,
    };
    Ok(TransportSpec::Stdio {
        command,
        args,
        env,
        cwd,
    })
}

/// The path part of an absolute `http://` / `https://` URL with a non-empty host, or `None`
/// when `url` is not one.
fn http_url_path(url: &str) -> Option<&str> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let scheme_end = url.find("://")?;
    if !matches!(
        url[..scheme_end].to_ascii_lowercase().as_str(),
        "http" | "https"
    ) {
        return None;
    }
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host.is_empty() || host.starts_with(':') {
        return None;
    }
    let after = &rest[authority_end..];
    let path_end = after.find(['?', '#']).unwrap_or(after.len());
    Some(&after[..path_end])
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::{
        ConfigWarning, McpServers, ServerEntry, ToolFilter, WarningKind, parse_mcp_servers_with,
    };
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "s3cr3t".to_string())
    }

    fn parse(json: &str) -> McpServers {
        match parse_mcp_servers_with(json, None, &env) {
            Ok(servers) => servers,
            Err(err) => panic!("{json}: {err}"),
        }
    }

    /// Parses `{"mcpServers": {"s": <entry>}}` and returns the one entry.
    fn entry(entry: &str) -> ServerEntry {
        let mut servers = parse(&format!(r#"{{"mcpServers": {{"s": {entry}}}}}"#)).servers;
        assert_eq!(servers.len(), 1);
        servers.remove(0)
    }

    /// The `(path, full message)` of the error for `{"mcpServers": {"s": <entry>}}`.
    fn error(entry: &str) -> (String, String) {
        let json = format!(r#"{{"mcpServers": {{"s": {entry}}}}}"#);
        match parse_mcp_servers_with(&json, None, &env) {
            Err(err @ ConfigError::Invalid { .. }) => {
                let ConfigError::Invalid { path, .. } = &err else {
                    unreachable!()
                };
                (path.clone(), err.to_string())
            }
            other => panic!("{entry}: expected an Invalid error, got {other:?}"),
        }
    }

    fn remote(url: &str) -> TransportSpec {
        entry(&format!(r#"{{"url": "{url}"}}"#)).transport
    }

    #[test]
    fn command_means_stdio() {
        let e =
            entry(r#"{"command": "npx", "args": ["-y", "pkg"], "env": {"A": "1"}, "cwd": "/srv"}"#);
        assert_eq!(
            e.transport,
            TransportSpec::Stdio {
                command: "npx".into(),
                args: vec!["-y".into(), "pkg".into()],
                env: BTreeMap::from([("A".into(), "1".into())]),
                cwd: Some(PathBuf::from("/srv")),
            }
        );
        assert_eq!(e.name, "s");
        assert!(!e.disabled);
        assert_eq!((e.prefix, e.timeout, e.startup_timeout), (None, None, None));
        assert_eq!(e.tools, ToolFilter::default());
        assert_eq!(
            entry(r#"{"command": "x", "type": "stdio"}"#)
                .transport
                .kind(),
            "stdio"
        );
    }

    #[test]
    fn url_means_streamable_http_unless_the_path_ends_in_sse() {
        assert_eq!(remote("https://h/mcp").kind(), "streamable-http");
        assert_eq!(remote("http://h:8080").kind(), "streamable-http");
        assert_eq!(remote("https://h/sser").kind(), "streamable-http");
        assert_eq!(remote("https://h/sse-x/mcp").kind(), "streamable-http");
        assert_eq!(remote("https://h/x?path=/sse").kind(), "streamable-http");
        assert_eq!(remote("https://h/sse").kind(), "sse");
        assert_eq!(remote("https://h/v1/sse/").kind(), "sse");
        assert_eq!(remote("https://h/sse?key=1#f").kind(), "sse");
        assert_eq!(
            remote("https://h/sse"),
            TransportSpec::Sse {
                url: "https://h/sse".into(),
                headers: BTreeMap::new()
            }
        );
    }

    #[test]
    fn explicit_type_wins_over_url_inference() {
        for t in [
            "http",
            "streamable-http",
            "streamableHttp",
            "streamable_http",
        ] {
            let e = entry(&format!(r#"{{"url": "https://h/sse", "type": "{t}"}}"#));
            assert_eq!(e.transport.kind(), "streamable-http", "{t}");
        }
        let e = entry(r#"{"url": "https://h/events", "type": "sse", "headers": {"X": "y"}}"#);
        assert_eq!(
            e.transport,
            TransportSpec::Sse {
                url: "https://h/events".into(),
                headers: BTreeMap::from([("X".into(), "y".into())]),
            }
        );
    }

    #[test]
    fn server_url_is_an_alias_of_url() {
        assert_eq!(
            entry(
                r#"{"serverUrl": "https://h/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}}"#
            )
            .transport,
            TransportSpec::StreamableHttp {
                url: "https://h/mcp".into(),
                headers: BTreeMap::from([("Authorization".into(), "Bearer s3cr3t".into())]),
            }
        );
        assert_eq!(
            error(r#"{"url": "https://a", "serverUrl": "https://b"}"#).1,
            "<mcp-config.json>: at `mcpServers.s.serverUrl`: expected either `url` or \
             `serverUrl`, not both"
        );
    }

    #[test]
    fn exactly_one_of_command_and_url() {
        assert_eq!(
            error(r#"{"command": "x", "url": "https://h"}"#).1,
            "<mcp-config.json>: at `mcpServers.s`: expected exactly one of `command` (a local \
             process) or `url` (a remote server), found both"
        );
        assert_eq!(
            error(r#"{"args": []}"#).1,
            "<mcp-config.json>: at `mcpServers.s`: expected exactly one of `command` (a local \
             process) or `url` (a remote server), found neither"
        );
    }

    #[test]
    fn type_must_agree_with_command_or_url() {
        let (path, message) = error(r#"{"url": "https://h", "type": "stdio"}"#);
        assert_eq!(path, "mcpServers.s.type");
        assert!(
            message.ends_with("(`stdio` needs `command`), found \"stdio\""),
            "{message}"
        );
        let (path, message) = error(r#"{"command": "x", "type": "sse"}"#);
        assert_eq!(path, "mcpServers.s.type");
        assert!(message.contains("`http` and `sse` need `url`"), "{message}");
        assert_eq!(
            error(r#"{"command": "x", "type": "http"}"#).0,
            "mcpServers.s.type"
        );
        assert_eq!(
            error(r#"{"command": "x", "type": "websocket"}"#).1,
            "<mcp-config.json>: at `mcpServers.s.type`: expected one of `stdio`, `http`, \
             `streamable-http`, `streamableHttp`, `streamable_http`, `sse`, found \"websocket\""
        );
    }

    #[test]
    fn url_must_be_absolute_http() {
        for url in [
            "localhost:3000/mcp",
            "/mcp",
            "ftp://h/x",
            "https://",
            "https:///x",
            "http://:80/x",
            "https://h/a b",
            "",
        ] {
            let (path, message) = error(&format!(r#"{{"url": "{url}"}}"#));
            assert_eq!(path, "mcpServers.s.url", "{url}");
            assert!(message.contains("expected an absolute http:// or https:// URL"));
        }
        assert_eq!(remote("HTTPS://user:pw@h/mcp").kind(), "streamable-http");
        assert_eq!(
            error(r#"{"url": 3}"#).1,
            "<mcp-config.json>: at `mcpServers.s.url`: expected a string, found a number (3)"
        );
    }

    #[test]
    fn expanded_urls_are_not_echoed() {
        let (_, message) = error(r#"{"url": "${TOKEN}"}"#);
        assert!(!message.contains("s3cr3t"), "{message}");
        assert!(
            message.ends_with(r#"found "${TOKEN}" (after expansion)"#),
            "{message}"
        );
    }

    #[test]
    fn keys_of_the_other_transport_are_ignored_with_a_warning() {
        let parsed = parse(
            r#"{"mcpServers": {"r": {"url": "https://h", "args": [], "env": {}},
                                "l": {"command": "x", "headers": {}}}}"#,
        );
        let shown: Vec<String> = parsed
            .warnings
            .iter()
            .map(ConfigWarning::to_string)
            .collect();
        assert_eq!(
            shown,
            vec![
                "<mcp-config.json>: at `mcpServers.l.headers`: ignored: `headers` only applies \
                 to servers with `url`",
                "<mcp-config.json>: at `mcpServers.r.args`: ignored: `args` only applies to \
                 servers with `command`",
                "<mcp-config.json>: at `mcpServers.r.env`: ignored: `env` only applies to \
                 servers with `command`",
            ]
        );
        assert!(matches!(
            parsed.warnings[0].kind,
            WarningKind::NotApplicable { .. }
        ));
    }

    #[test]
    fn relative_cwd_resolves_against_the_config_directory() {
        let json = r#"{"mcpServers": {"a": {"command": "x", "cwd": "tools/a"},
                                      "b": {"command": "x", "cwd": "/abs"}}}"#;
        let cwd = |servers: &McpServers, i: usize| match &servers.servers[i].transport {
            TransportSpec::Stdio { cwd, .. } => cwd.clone(),
            other => panic!("{other:?}"),
        };
        let from_file =
            parse_mcp_servers_with(json, Some(Path::new("/etc/orch/mcp-config.json")), &env)
                .unwrap();
        assert_eq!(cwd(&from_file, 0), Some(PathBuf::from("/etc/orch/tools/a")));
        assert_eq!(cwd(&from_file, 1), Some(PathBuf::from("/abs")));
        let bare = parse_mcp_servers_with(json, Some(Path::new("mcp-config.json")), &env).unwrap();
        assert_eq!(cwd(&bare, 0), Some(PathBuf::from("tools/a")));
        let from_string = parse(json);
        assert_eq!(cwd(&from_string, 0), Some(PathBuf::from("tools/a")));
    }
}
