//! The stdio wire: a child process speaking newline-delimited JSON-RPC on stdin/stdout.
//!
//! Owns the child: it is spawned in its own process group (npx/uvx start grandchildren, and a
//! signal to the group reaches them all), with `PR_SET_PDEATHSIG` on Linux so it dies with
//! mcp-orch even after a SIGKILL; its stderr is always drained into a bounded
//! [`StderrLog`](super::stderr_log::StderrLog) (a full pipe would block the child) and into
//! tracing at debug. Stopping closes stdin, then sends SIGTERM and finally SIGKILL to the
//! whole group, and reaps the child, so nothing is left behind.
//!
//! Outbound messages are serialised by one writer task that batches whatever is queued
//! into one write before flushing (and, while other requests are in flight, first lets
//! ready tasks queue theirs). Inbound lines are read with a size cap; replies are kept
//! as raw JSON so each caller decodes only its own result.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Weak};
use std::time::Duration;

use rmcp::model::{ErrorData, RequestId, ServerJsonRpcMessage};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::connection::{Connection, ConnectionHooks, Inbound, Outbound, Reply};
use super::stderr_log::{MAX_LINE_BYTES, StderrLog};

/// Largest single message accepted from a child (a bigger one is dropped and logged).
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024 * 1024;

/// How long a child gets to exit after its stdin is closed, and again after SIGTERM.
const STOP_GRACE: Duration = Duration::from_millis(1500);

/// Environment variables holding mcp-orch's own secrets; children never inherit them
/// (a server that needs one must name it in its `env`).
const PRIVATE_ENV: &[&str] = &["API_KEY", "JWT_SECRET"];

/// The program that guards stdio servers (the `mcp-orch` binary itself), if set.
static GUARD_PROGRAM: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Runs every stdio server behind the child guard (see [`super::guard`]), using `program`
/// — the running `mcp-orch` executable. Without this call servers are spawned directly
/// (what in-process users of the library get).
pub fn use_child_guard(program: std::path::PathBuf) {
    if super::guard::enabled() {
        let _ = GUARD_PROGRAM.set(program);
    }
}

fn guard_program() -> Option<&'static std::path::Path> {
    GUARD_PROGRAM.get().map(|p| p.as_path())
}

/// What to run.
#[derive(Debug, Clone)]
pub struct StdioSpec<'a> {
    pub command: &'a str,
    pub args: &'a [String],
    pub env: &'a BTreeMap<String, String>,
    pub cwd: Option<&'a Path>,
}

/// A running child process. Dropping it does not stop the child: call [`ChildHandle::stop`].
#[derive(Debug, Clone)]
pub struct ChildHandle {
    pid: u32,
    /// `Some(status)` once the child has exited and been reaped.
    exit: watch::Receiver<Option<ExitStatus>>,
    /// Cancelled to ask the process task for a graceful stop.
    stop: CancellationToken,
    /// Cancelled once the child's stderr has ended and every line of it is in the log.
    stderr_done: CancellationToken,
}

impl ChildHandle {
    /// The child's pid (also its process-group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Stops the child (stdin closed → SIGTERM → SIGKILL to its group) and waits until it
    /// has been reaped.
    pub async fn stop(&self) -> Option<ExitStatus> {
        self.stop.cancel();
        self.exited().await
    }

    /// Its exit status, if it has exited and been reaped.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.borrow()
    }

    /// Waits (at most `limit`) until the child's stderr has ended and all of it is in the
    /// log, so a failure reason can quote its last line: the exit and the end of stdout can
    /// be seen before the stderr reader has caught up.
    pub async fn stderr_drained(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.stderr_done.cancelled()).await;
    }

    /// Waits for the child to exit (however that happens) and returns its status.
    pub async fn exited(&self) -> Option<ExitStatus> {
        let mut exit = self.exit.clone();
        let result = exit.wait_for(|status| status.is_some()).await;
        match result {
            Ok(status) => *status,
            Err(_) => None,
        }
    }
}

/// Spawns the child and wires it to a new [`Connection`]. The connection closes when the
/// child's stdout ends, with a reason naming the exit status.
pub fn spawn(
    server: Arc<str>,
    spec: &StdioSpec<'_>,
    hooks: ConnectionHooks,
    stderr_log: Arc<StderrLog>,
) -> std::io::Result<(Arc<Connection>, ChildHandle)> {
    let guard = guard_program();
    let mut command = match guard {
        // The guard runs the server and cleans up its whole group if mcp-orch dies.
        Some(guard) => {
            let mut command = Command::new(guard);
            command
                .arg(super::guard::GUARD_ARG)
                .arg(std::process::id().to_string())
                .arg(spec.command);
            command
        }
        None => Command::new(spec.command),
    };
    command
        .args(spec.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false);
    for name in PRIVATE_ENV {
        if !spec.env.contains_key(*name) {
            command.env_remove(name);
        }
    }
    command.envs(spec.env);
    if let Some(cwd) = spec.cwd {
        command.current_dir(cwd);
    }
    #[cfg(unix)]
    {
        command.process_group(0);
        // Without a guard the child itself asks for SIGKILL when mcp-orch dies (the guard
        // does this on its own, so it is started by posix_spawn instead of fork + exec).
        #[cfg(target_os = "linux")]
        if guard.is_none() {
            let parent = std::process::id() as libc::pid_t;
            // SAFETY: the closure makes async-signal-safe calls only and allocates nothing.
            unsafe {
                command.pre_exec(move || {
                    // A failed prctl fails the spawn; a parent already gone has no one to
                    // tell, and the child ends without running the server either way.
                    if super::guard::die_with_parent(libc::SIGKILL, parent) {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
    }
    let mut child = command.spawn()?;
    let pid = child.id().unwrap_or(0);
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(std::io::Error::other("child stdio pipes were not created"));
    };

    let (connection, outbound) = Connection::new(server.clone(), hooks);
    let (exit_tx, exit_rx) = watch::channel(None);
    let stop = CancellationToken::new();
    let stderr_done = CancellationToken::new();
    let handle = ChildHandle {
        pid,
        exit: exit_rx,
        stop: stop.clone(),
        stderr_done: stderr_done.clone(),
    };
    let stdin_closed = CancellationToken::new();

    tokio::spawn(drain_stderr(
        server.clone(),
        stderr,
        stderr_log,
        stderr_done,
    ));
    tokio::spawn(write_loop(
        server.clone(),
        Arc::downgrade(&connection),
        stdin,
        outbound,
        stdin_closed.clone(),
    ));
    tokio::spawn(read_loop(connection.clone(), stdout, handle.clone()));
    tokio::spawn(process_task(
        server,
        child,
        pid,
        exit_tx,
        stop,
        stdin_closed,
    ));
    Ok((connection, handle))
}

/// Owns the child: reaps it when it exits by itself, or runs the stop sequence.
async fn process_task(
    server: Arc<str>,
    mut child: Child,
    pid: u32,
    exit_tx: watch::Sender<Option<ExitStatus>>,
    stop: CancellationToken,
    stdin_closed: CancellationToken,
) {
    let status = tokio::select! {
        status = child.wait() => status.ok(),
        _ = stop.cancelled() => {
            stdin_closed.cancel();
            let mut status = tokio::time::timeout(STOP_GRACE, child.wait()).await.ok().and_then(Result::ok);
            if status.is_none() {
                signal_group(pid, Signal::Term);
                status = tokio::time::timeout(STOP_GRACE, child.wait()).await.ok().and_then(Result::ok);
            }
            if status.is_none() {
                signal_group(pid, Signal::Kill);
                status = child.wait().await.ok();
            }
            status
        }
    };
    // The direct child is gone; anything it started in its group goes too.
    signal_group(pid, Signal::Kill);
    stdin_closed.cancel();
    tracing::debug!(%server, pid, ?status, "child reaped");
    let _ = exit_tx.send(Some(status.unwrap_or_else(unknown_status)));
}

#[cfg(unix)]
fn unknown_status() -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    ExitStatus::from_raw(0xff00)
}

#[derive(Clone, Copy)]
enum Signal {
    Term,
    Kill,
}

/// Sends a signal to a whole process group. A group that no longer exists is fine.
fn signal_group(pgid: u32, signal: Signal) {
    #[cfg(unix)]
    {
        let Ok(pgid) = libc::pid_t::try_from(pgid) else {
            return;
        };
        if pgid <= 1 {
            return;
        }
        let signal = match signal {
            Signal::Term => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
        };
        // SAFETY: plain syscall on a process group id we created.
        unsafe {
            libc::killpg(pgid, signal);
        }
    }
}

/// Describes how a child ended, for status and errors.
pub fn describe_exit(status: Option<ExitStatus>) -> String {
    match status {
        None => "the process ended".to_owned(),
        Some(status) => {
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt;
                if let Some(signal) = status.signal() {
                    return format!("the process was killed by signal {signal}");
                }
            }
            match status.code() {
                Some(code) => format!("the process exited with code {code}"),
                None => "the process ended".to_owned(),
            }
        }
    }
}

/// Writes queued messages to the child's stdin, one JSON object per line, flushing when
/// the queue is momentarily empty (so bursts become one write).
async fn write_loop(
    server: Arc<str>,
    connection: Weak<Connection>,
    stdin: impl AsyncWrite + Unpin,
    mut outbound: mpsc::Receiver<Outbound>,
    closed: CancellationToken,
) {
    let mut writer = BufWriter::with_capacity(64 * 1024, stdin);
    let mut line = Vec::with_capacity(4096);
    loop {
        let message = tokio::select! {
            message = outbound.recv() => message,
            _ = closed.cancelled() => None,
        };
        let Some(mut message) = message else { break };
        if outbound.is_empty() && connection.upgrade().is_some_and(|c| c.in_flight() > 1) {
            // Other requests are in flight, so more messages are probably on their way:
            // tasks that are ready run first (this one comes back once the worker has run
            // them), and what they queue shares this write — one system call, and one
            // wake-up of the server, for many messages. A lone request is written at once.
            tokio::task::yield_now().await;
        }
        loop {
            line.clear();
            if let Err(error) = message.write_json(&mut line) {
                tracing::error!(%server, %error, "could not serialise a message for the server");
            } else {
                line.push(b'\n');
                if let Err(error) = writer.write_all(&line).await {
                    tracing::debug!(%server, %error, "stdin closed");
                    return;
                }
            }
            match outbound.try_recv() {
                Ok(next) => message = next,
                Err(_) => break,
            }
        }
        if let Err(error) = writer.flush().await {
            tracing::debug!(%server, %error, "stdin closed");
            return;
        }
    }
    // Dropping the writer closes the child's stdin: the polite way to ask it to exit.
    let _ = writer.shutdown().await;
}

/// Reads the child's stdout until it ends, then closes the connection with the exit reason.
async fn read_loop(connection: Arc<Connection>, stdout: ChildStdout, child: ChildHandle) {
    let server = connection.server().clone();
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = Vec::with_capacity(4096);
    let mut warned = 0u32;
    loop {
        match read_bounded_line(&mut reader, &mut line, MAX_MESSAGE_BYTES).await {
            Ok(LineRead::Eof) => break,
            Ok(LineRead::TooLong) => {
                tracing::warn!(%server, limit = MAX_MESSAGE_BYTES, "dropped an over-long message from the server");
            }
            Ok(LineRead::Line) => {
                let text = trim_line(&line);
                if text.is_empty() {
                    continue;
                }
                match parse_inbound(text) {
                    Ok(inbound) => connection.dispatch(inbound),
                    Err(error) => {
                        if warned < 20 {
                            warned += 1;
                            tracing::warn!(%server, %error, line = %preview(text),
                                "ignoring a line on stdout that is not a JSON-RPC message");
                        }
                    }
                }
            }
            Err(error) => {
                tracing::debug!(%server, %error, "error reading the server's stdout");
                break;
            }
        }
    }
    let status = tokio::time::timeout(Duration::from_millis(500), child.exited())
        .await
        .ok()
        .flatten();
    let reason = match status {
        Some(status) => describe_exit(Some(status)),
        None => "the process closed its stdout".to_owned(),
    };
    connection.close(reason);
}

fn trim_line(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &line[..end]
}

fn preview(text: &[u8]) -> Cow<'_, str> {
    let cut = text.len().min(200);
    String::from_utf8_lossy(&text[..cut])
}

enum LineRead {
    Line,
    TooLong,
    Eof,
}

/// Reads one `\n`-terminated line into `line` without letting it grow past `limit`; an
/// over-long line is consumed and reported as [`LineRead::TooLong`].
async fn read_bounded_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<LineRead> {
    line.clear();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if line.is_empty() && !too_long {
                LineRead::Eof
            } else if too_long {
                LineRead::TooLong
            } else {
                LineRead::Line
            });
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let used = chunk.len();
        if !too_long {
            if line.len() + used > limit {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        reader.consume(used);
        if done {
            return Ok(if too_long {
                LineRead::TooLong
            } else {
                LineRead::Line
            });
        }
    }
}

/// The fields needed to tell a reply from a request or notification without decoding the
/// result itself.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    id: Option<RequestId>,
    #[serde(default, borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<ErrorData>,
}

/// Parses one line from a child: replies stay raw; requests and notifications are decoded
/// into rmcp's types.
pub(crate) fn parse_inbound(text: &[u8]) -> Result<Inbound, serde_json::Error> {
    let envelope: Envelope<'_> = serde_json::from_slice(text)?;
    if envelope.method.is_none()
        && let Some(id) = envelope.id
    {
        if let Some(error) = envelope.error {
            return Ok(Inbound::Reply {
                id,
                result: Err(error),
            });
        }
        if let Some(result) = envelope.result {
            return Ok(Inbound::Reply {
                id,
                result: Ok(Reply::Raw(result.to_owned())),
            });
        }
    }
    let message: ServerJsonRpcMessage = serde_json::from_slice(text)?;
    Ok(match message {
        ServerJsonRpcMessage::Request(request) => Inbound::Request {
            id: request.id,
            request: request.request,
            origin: None,
        },
        ServerJsonRpcMessage::Notification(notification) => {
            Inbound::Notification(notification.notification)
        }
        ServerJsonRpcMessage::Response(response) => Inbound::Reply {
            id: response.id,
            result: Ok(Reply::Typed(Box::new(response.result))),
        },
        ServerJsonRpcMessage::Error(error) => match error.id {
            Some(id) => Inbound::Reply {
                id,
                result: Err(error.error),
            },
            None => {
                return Err(serde::de::Error::custom(format!(
                    "error without an id: {}",
                    error.error.message
                )));
            }
        },
    })
}

/// Reads the child's stderr line by line into the log and tracing (debug), forever.
async fn drain_stderr(
    server: Arc<str>,
    stderr: ChildStderr,
    log: Arc<StderrLog>,
    done: CancellationToken,
) {
    let _done = done.drop_guard();
    let mut reader = BufReader::with_capacity(16 * 1024, stderr);
    let mut line = Vec::with_capacity(256);
    loop {
        match read_bounded_line(&mut reader, &mut line, MAX_LINE_BYTES).await {
            Ok(LineRead::Eof) | Err(_) => break,
            Ok(LineRead::TooLong) => log.push("[line too long, dropped]".to_owned()),
            Ok(LineRead::Line) => {
                let text = String::from_utf8_lossy(trim_line(&line)).into_owned();
                tracing::debug!(target: "mcp_orch::downstream::stderr", %server, "{text}");
                log.push(text);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::WriteCounter;

    #[test]
    fn replies_stay_raw_and_requests_are_typed() {
        let reply = parse_inbound(br#"{"jsonrpc":"2.0","id":7,"result":{"content":[]}}"#);
        match reply {
            Ok(Inbound::Reply {
                id: RequestId::Number(7),
                result: Ok(Reply::Raw(raw)),
            }) => assert_eq!(raw.get(), r#"{"content":[]}"#),
            other => panic!("unexpected: {other:?}"),
        }
        let error =
            parse_inbound(br#"{"jsonrpc":"2.0","id":8,"error":{"code":-32602,"message":"bad"}}"#);
        assert!(matches!(error, Ok(Inbound::Reply { result: Err(_), .. })));
        let ping = parse_inbound(br#"{"jsonrpc":"2.0","id":"s1","method":"ping"}"#);
        assert!(matches!(ping, Ok(Inbound::Request { .. })));
        let note =
            parse_inbound(br#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#);
        assert!(matches!(note, Ok(Inbound::Notification(_))));
        assert!(parse_inbound(b"npm notice: hello").is_err());
    }

    /// Requests sent in one pass of the worker while others are in flight share a write to
    /// the child's stdin (without the yield the writer would run after each: 40 writes).
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn requests_sent_together_share_one_write() {
        let hooks = ConnectionHooks {
            sink: Arc::new(|_| {}),
            fallback: Arc::new(|_| {
                Box::pin(async { Err(ErrorData::internal_error("not in this test", None)) })
            }),
        };
        let (connection, outbound) = Connection::new("fx".into(), hooks);
        let counter = WriteCounter::default();
        let closed = CancellationToken::new();
        let writer = tokio::spawn(write_loop(
            "fx".into(),
            Arc::downgrade(&connection),
            counter.clone(),
            outbound,
            closed.clone(),
        ));
        let calls = connection.clone();
        tokio::spawn(async move {
            // On the worker: the calls' tasks all wait in its queue until this one ends.
            for i in 0..40 {
                let connection = calls.clone();
                tokio::spawn(async move {
                    let options = super::super::connection::CallOptions {
                        timeout: Duration::from_secs(60),
                        ..Default::default()
                    };
                    let _ = connection
                        .call_raw(format!("t{i}").into(), None, options)
                        .await;
                });
            }
        })
        .await
        .unwrap();
        let writes = counter.writes_for(40).await;
        assert!(writes <= 3, "{writes} writes for 40 requests sent together");
        connection.close("test over");
        closed.cancel();
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn bounded_lines_drop_what_is_too_long() {
        let data = b"short\nthis line is too long\nok\nlast-without-newline".to_vec();
        let mut reader = BufReader::with_capacity(4, &data[..]);
        let mut line = Vec::new();
        let mut seen = Vec::new();
        loop {
            match read_bounded_line(&mut reader, &mut line, 10).await {
                Ok(LineRead::Eof) => break,
                Ok(LineRead::TooLong) => seen.push("<too long>".to_owned()),
                Ok(LineRead::Line) => {
                    seen.push(String::from_utf8_lossy(trim_line(&line)).into_owned())
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(seen, ["short", "<too long>", "ok", "<too long>"]);
    }
}
