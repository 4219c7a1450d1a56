//! A bounded buffer of a child's stderr lines, with the time each arrived.
//!
//! Children write diagnostics to stderr; a pipe nobody reads fills up and blocks the child,
//! so every child's stderr is always drained into one of these. Old lines are dropped when
//! either the line cap or the byte cap is reached.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

/// Lines a follower may lag behind before it skips some.
const FOLLOW_QUEUE: usize = 1024;

/// Longest single line kept; the rest of a longer line is cut.
pub const MAX_LINE_BYTES: usize = 8 * 1024;

/// One captured line.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub at: SystemTime,
    pub line: String,
}

/// The ring buffer. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct StderrLog {
    inner: Mutex<Ring>,
    max_lines: usize,
    max_bytes: usize,
}

#[derive(Debug, Default)]
struct Ring {
    lines: VecDeque<LogLine>,
    bytes: usize,
    /// New lines for followers (`GET /servers/{name}/logs?follow=true`); a follower that
    /// falls behind misses lines rather than holding memory. Made by the first follower:
    /// its queue is [`FOLLOW_QUEUE`] slots allocated up front, ~80 KiB per server.
    follow: Option<tokio::sync::broadcast::Sender<LogLine>>,
}

impl StderrLog {
    /// A buffer holding at most `max_lines` lines and `max_bytes` bytes of text.
    pub fn new(max_lines: usize, max_bytes: usize) -> Self {
        StderrLog {
            inner: Mutex::new(Ring::default()),
            max_lines: max_lines.max(1),
            max_bytes: max_bytes.max(MAX_LINE_BYTES),
        }
    }

    /// Appends a line (cut to [`MAX_LINE_BYTES`]), dropping the oldest as needed.
    pub fn push(&self, mut line: String) {
        if line.len() > MAX_LINE_BYTES {
            let mut cut = MAX_LINE_BYTES;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
        }
        let entry = LogLine {
            at: SystemTime::now(),
            line,
        };
        // Sent under the lock, so `tail_and_follow` sees each line exactly once.
        let mut ring = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(follow) = &ring.follow
            && follow.receiver_count() > 0
        {
            let _ = follow.send(entry.clone());
        }
        ring.bytes += entry.line.len();
        ring.lines.push_back(entry);
        while ring.lines.len() > self.max_lines || ring.bytes > self.max_bytes {
            match ring.lines.pop_front() {
                Some(old) => ring.bytes -= old.line.len(),
                None => break,
            }
        }
    }

    /// The last `n` lines, oldest first.
    pub fn tail(&self, n: usize) -> Vec<LogLine> {
        let ring = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let skip = ring.lines.len().saturating_sub(n);
        ring.lines.iter().skip(skip).cloned().collect()
    }

    /// The last `n` lines and a receiver for every line after them (no gap, no overlap).
    pub fn tail_and_follow(
        &self,
        n: usize,
    ) -> (Vec<LogLine>, tokio::sync::broadcast::Receiver<LogLine>) {
        let mut ring = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // Subscribing under the lock: a line pushed after this is in the receiver, one
        // pushed before is in the ring.
        let receiver = ring
            .follow
            .get_or_insert_with(|| tokio::sync::broadcast::channel(FOLLOW_QUEUE).0)
            .subscribe();
        let skip = ring.lines.len().saturating_sub(n);
        (ring.lines.iter().skip(skip).cloned().collect(), receiver)
    }

    /// The last line, if any (used to explain why a server failed).
    pub fn last_line(&self) -> Option<String> {
        let ring = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        ring.lines.back().map(|l| l.line.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_lines_within_the_line_cap() {
        let log = StderrLog::new(3, 1 << 20);
        for i in 0..10 {
            log.push(format!("line {i}"));
        }
        let lines: Vec<String> = log.tail(10).into_iter().map(|l| l.line).collect();
        assert_eq!(lines, ["line 7", "line 8", "line 9"]);
        assert_eq!(log.tail(1)[0].line, "line 9");
        assert_eq!(log.last_line().as_deref(), Some("line 9"));
    }

    #[test]
    fn respects_the_byte_cap_and_cuts_long_lines() {
        let log = StderrLog::new(1000, MAX_LINE_BYTES);
        log.push("x".repeat(MAX_LINE_BYTES * 3));
        assert_eq!(log.tail(5)[0].line.len(), MAX_LINE_BYTES);
        log.push("y".into());
        let lines = log.tail(5);
        assert_eq!(lines.len(), 1, "the byte cap evicts the big line");
        assert_eq!(lines[0].line, "y");
    }

    #[test]
    fn cuts_on_a_char_boundary() {
        let log = StderrLog::new(10, 1 << 20);
        log.push("é".repeat(MAX_LINE_BYTES));
        let line = &log.tail(1)[0].line;
        assert!(line.len() <= MAX_LINE_BYTES);
        assert!(line.chars().all(|c| c == 'é'));
    }
}
