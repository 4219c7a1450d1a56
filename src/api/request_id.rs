//! A request id for every HTTP request: taken from `X-Request-Id` when the client sent a
//! sane one, otherwise generated; echoed in the response header and in error bodies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;

/// The id of the request being served.
#[derive(Debug, Clone)]
pub struct RequestId(Arc<str>);

impl RequestId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(1);
/// `req-<pid in hex>-`, made once (`getpid` is a system call on every use).
static PREFIX: OnceLock<String> = OnceLock::new();

/// `req-<pid in hex>-<counter, at least 6 digits>`.
fn generate() -> RequestId {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let prefix = PREFIX.get_or_init(|| format!("req-{:x}-", std::process::id()));
    RequestId(numbered(prefix, n).into())
}

/// `prefix` and `n` with at least 6 digits.
fn numbered(prefix: &str, n: u64) -> String {
    let digits = n.to_string();
    let mut id = String::with_capacity(prefix.len() + digits.len().max(6));
    id.push_str(prefix);
    id.extend(std::iter::repeat_n(
        '0',
        6usize.saturating_sub(digits.len()),
    ));
    id.push_str(&digits);
    id
}

fn accept(header: &HeaderValue) -> Option<RequestId> {
    let text = header.to_str().ok()?;
    let sane = !text.is_empty()
        && text.len() <= 128
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    sane.then(|| RequestId(text.into()))
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
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
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
        assert_eq!(numbered("req-1f-", 42), "req-1f-000042");
        assert_eq!(numbered("req-1f-", 1_234_567), "req-1f-1234567");
    }
}
