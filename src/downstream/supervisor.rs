//! The supervisor: keeps one server alive for as long as mcp-orch runs.
//!
//! One life of a server: start (spawn or connect, `initialize`, list), serve until the
//! connection ends, a health ping goes unanswered, an operator asks for a restart or stop, or
//! mcp-orch shuts down — then stop its process. A server that went away is restarted after
//! an exponential backoff with jitter (`proxy.restart`); after `give_up_after` consecutive
//! failures it stays `failed` and is retried slowly instead of hot-looping; staying up for
//! `stable_after` resets the count. Calls in flight when a server goes away fail at once
//! (the connection closes them), its tools leave the catalogue while it is down and come
//! back after — the router tells clients both times.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::server::{Control, Downstream, Wire};
use super::{DownstreamError, Status, humanize};
use crate::config::RestartPolicy;

/// Why one life of a server ended.
enum Ended {
    /// mcp-orch is shutting down.
    Shutdown,
    /// An operator stopped it.
    OperatorStop,
    /// An operator asked for a restart.
    OperatorRestart,
    /// It failed to start, went away, or stopped answering.
    Failed { was_stable: bool },
}

impl Downstream {
    /// Runs until mcp-orch shuts down.
    pub(super) async fn run(self: Arc<Self>) {
        let control = self
            .control_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let (Some(mut control), false) = (control, self.entry.disabled) else {
            self.finished.cancel();
            return;
        };
        let policy = self.defaults.restart;
        let mut failures: u32 = 0;
        let mut stopped = false;
        let mut first = true;
        loop {
            if self.stop.is_cancelled() {
                break;
            }
            if stopped {
                self.set_status(Status::Stopped, None);
                tracing::info!(server = %self.name, "server stopped by request");
                tokio::select! {
                    command = control.recv() => match command {
                        Some(Control::Start | Control::Restart) => stopped = false,
                        Some(Control::Stop) => continue,
                        None => break,
                    },
                    _ = self.stop.cancelled() => break,
                }
            }
            if !first {
                self.lock_state().restarts += 1;
            }
            first = false;
            match self.clone().live(&mut control).await {
                Ended::Shutdown => break,
                Ended::OperatorStop => {
                    stopped = true;
                    continue;
                }
                Ended::OperatorRestart => {
                    failures = 0;
                    continue;
                }
                Ended::Failed { was_stable } => {
                    failures = if was_stable { 1 } else { failures + 1 };
                }
            }
            let delay = backoff(&policy, failures);
            self.lock_state().next_retry_at = Some(Instant::now() + delay);
            if failures >= policy.give_up_after {
                tracing::error!(server = %self.name, failures, retry_in = %humanize(delay),
                    "server keeps failing; retrying slowly");
            } else {
                tracing::info!(server = %self.name, failures, retry_in = %humanize(delay),
                    "restarting after a backoff");
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.stop.cancelled() => break,
                command = control.recv() => match command {
                    Some(Control::Restart | Control::Start) => failures = 0,
                    Some(Control::Stop) => stopped = true,
                    None => break,
                },
            }
            self.lock_state().next_retry_at = None;
        }
        if self.status() != Status::Stopped {
            self.set_status(Status::Stopped, None);
        }
        self.connection.store(None);
        self.finished.cancel();
    }

    /// One life: start, serve, stop.
    async fn live(self: Arc<Self>, control: &mut mpsc::UnboundedReceiver<Control>) -> Ended {
        self.set_status(Status::Starting, None);
        let started = Instant::now();
        let startup_timeout = self.startup_timeout();
        let mut wire_slot: Option<Wire> = None;
        let hooks = self.hooks(None);
        let attempt = tokio::select! {
            result = tokio::time::timeout(startup_timeout, self.start(hooks, &mut wire_slot, startup_timeout)) => {
                result.unwrap_or_else(|_| Err(format!(
                    "it did not finish starting within {}", humanize(startup_timeout)
                )))
            }
            _ = self.stop.cancelled() => {
                stop_wire(&wire_slot).await;
                return Ended::Shutdown;
            }
            command = control.recv() => {
                stop_wire(&wire_slot).await;
                return match command {
                    Some(Control::Stop) => Ended::OperatorStop,
                    Some(_) => Ended::OperatorRestart,
                    None => Ended::Shutdown,
                };
            }
        };
        let (connection, info, lists) = match attempt {
            Ok(ready) => ready,
            Err(reason) => {
                stop_wire(&wire_slot).await;
                self.record_exit(&wire_slot);
                stderr_drained(&wire_slot).await;
                let reason = self.with_stderr(reason);
                tracing::error!(server = %self.name, %reason, "server failed to start");
                self.set_status(Status::Failed, Some(reason));
                return Ended::Failed { was_stable: false };
            }
        };
        {
            let mut state = self.lock_state();
            state.known = lists.clone();
            state.lists = lists;
            state.info = Some(info);
            state.ready_since = Some(Instant::now());
            state.startup = Some(started.elapsed());
            state.last_error = None;
        }
        self.connection.store(Some(connection.clone()));
        tracing::info!(server = %self.name, tools = self.lists().tools.len(),
            startup_ms = started.elapsed().as_millis() as u64, "server ready");
        self.set_status(Status::Ready, None);
        let ready_at = Instant::now();

        let health = self.defaults.health;
        let mut ticks = health.interval.map(|every| {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks
        });
        let ended = loop {
            tokio::select! {
                _ = connection.closed() => {
                    // The stdio wire closes the connection only once the child was reaped
                    // (or after 500 ms), so its exit code is known here.
                    self.record_exit(&wire_slot);
                    stderr_drained(&wire_slot).await;
                    let reason = connection.close_reason().unwrap_or_else(|| "the connection ended".into());
                    let reason = self.with_stderr(reason);
                    tracing::warn!(server = %self.name, %reason, "server went away");
                    self.observer.server_event(&self.name, &format!("server '{}' went away: {reason}", self.name));
                    self.set_status(Status::Failed, Some(reason));
                    break Ended::Failed { was_stable: ready_at.elapsed() >= self.defaults.restart.stable_after };
                }
                _ = async { if let Some(t) = ticks.as_mut() { t.tick().await; } }, if ticks.is_some() => {
                    let healthy = match connection.ping(health.timeout).await {
                        // Any answer, even an error (a server without ping), is a sign of life.
                        Ok(()) | Err(DownstreamError::Rpc { .. }) => true,
                        Err(DownstreamError::Unreachable { .. }) => false,
                        // A busy server may be slow to answer: other traffic counts too.
                        Err(_) => connection.is_closed() || connection.idle_for() < health.timeout,
                    };
                    if !healthy {
                        let reason = format!("it did not answer a ping within {}", humanize(health.timeout));
                        tracing::warn!(server = %self.name, %reason, "server unresponsive; restarting");
                        self.observer.server_event(&self.name, &format!("server '{}' is unresponsive: {reason}", self.name));
                        self.set_status(Status::Failed, Some(reason));
                        break Ended::Failed { was_stable: false };
                    }
                }
                _ = self.stop.cancelled() => break Ended::Shutdown,
                command = control.recv() => match command {
                    Some(Control::Stop) => break Ended::OperatorStop,
                    Some(Control::Restart) => {
                        tracing::info!(server = %self.name, "restart requested");
                        break Ended::OperatorRestart;
                    }
                    Some(Control::Start) => {}
                    None => break Ended::Shutdown,
                },
            }
        };
        self.connection.store(None);
        stop_wire(&wire_slot).await;
        if matches!(
            ended,
            Ended::Shutdown | Ended::OperatorStop | Ended::OperatorRestart
        ) {
            self.record_exit(&wire_slot);
        }
        ended
    }

    fn record_exit(&self, wire: &Option<Wire>) {
        if let Some((described, code)) = wire.as_ref().and_then(Wire::exit) {
            let mut state = self.lock_state();
            state.last_exit = Some(described);
            state.last_exit_code = code;
        }
    }

    fn with_stderr(&self, mut reason: String) -> String {
        if let Some(line) = self.stderr.last_line() {
            reason.push_str(&format!("; last stderr line: {line}"));
        }
        reason
    }
}

async fn stderr_drained(wire: &Option<Wire>) {
    if let Some(wire) = wire {
        wire.stderr_drained().await;
    }
}

async fn stop_wire(wire: &Option<Wire>) {
    if let Some(wire) = wire {
        wire.stop().await;
    }
}

/// `initial × 2^(failures−1)`, capped, ±20 % jitter; `slow_retry` once given up.
fn backoff(policy: &RestartPolicy, failures: u32) -> Duration {
    if failures >= policy.give_up_after {
        return policy.slow_retry;
    }
    let exponent = failures.saturating_sub(1).min(30);
    let base = policy
        .initial_backoff
        .saturating_mul(1u32 << exponent)
        .min(policy.max_backoff);
    let jitter = 0.8 + 0.4 * fastrand::f64();
    base.mul_f64(jitter).min(policy.max_backoff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_gives_up() {
        let policy = RestartPolicy {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            give_up_after: 6,
            slow_retry: Duration::from_secs(300),
            stable_after: Duration::from_secs(30),
        };
        let within = |d: Duration, expected: f64| {
            let s = d.as_secs_f64();
            s >= expected * 0.8 - 1e-9 && s <= expected * 1.2 + 1e-9
        };
        assert!(within(backoff(&policy, 1), 1.0));
        assert!(within(backoff(&policy, 2), 2.0));
        assert!(within(backoff(&policy, 3), 4.0));
        assert!(within(backoff(&policy, 4), 8.0));
        assert!(backoff(&policy, 5) <= Duration::from_secs(10), "capped");
        assert_eq!(
            backoff(&policy, 6),
            Duration::from_secs(300),
            "given up: slow retry"
        );
        assert_eq!(backoff(&policy, 60), Duration::from_secs(300));
    }
}
