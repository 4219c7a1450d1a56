//! The one HTTP exchange every provider makes: POST a JSON body, read a JSON answer, map
//! failures to [`LlmError`]. Error bodies are shortened; headers (which carry keys) are
//! never logged.

use std::time::Duration;

use serde_json::Value;

use super::LlmError;

/// Longest error body kept in a message.
const MAX_ERROR_BODY: usize = 600;

/// A client with the provider's timeout (rustls, system roots).
pub(super) fn client(
    provider: &'static str,
    timeout: Duration,
) -> Result<reqwest::Client, LlmError> {
    // The process-wide TLS provider (ring), as for remote servers.
    crate::downstream::ensure_tls_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10).min(timeout))
        .build()
        .map_err(|e| LlmError::Config {
            provider,
            detail: format!("cannot create an HTTP client: {e}"),
        })
}

/// POSTs `body` to `url` with `headers`; the answer must be JSON.
pub(super) async fn post_json(
    client: &reqwest::Client,
    provider: &'static str,
    timeout: Duration,
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Result<Value, LlmError> {
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json");
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let started = std::time::Instant::now();
    let response = request.body(body).send().await.map_err(|e| {
        if e.is_timeout() {
            LlmError::Timeout {
                provider,
                timeout_s: timeout.as_secs(),
            }
        } else {
            LlmError::Connect {
                provider,
                url: url.to_owned(),
                detail: root_cause(&e),
            }
        }
    })?;
    let status = response.status();
    let text = response.text().await.map_err(|e| {
        if e.is_timeout() {
            LlmError::Timeout {
                provider,
                timeout_s: timeout.as_secs(),
            }
        } else {
            LlmError::Connect {
                provider,
                url: url.to_owned(),
                detail: root_cause(&e),
            }
        }
    })?;
    tracing::debug!(
        provider,
        status = status.as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        bytes = text.len(),
        "LLM answer"
    );
    if !status.is_success() {
        // Some APIs quote the key they refused; it must not reach a status page or a log
        // (`llm::build` registered every key with the redactor).
        let text = crate::security::redact::redact(&text);
        return Err(LlmError::Http {
            provider,
            status: status.as_u16(),
            body: super::preview(&text).chars().take(MAX_ERROR_BODY).collect(),
        });
    }
    serde_json::from_str(&text).map_err(|e| LlmError::Invalid {
        provider,
        detail: format!("not JSON ({e}): {}", super::preview(&text)),
    })
}

fn root_cause(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        message = format!("{message}: {inner}");
        source = inner.source();
    }
    message
}
