//! The whole MCP surface through mcp-orch, against the real
//! `@modelcontextprotocol/server-everything`: prompts, resources, progress with the caller's
//! own token, sampling that reaches the calling session (and only it) — over `/mcp`,
//! the legacy `/sse` face and stdio.

#![allow(deprecated)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{FIXTURE, Proxy, RawStdio, call, client_info, everything_entry, text};
use rmcp::model::{
    CreateMessageRequestParams, CreateMessageResult, ErrorData, GetPromptRequestParams,
    ReadResourceRequestParams, ResourceContents,
};
use rmcp::service::{RequestContext, RoleClient};
use rmcp::{ClientHandler, ServiceExt};
use serde_json::json;
use tokio::sync::{Mutex, mpsc};

/// A client that answers sampling with its own name (after an optional delay) and records
/// every sampling request it saw.
#[derive(Clone)]
struct Sampler {
    name: String,
    delay: Duration,
    seen: Arc<Mutex<Vec<String>>>,
    arrived: Option<mpsc::UnboundedSender<()>>,
}

impl Sampler {
    fn new(name: &str) -> Self {
        Sampler {
            name: name.to_owned(),
            delay: Duration::ZERO,
            seen: Arc::default(),
            arrived: None,
        }
    }
}

impl ClientHandler for Sampler {
    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        let prompt = serde_json::to_string(&params.messages).unwrap_or_default();
        self.seen.lock().await.push(prompt);
        if let Some(arrived) = &self.arrived {
            let _ = arrived.send(());
        }
        tokio::time::sleep(self.delay).await;
        serde_json::from_value(json!({
            "role": "assistant",
            "content": { "type": "text", "text": format!("answer from {}", self.name) },
            "model": "test-model",
            "stopReason": "endTurn"
        }))
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))
    }

    fn get_info(&self) -> rmcp::model::ClientConfig {
        let mut info = client_info();
        info.capabilities.sampling = Some(Default::default());
        info
    }
}

async fn connect(
    proxy: &Proxy,
    sampler: Sampler,
) -> rmcp::service::RunningService<RoleClient, Sampler> {
    let transport = rmcp::transport::StreamableHttpClientTransport::from_uri(proxy.mcp_url());
    sampler
        .serve(transport)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_everything_prompts_resources_and_sampling_over_mcp() {
    let proxy = Proxy::start(json!({ "everything": everything_entry() }), &[]).await;
    let caller = Sampler::new("caller");
    let bystander = Sampler::new("bystander");
    let caller_seen = caller.seen.clone();
    let bystander_seen = bystander.seen.clone();
    let client = connect(&proxy, caller).await;
    let other = connect(&proxy, bystander).await;

    // Prompts, namespaced like tools.
    let prompts = client
        .peer()
        .list_all_prompts()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        prompts
            .iter()
            .any(|p| p.name == "everything__simple-prompt"),
        "{prompts:?}"
    );
    let prompt = client
        .peer()
        .get_prompt(GetPromptRequestParams::new("everything__simple-prompt"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!prompt.messages.is_empty());

    // Resources pass through with their own URIs, and read.
    let resources = client
        .peer()
        .list_all_resources()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let first = resources
        .iter()
        .find(|r| r.uri.starts_with("demo://resource/static/document/"))
        .unwrap_or_else(|| panic!("no static document in {resources:?}"));
    let read = client
        .peer()
        .read_resource(ReadResourceRequestParams::new(first.uri.clone()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let uri = match &read.contents[0] {
        ResourceContents::TextResourceContents { uri, .. }
        | ResourceContents::BlobResourceContents { uri, .. } => uri.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(uri, first.uri);
    let templates = client
        .peer()
        .list_all_resource_templates()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!templates.is_empty());

    // Sampling from the server reaches the session whose call caused it, and only it.
    let sampled = call(
        client.peer(),
        "everything__trigger-sampling-request",
        json!({ "prompt": "what is 2+2?", "maxTokens": 10 }),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let answer = serde_json::to_string(&sampled.content).unwrap_or_default();
    assert!(answer.contains("answer from caller"), "{answer}");
    assert_eq!(caller_seen.lock().await.len(), 1);
    assert!(caller_seen.lock().await[0].contains("what is 2+2?"));
    assert!(
        bystander_seen.lock().await.is_empty(),
        "the other session was asked"
    );

    client.cancel().await.ok();
    other.cancel().await.ok();
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_everything_over_stdio_progress_sampling_and_prompts() {
    let (mut raw, _) = RawStdio::start(json!({ "everything": everything_entry() }), &[]).await;
    // Progress arrives with the caller's token.
    raw.send(
        json!({"jsonrpc":"2.0","id":"long","method":"tools/call","params":{
        "name":"everything__trigger-long-running-operation","arguments":{"duration":1,"steps":3},
        "_meta":{"progressToken":"my-token"}}}),
    )
    .await;
    let (answer, before) = raw.until_response("long").await;
    assert!(answer["result"]["content"].is_array(), "{answer}");
    let progress: Vec<_> = before
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert!(!progress.is_empty(), "{before:?}");
    assert!(
        progress
            .iter()
            .all(|p| p["params"]["progressToken"] == "my-token"),
        "{progress:?}"
    );

    // Prompts work over stdio too.
    raw.send(json!({"jsonrpc":"2.0","id":"p","method":"prompts/get","params":{"name":"everything__simple-prompt"}}))
        .await;
    let (prompt, _) = raw.until_response("p").await;
    assert!(prompt["result"]["messages"].is_array(), "{prompt}");

    // This raw client did not declare sampling: the server's request is refused on its
    // behalf with a clear error, instead of being sent to a client that cannot answer.
    raw.send(
        json!({"jsonrpc":"2.0","id":"s","method":"tools/call","params":{
        "name":"everything__trigger-sampling-request","arguments":{"prompt":"hi"}}}),
    )
    .await;
    let (sampled, before) = raw.until_response("s").await;
    assert!(
        before
            .iter()
            .all(|m| m["method"] != "sampling/createMessage"),
        "{before:?}"
    );
    let text = sampled.to_string();
    assert!(
        text.contains("does not support") || sampled["result"]["isError"] == true,
        "{sampled}"
    );
    raw.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_over_stdio_is_answered_by_the_client() {
    let (mut raw, _) = RawStdio::start_with_capabilities(
        json!({ "fx": { "command": FIXTURE, "args": ["--stdio"] } }),
        json!({ "sampling": {} }),
    )
    .await;
    raw.send(
        json!({"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{
        "name":"fx__sample","arguments":{"prompt":"ping?"}}}),
    )
    .await;
    // The proxy asks us; we answer; the tool result carries our answer.
    let request = loop {
        let message = raw.next().await;
        if message["method"] == "sampling/createMessage" {
            break message;
        }
    };
    assert!(request.to_string().contains("ping?"), "{request}");
    raw.send(json!({"jsonrpc":"2.0","id":request["id"],"result":{
        "role":"assistant","content":{"type":"text","text":"pong!"},"model":"m"}}))
        .await;
    let (answer, _) = raw.until_response("c1").await;
    assert_eq!(
        answer["result"]["content"][0]["text"], "sampled: pong!",
        "{answer}"
    );
    raw.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_sessions_each_get_their_own_sampling_request() {
    let proxy = Proxy::start(
        json!({ "iso": { "command": FIXTURE, "args": ["--stdio"], "isolation": "session", "maxSessions": 4 } }),
        &[],
    )
    .await;
    proxy.settled().await;
    let mut a = Sampler::new("session-a");
    a.delay = Duration::from_millis(300);
    let mut b = Sampler::new("session-b");
    b.delay = Duration::from_millis(300);
    let client_a = connect(&proxy, a).await;
    let client_b = connect(&proxy, b).await;
    let (first, second) = tokio::join!(
        call(
            client_a.peer(),
            "iso__sample",
            json!({ "prompt": "from a" })
        ),
        call(
            client_b.peer(),
            "iso__sample",
            json!({ "prompt": "from b" })
        ),
    );
    assert_eq!(
        first.map(|r| text(&r)).ok().as_deref(),
        Some("sampled: answer from session-a")
    );
    assert_eq!(
        second.map(|r| text(&r)).ok().as_deref(),
        Some("sampled: answer from session-b")
    );
    // Each session has its own process.
    let pid_a = call(client_a.peer(), "iso__whoami", json!({}))
        .await
        .map(|r| text(&r))
        .ok();
    let pid_b = call(client_b.peer(), "iso__whoami", json!({}))
        .await
        .map(|r| text(&r))
        .ok();
    assert_ne!(pid_a, pid_b);
    let (_, servers) = proxy.get("/servers").await;
    assert_eq!(servers["servers"][0]["session_instances"], 2, "{servers}");
    // Ending a session stops its process.
    client_a.cancel().await.ok();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, servers) = proxy.get("/servers").await;
        if servers["servers"][0]["session_instances"] == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the ended session's process is still running: {servers}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client_b.cancel().await.ok();
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_servers_serve_a_lone_caller_and_refuse_ambiguous_sampling() {
    let proxy = Proxy::start(
        json!({ "shared": { "command": FIXTURE, "args": ["--stdio"] } }),
        &[],
    )
    .await;
    proxy.settled().await;
    let (arrived_tx, mut arrived) = mpsc::unbounded_channel();
    let mut a = Sampler::new("session-a");
    a.delay = Duration::from_millis(800);
    a.arrived = Some(arrived_tx);
    let b = Sampler::new("session-b");
    let b_seen = b.seen.clone();
    let client_a = connect(&proxy, a).await;
    let client_b = connect(&proxy, b).await;

    // A lone caller is served.
    let lone = call(
        client_b.peer(),
        "shared__sample",
        json!({ "prompt": "alone" }),
    )
    .await;
    assert_eq!(
        lone.map(|r| text(&r)).ok().as_deref(),
        Some("sampled: answer from session-b")
    );
    b_seen.lock().await.clear();

    // A's call is in flight (its client is answering slowly) when B's call asks too.
    let peer_a = client_a.peer().clone();
    let first =
        tokio::spawn(
            async move { call(&peer_a, "shared__sample", json!({ "prompt": "a" })).await },
        );
    tokio::time::timeout(Duration::from_secs(10), arrived.recv())
        .await
        .unwrap_or_else(|_| panic!("A never got its sampling request"));
    let second = call(client_b.peer(), "shared__sample", json!({ "prompt": "b" })).await;
    let second = second.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(second.is_error, Some(true), "{second:?}");
    assert!(text(&second).contains("several"), "{}", text(&second));
    assert!(
        b_seen.lock().await.is_empty(),
        "B was sent someone else's request"
    );
    let first = first.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        first.map(|r| text(&r)).ok().as_deref(),
        Some("sampled: answer from session-a")
    );
    client_a.cancel().await.ok();
    client_b.cancel().await.ok();
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cancelled_by_the_client_is_cancelled_downstream() {
    let proxy = Proxy::start(
        json!({ "fx": { "command": FIXTURE, "args": ["--stdio"] }, "everything": everything_entry() }),
        &[],
    )
    .await;
    proxy.settled().await;
    let client = proxy.mcp().await;
    for (tool, arguments, server) in [
        ("fx__sleep", json!({ "ms": 10_000 }), "fx"),
        (
            "everything__trigger-long-running-operation",
            json!({ "duration": 20, "steps": 4 }),
            "everything",
        ),
    ] {
        let mut params = rmcp::model::CallToolRequestParams::new(tool);
        params.arguments = arguments.as_object().cloned();
        let handle = client
            .peer()
            .send_cancellable_request(
                rmcp::model::ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(
                    params,
                )),
                rmcp::service::PeerRequestOptions::no_options(),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        tokio::time::sleep(Duration::from_millis(300)).await;
        handle
            .cancel(Some("the user pressed stop".into()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let sent = format!("server={server}");
        while !proxy
            .logs()
            .lines()
            .any(|l| l.contains("sending notifications/cancelled downstream") && l.contains(&sent))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "no cancellation sent to {server}:\n{}",
                proxy.logs()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    // The fixture shows the cancellation took effect there.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !proxy.logs().contains("sleep cancelled") {
        assert!(
            std::time::Instant::now() < deadline,
            "the fixture kept sleeping"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // The session is still healthy.
    let echoed = call(client.peer(), "fx__echo", json!({ "text": "still fine" })).await;
    assert_eq!(echoed.map(|r| text(&r)).ok().as_deref(), Some("still fine"));
    client.cancel().await.ok();
    proxy.stop().await;
}
