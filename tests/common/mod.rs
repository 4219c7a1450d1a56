//! Shared harness for the end-to-end tests: starts the real `mcp-orch` binary with a config
//! written to a temp dir, finds the port it bound, and gives MCP (rmcp client) and REST
//! (reqwest) access to it. Everything runs on 127.0.0.1 with bounded waits.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, Implementation,
    InitializeRequestParams, ProtocolVersion,
};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The proxy binary under test.
pub const PROXY: &str = env!("CARGO_BIN_EXE_mcp-orch");
/// Our fixture MCP server.
pub const FIXTURE: &str = env!("CARGO_BIN_EXE_mcp-orch-fixture");

/// Path of the pinned `@modelcontextprotocol/server-everything` installed by
/// `scripts/install-test-deps` (the README's test command runs it first).
pub fn server_everything() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".deps/npm/node_modules/.bin/mcp-server-everything");
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-test-deps (scripts/test does it)",
        path.display()
    );
    path
}

/// An `mcpServers` entry running the fixture over stdio.
pub fn fixture_entry(name: &str) -> Value {
    json!({ "command": FIXTURE, "args": ["--stdio", "--name", name] })
}

/// An `mcpServers` entry running the real reference server over stdio.
pub fn everything_entry() -> Value {
    json!({ "command": server_everything(), "args": ["stdio"] })
}

/// The client identity and pinned protocol version the tests use.
pub fn client_info() -> InitializeRequestParams {
    InitializeRequestParams::new(
        ClientCapabilities::default(),
        Implementation::new("mcp-orch-tests", "0"),
    )
    .with_protocol_version(ProtocolVersion::V_2025_11_25)
}

/// A running `mcp-orch` serving HTTP on an OS-chosen port.
pub struct Proxy {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// Every line mcp-orch wrote to stderr so far.
    pub stderr: Arc<Mutex<Vec<String>>>,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
    /// Sent as `Authorization: Bearer` by [`Proxy::get`], [`Proxy::post`] and
    /// [`Proxy::mcp`]; set from `API_KEY` when the proxy was started with one.
    pub token: Option<String>,
}

impl Proxy {
    /// Starts `mcp-orch --mcp-config <tmp>/mcp-config.json --port 0` with `servers` as the
    /// `mcpServers` object, plus `args`.
    pub async fn start(servers: Value, args: &[&str]) -> Proxy {
        Self::start_with(json!({ "mcpServers": servers }), None, args).await
    }

    /// Like [`Proxy::start`] with a whole mcp-config document and an optional config.yaml.
    pub async fn start_with(mcp_config: Value, config_yaml: Option<&str>, args: &[&str]) -> Proxy {
        Self::start_env(mcp_config, config_yaml, args, &[]).await
    }

    /// Like [`Proxy::start_with`], with extra environment variables for mcp-orch.
    pub async fn start_env(
        mcp_config: Value,
        config_yaml: Option<&str>,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Proxy {
        mcp_orch::downstream::ensure_tls_provider();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let config_path = dir.path().join("mcp-config.json");
        std::fs::write(&config_path, mcp_config.to_string())
            .unwrap_or_else(|e| panic!("write: {e}"));
        let mut command = Command::new(PROXY);
        command
            .arg("--mcp-config")
            .arg(&config_path)
            .args(["--port", "0", "--no-stdio"])
            .args(args)
            .current_dir(dir.path())
            .env("LOG_LEVEL", "debug")
            .env_remove("RUST_LOG")
            .env_remove("PROXY_PORT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        if let Some(yaml) = config_yaml {
            let yaml_path = dir.path().join("config.yaml");
            std::fs::write(&yaml_path, yaml).unwrap_or_else(|e| panic!("write: {e}"));
            command.arg("--config").arg(&yaml_path);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn mcp-orch: {e}"));
        let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = tokio::sync::oneshot::channel::<String>();
        {
            let lines = lines.clone();
            tokio::spawn(async move {
                let mut port_tx = Some(port_tx);
                let mut reader = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    if let Some(addr) = line.split("listening on http://").nth(1) {
                        let addr: String =
                            addr.chars().take_while(|c| !c.is_whitespace()).collect();
                        if let Some(tx) = port_tx.take() {
                            let _ = tx.send(addr);
                        }
                    }
                    lines.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                }
            });
        }
        let addr = tokio::time::timeout(Duration::from_secs(30), port_rx)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "mcp-orch did not report its address; stderr: {:?}",
                    lines.lock().map(|l| l.clone())
                )
            })
            .unwrap_or_else(|_| {
                panic!(
                    "mcp-orch exited early; stderr: {:?}",
                    lines.lock().map(|l| l.clone())
                )
            });
        Proxy {
            child,
            base: format!("http://{addr}"),
            stderr: lines,
            dir,
            http: reqwest::Client::new(),
            token: env
                .iter()
                .find(|(key, _)| *key == "API_KEY")
                .map(|(_, value)| value.to_string()),
        }
    }

    /// A request builder carrying [`Proxy::token`], if any.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// The mcp-orch process id.
    pub fn pid(&self) -> i32 {
        self.child.id().map(|p| p as i32).unwrap_or(0)
    }

    /// `http://127.0.0.1:PORT/mcp`
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base)
    }

    /// GET a REST path, returning status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POST a raw body to a REST path, returning status and JSON body.
    pub async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let response = self
            .request(reqwest::Method::POST, path)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Waits until no server is `starting` (bounded), returning `/servers`.
    pub async fn settled(&self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, servers) = self.get("/servers").await;
            let starting = servers["servers"]
                .as_array()
                .map(|all| all.iter().any(|s| s["status"] == "starting"))
                .unwrap_or(true);
            if !starting {
                return servers;
            }
            assert!(
                Instant::now() < deadline,
                "servers still starting: {servers}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A new MCP session over Streamable HTTP.
    pub async fn mcp(&self) -> RunningService<RoleClient, InitializeRequestParams> {
        let mut config = StreamableHttpClientTransportConfig::with_uri(self.mcp_url());
        if let Some(token) = &self.token {
            config = config.auth_header(token.clone());
        }
        let transport = StreamableHttpClientTransport::from_config(config);
        client_info()
            .serve(transport)
            .await
            .unwrap_or_else(|e| panic!("MCP session over HTTP: {e}"))
    }

    /// The stderr lines so far, joined.
    pub fn logs(&self) -> String {
        self.stderr.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit; returns the exit code.
    pub async fn stop(mut self) -> Option<i32> {
        if let Some(pid) = self.child.id() {
            // SAFETY: signalling our own child.
            unsafe {
                libc::kill(pid as i32, libc::SIGTERM);
            }
        }
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(Ok(status)) => status.code(),
            _ => {
                let _ = self.child.kill().await;
                None
            }
        }
    }
}

/// Calls a tool and returns the result.
pub async fn call(
    client: &rmcp::service::Peer<RoleClient>,
    tool: &str,
    arguments: Value,
) -> Result<CallToolResult, rmcp::ServiceError> {
    let mut params = CallToolRequestParams::new(tool.to_owned());
    params.arguments = arguments.as_object().cloned();
    client.call_tool(params).await
}

/// The text of a tool result's first content block.
pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_default()
}

/// `mcp-orch` launched the way an MCP client launches it (stdin/stdout piped, no port),
/// driven with raw JSON-RPC lines so the test controls ids and progress tokens exactly.
pub struct RawStdio {
    pub child: Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    pub dir: tempfile::TempDir,
    /// Everything mcp-orch wrote to stderr so far (its log, at trace level).
    stderr: Arc<Mutex<Vec<String>>>,
}

impl RawStdio {
    /// Starts `mcp-orch --mcp-config <tmp>` with `servers`, and runs the `initialize`
    /// handshake (protocol `2025-06-18`), returning the initialize result too.
    pub async fn start(servers: Value, extra_env: &[(&str, &str)]) -> (RawStdio, Value) {
        Self::start_full(servers, extra_env, json!({})).await
    }

    /// Like [`RawStdio::start`], declaring these client capabilities in `initialize`.
    pub async fn start_with_capabilities(servers: Value, capabilities: Value) -> (RawStdio, Value) {
        Self::start_full(servers, &[], capabilities).await
    }

    async fn start_full(
        servers: Value,
        extra_env: &[(&str, &str)],
        capabilities: Value,
    ) -> (RawStdio, Value) {
        mcp_orch::downstream::ensure_tls_provider();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let config = dir.path().join("mcp-config.json");
        std::fs::write(&config, json!({ "mcpServers": servers }).to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut command = Command::new(PROXY);
        command
            .arg("--mcp-config")
            .arg(&config)
            .env("LOG_LEVEL", "trace")
            .env_remove("RUST_LOG")
            .env_remove("PROXY_PORT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in extra_env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap_or_else(|e| panic!("{e}"));
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            panic!("pipes")
        };
        let logs: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = logs.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        let mut raw = RawStdio {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
            dir,
            stderr: logs,
        };
        raw.send(json!({"jsonrpc":"2.0","id":"init","method":"initialize","params":{
            "protocolVersion":"2025-06-18","capabilities":capabilities,"clientInfo":{"name":"raw","version":"0"}}}))
            .await;
        let init = raw.until_response("init").await.0;
        raw.send(json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
            .await;
        (raw, init)
    }

    /// Writes one message.
    pub async fn send(&mut self, message: Value) {
        use tokio::io::AsyncWriteExt;
        let line = format!("{message}\n");
        self.stdin
            .write_all(line.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        self.stdin.flush().await.unwrap_or_else(|e| panic!("{e}"));
    }

    /// Reads the next message (every stdout line must be JSON-RPC), bounded by 30 s.
    pub async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no message within 30 s"))
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("stdout closed"));
        let message: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout is not JSON-RPC ({e}): {line}"));
        assert_eq!(message["jsonrpc"], "2.0", "{line}");
        message
    }

    /// Reads until the response with `id`, returning it and everything seen before it.
    pub async fn until_response(&mut self, id: &str) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            let message = self.next().await;
            if message["id"] == id && message.get("method").is_none() {
                return (message, before);
            }
            before.push(message);
        }
    }

    /// Everything mcp-orch logged so far.
    pub fn logs(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .join("\n")
    }

    /// Waits (at most 10 s) until a log line contains every one of `needles`.
    pub async fn wait_for_log(&self, needles: &[&str]) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if self
                .logs()
                .lines()
                .any(|line| needles.iter().all(|n| line.contains(n)))
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    }

    /// Closes stdin and waits (bounded) for the exit code.
    pub async fn close(mut self) -> Option<i32> {
        drop(self.stdin);
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(Ok(status)) => status.code(),
            _ => {
                let _ = self.child.kill().await;
                None
            }
        }
    }
}

/// The fixture serving Streamable HTTP on an OS-chosen port; killed on drop.
pub struct HttpFixture {
    pub child: Child,
    pub url: String,
    /// Everything the fixture wrote to stderr so far.
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl HttpFixture {
    /// Starts `mcp-orch-fixture --http 0 <args>` and waits for its address.
    pub async fn start(args: &[&str]) -> HttpFixture {
        mcp_orch::downstream::ensure_tls_provider();
        let port: &[&str] = if args.contains(&"--http") {
            &[]
        } else {
            &["--http", "0"]
        };
        let mut child = Command::new(FIXTURE)
            .args(port)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn fixture: {e}"));
        let stderr = child.stderr.take().unwrap_or_else(|| panic!("stderr"));
        let mut lines = BufReader::new(stderr).lines();
        let addr = tokio::time::timeout(Duration::from_secs(20), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = line.split("listening on ").nth(1) {
                    return addr.trim().to_owned();
                }
            }
            panic!("fixture exited without listening")
        })
        .await
        .unwrap_or_else(|_| panic!("fixture did not report its address"));
        // Keep draining so the fixture never blocks on a full pipe.
        let stderr_lines = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr_lines.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        HttpFixture {
            child,
            url: format!("http://{addr}/mcp"),
            stderr: stderr_lines,
        }
    }

    /// Waits (bounded) until the fixture has logged a line containing `needle`.
    pub async fn wait_for_log(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self
                .stderr
                .lock()
                .map(|l| l.iter().any(|l| l.contains(needle)))
                .unwrap_or(false)
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    }
}
