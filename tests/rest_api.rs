//! The REST face scripts use: `GET /tools`, `GET /tools/{server}`, `POST /tools/{server}.{tool}`,
//! `GET /servers`, `GET /health`, and the error format.

mod common;

use common::{Proxy, everything_entry, fixture_entry};
use serde_json::{Value, json};

fn find<'a>(list: &'a Value, key: &str, name: &str) -> &'a Value {
    list.as_array()
        .and_then(|all| all.iter().find(|t| t[key] == name))
        .unwrap_or_else(|| panic!("{name} not in {list}"))
}

fn assert_error_format(body: &Value, code: &str) {
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(error["details"].is_object(), "{body}");
    assert!(
        error["request_id"].as_str().is_some_and(|r| !r.is_empty()),
        "{body}"
    );
    assert!(
        error["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_servers_health_and_calls() {
    let proxy = Proxy::start(
        json!({
            "my_fix-1": fixture_entry("fixture"),
            "everything": everything_entry(),
            "off": { "command": "true", "disabled": true }
        }),
        &[],
    )
    .await;
    proxy.settled().await;

    let (status, tools) = proxy.get("/tools").await;
    assert_eq!(status, 200);
    let echo = find(&tools["tools"], "name", "my_fix-1__echo");
    assert_eq!(echo["server"], "my_fix-1");
    assert_eq!(echo["original_name"], "echo");
    assert_eq!(echo["rest_path"], "/tools/my_fix-1.echo");
    assert!(echo["description"].as_str().is_some_and(|d| !d.is_empty()));
    assert_eq!(echo["input_schema"]["type"], "object");
    find(&tools["tools"], "name", "everything__get-sum");
    assert_eq!(
        tools["count"].as_u64(),
        tools["tools"].as_array().map(|a| a.len() as u64)
    );

    let (status, one) = proxy.get("/tools/everything").await;
    assert_eq!(status, 200);
    assert!(
        one["tools"]
            .as_array()
            .is_some_and(|t| t.iter().all(|t| t["server"] == "everything"))
    );
    assert_eq!(one["status"], "ready");
    let (status, body) = proxy.get("/tools/nope").await;
    assert_eq!(status, 404);
    assert_error_format(&body, "SERVER_NOT_FOUND");

    // Calls by {server}.{tool}; server names with `_`, `-` are resolved by the catalogue.
    let (status, result) = proxy
        .post("/tools/my_fix-1.echo", r#"{"text":"rest hello"}"#)
        .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["content"][0]["text"], "rest hello");
    let (status, result) = proxy
        .post("/tools/everything.get-sum", r#"{"a":40,"b":2}"#)
        .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["content"][0]["text"], "The sum of 40 and 2 is 42.");
    let (status, result) = proxy
        .post("/tools/my_fix-1.add", r#"{"a":1.5,"b":2}"#)
        .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["structuredContent"]["sum"], 3.5);
    // A tool's own error is a successful call with isError.
    let (status, result) = proxy
        .post("/tools/my_fix-1.fail", r#"{"message":"nope"}"#)
        .await;
    assert_eq!(status, 200);
    assert_eq!(result["isError"], true);
    // Empty body = no arguments.
    let (status, result) = proxy.post("/tools/my_fix-1.whoami", "").await;
    assert_eq!(status, 200, "{result}");

    let (status, body) = proxy.post("/tools/my_fix-1.nothing", "{}").await;
    assert_eq!(status, 404);
    assert_error_format(&body, "TOOL_NOT_FOUND");
    let (status, body) = proxy.post("/tools/my_fix-1.echo", "[1,2]").await;
    assert_eq!(status, 400);
    assert_error_format(&body, "INVALID_ARGUMENTS");
    let (status, body) = proxy.post("/tools/my_fix-1.echo", "{not json").await;
    assert_eq!(status, 400);
    assert_error_format(&body, "INVALID_ARGUMENTS");

    let (status, servers) = proxy.get("/servers").await;
    assert_eq!(status, 200);
    let fixture = find(&servers["servers"], "name", "my_fix-1");
    assert_eq!(fixture["status"], "ready");
    assert_eq!(fixture["transport"], "stdio");
    assert!(fixture["pid"].as_u64().is_some_and(|p| p > 1));
    assert!(fixture["uptime_seconds"].as_f64().is_some());
    assert!(fixture["tool_count"].as_u64().is_some_and(|n| n >= 8));
    assert!(fixture["last_error"].is_null());
    assert_eq!(
        find(&servers["servers"], "name", "off")["status"],
        "disabled"
    );

    let (status, health) = proxy.get("/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["servers"]["ready"], 2);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_a_failed_server_answer_at_once_with_a_clear_error() {
    // A long restart backoff keeps the crashed server down while we look at it.
    let proxy = Proxy::start_with(
        json!({ "mcpServers": { "dead": { "command": common::FIXTURE, "args": ["--stdio"] } } }),
        Some("proxy:\n  restart: {initial_backoff: 60s}\n"),
        &[],
    )
    .await;
    proxy.settled().await;
    // Crash it, then call it: an error naming the server, never a hang.
    let (status, _) = proxy.post("/tools/dead.crash", r#"{"code":7}"#).await;
    assert_eq!(status, 502);
    let started = std::time::Instant::now();
    let (status, body) = proxy.post("/tools/dead.echo", r#"{"text":"x"}"#).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert_eq!(status, 503, "{body}");
    assert_error_format(&body, "SERVER_NOT_RUNNING");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("'dead'") && message.contains("code 7"),
        "{message}"
    );
    let (_, servers) = proxy.get("/servers").await;
    let dead = find(&servers["servers"], "name", "dead");
    assert_eq!(dead["status"], "failed");
    assert!(
        dead["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("code 7")),
        "{dead}"
    );
    assert_eq!(dead["last_exit_code"], 7, "{dead}");
    // The restart is scheduled with the configured backoff.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let (_, servers) = proxy.get("/servers").await;
        let dead = find(&servers["servers"], "name", "dead").clone();
        if dead["next_retry_seconds"]
            .as_f64()
            .is_some_and(|s| s > 30.0)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no restart scheduled: {dead}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (_, health) = proxy.get("/health").await;
    assert_eq!(health["status"], "degraded");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_echoed() {
    let proxy = Proxy::start(json!({}), &[]).await;
    let response = proxy
        .http
        .get(format!("{}/tools/nothing-here", proxy.base))
        .header("x-request-id", "my-req-1")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("my-req-1")
    );
    let body: Value = response.json().await.unwrap_or_default();
    assert_eq!(body["error"]["request_id"], "my-req-1");
    proxy.stop().await;
}
