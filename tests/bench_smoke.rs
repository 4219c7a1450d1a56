//! The benchmark harness in smoke mode: the load generator's own engine (`benches/loadgen/
//! harness`, included here) drives a few hundred calls through the real `mcp-orch` binary —
//! its stdio face, `/mcp` and `/sse` — and through the reference server's legacy SSE face, and every
//! call must succeed and carry its own text back (so mixed-up replies between concurrent
//! calls fail the test). No timing is asserted. Also unit tests of the harness's parsers and
//! of the table it prints.

#[path = "../benches/loadgen/harness/mod.rs"]
#[allow(dead_code)]
mod harness;

mod common;

use std::time::Duration;

use harness::http::{Event, SseParser, Url};
use harness::measure::{CallSpec, Hooks, Plan, Reporter};
use harness::process::Launch;
use harness::session::Wire;
use harness::stats::{Samples, median};
use harness::table::{Results, render};
use serde_json::{Value, json};

fn smoke_plan(
    target: &str,
    wire: Wire,
    url: Option<&str>,
    command: Vec<String>,
    tool: &str,
    arg: &str,
) -> Plan {
    Plan {
        target: target.to_owned(),
        downstream: "smoke".to_owned(),
        round: 1,
        wire,
        url: url.map(str::to_owned),
        launch: Some(Launch {
            command,
            env: vec![("LOG_LEVEL".to_owned(), "warn".to_owned())],
            env_remove: vec!["PROXY_PORT".to_owned(), "RUST_LOG".to_owned()],
            stdio: wire == Wire::Stdio,
        }),
        timeout: Duration::from_secs(20),
        expect_tools: 1,
        idle_ms: 0,
        list_calls: 5,
        warmup: 10,
        seq_calls: 100,
        in_flight: vec![8],
        sessions: if wire == Wire::Stdio { vec![] } else { vec![4] },
        calls_per_level: 100,
        soak_calls: 0,
        soak_in_flight: 8,
        call: CallSpec {
            tool: tool.to_owned(),
            arg: arg.to_owned(),
        },
        hooks: Hooks::default(),
        stop_grace: Duration::from_secs(3),
    }
}

/// Runs a plan and checks that every phase ran and no call failed.
async fn run_smoke(plan: Plan) -> Vec<Value> {
    let reporter = Reporter::new(&plan, false);
    let ok = tokio::time::timeout(
        Duration::from_secs(120),
        harness::measure::run(&plan, &reporter),
    )
    .await
    .unwrap_or_else(|_| panic!("{}: smoke run did not finish within 120 s", plan.target));
    let lines = reporter.lines.lock().map(|l| l.clone()).unwrap_or_default();
    assert!(ok, "{}: failures or errors: {lines:#?}", plan.target);
    let measures: Vec<&str> = lines.iter().filter_map(|l| l["measure"].as_str()).collect();
    // Start-up and memory are measured only on a target the harness started itself.
    let own_process: &[&str] = match plan.launch {
        Some(_) => &["cold_start", "rss_idle", "rss_load"],
        None => &[],
    };
    for expected in ["tools_list", "call_seq", "throughput"]
        .iter()
        .chain(own_process)
    {
        assert!(
            measures.contains(expected),
            "{}: no {expected} line in {lines:#?}",
            plan.target
        );
    }
    let calls: u64 = lines
        .iter()
        .filter(|l| l["measure"] == "call_seq" || l["measure"] == "throughput")
        .map(|l| l["calls"].as_u64().unwrap_or(0))
        .sum();
    let expected_calls = if plan.wire == Wire::Stdio { 200 } else { 300 };
    assert_eq!(calls, expected_calls, "{}: {lines:#?}", plan.target);
    for line in &lines {
        assert_eq!(
            line["errors"].as_u64().unwrap_or(0),
            0,
            "{}: {line}",
            plan.target
        );
    }
    lines
}

fn orch_config(dir: &tempfile::TempDir) -> String {
    let path = dir.path().join("mcp-config.json");
    let config = json!({ "mcpServers": { "fx": common::fixture_entry("fx") } });
    std::fs::write(&path, config.to_string()).unwrap_or_else(|e| panic!("write config: {e}"));
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_through_the_stdio_face() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = orch_config(&dir);
    let plan = smoke_plan(
        "orch-stdio",
        Wire::Stdio,
        None,
        vec![common::PROXY.to_owned(), "--mcp-config".to_owned(), config],
        "fx__echo",
        "text",
    );
    let lines = run_smoke(plan).await;
    let list = lines.iter().find(|l| l["measure"] == "tools_list");
    assert!(
        list.and_then(|l| l["tools"].as_u64()).unwrap_or(0) >= 10,
        "the fixture's tools were not listed: {list:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_through_mcp_over_http_with_several_sessions() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = orch_config(&dir);
    let plan = smoke_plan(
        "orch-mcp",
        Wire::Http,
        Some("http://127.0.0.1:{port}/mcp"),
        vec![
            common::PROXY.to_owned(),
            "--mcp-config".to_owned(),
            config,
            "--port".to_owned(),
            "{port}".to_owned(),
            "--no-stdio".to_owned(),
        ],
        "fx__echo",
        "text",
    );
    let lines = run_smoke(plan).await;
    assert_has_many_sessions_line(&lines);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_through_the_legacy_sse_face() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = orch_config(&dir);
    let plan = smoke_plan(
        "orch-sse",
        Wire::Sse,
        Some("http://127.0.0.1:{port}/sse"),
        vec![
            common::PROXY.to_owned(),
            "--mcp-config".to_owned(),
            config,
            "--port".to_owned(),
            "{port}".to_owned(),
            "--no-stdio".to_owned(),
        ],
        "fx__echo",
        "text",
    );
    run_smoke(plan).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_through_legacy_sse_of_the_reference_server() {
    let everything = common::server_everything();
    let mut plan = smoke_plan(
        "direct-sse",
        Wire::Sse,
        Some("http://127.0.0.1:{port}/sse"),
        vec![everything.display().to_string(), "sse".to_owned()],
        "echo",
        "message",
    );
    if let Some(launch) = plan.launch.as_mut() {
        launch.env.push(("PORT".to_owned(), "{port}".to_owned()));
    }
    run_smoke(plan).await;
}

/// The null HTTP relay of the floor rows (`loadgen relay`), served in-process in front of
/// the fixture: every call of every session (each numbering its ids from 1) comes back to
/// the caller that made it, so its id swapping is right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_through_the_null_http_relay() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("address: {e}"))
        .port();
    let command = vec![common::FIXTURE.to_owned(), "--stdio".to_owned()];
    let relay = tokio::spawn(async move { harness::relay::serve_http(listener, &command).await });
    let mut plan = smoke_plan(
        "relay-http",
        Wire::Http,
        Some(&format!("http://127.0.0.1:{port}/mcp")),
        Vec::new(),
        "echo",
        "text",
    );
    plan.launch = None;
    let lines = run_smoke(plan).await;
    assert_has_many_sessions_line(&lines);
    assert!(!relay.is_finished(), "the relay stopped: {:?}", relay.await);
    relay.abort();
}

#[test]
fn a_reply_without_the_calls_own_text_is_an_error() {
    let spec = CallSpec {
        tool: "echo".to_owned(),
        arg: "text".to_owned(),
    };
    let body: Value = serde_json::from_str(&spec.body(12)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(body["params"]["arguments"]["text"], "loadgen-12");
    let reply = |text: &str| {
        json!({"jsonrpc": "2.0", "id": 12, "result": {"content": [{"type": "text", "text": text}]}})
            .to_string()
    };
    assert!(spec.check(12, &reply("loadgen-12")).is_ok());
    assert!(spec.check(12, &reply("Echo: loadgen-12")).is_ok());
    assert!(
        spec.check(12, &reply("loadgen-1")).is_err(),
        "another call's text"
    );
    assert!(
        spec.check(1, &reply("loadgen-12")).is_err(),
        "a prefix is not a match"
    );
    let flagged = json!({"jsonrpc": "2.0", "id": 12, "result": {"content": [{"type": "text", "text": "loadgen-12"}], "isError": true}});
    assert!(spec.check(12, &flagged.to_string()).is_err());
    let error = json!({"jsonrpc": "2.0", "id": 12, "error": {"code": -32602, "message": "no"}});
    assert!(spec.check(12, &error.to_string()).is_err());
}

#[test]
fn percentiles_and_medians() {
    let mut samples = Samples::with_capacity(100);
    for us in 1..=100u64 {
        samples.push(Duration::from_micros(us));
    }
    let summary = samples.summary();
    assert_eq!(summary.count, 100);
    assert_eq!(summary.p50_us, 50.0);
    assert_eq!(summary.p99_us, 99.0);
    assert_eq!(summary.max_us, 100.0);
    assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
}

#[test]
fn urls_and_sse_endpoint_references() {
    let url = Url::parse("http://127.0.0.1:3001/sse").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(url.authority, "127.0.0.1:3001");
    assert_eq!(url.path, "/sse");
    let joined = url
        .join("/message?sessionId=1")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(joined.path, "/message?sessionId=1");
    let relative = url
        .join("messages/?session_id=2")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(relative.path, "/messages/?session_id=2");
    assert!(Url::parse("https://example.com").is_err());
}

#[test]
fn sse_events_split_across_pieces() {
    let mut parser = SseParser::default();
    parser.push(
        b": comment\r\n\r\nevent: endpoint\r\ndata: /message?x=1\r\n\r\nid: 1\ndata: {\"a\":",
    );
    assert_eq!(
        parser.next_event(),
        Some(Event {
            name: "endpoint".into(),
            data: "/message?x=1".into()
        })
    );
    assert_eq!(parser.next_event(), None);
    parser.push(b"1}\n\nretry: 10\ndata:\n\n");
    assert_eq!(
        parser.next_event(),
        Some(Event {
            name: "message".into(),
            data: "{\"a\":1}".into()
        })
    );
    assert_eq!(parser.next_event(), None);
}

#[test]
fn the_table_takes_medians_over_rounds_and_judges_targets() {
    let lines = [
        r#"{"target":"direct-stdio","downstream":"fixture","round":1,"measure":"call_seq","p50_us":20.0,"p99_us":40.0,"errors":0}"#,
        r#"{"target":"direct-stdio","downstream":"fixture","round":2,"measure":"call_seq","p50_us":30.0,"p99_us":50.0,"errors":0}"#,
        r#"{"target":"orch-mcp","downstream":"fixture","round":1,"measure":"call_seq","p50_us":100.0,"p99_us":200.0,"errors":0}"#,
        r#"{"target":"orch-mcp","downstream":"fixture","round":2,"measure":"call_seq","p50_us":140.0,"p99_us":200.0,"errors":2,"first_error":"boom"}"#,
        r#"{"target":"orch-stdio","downstream":"fixture","round":1,"measure":"call_seq","p50_us":90.0,"p99_us":200.0,"errors":0}"#,
        r#"{"target":"relay-stdio","downstream":"fixture","round":1,"measure":"call_seq","p50_us":60.0,"p99_us":90.0,"errors":0}"#,
        r#"not json"#,
    ]
    .join("\n");
    let results = Results::parse(&lines);
    let text = render(&results);
    assert!(
        text.contains("| mcp-orch, `/mcp` | 120 | +95.0 |"),
        "{text}"
    );
    assert!(text.contains("+95.0 µs | met"), "{text}");
    // The stdio face against its floor (the null relay); /mcp has no relay row here.
    assert!(
        text.contains("+65.0 µs (null relay, the floor: +35.0 µs) | **missed**"),
        "{text}"
    );
    assert!(text.contains("| null relay, stdio"), "{text}");
    assert!(text.contains("2 error(s), first: boom"), "{text}");
    assert!(text.contains("Medians over 2 round(s)"), "{text}");
}

#[test]
fn replies_are_told_from_requests_and_notifications() {
    use harness::session::{Kind, classify};
    assert_eq!(
        classify(r#"{"jsonrpc":"2.0","id":7,"result":{}}"#),
        Kind::Reply(Some(7))
    );
    assert_eq!(
        classify(r#"{"jsonrpc":"2.0","id":8,"error":{"code":1,"message":"x"}}"#),
        Kind::Reply(Some(8))
    );
    assert_eq!(
        classify(r#"{"result":{},"id":9,"jsonrpc":"2.0"}"#),
        Kind::Reply(Some(9))
    );
    assert_eq!(
        classify(r#"{"jsonrpc":"2.0","id":"s1","result":{}}"#),
        Kind::Reply(None)
    );
    assert_eq!(
        classify(r#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#),
        Kind::Request("3".to_owned())
    );
    assert_eq!(
        classify(r#"{"jsonrpc":"2.0","method":"notifications/message","params":{}}"#),
        Kind::Other
    );
    assert_eq!(classify("not json"), Kind::Other);
}

#[test]
fn a_large_event_in_many_pieces_is_found_once_complete() {
    let mut parser = SseParser::default();
    let data = "x".repeat(100_000);
    let text = format!("data: {data}\n\n");
    for piece in text.as_bytes().chunks(997) {
        assert!(parser.next_event().is_none() || piece.is_empty());
        parser.push(piece);
    }
    let event = parser.next_event().unwrap_or_else(|| panic!("no event"));
    assert_eq!(event.data.len(), 100_000);
    assert_eq!(parser.next_event(), None);
}

/// The run measured throughput over 4 sessions.
fn assert_has_many_sessions_line(lines: &[serde_json::Value]) {
    assert!(
        lines
            .iter()
            .any(|l| l["measure"] == "throughput" && l["sessions"] == 4),
        "no many-sessions line: {lines:#?}"
    );
}
