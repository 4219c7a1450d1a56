//! The stdio face's byte streams: the process's own stdin and stdout, read and written
//! without a thread hop when the operating system allows it.
//!
//! `tokio::io::stdin()`/`stdout()` do every read and write on the blocking thread pool (a
//! file descriptor inherited from the client may be anything, even a regular file), which
//! costs several thread wake-ups per message. When stdin/stdout is a pipe (how most clients
//! launch servers) or a Unix socket (Node's `child_process`, so Electron-based clients), it
//! is driven by the runtime's event loop directly instead; anything else (a terminal, a
//! file) keeps tokio's portable path. Never writes anything but what rmcp gives it.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::unix::pipe;

/// Reads the process's stdin.
pub type StdinReader = Box<dyn AsyncRead + Send + Unpin>;
/// Writes the process's stdout.
pub type StdoutWriter = Box<dyn AsyncWrite + Send + Unpin>;

/// How the stdio face reached stdin and stdout, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdioKind {
    /// Non-blocking, on the event loop.
    Pipe,
    /// Non-blocking, on the event loop.
    Socket,
    /// On tokio's blocking pool (a terminal, a regular file, or a failed conversion).
    Portable,
}

/// stdin and stdout for the stdio face, the fastest way available for each.
pub fn streams() -> (StdinReader, StdoutWriter, StdioKind, StdioKind) {
    let (reader, read_kind) = reader();
    let (writer, write_kind) = writer();
    (reader, writer, read_kind, write_kind)
}

fn reader() -> (StdinReader, StdioKind) {
    let stdin = std::io::stdin();
    match on_event_loop(stdin.as_fd(), "stdin", pipe::Receiver::from_owned_fd) {
        Some(EventLoop::Pipe(pipe)) => (Box::new(pipe), StdioKind::Pipe),
        Some(EventLoop::Socket(socket)) => (Box::new(socket), StdioKind::Socket),
        None => (Box::new(tokio::io::stdin()), StdioKind::Portable),
    }
}

fn writer() -> (StdoutWriter, StdioKind) {
    let stdout = std::io::stdout();
    match on_event_loop(stdout.as_fd(), "stdout", pipe::Sender::from_owned_fd) {
        Some(EventLoop::Pipe(pipe)) => (Box::new(pipe), StdioKind::Pipe),
        Some(EventLoop::Socket(socket)) => (Box::new(socket), StdioKind::Socket),
        None => (Box::new(tokio::io::stdout()), StdioKind::Portable),
    }
}

/// A standard handle the event loop can drive.
enum EventLoop<P> {
    Pipe(P),
    Socket(tokio::net::UnixStream),
}

/// `fd` (duplicated) as a pipe end made by `pipe`, or as a Unix stream socket; `None` for
/// anything else, or when the conversion fails (logged at debug with `name`).
fn on_event_loop<P>(
    fd: BorrowedFd<'_>,
    name: &str,
    pipe: impl FnOnce(OwnedFd) -> std::io::Result<P>,
) -> Option<EventLoop<P>> {
    let converted = match duplicate(fd)? {
        (fd, FdKind::Pipe) => pipe(fd).map(EventLoop::Pipe),
        (fd, FdKind::Socket) => socket(fd).map(EventLoop::Socket),
        (_, FdKind::Other) => return None,
    };
    converted
        .inspect_err(|error| tracing::debug!(%error, "{name}: not usable on the event loop"))
        .ok()
}

enum FdKind {
    Pipe,
    Socket,
    Other,
}

/// A duplicate of `fd` (so the standard handles stay open whatever happens to ours) and
/// what it is.
fn duplicate(fd: BorrowedFd<'_>) -> Option<(OwnedFd, FdKind)> {
    let owned = fd.try_clone_to_owned().ok()?;
    let file = File::from(owned);
    let kind = match file.metadata() {
        Ok(meta) if meta.file_type().is_fifo() => FdKind::Pipe,
        Ok(meta) if meta.file_type().is_socket() => FdKind::Socket,
        _ => FdKind::Other,
    };
    Some((OwnedFd::from(file), kind))
}

/// A Unix stream socket on the event loop; sockets of another family or type stay portable.
fn socket(fd: OwnedFd) -> std::io::Result<tokio::net::UnixStream> {
    if !is_stream(&fd) {
        return Err(std::io::Error::other("not a stream socket"));
    }
    let socket = std::os::unix::net::UnixStream::from(fd);
    // Fails for a socket that is not AF_UNIX (its address does not parse as one).
    socket.local_addr()?;
    socket.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(socket)
}

fn is_stream(fd: &OwnedFd) -> bool {
    let mut kind: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the c_int we pass.
    let ok = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut kind as *mut libc::c_int).cast(),
            &mut len,
        )
    } == 0;
    ok && kind == libc::SOCK_STREAM
}
