//! The direct path for `tools/call`, shared by the stdio face and `/mcp`: a request that is
//! exactly a plain call is answered without rmcp's message parsing and service loop.
//!
//! Through rmcp a call costs ~60,000 instructions besides the router's own work: its
//! untagged request enum tries one variant after another on every message, its service loop
//! spawns and tracks the request, and the server's result is decoded into rmcp's types only
//! to be encoded again. Here a message that is exactly a `tools/call` (`jsonrpc`, an integer
//! or string `id`, `method`, `params` with `name` and optional `arguments`, nothing else —
//! so no `_meta` and no progress token) is parsed once into what the router needs: its
//! arguments reach the server as the bytes the client wrote, and the server's result goes
//! back as the bytes the server sent (checked to have the shape of a tool result,
//! [`Router::call_tool_passthrough`]).
//!
//! The answers are rmcp's: the same router call, the same mapping of failures to an
//! `isError` result or a JSON-RPC error, server→client requests relayed to the session's
//! client while the call runs, and `notifications/cancelled` ([`Calls::cancel`]) cancelling
//! the call downstream with no answer sent. Each face decides which messages and sessions
//! may take this path; everything else goes to rmcp unchanged.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rmcp::model::{CallToolResult, ContentBlock, RequestId};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::handler::relay_during;
use crate::downstream::Reply;
use crate::router::{CallContext, Router, RouterError, UpstreamSession};

/// One session's direct calls in flight, by the client's request id. Whoever comes first
/// removes a call: its answer (which is then sent), the client's cancellation (which
/// suppresses the answer, as rmcp does), or the call being dropped (its HTTP client went
/// away).
#[derive(Debug, Default)]
pub(super) struct Calls {
    /// foldhash (seeded): two lookups per call; the ids are the session's own client's.
    in_flight: Mutex<InFlightMap>,
    /// Tells a call from a later one that reuses its id.
    next: AtomicU64,
}

type InFlightMap = HashMap<RequestId, (u64, CancellationToken), foldhash::fast::RandomState>;

/// A call recorded in [`Calls`]; dropping it unanswered forgets it.
pub(super) struct InFlight {
    calls: Arc<Calls>,
    id: RequestId,
    generation: u64,
    /// Cancelled if the client cancels the call.
    pub token: CancellationToken,
}

impl InFlight {
    /// The call finished: `true` if it is to be answered, `false` if the client cancelled it.
    pub fn finish(mut self) -> bool {
        let answered = self.forget();
        if !answered {
            tracing::debug!(id = %self.id, "not answering a call the client cancelled");
        }
        answered
    }

    fn forget(&mut self) -> bool {
        let generation = std::mem::replace(&mut self.generation, u64::MAX);
        generation != u64::MAX && self.calls.forget(&self.id, generation)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.forget();
    }
}

impl Calls {
    /// Records a call that starts.
    pub fn start(self: &Arc<Self>, id: &RequestId) -> InFlight {
        let token = CancellationToken::new();
        let generation = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id.clone(), (generation, token.clone()));
        InFlight {
            calls: self.clone(),
            id: id.clone(),
            generation,
            token,
        }
    }

    /// Removes call `id` if it is still this generation's; `true` if it was.
    fn forget(&self, id: &RequestId, generation: u64) -> bool {
        let mut calls = self.lock();
        if calls.get(id).is_some_and(|(g, _)| *g == generation) {
            calls.remove(id);
            return true;
        }
        false
    }

    /// Whether any call is in flight.
    pub fn any(&self) -> bool {
        !self.lock().is_empty()
    }

    /// Takes `message` if it is a `notifications/cancelled` for one of these calls.
    pub fn cancel(&self, message: &[u8]) -> bool {
        const METHOD: &[u8] = b"notifications/cancelled";
        if self.lock().is_empty() || !message.windows(METHOD.len()).any(|w| w == METHOD) {
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
        let Ok(cancelled) = serde_json::from_slice::<Cancelled<'_>>(message) else {
            return false;
        };
        if cancelled.method != "notifications/cancelled" {
            return false;
        }
        match self.lock().remove(&cancelled.params.request_id) {
            Some((_, token)) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InFlightMap> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A `tools/call` this path takes. The security guard, which reads every `POST /mcp` body
/// for its permission check, leaves a body it read as one in the request's extensions, so
/// the `/mcp` face does not parse it again.
#[derive(Debug, Clone)]
pub struct Call {
    pub id: RequestId,
    pub name: String,
    /// A JSON object as the client wrote it.
    pub arguments: Option<Box<RawValue>>,
}

/// `line` as a plain `tools/call`, or `None` for anything else: exactly one request, with no
/// field but `jsonrpc`, `id`, `method` and `params` (`name` and `arguments`), each once
/// (serde refuses a repeated field), so its one method is all it asks for.
pub fn parse_call(line: &[u8]) -> Option<Call> {
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
        #[serde(default, borrow)]
        arguments: Option<&'a RawValue>,
    }
    let request: Request<'_> = serde_json::from_slice(line).ok()?;
    if request.jsonrpc != "2.0" || request.method != "tools/call" {
        return None;
    }
    // An object, passed on as the client wrote it (`null` is no arguments).
    let arguments = request.params.arguments;
    if arguments.is_some_and(|a| !a.get().starts_with('{')) {
        return None;
    }
    Some(Call {
        id: request.id,
        name: request.params.name.into_owned(),
        arguments: arguments.map(RawValue::to_owned),
    })
}

/// Calls the tool, relaying what the server asks this client meanwhile.
pub(super) async fn run(
    router: &Arc<Router>,
    session: Arc<UpstreamSession>,
    name: &str,
    arguments: Option<Box<RawValue>>,
    cancel: CancellationToken,
) -> Result<Reply, RouterError> {
    let (events, events_rx) = mpsc::unbounded_channel();
    let session = Some(session);
    let context = CallContext {
        session: session.clone(),
        events: Some(events),
        cancel: Some(cancel),
        ..CallContext::default()
    };
    let call = router.call_tool_passthrough(name, arguments, context);
    // No progress token was given (a call with one goes through rmcp): progress is dropped.
    relay_during(router, &session, None, events_rx, call).await
}

/// The JSON-RPC answer to call `id` (one line, without its newline): the server's result as
/// it sent it, or a failure the way the rmcp path reports it.
pub(super) fn answer(id: &RequestId, outcome: Result<Reply, RouterError>) -> Vec<u8> {
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
    line.push(b'}');
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
        assert_eq!(plain.arguments.unwrap().get(), r#"{"text":"hi"}"#);
        let escaped = call(
            r#"{"params":{"name":"a\u005fb"},"method":"tools\/call","id":"x y","jsonrpc":"2.0"}"#,
        )
        .unwrap();
        assert_eq!(escaped.name, "a_b");
        assert_eq!(escaped.id, RequestId::String("x y".into()));
        assert!(escaped.arguments.is_none());
        let null = call(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":null}}"#,
        );
        assert!(null.is_some_and(|c| c.arguments.is_none()));
        for other in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","_meta":{"progressToken":1}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","task":{}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"},"extra":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":[1]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":"{}"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":}}}"#,
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
            b"{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"result\":{\"content\":[]}}"
        );
        let unknown = answer(
            &RequestId::Number(3),
            Err(RouterError::UnknownTool("t".into())),
        );
        let value: serde_json::Value = serde_json::from_slice(&unknown).unwrap();
        assert_eq!(value["id"], 3);
        assert_eq!(value["error"]["code"], -32602);
        assert_eq!(value["error"]["message"], "Unknown tool: t");
        assert!(!unknown.contains(&b'\n'));
    }

    #[test]
    fn a_cancellation_takes_its_own_call_only() {
        let calls = Arc::new(Calls::default());
        let cancel = |json: &str| calls.cancel(json.as_bytes());
        let note =
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"a"}}"#;
        assert!(!cancel(note), "nothing in flight");
        let (a_id, seven_id) = (RequestId::String("a".into()), RequestId::Number(7));
        let a = calls.start(&a_id);
        let seven = calls.start(&seven_id);
        assert!(!cancel(
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"b"}}"#
        ));
        assert!(!cancel(
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"requestId":"a","x":"notifications/cancelled"}}"#
        ));
        assert!(cancel(note));
        assert!(a.token.is_cancelled() && !seven.token.is_cancelled());
        assert!(!a.finish(), "no answer after a cancel");
        assert!(seven.finish());
        assert!(
            !cancel(
                r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}}"#
            ),
            "too late: answered already"
        );
        // A call dropped unanswered is forgotten, without touching a later call reusing its id.
        let first = calls.start(&seven_id);
        let second = calls.start(&seven_id);
        drop(first);
        assert!(second.finish());
        let dropped = calls.start(&seven_id);
        drop(dropped);
        assert!(calls.lock().is_empty());
    }
}
