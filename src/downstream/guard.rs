//! The child guard (Linux): a tiny process between mcp-orch and each stdio server so that no
//! process mcp-orch started outlives it, even when mcp-orch is killed with SIGKILL.
//!
//! `PR_SET_PDEATHSIG` only reaches a *direct* child, and servers started with `npx`/`uvx`
//! run their real work in grandchildren. So mcp-orch runs `mcp-orch <GUARD_ARG> <its pid>
//! <command> <args…>` as the leader of a new process group. The guard asks the kernel for
//! SIGTERM when mcp-orch dies (and exits if that already happened: its parent is no longer
//! the pid it was given), starts the server (same group, same stdin/stdout/stderr), lets go
//! of its own copies of those pipes, and waits. Because the guard does that itself, mcp-orch
//! starts it with nothing to run between fork and exec, which lets the standard library use
//! `posix_spawn` (a vfork: no copy of mcp-orch's page tables per server started). When the
//! server exits, the guard exits the same way (mcp-orch then clears the group). When the
//! guard gets SIGTERM/SIGINT/SIGHUP — mcp-orch stopping the server, or mcp-orch gone — it
//! passes SIGTERM to the whole group, waits briefly, then SIGKILLs the group (itself
//! included).
//!
//! What remains: a process that leaves the group on purpose (`setsid`, daemonising) is out
//! of reach, as is anything if the guard itself is SIGKILLed at the same moment as mcp-orch.

use std::ffi::OsString;

/// The hidden first argument that makes the `mcp-orch` binary act as a guard.
pub const GUARD_ARG: &str = "__mcp-orch-child-guard";

/// How long the group gets between SIGTERM and SIGKILL.
#[cfg(target_os = "linux")]
const TERM_GRACE_MS: u64 = 1500;

/// Runs the guard with `args` = `[parent pid, command, arg…]`; returns only on error (the
/// exit code to use) — on success the process exits like the server did.
#[cfg(target_os = "linux")]
pub fn run(args: Vec<OsString>) -> i32 {
    use std::os::unix::process::CommandExt;

    let Some((parent, command, rest)) = split_args(&args) else {
        eprintln!("mcp-orch child guard: expected <parent pid> <command> [args…]");
        return 2;
    };
    let handled = handled_signals();
    // SAFETY: plain libc calls on this process's own signal and process state.
    unsafe {
        // Blocked here and received with sigtimedwait below; unblocked for the server.
        libc::pthread_sigmask(libc::SIG_BLOCK, &handled, std::ptr::null_mut());
        if !die_with_parent(libc::SIGTERM, parent) {
            return 1;
        }
        // Orphans of the server (its grandchildren) become our children, so we reap them
        // and no zombie waits for an init that may never reap it.
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    }
    let mut server = std::process::Command::new(command);
    server.args(rest).process_group(0);
    // SAFETY: async-signal-safe calls only, between fork and exec.
    unsafe {
        server.pre_exec(|| {
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            // If the guard itself is killed outright, the server goes too.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = match server.spawn() {
        Ok(child) => child,
        Err(error) => {
            eprintln!(
                "mcp-orch: cannot run {}: {error}",
                command.to_string_lossy()
            );
            return 127;
        }
    };
    let pid = child.id() as libc::pid_t;
    // Only the server holds the pipes now, so its exit closes them.
    // SAFETY: dup2 onto our own standard descriptors.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            if null > 2 {
                libc::close(null);
            }
        }
    }
    loop {
        // SAFETY: waits on the signals blocked above; reaps only our own children.
        unsafe {
            let timeout = libc::timespec {
                tv_sec: 1,
                tv_nsec: 0,
            };
            let signal = libc::sigtimedwait(&handled, std::ptr::null_mut(), &timeout);
            if let Some(status) = reap(pid) {
                // The server is gone: so is everything it started.
                finish_group(pid, libc::SIGKILL, 0);
                exit_like(status);
            }
            if matches!(signal, libc::SIGTERM | libc::SIGINT | libc::SIGHUP) {
                let status = finish_group(pid, libc::SIGTERM, TERM_GRACE_MS);
                exit_like(status.unwrap_or(libc::SIGTERM));
            }
        }
    }
}

/// Asks the kernel for `signal` when the parent dies; false if that cannot be set or the
/// parent is no longer `parent` (it died before: we were re-parented to init or a
/// subreaper). Only async-signal-safe calls, so it can also run between fork and exec.
#[cfg(target_os = "linux")]
pub(crate) fn die_with_parent(signal: libc::c_int, parent: libc::pid_t) -> bool {
    // SAFETY: prctl and getppid touch only this process's own state.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal) == 0 && libc::getppid() == parent }
}

/// `[parent pid, command, arg…]` split; `None` when the pid or the command is missing.
#[cfg(target_os = "linux")]
fn split_args(args: &[OsString]) -> Option<(libc::pid_t, &OsString, &[OsString])> {
    let (parent, rest) = args.split_first()?;
    let parent = parent.to_str()?.parse().ok()?;
    let (command, rest) = rest.split_first()?;
    Some((parent, command, rest))
}

#[cfg(target_os = "linux")]
fn handled_signals() -> libc::sigset_t {
    // SAFETY: initialising a local signal set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGCHLD] {
            libc::sigaddset(&mut set, signal);
        }
        set
    }
}

/// Reaps every child that has exited; returns the server's status once it has.
#[cfg(target_os = "linux")]
unsafe fn reap(server: libc::pid_t) -> Option<libc::c_int> {
    let mut server_status = None;
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: reaping our own children without blocking.
        let reaped = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if reaped <= 0 {
            return server_status;
        }
        if reaped == server {
            server_status = Some(status);
        }
    }
}

/// Signals the server's process group, waits up to `grace_ms` for the server, then
/// SIGKILLs the group and reaps what is left. Returns the server's status if it ended.
#[cfg(target_os = "linux")]
unsafe fn finish_group(
    server: libc::pid_t,
    signal: libc::c_int,
    grace_ms: u64,
) -> Option<libc::c_int> {
    // SAFETY: signalling and reaping the group we created.
    unsafe {
        libc::kill(-server, signal);
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(grace_ms);
        let mut status = reap(server);
        while status.is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
            status = reap(server);
        }
        libc::kill(-server, libc::SIGKILL);
        // Reap the group (bounded: a killed process is reaped within moments).
        let until = std::time::Instant::now() + std::time::Duration::from_millis(500);
        loop {
            if let Some(s) = reap(server) {
                status = Some(s);
            }
            let mut probe: libc::c_int = 0;
            let any = libc::waitpid(-1, &mut probe, libc::WNOHANG);
            if any == server {
                status = Some(probe);
            }
            if (any < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD))
                || std::time::Instant::now() >= until
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        status
    }
}

/// Exits the way the server did: same code, or the same signal.
#[cfg(target_os = "linux")]
unsafe fn exit_like(status: libc::c_int) -> ! {
    // SAFETY: the caller passes a status from waitpid; signal/raise/_exit are safe here.
    unsafe {
        if libc::WIFSIGNALED(status) {
            let signal = libc::WTERMSIG(status);
            libc::signal(signal, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signal);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::raise(signal);
        }
        libc::_exit(if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            1
        })
    }
}

/// Elsewhere the guard is not used.
#[cfg(not(target_os = "linux"))]
pub fn run(_args: Vec<OsString>) -> i32 {
    eprintln!("mcp-orch child guard: only used on Linux");
    2
}

/// Whether stdio servers are started behind a guard (Linux only).
pub fn enabled() -> bool {
    cfg!(target_os = "linux")
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_parent_pid_comes_before_the_command() {
        let given = args(&["4242", "npx", "-y", "server"]);
        let (parent, command, rest) = split_args(&given).unwrap_or_else(|| panic!("split"));
        assert_eq!(parent, 4242);
        assert_eq!(command, "npx");
        assert_eq!(rest, &args(&["-y", "server"])[..]);
        assert!(split_args(&args(&["4242"])).is_none());
        assert!(split_args(&args(&["npx", "-y"])).is_none());
        assert!(split_args(&[]).is_none());
    }
}
