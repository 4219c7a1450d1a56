//! Helpers shared by the crate's unit tests (compiled for tests only).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::AsyncWrite;

/// A writer that counts the writes it is given and the lines in them (what batching of
/// writes is judged by). Clones share the counts.
#[derive(Clone, Default)]
pub(crate) struct WriteCounter(Arc<Mutex<(usize, usize)>>);

impl WriteCounter {
    /// Waits (up to 10 s, then panics) until `lines` lines were written; the number of
    /// writes they took.
    pub async fn writes_for(&self, lines: usize) -> usize {
        let wait = async {
            loop {
                let (writes, written) = *self.0.lock().unwrap();
                if written >= lines {
                    assert_eq!(written, lines, "more lines than expected");
                    return writes;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .expect("the lines were never written")
    }
}

impl AsyncWrite for WriteCounter {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut counts = self.0.lock().unwrap();
        counts.0 += 1;
        counts.1 += buf.iter().filter(|&&b| b == b'\n').count();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
