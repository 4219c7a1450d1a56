//! The stdio face's stdout: one task writes every message, whoever produced it.
//!
//! Messages reach it whole (a JSON-RPC message and its newline) from two producers: rmcp's
//! line transport, through [`RmcpWriter`], and the direct path's answers. Whatever is queued
//! when the task wakes goes out in one write, so a burst of answers costs one system call;
//! while other calls are in flight the task first lets ready tasks run, so answers finished
//! together go out together.
//! When stdout fails (the client went away) the task ends and every later send reports it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

use super::streams::StdoutWriter;
use crate::upstream::direct::Calls;

/// Messages that may wait for stdout before producers wait.
const QUEUE: usize = 1024;

/// Bytes gathered into one write at most (a bigger message is written alone).
const BATCH_BYTES: usize = 256 * 1024;

/// Where stdout messages are queued (cheap to clone).
#[derive(Clone)]
pub(super) struct Output {
    queue: mpsc::Sender<Vec<u8>>,
}

impl Output {
    /// Starts the task that owns `stdout`; `calls` are the session's direct calls in flight.
    pub fn start(stdout: StdoutWriter, calls: Arc<Calls>) -> Output {
        let (queue, messages) = mpsc::channel(QUEUE);
        tokio::spawn(write_messages(stdout, messages, calls));
        Output { queue }
    }

    /// Queues one whole message, newline included; `false` once stdout is gone.
    pub async fn send(&self, message: Vec<u8>) -> bool {
        self.queue.send(message).await.is_ok()
    }

    /// The writer rmcp's transport writes through.
    pub fn rmcp_writer(&self) -> RmcpWriter {
        RmcpWriter {
            queue: PollSender::new(self.queue.clone()),
        }
    }
}

async fn write_messages(
    mut stdout: StdoutWriter,
    mut messages: mpsc::Receiver<Vec<u8>>,
    calls: Arc<Calls>,
) {
    let mut batch = Vec::new();
    while let Some(first) = messages.recv().await {
        if messages.is_empty() && calls.any() {
            // Other calls are in flight, so more answers are probably on their way: tasks
            // that are ready run first (this one comes back once the worker has run them),
            // and the answers they finish share this write. A lone answer goes out at once.
            tokio::task::yield_now().await;
        }
        let written = if messages.is_empty() {
            write(&mut stdout, &first).await
        } else {
            batch.clear();
            batch.extend_from_slice(&first);
            while batch.len() < BATCH_BYTES
                && let Ok(next) = messages.try_recv()
            {
                batch.extend_from_slice(&next);
            }
            write(&mut stdout, &batch).await
        };
        if let Err(error) = written {
            tracing::debug!(%error, "stdout closed; the stdio face stops writing");
            return;
        }
    }
}

async fn write(stdout: &mut StdoutWriter, bytes: &[u8]) -> io::Result<()> {
    stdout.write_all(bytes).await?;
    stdout.flush().await
}

/// rmcp's side of [`Output`]. rmcp's framed writer encodes whole messages into its buffer
/// and hands the buffer over in one `poll_write`; this takes all of every write, so each
/// queued chunk is one or more whole messages and never interleaves with a direct answer
/// mid-message.
pub(super) struct RmcpWriter {
    queue: PollSender<Vec<u8>>,
}

impl AsyncWrite for RmcpWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if ready!(this.queue.poll_reserve(cx)).is_err() {
            return Poll::Ready(Err(gone()));
        }
        match this.queue.send_item(buf.to_vec()) {
            Ok(()) => Poll::Ready(Ok(buf.len())),
            Err(_) => Poll::Ready(Err(gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().queue.close();
        Poll::Ready(Ok(()))
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "stdout is closed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::WriteCounter;
    use tokio::io::AsyncReadExt;

    /// Messages from both producers come out whole and in the order each producer sent them.
    #[tokio::test]
    async fn messages_from_rmcp_and_direct_answers_come_out_whole() {
        let (theirs, mut ours) = tokio::io::duplex(1 << 20);
        let output = Output::start(Box::new(theirs), Arc::default());
        let mut rmcp = output.rmcp_writer();
        let direct = output.clone();
        let rmcp_side = tokio::spawn(async move {
            for i in 0..200 {
                let message = format!("{{\"rmcp\":{i}}}\n");
                rmcp.write_all(message.as_bytes()).await.unwrap();
            }
        });
        let direct_side = tokio::spawn(async move {
            for i in 0..200 {
                assert!(
                    direct
                        .send(format!("{{\"direct\":{i}}}\n").into_bytes())
                        .await
                );
            }
        });
        rmcp_side.await.unwrap();
        direct_side.await.unwrap();
        drop(output);
        let mut text = String::new();
        ours.read_to_string(&mut text).await.unwrap();
        let (mut rmcp_next, mut direct_next) = (0, 0);
        for line in text.lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(i) = value.get("rmcp") {
                assert_eq!(i, rmcp_next);
                rmcp_next += 1;
            } else {
                assert_eq!(value["direct"], direct_next);
                direct_next += 1;
            }
        }
        assert_eq!((rmcp_next, direct_next), (200, 200));
    }

    /// Answers finished in one pass of the worker share a write while calls are in flight
    /// (without the yield, the writer would run — and write — after each one: 40 writes).
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn answers_finished_together_share_one_write() {
        let writes = WriteCounter::default();
        let calls = Arc::new(Calls::default());
        let _in_flight = calls.start(&rmcp::model::RequestId::Number(1));
        let output = Output::start(Box::new(writes.clone()), calls);
        let producers = tokio::spawn(async move {
            // On the worker: the answers' tasks all wait in its queue until this one ends.
            let tasks: Vec<_> = (0..40)
                .map(|i| {
                    let output = output.clone();
                    tokio::spawn(async move { output.send(format!("{i}\n").into_bytes()).await })
                })
                .collect();
            tasks
        });
        for task in producers.await.unwrap() {
            assert!(task.await.unwrap());
        }
        let written = writes.writes_for(40).await;
        assert!(
            written <= 3,
            "{written} writes for 40 answers finished together"
        );
    }
}
