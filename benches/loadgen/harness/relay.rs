//! `loadgen relay`: a null proxy, the floor under every proxy row of the matrix (rows
//! `relay-stdio` and `relay-http` of `benches/run.sh`).
//!
//! It sits where a gateway sits (client → relay → stdio server) and does the least any
//! proxy must do, nothing else: the stdio relay copies bytes both ways on two blocking
//! threads (no parsing, no runtime); the HTTP relay serves Streamable HTTP's request/response
//! half (POST → one `application/json` answer, notifications → 202) on a single-threaded
//! runtime, and per message parses the JSON-RPC, swaps the id for a relay-wide one (sessions
//! share the one downstream), writes a line, and swaps it back on the answer. No sessions,
//! streams, catalogue, names, security or logging. What a real proxy adds over this row is
//! its own cost; what this row adds over the direct connection is the machine's cost of
//! one more process in the path (on a 2-core VM, each wake-up of a sleeping process is
//! tens of µs).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::oneshot;

/// How long the HTTP relay waits for the downstream's answer to one request.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request body the HTTP relay reads.
const MAX_BODY: usize = 4 << 20;

/// Relays stdin/stdout to `command`'s stdin/stdout until either side ends.
pub fn stdio(command: &[String]) -> ExitCode {
    let Some((program, args)) = command.split_first() else {
        eprintln!("loadgen relay: no command");
        return ExitCode::FAILURE;
    };
    let mut child = match std::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            eprintln!("loadgen relay: cannot start {program}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let (Some(mut to_child), Some(mut from_child)) = (child.stdin.take(), child.stdout.take())
    else {
        eprintln!("loadgen relay: the child has no pipes");
        return ExitCode::FAILURE;
    };
    // stdin → child; the child's stdin closes when ours does.
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to_child.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
    });
    // child → stdout, on this thread, until the child closes its stdout.
    let mut stdout = std::io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from_child.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if stdout.write_all(&buf[..n]).is_err() || stdout.flush().is_err() {
                    break;
                }
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    ExitCode::SUCCESS
}

/// Answers waiting for the downstream, by relay-wide id: the caller's own id and where to
/// send the answer.
type Pending = Mutex<HashMap<u64, (Value, oneshot::Sender<Bytes>)>>;

struct HttpRelay {
    to_child: tokio::sync::Mutex<tokio::process::ChildStdin>,
    pending: Pending,
    next_id: AtomicU64,
}

/// Serves Streamable HTTP on 127.0.0.1:`port` in front of `command` (stdio), until the
/// downstream ends.
pub fn http(port: u16, command: &[String]) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("loadgen relay: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let serve = async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|error| format!("cannot listen on 127.0.0.1:{port}: {error}"))?;
        serve_http(listener, command).await
    };
    match runtime.block_on(serve) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loadgen relay: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The HTTP relay on `listener`; dropping the future kills the downstream.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    command: &[String],
) -> Result<(), String> {
    let (program, args) = command.split_first().ok_or("no command")?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| format!("cannot start {program}: {error}"))?;
    let (Some(to_child), Some(from_child)) = (child.stdin.take(), child.stdout.take()) else {
        return Err("the child has no pipes".into());
    };
    let relay = Arc::new(HttpRelay {
        to_child: tokio::sync::Mutex::new(to_child),
        pending: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
    });
    let reader = read_answers(relay.clone(), from_child);
    let accept = async {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let relay = relay.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let relay = relay.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(&relay, request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    };
    tokio::select! {
        () = accept => Ok(()),
        () = reader => Err("the downstream closed its stdout".into()),
        status = child.wait() => Err(format!("the downstream exited: {status:?}")),
    }
}

/// Routes the downstream's answers to the requests waiting for them; drops its own
/// notifications and requests (a null relay has nowhere to send them).
async fn read_answers(relay: Arc<HttpRelay>, from_child: tokio::process::ChildStdout) {
    let mut lines = BufReader::new(from_child).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(mut message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if message.get("method").is_some() {
            continue;
        }
        let Some(id) = message.get("id").and_then(Value::as_u64) else {
            continue;
        };
        let waiting = relay.pending.lock().ok().and_then(|mut p| p.remove(&id));
        if let Some((original, reply)) = waiting {
            message["id"] = original;
            if let Ok(bytes) = serde_json::to_vec(&message) {
                let _ = reply.send(Bytes::from(bytes));
            }
        }
    }
}

fn reply(status: StatusCode, body: Bytes, session: bool) -> Response<Body> {
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if session {
        builder = builder.header("mcp-session-id", "relay");
    }
    builder
        .body(Body::from(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

async fn answer(relay: &HttpRelay, request: Request<Incoming>) -> Response<Body> {
    match *request.method() {
        Method::POST => {}
        Method::DELETE => return reply(StatusCode::OK, Bytes::new(), false),
        _ => return reply(StatusCode::METHOD_NOT_ALLOWED, Bytes::new(), false),
    }
    let Ok(body) = axum::body::to_bytes(Body::new(request.into_body()), MAX_BODY).await else {
        return reply(StatusCode::BAD_REQUEST, Bytes::new(), false);
    };
    let Ok(mut message) = serde_json::from_slice::<Value>(&body) else {
        return reply(StatusCode::BAD_REQUEST, Bytes::new(), false);
    };
    let initialize = message.get("method").and_then(Value::as_str) == Some("initialize");
    let waiting = match message.get_mut("id") {
        Some(id) => {
            let ours = relay.next_id.fetch_add(1, Ordering::Relaxed);
            let original = std::mem::replace(id, Value::from(ours));
            let (send, receive) = oneshot::channel();
            if let Ok(mut pending) = relay.pending.lock() {
                pending.insert(ours, (original, send));
            }
            Some((ours, receive))
        }
        None => None,
    };
    let Ok(mut line) = serde_json::to_vec(&message) else {
        return reply(StatusCode::BAD_REQUEST, Bytes::new(), false);
    };
    line.push(b'\n');
    if relay.to_child.lock().await.write_all(&line).await.is_err() {
        if let (Some((ours, _)), Ok(mut pending)) = (&waiting, relay.pending.lock()) {
            pending.remove(ours);
        }
        return reply(StatusCode::BAD_GATEWAY, Bytes::new(), false);
    }
    let Some((ours, receive)) = waiting else {
        return reply(StatusCode::ACCEPTED, Bytes::new(), false);
    };
    match tokio::time::timeout(ANSWER_TIMEOUT, receive).await {
        Ok(Ok(answer)) => reply(StatusCode::OK, answer, initialize),
        _ => {
            if let Ok(mut pending) = relay.pending.lock() {
                pending.remove(&ours);
            }
            reply(StatusCode::GATEWAY_TIMEOUT, Bytes::new(), false)
        }
    }
}
