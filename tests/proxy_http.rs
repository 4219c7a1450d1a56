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

/// One raw JSON-RPC POST to `/mcp`: status, content type, and the JSON-RPC message of the
/// reply (the `data:` of an SSE reply, or the JSON body).
async fn post_mcp(
    proxy: &Proxy,
    session: Option<&str>,
    version: &str,
    body: serde_json::Value,
) -> (u16, String, serde_json::Value, Option<String>) {
    let mut request = proxy
        .request(reqwest::Method::POST, "/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", version)
        .body(body.to_string());
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("{e}"));
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let new_session = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.unwrap_or_default();
    let message = if kind.starts_with("text/event-stream") {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<serde_json::Value>(d.trim()).ok())
            .find(|m| m.get("id").is_some())
            .unwrap_or_default()
    } else {
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    };
    (status, kind, message, new_session)
}

fn tool_names(message: &serde_json::Value) -> Vec<String> {
    message["result"]["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_list_from_the_serialized_listing_matches_rmcps_answer_and_follows_changes() {
    let proxy = Proxy::start(
        json!({ "fx": fixture_entry("fx"), "other": fixture_entry("other") }),
        &[],
    )
    .await;
    proxy.settled().await;
    let version = "2025-06-18";
    let session = raw_session(&proxy, json!({})).await;

    // The first listing of a session goes through rmcp (SSE), the next ones are the
    // pre-serialized listing (JSON) — the same tools, the caller's id echoed.
    let list =
        |id: serde_json::Value| json!({ "jsonrpc": "2.0", "id": id, "method": "tools/list" });
    let (code, kind, typed, _) = post_mcp(&proxy, Some(&session), version, list(json!(1))).await;
    assert_eq!(code, 200);
    assert!(kind.starts_with("text/event-stream"), "{kind}");
    let (code, kind, cached, _) =
        post_mcp(&proxy, Some(&session), version, list(json!("two"))).await;
    assert_eq!(code, 200);
    assert_eq!(kind, "application/json");
    assert_eq!(cached["id"], "two");
    assert_eq!(cached["jsonrpc"], "2.0");
    assert_eq!(cached["result"], typed["result"], "cached listing differs");
    let names = tool_names(&cached);
    assert!(names.contains(&"fx__echo".to_owned()), "{names:?}");
    assert!(names.contains(&"other__echo".to_owned()), "{names:?}");

    // What rmcp refuses is still refused: an unknown session, an unknown protocol version.
    let (code, ..) = post_mcp(&proxy, Some("no-such-session"), version, list(json!(3))).await;
    assert_eq!(code, 404);
    let (code, ..) = post_mcp(&proxy, Some(&session), "1999-01-01", list(json!(4))).await;
    assert_eq!(code, 400);
    // A plain call is answered in front of rmcp too; other methods are rmcp's.
    let call = json!({ "jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": { "name": "fx__echo", "arguments": { "text": "direct" } } });
    let (code, kind, reply, _) = post_mcp(&proxy, Some(&session), version, call).await;
    assert_eq!(code, 200);
    assert_eq!(kind, "application/json");
    assert_eq!(reply["result"]["content"][0]["text"], "direct");
    let ping = json!({ "jsonrpc": "2.0", "id": 6, "method": "ping" });
    let (code, kind, reply, _) = post_mcp(&proxy, Some(&session), version, ping).await;
    assert_eq!(code, 200);
    assert!(kind.starts_with("text/event-stream"), "{kind}");
    assert_eq!(reply["result"], json!({}));

    // A server stopped: the next listing no longer has its tools; started again: back.
    let (code, body) = proxy.post("/servers/other/stop", "").await;
    assert_eq!(code, 202, "{body}");
    let mut names = Vec::new();
    for attempt in 0..100 {
        let (_, kind, listed, _) =
            post_mcp(&proxy, Some(&session), version, list(json!(10 + attempt))).await;
        assert_eq!(kind, "application/json");
        names = tool_names(&listed);
        if !names.iter().any(|n| n.starts_with("other__")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(names.contains(&"fx__echo".to_owned()), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("other__")), "{names:?}");
    let (code, body) = proxy.post("/servers/other/start", "").await;
    assert_eq!(code, 202, "{body}");
    for attempt in 0..200 {
        let (_, _, listed, _) =
            post_mcp(&proxy, Some(&session), version, list(json!(200 + attempt))).await;
        names = tool_names(&listed);
        if names.iter().any(|n| n.starts_with("other__")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(names.contains(&"other__echo".to_owned()), "{names:?}");
    assert_eq!(proxy.stop().await, Some(0));
}

/// Starts a raw `/mcp` session whose client declares `capabilities`; returns its id.
async fn raw_session(proxy: &Proxy, capabilities: serde_json::Value) -> String {
    let version = "2025-06-18";
    let initialize = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": capabilities,
        "clientInfo": { "name": "raw", "version": "0" } } });
    let (code, _, _, session) = post_mcp(proxy, None, version, initialize).await;
    assert_eq!(code, 200);
    let session = session.unwrap_or_else(|| panic!("no session id"));
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    let (code, ..) = post_mcp(proxy, Some(&session), version, initialized).await;
    assert_eq!(code, 202);
    session
}

fn echo(id: serde_json::Value, text: &str) -> serde_json::Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": { "name": "fx__echo", "arguments": { "text": text } } })
}

/// Plain calls of a session whose client cannot be asked anything are answered in front of
/// rmcp: each POST gets its own call's answer, failures keep their JSON-RPC form, and a
/// cancellation cancels downstream and ends the call's POST without an answer. A client
/// that may be asked (sampling) keeps rmcp's stream for every call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_calls_are_answered_in_front_of_rmcp_unless_the_client_may_be_asked() {
    let proxy = Proxy::start(json!({ "fx": fixture_entry("fx") }), &[]).await;
    proxy.settled().await;
    let version = "2025-06-18";
    let session = raw_session(&proxy, json!({})).await;
    // rmcp answers 202 to `notifications/initialized` before its handler has seen it: until
    // then calls go through rmcp; after one call the handler knows its session id.
    let (_, _, first, _) = post_mcp(&proxy, Some(&session), version, echo(json!(1), "a")).await;
    assert_eq!(first["result"]["content"][0]["text"], "a");

    let calls = (0..24).map(|i| {
        let (proxy, session) = (&proxy, session.clone());
        async move {
            let text = format!("call {i}");
            let (code, kind, reply, _) =
                post_mcp(proxy, Some(&session), version, echo(json!(100 + i), &text)).await;
            (i, code, kind, reply, text)
        }
    });
    for (i, code, kind, reply, text) in futures::future::join_all(calls).await {
        assert_eq!(code, 200);
        assert_eq!(kind, "application/json");
        assert_eq!(reply["id"], 100 + i);
        assert_eq!(reply["result"]["content"][0]["text"], text, "{reply}");
    }
    let unknown = json!({ "jsonrpc": "2.0", "id": "u", "method": "tools/call",
        "params": { "name": "fx__nope" } });
    let (code, kind, reply, _) = post_mcp(&proxy, Some(&session), version, unknown).await;
    assert_eq!((code, kind.as_str()), (200, "application/json"));
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    assert_eq!(reply["error"]["message"], "Unknown tool: fx__nope");

    // Cancelled: 202 for the notification, the call's POST ends with no message, the
    // fixture stops sleeping.
    let sleep = json!({ "jsonrpc": "2.0", "id": "sleep", "method": "tools/call",
        "params": { "name": "fx__sleep", "arguments": { "ms": 10_000 } } });
    let sleeping = {
        let (proxy, session) = (&proxy, session.clone());
        async move { post_mcp(proxy, Some(&session), version, sleep).await }
    };
    let cancelling = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let cancel = json!({ "jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": { "requestId": "sleep", "reason": "stop" } });
        post_mcp(&proxy, Some(&session), version, cancel).await.0
    };
    let ((code, kind, reply, _), cancel_code) = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        futures::future::join(sleeping, cancelling),
    )
    .await
    .unwrap_or_else(|_| panic!("the cancelled call's POST did not end"));
    assert_eq!(cancel_code, 202);
    assert_eq!(code, 200);
    assert!(kind.starts_with("text/event-stream"), "{kind}");
    assert_eq!(
        reply,
        serde_json::Value::default(),
        "a cancelled call was answered"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !proxy.logs().contains("sleep cancelled") {
        assert!(
            std::time::Instant::now() < deadline,
            "the fixture kept sleeping"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }

    // A client that declared sampling: every call through rmcp.
    let asked = raw_session(&proxy, json!({ "sampling": {} })).await;
    for id in 0..3 {
        let (code, kind, reply, _) =
            post_mcp(&proxy, Some(&asked), version, echo(json!(id), "via rmcp")).await;
        assert_eq!(code, 200);
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        assert_eq!(reply["result"]["content"][0]["text"], "via rmcp");
    }
    proxy.stop().await;
}
