//! A request id for every HTTP request: taken from `X-Request-Id` when the client sent a
//! sane one, otherwise generated; echoed in the response header and in error bodies.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;

/// The id of the request being served, kept as the header value it is echoed as (so
/// echoing it, and handing it to the faces, copies nothing).
#[derive(Debug, Clone)]
pub struct RequestId(HeaderValue);

impl RequestId {
    pub fn as_str(&self) -> &str {
        // Only visible ASCII gets in (`accept`, `generate`), so this never falls back.
        self.0.to_str().unwrap_or("")
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(1);
/// `req-<pid in hex>-`, made once (`getpid` is a system call on every use).
static PREFIX: OnceLock<String> = OnceLock::new();

/// `req-<pid in hex>-<counter, at least 6 digits>`.
fn generate() -> RequestId {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let prefix = PREFIX.get_or_init(|| format!("req-{:x}-", std::process::id()));
    let mut id = [0u8; 64];
    let len = numbered(prefix, n, &mut id);
    // ASCII letters, digits and dashes: always a valid header value.
    match HeaderValue::from_bytes(&id[..len]) {
        Ok(value) => RequestId(value),
        Err(_) => RequestId(HeaderValue::from_static("req")),
    }
}

/// Writes `prefix` and `n` with at least 6 digits into `out` (no allocation); the length
/// written. 64 bytes hold any prefix `generate` makes (at most 21) and any `u64` (20).
fn numbered(prefix: &str, n: u64, out: &mut [u8; 64]) -> usize {
    use std::io::Write;
    let mut rest: &mut [u8] = out;
    // Only a too-small buffer fails, which cuts the id short but keeps it valid.
    let _ = write!(rest, "{prefix}{n:06}");
    64 - rest.len()
}

fn accept(header: &HeaderValue) -> Option<RequestId> {
    let text = header.to_str().ok()?;
    let sane = !text.is_empty()
        && text.len() <= 128
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    sane.then(|| RequestId(header.clone()))
}

/// The id of a request with these headers: its sane `X-Request-Id`, else a new one.
pub fn of(headers: &http::HeaderMap) -> RequestId {
    headers
        .get(REQUEST_ID)
        .and_then(accept)
        .unwrap_or_else(generate)
}

/// Sets the `X-Request-Id` header of `response` to `id`.
pub fn echo(response: &mut Response, id: &RequestId) {
    response.headers_mut().insert(REQUEST_ID, id.0.clone());
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(generate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_carry_the_pid_and_a_zero_padded_counter() {
        let prefix = format!("req-{:x}-", std::process::id());
        let id = generate();
        let counter = id.as_str().strip_prefix(&prefix).unwrap();
        assert!(
            counter.len() >= 6 && counter.bytes().all(|b| b.is_ascii_digit()),
            "{counter}"
        );
        let text = |n| {
            let mut out = [0u8; 64];
            let len = numbered("req-1f-", n, &mut out);
            String::from_utf8_lossy(&out[..len]).into_owned()
        };
        assert_eq!(text(42), "req-1f-000042");
        assert_eq!(text(0), "req-1f-000000");
        assert_eq!(text(1_234_567), "req-1f-1234567");
        assert_eq!(text(u64::MAX), "req-1f-18446744073709551615");
    }
}
