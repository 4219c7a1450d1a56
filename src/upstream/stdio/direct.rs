//! The stdio face's direct path: plain `tools/call` and `tools/list` requests of the
//! initialized session, answered without rmcp's message parsing and service loop.
//!
//! Through rmcp a call costs ~60,000 instructions before and after the router's own work:
//! its untagged request enum tries one variant after another on every line, its service loop
//! spawns and tracks the request, and the server's result is decoded into rmcp's types only
//! to be encoded again. Here a line that is exactly a `tools/call` (`jsonrpc`, an integer or
//! string `id`, `method`, `params` with `name` and optional `arguments`, nothing else) is
//! parsed once into what the router needs, and the server's result goes back as the bytes
//! the server sent (checked to have the shape of a tool result). A `tools/list` is answered
//! from the catalogue's serialized listing, as on `/mcp`.
//!
//! The answers are rmcp's: the same router call, the same mapping of failures to an
//! `isError` result or a JSON-RPC error, server→client requests (sampling, elicitation,
//! roots) relayed to this client while the call runs, `notifications/cancelled` cancelling
//! the call downstream and suppressing its answer. Anything else — a `_meta` (progress
//! tokens), unknown fields, other methods, a client that has not initialized — is not taken
//! and goes to rmcp unchanged.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, RequestId};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::output::Output;
use crate::downstream::{CallEvent, Reply};
use crate::router::{CallContext, Router, RouterError, UpstreamSession};
use crate::upstream::handler::ask_client;
use crate::upstream::mcp_face::{list_reply, list_request_id};

/// The direct path of one stdio session.
pub(super) struct Direct {
    router: Arc<Router>,
    /// The session's id, known before the client initializes.
    session_id: u64,
    /// The session, once the client has initialized.
    session: OnceLock<Arc<UpstreamSession>>,
    output: Output,
    /// Calls in flight by the client's request id; removed by whoever comes first, the
    /// answer (which is then sent) or the client's cancellation (which suppresses it).
    calls: Arc<Mutex<HashMap<RequestId, CancellationToken>>>,
}

impl Direct {
    pub fn new(router: Arc<Router>, session_id: u64, output: Output) -> Direct {
        Direct {
            router,
            session_id,
            session: OnceLock::new(),
            output,
            calls: Arc::default(),
        }
    }

    /// Handles `line` if it is for this path; `false` means rmcp gets it.
    pub async fn take(&self, line: &[u8]) -> bool {
        let Some(session) = self.session() else {
            return false;
        };
        if let Some(call) = parse_call(line) {
            self.start(session, call);
            return true;
        }
        if let Some(id) = list_request_id(line)
            && self.router.has_started()
            && let Some(listing) = self.router.catalog().tools_list_json()
        {
            let mut reply = list_reply(id, &listing);
            reply.push(b'\n');
            self.output.send(reply).await;
            return true;
        }
        self.cancel(line)
    }

    fn session(&self) -> Option<Arc<UpstreamSession>> {
        if let Some(session) = self.session.get() {
            return Some(session.clone());
        }
        let session = self.router.sessions().get(self.session_id)?;
        Some(self.session.get_or_init(|| session).clone())
    }

    /// Runs one call in its own task; its answer is queued for stdout unless the client
    /// cancelled it first.
    fn start(&self, session: Arc<UpstreamSession>, call: Call) {
        let cancel = CancellationToken::new();
        lock(&self.calls).insert(call.id.clone(), cancel.clone());
        let router = self.router.clone();
        let output = self.output.clone();
        let calls = self.calls.clone();
        tokio::spawn(async move {
            // Boxed: the task then holds a pointer, not the whole forwarding state machine,
            // which spawning would copy several times.
            let outcome = Box::pin(run(&router, session, &call.name, call.arguments, cancel)).await;
            if lock(&calls).remove(&call.id).is_none() {
                tracing::debug!(id = %call.id, "not answering a call the client cancelled");
                return;
            }
            output.send(answer(&call.id, outcome)).await;
        });
    }

    /// Takes a `notifications/cancelled` for a call of this path.
    fn cancel(&self, line: &[u8]) -> bool {
        const METHOD: &[u8] = b"notifications/cancelled";
        if lock(&self.calls).is_empty() || !line.windows(METHOD.len()).any(|w| w == METHOD) {
            return false;
        }
        #[derive(Deserialize)]
        struct Cancelled<'a> {
            #[serde(borrow)]
            method: Cow<'a, str>,
            params: CancelledParams,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct CancelledParams {
            request_id: RequestId,
        }
        let Ok(cancelled) = serde_json::from_slice::<Cancelled<'_>>(line) else {
            return false;
        };
        if cancelled.method != "notifications/cancelled" {
            return false;
        }
        match lock(&self.calls).remove(&cancelled.params.request_id) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }
}

/// A `tools/call` this path takes.
#[derive(Debug)]
struct Call {
    id: RequestId,
    name: String,
    arguments: Option<JsonObject>,
}

/// `line` as a plain `tools/call`, or `None` for anything else.
fn parse_call(line: &[u8]) -> Option<Call> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Request<'a> {
        #[serde(borrow)]
        jsonrpc: Cow<'a, str>,
        id: RequestId,
        #[serde(borrow)]
        method: Cow<'a, str>,
        #[serde(borrow)]
        params: Params<'a>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Params<'a> {
        #[serde(borrow)]
        name: Cow<'a, str>,
        #[serde(default)]
        arguments: Option<JsonObject>,
    }
    let request: Request<'_> = serde_json::from_slice(line).ok()?;
    if request.jsonrpc != "2.0" || request.method != "tools/call" {
        return None;
    }
    Some(Call {
        id: request.id,
        name: request.params.name.into_owned(),
        arguments: request.params.arguments,
    })
}

/// Calls the tool, relaying what the server asks this client meanwhile.
async fn run(
    router: &Arc<Router>,
    session: Arc<UpstreamSession>,
    name: &str,
    arguments: Option<JsonObject>,
    cancel: CancellationToken,
) -> Result<Reply, RouterError> {
    let (events, mut events_rx) = mpsc::unbounded_channel();
    let context = CallContext {
        session: Some(session.clone()),
        events: Some(events),
        cancel: Some(cancel),
        ..CallContext::default()
    };
    let call = router.call_tool_passthrough(name, arguments, context);
    tokio::pin!(call);
    let mut asks = FuturesUnordered::new();
    loop {
        tokio::select! {
            biased;
            Some(event) = events_rx.recv() => {
                // No progress token was given (that goes through rmcp): progress is dropped.
                if let CallEvent::ServerRequest { server, request, respond } = event {
                    asks.push(ask_client(router.clone(), Some(session.clone()), server, request, respond));
                }
            }
            Some(()) = asks.next(), if !asks.is_empty() => {}
            outcome = &mut call => return outcome,
        }
    }
}

/// The JSON-RPC answer to call `id`, as one line: the server's result as it sent it, or a
/// failure the way the rmcp path reports it.
fn answer(id: &RequestId, outcome: Result<Reply, RouterError>) -> Vec<u8> {
    let result_len = match &outcome {
        Ok(Reply::Raw(raw)) => raw.get().len(),
        _ => 256,
    };
    let mut line = Vec::with_capacity(result_len + 64);
    line.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    write_json(&mut line, id);
    match outcome {
        // A raw result is one line of the server's stdout: it holds no newline.
        Ok(Reply::Raw(raw)) => {
            line.extend_from_slice(br#","result":"#);
            line.extend_from_slice(raw.get().as_bytes());
        }
        Ok(Reply::Typed(result)) => {
            line.extend_from_slice(br#","result":"#);
            write_json(&mut line, &result);
        }
        Err(error) if error.is_tool_result_error() => {
            let result = CallToolResult::error(vec![ContentBlock::text(error.to_string())]);
            line.extend_from_slice(br#","result":"#);
            write_json(&mut line, &result);
        }
        Err(error) => {
            line.extend_from_slice(br#","error":"#);
            write_json(&mut line, &error.to_jsonrpc());
        }
    }
    line.extend_from_slice(b"}\n");
    line
}

/// Serializes rmcp's own types (which always serialize) into `line`.
fn write_json<T: serde::Serialize>(line: &mut Vec<u8>, value: &T) {
    if let Err(error) = serde_json::to_writer(&mut *line, value) {
        // Not reachable for rmcp's types; keep the line valid JSON regardless.
        tracing::error!(%error, "could not serialize an answer");
        line.extend_from_slice(b"null");
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_tool_calls_are_taken() {
        let call = |line: &str| parse_call(line.as_bytes());
        let plain = call(
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"fx__echo","arguments":{"text":"hi"}}}"#,
        )
        .unwrap();
        assert_eq!(plain.id, RequestId::Number(7));
        assert_eq!(plain.name, "fx__echo");
        assert_eq!(plain.arguments.unwrap()["text"], "hi");
        let escaped = call(
            r#"{"params":{"name":"a\u005fb"},"method":"tools\/call","id":"x y","jsonrpc":"2.0"}"#,
        )
        .unwrap();
        assert_eq!(escaped.name, "a_b");
        assert_eq!(escaped.id, RequestId::String("x y".into()));
        assert!(escaped.arguments.is_none());
        for other in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","_meta":{"progressToken":1}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","task":{}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"},"extra":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":[1]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","name":"u"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"name":"t"}}"#,
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"t"}}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"t"}}"#,
            r#"{"jsonrpc":"2.0","id":1.5,"method":"tools/call","params":{"name":"t"}}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"t"}}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}]"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            "\u{feff}{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"t\"}}",
        ] {
            assert!(call(other).is_none(), "{other}");
        }
    }

    #[test]
    fn answers_are_one_line_of_json_rpc() {
        let raw = serde_json::value::RawValue::from_string(r#"{"content":[]}"#.to_owned());
        let ok = answer(&RequestId::String("a".into()), Ok(Reply::Raw(raw.unwrap())));
        assert_eq!(
            ok,
            b"{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"result\":{\"content\":[]}}\n"
        );
        let unknown = answer(
            &RequestId::Number(3),
            Err(RouterError::UnknownTool("t".into())),
        );
        let value: serde_json::Value = serde_json::from_slice(&unknown).unwrap();
        assert_eq!(value["id"], 3);
        assert_eq!(value["error"]["code"], -32602);
        assert_eq!(value["error"]["message"], "Unknown tool: t");
        assert!(unknown.ends_with(b"}\n") && !unknown[..unknown.len() - 1].contains(&b'\n'));
    }
}
