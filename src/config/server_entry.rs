//! One `mcpServers` entry: from its JSON object to a validated [`ServerEntry`] — name rules,
//! the per-server mcp-orch keys (`disabled`, `prefix`, timeouts, `tools`) and unknown-key
//! warnings. How the server is reached is `transport`'s job.

use std::path::Path;

use serde_json::Value;

use super::transport::parse_transport;
use super::tree::{Walk, child, field, index};
use super::{ConfigError, ForwardedCapabilities, Isolation, ServerEntry, ToolFilter};

/// Longest accepted server name, in characters.
const MAX_NAME_CHARS: usize = 128;

/// Every key an entry may have; anything else is reported as unknown.
const KNOWN_KEYS: &[&str] = &[
    "command",
    "args",
    "env",
    "cwd",
    "url",
    "serverUrl",
    "headers",
    "type",
    "disabled",
    "prefix",
    "timeout",
    "startupTimeout",
    "startup_timeout",
    "tools",
    "isolation",
    "maxSessions",
    "capabilities",
    "toolTimeouts",
    "maxTimeout",
];

/// Default cap on per-session processes of an `"isolation": "session"` server.
pub(super) const DEFAULT_MAX_SESSIONS: usize = 16;

/// Parses the entry `name` found at `path`; `base_dir` resolves a relative `cwd`.
pub(super) fn parse_entry(
    walk: &mut Walk,
    name: &str,
    path: &str,
    value: &Value,
    base_dir: Option<&Path>,
) -> Result<ServerEntry, ConfigError> {
    if name.is_empty() {
        return Err(walk.invalid_with(path, "a non-empty server name", String::new()));
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(walk.invalid_with(
            path,
            format!("a server name of at most {MAX_NAME_CHARS} characters"),
            format!(", found one of {chars}"),
        ));
    }
    let map = walk.object(
        path,
        value,
        "an object describing the server (with `command` or `url`)",
    )?;
    walk.unknown_keys(path, map, KNOWN_KEYS);
    let key = |k: &str| child(path, k);

    let transport = parse_transport(walk, path, map, base_dir)?;
    let disabled = match field(map, "disabled") {
        Some(v) => walk.boolean(&key("disabled"), v)?,
        None => false,
    };
    let prefix = field(map, "prefix")
        .map(|v| walk.string(&key("prefix"), v))
        .transpose()?;
    let timeout = field(map, "timeout")
        .map(|v| walk.duration(&key("timeout"), v))
        .transpose()?;
    let startup_timeout = match (field(map, "startupTimeout"), field(map, "startup_timeout")) {
        (Some(_), Some(_)) => {
            return Err(walk.invalid(
                &key("startup_timeout"),
                "either `startupTimeout` or `startup_timeout`, not both",
                None,
            ));
        }
        (Some(v), None) => Some(walk.duration(&key("startupTimeout"), v)?),
        (None, Some(v)) => Some(walk.duration(&key("startup_timeout"), v)?),
        (None, None) => None,
    };
    let tools = match field(map, "tools") {
        Some(v) => parse_tools(walk, &key("tools"), v)?,
        None => ToolFilter::default(),
    };
    let isolation = match field(map, "isolation") {
        None => Isolation::Shared,
        Some(v) => match walk.string(&key("isolation"), v)?.as_str() {
            "shared" => Isolation::Shared,
            "session" => Isolation::Session,
            _ => {
                return Err(walk.invalid(
                    &key("isolation"),
                    "`shared` (one process for every session) or `session` (one per session)",
                    Some(v),
                ));
            }
        },
    };
    let max_sessions = match field(map, "maxSessions") {
        Some(v) => walk.integer(
            &key("maxSessions"),
            v,
            1,
            10_000,
            "a number of sessions between 1 and 10000",
        )? as usize,
        None => DEFAULT_MAX_SESSIONS,
    };
    let capabilities = match field(map, "capabilities") {
        Some(v) => parse_capabilities(walk, &key("capabilities"), v)?,
        None => ForwardedCapabilities::default(),
    };
    let mut tool_timeouts = std::collections::BTreeMap::new();
    if let Some(v) = field(map, "toolTimeouts") {
        let path = key("toolTimeouts");
        let timeouts = walk.object(&path, v, "an object of tool name → timeout")?;
        for (tool, value) in timeouts {
            tool_timeouts.insert(tool.clone(), walk.duration(&child(&path, tool), value)?);
        }
    }
    let max_timeout = field(map, "maxTimeout")
        .map(|v| walk.duration(&key("maxTimeout"), v))
        .transpose()?;
    Ok(ServerEntry {
        tool_timeouts,
        max_timeout,
        name: name.to_string(),
        transport,
        disabled,
        prefix,
        timeout,
        startup_timeout,
        tools,
        isolation,
        max_sessions,
        capabilities,
    })
}

fn parse_capabilities(
    walk: &mut Walk,
    path: &str,
    value: &Value,
) -> Result<ForwardedCapabilities, ConfigError> {
    let map = walk.object(
        path,
        value,
        "an object like {\"sampling\": true, \"elicitation\": true, \"roots\": true}",
    )?;
    walk.unknown_keys(path, map, &["sampling", "elicitation", "roots"]);
    let flag = |walk: &mut Walk, name: &str| -> Result<bool, ConfigError> {
        match field(map, name) {
            Some(v) => walk.boolean(&child(path, name), v),
            None => Ok(true),
        }
    };
    Ok(ForwardedCapabilities {
        sampling: flag(walk, "sampling")?,
        elicitation: flag(walk, "elicitation")?,
        roots: flag(walk, "roots")?,
    })
}

fn parse_tools(walk: &mut Walk, path: &str, value: &Value) -> Result<ToolFilter, ConfigError> {
    let map = walk.object(
        path,
        value,
        "an object like {\"include\": [...], \"exclude\": [...]}",
    )?;
    walk.unknown_keys(path, map, &["include", "exclude"]);
    let patterns = |key: &str| -> Result<Option<Vec<String>>, ConfigError> {
        let Some(v) = field(map, key) else {
            return Ok(None);
        };
        let list_path = child(path, key);
        let list = walk.string_list(&list_path, v)?;
        if let Some(i) = list.iter().position(String::is_empty) {
            return Err(walk.invalid(
                &index(&list_path, i),
                "a tool name or a pattern with `*` wildcards",
                Some(&Value::String(String::new())),
            ));
        }
        Ok(Some(list))
    };
    Ok(ToolFilter {
        include: patterns("include")?,
        exclude: patterns("exclude")?.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{McpServers, parse_mcp_servers_with};
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

    #[test]
    fn field_type_errors_name_the_exact_path() {
        #[rustfmt::skip]
        let cases = [
            (r#"{"command": "x", "args": ["a", 2]}"#, "mcpServers.s.args[1]", "expected a string, found a number (2)"),
            (r#"{"command": "x", "args": "a b"}"#, "mcpServers.s.args", "expected an array of strings, found \"a b\""),
            (r#"{"command": "x", "env": {"K": 1}}"#, "mcpServers.s.env.K", "expected a string, found a number (1)"),
            (r#"{"command": "x", "env": ["K=1"]}"#, "mcpServers.s.env", "expected an object of string values, found an array"),
            (r#"{"url": "https://h", "headers": {"X": null}}"#, "mcpServers.s.headers.X", "expected a string, found null"),
            (r#"{"command": ""}"#, "mcpServers.s.command", "expected a non-empty command, found an empty string"),
            (r#"{"command": ["npx"]}"#, "mcpServers.s.command", "expected a non-empty command, found an array"),
            (r#"{"command": "x", "cwd": ""}"#, "mcpServers.s.cwd", "expected a non-empty directory path, found an empty string"),
            (r#"{"command": "x", "disabled": "no"}"#, "mcpServers.s.disabled", "expected true or false, found \"no\""),
            (r#"{"command": "x", "prefix": 1}"#, "mcpServers.s.prefix", "expected a string, found a number (1)"),
            (r#"{"command": "x", "timeout": "soon"}"#, "mcpServers.s.timeout", "expected a number of seconds or a duration like \"30s\", found \"soon\""),
            (r#"{"command": "x", "timeout": 0}"#, "mcpServers.s.timeout", "expected a duration greater than zero, found a number (0)"),
            (r#"{"command": "x", "timeout": -5}"#, "mcpServers.s.timeout", "expected a number of seconds or a duration like \"30s\", found a number (-5)"),
            (r#"{"command": "x", "startupTimeout": "0s"}"#, "mcpServers.s.startupTimeout", "expected a duration greater than zero, found \"0s\""),
            (r#"{"command": "x", "startup_timeout": true}"#, "mcpServers.s.startup_timeout", "expected a number of seconds or a duration like \"30s\", found a boolean (true)"),
            (r#"{"command": "x", "startupTimeout": 1, "startup_timeout": 1}"#, "mcpServers.s.startup_timeout", "expected either `startupTimeout` or `startup_timeout`, not both"),
            (r#"{"command": "x", "tools": ["a"]}"#, "mcpServers.s.tools", "expected an object like {\"include\": [...], \"exclude\": [...]}, found an array"),
            (r#"{"command": "x", "tools": {"include": "a*"}}"#, "mcpServers.s.tools.include", "expected an array of strings, found \"a*\""),
            (r#"{"command": "x", "tools": {"exclude": ["a", ""]}}"#, "mcpServers.s.tools.exclude[1]", "expected a tool name or a pattern with `*` wildcards, found an empty string"),
            ("\"npx x\"", "mcpServers.s", "expected an object describing the server (with `command` or `url`), found \"npx x\""),
        ];
        for (json, path, message) in cases {
            let (got_path, got) = error(json);
            assert_eq!(got_path, path, "{json}");
            assert_eq!(
                got,
                format!("<mcp-config.json>: at `{path}`: {message}"),
                "{json}"
            );
        }
    }

    #[test]
    fn server_names_are_non_empty_and_bounded() {
        let err = parse_mcp_servers_with(r#"{"mcpServers": {"": {"command": "x"}}}"#, None, &env)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "<mcp-config.json>: at `mcpServers[\"\"]`: expected a non-empty server name"
        );
        let long = "n".repeat(129);
        let err = parse_mcp_servers_with(
            &format!(r#"{{"mcpServers": {{"{long}": {{"command": "x"}}}}}}"#),
            None,
            &env,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .ends_with("expected a server name of at most 128 characters, found one of 129"),
            "{err}"
        );
        let ok = "é".repeat(128);
        let parsed = parse(&format!(
            r#"{{"mcpServers": {{"{ok}": {{"command": "x"}}}}}}"#
        ));
        assert_eq!(parsed.servers[0].name, ok);
    }

    #[test]
    fn optional_keys() {
        let e = entry(
            r#"{"command": "x", "disabled": true, "prefix": "", "timeout": 1.5,
                "startupTimeout": "2m", "tools": {"include": ["get_*"], "exclude": ["get_secret"]}}"#,
        );
        assert!(e.disabled);
        assert_eq!(e.prefix.as_deref(), Some(""));
        assert_eq!(e.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(e.startup_timeout, Some(Duration::from_secs(120)));
        assert_eq!(
            e.tools,
            ToolFilter {
                include: Some(vec!["get_*".into()]),
                exclude: vec!["get_secret".into()],
            }
        );
        let e =
            entry(r#"{"command": "x", "startup_timeout": 5, "timeout": "500ms", "prefix": null}"#);
        assert_eq!(e.startup_timeout, Some(Duration::from_secs(5)));
        assert_eq!(e.timeout, Some(Duration::from_millis(500)));
        assert_eq!(e.prefix, None);
        assert!(entry(r#"{"command": "x", "disabled": "${NOPE:-true}"}"#).disabled);
    }
}
