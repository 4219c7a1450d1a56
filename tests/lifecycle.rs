//! Running all day: crashed servers come back, unresponsive ones are restarted, timeouts are
//! per tool with a ceiling, logs and control over REST, hot reload that touches only what
//! changed, and no process left behind — ever.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{FIXTURE, Proxy, call, text};
use serde_json::{Value, json};

fn entry(args: &[&str]) -> Value {
    let mut all = vec!["--stdio"];
    all.extend_from_slice(args);
    json!({ "command": FIXTURE, "args": all })
}

async fn status(proxy: &Proxy, name: &str) -> Value {
    let (_, servers) = proxy.get("/servers").await;
    servers["servers"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

async fn wait_for(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The fixture's own pid, from its `whoami` tool.
async fn fixture_pid(proxy: &Proxy, server: &str) -> i32 {
    let (_, result) = proxy.post(&format!("/tools/{server}.whoami"), "{}").await;
    let inner: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap_or("{}"))
        .unwrap_or_default();
    inner["pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("no pid in {result}")) as i32
}

/// `(pid, state, ppid, pgrp)` of every process.
fn processes() -> Vec<(i32, char, i32, i32)> {
    let mut all = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return all;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        let (Some(state), Some(ppid), Some(pgrp)) = (
            fields.first().and_then(|s| s.chars().next()),
            fields.get(1).and_then(|s| s.parse().ok()),
            fields.get(2).and_then(|s| s.parse().ok()),
        ) else {
            continue;
        };
        all.push((pid, state, ppid, pgrp));
    }
    all
}

fn alive(pid: i32) -> bool {
    processes().iter().any(|p| p.0 == pid && p.1 != 'Z')
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_fails_its_calls_at_once_and_comes_back() {
    let proxy = Proxy::start_with(
        json!({ "mcpServers": { "fx": entry(&[]), "other": entry(&[]) } }),
        Some("proxy:\n  restart: {initial_backoff: 300ms}\n"),
        &[],
    )
    .await;
    proxy.settled().await;
    let pid = fixture_pid(&proxy, "fx").await;
    let http = proxy.http.clone();
    let url = format!("{}/tools/fx.sleep", proxy.base);
    let in_flight = tokio::spawn(async move {
        let response = http.post(url).body(r#"{"ms": 30000}"#).send().await;
        (
            Instant::now(),
            response.map(|r| r.status().as_u16()).unwrap_or(0),
        )
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // SAFETY: signalling a test fixture process.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    let killed_at = Instant::now();
    let (answered_at, code) = in_flight.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 502, "the call in flight fails with the connection");
    assert!(
        answered_at.duration_since(killed_at) < Duration::from_secs(1),
        "the caller waited too long"
    );
    let (code, _) = proxy
        .post("/tools/other.echo", r#"{"text":"unaffected"}"#)
        .await;
    assert_eq!(code, 200, "the other server is unaffected");

    wait_for("fx to be back", Duration::from_secs(10), async || {
        status(&proxy, "fx").await["status"] == "ready"
    })
    .await;
    let fx = status(&proxy, "fx").await;
    assert_eq!(fx["restarts"], 1, "{fx}");
    assert_eq!(fx["last_exit"], "signal 9", "{fx}");
    let (code, echoed) = proxy.post("/tools/fx.echo", r#"{"text":"back"}"#).await;
    assert_eq!(code, 200, "{echoed}");
    assert_ne!(fixture_pid(&proxy, "fx").await, pid, "a new process");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_crashes_on_start_is_retried_with_growing_delays() {
    let proxy = Proxy::start_with(
        json!({ "mcpServers": { "bad": entry(&["--fail-start"]), "good": entry(&[]) } }),
        Some("proxy:\n  restart: {initial_backoff: 100ms, max_backoff: 5s, give_up_after: 50}\n"),
        &[],
    )
    .await;
    let mut seen: Vec<(u64, Instant)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline {
        let bad = status(&proxy, "bad").await;
        let restarts = bad["restarts"].as_u64().unwrap_or(0);
        if seen.last().is_none_or(|(last, _)| *last != restarts) {
            seen.push((restarts, Instant::now()));
        }
        assert_ne!(bad["status"], "ready");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        seen.len() >= 4,
        "only {} attempts in 4 s: {seen:?}",
        seen.len()
    );
    let gaps: Vec<Duration> = seen.windows(2).map(|w| w[1].1 - w[0].1).collect();
    assert!(
        gaps.last() > gaps.first(),
        "the delay between attempts grows: {gaps:?}"
    );
    let bad = status(&proxy, "bad").await;
    assert_eq!(bad["status"], "failed");
    assert_eq!(bad["last_exit_code"], 3, "{bad}");
    let (code, _) = proxy.post("/tools/good.echo", r#"{"text":"fine"}"#).await;
    assert_eq!(code, 200);
    proxy.stop().await;
}

/// Every process descended from `root`, running or zombie.
fn descendants(root: i32) -> HashSet<i32> {
    let all = processes();
    let mut found: HashSet<i32> = HashSet::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for p in all.iter().filter(|p| p.2 == parent) {
            if found.insert(p.0) {
                frontier.push(p.0);
            }
        }
    }
    found
}

fn present(pid: i32) -> Option<char> {
    processes().into_iter().find(|p| p.0 == pid).map(|p| p.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_crash_cycles_leave_no_zombie_or_orphan() {
    let proxy = Proxy::start_with(
        json!({ "mcpServers": { "cycle": entry(&["--spawn-grandchild"]) } }),
        Some("proxy:\n  restart: {initial_backoff: 10ms, max_backoff: 20ms, give_up_after: 1000}\n  health: {enabled: false}\n"),
        &[],
    )
    .await;
    proxy.settled().await;
    let root = proxy.pid();
    let mut spawned: HashSet<i32> = HashSet::new();
    for cycle in 0..200u64 {
        wait_for(
            "the server to be back",
            Duration::from_secs(20),
            async || {
                let s = status(&proxy, "cycle").await;
                s["status"] == "ready" && s["restarts"].as_u64() == Some(cycle)
            },
        )
        .await;
        // Guard, fixture and its grandchild.
        let family = descendants(root);
        assert!(family.len() >= 3, "cycle {cycle}: {family:?}");
        spawned.extend(family);
        let (code, _) = proxy.post("/tools/cycle.crash", r#"{"code": 9}"#).await;
        assert_eq!(code, 502, "cycle {cycle}");
    }
    wait_for("the last restart", Duration::from_secs(20), async || {
        let s = status(&proxy, "cycle").await;
        s["status"] == "ready" && s["restarts"].as_u64() == Some(200)
    })
    .await;
    let current = descendants(root);
    let zombies: Vec<i32> = current
        .iter()
        .copied()
        .filter(|p| present(*p) == Some('Z'))
        .collect();
    assert!(zombies.is_empty(), "zombies under mcp-orch: {zombies:?}");
    let left: Vec<(i32, char)> = spawned
        .difference(&current)
        .filter_map(|p| present(*p).map(|state| (*p, state)))
        .collect();
    assert!(
        left.is_empty(),
        "processes of earlier lives remain (orphans or zombies): {left:?}"
    );
    assert_eq!(
        current.len(),
        3,
        "one guard, one server, one grandchild: {current:?}"
    );
    spawned.extend(current);
    assert_eq!(proxy.stop().await, Some(0));
    let survivors: Vec<(i32, char)> = spawned
        .iter()
        .filter_map(|p| present(*p).map(|s| (*p, s)))
        .collect();
    assert!(
        survivors.is_empty(),
        "processes survive shutdown: {survivors:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_survives_a_sigkill_of_mcp_orch() {
    let proxy = Proxy::start(
        json!({
            "direct": entry(&["--spawn-grandchild"]),
            "shell": { "command": "sh", "args": ["-c", format!("{FIXTURE} --stdio --spawn-grandchild")] }
        }),
        &[],
    )
    .await;
    proxy.settled().await;
    let family = descendants(proxy.pid());
    // Two guards, the fixture, the shell, the shell's fixture, two grandchildren.
    assert!(family.len() >= 7, "{family:?}");
    // SAFETY: killing the proxy under test.
    unsafe {
        libc::kill(proxy.pid(), libc::SIGKILL);
    }
    wait_for(
        "every spawned process to be gone",
        Duration::from_secs(10),
        async || {
            // Zombies are dead: only their parent (gone now) could have reaped them.
            family
                .iter()
                .all(|p| present(*p).is_none_or(|state| state == 'Z'))
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unresponsive_server_is_restarted_by_the_health_check() {
    let proxy = Proxy::start_with(
        json!({ "mcpServers": { "sleepy": entry(&[]) } }),
        Some("proxy:\n  health: {interval: 200ms, timeout: 300ms}\n  restart: {initial_backoff: 100ms}\n"),
        &[],
    )
    .await;
    proxy.settled().await;
    let pid = fixture_pid(&proxy, "sleepy").await;
    let (code, _) = proxy.post("/tools/sleepy.freeze", "{}").await;
    assert_eq!(code, 200);
    wait_for("a restart", Duration::from_secs(15), async || {
        let s = status(&proxy, "sleepy").await;
        s["restarts"] == 1 && s["status"] == "ready"
    })
    .await;
    let s = status(&proxy, "sleepy").await;
    assert!(!alive(pid), "the frozen process was killed");
    assert!(proxy.logs().contains("did not answer a ping"), "{s}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_are_per_tool_and_progress_extends_only_up_to_the_ceiling() {
    let proxy = Proxy::start(
        json!({
            "fx": { "command": FIXTURE, "args": ["--stdio"], "timeout": 0.5,
                    "toolTimeouts": { "sleep": 0.2 }, "maxTimeout": 10 },
            "capped": { "command": FIXTURE, "args": ["--stdio"], "timeout": 0.5, "maxTimeout": 1.2 }
        }),
        &[],
    )
    .await;
    proxy.settled().await;
    let client = proxy.mcp().await;
    // sleep has its own 200 ms timeout.
    let started = Instant::now();
    let slept = call(client.peer(), "fx__sleep", json!({ "ms": 3000 })).await;
    let slept = slept.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(slept.is_error, Some(true));
    assert!(text(&slept).contains("200ms"), "{}", text(&slept));
    assert!(started.elapsed() < Duration::from_millis(2500));
    // progress every 200 ms keeps a 500 ms timeout alive for 2 s, under a 10 s ceiling...
    let long = call(
        client.peer(),
        "fx__progress",
        json!({ "steps": 10, "interval_ms": 200 }),
    )
    .await;
    assert_eq!(long.map(|r| text(&r)).ok().as_deref(), Some("done 10"));
    // ...but not past a 1.2 s ceiling.
    let started = Instant::now();
    let capped = call(
        client.peer(),
        "capped__progress",
        json!({ "steps": 20, "interval_ms": 200 }),
    )
    .await;
    let capped = capped.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(capped.is_error, Some(true), "{capped:?}");
    assert!(text(&capped).contains("'capped'"), "{}", text(&capped));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1100) && took < Duration::from_millis(3500),
        "{took:?}"
    );
    client.cancel().await.ok();
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_control_over_rest() {
    let proxy = Proxy::start(
        json!({ "fx": entry(&[]), "off": { "command": "true", "disabled": true } }),
        &[],
    )
    .await;
    proxy.settled().await;
    for i in 0..3 {
        proxy
            .post("/tools/fx.stderr", format!(r#"{{"text":"line {i}"}}"#))
            .await;
    }
    // The reply comes over stdout, the line over stderr: the drain may be a moment behind.
    let mut logs = json!(null);
    for _ in 0..100 {
        let (code, got) = proxy.get("/servers/fx/logs?lines=2").await;
        assert_eq!(code, 200);
        logs = got;
        if logs["lines"][1]["line"] == "line 2" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lines: Vec<&str> = logs["lines"]
        .as_array()
        .map(|l| l.iter().filter_map(|l| l["line"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(lines, ["line 1", "line 2"]);
    assert!(
        logs["lines"][0]["at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.contains('.'))
    );
    let (code, _) = proxy.get("/servers/nope/logs").await;
    assert_eq!(code, 404);

    // follow=true: the backlog, then new lines as SSE.
    let response = proxy
        .http
        .get(format!(
            "{}/servers/fx/logs?lines=1&follow=true",
            proxy.base
        ))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut events = sse_stream::SseStream::from_bytes_stream(response.bytes_stream());
    use futures::StreamExt;
    let first = tokio::time::timeout(Duration::from_secs(5), events.next()).await;
    let first = first
        .ok()
        .flatten()
        .and_then(|e| e.ok())
        .and_then(|e| e.data)
        .unwrap_or_default();
    assert!(first.contains("line 2"), "{first}");
    proxy
        .post("/tools/fx.stderr", r#"{"text":"followed"}"#)
        .await;
    let next = tokio::time::timeout(Duration::from_secs(5), events.next()).await;
    let next = next
        .ok()
        .flatten()
        .and_then(|e| e.ok())
        .and_then(|e| e.data)
        .unwrap_or_default();
    assert!(next.contains("followed"), "{next}");

    // stop → stopped and its tools gone; start → back; restart → a new process.
    let (code, body) = proxy.post("/servers/fx/stop", "").await;
    assert_eq!(code, 202, "{body}");
    wait_for("fx to stop", Duration::from_secs(10), async || {
        status(&proxy, "fx").await["status"] == "stopped"
    })
    .await;
    let (code, _) = proxy.post("/tools/fx.echo", r#"{"text":"x"}"#).await;
    assert_eq!(code, 503);
    let (code, _) = proxy.post("/servers/fx/start", "").await;
    assert_eq!(code, 202);
    wait_for("fx to start", Duration::from_secs(10), async || {
        status(&proxy, "fx").await["status"] == "ready"
    })
    .await;
    let before = fixture_pid(&proxy, "fx").await;
    let (code, _) = proxy.post("/servers/fx/restart", "").await;
    assert_eq!(code, 202);
    wait_for("the restart", Duration::from_secs(10), async || {
        let s = status(&proxy, "fx").await;
        s["status"] == "ready" && s["restarts"].as_u64() >= Some(2)
    })
    .await;
    assert_ne!(fixture_pid(&proxy, "fx").await, before);
    let (code, body) = proxy.post("/servers/off/start", "").await;
    assert_eq!(code, 409, "{body}");
    let (code, _) = proxy.post("/servers/nope/restart", "").await;
    assert_eq!(code, 404);
    proxy.stop().await;
}

/// Writes a file the way editors do: a temporary file renamed over the original.
fn save(path: &std::path::Path, contents: &str) {
    let tmp = path.with_extension("tmp-save");
    std::fs::write(&tmp, contents).unwrap_or_else(|e| panic!("{e}"));
    std::fs::rename(&tmp, path).unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_touches_only_what_changed_and_keeps_serving_on_a_bad_edit() {
    let first = json!({ "mcpServers": {
        "stay": entry(&["--name", "stay"]),
        "gone": entry(&["--name", "gone"]),
        "change": entry(&["--name", "before"])
    }});
    let proxy = Proxy::start_with(first, None, &[]).await;
    proxy.settled().await;
    let stay_pid = fixture_pid(&proxy, "stay").await;
    let change_pid = fixture_pid(&proxy, "change").await;
    let (tx, mut changed) = tokio::sync::mpsc::unbounded_channel();
    let watcher = ListWatcher(tx).serve_http(&proxy.mcp_url()).await;

    // Calls run against the untouched server throughout, one of them long.
    let http = proxy.http.clone();
    let base = proxy.base.clone();
    let long = tokio::spawn({
        let http = http.clone();
        let base = base.clone();
        async move {
            http.post(format!("{base}/tools/stay.sleep"))
                .body(r#"{"ms": 1500}"#)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    });
    let steady = tokio::spawn(async move {
        let mut codes = Vec::new();
        for i in 0..40 {
            let code = http
                .post(format!("{base}/tools/stay.echo"))
                .body(format!(r#"{{"text":"{i}"}}"#))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            codes.push(code);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        codes
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let config_path = proxy.dir.path().join("mcp-config.json");
    save(
        &config_path,
        &json!({ "mcpServers": {
            "stay": entry(&["--name", "stay"]),
            "change": entry(&["--name", "after"]),
            "new": entry(&["--name", "new"])
        }})
        .to_string(),
    );
    wait_for("the reload", Duration::from_secs(15), async || {
        let (_, servers) = proxy.get("/servers").await;
        let names: Vec<String> = servers["servers"]
            .as_array()
            .map(|s| {
                s.iter()
                    .filter_map(|s| s["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        names == ["change", "new", "stay"]
            && servers["servers"]
                .as_array()
                .is_some_and(|s| s.iter().all(|s| s["status"] == "ready"))
    })
    .await;
    assert!(
        steady.await.unwrap_or_default().iter().all(|c| *c == 200),
        "the untouched server saw an error"
    );
    assert_eq!(
        long.await.unwrap_or(0),
        200,
        "a call in flight across the reload completed"
    );
    assert_eq!(
        fixture_pid(&proxy, "stay").await,
        stay_pid,
        "untouched: same process"
    );
    assert_ne!(
        fixture_pid(&proxy, "change").await,
        change_pid,
        "changed: restarted"
    );
    let (_, who) = proxy.post("/tools/change.whoami", "{}").await;
    assert!(who.to_string().contains("after"), "{who}");
    let (code, _) = proxy.post("/tools/gone.echo", r#"{"text":"x"}"#).await;
    assert_eq!(code, 404, "removed servers' tools are gone");
    let got = tokio::time::timeout(Duration::from_secs(5), changed.recv()).await;
    assert!(
        matches!(got, Ok(Some(()))),
        "sessions were told the tools changed"
    );

    // A bad edit: reported, and the previous configuration keeps serving.
    save(
        &config_path,
        "{ \"mcpServers\": { \"stay\": { \"command\": 42 } } }",
    );
    wait_for("the refusal", Duration::from_secs(10), async || {
        let (_, servers) = proxy.get("/servers").await;
        servers["config"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("mcpServers.stay.command"))
    })
    .await;
    let (code, _) = proxy.post("/tools/new.echo", r#"{"text":"still"}"#).await;
    assert_eq!(code, 200);
    let (code, body) = proxy.post("/servers/reload", "").await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["error"]["code"], "INVALID_CONFIGURATION");
    // Fixed again, reloaded on request.
    std::fs::write(
        &config_path,
        json!({ "mcpServers": { "stay": entry(&["--name", "stay"]) } }).to_string(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (code, body) = proxy.post("/servers/reload", "").await;
    assert_eq!(code, 200, "{body}");
    assert!(
        body["removed"].as_array().is_some_and(|r| r.len() == 2),
        "{body}"
    );
    assert_eq!(fixture_pid(&proxy, "stay").await, stay_pid);
    watcher.cancel().await.ok();
    proxy.stop().await;
}

/// Signals every `notifications/tools/list_changed`.
#[derive(Clone)]
struct ListWatcher(tokio::sync::mpsc::UnboundedSender<()>);

impl rmcp::ClientHandler for ListWatcher {
    async fn on_tool_list_changed(
        &self,
        _context: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        let _ = self.0.send(());
    }

    fn get_info(&self) -> rmcp::model::ClientConfig {
        common::client_info()
    }
}

impl ListWatcher {
    async fn serve_http(
        self,
        url: &str,
    ) -> rmcp::service::RunningService<rmcp::RoleClient, ListWatcher> {
        use rmcp::ServiceExt;
        let transport = rmcp::transport::StreamableHttpClientTransport::from_uri(url.to_owned());
        self.serve(transport)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_server_that_went_away_is_reconnected_when_it_returns() {
    let remote = common::HttpFixture::start(&["--name", "first"]).await;
    let url = remote.url.clone();
    let port = url
        .rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .unwrap_or_default()
        .to_owned();
    let proxy = Proxy::start_with(
        json!({ "mcpServers": { "remote": { "url": url } } }),
        Some("proxy:\n  restart: {initial_backoff: 200ms, max_backoff: 1s}\n  health: {interval: 300ms, timeout: 500ms}\n"),
        &[],
    )
    .await;
    proxy.settled().await;
    let (_, who) = proxy.post("/tools/remote.whoami", "{}").await;
    assert!(who.to_string().contains("first"), "{who}");
    drop(remote);
    wait_for(
        "the loss to be noticed",
        Duration::from_secs(10),
        async || status(&proxy, "remote").await["status"] != "ready",
    )
    .await;
    // Unavailable (503) while it is marked away; a reconnection attempt already under way
    // may answer with the gateway error of that attempt instead. Either way: at once.
    let (code, body) = proxy.post("/tools/remote.echo", r#"{"text":"x"}"#).await;
    assert!(
        matches!(code, 502..=504)
            && body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("remote")),
        "a clear error naming the server while it is away, not a hang: {code} {body}"
    );
    let _back = common::HttpFixture::start(&["--name", "second", "--http", &port]).await;
    wait_for("the reconnection", Duration::from_secs(15), async || {
        status(&proxy, "remote").await["status"] == "ready"
    })
    .await;
    let (_, who) = proxy.post("/tools/remote.whoami", "{}").await;
    assert!(who.to_string().contains("second"), "{who}");
    proxy.stop().await;
}
