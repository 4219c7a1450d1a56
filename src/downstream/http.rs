//! The Streamable HTTP wire: a remote MCP server reached with rmcp's client transport.
//!
//! rmcp's transport does the HTTP work (session id, SSE and JSON replies, the GET stream,
//! re-initializing on 404); this module only pumps messages between it and a
//! [`Connection`]. Each send is its own task because the transport ties an HTTP POST to the
//! send future (dropping it would abort the POST), and POSTs run concurrently.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, GetExtensions, RequestId, ServerJsonRpcMessage,
};
use rmcp::service::InboundStreamOrigin;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, Transport};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::connection::{Connection, ConnectionHooks, Inbound, Outbound, Reply};
use super::error::with_causes;

/// A running HTTP wire; [`HttpHandle::stop`] closes the session.
#[derive(Debug, Clone)]
pub struct HttpHandle {
    stop: CancellationToken,
    done: CancellationToken,
}

impl HttpHandle {
    /// Closes the transport (DELETE of the session where the server supports it) and waits.
    pub async fn stop(&self) {
        self.stop.cancel();
        self.done.cancelled().await;
    }
}

/// Validated headers for the transport; an invalid name or value is reported by name
/// (never with the value, which is often a secret).
pub fn build_headers(
    headers: &BTreeMap<String, String>,
) -> Result<HashMap<HeaderName, HeaderValue>, String> {
    let mut out = HashMap::with_capacity(headers.len());
    for (name, value) in headers {
        let header_name = HeaderName::try_from(name.as_str())
            .map_err(|_| format!("header name '{name}' is not a valid HTTP header name"))?;
        let mut header_value = HeaderValue::try_from(value.as_str()).map_err(|_| {
            format!("the value of header '{name}' is not a valid HTTP header value")
        })?;
        header_value.set_sensitive(true);
        out.insert(header_name, header_value);
    }
    Ok(out)
}

/// Creates the transport and a [`Connection`] over it. Nothing is sent until the caller
/// runs `initialize` on the connection.
pub fn connect(
    server: Arc<str>,
    url: &str,
    headers: &BTreeMap<String, String>,
    hooks: ConnectionHooks,
) -> Result<(Arc<Connection>, HttpHandle), String> {
    super::ensure_tls_provider();
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
    config.custom_headers = build_headers(headers)?;
    config.reinit_on_expired_session = true;
    let transport = StreamableHttpClientTransport::from_config(config);
    let (connection, outbound) = Connection::new(server, hooks);
    let handle = HttpHandle {
        stop: CancellationToken::new(),
        done: CancellationToken::new(),
    };
    tokio::spawn(pump(
        transport,
        connection.clone(),
        outbound,
        handle.clone(),
    ));
    Ok((connection, handle))
}

async fn pump<T>(
    mut transport: T,
    connection: Arc<Connection>,
    mut outbound: mpsc::Receiver<Outbound>,
    handle: HttpHandle,
) where
    T: Transport<rmcp::RoleClient> + 'static,
{
    let server = connection.server().clone();
    // rmcp's worker expects `notifications/initialized` right after the initialize answer,
    // before any other message: while it is in flight, nothing else is sent.
    let mut barrier: Option<tokio::task::JoinHandle<()>> = None;
    // The last send failure: when the transport then gives up, it explains why.
    let last_error: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let reason = loop {
        tokio::select! {
            _ = async { if let Some(b) = barrier.as_mut() { let _ = b.await; } }, if barrier.is_some() => {
                barrier = None;
            }
            message = outbound.recv(), if barrier.is_none() => {
                let Some(message) = message else { break "the connection was dropped".to_owned() };
                let failed_id = message.request_id();
                let message = match message.into_message() {
                    Ok(message) => message,
                    Err(error) => {
                        if let Some(id) = failed_id {
                            connection.dispatch(Inbound::SendFailed { id, reason: format!("the call's arguments are not a JSON object: {error}") });
                        }
                        continue;
                    }
                };
                let is_initialized = matches!(
                    &message,
                    ClientJsonRpcMessage::Notification(n)
                        if matches!(n.notification, ClientNotification::InitializedNotification(_))
                );
                let send = transport.send(message);
                let connection = connection.clone();
                let last_error = last_error.clone();
                let task = tokio::spawn(async move {
                    if let Err(error) = send.await {
                        let error = with_causes(&error);
                        *last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.clone());
                        tracing::debug!(server = %connection.server(), %error, "HTTP send failed");
                        if let Some(id) = failed_id {
                            connection.dispatch(Inbound::SendFailed { id, reason: error });
                        }
                    }
                });
                if is_initialized {
                    barrier = Some(task);
                }
            }
            message = transport.receive() => {
                match message {
                    Some(message) => connection.dispatch(from_transport(message)),
                    None => {
                        // Give a failing send a moment to record why.
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        let cause = last_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
                        break match cause {
                            Some(cause) => format!("the HTTP session ended: {cause}"),
                            None => "the HTTP session ended".to_owned(),
                        };
                    }
                }
            }
            _ = handle.stop.cancelled() => break "stopped".to_owned(),
        }
    };
    tracing::debug!(%server, %reason, "HTTP wire ending");
    connection.close(reason);
    if let Err(error) = transport.close().await {
        tracing::debug!(%server, %error, "closing the HTTP transport failed");
    }
    handle.done.cancel();
}

fn from_transport(message: ServerJsonRpcMessage) -> Inbound {
    match message {
        ServerJsonRpcMessage::Request(request) => {
            let origin: Option<RequestId> = match request.request.extensions().get() {
                Some(InboundStreamOrigin::OutboundRequest(id)) => Some(id.clone()),
                _ => None,
            };
            Inbound::Request {
                id: request.id,
                request: request.request,
                origin,
            }
        }
        ServerJsonRpcMessage::Response(response) => Inbound::Reply {
            id: response.id,
            result: Ok(Reply::Typed(Box::new(response.result))),
        },
        ServerJsonRpcMessage::Error(error) => Inbound::Reply {
            id: error.id.unwrap_or(RequestId::Number(-1)),
            result: Err(error.error),
        },
        ServerJsonRpcMessage::Notification(notification) => {
            Inbound::Notification(notification.notification)
        }
    }
}
