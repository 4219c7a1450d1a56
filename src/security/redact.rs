//! Log redaction: every line mcp-orch logs passes through [`RedactingStderr`], which replaces
//! each registered secret (API keys, `API_KEY`, `JWT_SECRET`) and anything following
//! `Bearer ` (any token a client or a config header carries) with `[REDACTED]`.
//!
//! This is the net under the rule that code never logs a secret in the first place; it must
//! never be the only thing keeping one out of the logs.

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::{Arc, RwLock};

use tracing_subscriber::fmt::MakeWriter;

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// Shortest secret replaced literally (shorter ones would garble ordinary words; the
/// config check warns about such keys).
const MIN_SECRET_CHARS: usize = 6;

static SECRETS: RwLock<Vec<Arc<str>>> = RwLock::new(Vec::new());

/// Adds secrets to redact from now on.
pub fn register<I, S>(secrets: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut list = SECRETS.write().unwrap_or_else(|p| p.into_inner());
    for secret in secrets {
        let secret = secret.as_ref();
        if secret.chars().count() >= MIN_SECRET_CHARS && !list.iter().any(|s| &**s == secret) {
            list.push(secret.into());
        }
    }
    // Longest first, so a secret containing another is replaced whole.
    list.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `text` with every registered secret and bearer token replaced.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    {
        let list = SECRETS.read().unwrap_or_else(|p| p.into_inner());
        for secret in list.iter() {
            if out.contains(&**secret) {
                out = Cow::Owned(out.replace(&**secret, REDACTED));
            }
        }
    }
    if contains_bearer(&out) {
        out = Cow::Owned(redact_bearer(&out));
    }
    out
}

fn contains_bearer(text: &str) -> bool {
    text.to_ascii_lowercase().contains("bearer ")
}

/// Replaces the token after each `bearer ` (any case).
fn redact_bearer(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find("bearer ") {
        let start = at + found + "bearer ".len();
        out.push_str(&text[at..start]);
        let rest = &text[start..];
        let skipped = rest.len() - rest.trim_start_matches(' ').len();
        out.push_str(&rest[..skipped]);
        let token_len = rest[skipped..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '}' | ']' | '\\'))
            .unwrap_or(rest.len() - skipped);
        if token_len > 0 && &rest[skipped..skipped + token_len] != REDACTED {
            out.push_str(REDACTED);
        } else {
            out.push_str(&rest[skipped..skipped + token_len]);
        }
        at = start + skipped + token_len;
    }
    out.push_str(&text[at..]);
    out
}

/// A `tracing` writer to stderr that redacts each event before writing it.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactingStderr;

impl<'a> MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingWriter;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter
    }
}

/// Writes redacted text to stderr; the formatter hands it one whole event per write.
#[derive(Debug)]
pub struct RedactingWriter;

impl Write for RedactingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        io::stderr().lock().write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_bearer_tokens_are_replaced() {
        register(["unit-test-secret-4242", "short"]);
        assert_eq!(redact("key=unit-test-secret-4242 ok"), "key=[REDACTED] ok");
        assert_eq!(redact("short words stay"), "short words stay");
        assert_eq!(
            redact(r#"headers: {"authorization": "Bearer eyJ.a.b", "x": 1}"#),
            r#"headers: {"authorization": "Bearer [REDACTED]", "x": 1}"#
        );
        assert_eq!(redact("BEARER abc def"), "BEARER [REDACTED] def");
        assert_eq!(redact("nothing here"), "nothing here");
    }
}
