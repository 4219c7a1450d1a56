//! The legacy HTTP+SSE wire (protocol 2024-11-05), written here because rmcp removed it:
//! `GET <url>` opens an event stream whose first `endpoint` event names the URL to POST
//! messages to; every message from the server then arrives as a `message` event.
//!
//! Outbound messages are POSTed one at a time, in order (so `initialize` precedes
//! `notifications/initialized`); replies come back on the stream and are dispatched to the
//! [`Connection`] like any other wire's. The stream ending closes the connection.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::Url;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::connection::{Connection, ConnectionHooks, Outbound};
use super::error::with_causes;
use super::http::build_headers;
use super::stdio::parse_inbound;

/// How long to wait for the `endpoint` event after the stream opened.
const ENDPOINT_WAIT: Duration = Duration::from_secs(30);

/// A running SSE wire; [`SseHandle::stop`] closes the stream.
#[derive(Debug, Clone)]
pub struct SseHandle {
    stop: CancellationToken,
    done: CancellationToken,
}

impl SseHandle {
    /// Closes the stream and waits for the wire's task to end.
    pub async fn stop(&self) {
        self.stop.cancel();
        self.done.cancelled().await;
    }
}

/// Opens the event stream and wires it to a new [`Connection`]. Returns once the server
/// has announced its message endpoint.
pub async fn connect(
    server: Arc<str>,
    url: &str,
    headers: &BTreeMap<String, String>,
    hooks: ConnectionHooks,
) -> Result<(Arc<Connection>, SseHandle), String> {
    super::ensure_tls_provider();
    let base = Url::parse(url).map_err(|e| format!("invalid SSE URL: {e}"))?;
    let headers: reqwest::header::HeaderMap = build_headers(headers)?.into_iter().collect();
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| format!("cannot create an HTTP client: {e}"))?;
    let response = client
        .get(base.clone())
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .send()
        .await
        .map_err(|e| format!("cannot open the SSE stream: {}", with_causes(&e)))?;
    if !response.status().is_success() {
        return Err(format!(
            "the SSE stream was refused with HTTP {}",
            response.status()
        ));
    }
    let mut events = sse_stream::SseStream::from_bytes_stream(response.bytes_stream());
    let endpoint = tokio::time::timeout(ENDPOINT_WAIT, async {
        while let Some(event) = events.next().await {
            let event = event.map_err(|e| format!("the SSE stream broke: {e}"))?;
            if event.event.as_deref() == Some("endpoint") {
                let path = event.data.unwrap_or_default();
                return base.join(path.trim()).map_err(|e| {
                    format!("the server announced an invalid endpoint {path:?}: {e}")
                });
            }
        }
        Err("the SSE stream ended before the server announced its endpoint".to_owned())
    })
    .await
    .map_err(|_| "the server did not announce its message endpoint in time".to_owned())??;

    let (connection, outbound) = Connection::new(server, hooks);
    let handle = SseHandle {
        stop: CancellationToken::new(),
        done: CancellationToken::new(),
    };
    let reader = tokio::spawn(read_events(connection.clone(), events, handle.stop.clone()));
    tokio::spawn(post_messages(
        connection.clone(),
        client,
        endpoint,
        outbound,
        handle.clone(),
        reader,
    ));
    Ok((connection, handle))
}

/// Dispatches every `message` event until the stream ends or a stop is asked.
async fn read_events<S>(connection: Arc<Connection>, mut events: S, stop: CancellationToken)
where
    S: futures::Stream<Item = Result<sse_stream::Sse, sse_stream::Error>> + Unpin,
{
    let reason = loop {
        let event = tokio::select! {
            event = events.next() => event,
            _ = stop.cancelled() => break "stopped".to_owned(),
        };
        match event {
            None => break "the SSE stream ended".to_owned(),
            Some(Err(error)) => break format!("the SSE stream broke: {error}"),
            Some(Ok(event)) => {
                let is_message = event.event.as_deref().is_none_or(|e| e == "message");
                let Some(data) = event.data.filter(|_| is_message) else {
                    continue;
                };
                match parse_inbound(data.as_bytes()) {
                    Ok(inbound) => connection.dispatch(inbound),
                    Err(error) => tracing::warn!(server = %connection.server(), %error,
                        "ignoring an SSE event that is not a JSON-RPC message"),
                }
            }
        }
    };
    connection.close(reason);
}

/// POSTs outbound messages in order until the connection is closed or stopped.
async fn post_messages(
    connection: Arc<Connection>,
    client: reqwest::Client,
    endpoint: Url,
    mut outbound: mpsc::Receiver<Outbound>,
    handle: SseHandle,
    reader: tokio::task::JoinHandle<()>,
) {
    loop {
        let message = tokio::select! {
            message = outbound.recv() => message,
            _ = connection.closed() => None,
            _ = handle.stop.cancelled() => None,
        };
        let Some(message) = message else { break };
        let failed_id = message.request_id();
        let mut body = Vec::new();
        let body = match message.write_json(&mut body) {
            Ok(()) => body,
            Err(error) => {
                tracing::error!(server = %connection.server(), %error, "could not serialise a message");
                continue;
            }
        };
        let sent = client
            .post(endpoint.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let problem = match sent {
            Ok(response) if response.status().is_success() => None,
            Ok(response) => Some(format!("HTTP {}", response.status())),
            Err(error) => Some(with_causes(&error)),
        };
        if let (Some(problem), Some(id)) = (problem, failed_id) {
            connection.dispatch(super::connection::Inbound::SendFailed {
                id,
                reason: problem,
            });
        }
    }
    handle.stop.cancel();
    let _ = reader.await;
    connection.close("stopped");
    handle.done.cancel();
}
