//! Legacy HTTP+SSE (2024-11-05) in both directions: mcp-orch's `GET /sse` + `POST /message`
//! face (checked on the wire and by another mcp-orch using it as a downstream), and
//! `"type": "sse"` downstreams (the real server-everything in `sse` mode).

mod common;

use std::time::Duration;

use common::{FIXTURE, Proxy, call, everything_entry, fixture_entry, text};
use futures::StreamExt;
use serde_json::{Value, json};

/// Reads SSE events until one satisfies `wanted`, bounded.
async fn next_event<S>(events: &mut S, wanted: impl Fn(&sse_stream::Sse) -> bool) -> sse_stream::Sse
where
    S: futures::Stream<Item = Result<sse_stream::Sse, sse_stream::Error>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match events.next().await {
                Some(Ok(event)) if wanted(&event) => return event,
                Some(Ok(_)) => continue,
                other => panic!("the event stream ended: {other:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no matching SSE event in time"))
}

fn message_with_id(id: &'static str) -> impl Fn(&sse_stream::Sse) -> bool {
    move |event| {
        event.event.as_deref() == Some("message")
            && event
                .data
                .as_deref()
                .and_then(|d| serde_json::from_str::<Value>(d).ok())
                .is_some_and(|m| m["id"] == id)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sse_face_speaks_the_2024_11_05_wire_format() {
    let proxy = Proxy::start(json!({ "fx": fixture_entry("fx") }), &[]).await;
    let response = proxy
        .http
        .get(format!("{}/sse", proxy.base))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"))
    );
    let mut events = sse_stream::SseStream::from_bytes_stream(response.bytes_stream());
    let endpoint = next_event(&mut events, |e| e.event.as_deref() == Some("endpoint")).await;
    let path = endpoint.data.unwrap_or_default();
    assert!(path.starts_with("/message?sessionId="), "{path}");
    let post = |body: Value| {
        let url = format!("{}{path}", proxy.base);
        let http = proxy.http.clone();
        async move {
            http.post(url)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    let status = post(json!({"jsonrpc":"2.0","id":"i","method":"initialize","params":{
        "protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"legacy","version":"0"}}}))
    .await;
    assert_eq!(status, 202);
    let init = next_event(&mut events, message_with_id("i")).await;
    let init: Value = serde_json::from_str(&init.data.unwrap_or_default()).unwrap_or_default();
    assert_eq!(init["result"]["protocolVersion"], "2024-11-05");
    assert_eq!(
        post(json!({"jsonrpc":"2.0","method":"notifications/initialized"})).await,
        202
    );
    assert_eq!(
        post(json!({"jsonrpc":"2.0","id":"c","method":"tools/call","params":{"name":"fx__echo","arguments":{"text":"legacy"}}})).await,
        202
    );
    let reply = next_event(&mut events, message_with_id("c")).await;
    let reply: Value = serde_json::from_str(&reply.data.unwrap_or_default()).unwrap_or_default();
    assert_eq!(reply["result"]["content"][0]["text"], "legacy");

    // Bad input and unknown sessions are refused without harming the session.
    let bad = proxy
        .http
        .post(format!("{}{path}", proxy.base))
        .body("{not json")
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    assert_eq!(bad, 400);
    let unknown = proxy
        .http
        .post(format!("{}/message?sessionId=nope", proxy.base))
        .body("{}")
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    assert_eq!(unknown, 404);
    assert_eq!(
        post(json!({"jsonrpc":"2.0","id":"p","method":"ping"})).await,
        202
    );
    next_event(&mut events, message_with_id("p")).await;
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_orch_sse_face_works_as_another_mcp_orchs_downstream() {
    let inner = Proxy::start(
        json!({ "fx": { "command": FIXTURE, "args": ["--stdio"], "prefix": "" } }),
        &[],
    )
    .await;
    let outer = Proxy::start(
        json!({ "legacy": { "url": format!("{}/sse", inner.base), "timeout": 0.5 } }),
        &[],
    )
    .await;
    let servers = outer.settled().await;
    assert_eq!(servers["servers"][0]["transport"], "sse", "{servers}");
    assert_eq!(servers["servers"][0]["status"], "ready", "{servers}");
    let client = outer.mcp().await;
    let echoed = call(client.peer(), "legacy__echo", json!({ "text": "two hops" })).await;
    assert_eq!(echoed.map(|r| text(&r)).ok().as_deref(), Some("two hops"));
    let calls = (0..8).map(|i| {
        let peer = client.peer().clone();
        async move {
            call(&peer, "legacy__add", json!({ "a": i, "b": 1 }))
                .await
                .map(|r| text(&r))
        }
    });
    let answers: Vec<_> = futures::future::join_all(calls).await;
    for (i, answer) in answers.into_iter().enumerate() {
        assert_eq!(answer.ok(), Some(format!("{}", i + 1)));
    }
    // A timeout across the SSE hop cancels the call at the far end.
    let slow = call(client.peer(), "legacy__sleep", json!({ "ms": 5000 })).await;
    assert!(slow.is_ok_and(|r| r.is_error == Some(true)));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !inner.logs().contains("sleep cancelled") {
        assert!(
            std::time::Instant::now() < deadline,
            "the cancellation did not cross the SSE hop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.cancel().await.ok();
    outer.stop().await;
    inner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_everything_in_sse_mode_is_a_downstream() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut everything = tokio::process::Command::new(common::server_everything())
        .arg("sse")
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    // Wait until it listens.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "server-everything sse did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let proxy = Proxy::start(
        json!({
            "remote": { "url": format!("http://127.0.0.1:{port}/sse") },
            "local": everything_entry()
        }),
        &[],
    )
    .await;
    let servers = proxy.settled().await;
    let remote = servers["servers"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == "remote").cloned())
        .unwrap_or_default();
    assert_eq!(remote["status"], "ready", "{servers}");
    let (status, sum) = proxy
        .post("/tools/remote.get-sum", r#"{"a": 20, "b": 22}"#)
        .await;
    assert_eq!(status, 200, "{sum}");
    assert_eq!(sum["content"][0]["text"], "The sum of 20 and 22 is 42.");
    proxy.stop().await;
    let _ = everything.kill().await;
}

/// A hand-rolled 2024-11-05 client: one event stream, one POST endpoint.
struct RawSse {
    events: std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<sse_stream::Sse, sse_stream::Error>> + Send>,
    >,
    endpoint: String,
    http: reqwest::Client,
}

impl RawSse {
    async fn open(proxy: &Proxy, capabilities: Value) -> RawSse {
        let response = proxy
            .http
            .get(format!("{}/sse", proxy.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut events: std::pin::Pin<Box<dyn futures::Stream<Item = _> + Send>> = Box::pin(
            sse_stream::SseStream::from_bytes_stream(response.bytes_stream()),
        );
        let endpoint = next_event(&mut events, |e| e.event.as_deref() == Some("endpoint")).await;
        let mut raw = RawSse {
            events,
            endpoint: format!("{}{}", proxy.base, endpoint.data.unwrap_or_default()),
            http: proxy.http.clone(),
        };
        raw.post(
            json!({"jsonrpc":"2.0","id":"init","method":"initialize","params":{
            "protocolVersion":"2024-11-05","capabilities":capabilities,
            "clientInfo":{"name":"legacy","version":"0"}}}),
        )
        .await;
        raw.next_message(|m| m["id"] == "init").await;
        raw.post(json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
            .await;
        raw
    }

    async fn post(&self, message: Value) {
        let status = self
            .http
            .post(&self.endpoint)
            .header("content-type", "application/json")
            .body(message.to_string())
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        assert_eq!(status, 202, "POST {message}");
    }

    async fn next_message(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            let event =
                next_event(&mut self.events, |e| e.event.as_deref() == Some("message")).await;
            let message: Value =
                serde_json::from_str(&event.data.unwrap_or_default()).unwrap_or_default();
            if wanted(&message) {
                return message;
            }
        }
    }

    /// Calls a tool, answering every server→client request with `answer(request)`.
    async fn call(
        &mut self,
        id: &str,
        tool: &str,
        arguments: Value,
        answer: impl Fn(&Value) -> Value,
    ) -> Value {
        self.post(json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":arguments}}))
            .await;
        loop {
            let message = self.next_message(|_| true).await;
            if message["id"] == id && message.get("method").is_none() {
                return message;
            }
            if message.get("method").is_some() && message.get("id").is_some() {
                self.post(json!({"jsonrpc":"2.0","id":message["id"],"result":answer(&message)}))
                    .await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_everything_over_the_sse_face_prompts_resources_sampling_roots_elicitation() {
    let proxy = Proxy::start(json!({ "everything": everything_entry() }), &[]).await;
    proxy.settled().await;
    let mut raw = RawSse::open(
        &proxy,
        json!({ "sampling": {}, "roots": { "listChanged": true }, "elicitation": { "form": {}, "url": {} } }),
    )
    .await;

    raw.post(json!({"jsonrpc":"2.0","id":"p","method":"prompts/get","params":{"name":"everything__simple-prompt"}}))
        .await;
    let prompt = raw.next_message(|m| m["id"] == "p").await;
    assert!(prompt["result"]["messages"].is_array(), "{prompt}");

    raw.post(json!({"jsonrpc":"2.0","id":"r","method":"resources/read",
        "params":{"uri":"demo://resource/static/document/architecture.md"}}))
        .await;
    let read = raw.next_message(|m| m["id"] == "r").await;
    assert_eq!(
        read["result"]["contents"][0]["uri"], "demo://resource/static/document/architecture.md",
        "{read}"
    );

    let answer = |request: &Value| match request["method"].as_str() {
        Some("sampling/createMessage") => {
            json!({"role":"assistant","content":{"type":"text","text":"four"},"model":"legacy-model"})
        }
        Some("roots/list") => {
            json!({"roots":[{"uri":"file:///workspace/legacy","name":"legacy root"}]})
        }
        Some("elicitation/create") => json!({"action":"accept"}),
        _ => json!({}),
    };
    let sampled = raw
        .call(
            "s",
            "everything__trigger-sampling-request",
            json!({"prompt":"2+2?"}),
            answer,
        )
        .await;
    assert!(sampled.to_string().contains("four"), "{sampled}");
    let roots = raw
        .call("roots", "everything__get-roots-list", json!({}), answer)
        .await;
    assert!(
        roots.to_string().contains("file:///workspace/legacy"),
        "{roots}"
    );
    let elicited = raw
        .call(
            "e",
            "everything__trigger-url-elicitation",
            json!({"url":"https://example.com/approve"}),
            answer,
        )
        .await;
    assert!(elicited["result"].is_object(), "{elicited}");
    assert_ne!(elicited["result"]["isError"], true, "{elicited}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// The plain request takes the serialized-listing path (all its conditions hold here; which
/// requests take it is unit-tested in `upstream::sse`); the `_meta` one goes through rmcp.
async fn tools_list_over_sse_answers_the_same_with_and_without_meta() {
    let proxy = Proxy::start(json!({ "fx": fixture_entry("fx") }), &[]).await;
    proxy.settled().await;
    let mut raw = RawSse::open(&proxy, json!({})).await;
    // With `_meta` the request goes through rmcp's typed handler; without, it is answered
    // from the catalogue's serialized listing. Same result either way, ids as given.
    raw.post(json!({"jsonrpc":"2.0","id":"typed","method":"tools/list","params":{"_meta":{}}}))
        .await;
    let typed = raw.next_message(|m| m["id"] == "typed").await;
    raw.post(json!({"jsonrpc":"2.0","id":7,"method":"tools/list","params":{}}))
        .await;
    let cached = raw.next_message(|m| m["id"] == 7).await;
    assert_eq!(cached["jsonrpc"], "2.0");
    assert!(
        typed["result"]["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["name"] == "fx__echo")),
        "{typed}"
    );
    assert_eq!(cached["result"], typed["result"]);
    // Calls still go through the handler on the same stream.
    let echoed = raw
        .call("c", "fx__echo", json!({"text": "after the cache"}), |_| {
            json!({})
        })
        .await;
    assert_eq!(echoed["result"]["content"][0]["text"], "after the cache");
    proxy.stop().await;
}
