//! The seed's client snippet, verbatim: `{"command": "mcp-orch", "args": ["--mode", "proxy"],
//! "env": {"PROXY_PORT": "3000"}}` launched by an MCP client speaks MCP on stdin/stdout (and
//! also serves HTTP when PROXY_PORT is set); stdout carries nothing but MCP.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{PROXY, call, client_info, everything_entry, fixture_entry, text};
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
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = write_config(dir.path(), json!({ "fx": fixture_entry("fx") }));
    // Raw JSON-RPC, so anything that is not MCP on stdout would be seen.
    let mut child = Command::new(PROXY)
        .arg("--mcp-config")
        .arg(&config)
        .env("LOG_LEVEL", "trace")
        .env_remove("RUST_LOG")
        .env_remove("PROXY_PORT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let Some(mut stdin) = child.stdin.take() else {
        panic!("stdin")
    };
    let Some(stdout) = child.stdout.take() else {
        panic!("stdout")
    };
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let requests = [
        json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}),
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}),
        json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"fx__echo","arguments":{"text":"raw"}}}),
    ];
    for request in &requests {
        let line = format!("{request}\n");
        stdin
            .write_all(line.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    stdin.flush().await.unwrap_or_else(|e| panic!("{e}"));
    let mut lines = BufReader::new(stdout).lines();
    let mut answered = std::collections::BTreeMap::new();
    while answered.len() < 3 {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no answer; got {answered:?}"))
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("stdout closed; got {answered:?}"));
        let message: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout is not JSON-RPC ({e}): {line}"));
        assert_eq!(message["jsonrpc"], "2.0", "{line}");
        if let Some(id) = message["id"].as_u64() {
            answered.insert(id, message);
        }
    }
    assert_eq!(answered[&1]["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(answered[&1]["result"]["serverInfo"]["name"], "mcp-orch");
    assert!(
        answered[&2]["result"]["tools"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
    );
    assert_eq!(answered[&3]["result"]["content"][0]["text"], "raw");
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait()).await;
    assert!(status.is_ok(), "mcp-orch did not exit on stdin EOF");
}
