//! The process under test: spawned in its own process group (npx, node and python start
//! grandchildren), its stderr kept in a small ring for error messages, its memory read from
//! `/proc`, and stopped politely (stdin closed, SIGTERM, then SIGKILL to the whole group) so
//! a run never leaves anything behind. Also picks free loopback ports for `{port}`.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How many stderr lines of the target are kept for error messages.
const STDERR_KEEP: usize = 40;

/// What to start.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// Program and arguments; `{port}` is replaced by the run's port.
    pub command: Vec<String>,
    /// Extra environment; `{port}` is replaced in values.
    pub env: Vec<(String, String)>,
    /// Variables removed from the inherited environment (e.g. `PROXY_PORT`, `RUST_LOG`).
    pub env_remove: Vec<String>,
    /// Whether the target speaks MCP on its stdin/stdout (otherwise both are null).
    pub stdio: bool,
}

/// A running target.
pub struct Target {
    child: Child,
    /// Its pid, which is also its process-group id.
    pub pid: u32,
    /// When `spawn` was called (cold start is measured from here).
    pub started: Instant,
    /// Its stdin and stdout when it speaks MCP on them (taken by the stdio session).
    pub pipes: Option<(ChildStdin, ChildStdout)>,
    /// The last lines it wrote to stderr.
    stderr: Arc<Mutex<VecDeque<String>>>,
}

/// A free port on 127.0.0.1 (bound and released; the window for a race is tiny).
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Replaces `{port}` in `text`.
pub fn with_port(text: &str, port: Option<u16>) -> String {
    match port {
        Some(port) => text.replace("{port}", &port.to_string()),
        None => text.to_owned(),
    }
}

impl Target {
    /// Starts the target. `port` fills `{port}` in the command and environment.
    pub fn spawn(launch: &Launch, port: Option<u16>) -> Result<Target, String> {
        let Some((program, args)) = launch.command.split_first() else {
            return Err("no command given".to_owned());
        };
        let program = with_port(program, port);
        let mut command = Command::new(&program);
        command
            .args(args.iter().map(|a| with_port(a, port)))
            .stdin(if launch.stdio {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(if launch.stdio {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        for key in &launch.env_remove {
            command.env_remove(key);
        }
        for (key, value) in &launch.env {
            command.env(key, with_port(value, port));
        }
        let started = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start `{program}`: {e}"))?;
        let pid = child.id().unwrap_or(0);
        let pipes = match (child.stdin.take(), child.stdout.take()) {
            (Some(stdin), Some(stdout)) => Some((stdin, stdout)),
            _ => None,
        };
        let stderr = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_KEEP)));
        if let Some(pipe) = child.stderr.take() {
            let ring = stderr.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(pipe).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut ring = ring.lock().unwrap_or_else(|p| p.into_inner());
                    if ring.len() == STDERR_KEEP {
                        ring.pop_front();
                    }
                    ring.push_back(line);
                }
            });
        }
        Ok(Target {
            child,
            pid,
            started,
            pipes,
            stderr,
        })
    }

    /// The last stderr lines, for error messages.
    pub fn stderr_tail(&self) -> String {
        let ring = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        ring.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the target and everything in its process group: waits up to `grace` for it to
    /// exit on its own (its stdin is already closed when the session was dropped), then
    /// SIGTERM, then SIGKILL.
    pub async fn stop(mut self, grace: Duration) {
        drop(self.pipes.take());
        let exited = tokio::time::timeout(grace, self.child.wait()).await.is_ok();
        if !exited {
            signal_group(self.pid, libc::SIGTERM);
            if tokio::time::timeout(grace, self.child.wait())
                .await
                .is_err()
            {
                signal_group(self.pid, libc::SIGKILL);
                let _ = self.child.wait().await;
            }
        }
        // Grandchildren (npx, shells, a proxy's servers) go with the group.
        signal_group(self.pid, libc::SIGKILL);
    }
}

impl Drop for Target {
    /// However the run ends (even a timeout dropping it mid-phase), nothing it started
    /// outlives it.
    fn drop(&mut self) {
        signal_group(self.pid, libc::SIGKILL);
    }
}

fn signal_group(pgid: u32, signal: libc::c_int) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    if pgid > 1 {
        // SAFETY: a plain syscall on a process group this harness created.
        unsafe {
            libc::killpg(pgid, signal);
        }
    }
}

/// `VmRSS` of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}
