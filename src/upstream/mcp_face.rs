//! The `/mcp` route: rmcp's Streamable HTTP service, with the plainest requests of a live
//! session answered in front of it.
//!
//! - `tools/list`: through rmcp a typed `ListToolsResult` is built from the catalogue,
//!   serialized again on every request and framed as an SSE stream by the session worker:
//!   with 1,000 tools that is ~5.7 M instructions and ~5 ms per request, 71 % of it
//!   re-serializing the same bytes. The catalogue is an immutable snapshot, so its listing is
//!   serialized once ([`crate::catalog::Catalog::tools_list_json`]) and answered here.
//! - `tools/call`: a plain call (see [`super::direct`]) of a session whose client declared
//!   none of sampling, elicitation or roots is forwarded by the direct path and answered
//!   here (parsed once, by the security guard's permission check, which hands it over in
//!   the request's extensions). Such a client refuses every server→client request anyway (the direct path still
//!   relays them so they are refused the same way); a client that may answer them keeps
//!   rmcp's path, where they travel on the stream of the call that caused them. A
//!   `notifications/cancelled` for a call in flight here cancels it (202, and the call's
//!   own POST gets an empty event stream, as rmcp ends a cancelled request's stream).
//!
//! Answers are one `application/json` reply (which the transport allows for any request).
//! Only a plain request takes this path: `POST`, JSON body of at most [`MAX_BODY`] bytes
//! that is exactly one such message with a number or string id and no `_meta`, the `Accept`
//! and `Content-Type` rmcp requires, a known protocol-version header before 2026-07-28 if
//! any, a session whose handler recorded its id in [`HttpSessions`] (for `tools/list` also
//! one rmcp still knows), and for `tools/list` a proxy past its first start. Anything else
//! (other methods, batches, unknown sessions, bad headers) goes to rmcp unchanged, so its
//! answers and error statuses stay the only ones. Authentication, rate limits, permissions
//! and Host/Origin checks run in front of this route either way.
//!
//! rmcp closes a session after five minutes without traffic; requests answered here are
//! invisible to it, so at least one request per session per [`KEEP_SEEN`] still goes
//! through rmcp (for calls counted from the message that told the handler its id; a
//! session's first listing always goes there), timed per session in [`HttpSessions`].

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use http::{HeaderMap, Method, Request, StatusCode, header};
use rmcp::model::ProtocolVersion;
use rmcp::transport::StreamableHttpService;
use rmcp::transport::streamable_http_server::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::ProxyHandler;
use super::direct::{Call, answer, run};
use super::http_sessions::HttpSessions;
use crate::router::Router;

/// Largest body the direct path reads (a `tools/list` request is well under 200 bytes; a
/// call with bigger arguments goes to rmcp).
pub const MAX_BODY: usize = 64 * 1024;

/// How often a session's request still goes through rmcp, which keeps the session alive
/// there (rmcp's idle limit is 5 minutes).
pub const KEEP_SEEN: Duration = Duration::from_secs(60);

/// The headers the direct path reads (named once: a `&str` name is parsed on every lookup).
const SESSION_ID: header::HeaderName = header::HeaderName::from_static("mcp-session-id");
const PROTOCOL_VERSION: header::HeaderName =
    header::HeaderName::from_static("mcp-protocol-version");

/// The `/mcp` service.
pub struct McpFace {
    rmcp: Arc<StreamableHttpService<ProxyHandler, LocalSessionManager>>,
    sessions: Arc<LocalSessionManager>,
    /// The sessions whose id their handler has seen, for the direct path.
    directory: Arc<HttpSessions>,
    router: Arc<Router>,
}

impl McpFace {
    pub fn new(
        rmcp: StreamableHttpService<ProxyHandler, LocalSessionManager>,
        sessions: Arc<LocalSessionManager>,
        directory: Arc<HttpSessions>,
        router: Arc<Router>,
    ) -> Self {
        McpFace {
            rmcp: Arc::new(rmcp),
            sessions,
            directory,
            router,
        }
    }

    /// Answers one HTTP request on `/mcp`.
    pub async fn handle(&self, request: Request<Body>) -> Response {
        if !is_candidate(request.method(), request.headers()) {
            return self.to_rmcp(request).await;
        }
        let (mut parts, body) = request.into_parts();
        let body = match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(body) => body,
            Err(error) => return bad_request(&format!("cannot read the request body: {error}")),
        };
        // The security guard in front of every face reads each body for its permission
        // check and leaves a plain call parsed here; a body it left nothing for is not one.
        if let Some(call) = parts.extensions.remove::<Call>()
            && let Some(response) = self.answer_call(&parts.headers, call).await
        {
            return response;
        }
        if let Some(response) = self.answer_list(&parts.headers, &body).await {
            return response;
        }
        if let Some(response) = self.take_cancel(&parts.headers, &body) {
            return response;
        }
        self.to_rmcp(Request::from_parts(parts, Body::from(body)))
            .await
    }

    /// rmcp's answer. Its future is boxed: it is several kilobytes, and held inline it
    /// would be copied with every request's future, direct ones included.
    async fn to_rmcp(&self, request: Request<Body>) -> Response {
        Box::pin(self.rmcp.handle(request)).await.map(Body::new)
    }

    /// The reply to `body` if it is a `tools/list` this path may answer.
    async fn answer_list(&self, headers: &HeaderMap, body: &Bytes) -> Option<Response> {
        let id = list_request_id(body)?;
        if !self.router.has_started() {
            return None;
        }
        let session = session_id(headers)?;
        let entry = self.directory.get(session)?;
        let known = self
            .sessions
            .has_session(&session.to_owned().into())
            .await
            .unwrap_or(false);
        if !known || entry.list_seen.due(KEEP_SEEN) {
            return None;
        }
        let reply = list_reply(id, &self.router.catalog().tools_list_json()?);
        Some(json_response(reply))
    }

    /// The reply to a plain `tools/call` if this path may forward it (`None`: rmcp's turn).
    async fn answer_call(&self, headers: &HeaderMap, call: Call) -> Option<Response> {
        let id = session_id(headers)?;
        let entry = self.directory.get(id)?;
        if entry.session.may_answer_server_requests() || entry.calls_seen.due(KEEP_SEEN) {
            return None;
        }
        let in_flight = entry.calls.start(&call.id);
        // Dropped (the client went away) → forgotten here, cancelled downstream.
        let outcome = Box::pin(run(
            &self.router,
            entry.session.clone(),
            &call.name,
            call.arguments,
            in_flight.token.clone(),
        ))
        .await;
        if !in_flight.finish() {
            return Some(cancelled_response());
        }
        Some(json_response(answer(&call.id, outcome)))
    }

    /// 202 if `body` is a `notifications/cancelled` for a call in flight on this path.
    fn take_cancel(&self, headers: &HeaderMap, body: &Bytes) -> Option<Response> {
        let entry = self.directory.get(session_id(headers)?)?;
        if !entry.calls.cancel(body) {
            return None;
        }
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::ACCEPTED;
        Some(response)
    }
}

/// Whether a request may be for the direct path, judged on headers alone (a session
/// id, a small JSON body, the `Accept` and protocol version rmcp wants); `false` sends it
/// to rmcp without reading its body here.
fn is_candidate(method: &Method, headers: &HeaderMap) -> bool {
    let small_body = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|length| length > 0 && length <= MAX_BODY);
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let essence = v.split(';').next().unwrap_or_default().trim();
            essence.eq_ignore_ascii_case("application/json")
        });
    let version_ok = match headers.get(PROTOCOL_VERSION) {
        None => true,
        // The listing has the shape of the versions mcp-orch negotiates (before
        // 2026-07-28, whose results carry `resultType` and caching hints).
        Some(version) => version.to_str().is_ok_and(|version| {
            version < ProtocolVersion::V_2026_07_28.as_str()
                && ProtocolVersion::KNOWN_VERSIONS
                    .iter()
                    .any(|known| known.as_str() == version)
        }),
    };
    method == Method::POST
        && small_body
        && json_body
        && version_ok
        && session_id(headers).is_some()
        && accepts_json_and_sse(headers)
}

/// The non-empty `Mcp-Session-Id` header.
fn session_id(headers: &HeaderMap) -> Option<&str> {
    let session = headers.get(SESSION_ID)?.to_str().ok()?;
    (!session.is_empty()).then_some(session)
}

/// `Accept` names both media types plainly (any parameter, such as a q-value, sends the
/// request to rmcp, which weighs them).
fn accepts_json_and_sse(headers: &HeaderMap) -> bool {
    let (mut json, mut sse) = (false, false);
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else {
            return false;
        };
        for entry in value.split(',').map(str::trim) {
            if entry.contains(';') {
                return false;
            }
            json |= entry.eq_ignore_ascii_case("application/json");
            sse |= entry.eq_ignore_ascii_case("text/event-stream");
        }
    }
    json && sse
}

/// The id of `body` if it is exactly one plain `tools/list` request (no `_meta`, a string
/// or integer id). Shared with the legacy SSE face.
pub(super) fn list_request_id(body: &[u8]) -> Option<&RawValue> {
    // Most bodies are calls: no parse for those.
    const METHOD: &[u8] = b"tools/list";
    if !body.windows(METHOD.len()).any(|w| w == METHOD) {
        return None;
    }
    #[derive(Deserialize)]
    struct ListRequest<'a> {
        jsonrpc: &'a str,
        #[serde(borrow)]
        id: &'a RawValue,
        method: &'a str,
        #[serde(default, borrow)]
        params: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct ListParams {
        #[serde(rename = "_meta")]
        meta: Option<IgnoredAny>,
    }
    let request: ListRequest<'_> = serde_json::from_slice(body).ok()?;
    if request.jsonrpc != "2.0" || request.method != "tools/list" {
        return None;
    }
    let id = request.id.get();
    // rmcp's ids are strings or 64-bit integers; anything else is its to refuse.
    if !id.starts_with('"') && id.parse::<i64>().is_err() {
        return None;
    }
    if let Some(params) = request.params
        && params.get() != "null"
    {
        let params: ListParams = serde_json::from_str(params.get()).ok()?;
        if params.meta.is_some() {
            return None;
        }
    }
    Some(request.id)
}

/// The JSON-RPC response to the `tools/list` request `id`, from a serialized listing.
pub(super) fn list_reply(id: &RawValue, listing: &[u8]) -> Vec<u8> {
    let mut reply = Vec::with_capacity(listing.len() + id.get().len() + 40);
    reply.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    reply.extend_from_slice(id.get().as_bytes());
    reply.extend_from_slice(br#","result":"#);
    reply.extend_from_slice(listing);
    reply.push(b'}');
    reply
}

fn json_response(body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// What the POST of a call the client cancelled gets: an event stream that ends without a
/// message, as rmcp ends a cancelled request's stream.
fn cancelled_response() -> Response {
    let mut response = Response::new(Body::empty());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/event-stream"),
    );
    response
}

fn bad_request(message: &str) -> Response {
    let mut response = Response::new(Body::from(format!("Bad Request: {message}")));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    const PLAIN: &[(&str, &str)] = &[
        ("content-length", "58"),
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", "2025-06-18"),
        ("mcp-session-id", "abc"),
    ];

    #[test]
    fn only_plain_session_posts_are_candidates() {
        assert!(is_candidate(&Method::POST, &headers(PLAIN)));
        assert_eq!(session_id(&headers(PLAIN)), Some("abc"));
        assert!(!is_candidate(&Method::GET, &headers(PLAIN)));
        for (name, bad) in [
            ("content-length", "100000"),
            ("content-length", "70000"),
            ("content-type", "text/plain"),
            ("accept", "application/json"),
            ("accept", "application/json;q=0, text/event-stream"),
            ("mcp-protocol-version", "1999-01-01"),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-session-id", ""),
        ] {
            let mut map = headers(PLAIN);
            map.insert(name, bad.parse().unwrap());
            assert!(!is_candidate(&Method::POST, &map), "{name}: {bad}");
        }
        for missing in ["mcp-session-id", "content-length", "content-type", "accept"] {
            let mut map = headers(PLAIN);
            map.remove(missing);
            assert!(!is_candidate(&Method::POST, &map), "without {missing}");
        }
        let mut no_version = headers(PLAIN);
        no_version.remove("mcp-protocol-version");
        assert!(is_candidate(&Method::POST, &no_version));
    }

    #[test]
    fn only_plain_tools_list_requests_are_answered() {
        let id = |body: &str| list_request_id(body.as_bytes()).map(|id| id.get().to_owned());
        assert_eq!(
            id(r#"{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{}}"#).as_deref(),
            Some("7")
        );
        assert_eq!(
            id(r#"{"jsonrpc":"2.0","id":"a b","method":"tools/list"}"#).as_deref(),
            Some(r#""a b""#)
        );
        assert_eq!(
            id(r#"{"jsonrpc":"2.0","id":-3,"method":"tools/list","params":null}"#).as_deref(),
            Some("-3")
        );
        assert_eq!(
            id(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"x"}}"#)
                .as_deref(),
            Some("1")
        );
        for other in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
            r#"{"jsonrpc":"2.0","method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":1.5,"method":"tools/list"}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"tools/list"}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"progressToken":1}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list""#,
        ] {
            assert_eq!(id(other), None, "{other}");
        }
    }
}
