//! The `security:` section of `config.yaml`: API keys, Host/Origin allow-lists, CORS, body
//! size, connection timeouts and rate limits. Every value is checked here, with its exact key
//! path in errors; keys are never echoed (only their type), because they are secrets.

use std::time::Duration;

use serde_json::{Map, Value};

use super::tree::{Walk, child, field, index};
use super::{
    ApiKeyEntry, ConfigError, Permission, Rate, RateLimitSettings, SecuritySettings, parse_duration,
};

/// The keys of `security:`.
const KEYS: &[&str] = &[
    "enable_auth",
    "api_keys",
    "allowed_hosts",
    "allowed_origins",
    "cors_origins",
    "max_body_size",
    "header_timeout",
    "body_timeout",
    "rate_limits",
];

/// The endpoint classes of `security.rate_limits`.
const CLASSES: &[&str] = &["discovery", "management", "batch", "calls"];

/// Smallest and largest `max_body_size`.
const MIN_BODY: u64 = 1024;
const MAX_BODY: u64 = 1024 * 1024 * 1024;

pub(super) fn parse_security(
    walk: &mut Walk,
    map: &Map<String, Value>,
    out: &mut SecuritySettings,
) -> Result<(), ConfigError> {
    walk.unknown_keys("security", map, KEYS);
    if let Some(v) = field(map, "enable_auth") {
        out.enable_auth = walk.boolean("security.enable_auth", v)?;
    }
    if let Some(v) = field(map, "api_keys") {
        out.api_keys = parse_api_keys(walk, v)?;
    }
    if let Some(v) = field(map, "allowed_hosts") {
        out.allowed_hosts = word_list(
            walk,
            "security.allowed_hosts",
            v,
            "a host name, `name:port` or `*`",
            valid_host,
        )?;
    }
    if let Some(v) = field(map, "allowed_origins") {
        out.allowed_origins = word_list(
            walk,
            "security.allowed_origins",
            v,
            "an origin like `https://app.example.com`, `http://localhost:*`, `null` or `*`",
            |s| s == "*" || s == "null" || valid_origin(s),
        )?;
    }
    if let Some(v) = field(map, "cors_origins") {
        out.cors_origins = word_list(
            walk,
            "security.cors_origins",
            v,
            "an origin like `https://app.example.com`, `http://localhost:*` or `*`",
            |s| s == "*" || valid_origin(s),
        )?;
    }
    if let Some(v) = field(map, "max_body_size") {
        let bytes = byte_size(walk, "security.max_body_size", v)?;
        out.max_body_bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
    }
    if let Some(v) = field(map, "header_timeout") {
        out.header_timeout = walk.duration("security.header_timeout", v)?;
    }
    if let Some(v) = field(map, "body_timeout") {
        out.body_timeout = walk.duration("security.body_timeout", v)?;
    }
    if let Some(v) = field(map, "rate_limits") {
        let section = walk.object(
            "security.rate_limits",
            v,
            "a mapping of rate limits per endpoint class",
        )?;
        parse_rate_limits(walk, section, &mut out.rate_limits)?;
    }
    Ok(())
}

fn parse_api_keys(walk: &mut Walk, v: &Value) -> Result<Vec<ApiKeyEntry>, ConfigError> {
    let list_path = "security.api_keys";
    let expected = format!(
        "{} of {{name, key, permissions}} entries",
        walk.array_word()
    );
    let items = v
        .as_array()
        .ok_or_else(|| walk.invalid(list_path, &expected, Some(v)))?;
    let mut keys: Vec<ApiKeyEntry> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = index(list_path, i);
        let entry = parse_api_key(walk, &path, item)?;
        for (j, earlier) in keys.iter().enumerate() {
            for (what, same) in [
                ("name", earlier.name == entry.name),
                ("key", earlier.key == entry.key),
            ] {
                if same {
                    return Err(walk.invalid_with(
                        &child(&path, what),
                        format!(
                            "a {what} different from `{}`",
                            child(&index(list_path, j), what)
                        ),
                        ", but both are the same".into(),
                    ));
                }
            }
        }
        keys.push(entry);
    }
    Ok(keys)
}

fn parse_api_key(walk: &mut Walk, path: &str, value: &Value) -> Result<ApiKeyEntry, ConfigError> {
    let map = walk.object(
        path,
        value,
        "a mapping with `name`, `key` and `permissions`",
    )?;
    walk.unknown_keys(path, map, &["name", "key", "permissions"]);
    let name = walk.non_empty_string(
        &child(path, "name"),
        walk.required(path, map, "name", "a non-empty name")?,
        "a non-empty name",
    )?;
    let key = walk.secret_string(
        &child(path, "key"),
        walk.required(path, map, "key", "a non-empty key")?,
        "a non-empty key",
    )?;
    if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(walk.invalid_with(
            &child(path, "key"),
            "a key without spaces or control characters (it travels in an HTTP header)",
            String::new(),
        ));
    }
    let permissions_expected = "a list of permissions (`read`, `write`, `execute`)";
    let permissions_path = child(path, "permissions");
    let listed = walk.string_list(
        &permissions_path,
        walk.required(path, map, "permissions", permissions_expected)?,
    )?;
    let mut permissions = Vec::with_capacity(listed.len());
    for (i, name) in listed.iter().enumerate() {
        match Permission::from_name(name) {
            Some(permission) => permissions.push(permission),
            None => {
                return Err(walk.invalid(
                    &index(&permissions_path, i),
                    "one of `read`, `write`, `execute`",
                    Some(&Value::String(name.clone())),
                ));
            }
        }
    }
    permissions.sort();
    permissions.dedup();
    Ok(ApiKeyEntry {
        name,
        key,
        permissions,
    })
}

/// A list of strings, or one comma-separated string (what `${VAR}` can produce); every
/// element is trimmed, must be non-empty and pass `valid`.
fn word_list(
    walk: &Walk,
    path: &str,
    value: &Value,
    expected_item: &str,
    valid: impl Fn(&str) -> bool,
) -> Result<Vec<String>, ConfigError> {
    let items: Vec<(String, String)> = match value {
        Value::String(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| (path.to_owned(), s.to_owned()))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let at = index(path, i);
                walk.string(&at, item).map(|s| (at, s.trim().to_owned()))
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(walk.invalid(
                path,
                format!(
                    "{} of strings or a comma-separated string",
                    walk.array_word()
                ),
                Some(value),
            ));
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (at, item) in items {
        if item.is_empty() || !valid(&item) {
            return Err(walk.invalid(&at, expected_item, Some(&Value::String(item))));
        }
        out.push(item);
    }
    Ok(out)
}

/// `*`, a host name or IP address, `name:port`, or a bracketed IPv6 address.
fn valid_host(text: &str) -> bool {
    text == "*"
        || (!text.contains(['/', '@', '?', '#'])
            && !text.chars().any(char::is_whitespace)
            && http::uri::Authority::try_from(text).is_ok_and(|a| !a.host().is_empty()))
        || text.parse::<std::net::Ipv6Addr>().is_ok()
}

/// `http(s)://host`, with an optional `:port` or `:*`, nothing after.
fn valid_origin(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else {
        return false;
    };
    let rest = rest.strip_suffix(":*").unwrap_or(rest);
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && !rest.contains(['/', '@', '?', '#', '*'])
        && http::uri::Authority::try_from(rest).is_ok()
}

/// A size: a whole number of bytes, or a string with a unit (`KiB`, `MiB`, `GiB`, `KB`,
/// `MB`, `GB`, `B`).
fn byte_size(walk: &Walk, path: &str, value: &Value) -> Result<u64, ConfigError> {
    let parsed = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => parse_size(s),
        _ => None,
    };
    match parsed {
        Some(n) if (MIN_BODY..=MAX_BODY).contains(&n) => Ok(n),
        _ => Err(walk.invalid(
            path,
            "a size from 1KiB to 1GiB: a number of bytes or a string like \"4MiB\"",
            Some(value),
        )),
    }
}

fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(multiplier)
}

fn parse_rate_limits(
    walk: &mut Walk,
    map: &Map<String, Value>,
    out: &mut RateLimitSettings,
) -> Result<(), ConfigError> {
    let mut known = CLASSES.to_vec();
    known.push("max_clients");
    walk.unknown_keys("security.rate_limits", map, &known);
    for class in CLASSES {
        let Some(v) = field(map, class) else { continue };
        let path = format!("security.rate_limits.{class}");
        let rate = parse_rate(v).ok_or_else(|| {
            walk.invalid(
                &path,
                "a rate like \"100/h\", \"500/hour\", \"6000/min\", \"10/s\", or \"off\"",
                Some(v),
            )
        })?;
        let slot = match *class {
            "discovery" => &mut out.discovery,
            "management" => &mut out.management,
            "batch" => &mut out.batch,
            _ => &mut out.calls,
        };
        *slot = rate;
    }
    if let Some(v) = field(map, "max_clients") {
        let n = walk.integer(
            "security.rate_limits.max_clients",
            v,
            1,
            10_000_000,
            "a whole number from 1 to 10000000",
        )?;
        out.max_clients = usize::try_from(n).unwrap_or(usize::MAX);
    }
    Ok(())
}

/// `"N/unit"` → `Some(Some(rate))`; `"off"` / `false` → `Some(None)` (unlimited).
fn parse_rate(value: &Value) -> Option<Option<Rate>> {
    let text = match value {
        Value::Bool(false) => return Some(None),
        Value::String(s) => s.trim(),
        _ => return None,
    };
    if text == "off" || text == "false" {
        return Some(None);
    }
    let (count, period) = text.split_once('/')?;
    let count: u32 = count.trim().parse().ok().filter(|n| *n >= 1)?;
    let period = match period.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        "d" | "day" => Duration::from_secs(86_400),
        other => parse_duration(other).filter(|d| !d.is_zero())?,
    };
    Some(Some(Rate { count, period }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_sizes() {
        let rate = |s: &str| parse_rate(&Value::String(s.into()));
        assert_eq!(
            rate("100/h"),
            Some(Some(Rate {
                count: 100,
                period: Duration::from_secs(3600)
            }))
        );
        assert_eq!(
            rate(" 5 / 30s "),
            Some(Some(Rate {
                count: 5,
                period: Duration::from_secs(30)
            }))
        );
        assert_eq!(rate("off"), Some(None));
        assert_eq!(parse_rate(&Value::Bool(false)), Some(None));
        for bad in ["0/h", "100", "100/fortnight", "-1/h", "1/0s", ""] {
            assert_eq!(rate(bad), None, "{bad}");
        }
        assert_eq!(parse_size("4MiB"), Some(4 << 20));
        assert_eq!(parse_size("64 KiB"), Some(64 << 10));
        assert_eq!(parse_size("2048"), Some(2048));
        assert_eq!(parse_size("1 MB"), Some(1_000_000));
        assert_eq!(parse_size("4 mb"), None);
    }

    #[test]
    fn hosts_and_origins() {
        for ok in [
            "localhost",
            "127.0.0.1",
            "::1",
            "[::1]",
            "a.example:8080",
            "*",
        ] {
            assert!(valid_host(ok), "{ok}");
        }
        for bad in ["http://x", "a b", "x/y", "u@x"] {
            assert!(!valid_host(bad), "{bad}");
        }
        for ok in [
            "https://app.example.com",
            "http://localhost:*",
            "http://[::1]:3000",
        ] {
            assert!(valid_origin(ok), "{ok}");
        }
        for bad in [
            "app.example.com",
            "ftp://x",
            "https://x/path",
            "https://*.x",
        ] {
            assert!(!valid_origin(bad), "{bad}");
        }
    }
}
