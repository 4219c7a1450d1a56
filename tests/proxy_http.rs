//! The promise of the README's first command: an MCP client pointed at `/mcp` sees the
//! merged tools of every server and can call them — against our fixture AND the real
//! `@modelcontextprotocol/server-everything`.

mod common;

use std::collections::HashSet;

use common::{Proxy, call, everything_entry, fixture_entry, text};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_tools_of_fixture_and_server_everything_are_listed_and_callable() {
    let proxy = Proxy::start(
        json!({ "fixture": fixture_entry("fixture"), "everything": everything_entry() }),
        &[],
    )
    .await;
    let client = proxy.mcp().await;
    let tools = client
        .peer()
        .list_all_tools()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let names: HashSet<String> = tools.iter().map(|t| t.name.to_string()).collect();
    for expected in [
        "fixture__echo",
        "fixture__add",
        "fixture__sleep",
        "everything__echo",
        "everything__get-sum",
    ] {
        assert!(
            names.contains(expected),
            "{expected} missing from {names:?}"
        );
    }
    assert!(
        names.iter().all(|n| mcp_orch::catalog::is_client_safe(n)),
        "{names:?}"
    );
    // Definitions pass through apart from the name.
    let sum = tools
        .iter()
        .find(|t| t.name == "everything__get-sum")
        .map(|t| t.input_schema.clone());
    assert_eq!(
        sum.and_then(|s| s.get("required").cloned()),
        Some(json!(["a", "b"])),
        "the input schema is the server's own"
    );

    let echoed = call(
        &client,
        "fixture__echo",
        json!({ "text": "hello through the proxy" }),
    )
    .await;
    assert_eq!(
        echoed.as_ref().map(text).ok().as_deref(),
        Some("hello through the proxy")
    );
    let sum = call(&client, "everything__get-sum", json!({ "a": 2, "b": 3 })).await;
    assert_eq!(
        sum.as_ref().map(text).ok().as_deref(),
        Some("The sum of 2 and 3 is 5.")
    );
    let echoed = call(&client, "everything__echo", json!({ "message": "hi" })).await;
    assert_eq!(echoed.as_ref().map(text).ok().as_deref(), Some("Echo: hi"));
    client.cancel().await.ok();
    assert_eq!(proxy.stop().await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_concurrent_calls_over_four_sessions_each_get_their_own_answer() {
    let proxy = Proxy::start(
        json!({ "a": fixture_entry("a"), "b": fixture_entry("b") }),
        &[],
    )
    .await;
    proxy.settled().await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(proxy.mcp().await);
    }
    let mut calls = Vec::new();
    for i in 0..32usize {
        let client = &clients[i % 4];
        let server = if i % 2 == 0 { "a" } else { "b" };
        calls.push(async move {
            // A small random-ish sleep first so replies come back out of order.
            let delay = (i * 7) % 50;
            let slept = call(client, &format!("{server}__sleep"), json!({ "ms": delay })).await;
            assert!(slept.is_ok(), "{slept:?}");
            let tag = format!("session {} call {i}", i % 4);
            let echoed = call(client, &format!("{server}__echo"), json!({ "text": tag })).await;
            (tag, echoed.map(|r| text(&r)))
        });
    }
    for (tag, answer) in futures::future::join_all(calls).await {
        assert_eq!(answer.ok().as_deref(), Some(tag.as_str()));
    }
    for client in clients {
        client.cancel().await.ok();
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_cannot_start_is_failed_while_the_others_serve() {
    let proxy = Proxy::start(
        json!({
            "good": fixture_entry("good"),
            "missing": { "command": "/nonexistent/definitely-not-a-command", "args": [] },
            "crashy": { "command": common::FIXTURE, "args": ["--fail-start"] }
        }),
        &[],
    )
    .await;
    let servers = proxy.settled().await;
    let status = |name: &str| {
        servers["servers"]
            .as_array()
            .and_then(|all| all.iter().find(|s| s["name"] == name).cloned())
            .unwrap_or_default()
    };
    assert_eq!(status("good")["status"], "ready");
    assert_eq!(status("missing")["status"], "failed");
    let reason = status("missing")["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        reason.contains("/nonexistent/definitely-not-a-command"),
        "{reason}"
    );
    assert_eq!(status("crashy")["status"], "failed");

    let client = proxy.mcp().await;
    let echoed = call(&client, "good__echo", json!({ "text": "still here" })).await;
    assert_eq!(
        echoed.as_ref().map(text).ok().as_deref(),
        Some("still here")
    );
    client.cancel().await.ok();
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tool_is_invalid_params() {
    let proxy = Proxy::start(json!({ "f": fixture_entry("f") }), &[]).await;
    let client = proxy.mcp().await;
    let error = call(&client, "f__no_such_tool", json!({})).await;
    match error {
        Err(rmcp::ServiceError::McpError(error)) => {
            assert_eq!(error.code.0, -32602);
            assert!(
                error.message.contains("f__no_such_tool"),
                "{}",
                error.message
            );
        }
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
    client.cancel().await.ok();
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_error_result_and_a_timeout_are_tool_errors_naming_the_server() {
    let proxy = Proxy::start(
        json!({ "slow": { "command": common::FIXTURE, "args": ["--stdio"], "timeout": 0.3 } }),
        &[],
    )
    .await;
    let client = proxy.mcp().await;
    let failed = call(&client, "slow__fail", json!({ "message": "boom" })).await;
    let failed = failed.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(failed.is_error, Some(true));
    assert_eq!(text(&failed), "boom");

    let started = std::time::Instant::now();
    let timed_out = call(&client, "slow__sleep", json!({ "ms": 5000 })).await;
    let timed_out = timed_out.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(timed_out.is_error, Some(true));
    let message = text(&timed_out);
    assert!(
        message.contains("'slow'") && message.contains("300ms"),
        "{message}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "the timeout fired late"
    );
    // The fixture saw the cancellation mcp-orch sent for the timed-out call.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !proxy.logs().contains("sleep cancelled") {
        assert!(
            std::time::Instant::now() < deadline,
            "no cancellation reached the server:\n{}",
            proxy.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    client.cancel().await.ok();
    proxy.stop().await;
}
