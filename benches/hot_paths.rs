//! criterion micro-benchmarks of what one proxied `tools/call` costs inside mcp-orch, piece
//! by piece, in the order a call meets them:
//!
//! 1. `upstream_decode`: rmcp decoding the client's `tools/call` into `ClientJsonRpcMessage`
//!    (what the stdio and `/mcp` faces do with every request body);
//! 2. `catalog/*`: the exposed-name lookup (`Catalog::get`) and the REST form
//!    (`Catalog::get_original`), on a 1,000-tool catalogue of 20 servers; `Catalog::build`
//!    and `assign_exposed_names` (every catalogue rebuild);
//! 3. `downstream_encode`: building the downstream `CallToolRequest` the way the router does
//!    and serialising it the way the stdio writer does;
//! 4. `pending/*`: the table of requests in flight — insert, reply routed by id through a
//!    oneshot, progress routed by token. The real table is private to
//!    `src/downstream/connection.rs` (`Connection::new` and `dispatch` are `pub(crate)`), so
//!    this benchmarks a replica with the same types and locking; `router/call_tool` below
//!    covers the real one end to end;
//! 5. `reply_envelope` (replica of the private `stdio::parse_inbound` fast path: envelope +
//!    raw result) and `reply_decode` (`Reply::decode::<CallToolResult>`, public);
//! 6. `upstream_encode`: rmcp serialising the `CallToolResult` response to the client;
//! 7. `router/call_tool_fixture_stdio/*`: `Router::call_tool` through a real fixture child
//!    over stdio — the whole core path without any upstream face, the floor for every face's
//!    latency — on a one-thread runtime and on two workers as in the binary.
//!
//! Run with `cargo bench --bench hot_paths` (add `-- <filter>` for one group). Under
//! `cargo test --all-targets` each benchmark runs once, as a test.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mcp_orch::catalog::{
    Catalog, MAX_EXPOSED_NAME_LEN, NameRequest, ServerTools, assign_exposed_names,
};
use mcp_orch::downstream::{CallEvent, Reply};
use mcp_orch::router::{CallContext, Router, RouterSettings};
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, ClientJsonRpcMessage, ClientRequest,
    ContentBlock, ErrorData, NumberOrString, ProgressNotificationParam, ProgressToken,
    ServerJsonRpcMessage, ServerResult, Tool,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};

const SERVERS: usize = 20;
const TOOLS_PER_SERVER: usize = 50;

fn tool(name: String) -> Tool {
    let schema = json!({
        "type": "object",
        "properties": { "text": { "type": "string", "description": "Text to echo back" } },
        "required": ["text"]
    });
    let Value::Object(schema) = schema else {
        unreachable!("a JSON object literal")
    };
    Tool::new(
        name,
        "Echoes `text`; one of many tools for benchmarks.",
        Arc::new(schema),
    )
}

fn servers() -> Vec<ServerTools> {
    (0..SERVERS)
        .map(|s| ServerTools {
            server: Arc::from(format!("server-{s:02}")),
            prefix: format!("server-{s:02}"),
            tools: Arc::new(
                (0..TOOLS_PER_SERVER)
                    .map(|t| tool(format!("tool_{t:04}")))
                    .collect(),
            ),
            prompts: Arc::default(),
            resources: Arc::default(),
            templates: Arc::default(),
            serves_resources: false,
        })
        .collect()
}

fn catalog(c: &mut Criterion) {
    let catalog = Catalog::build(servers(), "__");
    assert_eq!(catalog.len(), SERVERS * TOOLS_PER_SERVER);
    let names: Vec<String> = catalog
        .tools()
        .iter()
        .map(|t| t.exposed.to_string())
        .collect();
    let mut group = c.benchmark_group("catalog");
    let mut i = 0usize;
    group.bench_function("get_exposed_1000", |b| {
        b.iter(|| {
            i = (i + 7) % names.len();
            black_box(catalog.get(black_box(&names[i])).is_some())
        })
    });
    group.bench_function("get_original_1000", |b| {
        b.iter(|| black_box(catalog.get_original(black_box("server-07"), black_box("tool_0031"))))
    });
    group.bench_function("get_missing_1000", |b| {
        b.iter(|| black_box(catalog.get(black_box("server-07__no_such_tool")).is_none()))
    });
    let input = servers();
    group.bench_function("build_1000", |b| {
        b.iter_batched(
            || input.clone(),
            |s| Catalog::build(s, "__"),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    let owned: Vec<(String, String)> = (0..SERVERS)
        .flat_map(|s| {
            (0..TOOLS_PER_SERVER).map(move |t| (format!("server-{s:02}"), format!("tool_{t:04}")))
        })
        .collect();
    let requests: Vec<NameRequest<'_>> = owned
        .iter()
        .map(|(server, original)| NameRequest {
            server,
            prefix: server,
            original,
        })
        .collect();
    let mut group = c.benchmark_group("naming");
    group.bench_function("assign_exposed_names_1000", |b| {
        b.iter(|| assign_exposed_names(black_box(&requests), "__", MAX_EXPOSED_NAME_LEN))
    });
    group.bench_function("assign_exposed_names_50", |b| {
        b.iter(|| assign_exposed_names(black_box(&requests[..50]), "__", MAX_EXPOSED_NAME_LEN))
    });
    group.finish();
}

const CLIENT_CALL: &str = r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"server-07__tool_0031","arguments":{"text":"loadgen-42"}}}"#;
const DOWNSTREAM_REPLY: &str = r#"{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"loadgen-42"}],"isError":false}}"#;

/// The fields `stdio::parse_inbound` reads first (a copy: that function is private).
#[derive(Deserialize)]
#[allow(dead_code)]
struct Envelope<'a> {
    #[serde(default)]
    id: Option<NumberOrString>,
    #[serde(default, borrow)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<ErrorData>,
}

fn serde_paths(c: &mut Criterion) {
    let mut group = c.benchmark_group("serde");
    group.bench_function("upstream_decode_call", |b| {
        b.iter(|| {
            serde_json::from_str::<ClientJsonRpcMessage>(black_box(CLIENT_CALL))
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
    let arguments: Map<String, Value> = Map::from_iter([("text".to_owned(), json!("loadgen-42"))]);
    let original: Arc<str> = Arc::from("tool_0031");
    let mut line = Vec::with_capacity(4096);
    group.bench_function("downstream_encode_call", |b| {
        b.iter(|| {
            let mut params = CallToolRequestParams::new(original.to_string());
            params.arguments = Some(arguments.clone());
            let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
            let message = ClientJsonRpcMessage::request(request, NumberOrString::Number(42));
            line.clear();
            serde_json::to_writer(&mut line, &message).unwrap_or_else(|e| panic!("{e}"));
            line.push(b'\n');
            black_box(line.len())
        })
    });
    group.bench_function("reply_envelope", |b| {
        b.iter(|| {
            let envelope: Envelope<'_> =
                serde_json::from_str(black_box(DOWNSTREAM_REPLY)).unwrap_or_else(|e| panic!("{e}"));
            black_box(envelope.result.map(|r| r.to_owned()))
        })
    });
    let raw: Box<RawValue> = RawValue::from_string(
        r#"{"content":[{"type":"text","text":"loadgen-42"}],"isError":false}"#.to_owned(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    group.bench_function("reply_decode_call_tool_result", |b| {
        b.iter_batched(
            || Reply::Raw(raw.clone()),
            |reply| {
                reply
                    .decode::<CallToolResult>()
                    .unwrap_or_else(|e| panic!("{e}"))
            },
            BatchSize::SmallInput,
        )
    });
    let result = CallToolResult::success(vec![ContentBlock::text("loadgen-42")]);
    group.bench_function("upstream_encode_result", |b| {
        b.iter(|| {
            let message = ServerJsonRpcMessage::response(
                ServerResult::CallToolResult(result.clone()),
                NumberOrString::Number(42),
            );
            serde_json::to_string(&message).unwrap_or_else(|e| panic!("{e}"))
        })
    });
    group.finish();
}

/// A copy of the private `Pending` entry of `src/downstream/connection.rs`.
#[allow(dead_code)]
struct Pending {
    reply: oneshot::Sender<Result<Reply, ErrorData>>,
    events: Option<mpsc::UnboundedSender<CallEvent>>,
    session: Option<u64>,
    internal: bool,
    /// As in the original: allocated per request, stored to by every progress notification.
    progress_at: Arc<AtomicU64>,
}

fn pending(
    reply: oneshot::Sender<Result<Reply, ErrorData>>,
    events: Option<mpsc::UnboundedSender<CallEvent>>,
) -> Pending {
    Pending {
        reply,
        events,
        session: Some(1),
        internal: false,
        progress_at: Arc::new(AtomicU64::new(u64::MAX)),
    }
}

fn pending_table(c: &mut Criterion) {
    let mut group = c.benchmark_group("pending");
    // 32 other calls in flight, as in the throughput runs.
    let table: Mutex<HashMap<i64, Pending>> = Mutex::new(HashMap::new());
    let mut keep = Vec::new();
    for id in 0..32 {
        let (tx, rx) = oneshot::channel();
        keep.push(rx);
        table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(-1 - id, pending(tx, None));
    }
    let raw: Box<RawValue> =
        RawValue::from_string(r#"{"content":[]}"#.to_owned()).unwrap_or_else(|e| panic!("{e}"));
    let mut next = 1i64;
    group.bench_function("insert_reply_remove", |b| {
        b.iter(|| {
            let id = next;
            next += 1;
            let (tx, mut rx) = oneshot::channel();
            table
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id, pending(tx, None));
            let entry = table.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            if let Some(entry) = entry {
                let _ = entry.reply.send(Ok(Reply::Raw(raw.clone())));
            }
            black_box(rx.try_recv().is_ok())
        })
    });
    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
    let (tx, _rx) = oneshot::channel();
    table
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(0, pending(tx, Some(events_tx)));
    group.bench_function("progress_route", |b| {
        b.iter(|| {
            let events = table
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&0)
                .and_then(|p| {
                    p.progress_at.store(7, Ordering::Relaxed);
                    p.events.clone()
                });
            if let Some(events) = events {
                let param =
                    ProgressNotificationParam::new(ProgressToken(NumberOrString::Number(0)), 1.0);
                let _ = events.send(CallEvent::Progress(param));
            }
            black_box(events_rx.try_recv().is_ok())
        })
    });
    group.finish();
    drop(keep);
}

fn router_call(c: &mut Criterion) {
    // Two runtimes: one thread (no cross-thread wake-ups: the CPU cost of the core path and
    // the pipe round trip) and two workers as in the binary (plus the hand-offs between the
    // caller, the writer task and the reader task).
    let mut group = c.benchmark_group("router");
    for (name, runtime) in [
        (
            "call_tool_fixture_stdio/current_thread",
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
        ),
        (
            "call_tool_fixture_stdio/multi_thread_2",
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build(),
        ),
    ] {
        let runtime = runtime.unwrap_or_else(|e| panic!("runtime: {e}"));
        let router = runtime.block_on(start_router());
        let arguments: Map<String, Value> = Map::from_iter([("text".to_owned(), json!("hello"))]);
        // Every spawn and every `select!` moves this state machine around (memcpy shows up
        // in the profiles): worth watching.
        let future = router.call_tool("fx__echo", Some(arguments.clone()), CallContext::default());
        eprintln!(
            "router/call_tool future size: {} bytes",
            std::mem::size_of_val(&future)
        );
        drop(future);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let router = router.clone();
                let arguments = arguments.clone();
                // Spawned, so that on the multi-thread runtime the caller is a worker too.
                runtime.block_on(async move {
                    tokio::spawn(async move {
                        let started = Instant::now();
                        for _ in 0..iters {
                            let result = router
                                .call_tool(
                                    "fx__echo",
                                    Some(arguments.clone()),
                                    CallContext::default(),
                                )
                                .await
                                .unwrap_or_else(|e| panic!("call: {e}"));
                            black_box(result);
                        }
                        started.elapsed()
                    })
                    .await
                    .unwrap_or_else(|e| panic!("join: {e}"))
                })
            })
        });
        runtime.block_on(router.shutdown());
    }
    group.finish();
}

/// A router with one fixture server over stdio, started and ready.
async fn start_router() -> Arc<Router> {
    let config = json!({ "mcpServers": { "fx": {
        "command": env!("CARGO_BIN_EXE_mcp-orch-fixture"), "args": ["--stdio"] } } });
    let servers = mcp_orch::config::parse_mcp_servers(&config.to_string(), None)
        .unwrap_or_else(|e| panic!("config: {e}"));
    let router = Router::start(
        &servers.servers,
        RouterSettings::from_service(&mcp_orch::config::ServiceConfig::default()),
    );
    assert!(
        router.wait_started(Duration::from_secs(30)).await,
        "fixture did not start"
    );
    router
}

criterion_group!(benches, catalog, serde_paths, pending_table, router_call);
criterion_main!(benches);
