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
use std::process::Stdio;
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

/// Relays stdin/stdout to `command`'s stdin/stdout until the child closes its stdout.
pub fn stdio(command: &[String]) -> Result<(), String> {
    let (program, args) = command.split_first().ok_or("no command")?;
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot start {program}: {error}"))?;
    let (Some(to_child), Some(from_child)) = (child.stdin.take(), child.stdout.take()) else {
        return Err("the child has no pipes".into());
    };
    // stdin → child; the child's stdin closes when ours does.
    std::thread::spawn(move || pump(std::io::stdin().lock(), to_child));
    // child → stdout, on this thread.
    pump(from_child, std::io::stdout().lock());
    let _ = child.kill();
    let _ = child.wait();
    Ok(())
}

/// Copies whatever `from` has as soon as it has it, until it ends or `to` fails: one
/// `read`, one `write` (and a flush of a buffered `to`) per chunk.
fn pump(mut from: impl Read, mut to: impl Write) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buf) {
        if to.write_all(&buf[..n]).is_err() || to.flush().is_err() {
            break;
        }
    }
}

/// Answers waiting for the downstream, by relay-wide id: the caller's own id and where to
/// send the answer.
type Pending = Mutex<HashMap<u64, (Value, oneshot::Sender<Bytes>)>>;

struct HttpRelay {
    to_child: tokio::sync::Mutex<tokio::process::ChildStdin>,
    pending: Pending,
    next_id: AtomicU64,
}

impl HttpRelay {
    /// Takes a request out of the pending table (answered, or given up on).
    fn forget(&self, id: u64) -> Option<(Value, oneshot::Sender<Bytes>)> {
        self.pending.lock().ok()?.remove(&id)
    }
}

/// Serves Streamable HTTP on 127.0.0.1:`port` in front of `command` (stdio), until the
/// downstream ends (on the caller's single-threaded runtime).
pub async fn http(port: u16, command: &[String]) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|error| format!("cannot listen on 127.0.0.1:{port}: {error}"))?;
    serve_http(listener, command).await
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
        if let Some((original, reply)) = relay.forget(id) {
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
        if let Some((ours, _)) = &waiting {
            relay.forget(*ours);
        }
        return reply(StatusCode::BAD_GATEWAY, Bytes::new(), false);
    }
    let Some((ours, receive)) = waiting else {
        return reply(StatusCode::ACCEPTED, Bytes::new(), false);
    };
    match tokio::time::timeout(ANSWER_TIMEOUT, receive).await {
        Ok(Ok(answer)) => reply(StatusCode::OK, answer, initialize),
        _ => {
            relay.forget(ours);
            reply(StatusCode::GATEWAY_TIMEOUT, Bytes::new(), false)
        }
    }
}
