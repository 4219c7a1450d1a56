//! The async runtime mcp-orch runs on, and its idle poll.
//!
//! A call through mcp-orch wakes it twice (the request, then the server's answer). On a
//! machine whose idle CPUs halt at once, every such wake-up of a sleeping CPU costs tens of
//! µs — more than mcp-orch's own work per call. So before its worker goes to sleep, it polls
//! for a short while whether the runtime's event queue (tokio's `epoll` instance) has
//! anything ready: when the next message comes within that window — the usual case for the
//! answer to a call just forwarded — the worker picks it up without having slept. The window
//! adapts like Linux's `haltpoll` (which does the same for a whole guest, where it is on): it
//! grows (up to the maximum) while sleeps end sooner than the maximum, and shrinks while they
//! last longer, so an idle or lightly used mcp-orch polls for nothing. The maximum is
//! `MCP_ORCH_IDLE_POLL_US` (µs, default 200, at most 1000); `0` turns the poll off.
//!
//! The poll asks `poll(2)` whether tokio's epoll descriptor is readable, which does not take
//! any event from it, and yields the CPU between asks, so a process waiting to run on the
//! same CPU (a server mcp-orch is waiting for) is not held up by it. Timers and tasks woken
//! from other threads are seen when the window ends (at most one window late); I/O
//! readiness, the worker's own wake-up eventfd included, ends the window at once. Linux only
//! (elsewhere the runtime is built without it).

use std::cell::Cell;
#[cfg(target_os = "linux")]
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The longest idle poll unless `MCP_ORCH_IDLE_POLL_US` says otherwise.
pub const DEFAULT_IDLE_POLL: Duration = Duration::from_micros(200);
/// The most `MCP_ORCH_IDLE_POLL_US` may ask for.
pub const MAX_IDLE_POLL: Duration = Duration::from_millis(1);

/// The idle poll's maximum from `MCP_ORCH_IDLE_POLL_US` (µs); a value that is not a number
/// comes back as a warning with the default, one above the limit as a warning with the limit.
pub fn idle_poll(env: Option<&str>) -> (Duration, Option<String>) {
    match env.map(str::trim) {
        None | Some("") => (DEFAULT_IDLE_POLL, None),
        Some(value) => match value.parse::<u64>() {
            Ok(us) if Duration::from_micros(us) <= MAX_IDLE_POLL => {
                (Duration::from_micros(us), None)
            }
            Ok(_) => (
                MAX_IDLE_POLL,
                Some(format!(
                    "MCP_ORCH_IDLE_POLL_US={value:?} is above {} µs; using {}",
                    MAX_IDLE_POLL.as_micros(),
                    MAX_IDLE_POLL.as_micros()
                )),
            ),
            Err(_) => (
                DEFAULT_IDLE_POLL,
                Some(format!(
                    "MCP_ORCH_IDLE_POLL_US={value:?} is not a number of µs; using {}",
                    DEFAULT_IDLE_POLL.as_micros()
                )),
            ),
        },
    }
}

/// Builds the multi-threaded runtime with `workers` threads and, on Linux, the idle poll of
/// at most `idle_poll` (none when zero). Also says whether the idle poll is on (it is off
/// when asked to be, and where the runtime's event queue cannot be found).
pub fn build(
    workers: usize,
    idle_poll: Duration,
) -> std::io::Result<(tokio::runtime::Runtime, bool)> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(workers).enable_all();
    if idle_poll.is_zero() || !cfg!(target_os = "linux") {
        return Ok((builder.build()?, false));
    }
    #[cfg(target_os = "linux")]
    {
        build_polling(builder, idle_poll)
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok((builder.build()?, false))
    }
}

#[cfg(target_os = "linux")]
fn build_polling(
    mut builder: tokio::runtime::Builder,
    idle_poll: Duration,
) -> std::io::Result<(tokio::runtime::Runtime, bool)> {
    let before = event_queues();
    let target: Arc<OnceLock<Vec<libc::pollfd>>> = Arc::default();
    let park_target = target.clone();
    builder
        .on_thread_park(move || {
            if let Some(queues) = park_target.get() {
                POLICY.with(|policy| {
                    policy.before_sleep(idle_poll, || readable(queues), std::thread::yield_now)
                });
            }
        })
        // Without a target nothing polled, so there is no sleep to learn from.
        .on_thread_unpark(move || POLICY.with(|policy| policy.after_wake(idle_poll)));
    let runtime = builder.build()?;
    // The runtime's own epoll instance is what was not there before it was built (tokio
    // holds it twice: mio's poller and a duplicate for registering; both are watched).
    let queues: Vec<libc::pollfd> = event_queues()
        .into_iter()
        .filter(|fd| !before.contains(fd))
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let on = !queues.is_empty() && queues.len() <= POLLED;
    if on {
        let _ = target.set(queues);
    }
    Ok((runtime, on))
}

/// The most epoll instances watched (tokio's two handles on one, plus slack for others made
/// at the same moment; in mcp-orch nothing else runs while the runtime is built).
#[cfg(target_os = "linux")]
const POLLED: usize = 8;

#[cfg(target_os = "linux")]
thread_local! {
    static POLICY: Policy = const { Policy::new() };
}

/// One worker's adaptive poll window (haltpoll's rules).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
struct Policy {
    /// The current window.
    window: Cell<Duration>,
    /// When the worker went to sleep after an empty poll (None: it did not sleep).
    slept_at: Cell<Option<Instant>>,
}

/// The first window after a shrink to nothing; windows double and halve from there.
const GROW_START: Duration = Duration::from_micros(10);

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
impl Policy {
    const fn new() -> Self {
        Policy {
            window: Cell::new(Duration::ZERO),
            slept_at: Cell::new(None),
        }
    }

    /// Polls `ready` until it says yes or the window ends, calling `pause` between polls;
    /// remembers whether the worker is going to sleep. `pause` yields the CPU: anything
    /// else runnable on it (a server, the client) goes first, so the poll only takes time
    /// nobody else wants.
    fn before_sleep(&self, max: Duration, ready: impl Fn() -> bool, pause: impl Fn()) {
        let window = self.window.get().min(max);
        let start = Instant::now();
        if !window.is_zero() {
            loop {
                if ready() {
                    self.slept_at.set(None);
                    return;
                }
                if start.elapsed() >= window {
                    break;
                }
                pause();
            }
        }
        // Nothing came: the worker sleeps now.
        self.slept_at.set(Some(Instant::now()));
    }

    /// After the worker wakes: a sleep that ended within the maximum window would have been
    /// caught by a longer poll (grow); a longer one means polling was wasted (shrink).
    fn after_wake(&self, max: Duration) {
        let Some(slept_at) = self.slept_at.take() else {
            return;
        };
        let slept = slept_at.elapsed();
        let window = self.window.get();
        let next = if slept < max {
            if window.is_zero() {
                GROW_START
            } else {
                (window * 2).min(max)
            }
        } else {
            window / 2
        };
        self.window.set(if next < GROW_START {
            Duration::ZERO
        } else {
            next
        });
    }
}

/// Whether any of `queues` (epoll instances) has events ready, without taking any.
#[cfg(target_os = "linux")]
fn readable(queues: &[libc::pollfd]) -> bool {
    let mut entries = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; POLLED];
    let n = queues.len().min(POLLED);
    entries[..n].copy_from_slice(&queues[..n]);
    // SAFETY: `n` pollfds on the stack, zero timeout.
    let n = unsafe { libc::poll(entries.as_mut_ptr(), n as libc::nfds_t, 0) };
    // An error also ends the window: the worker then sleeps in tokio as it would have.
    n != 0
}

/// The epoll instances this process holds.
#[cfg(target_os = "linux")]
fn event_queues() -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let target = std::fs::read_link(entry.path()).ok()?;
            (target.as_os_str() == "anon_inode:[eventpoll]")
                .then(|| entry.file_name().to_str()?.parse().ok())?
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_sets_the_maximum_within_bounds() {
        assert_eq!(idle_poll(None), (DEFAULT_IDLE_POLL, None));
        assert_eq!(idle_poll(Some(" ")), (DEFAULT_IDLE_POLL, None));
        assert_eq!(idle_poll(Some("0")), (Duration::ZERO, None));
        assert_eq!(idle_poll(Some("50")), (Duration::from_micros(50), None));
        let (max, warning) = idle_poll(Some("5000"));
        assert_eq!(max, MAX_IDLE_POLL);
        assert!(warning.is_some_and(|w| w.contains("MCP_ORCH_IDLE_POLL_US=\"5000\"")));
        let (max, warning) = idle_poll(Some("fast"));
        assert_eq!(max, DEFAULT_IDLE_POLL);
        assert!(warning.is_some_and(|w| w.contains("not a number")));
    }

    /// Pretends the worker slept for `slept` after an empty poll.
    fn sleep_for(policy: &Policy, max: Duration, slept: Duration) {
        policy.before_sleep(max, || false, || {});
        let asleep = policy
            .slept_at
            .get()
            .unwrap_or_else(|| panic!("not asleep"));
        policy.slept_at.set(asleep.checked_sub(slept));
        policy.after_wake(max);
    }

    #[test]
    fn the_window_grows_on_short_sleeps_and_shrinks_on_long_ones() {
        let max = Duration::from_micros(200);
        let policy = Policy::new();
        // Idle from the start: no polling at all.
        sleep_for(&policy, max, Duration::from_secs(1));
        assert_eq!(policy.window.get(), Duration::ZERO);
        // Short sleeps: a poll would have caught them, so the window grows to the maximum.
        let mut seen = Vec::new();
        for _ in 0..8 {
            sleep_for(&policy, max, Duration::from_micros(50));
            seen.push(policy.window.get().as_micros());
        }
        assert_eq!(seen, [10, 20, 40, 80, 160, 200, 200, 200]);
        // Long sleeps: polling was in vain, the window halves down to nothing.
        seen.clear();
        for _ in 0..6 {
            sleep_for(&policy, max, Duration::from_millis(5));
            seen.push(policy.window.get().as_micros());
        }
        assert_eq!(seen, [100, 50, 25, 12, 0, 0]);
    }

    #[test]
    fn a_poll_that_finds_work_ends_at_once_and_does_not_count_as_sleep() {
        let max = Duration::from_micros(200);
        let policy = Policy::new();
        policy.window.set(max);
        let polls = Cell::new(0);
        let start = Instant::now();
        policy.before_sleep(
            max,
            || {
                polls.set(polls.get() + 1);
                polls.get() == 3
            },
            || {},
        );
        assert_eq!(polls.get(), 3);
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(policy.slept_at.get().is_none());
        policy.after_wake(max);
        assert_eq!(policy.window.get(), max);
        // An empty poll lasts the window, then the worker sleeps.
        let start = Instant::now();
        policy.before_sleep(max, || false, || {});
        assert!(start.elapsed() >= max);
        assert!(policy.slept_at.get().is_some());
    }

    #[test]
    fn a_runtime_built_with_the_poll_finds_its_event_queue_and_runs_tasks() {
        let (runtime, on) = build(1, DEFAULT_IDLE_POLL).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(on, cfg!(target_os = "linux"));
        // Calls cross the worker's park and wake-up with the poll on.
        let sum = runtime.block_on(async {
            let mut sum = 0u64;
            for i in 0..50u64 {
                sum += tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_micros(100)).await;
                    i
                })
                .await
                .unwrap_or(0);
            }
            sum
        });
        assert_eq!(sum, (0..50).sum::<u64>());
        let (_, on) = build(1, Duration::ZERO).unwrap_or_else(|e| panic!("{e}"));
        assert!(!on);
    }
}
