//! `config.yaml`: how mcp-orch itself runs (listen address, mode, naming, timeouts, security,
//! LLM provider, batch execution limits). Every key is optional; the defaults are the ones
//! documented in `config.example.yaml`.

use std::path::Path;
use std::time::Duration;

pub use super::batch_settings::{ExecutionSettings, LlmSettings, PlanOutput, ProviderKind};
use super::expand::expand_tree;
use super::lifecycle::{HealthPolicy, RestartPolicy};
use super::service_sections::parse_sections;
use super::syntax::parse_yaml;
use super::tree::Walk;
use super::{ConfigError, ConfigWarning};

/// How `config.yaml` is named in messages when it was parsed from a string.
const UNNAMED: &str = "<config.yaml>";

/// The whole of `config.yaml`, defaults filled in. `ServiceConfig::default()` is what an
/// empty or absent file means (and what `config.example.yaml` spells out).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceConfig {
    /// `server:` — listen address and mode.
    pub server: ServerSettings,
    /// `proxy:` — naming and timeouts of the aggregated catalogue.
    pub proxy: ProxySettings,
    /// `security:` — API keys.
    pub security: SecuritySettings,
    /// `llm:` — the batch planner's LLM provider.
    pub llm: LlmSettings,
    /// `execution:` — batch mode limits.
    pub execution: ExecutionSettings,
    /// Accepted-but-suspicious findings (unknown keys, unset `${VAR}`s), for the
    /// caller to log. Empty for [`ServiceConfig::default`].
    pub warnings: Vec<ConfigWarning>,
}

/// `server:` — where the HTTP faces listen and which mode runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    /// Default `127.0.0.1`.
    pub host: String,
    /// Default 3000.
    pub port: u16,
    /// Default `proxy`.
    pub mode: Mode,
}

/// `--mode` / `server.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Serve the aggregated MCP servers (the default).
    #[default]
    Proxy,
    /// Batch execution of planned tasks.
    Batch,
}

/// `proxy:` — how the merged catalogue is named and how long calls may take.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxySettings {
    /// Between prefix and tool name in MCP-facing names. Default `__`; `.` allowed.
    pub separator: String,
    /// Per-call timeout when a server sets none. Default 60 s.
    pub default_timeout: Duration,
    /// Time a server gets to start and initialize when it sets none. Default 60 s.
    pub startup_timeout: Duration,
    /// Hard ceiling on a call even while progress keeps extending it. Default 600 s.
    pub max_timeout: Duration,
    /// On shutdown, how long calls in flight may finish before servers are stopped. Default 10 s.
    pub shutdown_grace: Duration,
    /// Reload when `mcp-config.json` or `config.yaml` changes on disk. Default true.
    pub watch_config: bool,
    /// How servers that went away are restarted.
    pub restart: RestartPolicy,
    /// Periodic pings.
    pub health: HealthPolicy,
}

/// `security:` — who may call the HTTP faces and how hard they may push; consumed by
/// `crate::security`. Defaults are safe for a loopback-only process.
#[derive(Debug, Clone, PartialEq)]
pub struct SecuritySettings {
    /// Require credentials on the HTTP faces even when no key is configured (then every
    /// request is refused). Authentication is also on whenever a key or `JWT_SECRET` exists.
    /// Default false.
    pub enable_auth: bool,
    /// The accepted keys; names and keys are unique, keys non-empty. Default none.
    pub api_keys: Vec<ApiKeyEntry>,
    /// `Host` header values accepted (`name` or `name:port`; `*` accepts any), against DNS
    /// rebinding. Default the loopback names; the bind address is always added.
    pub allowed_hosts: Vec<String>,
    /// `Origin` header values accepted (`scheme://host[:port]`, `:*` for any port; `*`
    /// accepts any). A request without `Origin` (not a browser) is not checked. Default the
    /// loopback origins.
    pub allowed_origins: Vec<String>,
    /// Browser origins answered with CORS headers (also `CORS_ORIGINS`, comma-separated).
    /// Empty (the default) means CORS is off.
    pub cors_origins: Vec<String>,
    /// Largest request body accepted; a bigger one is answered 413. Default 4 MiB.
    pub max_body_bytes: usize,
    /// Time a client gets to send a request's headers (and that an idle connection is kept).
    /// Default 10 s.
    pub header_timeout: Duration,
    /// Time a client gets to send a request's body once its headers arrived. Default 30 s.
    pub body_timeout: Duration,
    /// `security.rate_limits`.
    pub rate_limits: RateLimitSettings,
}

/// `security.rate_limits:` — requests per client and endpoint class; `None` is unlimited.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitSettings {
    /// Searching a server registry (no route yet). Default 100 per hour.
    pub discovery: Option<Rate>,
    /// Reload, start/stop/restart, add/remove servers. Default 100 per hour.
    pub management: Option<Rate>,
    /// Starting and cancelling batches. Default 500 per hour.
    pub batch: Option<Rate>,
    /// Tool calls over REST, all MCP traffic (`/mcp`, `/sse`, `/message`), listings, logs,
    /// batch status, `/health`. Default 100,000 per minute (MCP clients are chatty; this only stops floods).
    pub calls: Option<Rate>,
    /// Most clients (keys, or IP addresses when auth is off) tracked per class; the least
    /// recently limited one is forgotten first. Default 10000.
    pub max_clients: usize,
}

/// `N` requests per `period`, e.g. `100/h`: a burst of `N`, refilled evenly over `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed in one period (at least 1).
    pub count: u32,
    /// The period the count refills over.
    pub period: Duration,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        SecuritySettings {
            enable_auth: false,
            api_keys: Vec::new(),
            allowed_hosts: ["localhost", "127.0.0.1", "::1"]
                .map(str::to_owned)
                .to_vec(),
            allowed_origins: [
                "http://localhost:*",
                "http://127.0.0.1:*",
                "http://[::1]:*",
                "https://localhost:*",
                "https://127.0.0.1:*",
                "https://[::1]:*",
            ]
            .map(str::to_owned)
            .to_vec(),
            cors_origins: Vec::new(),
            max_body_bytes: 4 * 1024 * 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            rate_limits: RateLimitSettings::default(),
        }
    }
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        let hour = Duration::from_secs(3600);
        RateLimitSettings {
            discovery: Some(Rate {
                count: 100,
                period: hour,
            }),
            management: Some(Rate {
                count: 100,
                period: hour,
            }),
            batch: Some(Rate {
                count: 500,
                period: hour,
            }),
            calls: Some(Rate {
                count: 100_000,
                period: Duration::from_secs(60),
            }),
            max_clients: 10_000,
        }
    }
}

/// One `security.api_keys[]` entry. `Debug` never prints the key.
#[derive(Clone, PartialEq)]
pub struct ApiKeyEntry {
    /// Who the key belongs to, for logs; never secret.
    pub name: String,
    /// The secret itself (normally from `${VAR}`).
    pub key: String,
    /// What the key allows, sorted and without duplicates.
    pub permissions: Vec<Permission>,
}

impl std::fmt::Debug for ApiKeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyEntry")
            .field("name", &self.name)
            .field("key", &"<redacted>")
            .field("permissions", &self.permissions)
            .finish()
    }
}

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// `read`
    Read,
    /// `write`
    Write,
    /// `execute`
    Execute,
}

impl Permission {
    /// Every permission, in order.
    pub const ALL: [Permission; 3] = [Permission::Read, Permission::Write, Permission::Execute];

    /// The name used in config files, JWT claims and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
            Permission::Execute => "execute",
        }
    }

    /// The permission called `name` (`read`, `write`, `execute`).
    pub fn from_name(name: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            host: "127.0.0.1".to_string(),
            port: 3000,
            mode: Mode::Proxy,
        }
    }
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings {
            separator: "__".to_string(),
            default_timeout: Duration::from_secs(60),
            startup_timeout: Duration::from_secs(60),
            max_timeout: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(10),
            watch_config: true,
            restart: RestartPolicy::default(),
            health: HealthPolicy::default(),
        }
    }
}

/// Reads, expands and validates a `config.yaml` file.
pub fn load_service_config(path: &Path) -> Result<ServiceConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    parse_service_config(&text, Some(path))
}

/// Parses `config.yaml` text; `source` names the file in error messages.
pub fn parse_service_config(
    text: &str,
    source: Option<&Path>,
) -> Result<ServiceConfig, ConfigError> {
    parse_service_config_with(text, source, &|name| std::env::var(name).ok())
}

/// [`parse_service_config`] with `${VAR}` lookups answered by `lookup` instead of the process
/// environment, so tests and embedders control what variables exist.
pub fn parse_service_config_with(
    text: &str,
    source: Option<&Path>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<ServiceConfig, ConfigError> {
    let file = source.unwrap_or(Path::new(UNNAMED));
    let mut tree = parse_yaml(text, file)?;
    let expansion = expand_tree(&mut tree, lookup);
    let mut walk = Walk::new(file, true, expansion);
    let mut config = ServiceConfig::default();
    if !tree.is_null() {
        parse_sections(&mut walk, &tree, &mut config)?;
    }
    config.warnings = walk.into_warnings();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../config.example.yaml");

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

    /// The example with the commented-out block starting at the line `header` uncommented.
    fn uncomment_block(text: &str, header: &str) -> String {
        let mut out = Vec::new();
        let mut prefix: Option<String> = None;
        for line in text.lines() {
            if line.trim() == header {
                prefix = Some(line[..line.find('#').unwrap_or(0)].to_string());
            }
            match &prefix {
                Some(indent) if line.starts_with(&format!("{indent}# ")) => {
                    out.push(format!("{indent}{}", &line[indent.len() + 2..]));
                }
                _ => {
                    prefix = None;
                    out.push(line.to_string());
                }
            }
        }
        out.join("\n")
    }

    #[test]
    fn defaults() {
        let config = ServiceConfig::default();
        assert_eq!(config.server.host, "127.0.0.1");
        assert_eq!(config.server.port, 3000);
        assert_eq!(config.server.mode, Mode::Proxy);
        assert_eq!(config.proxy.separator, "__");
        assert_eq!(config.proxy.default_timeout, Duration::from_secs(60));
        assert_eq!(config.proxy.startup_timeout, Duration::from_secs(60));
        assert!(!config.security.enable_auth);
        assert!(config.security.api_keys.is_empty());
        assert_eq!(config.llm, LlmSettings::default());
        assert_eq!(config.llm.provider, None);
        assert_eq!(config.execution.max_parallel_tasks, 10);
        assert_eq!(config.execution.task_timeout, Duration::from_secs(300));
        assert_eq!(config.execution.retry_count, 3);
        assert!(config.warnings.is_empty());
    }

    #[test]
    fn empty_files_and_sections_are_all_defaults() {
        for yaml in [
            "",
            "\n",
            "# only a comment\n",
            "~",
            "server:\nproxy:\nllm:\n",
            "{}",
        ] {
            assert_eq!(parse(yaml), ServiceConfig::default(), "{yaml:?}");
        }
    }

    #[test]
    fn example_file_is_exactly_the_defaults() {
        assert_eq!(parse(EXAMPLE), ServiceConfig::default());
    }

    #[test]
    fn example_file_commented_out_blocks_are_valid() {
        let text = uncomment_block(EXAMPLE, "# api_keys:").replace("  api_keys: []\n", "");
        let text = uncomment_block(&text, "# llm:");
        let config = parse(&text);
        assert_eq!(
            config.security.api_keys,
            vec![ApiKeyEntry {
                name: "ci".into(),
                key: "k-123-secret".into(),
                permissions: vec![Permission::Read, Permission::Execute],
            }]
        );
        assert_eq!(config.llm.provider, Some(ProviderKind::OpenAi));
        assert_eq!(config.llm.model.as_deref(), Some("gpt-4o-mini"));
        assert_eq!(config.llm.api_key.as_deref(), Some("sk-secret"));
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    #[test]
    fn syntax_errors_name_the_file() {
        let err = parse_service_config_with(
            "server:\n  port: [1, 2\n",
            Some(Path::new("/etc/orch/config.yaml")),
            &env,
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err:?}");
        assert!(
            err.to_string().starts_with("/etc/orch/config.yaml:"),
            "{err}"
        );
        assert!(!err.to_string().contains('\n'), "{err}");
    }

    #[test]
    fn load_reads_the_file() {
        let path =
            std::env::temp_dir().join(format!("mcp-orch-config-{}.yaml", std::process::id()));
        std::fs::write(&path, "server: {port: 4000}\n").unwrap();
        let loaded = load_service_config(&path);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(loaded.unwrap().server.port, 4000);
        assert!(matches!(
            load_service_config(&path),
            Err(ConfigError::Read { .. })
        ));
    }
}
