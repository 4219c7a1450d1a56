//! Shared by the security tests: a proxy with one key per permission combination and a
//! JWT secret, raw HTTP requests that show status, headers and body, JWT minting, and the
//! check that no secret reached a log line.

#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::common::{FIXTURE, Proxy};

pub const JWT_SECRET: &str = "jwt-secret-for-tests-0123456789abcdef";

/// (name, environment variable, key, permissions).
pub const KEYS: &[(&str, &str, &str, &[&str])] = &[
    (
        "reader",
        "KEY_READER",
        "k-reader-5d41402abc4b2a76b9719d911017c592",
        &["read"],
    ),
    (
        "writer",
        "KEY_WRITER",
        "k-writer-7d793037a0760186574b0282f2f435e7",
        &["write"],
    ),
    (
        "executor",
        "KEY_EXECUTOR",
        "k-executor-1f3870be274f6c49b3e31a0c6728957f",
        &["execute"],
    ),
    (
        "read_exec",
        "KEY_READ_EXEC",
        "k-readexec-8277e0910d750195b448797616e091ad",
        &["read", "execute"],
    ),
    (
        "read_write",
        "KEY_READ_WRITE",
        "k-readwrite-e4d909c290d0fb1ca068ffaddf22cbd0",
        &["read", "write"],
    ),
    (
        "exec_write",
        "KEY_EXEC_WRITE",
        "k-execwrite-0cc175b9c0f1b6a831c399e269772661",
        &["write", "execute"],
    ),
    (
        "full",
        "KEY_FULL",
        "k-full-92eb5ffee6ae2fec3ad71c777531578f",
        &["read", "write", "execute"],
    ),
];

/// The key with exactly these permissions.
pub fn key(permissions: &[&str]) -> &'static str {
    let mut wanted: Vec<&str> = permissions.to_vec();
    wanted.sort();
    KEYS.iter()
        .find(|(_, _, _, p)| {
            let mut have = p.to_vec();
            have.sort();
            have == wanted
        })
        .map(|(_, _, key, _)| *key)
        .unwrap_or_else(|| panic!("no test key with {permissions:?}"))
}

/// The key holding every permission except `missing`.
pub fn key_without(missing: &str) -> &'static str {
    let rest: Vec<&str> = ["read", "write", "execute"]
        .into_iter()
        .filter(|p| *p != missing)
        .collect();
    key(&rest)
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A JWT signed with [`JWT_SECRET`], expiring `expires_in` seconds from now (negative:
/// already expired).
pub fn jwt(subject: &str, permissions: &[&str], expires_in: i64) -> String {
    let exp = now() as i64 + expires_in;
    mcp_orch::security::jwt::mint(
        JWT_SECRET,
        &json!({ "sub": subject, "permissions": permissions, "exp": exp }),
    )
}

/// `config.yaml` naming every key through a `${VAR}` reference, plus `extra` lines under
/// `security:`.
pub fn config_yaml(extra: &str) -> String {
    let mut yaml = String::from("security:\n  api_keys:\n");
    for (name, var, _, permissions) in KEYS {
        yaml.push_str(&format!(
            "    - {{name: {name}, key: \"${{{var}}}\", permissions: [{}]}}\n",
            permissions.join(", ")
        ));
    }
    yaml.push_str(extra);
    yaml
}

/// The environment for [`config_yaml`]: every key variable and `JWT_SECRET`, trace logs.
pub fn env() -> Vec<(&'static str, &'static str)> {
    let mut env: Vec<(&str, &str)> = KEYS.iter().map(|(_, var, key, _)| (*var, *key)).collect();
    env.push(("JWT_SECRET", JWT_SECRET));
    env.push(("LOG_LEVEL", "trace"));
    env
}

/// A proxy with the fixture as server `fx`, every test key and JWTs on.
pub async fn start(extra_security: &str) -> Proxy {
    start_with(
        json!({ "fx": { "command": FIXTURE, "args": ["--stdio"] } }),
        extra_security,
        &[],
    )
    .await
}

/// Like [`start`] with other servers and extra environment variables.
pub async fn start_with(servers: Value, extra_security: &str, extra_env: &[(&str, &str)]) -> Proxy {
    let mut env = env();
    env.extend_from_slice(extra_env);
    let yaml = config_yaml(extra_security);
    let mut proxy =
        Proxy::start_env(json!({ "mcpServers": servers }), Some(&yaml), &[], &env).await;
    proxy.token = Some(key(&["read", "write", "execute"]).to_owned());
    proxy.settled().await;
    proxy.token = None;
    proxy
}

/// What came back.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// Every JSON-RPC message in the body (plain JSON or SSE `data:` lines).
    pub fn messages(&self) -> Vec<Value> {
        if let Ok(value) = serde_json::from_str::<Value>(&self.body) {
            return match value {
                Value::Array(items) => items,
                other => vec![other],
            };
        }
        self.body
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str(data.trim()).ok())
            .collect()
    }
}

/// One request; the body is read for at most 5 s (streams are cut there).
pub async fn send(
    proxy: &Proxy,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = proxy
        .http
        .request(method.clone(), format!("{}{path}", proxy.base))
        .header("accept", "application/json, text/event-stream");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = tokio::time::timeout(Duration::from_secs(30), request.send())
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer within 30 s"))
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    let mut response = response;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(chunk)) = response.chunk().await {
            body.extend_from_slice(&chunk);
        }
    })
    .await;
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Fails if any secret (a key, the JWT secret, or one of `tokens`) appears in a log line.
pub fn assert_no_secret_in_logs(proxy: &Proxy, tokens: &[String]) {
    let logs = proxy.logs();
    assert!(
        logs.lines().count() > 5,
        "suspiciously few log lines: {logs}"
    );
    let mut secrets: Vec<String> = KEYS.iter().map(|(_, _, key, _)| key.to_string()).collect();
    secrets.push(JWT_SECRET.to_owned());
    for token in tokens {
        secrets.push(token.clone());
        // The signature alone identifies a JWT too.
        if let Some(signature) = token.rsplit('.').next().filter(|s| s.len() >= 20) {
            secrets.push(signature.to_owned());
        }
    }
    for secret in &secrets {
        for line in logs.lines() {
            assert!(
                !line.contains(secret.as_str()),
                "a secret reached the log: {line}"
            );
        }
    }
}
