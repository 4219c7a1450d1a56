//! A request id for every HTTP request: taken from `X-Request-Id` when the client sent a
//! sane one, otherwise generated; echoed in the response header and in error bodies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use axum::extract::{FromRequestParts, Request};
use axum::http::HeaderValue;
use axum::http::request::Parts;
use axum::middleware::Next;
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
/// The process id, read once (`getpid` is a system call on every use).
static PID: OnceLock<u32> = OnceLock::new();

fn generate() -> RequestId {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let boot = *PID.get_or_init(std::process::id);
    RequestId(format!("req-{boot:x}-{n:06}").into())
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

/// Middleware: attaches a [`RequestId`] to the request and the `X-Request-Id` response header.
pub async fn assign(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(accept)
        .unwrap_or_else(generate);
    request.extensions_mut().insert(id.clone());
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

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
