//! The measurements, each bounded by a call count, each reported as one JSON line:
//!
//! | `measure` | what |
//! |---|---|
//! | `cold_start` | process start → first complete `tools/list` answer (ms) |
//! | `rss_idle` | resident memory of the target process alone after `idle_ms` of quiet |
//! | `tools_list` | `tools/list` latency (sequential, after the call warm-up) |
//! | `call_seq` | sequential `tools/call` latency after a warm-up |
//! | `throughput` | calls/s and latency at N calls in flight, on one session or on N sessions |
//! | `rss_load` | the largest resident memory seen during the throughput phases |
//! | `soak` | a long run at 32 in flight, with memory sampled along the way |
//! | `failure` | a phase that could not run at all (the run goes on with the next one) |
//!
//! A call counts as an error when it times out, the wire fails, the reply is a JSON-RPC
//! error, `isError` is true, or the reply does not carry the text this very call sent (so a
//! proxy that mixed up replies between concurrent calls cannot pass).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::http::Url;
use super::process::{Launch, Target, free_port, rss_kib, with_port};
use super::session::{CallError, Session, Wire};
use super::stats::{Samples, Summary, round1};

/// The cheap tool that is called, and the string argument that carries each call's marker.
#[derive(Debug, Clone)]
pub struct CallSpec {
    /// Tool name as the target exposes it (`echo`, `fx__echo`).
    pub tool: String,
    /// Name of its string argument (`text` for the fixture, `message` for server-everything).
    pub arg: String,
}

impl CallSpec {
    /// The `tools/call` request for call `id`.
    pub fn body(&self, id: u64) -> String {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{}","arguments":{{"{}":"loadgen-{id}"}}}}}}"#,
            self.tool, self.arg
        )
    }

    /// Checks that `reply` is a successful result carrying call `id`'s own marker.
    pub fn check(&self, id: u64, reply: &str) -> Result<(), CallError> {
        let result = result_of(reply)?;
        #[derive(Deserialize)]
        struct Flag {
            #[serde(rename = "isError", default)]
            is_error: Option<bool>,
        }
        let flag: Flag = serde_json::from_str(result.get())
            .map_err(|e| CallError(format!("tools/call result is not an object: {e}")))?;
        if flag.is_error == Some(true) {
            return Err(CallError(format!(
                "isError result: {}",
                preview(result.get())
            )));
        }
        let marker = format!("loadgen-{id}\"");
        if !result.get().contains(&marker) {
            return Err(CallError(format!(
                "the reply to call {id} does not carry its text: {}",
                preview(result.get())
            )));
        }
        Ok(())
    }
}

fn preview(text: &str) -> &str {
    let mut end = text.len().min(300);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The `result` of a reply, or the reply's error.
fn result_of(reply: &str) -> Result<Box<RawValue>, CallError> {
    #[derive(Deserialize)]
    struct Reply {
        #[serde(default)]
        result: Option<Box<RawValue>>,
        #[serde(default)]
        error: Option<Box<RawValue>>,
    }
    let parsed: Reply = serde_json::from_str(reply)
        .map_err(|e| CallError(format!("reply is not JSON-RPC ({e}): {}", preview(reply))))?;
    match (parsed.result, parsed.error) {
        (Some(result), None) => Ok(result),
        (_, Some(error)) => Err(CallError(format!("JSON-RPC error: {}", error.get()))),
        (None, None) => Err(CallError(format!(
            "reply without result: {}",
            preview(reply)
        ))),
    }
}

/// How many tools a `tools/list` reply lists.
pub fn tool_count(reply: &str) -> Result<usize, CallError> {
    #[derive(Deserialize)]
    struct Listing {
        tools: Vec<IgnoredAny>,
    }
    let result = result_of(reply)?;
    let listing: Listing = serde_json::from_str(result.get())
        .map_err(|e| CallError(format!("tools/list result has no tools array: {e}")))?;
    Ok(listing.tools.len())
}

/// `tools/list` request for `id`.
pub fn list_body(id: u64) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list","params":{{}}}}"#)
}

/// Where to find the target and what to run against it.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Row name (`orch-mcp`, `supergateway`, ...).
    pub target: String,
    /// Downstream name (`fixture`, `everything`, ...).
    pub downstream: String,
    /// Round number in a matrix run.
    pub round: u32,
    pub wire: Wire,
    /// For HTTP and SSE; `{port}` is filled in.
    pub url: Option<String>,
    /// What to start (required for stdio; for HTTP/SSE, none means an already running URL).
    pub launch: Option<Launch>,
    /// Per-request limit.
    pub timeout: Duration,
    /// A `tools/list` counts as complete (for cold start) when it has at least this many.
    pub expect_tools: usize,
    /// Quiet time before `rss_idle`.
    pub idle_ms: u64,
    pub list_calls: usize,
    pub warmup: usize,
    pub seq_calls: usize,
    /// In-flight levels on one session.
    pub in_flight: Vec<usize>,
    /// Session counts for the many-sessions levels (one call in flight each; HTTP/SSE only).
    pub sessions: Vec<usize>,
    pub calls_per_level: usize,
    /// Calls of the soak run (0 = none), at `soak_in_flight`.
    pub soak_calls: usize,
    pub soak_in_flight: usize,
    pub call: CallSpec,
    /// Shell commands run at fixed points (`{pid}` = the target's pid), e.g. to zero and
    /// dump a profiler's counters around the measured phases.
    pub hooks: Hooks,
    /// How long the target gets to exit after its session ends, before SIGTERM/SIGKILL.
    pub stop_grace: Duration,
}

/// Commands run around the measured phases (see `benches/profile.sh`).
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    /// After the warm-up calls, before anything measured (tools/list comes next).
    pub after_warmup: Option<String>,
    /// After the last measured phase (before the soak run and shutdown).
    pub after_run: Option<String>,
}

/// Runs a hook with `sh -c`, waiting for it (bounded by a minute).
async fn run_hook(hook: Option<&str>, pid: Option<u32>, reporter: &Reporter, which: &str) {
    let Some(hook) = hook else { return };
    let command = hook.replace("{pid}", &pid.map(|p| p.to_string()).unwrap_or_default());
    let status = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .kill_on_drop(true)
            .status(),
    )
    .await;
    match status {
        Ok(Ok(status)) if status.success() => {}
        other => reporter.failure(which, &format!("hook `{command}` failed: {other:?}")),
    }
}

/// Prints JSON lines with the run's identifying fields.
pub struct Reporter {
    base: serde_json::Map<String, Value>,
    /// Whether anything failed or erred (the process exit code says so).
    pub failed: AtomicBool,
    /// Every line emitted (the smoke test inspects them).
    pub lines: std::sync::Mutex<Vec<Value>>,
    /// Print lines to stdout (the bench binary) or only keep them (the test).
    pub print: bool,
}

impl Reporter {
    /// A reporter for `plan`.
    pub fn new(plan: &Plan, print: bool) -> Reporter {
        let mut base = serde_json::Map::new();
        base.insert("target".into(), json!(plan.target));
        base.insert("downstream".into(), json!(plan.downstream));
        base.insert("round".into(), json!(plan.round));
        base.insert("wire".into(), json!(plan.wire.name()));
        Reporter {
            base,
            failed: AtomicBool::new(false),
            lines: std::sync::Mutex::new(Vec::new()),
            print,
        }
    }

    /// Emits one measurement.
    pub fn emit(&self, measure: &str, fields: Value) {
        let mut line = self.base.clone();
        line.insert("measure".into(), json!(measure));
        if let Value::Object(fields) = fields {
            if fields.get("errors").and_then(Value::as_u64).unwrap_or(0) > 0 {
                self.failed.store(true, Ordering::Relaxed);
            }
            line.extend(fields);
        }
        let line = Value::Object(line);
        if self.print {
            println!("{line}");
        }
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
    }

    /// Emits a `failure` line.
    pub fn failure(&self, phase: &str, message: &str) {
        self.failed.store(true, Ordering::Relaxed);
        self.emit("failure", json!({ "phase": phase, "message": message }));
    }
}

fn summary_fields(summary: &Summary) -> Value {
    json!({
        "p50_us": round1(summary.p50_us),
        "p90_us": round1(summary.p90_us),
        "p99_us": round1(summary.p99_us),
        "max_us": round1(summary.max_us),
        "mean_us": round1(summary.mean_us),
    })
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Value::Object(a), Value::Object(b)) = (&mut a, b) {
        a.extend(b);
    }
    a
}

/// The outcome of a batch of calls.
struct Batch {
    samples: Samples,
    errors: usize,
    first_error: Option<String>,
    elapsed: Duration,
}

/// Runs `total` calls spread over `workers_per_session` concurrent workers on each session.
async fn batch(
    sessions: &[&Session],
    workers_per_session: usize,
    total: usize,
    call: &CallSpec,
) -> Batch {
    let tickets = AtomicUsize::new(0);
    let started = Instant::now();
    let mut workers = FuturesUnordered::new();
    for session in sessions {
        for _ in 0..workers_per_session.max(1) {
            let tickets = &tickets;
            workers.push(async move {
                let mut samples = Samples::with_capacity(total / sessions.len().max(1) + 1);
                let mut errors = 0usize;
                let mut first_error = None;
                while tickets.fetch_add(1, Ordering::Relaxed) < total {
                    let id = session.next_id();
                    let body = call.body(id);
                    let sent = Instant::now();
                    let outcome = session.request(id, &body).await;
                    let latency = sent.elapsed();
                    match outcome.and_then(|reply| call.check(id, &reply)) {
                        Ok(()) => samples.push(latency),
                        Err(error) => {
                            errors += 1;
                            first_error.get_or_insert(error.0);
                        }
                    }
                }
                (samples, errors, first_error)
            });
        }
    }
    let mut out = Batch {
        samples: Samples::with_capacity(total),
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
    };
    while let Some((samples, errors, first_error)) = workers.next().await {
        out.samples.merge(samples);
        out.errors += errors;
        if out.first_error.is_none() {
            out.first_error = first_error;
        }
    }
    out.elapsed = started.elapsed();
    out
}

/// Samples the resident memory of `pid` every 20 ms until `done`, returning the largest.
async fn sample_rss(pid: Option<u32>, done: &AtomicBool) -> Option<u64> {
    let pid = pid?;
    let mut max = rss_kib(pid);
    while !done.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        max = max.max(rss_kib(pid));
    }
    max
}

/// Runs a batch while sampling memory.
async fn batch_sampled(
    sessions: &[&Session],
    workers_per_session: usize,
    total: usize,
    call: &CallSpec,
    pid: Option<u32>,
) -> (Batch, Option<u64>) {
    let done = AtomicBool::new(false);
    let work = async {
        let out = batch(sessions, workers_per_session, total, call).await;
        done.store(true, Ordering::Relaxed);
        out
    };
    futures::join!(work, sample_rss(pid, &done))
}

fn batch_fields(batch: &mut Batch) -> Value {
    let summary = batch.samples.summary();
    let seconds = batch.elapsed.as_secs_f64();
    let calls = batch.samples.len() + batch.errors;
    let mut fields = json!({
        "calls": calls,
        "errors": batch.errors,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "calls_per_s": if seconds > 0.0 { (batch.samples.len() as f64 / seconds).round() } else { 0.0 },
    });
    if let Some(error) = &batch.first_error {
        fields = merge(fields, json!({ "first_error": error }));
    }
    merge(fields, summary_fields(&summary))
}

/// Opens and initializes one more session on an HTTP or SSE target.
async fn open_session(wire: Wire, url: &Url, timeout: Duration) -> Result<Session, CallError> {
    let session = match wire {
        Wire::Http => Session::http(url.clone(), timeout),
        Wire::Sse => Session::sse(url.clone(), timeout).await?,
        Wire::Stdio => return Err(CallError("stdio has exactly one session".to_owned())),
    };
    session.initialize().await?;
    Ok(session)
}

/// Lists tools once; returns the count.
async fn list_once(session: &Session) -> Result<usize, CallError> {
    let id = session.next_id();
    let reply = session.request(id, &list_body(id)).await?;
    tool_count(&reply)
}

/// A target brought up to its first complete `tools/list`.
struct Started {
    target: Option<Target>,
    session: Session,
    /// Process start (or first connection attempt) → first complete `tools/list`.
    cold: Duration,
    tools: usize,
    /// The HTTP/SSE URL with its port filled in.
    url: Option<Url>,
}

/// Starts the target (when there is something to start) and gets the first session to a
/// complete `tools/list`.
async fn start(plan: &Plan) -> Result<Started, String> {
    let needs_port = plan.url.as_deref().is_some_and(|u| u.contains("{port}"))
        || plan.launch.as_ref().is_some_and(|l| {
            l.command.iter().any(|a| a.contains("{port}"))
                || l.env.iter().any(|(_, v)| v.contains("{port}"))
        });
    let port = if needs_port {
        Some(free_port().map_err(|e| format!("no free port: {e}"))?)
    } else {
        None
    };
    let mut target = match &plan.launch {
        Some(launch) => Some(Target::spawn(launch, port)?),
        None => None,
    };
    let started = target
        .as_ref()
        .map(|t| t.started)
        .unwrap_or_else(Instant::now);
    let deadline = started + Duration::from_secs(120);
    let describe = |target: &Option<Target>, what: String| match target {
        Some(target) => format!("{what}; target stderr:\n{}", target.stderr_tail()),
        None => what,
    };

    if plan.wire == Wire::Stdio {
        let Some((stdin, stdout)) = target.as_mut().and_then(|t| t.pipes.take()) else {
            return Err("a stdio target needs a command".to_owned());
        };
        let session = Session::stdio(stdin, stdout, plan.timeout.max(Duration::from_secs(120)));
        if let Err(e) = session.initialize().await {
            return Err(describe(&target, format!("initialize: {e}")));
        }
        loop {
            match list_once(&session).await {
                Ok(n) if n >= plan.expect_tools => {
                    return Ok(Started {
                        target,
                        session,
                        cold: started.elapsed(),
                        tools: n,
                        url: None,
                    });
                }
                Ok(n) if Instant::now() > deadline => {
                    return Err(format!(
                        "only {n} tools listed, expected {}",
                        plan.expect_tools
                    ));
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(2)).await,
                Err(e) => return Err(describe(&target, format!("tools/list: {e}"))),
            }
        }
    }

    let url_text = with_port(
        plan.url
            .as_deref()
            .ok_or_else(|| "an HTTP or SSE target needs --url".to_owned())?,
        port,
    );
    let url = Url::parse(&url_text)?;
    let mut last_error = String::new();
    // Until the port accepts connections the target is still starting; once it answers,
    // a few more failures are tolerated (a server finishing its own start), then it's over.
    let mut answered_failures = 0;
    loop {
        if Instant::now() > deadline {
            return Err(describe(
                &target,
                format!("not ready within 120 s: {last_error}"),
            ));
        }
        if let Some(t) = target.as_mut()
            && t.exited()
        {
            return Err(describe(&target, "the target exited".to_owned()));
        }
        match open_session(plan.wire, &url, plan.timeout.max(Duration::from_secs(120))).await {
            Ok(session) => loop {
                match list_once(&session).await {
                    Ok(n) if n >= plan.expect_tools => {
                        return Ok(Started {
                            target,
                            session,
                            cold: started.elapsed(),
                            tools: n,
                            url: Some(url),
                        });
                    }
                    Ok(n) if Instant::now() > deadline => {
                        return Err(format!(
                            "only {n} tools listed, expected {}",
                            plan.expect_tools
                        ));
                    }
                    Ok(_) => tokio::time::sleep(Duration::from_millis(2)).await,
                    Err(e) => return Err(describe(&target, format!("tools/list: {e}"))),
                }
            },
            Err(e) => {
                if !e.0.starts_with("connect:") {
                    answered_failures += 1;
                    if answered_failures > 25 {
                        return Err(describe(
                            &target,
                            format!("the target answers but fails: {}", e.0),
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                last_error = e.0;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }
}

/// The floor for "cold start with N servers": N copies of a stdio server started at once
/// with no proxy, timed from the first spawn to the last complete `tools/list`.
pub async fn parallel_cold_start(plan: &Plan, copies: usize, reporter: &Reporter) -> bool {
    let Some(launch) = plan.launch.as_ref().filter(|_| plan.wire == Wire::Stdio) else {
        reporter.failure("start", "--copies needs a stdio command");
        return false;
    };
    let started = Instant::now();
    let one = |launch: Launch| async move {
        let mut target = Target::spawn(&launch, None)?;
        let (stdin, stdout) = target.pipes.take().ok_or("no pipes")?;
        let session = Session::stdio(stdin, stdout, Duration::from_secs(120));
        session.initialize().await.map_err(|e| e.0)?;
        let tools = list_once(&session).await.map_err(|e| e.0)?;
        let ready = started.elapsed();
        Ok::<_, String>((target, session, ready, tools))
    };
    let outcomes = futures::future::join_all((0..copies).map(|_| one(launch.clone()))).await;
    let mut slowest = Duration::ZERO;
    let mut tools = 0;
    let mut running = Vec::new();
    let mut ok = true;
    for outcome in outcomes {
        match outcome {
            Ok((target, session, ready, listed)) => {
                slowest = slowest.max(ready);
                tools += listed;
                running.push((target, session));
            }
            Err(message) => {
                reporter.failure("start", &message);
                ok = false;
            }
        }
    }
    if ok {
        reporter.emit(
            "cold_start",
            json!({ "ms": round1(slowest.as_secs_f64() * 1000.0), "tools": tools, "copies": copies, "spawned": true }),
        );
    }
    for (target, session) in running {
        session.close().await;
        drop(session);
        target.stop(plan.stop_grace).await;
    }
    ok
}

/// Runs every phase of `plan`, reporting as it goes. Returns whether everything ran with
/// zero errors.
pub async fn run(plan: &Plan, reporter: &Reporter) -> bool {
    let Started {
        target,
        session,
        cold,
        tools,
        url,
    } = match start(plan).await {
        Ok(started) => started,
        Err(message) => {
            reporter.failure("start", &message);
            return false;
        }
    };
    let pid = target.as_ref().map(|t| t.pid);
    reporter.emit(
        "cold_start",
        json!({ "ms": round1(cold.as_secs_f64() * 1000.0), "tools": tools, "spawned": target.is_some() }),
    );
    if let Some(pid) = pid {
        tokio::time::sleep(Duration::from_millis(plan.idle_ms)).await;
        reporter.emit("rss_idle", json!({ "kib": rss_kib(pid), "pid": pid }));
    }
    let first: &Session = &session;
    let one = std::slice::from_ref(&first);

    let _ = batch(one, 1, plan.warmup, &plan.call).await;
    run_hook(
        plan.hooks.after_warmup.as_deref(),
        pid,
        reporter,
        "after-warmup hook",
    )
    .await;
    if plan.list_calls > 0 {
        list_phase(plan, first, tools, reporter).await;
    }
    if plan.seq_calls > 0 {
        let mut out = batch(one, 1, plan.seq_calls, &plan.call).await;
        reporter.emit(
            "call_seq",
            merge(json!({ "warmup": plan.warmup }), batch_fields(&mut out)),
        );
    }

    let mut rss_load: Option<u64> = None;
    for &in_flight in &plan.in_flight {
        let _ = batch(one, in_flight, (in_flight * 8).max(100), &plan.call).await;
        let (mut out, rss) =
            batch_sampled(one, in_flight, plan.calls_per_level, &plan.call, pid).await;
        rss_load = rss_load.max(rss);
        reporter.emit(
            "throughput",
            merge(
                json!({ "sessions": 1, "in_flight": in_flight }),
                batch_fields(&mut out),
            ),
        );
    }

    if plan.wire != Wire::Stdio
        && !plan.sessions.is_empty()
        && let Some(url) = &url
    {
        for &count in &plan.sessions {
            let mut opened = Vec::with_capacity(count);
            let mut open_error = None;
            for _ in 0..count {
                match open_session(plan.wire, url, plan.timeout).await {
                    Ok(s) => opened.push(s),
                    Err(e) => {
                        open_error = Some(e.0);
                        break;
                    }
                }
            }
            if let Some(error) = open_error {
                reporter.failure(
                    "sessions",
                    &format!("opening session {}: {error}", opened.len() + 1),
                );
                for s in &opened {
                    s.close().await;
                }
                break;
            }
            let refs: Vec<&Session> = opened.iter().collect();
            let _ = batch(&refs, 1, (count * 8).max(100), &plan.call).await;
            let (mut out, rss) =
                batch_sampled(&refs, 1, plan.calls_per_level, &plan.call, pid).await;
            rss_load = rss_load.max(rss);
            reporter.emit(
                "throughput",
                merge(
                    json!({ "sessions": count, "in_flight": count }),
                    batch_fields(&mut out),
                ),
            );
            for s in &opened {
                s.close().await;
            }
        }
    }
    if let (Some(kib), Some(pid)) = (rss_load, pid) {
        reporter.emit("rss_load", json!({ "kib": kib, "pid": pid }));
    }

    run_hook(
        plan.hooks.after_run.as_deref(),
        pid,
        reporter,
        "after-run hook",
    )
    .await;

    if plan.soak_calls > 0 {
        soak(plan, first, pid, reporter).await;
    }

    session.close().await;
    drop(session);
    if let Some(target) = target {
        target.stop(plan.stop_grace).await;
    }
    !reporter.failed.load(Ordering::Relaxed)
}

/// Sequential `tools/list` calls; each must list at least `expect_tools` tools.
async fn list_phase(plan: &Plan, session: &Session, tools: usize, reporter: &Reporter) {
    let mut samples = Samples::with_capacity(plan.list_calls);
    let mut errors = 0;
    let mut first_error = None;
    let mut bytes = 0;
    for _ in 0..plan.list_calls {
        let id = session.next_id();
        let body = list_body(id);
        let sent = Instant::now();
        match session.request(id, &body).await {
            Ok(reply) => {
                let latency = sent.elapsed();
                bytes = reply.len();
                match tool_count(&reply) {
                    Ok(n) if n >= plan.expect_tools => samples.push(latency),
                    Ok(n) => {
                        errors += 1;
                        first_error.get_or_insert(format!("{n} tools listed"));
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e.0);
                    }
                }
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e.0);
            }
        }
    }
    let summary = samples.summary();
    let mut fields =
        json!({ "calls": plan.list_calls, "errors": errors, "tools": tools, "bytes": bytes });
    if let Some(error) = first_error {
        fields = merge(fields, json!({ "first_error": error }));
    }
    reporter.emit("tools_list", merge(fields, summary_fields(&summary)));
}

/// A long run in ten slices, memory read after each; growth is last minus first slice.
async fn soak(plan: &Plan, session: &Session, pid: Option<u32>, reporter: &Reporter) {
    let slices = 10;
    let per_slice = plan.soak_calls.div_ceil(slices);
    let mut rss = Vec::with_capacity(slices);
    let mut calls = 0;
    let mut errors = 0;
    let mut first_error = None;
    let mut samples = Samples::with_capacity(plan.soak_calls);
    let started = Instant::now();
    for _ in 0..slices {
        let out = batch(
            std::slice::from_ref(&session),
            plan.soak_in_flight,
            per_slice,
            &plan.call,
        )
        .await;
        calls += out.samples.len() + out.errors;
        errors += out.errors;
        if first_error.is_none() {
            first_error = out.first_error;
        }
        samples.merge(out.samples);
        rss.push(pid.and_then(rss_kib));
    }
    let seconds = started.elapsed().as_secs_f64();
    let first = rss.first().copied().flatten();
    let last = rss.last().copied().flatten();
    let growth = match (first, last) {
        (Some(a), Some(b)) => Some(b as i64 - a as i64),
        _ => None,
    };
    let summary = samples.summary();
    let mut fields = json!({
        "calls": calls,
        "errors": errors,
        "in_flight": plan.soak_in_flight,
        "calls_per_s": (samples.len() as f64 / seconds).round(),
        "rss_kib": rss,
        "growth_kib": growth,
    });
    if let Some(error) = first_error {
        fields = merge(fields, json!({ "first_error": error }));
    }
    reporter.emit("soak", merge(fields, summary_fields(&summary)));
}
