//! Credentials stay where they belong: a client's key or JWT is never forwarded to a
//! server (each remote gets only its own configured headers, each child only its own
//! environment), never returned by an endpoint, and never logged — every log line of the
//! runs below (at `LOG_LEVEL=trace`, and with `RUST_LOG=trace` for every library) is
//! checked for every configured key, the JWT secret and every token sent.
//!
//! Also: a JWT minted with the Python one-liner from the README is accepted.

mod common;
mod security_support;

use reqwest::Method;
use serde_json::{Value, json};

use common::{FIXTURE, HttpFixture, call, text};
use security_support::{JWT_SECRET, KEYS, assert_no_secret_in_logs, jwt, key, send, start_with};

const DOWNSTREAM_TOKEN: &str = "downstream-token-a87ff679a2f3e71d9181a67b7542122c";

fn every_secret() -> Vec<String> {
    let mut all: Vec<String> = KEYS.iter().map(|(_, _, k, _)| k.to_string()).collect();
    all.push(JWT_SECRET.to_owned());
    all
}

fn assert_no_secret_in(what: &str, text: &str, tokens: &[String]) {
    for secret in every_secret().iter().chain(tokens) {
        assert!(
            !text.contains(secret.as_str()),
            "{what} contains a secret: {text}"
        );
    }
}

async fn run_suite(rust_log: Option<&str>) {
    let remote = HttpFixture::start(&[]).await;
    let servers = json!({
        "fx": { "command": FIXTURE, "args": ["--stdio"] },
        "rf": { "url": remote.url, "headers": { "X-Downstream-Token": "${DOWNSTREAM_TOKEN}" } },
    });
    let mut env = vec![("DOWNSTREAM_TOKEN", DOWNSTREAM_TOKEN)];
    if let Some(directives) = rust_log {
        env.push(("RUST_LOG", directives));
    }
    let mut proxy = start_with(servers, "", &env).await;
    let full = key(&["read", "write", "execute"]);
    let token = jwt("secrets-suite", &["read", "execute"], 600);
    let expired = jwt("old", &["read"], -600);
    let tokens = vec![token.clone(), expired.clone()];

    // MCP with a key: the remote server sees no Authorization header, only its own one.
    proxy.token = Some(full.to_owned());
    let client = proxy.mcp().await;
    let result = call(&client, "rf__headers", json!({}))
        .await
        .unwrap_or_else(|e| panic!("rf__headers: {e}"));
    let seen: Value = serde_json::from_str(&text(&result)).unwrap_or(Value::Null);
    assert!(seen.is_object(), "{}", text(&result));
    assert_eq!(
        seen.get("authorization"),
        None,
        "a client credential reached the server: {seen}"
    );
    assert_eq!(seen["x-downstream-token"], DOWNSTREAM_TOKEN, "{seen}");
    assert_no_secret_in(
        "the headers a remote server received",
        &seen.to_string(),
        &tokens,
    );
    // Children never inherit mcp-orch's own secrets.
    for variable in ["JWT_SECRET", "API_KEY"] {
        let result = call(&client, "fx__env", json!({"name": variable}))
            .await
            .unwrap_or_else(|e| panic!("fx__env: {e}"));
        assert_eq!(
            result.is_error,
            Some(true),
            "{variable} leaked: {}",
            text(&result)
        );
    }
    client.cancel().await.ok();

    // REST with a JWT, the same check.
    let answer = send(
        &proxy,
        Method::POST,
        "/tools/rf.headers",
        Some(&token),
        Some("{}".into()),
        &[],
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let seen: Value =
        serde_json::from_str(answer.json()["content"][0]["text"].as_str().unwrap_or(""))
            .unwrap_or(Value::Null);
    assert_eq!(seen.get("authorization"), None, "{seen}");
    assert_no_secret_in(
        "the headers a remote server received",
        &seen.to_string(),
        &tokens,
    );

    // No endpoint returns a secret, whatever it is asked, successes and failures alike.
    let bad = "k-guess-0000000000000000000000000000";
    let probes: Vec<(Method, &str, Option<&str>, Option<String>)> = vec![
        (Method::GET, "/servers", Some(full), None),
        (Method::GET, "/tools", Some(&token), None),
        (Method::GET, "/tools/rf", Some(full), None),
        (Method::GET, "/health", Some(full), None),
        (Method::GET, "/health", Some(bad), None),
        (Method::GET, "/tools", Some(bad), None),
        (Method::GET, "/tools", Some(&expired), None),
        (Method::POST, "/tools/fx.echo", Some(key(&["read"])), Some("{}".into())),
        (Method::POST, "/mcp", Some(key(&["read"])), Some(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "fx__echo"}}).to_string())),
        (Method::POST, "/mcp", Some(full), Some("not json".into())),
    ];
    for (method, path, credential, body) in probes {
        let answer = send(&proxy, method.clone(), path, credential, body, &[]).await;
        let shown = format!("{answer:?}");
        assert_no_secret_in(&format!("{method} {path}"), &shown, &tokens);
        assert!(
            !shown.contains(bad),
            "{method} {path} echoed the presented token: {shown}"
        );
        assert!(
            !shown.contains(DOWNSTREAM_TOKEN),
            "{method} {path}: {shown}"
        );
    }
    let mut all_tokens = tokens.clone();
    all_tokens.push(bad.to_owned());
    all_tokens.push(DOWNSTREAM_TOKEN.to_owned());
    // Let the last log lines arrive, then stop and check every line.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let logs_before_stop = proxy.logs();
    let stderr = proxy.stderr.clone();
    proxy.stop().await;
    let logs = stderr
        .lock()
        .map(|l| l.join("\n"))
        .unwrap_or(logs_before_stop);
    assert!(logs.contains("authentication on"), "{logs}");
    if rust_log.is_some() {
        assert!(logs.contains("TRACE"), "RUST_LOG=trace was not in effect");
    }
    for secret in every_secret().iter().chain(&all_tokens) {
        for line in logs.lines() {
            assert!(
                !line.contains(secret.as_str()),
                "a secret reached the log: {line}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_never_forwarded_returned_or_logged() {
    run_suite(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_leaks_even_with_every_library_tracing() {
    run_suite(Some("trace")).await;
}

/// The README's Python one-liner (standard library only), run as documented.
const MINT_WITH_PYTHON: &str = r#"import base64,hashlib,hmac,json,os,sys,time
b=lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
h=b(json.dumps({"alg":"HS256","typ":"JWT"}).encode())
p=b(json.dumps({"sub":sys.argv[1],"permissions":sys.argv[2].split(","),"exp":int(time.time())+int(sys.argv[3])}).encode())
print(h+"."+p+"."+b(hmac.new(os.environ["JWT_SECRET"].encode(),(h+"."+p).encode(),hashlib.sha256).digest()))"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_minted_with_the_readme_python_one_liner_works() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .unwrap_or_else(|e| panic!("README.md: {e}"));
    assert!(
        readme.contains(MINT_WITH_PYTHON),
        "the README's one-liner and this test differ"
    );
    let mint = |permissions: &str| {
        let output = std::process::Command::new("python3")
            .args(["-c", MINT_WITH_PYTHON, "ci-bot", permissions, "600"])
            .env("JWT_SECRET", JWT_SECRET)
            .output()
            .unwrap_or_else(|e| panic!("python3 is needed to run the README's JWT example: {e}"));
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    let proxy = start_with(
        json!({ "fx": { "command": FIXTURE, "args": ["--stdio"] } }),
        "",
        &[],
    )
    .await;
    let token = mint("read,execute");
    let answer = send(
        &proxy,
        Method::POST,
        "/tools/fx.echo",
        Some(&token),
        Some(r#"{"text":"py"}"#.into()),
        &[],
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["content"][0]["text"], "py");
    let reader = mint("read");
    let answer = send(
        &proxy,
        Method::POST,
        "/tools/fx.echo",
        Some(&reader),
        Some("{}".into()),
        &[],
    )
    .await;
    assert_eq!(answer.status, 403, "{answer:?}");
    assert!(
        answer.json()["error"]["details"]["key"] == "jwt:ci-bot",
        "{answer:?}"
    );
    assert_no_secret_in_logs(&proxy, &[token, reader]);
    proxy.stop().await;
}
