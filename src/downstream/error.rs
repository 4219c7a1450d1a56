//! The one error type of the downstream layer. Every message names the server.

use std::time::Duration;

use rmcp::model::ErrorData;

/// Why a request to a downstream server did not produce a result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DownstreamError {
    /// The server is not connected (still starting, failed, stopped, or disabled).
    #[error("server '{server}' is not available: {reason}")]
    Unavailable { server: String, reason: String },
    /// The connection ended while the request was in flight.
    #[error("server '{server}' closed the connection: {reason}")]
    Closed { server: String, reason: String },
    /// No answer within the time allowed.
    #[error("server '{server}' did not answer within {}", humanize(*timeout))]
    Timeout { server: String, timeout: Duration },
    /// The caller cancelled the request.
    #[error("request to server '{server}' was cancelled")]
    Cancelled { server: String },
    /// The request could not be delivered (connection refused, HTTP error on the POST).
    #[error("server '{server}' could not be reached: {reason}")]
    Unreachable { server: String, reason: String },
    /// The server answered with a JSON-RPC error; passed through to the caller as is.
    #[error("server '{server}' returned error {}: {}", error.code.0, error.message)]
    Rpc { server: String, error: ErrorData },
    /// The server answered with something that is not what the method returns.
    #[error("server '{server}' sent an invalid {what}: {detail}")]
    Protocol {
        server: String,
        what: &'static str,
        detail: String,
    },
    /// Starting or connecting failed.
    #[error("server '{server}' could not be started: {reason}")]
    Start { server: String, reason: String },
}

/// `1.5s`, `200ms`, `30s`: for messages.
pub fn humanize(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        format!("{millis}ms")
    } else if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

/// An error with its whole `source()` chain, e.g. `error sending request: tls handshake
/// failed: InvalidContentType` — HTTP clients put the useful part deep in the chain.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
