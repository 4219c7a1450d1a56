//! Names as clients see them (prefix, unprefixed servers, the separator), remote
//! Streamable HTTP downstreams, environment passing, and startup behaviour.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{FIXTURE, HttpFixture, Proxy, call, fixture_entry, text};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_and_separator_shape_the_exposed_names() {
    let proxy = Proxy::start_with(
        json!({ "mcpServers": {
            "plain": fixture_entry("plain"),
            "custom": { "command": FIXTURE, "args": ["--stdio"], "prefix": "cx" },
            "bare": { "command": FIXTURE, "args": ["--stdio"], "prefix": "",
                      "tools": { "include": ["test_*"], "exclude": ["test_sampling"] } }
        }}),
        Some("proxy:\n  separator: \".\"\n"),
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
    assert!(names.contains("plain.echo"), "{names:?}");
    assert!(names.contains("cx.echo"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("custom")), "{names:?}");
    // Unprefixed, filtered: only test_* tools, minus the excluded one.
    assert!(names.contains("test_simple_text"), "{names:?}");
    assert!(!names.contains("test_sampling"), "{names:?}");
    assert!(
        !names.contains("echo"),
        "the include filter keeps bare's echo out: {names:?}"
    );
    let echoed = call(&client, "cx.echo", json!({ "text": "prefixed" })).await;
    assert_eq!(echoed.as_ref().map(text).ok().as_deref(), Some("prefixed"));
    let simple = call(&client, "test_simple_text", json!({})).await;
    assert!(simple.is_ok_and(|r| !text(&r).is_empty()));
    // REST keeps {server}.{tool} whatever the prefix.
    let (status, result) = proxy.post("/tools/custom.echo", r#"{"text":"rest"}"#).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["content"][0]["text"], "rest");
    client.cancel().await.ok();
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_streamable_http_server_is_aggregated_like_a_local_one() {
    let remote = HttpFixture::start(&["--name", "remote-fixture"]).await;
    let proxy = Proxy::start(
        json!({
            "remote": { "url": remote.url, "headers": { "X-Api-Key": "${REMOTE_KEY:-dummy}" }, "timeout": 0.5 },
            "local": fixture_entry("local")
        }),
        &[],
    )
    .await;
    let servers = proxy.settled().await;
    let remote_status = servers["servers"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == "remote").cloned())
        .unwrap_or_default();
    assert_eq!(remote_status["status"], "ready", "{servers}");
    assert_eq!(remote_status["transport"], "streamable-http");
    assert_eq!(remote_status["server_info"]["name"], "remote-fixture");

    let client = proxy.mcp().await;
    let echoed = call(&client, "remote__echo", json!({ "text": "over http" })).await;
    assert_eq!(echoed.as_ref().map(text).ok().as_deref(), Some("over http"));
    // Concurrency through one shared remote session.
    let calls = (0..16).map(|i| {
        let client = &client;
        async move {
            let reply = call(client, "remote__echo", json!({ "text": format!("n{i}") })).await;
            (format!("n{i}"), reply.map(|r| text(&r)))
        }
    });
    for (expected, got) in futures::future::join_all(calls).await {
        assert_eq!(got.ok(), Some(expected));
    }
    // A timeout against the remote names the server and cancels the call there too.
    let (status, body) = proxy.post("/tools/remote.sleep", r#"{"ms": 10000}"#).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["details"]["server"], "remote");
    assert!(
        remote.wait_for_log("sleep cancelled").await,
        "the remote never saw the cancellation"
    );
    client.cancel().await.ok();
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_get_their_configured_env_but_never_mcp_orch_secrets() {
    let dir_config = json!({ "mcpServers": { "fx": {
        "command": FIXTURE,
        "args": ["--stdio"],
        "env": { "GREETING": "${TEST_GREETING:-hello from config}" }
    }}});
    // API_KEY is mcp-orch's own secret: set for the proxy process, never seen by children.
    let proxy = Proxy::start_env(
        dir_config,
        None,
        &[],
        &[("API_KEY", "super-secret-test-key")],
    )
    .await;
    let (_, greeting) = proxy.post("/tools/fx.env", r#"{"name":"GREETING"}"#).await;
    assert_eq!(greeting["content"][0]["text"], "hello from config");
    let (_, secret) = proxy.post("/tools/fx.env", r#"{"name":"API_KEY"}"#).await;
    assert_eq!(
        secret["isError"], true,
        "API_KEY leaked to a child: {secret}"
    );
    let (_, path) = proxy.post("/tools/fx.env", r#"{"name":"PATH"}"#).await;
    assert_ne!(path["isError"], true, "ordinary variables are inherited");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_start_concurrently_and_a_slow_one_times_out_alone() {
    let delayed =
        |ms: &str| json!({ "command": FIXTURE, "args": ["--stdio", "--start-delay-ms", ms] });
    let proxy = Proxy::start(
        json!({
            "s1": delayed("1500"), "s2": delayed("1500"), "s3": delayed("1500"), "s4": delayed("1500"),
            "late": { "command": FIXTURE, "args": ["--stdio", "--start-delay-ms", "30000"], "startupTimeout": 1 }
        }),
        &[],
    )
    .await;
    let servers = proxy.settled().await;
    let all = servers["servers"].as_array().cloned().unwrap_or_default();
    for name in ["s1", "s2", "s3", "s4"] {
        let server = all
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_default();
        assert_eq!(server["status"], "ready", "{server}");
    }
    let late = all
        .iter()
        .find(|s| s["name"] == "late")
        .cloned()
        .unwrap_or_default();
    assert_eq!(late["status"], "failed");
    assert!(
        late["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("within 1s")),
        "{late}"
    );
    // Four 1.5 s starts took about one start, not four (wide margin: < 2.5 starts).
    let elapsed = proxy
        .logs()
        .lines()
        .find(|l| l.contains("startup complete"))
        .and_then(|l| l.split("elapsed_ms=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    assert!(
        elapsed < 3750,
        "startup took {elapsed} ms for four 1.5 s servers"
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_urls_are_spoken_with_tls() {
    // A plain-HTTP listener: a client that really speaks TLS fails the handshake, one that
    // had no TLS at all would fail with "scheme not supported" instead.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            use tokio::io::AsyncWriteExt;
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let proxy = Proxy::start(
        json!({ "secure": { "url": format!("https://127.0.0.1:{port}/sse"), "startupTimeout": 10 } }),
        &[],
    )
    .await;
    let servers = proxy.settled().await;
    let error = servers["servers"][0]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(servers["servers"][0]["status"], "failed");
    assert!(
        error.contains("corrupt message") || error.to_lowercase().contains("tls"),
        "expected a TLS handshake failure, got: {error}"
    );
    proxy.stop().await;
}
