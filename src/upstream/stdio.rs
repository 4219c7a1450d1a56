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
    match duplicate(stdin.as_fd()) {
        Some((fd, FdKind::Pipe)) => match tokio::net::unix::pipe::Receiver::from_owned_fd(fd) {
            Ok(pipe) => return (Box::new(pipe), StdioKind::Pipe),
            Err(error) => tracing::debug!(%error, "stdin: pipe not usable on the event loop"),
        },
        Some((fd, FdKind::Socket)) => match socket(fd) {
            Ok(socket) => return (Box::new(socket), StdioKind::Socket),
            Err(error) => tracing::debug!(%error, "stdin: socket not usable on the event loop"),
        },
        _ => {}
    }
    (Box::new(tokio::io::stdin()), StdioKind::Portable)
}

fn writer() -> (StdoutWriter, StdioKind) {
    let stdout = std::io::stdout();
    match duplicate(stdout.as_fd()) {
        Some((fd, FdKind::Pipe)) => match tokio::net::unix::pipe::Sender::from_owned_fd(fd) {
            Ok(pipe) => return (Box::new(pipe), StdioKind::Pipe),
            Err(error) => tracing::debug!(%error, "stdout: pipe not usable on the event loop"),
        },
        Some((fd, FdKind::Socket)) => match socket(fd) {
            Ok(socket) => return (Box::new(socket), StdioKind::Socket),
            Err(error) => tracing::debug!(%error, "stdout: socket not usable on the event loop"),
        },
        _ => {}
    }
    (Box::new(tokio::io::stdout()), StdioKind::Portable)
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
