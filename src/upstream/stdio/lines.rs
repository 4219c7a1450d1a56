//! The stdio face's stdin: splits what the client sends into lines and gives each one to
//! the direct path or, when that path does not take it, to rmcp's line transport as the
//! very bytes the client sent.
//!
//! Lines longer than [`DIRECT_MAX_LINE`] are never looked at here: their bytes stream on to
//! rmcp as they arrive, so its own size limit and error handling apply and this reader's
//! memory stays bounded.

use std::io::{self, Cursor};

use futures::stream::{self, BoxStream};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::io::StreamReader;

use super::direct::Direct;
use super::streams::StdinReader;

/// Longest line the direct path considers (a bigger `tools/call` goes through rmcp).
pub(super) const DIRECT_MAX_LINE: usize = 1024 * 1024;

/// Chunks waiting for rmcp before the reader waits.
const RMCP_QUEUE: usize = 64;

/// What rmcp's transport reads: the lines the direct path left.
pub(super) type RmcpReader =
    StreamReader<BoxStream<'static, io::Result<Cursor<Vec<u8>>>>, Cursor<Vec<u8>>>;

/// A channel for the bytes rmcp should see, and rmcp's end of it.
pub(super) fn rmcp_input() -> (mpsc::Sender<Vec<u8>>, RmcpReader) {
    let (sender, receiver) = mpsc::channel::<Vec<u8>>(RMCP_QUEUE);
    let chunks = stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((Ok(Cursor::new(chunk)), receiver))
    });
    (sender, StreamReader::new(Box::pin(chunks)))
}

/// Reads stdin until it ends (or rmcp stops reading), handing each line on. Dropping
/// `to_rmcp` at the end is rmcp's end of input.
pub(super) async fn read(stdin: StdinReader, direct: Direct, to_rmcp: mpsc::Sender<Vec<u8>>) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdin);
    // A line that began in an earlier read.
    let mut line = Vec::new();
    // The rest of an over-long line streams to rmcp.
    let mut streaming = false;
    loop {
        let available = match reader.fill_buf().await {
            Ok([]) => break,
            Ok(available) => available,
            Err(error) => {
                tracing::debug!(%error, "stdin failed; the stdio session ends");
                break;
            }
        };
        let newline = available.iter().position(|&b| b == b'\n');
        let used = newline.map_or(available.len(), |i| i + 1);
        let chunk = &available[..used];
        let forward = if streaming {
            streaming = newline.is_none();
            Some(chunk.to_vec())
        } else if line.len() + used > DIRECT_MAX_LINE {
            streaming = newline.is_none();
            let mut bytes = std::mem::take(&mut line);
            bytes.extend_from_slice(chunk);
            Some(bytes)
        } else if newline.is_none() {
            line.extend_from_slice(chunk);
            None
        } else if line.is_empty() {
            // The whole line is in the buffer: looked at in place.
            (!direct.take(chunk).await).then(|| chunk.to_vec())
        } else {
            line.extend_from_slice(chunk);
            let whole = std::mem::take(&mut line);
            (!direct.take(&whole).await).then_some(whole)
        };
        reader.consume(used);
        if let Some(bytes) = forward
            && to_rmcp.send(bytes).await.is_err()
        {
            return;
        }
    }
    if !line.is_empty() {
        // An unterminated last line: rmcp decides what it is worth.
        let _ = to_rmcp.send(line).await;
    }
}
