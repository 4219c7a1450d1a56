//! The sections of `config.yaml` (`server`, `proxy`, `security`, `llm`, `execution`): each
//! key's accepted values, its checks, and unknown-key warnings. `llm` and `execution` are
//! typed in `batch_settings.rs`, `security` in `security_section.rs`.

use serde_json::{Map, Value};

use super::batch_settings::{parse_execution, parse_llm};
use super::tree::{Walk, field};
use super::{ConfigError, Mode, ProxySettings, ServerSettings, ServiceConfig};

/// Applies the (non-null) document `tree` on top of the defaults already in `out`.
pub(super) fn parse_sections(
    walk: &mut Walk,
    tree: &Value,
    out: &mut ServiceConfig,
) -> Result<(), ConfigError> {
    let root = walk.object(
        "",
        tree,
        "a mapping of sections (`server`, `proxy`, `security`, `llm`, `execution`)",
    )?;
    walk.unknown_keys(
        "",
        root,
        &["server", "proxy", "security", "llm", "execution"],
    );
    if let Some(section) = section(walk, root, "server")? {
        parse_server(walk, section, &mut out.server)?;
    }
    if let Some(section) = section(walk, root, "proxy")? {
        parse_proxy(walk, section, &mut out.proxy)?;
    }
    if let Some(section) = section(walk, root, "security")? {
        super::security_section::parse_security(walk, section, &mut out.security)?;
    }
    if let Some(value) = field(root, "llm") {
        out.llm = parse_llm(walk, value)?;
    }
    if let Some(section) = section(walk, root, "execution")? {
        parse_execution(walk, section, &mut out.execution)?;
    }
    Ok(())
}

/// A top-level section as a mapping; absent or empty (`server:`) means "all defaults".
fn section<'v>(
    walk: &Walk,
    root: &'v Map<String, Value>,
    name: &str,
) -> Result<Option<&'v Map<String, Value>>, ConfigError> {
    field(root, name)
        .map(|value| walk.object(name, value, &format!("a mapping of `{name}` settings")))
        .transpose()
}

fn parse_server(
    walk: &mut Walk,
    map: &Map<String, Value>,
    out: &mut ServerSettings,
) -> Result<(), ConfigError> {
    walk.unknown_keys("server", map, &["host", "port", "mode"]);
    if let Some(v) = field(map, "host") {
        out.host = walk.non_empty_string("server.host", v, "a host name or IP address")?;
    }
    if let Some(v) = field(map, "port") {
        let port = walk.integer("server.port", v, 0, 65535, "a port number (0-65535)")?;
        out.port = u16::try_from(port).unwrap_or(out.port);
    }
    if let Some(v) = field(map, "mode") {
        out.mode = match v.as_str() {
            Some("proxy") => Mode::Proxy,
            Some("batch") => Mode::Batch,
            _ => return Err(walk.invalid("server.mode", "`proxy` or `batch`", Some(v))),
        };
    }
    Ok(())
}

fn parse_proxy(
    walk: &mut Walk,
    map: &Map<String, Value>,
    out: &mut ProxySettings,
) -> Result<(), ConfigError> {
    let known: Vec<&str> = ["separator", "default_timeout", "startup_timeout"]
        .into_iter()
        .chain(super::lifecycle::LIFECYCLE_KEYS.iter().copied())
        .collect();
    walk.unknown_keys("proxy", map, &known);
    super::lifecycle::parse_lifecycle(walk, map, out)?;
    if let Some(v) = field(map, "separator") {
        let valid = |s: &str| {
            (1..=4).contains(&s.chars().count())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        };
        out.separator = match v.as_str() {
            Some(s) if valid(s) => s.to_string(),
            _ => {
                return Err(walk.invalid(
                    "proxy.separator",
                    "1 to 4 characters, each a letter, digit, `_`, `-` or `.`",
                    Some(v),
                ));
            }
        };
    }
    if let Some(v) = field(map, "default_timeout") {
        out.default_timeout = walk.duration("proxy.default_timeout", v)?;
    }
    if let Some(v) = field(map, "startup_timeout") {
        out.startup_timeout = walk.duration("proxy.startup_timeout", v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{ConfigWarning, Permission, Rate, WarningKind, parse_service_config_with};
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "API_KEY" => Some("k-123-secret".into()),
            "OPENAI_API_KEY" => Some("sk-secret".into()),
            "PORT" => Some("8080".into()),
            _ => None,
        }
    }

    fn parse(yaml: &str) -> ServiceConfig {
        match parse_service_config_with(yaml, None, &env) {
            Ok(config) => config,
            Err(err) => panic!("{yaml}: {err}"),
        }
    }

    fn error(yaml: &str) -> String {
        match parse_service_config_with(yaml, None, &env) {
            Err(err) => err.to_string(),
            Ok(config) => panic!("{yaml}: parsed {config:?}"),
        }
    }

    #[test]
    fn every_key_can_be_set() {
        let config = parse(
            r#"
server: {host: 0.0.0.0, port: "${PORT}", mode: batch}
proxy: {separator: ".", default_timeout: 1.5, startup_timeout: 2m}
security:
  enable_auth: true
  api_keys:
    - {name: a, key: "${API_KEY}", permissions: [write, read, write]}
    - {name: b, key: literal, permissions: []}
  allowed_hosts: "mcp.example.com, 10.0.0.5:3000"
  allowed_origins: [https://app.example.com, "null"]
  cors_origins: [https://app.example.com]
  max_body_size: 64KiB
  header_timeout: 2s
  body_timeout: 3s
  rate_limits: {discovery: off, management: 5/min, batch: 10/h, calls: 100/s, max_clients: 20}
llm:
  provider: bedrock
  region: ${AWS_REGION:-us-east-1}
  model: "${MISSING}x"
execution: {max_parallel_tasks: 1, task_timeout: 500ms, retry_count: 0}
"#,
        );
        assert_eq!(
            config.server,
            ServerSettings {
                host: "0.0.0.0".into(),
                port: 8080,
                mode: Mode::Batch
            }
        );
        assert_eq!(
            config.proxy,
            ProxySettings {
                separator: ".".into(),
                default_timeout: Duration::from_millis(1500),
                startup_timeout: Duration::from_secs(120),
                ..ProxySettings::default()
            }
        );
        assert!(config.security.enable_auth);
        assert_eq!(
            config.security.api_keys[0].permissions,
            [Permission::Read, Permission::Write]
        );
        assert_eq!(config.security.api_keys[1].key, "literal");
        assert_eq!(
            config.security.allowed_hosts,
            ["mcp.example.com", "10.0.0.5:3000"]
        );
        assert_eq!(
            config.security.allowed_origins,
            ["https://app.example.com", "null"]
        );
        assert_eq!(config.security.cors_origins, ["https://app.example.com"]);
        assert_eq!(config.security.max_body_bytes, 64 * 1024);
        assert_eq!(config.security.header_timeout, Duration::from_secs(2));
        assert_eq!(config.security.body_timeout, Duration::from_secs(3));
        let limits = &config.security.rate_limits;
        assert_eq!(limits.discovery, None);
        assert_eq!(
            limits.management,
            Some(Rate {
                count: 5,
                period: Duration::from_secs(60)
            })
        );
        assert_eq!(
            limits.calls,
            Some(Rate {
                count: 100,
                period: Duration::from_secs(1)
            })
        );
        assert_eq!(limits.max_clients, 20);
        assert_eq!(
            config.llm.provider,
            Some(super::super::ProviderKind::Bedrock)
        );
        assert_eq!(config.llm.region.as_deref(), Some("us-east-1"));
        assert_eq!(config.llm.model.as_deref(), Some("x"));
        assert_eq!(config.execution.max_parallel_tasks, 1);
        assert_eq!(config.execution.task_timeout, Duration::from_millis(500));
        assert_eq!(config.execution.retry_count, 0);
        assert_eq!(
            config.warnings,
            vec![ConfigWarning {
                file: "<config.yaml>".into(),
                path: "llm.model".into(),
                kind: WarningKind::UnsetVariable {
                    variable: "MISSING".into()
                },
            }]
        );
    }

    #[test]
    fn unknown_keys_are_warnings() {
        let config = parse(
            "serve: {}\nserver: {hots: x, port: 1}\nsecurity:\n  api_keys:\n    - {name: a, key: k, permissions: [read], scope: x}\nllm: {whatever: 1}\nexecution: {retries: 2}\n",
        );
        let paths: Vec<&str> = config.warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "serve",
                "server.hots",
                "security.api_keys[0].scope",
                "llm.whatever",
                "execution.retries"
            ]
        );
        assert!(
            config
                .warnings
                .iter()
                .all(|w| w.kind == WarningKind::UnknownKey)
        );
        assert_eq!(
            config.warnings[1].to_string(),
            "<config.yaml>: at `server.hots`: unknown key, ignored"
        );
    }

    #[test]
    fn invalid_values_name_the_exact_path() {
        #[rustfmt::skip]
        let cases = [
            ("[1]", "(top level)", "expected a mapping of sections (`server`, `proxy`, `security`, `llm`, `execution`), found a list"),
            ("server: 3", "server", "expected a mapping of `server` settings, found a number (3)"),
            ("server: {host: ''}", "server.host", "expected a host name or IP address, found an empty string"),
            ("server: {port: eighty}", "server.port", "expected a port number (0-65535), found \"eighty\""),
            ("server: {port: 70000}", "server.port", "expected a port number (0-65535), found a number (70000)"),
            ("server: {port: -1}", "server.port", "expected a port number (0-65535), found a number (-1)"),
            ("server: {mode: Proxy}", "server.mode", "expected `proxy` or `batch`, found \"Proxy\""),
            ("proxy: {separator: ''}", "proxy.separator", "expected 1 to 4 characters, each a letter, digit, `_`, `-` or `.`, found an empty string"),
            ("proxy: {separator: '::'}", "proxy.separator", "expected 1 to 4 characters, each a letter, digit, `_`, `-` or `.`, found \"::\""),
            ("proxy: {separator: abcde}", "proxy.separator", "expected 1 to 4 characters, each a letter, digit, `_`, `-` or `.`, found \"abcde\""),
            ("proxy: {default_timeout: soon}", "proxy.default_timeout", "expected a number of seconds or a duration like \"30s\", found \"soon\""),
            ("proxy: {startup_timeout: 0}", "proxy.startup_timeout", "expected a duration greater than zero, found a number (0)"),
            ("security: {enable_auth: yes}", "security.enable_auth", "expected true or false, found \"yes\""),
            ("security: {api_keys: {a: b}}", "security.api_keys", "expected a list of {name, key, permissions} entries, found a mapping"),
            ("security: {api_keys: [k]}", "security.api_keys[0]", "expected a mapping with `name`, `key` and `permissions`, found \"k\""),
            ("security: {api_keys: [{key: k, permissions: []}]}", "security.api_keys[0].name", "expected a non-empty name, but it is missing"),
            ("security: {api_keys: [{name: a, permissions: []}]}", "security.api_keys[0].key", "expected a non-empty key, but it is missing"),
            ("security: {api_keys: [{name: a, key: 12345, permissions: []}]}", "security.api_keys[0].key", "expected a non-empty key, found a number"),
            ("security: {api_keys: [{name: a, key: '${NO_SUCH_KEY}', permissions: []}]}", "security.api_keys[0].key", "expected a non-empty key, found \"${NO_SUCH_KEY}\", which expanded to an empty string"),
            ("security: {api_keys: [{name: a, key: k}]}", "security.api_keys[0].permissions", "expected a list of permissions (`read`, `write`, `execute`), but it is missing"),
            ("security: {api_keys: [{name: a, key: k, permissions: read}]}", "security.api_keys[0].permissions", "expected a list of strings, found \"read\""),
            ("security: {api_keys: [{name: a, key: k, permissions: [read, admin]}]}", "security.api_keys[0].permissions[1]", "expected one of `read`, `write`, `execute`, found \"admin\""),
            ("security: {api_keys: [{name: a, key: '${API_KEY}', permissions: []}, {name: b, key: '${API_KEY}', permissions: []}]}", "security.api_keys[1].key", "expected a key different from `security.api_keys[0].key`, but both are the same"),
            ("security: {api_keys: [{name: a, key: x, permissions: []}, {name: a, key: y, permissions: []}]}", "security.api_keys[1].name", "expected a name different from `security.api_keys[0].name`, but both are the same"),
            ("security: {api_keys: [{name: a, key: 'two words', permissions: []}]}", "security.api_keys[0].key", "expected a key without spaces or control characters (it travels in an HTTP header)"),
            ("security: {allowed_hosts: [localhost, 'http://x']}", "security.allowed_hosts[1]", "expected a host name, `name:port` or `*`, found \"http://x\""),
            ("security: {allowed_hosts: 3}", "security.allowed_hosts", "expected a list of strings or a comma-separated string, found a number (3)"),
            ("security: {allowed_origins: 'https://a.example, b.example'}", "security.allowed_origins", "expected an origin like `https://app.example.com`, `http://localhost:*`, `null` or `*`, found \"b.example\""),
            ("security: {cors_origins: ['null']}", "security.cors_origins[0]", "expected an origin like `https://app.example.com`, `http://localhost:*` or `*`, found \"null\""),
            ("security: {max_body_size: 4 mb}", "security.max_body_size", "expected a size from 1KiB to 1GiB: a number of bytes or a string like \"4MiB\", found \"4 mb\""),
            ("security: {max_body_size: 10}", "security.max_body_size", "expected a size from 1KiB to 1GiB: a number of bytes or a string like \"4MiB\", found a number (10)"),
            ("security: {header_timeout: 0}", "security.header_timeout", "expected a duration greater than zero, found a number (0)"),
            ("security: {rate_limits: 5}", "security.rate_limits", "expected a mapping of rate limits per endpoint class, found a number (5)"),
            ("security: {rate_limits: {calls: 100}}", "security.rate_limits.calls", "expected a rate like \"100/h\", \"500/hour\", \"6000/min\", \"10/s\", or \"off\", found a number (100)"),
            ("security: {rate_limits: {max_clients: 0}}", "security.rate_limits.max_clients", "expected a whole number from 1 to 10000000, found a number (0)"),
            ("llm: openai", "llm", "expected a mapping of LLM settings, found \"openai\""),
            ("llm: {provider: OpenAI}", "llm.provider", "expected one of `azure`, `bedrock`, `openai`, `anthropic`, `gemini`, found \"OpenAI\""),
            ("execution: {max_parallel_tasks: 0}", "execution.max_parallel_tasks", "expected a whole number of at least 1, found a number (0)"),
            ("execution: {task_timeout: -1s}", "execution.task_timeout", "expected a number of seconds or a duration like \"30s\", found \"-1s\""),
            ("execution: {retry_count: 1.5}", "execution.retry_count", "expected a whole number (0 or more), found a number (1.5)"),
        ];
        for (yaml, path, message) in cases {
            assert_eq!(
                error(yaml),
                format!("<config.yaml>: at `{path}`: {message}"),
                "{yaml}"
            );
        }
    }

    #[test]
    fn secrets_never_appear_in_errors_warnings_or_debug() {
        let message = error("server: {port: '${API_KEY}'}");
        assert_eq!(
            message,
            "<config.yaml>: at `server.port`: expected a port number (0-65535), found \
             \"${API_KEY}\" (after expansion)"
        );
        let config = parse(
            "security:\n  api_keys: [{name: a, key: '${API_KEY}', permissions: [read]}]\nllm: {provider: openai, api_key: '${OPENAI_API_KEY}'}\n",
        );
        let shown = format!("{config:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("api_key"), "{shown}");
    }
}
