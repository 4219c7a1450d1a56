//! The legacy HTTP+SSE face (protocol 2024-11-05), written here because rmcp removed it:
//! `GET /sse` opens a session and an event stream whose first `endpoint` event names
//! `/message?sessionId=<id>`; the client POSTs JSON-RPC there (answered `202 Accepted`) and
//! every reply, notification and server→client request arrives as a `message` event. Behind
//! it is the same [`ProxyHandler`] as `/mcp` and stdio.
//!
//! A session ends when its event stream closes; its id is a random UUID, so one client
//! cannot post into another's session by guessing. As on `/mcp`, a plain `tools/list` of an
//! initialized session is answered from the catalogue's serialized listing without going
//! through rmcp (see [`super::mcp_face`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::{Stream, StreamExt};
use rmcp::ServiceExt;
use rmcp::model::{ClientJsonRpcMessage, ClientNotification, ServerJsonRpcMessage};
use rmcp::service::RoleServer;
use rmcp::transport::Transport;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::ProxyHandler;
use crate::router::Router;

/// Messages a session may have queued in either direction before senders wait.
const SESSION_QUEUE: usize = 256;

/// The open legacy sessions.
#[derive(Clone)]
struct SseFace {
    router: Arc<Router>,
    /// Session id → its queues.
    sessions: Arc<Mutex<HashMap<String, SessionQueues>>>,
    shutdown: CancellationToken,
}

/// Where a session's POSTed messages go, and its event stream's queue.
#[derive(Clone)]
struct SessionQueues {
    inbound: mpsc::Sender<ClientJsonRpcMessage>,
    /// Weak: the session's handler holds the stream open, not this table.
    outbound: mpsc::WeakSender<Outbound>,
    /// Set once the client has sent `notifications/initialized`.
    initialized: Arc<AtomicBool>,
}

/// One `message` event: from the handler, or an answer already serialized. (The queue
/// held messages by value before; boxing them would add an allocation to every one.)
#[allow(clippy::large_enum_variant)]
enum Outbound {
    Message(ServerJsonRpcMessage),
    Json(Vec<u8>),
}

/// `GET /sse` and `POST /message`.
pub fn routes(router: Arc<Router>, shutdown: CancellationToken) -> axum::Router {
    let face = SseFace {
        router,
        sessions: Arc::default(),
        shutdown,
    };
    axum::Router::new()
        .route("/sse", get(open))
        .route("/message", post(receive))
        .with_state(face)
}

/// A session's transport: what the handler sends goes to the event stream; what the
/// client POSTs comes from `inbound`.
struct SessionTransport {
    outbound: mpsc::Sender<Outbound>,
    inbound: mpsc::Receiver<ClientJsonRpcMessage>,
}

impl Transport<RoleServer> for SessionTransport {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let outbound = self.outbound.clone();
        async move {
            outbound.send(Outbound::Message(item)).await.map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the event stream closed")
            })
        }
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        self.inbound.recv().await
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.inbound.close();
        Ok(())
    }
}

/// Removes a session from the table when its event stream is dropped.
struct SessionGuard {
    id: String,
    sessions: Arc<Mutex<HashMap<String, SessionQueues>>>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
        tracing::debug!(session = %self.id, "legacy SSE session closed");
    }
}

/// `GET /sse`: opens a session.
async fn open(State(face): State<SseFace>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (inbound_tx, inbound_rx) = mpsc::channel(SESSION_QUEUE);
    let (outbound_tx, outbound_rx) = mpsc::channel(SESSION_QUEUE);
    face.sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(
            id.clone(),
            SessionQueues {
                inbound: inbound_tx,
                outbound: outbound_tx.downgrade(),
                initialized: Arc::default(),
            },
        );
    let transport = SessionTransport {
        outbound: outbound_tx,
        inbound: inbound_rx,
    };
    let handler = ProxyHandler::new(face.router.clone());
    let ct = face.shutdown.child_token();
    tokio::spawn(async move {
        match handler.serve_with_ct(transport, ct).await {
            Ok(service) => {
                let _ = service.waiting().await;
            }
            Err(error) => tracing::debug!(%error, "legacy SSE session ended before initializing"),
        }
    });
    tracing::debug!(session = %id, "legacy SSE session opened");
    let guard = SessionGuard {
        id: id.clone(),
        sessions: face.sessions.clone(),
    };
    let endpoint = futures::stream::once(async move {
        Ok(Event::default()
            .event("endpoint")
            .data(format!("/message?sessionId={id}")))
    });
    let messages = tokio_stream_from(outbound_rx).map(move |message| {
        let _keep = &guard;
        let data = match message {
            Outbound::Message(message) => serde_json::to_string(&message).unwrap_or_else(|e| {
                tracing::error!(%e, "could not serialise a message for a legacy SSE client");
                String::new()
            }),
            // Serialized by serde_json: valid UTF-8, no raw newlines.
            Outbound::Json(json) => String::from_utf8(json).unwrap_or_default(),
        };
        Ok(Event::default().event("message").data(data))
    });
    Sse::new(endpoint.chain(messages))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn tokio_stream_from<T: Send + 'static>(mut rx: mpsc::Receiver<T>) -> impl Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Query of `POST /message`.
#[derive(Debug, serde::Deserialize)]
struct MessageQuery {
    #[serde(rename = "sessionId")]
    session_id: String,
}

/// `POST /message?sessionId=…`: hands the message (or batch) to the session.
async fn receive(
    State(face): State<SseFace>,
    Query(query): Query<MessageQuery>,
    body: Bytes,
) -> Response {
    let queues = face
        .sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&query.session_id)
        .cloned();
    let Some(queues) = queues else {
        return (StatusCode::NOT_FOUND, "no such session").into_response();
    };
    if let Some(reply) = cached_list_reply(&face.router, &queues, &body) {
        let sent = match queues.outbound.upgrade() {
            Some(outbound) => outbound.send(Outbound::Json(reply)).await.is_ok(),
            None => false,
        };
        return if sent {
            StatusCode::ACCEPTED.into_response()
        } else {
            (StatusCode::NOT_FOUND, "the session has ended").into_response()
        };
    }
    let sender = queues.inbound;
    let messages: Vec<ClientJsonRpcMessage> =
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(serde_json::Value::Array(batch)) => {
                match batch.into_iter().map(serde_json::from_value).collect() {
                    Ok(messages) => messages,
                    Err(error) => return bad_request(error),
                }
            }
            Ok(single) => match serde_json::from_value(single) {
                Ok(message) => vec![message],
                Err(error) => return bad_request(error),
            },
            Err(error) => return bad_request(error),
        };
    for message in messages {
        if matches!(&message, ClientJsonRpcMessage::Notification(n)
            if matches!(n.notification, ClientNotification::InitializedNotification(_)))
        {
            queues.initialized.store(true, Ordering::Release);
        }
        if sender.send(message).await.is_err() {
            return (StatusCode::NOT_FOUND, "the session has ended").into_response();
        }
    }
    StatusCode::ACCEPTED.into_response()
}

/// The answer to `body` from the catalogue's serialized listing, if it is a plain
/// `tools/list` of an initialized session once every server has started.
fn cached_list_reply(router: &Router, queues: &SessionQueues, body: &[u8]) -> Option<Vec<u8>> {
    if body.len() > super::mcp_face::MAX_BODY
        || !queues.initialized.load(Ordering::Acquire)
        || !router.has_started()
    {
        return None;
    }
    let id = super::mcp_face::list_request_id(body)?;
    Some(super::mcp_face::list_reply(
        id,
        &router.catalog().tools_list_json()?,
    ))
}

fn bad_request(error: serde_json::Error) -> Response {
    (
        StatusCode::BAD_REQUEST,
        format!("the body is not a JSON-RPC message: {error}"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::RouterSettings;

    #[tokio::test]
    async fn only_a_plain_tools_list_of_an_initialized_session_is_answered_here() {
        let settings = RouterSettings::from_service(&crate::config::ServiceConfig::default());
        let router = Router::start(&[], settings);
        assert!(router.startup_complete().await);
        let (inbound, _inbound_rx) = mpsc::channel(1);
        let (outbound, _outbound_rx) = mpsc::channel(1);
        let queues = SessionQueues {
            inbound,
            outbound: outbound.downgrade(),
            initialized: Arc::default(),
        };
        let list = br#"{"jsonrpc":"2.0","id":"l","method":"tools/list","params":{}}"#;
        assert!(
            cached_list_reply(&router, &queues, list).is_none(),
            "before initialized"
        );

        queues.initialized.store(true, Ordering::Release);
        let reply = cached_list_reply(&router, &queues, list).map(|r| {
            serde_json::from_slice::<serde_json::Value>(&r).unwrap_or_else(|e| panic!("{e}"))
        });
        assert_eq!(
            reply,
            Some(serde_json::json!({"jsonrpc": "2.0", "id": "l", "result": {"tools": []}}))
        );
        let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#;
        assert!(cached_list_reply(&router, &queues, call).is_none());
        let with_meta =
            br#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"_meta":{"progressToken":1}}}"#;
        assert!(cached_list_reply(&router, &queues, with_meta).is_none());
    }
}
