//! `proxy.restart`, `proxy.health` and the other keys that say how servers are kept alive:
//! restart backoff, health pings, the hard ceiling on a call, the shutdown grace period and
//! whether config files are watched for changes.

use std::time::Duration;

use serde_json::{Map, Value};

use super::tree::{Walk, child, field};
use super::{ConfigError, ProxySettings};

/// How a server that went away is restarted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestartPolicy {
    /// Delay before the first restart; doubles with every consecutive failure. Default 1 s.
    pub initial_backoff: Duration,
    /// Longest delay between quick retries. Default 60 s.
    pub max_backoff: Duration,
    /// Consecutive failures after which the server is `failed` and retried slowly. Default 5.
    pub give_up_after: u32,
    /// Delay between retries once given up. Default 5 min.
    pub slow_retry: Duration,
    /// A server up this long has its failure count reset. Default 30 s.
    pub stable_after: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            give_up_after: 5,
            slow_retry: Duration::from_secs(300),
            stable_after: Duration::from_secs(30),
        }
    }
}

/// Periodic MCP `ping` to every server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthPolicy {
    /// Time between pings; `None` turns health checks off. Default 30 s.
    pub interval: Option<Duration>,
    /// A ping unanswered this long (with no other message from the server meanwhile)
    /// restarts the server. Default 10 s.
    pub timeout: Duration,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            interval: Some(Duration::from_secs(30)),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Keys of `proxy:` this module reads.
pub(super) const LIFECYCLE_KEYS: &[&str] = &[
    "max_timeout",
    "shutdown_grace",
    "watch_config",
    "restart",
    "health",
];

/// Reads the lifecycle keys of the `proxy:` section.
pub(super) fn parse_lifecycle(
    walk: &mut Walk,
    map: &Map<String, Value>,
    out: &mut ProxySettings,
) -> Result<(), ConfigError> {
    if let Some(v) = field(map, "max_timeout") {
        out.max_timeout = walk.duration("proxy.max_timeout", v)?;
    }
    if let Some(v) = field(map, "shutdown_grace") {
        out.shutdown_grace = walk.duration("proxy.shutdown_grace", v)?;
    }
    if let Some(v) = field(map, "watch_config") {
        out.watch_config = walk.boolean("proxy.watch_config", v)?;
    }
    if let Some(v) = field(map, "restart") {
        let path = "proxy.restart";
        let map = walk.object(path, v, "a mapping of restart settings")?;
        walk.unknown_keys(
            path,
            map,
            &[
                "initial_backoff",
                "max_backoff",
                "give_up_after",
                "slow_retry",
                "stable_after",
            ],
        );
        let restart = &mut out.restart;
        for (key, slot) in [
            ("initial_backoff", &mut restart.initial_backoff),
            ("max_backoff", &mut restart.max_backoff),
            ("slow_retry", &mut restart.slow_retry),
            ("stable_after", &mut restart.stable_after),
        ] {
            if let Some(v) = field(map, key) {
                *slot = walk.duration(&child(path, key), v)?;
            }
        }
        if let Some(v) = field(map, "give_up_after") {
            restart.give_up_after = walk.integer(
                &child(path, "give_up_after"),
                v,
                1,
                1000,
                "a number of consecutive failures between 1 and 1000",
            )? as u32;
        }
    }
    if let Some(v) = field(map, "health") {
        let path = "proxy.health";
        let map = walk.object(path, v, "a mapping like {interval: 30s, timeout: 10s}")?;
        walk.unknown_keys(path, map, &["interval", "timeout", "enabled"]);
        if let Some(v) = field(map, "interval") {
            out.health.interval = Some(walk.duration(&child(path, "interval"), v)?);
        }
        if let Some(v) = field(map, "timeout") {
            out.health.timeout = walk.duration(&child(path, "timeout"), v)?;
        }
        if let Some(v) = field(map, "enabled")
            && !walk.boolean(&child(path, "enabled"), v)?
        {
            out.health.interval = None;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::parse_service_config_with;
    use super::*;

    fn parse(yaml: &str) -> ProxySettings {
        match parse_service_config_with(yaml, None, &|_| None) {
            Ok(config) => config.proxy,
            Err(error) => panic!("{yaml}: {error}"),
        }
    }

    #[test]
    fn defaults_and_overrides() {
        let defaults = parse("");
        assert_eq!(defaults.restart, RestartPolicy::default());
        assert_eq!(defaults.health, HealthPolicy::default());
        assert_eq!(defaults.max_timeout, Duration::from_secs(600));
        assert!(defaults.watch_config);
        let set = parse(
            "proxy:\n  max_timeout: 2m\n  shutdown_grace: 3\n  watch_config: false\n  restart: {initial_backoff: 200ms, give_up_after: 2}\n  health: {interval: 5s, timeout: 1s}\n",
        );
        assert_eq!(set.max_timeout, Duration::from_secs(120));
        assert_eq!(set.shutdown_grace, Duration::from_secs(3));
        assert!(!set.watch_config);
        assert_eq!(set.restart.initial_backoff, Duration::from_millis(200));
        assert_eq!(set.restart.give_up_after, 2);
        assert_eq!(set.health.interval, Some(Duration::from_secs(5)));
        let off = parse("proxy:\n  health: {enabled: false}\n");
        assert_eq!(off.health.interval, None);
    }

    #[test]
    fn bad_values_name_their_key() {
        let error =
            parse_service_config_with("proxy:\n  restart: {give_up_after: 0}\n", None, &|_| None)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
        assert!(error.contains("proxy.restart.give_up_after"), "{error}");
        let error =
            parse_service_config_with("proxy:\n  health: {interval: soon}\n", None, &|_| None)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
        assert!(error.contains("proxy.health.interval"), "{error}");
    }
}
