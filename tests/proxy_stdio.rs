//! The seed's client snippet, verbatim: `{"command": "mcp-orch", "args": ["--mode", "proxy"],
//! "env": {"PROXY_PORT": "3000"}}` launched by an MCP client speaks MCP on stdin/stdout (and
//! also serves HTTP when PROXY_PORT is set); stdout carries nothing but MCP.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{PROXY, RawStdio, call, client_info, everything_entry, fixture_entry, text};
use rmcp::ServiceExt;
use rmcp::transport::async_rw::AsyncRwTransport;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

fn write_config(dir: &std::path::Path, servers: serde_json::Value) -> std::path::PathBuf {
    let path = dir.join("mcp-config.json");
    std::fs::write(&path, json!({ "mcpServers": servers }).to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    path
}

/// Free port on 127.0.0.1 (bound then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launched_by_a_client_it_speaks_mcp_on_stdio_and_http_on_proxy_port() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // The client's working directory has mcp-config.json, as a user's project would.
    write_config(
        dir.path(),
        json!({ "fx": fixture_entry("fx"), "everything": everything_entry() }),
    );
    let port = free_port();
    let mut child = Command::new(PROXY)
        .args(["--mode", "proxy"])
        .env("PROXY_PORT", port.to_string())
        .env("LOG_LEVEL", "debug")
        .env_remove("RUST_LOG")
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let (Some(stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        panic!("pipes")
    };
    let stderr_task = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });

    let transport = AsyncRwTransport::new_client(stdout, stdin);
    let client = client_info()
        .serve(transport)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let tools = client
        .peer()
        .list_all_tools()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    assert!(names.contains(&"fx__echo".to_owned()), "{names:?}");
    assert!(
        names.contains(&"everything__get-sum".to_owned()),
        "{names:?}"
    );
    let echoed = call(&client, "fx__echo", json!({ "text": "over stdio" })).await;
    assert_eq!(
        echoed.as_ref().map(text).ok().as_deref(),
        Some("over stdio")
    );
    let sum = call(&client, "everything__get-sum", json!({ "a": 1, "b": 2 })).await;
    assert_eq!(
        sum.as_ref().map(text).ok().as_deref(),
        Some("The sum of 1 and 2 is 3.")
    );

    // The same process serves HTTP on PROXY_PORT, sharing the same downstream processes.
    let http = reqwest::Client::new();
    let whoami_stdio = call(&client, "fx__whoami", json!({}))
        .await
        .map(|r| text(&r));
    let whoami_http: serde_json::Value = http
        .post(format!("http://127.0.0.1:{port}/tools/fx.whoami"))
        .body("{}")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(
        whoami_stdio.ok().as_deref(),
        whoami_http["content"][0]["text"].as_str(),
        "both faces reach the same child process"
    );

    // Closing stdin (the client quits) ends mcp-orch cleanly.
    drop(client);
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait()).await;
    let status = status.unwrap_or_else(|_| panic!("mcp-orch did not exit after stdin closed"));
    assert_eq!(status.ok().and_then(|s| s.code()), Some(0));
    let logs = stderr_task.await.unwrap_or_default();
    assert!(
        logs.contains("startup complete"),
        "logs go to stderr:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_proxy_port_it_serves_stdio_only_and_keeps_stdout_clean() {
    // LOG_LEVEL=trace: even the most verbose logging must not reach stdout.
    let (mut raw, init) = RawStdio::start(json!({ "fx": fixture_entry("fx") }), &[]).await;
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(init["result"]["serverInfo"]["name"], "mcp-orch");
    raw.send(json!({"jsonrpc":"2.0","id":"list","method":"tools/list"}))
        .await;
    let (list, _) = raw.until_response("list").await;
    assert!(
        list["result"]["tools"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "{list}"
    );
    raw.send(json!({"jsonrpc":"2.0","id":"call","method":"tools/call",
        "params":{"name":"fx__echo","arguments":{"text":"raw"}}}))
        .await;
    let (answer, _) = raw.until_response("call").await;
    assert_eq!(answer["result"]["content"][0]["text"], "raw");
    assert_eq!(
        raw.close().await,
        Some(0),
        "mcp-orch exits cleanly on stdin EOF"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_reaches_the_caller_with_its_own_token() {
    let (mut raw, _) = RawStdio::start(json!({ "fx": fixture_entry("fx") }), &[]).await;
    raw.send(
        json!({"jsonrpc":"2.0","id":"p1","method":"tools/call","params":{
        "name":"fx__progress","arguments":{"steps":3,"interval_ms":10},
        "_meta":{"progressToken":"caller-token-42"}}}),
    )
    .await;
    let (answer, before) = raw.until_response("p1").await;
    assert_eq!(answer["result"]["content"][0]["text"], "done 3", "{answer}");
    let progress: Vec<&serde_json::Value> = before
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{before:?}");
    for (i, p) in progress.iter().enumerate() {
        assert_eq!(p["params"]["progressToken"], "caller-token-42", "{p}");
        assert_eq!(p["params"]["progress"], (i + 1) as f64);
        assert_eq!(p["params"]["total"], 3.0);
    }
    // A call without a token gets no progress at all.
    raw.send(
        json!({"jsonrpc":"2.0","id":"p2","method":"tools/call","params":{
        "name":"fx__progress","arguments":{"steps":2,"interval_ms":1}}}),
    )
    .await;
    let (_, before) = raw.until_response("p2").await;
    assert!(
        before
            .iter()
            .all(|m| m["method"] != "notifications/progress"),
        "{before:?}"
    );
    raw.close().await;
}

/// Node's `child_process` (so Electron clients such as Cursor and Claude Desktop) hands a
/// server Unix sockets, not pipes, for stdin/stdout: the stdio face drives those on the
/// event loop too, and EOF on the socket still ends the session cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_on_a_unix_socket_like_node_clients_use() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = write_config(dir.path(), json!({ "fx": fixture_entry("fx") }));
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap_or_else(|e| panic!("{e}"));
    let their_out = theirs.try_clone().unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(PROXY)
        .arg("--mcp-config")
        .arg(&config)
        .env_remove("PROXY_PORT")
        .env("LOG_LEVEL", "debug")
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(their_out)))
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    ours.set_nonblocking(true).unwrap_or_else(|e| panic!("{e}"));
    let ours = tokio::net::UnixStream::from_std(ours).unwrap_or_else(|e| panic!("{e}"));
    let (read, mut write) = ours.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut ask = async |messages: &[serde_json::Value], id: &str| -> serde_json::Value {
        for message in messages {
            write
                .write_all(format!("{message}\n").as_bytes())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        loop {
            let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("no answer to {id} within 20 s"))
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|| panic!("socket closed before the answer to {id}"));
            let value: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
            if value["id"] == id {
                return value;
            }
        }
    };
    let init = ask(
        &[
            json!({"jsonrpc":"2.0","id":"init","method":"initialize","params":{
            "protocolVersion":"2025-06-18","capabilities":{},
            "clientInfo":{"name":"socket-client","version":"1"}}}),
        ],
        "init",
    )
    .await;
    assert_eq!(init["result"]["serverInfo"]["name"], "mcp-orch", "{init}");
    let answer = ask(
        &[
            json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
            json!({"jsonrpc":"2.0","id":"call","method":"tools/call",
                "params":{"name":"fx__echo","arguments":{"text":"over a socket"}}}),
        ],
        "call",
    )
    .await;
    assert_eq!(
        answer["result"]["content"][0]["text"], "over a socket",
        "{answer}"
    );
    drop(write);
    drop(lines);
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap_or_else(|_| panic!("mcp-orch did not exit after the socket closed"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr).await;
    }
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("stdin_kind=Socket") && stderr.contains("stdout_kind=Socket"),
        "the stdio face used the socket directly: {stderr}"
    );
}

/// Many calls in flight on the one stdio session, with other requests between them: every
/// answer carries its own call's text; failures come back the way MCP clients expect; a call
/// the client cancels is cancelled downstream and gets no answer, and the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_failures_and_cancellation_on_the_stdio_session() {
    let (mut raw, _) = RawStdio::start(json!({ "fx": fixture_entry("fx") }), &[]).await;
    for i in 0..40 {
        raw.send(
            json!({"jsonrpc":"2.0","id":format!("c{i}"),"method":"tools/call",
            "params":{"name":"fx__echo","arguments":{"text":format!("text {i}")}}}),
        )
        .await;
        if i == 20 {
            raw.send(json!({"jsonrpc":"2.0","id":"list","method":"tools/list"}))
                .await;
            raw.send(json!({"jsonrpc":"2.0","id":"ping","method":"ping"}))
                .await;
        }
    }
    let mut answered = std::collections::BTreeMap::new();
    while answered.len() < 42 {
        let message = raw.next().await;
        if message.get("method").is_some() {
            continue; // a notification (the catalogue settling)
        }
        let id = message["id"].as_str().unwrap_or_default().to_owned();
        assert!(
            answered.insert(id.clone(), message).is_none(),
            "two answers to {id}"
        );
    }
    for i in 0..40 {
        let answer = &answered[&format!("c{i}")];
        assert_eq!(
            answer["result"]["content"][0]["text"],
            format!("text {i}"),
            "{answer}"
        );
    }
    assert!(
        answered["list"]["result"]["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["name"] == "fx__echo")),
        "{}",
        answered["list"]
    );
    assert_eq!(answered["ping"]["result"], json!({}));

    // An unknown tool is a JSON-RPC error; a tool's own failure is its result.
    raw.send(json!({"jsonrpc":"2.0","id":"unknown","method":"tools/call",
        "params":{"name":"fx__nope","arguments":{}}}))
        .await;
    let (unknown, _) = raw.until_response("unknown").await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    assert_eq!(unknown["error"]["message"], "Unknown tool: fx__nope");
    raw.send(json!({"jsonrpc":"2.0","id":"fail","method":"tools/call",
        "params":{"name":"fx__fail","arguments":{"message":"as asked"}}}))
        .await;
    let (fail, _) = raw.until_response("fail").await;
    assert_eq!(fail["result"]["isError"], true, "{fail}");
    assert_eq!(fail["result"]["content"][0]["text"], "as asked");

    // Cancelled: the fixture stops sleeping, and no answer comes for it.
    raw.send(json!({"jsonrpc":"2.0","id":"sleep","method":"tools/call",
        "params":{"name":"fx__sleep","arguments":{"ms":10_000}}}))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    raw.send(json!({"jsonrpc":"2.0","method":"notifications/cancelled",
        "params":{"requestId":"sleep","reason":"the user pressed stop"}}))
        .await;
    assert!(
        raw.wait_for_log(&["sending notifications/cancelled downstream", "server=fx"])
            .await,
        "no cancellation sent downstream:\n{}",
        raw.logs()
    );
    assert!(
        raw.wait_for_log(&["sleep cancelled"]).await,
        "the fixture kept sleeping:\n{}",
        raw.logs()
    );
    raw.send(json!({"jsonrpc":"2.0","id":"after","method":"tools/call",
        "params":{"name":"fx__echo","arguments":{"text":"still fine"}}}))
        .await;
    let (after, before) = raw.until_response("after").await;
    assert_eq!(after["result"]["content"][0]["text"], "still fine");
    assert!(
        before.iter().all(|m| m["id"] != "sleep"),
        "a cancelled call was answered: {before:?}"
    );
    assert_eq!(raw.close().await, Some(0));
}
