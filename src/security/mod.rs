//! Security of the HTTP faces: one check ([`guard`]) that every request of the whole HTTP
//! app (REST, `/mcp`, `/sse` + `/message`, `/batch/*`) passes before its face, plus the
//! server loop with connection timeouts ([`serve`]) and log redaction ([`redact`]).
//!
//! For every request, in order: `Host` and `Origin` allow-lists (403) → CORS preflight →
//! the route table ([`routes`], 404/405 for anything not in it) → credentials (401) →
//! permission (403, or a JSON-RPC error inside MCP bodies) → rate limit (429) → body size and
//! read time (413/408) → the face. The faces and the router never see credentials: the
//! `Authorization` header is removed once checked, and the faces only get a [`Caller`]
//! (name and permissions). Nothing here logs a key or token.

mod error;
mod header_timer;
mod identity;
pub mod jsonrpc;
pub mod jwt;
mod origin;
mod rate_limit;
pub mod redact;
pub mod routes;
mod serve;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use crate::api::RequestId;
use crate::config::SecuritySettings;

pub use error::SecurityError;
pub use identity::{AuthError, Caller, ENV_KEY_NAME, KeyRing, Permissions};
pub use jsonrpc::FORBIDDEN_CODE;
pub use rate_limit::{RateLimits, RateStatus, Verdict};
pub use redact::RedactingStderr;
pub use routes::{Endpoint, Guard, MCP_METHODS, ROUTES, RateClass, Route, mcp_permission};
pub use serve::serve;

use origin::{Cors, HostList, OriginList};
use routes::Lookup;

/// Environment variables the security layer reads.
pub const ENV_API_KEY: &str = "API_KEY";
pub const ENV_JWT_SECRET: &str = "JWT_SECRET";
pub const ENV_CORS_ORIGINS: &str = "CORS_ORIGINS";

/// Keys shorter than this are reported as weak.
const WEAK_KEY_CHARS: usize = 16;
/// A `JWT_SECRET` shorter than this (bytes) is reported as weak.
const WEAK_SECRET_BYTES: usize = 32;
/// How often idle rate-limit state is dropped.
const HOUSEKEEPING: Duration = Duration::from_secs(60);

/// Everything the security layer decided at startup.
#[derive(Debug)]
pub struct Security {
    /// Whether credentials are required (on when configured, or when any key exists).
    pub auth: bool,
    keys: KeyRing,
    hosts: HostList,
    origins: OriginList,
    cors: Cors,
    limits: RateLimits,
    max_body_bytes: usize,
    body_timeout: Duration,
    /// `security.header_timeout`, for the server loop.
    pub header_timeout: Duration,
}

impl Security {
    /// Builds the layer from `security:` settings, the bind address and the environment
    /// (`API_KEY`, `JWT_SECRET`, `CORS_ORIGINS` via `env`). Returns warnings to log.
    pub fn new(
        settings: &SecuritySettings,
        bind_host: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> (Security, Vec<String>) {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let env_key = env(ENV_API_KEY);
        let jwt_secret = env(ENV_JWT_SECRET);
        let keys = KeyRing::new(
            &settings.api_keys,
            env_key.as_deref(),
            jwt_secret.as_deref(),
        );
        let auth = settings.enable_auth || !keys.is_empty();
        redact::register(
            settings
                .api_keys
                .iter()
                .map(|k| k.key.clone())
                .chain(env_key.clone())
                .chain(jwt_secret.clone()),
        );

        let mut warnings = Vec::new();
        let mut host_entries = settings.allowed_hosts.clone();
        let bind = bind_host.trim_start_matches('[').trim_end_matches(']');
        if !matches!(bind, "0.0.0.0" | "::") && !host_entries.iter().any(|h| h == bind) {
            host_entries.push(bind.to_owned());
        }
        let (hosts, bad_hosts) = HostList::hosts(&host_entries);
        let mut cors_entries = settings.cors_origins.clone();
        if let Some(list) = env(ENV_CORS_ORIGINS) {
            cors_entries.extend(
                list.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty()),
            );
        }
        let (cors_list, bad_cors) = OriginList::origins(&cors_entries);
        let mut origin_entries = settings.allowed_origins.clone();
        origin_entries.extend(cors_entries.iter().cloned());
        let (origins, bad_origins) = OriginList::origins(&origin_entries);
        for bad in bad_hosts.iter().chain(&bad_origins).chain(&bad_cors) {
            warnings.push(format!(
                "ignoring the allow-list entry '{bad}': not a host or origin"
            ));
        }

        if settings.enable_auth && keys.is_empty() {
            warnings.push(
                "security.enable_auth is true but no API key, API_KEY or JWT_SECRET is set: \
                 every protected request will be refused with 401"
                    .to_owned(),
            );
        }
        for entry in &settings.api_keys {
            if entry.key.chars().count() < WEAK_KEY_CHARS {
                warnings.push(format!(
                    "API key '{}' is shorter than {WEAK_KEY_CHARS} characters: use a long random key",
                    entry.name
                ));
            }
        }
        if env_key
            .as_ref()
            .is_some_and(|k| k.chars().count() < WEAK_KEY_CHARS)
        {
            warnings.push(format!(
                "API_KEY is shorter than {WEAK_KEY_CHARS} characters: use a long random key"
            ));
        }
        if jwt_secret
            .as_ref()
            .is_some_and(|s| s.len() < WEAK_SECRET_BYTES)
        {
            warnings.push(format!(
                "JWT_SECRET is shorter than {WEAK_SECRET_BYTES} bytes: tokens signed with it can be forged by brute force"
            ));
        }
        if !auth && !is_loopback(bind) {
            warnings.push(format!(
                "!!! listening on {bind_host} WITHOUT AUTHENTICATION: anyone who can reach this \
                 address can call every tool of every server. Set API_KEY, JWT_SECRET or \
                 security.api_keys, or bind 127.0.0.1 !!!"
            ));
        }

        let security = Security {
            auth,
            keys,
            hosts,
            origins,
            cors: Cors::new(cors_list),
            limits: RateLimits::new(&settings.rate_limits),
            max_body_bytes: settings.max_body_bytes,
            body_timeout: settings.body_timeout,
            header_timeout: settings.header_timeout,
        };
        (security, warnings)
    }

    /// One line for the startup log: what is on, no secrets.
    pub fn summary(&self) -> String {
        let auth = if self.auth {
            format!("authentication on ({})", self.keys.describe())
        } else {
            "authentication off".to_owned()
        };
        format!(
            "{auth}; CORS {}; body limit {} bytes",
            if self.cors.enabled() { "on" } else { "off" },
            self.max_body_bytes
        )
    }

    /// The largest request body, which rmcp must also apply to what `/mcp` reads itself
    /// (Host and Origin are the guard's alone, in front of every route).
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// Drops idle rate-limit state every minute until `stop`.
    pub fn spawn_housekeeping(self: &Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let security = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HOUSEKEEPING);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = stop.cancelled() => return,
                }
                match security.upgrade() {
                    Some(security) => security.limits.forget_idle(),
                    None => return,
                }
            }
        });
    }
}

/// Registers every secret the configuration holds for log redaction: API keys, `API_KEY`,
/// `JWT_SECRET`, and the header values of remote servers (usually their tokens). Called
/// before anything starts, so even the first log line is covered.
pub fn register_secrets(
    settings: &SecuritySettings,
    servers: &[crate::config::ServerEntry],
    env: &dyn Fn(&str) -> Option<String>,
) {
    use crate::config::TransportSpec;
    let headers = servers.iter().flat_map(|server| match &server.transport {
        TransportSpec::StreamableHttp { headers, .. } | TransportSpec::Sse { headers, .. } => {
            headers.values().cloned().collect::<Vec<_>>()
        }
        TransportSpec::Stdio { .. } => Vec::new(),
    });
    redact::register(
        settings
            .api_keys
            .iter()
            .map(|k| k.key.clone())
            .chain(env(ENV_API_KEY))
            .chain(env(ENV_JWT_SECRET))
            .chain(headers),
    );
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `ip` in dotted decimal, without the formatting machinery (once per request).
fn ipv4_text(ip: std::net::Ipv4Addr) -> String {
    let mut text = String::with_capacity(15);
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        if octet >= 100 {
            text.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            text.push(char::from(b'0' + octet / 10 % 10));
        }
        text.push(char::from(b'0' + octet % 10));
    }
    text
}

/// The client at the other end of one HTTP connection (made once per connection).
#[derive(Debug, Clone)]
pub struct Peer {
    /// What an unauthenticated client is named and rate-limited under ([`client_key`]).
    key: Arc<str>,
}

impl Peer {
    pub fn new(address: SocketAddr) -> Peer {
        Peer {
            key: client_key(address).into(),
        }
    }
}

/// The address rate limits count an unauthenticated client under: the IPv4 address, or the
/// IPv6 /64 network (one host usually owns a whole /64).
fn client_key(address: SocketAddr) -> String {
    match address.ip() {
        IpAddr::V4(ip) => ipv4_text(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => ipv4_text(v4),
            None => {
                let s = ip.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Runs every check on `request`, then `inner` with the request it may see (body read,
/// `Authorization` removed, [`Caller`] attached); refusals are answered here. `peer` is the
/// client (rate limits without authentication count per address) and
/// `request_id` the id error bodies carry. Called once per request by the HTTP front
/// ([`crate::app`]), in front of every face.
pub async fn guard<F, Fut>(
    security: &Security,
    peer: &Peer,
    request_id: &RequestId,
    request: Request,
    inner: F,
) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let (parts, body) = request.into_parts();
    let cors_origin = security
        .cors
        .enabled()
        .then(|| security.cors.origin_of(&parts.headers))
        .flatten();
    let mut response = match admit(security, peer, parts, body).await {
        Ok((request, rate)) => {
            let mut response = inner(request).await;
            if let Some(status) = rate {
                rate_headers(&mut response, status);
            }
            response
        }
        Err(Refused::Preflight) => match &cors_origin {
            Some(origin) => {
                let mut response = StatusCode::NO_CONTENT.into_response();
                security
                    .cors
                    .preflight_headers(origin.clone(), response.headers_mut());
                return response;
            }
            None => StatusCode::FORBIDDEN.into_response(),
        },
        Err(Refused::Error(error, rate)) => {
            let mut response = error.into_response(request_id);
            if let Some(status) = rate {
                rate_headers(&mut response, status);
            }
            response
        }
        Err(Refused::JsonRpc(response)) => *response,
    };
    if let Some(origin) = cors_origin {
        security
            .cors
            .response_headers(origin, response.headers_mut());
    }
    response
}

/// Why [`admit`] did not hand the request on.
enum Refused {
    /// A CORS preflight to answer.
    Preflight,
    Error(SecurityError, Option<RateStatus>),
    /// A ready JSON-RPC answer (a refused MCP request).
    JsonRpc(Box<Response>),
}

impl From<SecurityError> for Refused {
    fn from(error: SecurityError) -> Self {
        Refused::Error(error, None)
    }
}

/// Every check, in order; the request to pass on (body re-assembled, `Authorization`
/// removed, [`Caller`] attached) and the rate-limit state for the response headers.
async fn admit(
    security: &Security,
    peer: &Peer,
    mut parts: http::request::Parts,
    body: Body,
) -> Result<(Request, Option<RateStatus>), Refused> {
    security
        .hosts
        .allows(&parts.uri, &parts.headers)
        .map_err(SecurityError::HostNotAllowed)?;
    security
        .origins
        .allows(&parts.headers)
        .map_err(SecurityError::OriginNotAllowed)?;
    if security.cors.is_preflight(&parts.method, &parts.headers) {
        return Err(Refused::Preflight);
    }
    let route = match routes::lookup(&parts.method, parts.uri.path()) {
        Lookup::Found(route) => route,
        Lookup::WrongMethod(methods) => {
            let allowed: Vec<&str> = methods.iter().map(|m| m.as_str()).collect();
            return Err(SecurityError::MethodNotAllowed {
                method: parts.method.clone(),
                path: parts.uri.path().to_owned(),
                allowed: allowed.join(", "),
            }
            .into());
        }
        Lookup::NotFound => {
            return Err(SecurityError::NotFound {
                method: parts.method.clone(),
                path: parts.uri.path().chars().take(200).collect(),
            }
            .into());
        }
    };
    // Only refusals name the route.
    let what = || format!("{} {}", route.method, route.path);

    let address = &peer.key;
    let caller = if security.auth {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes);
        match security.keys.authenticate(presented, unix_now()) {
            Ok(caller) => caller,
            Err(_) if route.guard == Guard::Open => Caller::anonymous(address),
            Err(error) => {
                tracing::debug!(route = %what(), client = %address, %error, "refused: not authenticated");
                return Err(SecurityError::Unauthenticated(error).into());
            }
        }
    } else {
        Caller::unauthenticated(address)
    };
    // The faces and every downstream never see the credential.
    parts.headers.remove(header::AUTHORIZATION);

    if let Guard::Needs(permission) = route.guard
        && !caller.may(permission)
    {
        tracing::info!(route = %what(), caller = %caller.name, %permission, "refused: permission missing");
        return Err(SecurityError::Forbidden {
            what: what(),
            permission,
            caller: caller.name.to_string(),
        }
        .into());
    }

    let rate = match security.limits.check(route.class, &caller.limit_key) {
        Verdict::Unlimited => None,
        Verdict::Allowed(status) => Some(status),
        Verdict::Limited(status, wait) => {
            let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            tracing::info!(route = %what(), caller = %caller.name, class = route.class.as_str(), retry_after, "refused: rate limit");
            return Err(Refused::Error(
                SecurityError::RateLimited {
                    class: route.class.as_str(),
                    limit: status.limit,
                    period: status.period,
                    retry_after: retry_after.max(1),
                },
                Some(status),
            ));
        }
    };

    let bytes = read_body(security, &parts, body)
        .await
        .map_err(|e| Refused::Error(e, rate))?;
    if route.guard == Guard::JsonRpc {
        // A plain `tools/call` (one request, one method) is read once, here, for the `/mcp`
        // face too; anything else gets the full check of every message.
        let plain = (route.endpoint == Endpoint::McpPost)
            .then(|| crate::upstream::parse_plain_call(&bytes))
            .flatten()
            .filter(|_| caller.may(mcp_permission("tools/call")));
        match plain {
            Some(call) => {
                parts.extensions.insert(call);
            }
            None => check_json_rpc(route, &caller, &bytes)?,
        }
    }
    parts.extensions.insert(caller);
    Ok((Request::from_parts(parts, Body::from(bytes)), rate))
}

/// The permission check inside a JSON-RPC body.
fn check_json_rpc(route: &Route, caller: &Caller, bytes: &Bytes) -> Result<(), Refused> {
    let json = |status: StatusCode, value: serde_json::Value| {
        Refused::JsonRpc(Box::new((status, axum::Json(value)).into_response()))
    };
    match jsonrpc::check(bytes, caller) {
        jsonrpc::BodyCheck::Allowed => Ok(()),
        jsonrpc::BodyCheck::Unparsable => {
            Err(json(StatusCode::BAD_REQUEST, jsonrpc::parse_error()))
        }
        jsonrpc::BodyCheck::Refused {
            reply,
            answerable,
            first,
        } => {
            tracing::info!(route = %format_args!("{} {}", route.method, route.path), caller = %caller.name, method = %first.method, permission = %first.permission, "refused: permission missing");
            // Streamable HTTP answers a request in the POST's response, so a JSON-RPC error
            // reaches the caller as the method's result; legacy SSE answers on the stream,
            // so a refused POST /message is an HTTP error carrying the same JSON-RPC error.
            let status = if answerable && route.endpoint == Endpoint::McpPost {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            };
            Err(json(status, reply))
        }
    }
}

/// Reads the whole body, refusing more than `max_body_bytes` (413) or a body that takes
/// longer than `body_timeout` (408).
async fn read_body(
    security: &Security,
    parts: &http::request::Parts,
    body: Body,
) -> Result<Bytes, SecurityError> {
    let limit = security.max_body_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(SecurityError::BodyTooLarge { limit });
    }
    let collect = async {
        let mut stream = body.into_data_stream();
        let read = |chunk: Result<Bytes, axum::Error>| {
            chunk.map_err(|e| SecurityError::BodyRead(e.to_string()))
        };
        // A body that arrives in one chunk (most do) is passed on as it is, uncopied.
        let Some(first) = stream.next().await.map(read).transpose()? else {
            return Ok(Bytes::new());
        };
        if first.len() > limit {
            return Err(SecurityError::BodyTooLarge { limit });
        }
        let Some(second) = stream.next().await.map(read).transpose()? else {
            return Ok(first);
        };
        let mut buffer = Vec::with_capacity(declared.map_or(0, |n| n as usize));
        buffer.extend_from_slice(&first);
        let mut next = Some(second);
        while let Some(chunk) = next {
            if buffer.len() + chunk.len() > limit {
                return Err(SecurityError::BodyTooLarge { limit });
            }
            buffer.extend_from_slice(&chunk);
            next = stream.next().await.map(read).transpose()?;
        }
        Ok(Bytes::from(buffer))
    };
    tokio::time::timeout(security.body_timeout, collect)
        .await
        .map_err(|_| SecurityError::BodyTimeout(security.body_timeout))?
}

/// The rate-limit headers of every limited answer (names made once, not parsed per call).
const RATE_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const RATE_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const RATE_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

fn rate_headers(response: &mut Response, status: RateStatus) {
    let headers = response.headers_mut();
    headers.insert(RATE_LIMIT, HeaderValue::from(status.limit));
    headers.insert(RATE_REMAINING, HeaderValue::from(status.remaining));
    headers.insert(RATE_RESET, HeaderValue::from(status.reset));
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ApiKeyEntry, Permission};

    fn build(
        settings: &SecuritySettings,
        bind: &str,
        vars: &[(&str, &str)],
    ) -> (Security, Vec<String>) {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Security::new(settings, bind, &move |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn auth_turns_on_with_any_credential_and_warns_when_exposed() {
        let mut settings = SecuritySettings::default();
        let (security, warnings) = build(&settings, "127.0.0.1", &[]);
        assert!(!security.auth);
        assert!(warnings.is_empty(), "{warnings:?}");
        let (security, warnings) = build(&settings, "0.0.0.0", &[]);
        assert!(!security.auth);
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("WITHOUT AUTHENTICATION")),
            "{warnings:?}"
        );
        let (security, warnings) = build(
            &settings,
            "0.0.0.0",
            &[("API_KEY", "k-0123456789abcdef0123")],
        );
        assert!(security.auth);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(security.summary().contains("API_KEY"));
        assert!(!security.summary().contains("0123456789"));
        let (security, _) = build(
            &settings,
            "127.0.0.1",
            &[("JWT_SECRET", "x".repeat(40).as_str())],
        );
        assert!(security.auth);
        settings.api_keys.push(ApiKeyEntry {
            name: "short".into(),
            key: "abc".into(),
            permissions: vec![Permission::Read],
        });
        let (security, warnings) = build(&settings, "127.0.0.1", &[("JWT_SECRET", "tiny")]);
        assert!(security.auth);
        assert!(
            warnings.iter().any(|w| w.contains("'short'")),
            "{warnings:?}"
        );
        assert!(
            warnings.iter().any(|w| w.contains("JWT_SECRET is shorter")),
            "{warnings:?}"
        );
        settings.api_keys.clear();
        settings.enable_auth = true;
        let (security, warnings) = build(&settings, "127.0.0.1", &[]);
        assert!(security.auth);
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("every protected request")),
            "{warnings:?}"
        );
    }

    /// A plain `tools/call` is read once: the guard checks its permission and hands the
    /// parsed call to the face; other bodies get the full check and no parsed call; a caller
    /// without `execute` is refused either way.
    #[tokio::test]
    async fn a_plain_call_is_parsed_once_and_still_checked() {
        use crate::upstream::PlainCall;
        let seen = |body: &'static str, key: Option<&'static str>| {
            let mut settings = SecuritySettings::default();
            settings.api_keys.push(ApiKeyEntry {
                name: "reader".into(),
                key: "key-reader-0123456789".into(),
                permissions: vec![Permission::Read],
            });
            settings.enable_auth = key.is_some();
            if key.is_none() {
                settings.api_keys.clear();
            }
            let (security, _) = build(&settings, "127.0.0.1", &[]);
            async move {
                let mut request = Request::new(Body::from(body));
                *request.method_mut() = http::Method::POST;
                *request.uri_mut() = http::Uri::from_static("/mcp");
                let headers = request.headers_mut();
                headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:3000"));
                if let Some(key) = key {
                    headers.insert(header::AUTHORIZATION, HeaderValue::from_static(key));
                }
                let peer = Peer::new(SocketAddr::from(([127, 0, 0, 1], 5000)));
                let id = crate::api::request_id_of(&http::HeaderMap::new());
                let parsed = std::sync::Mutex::new(None);
                let response = guard(&security, &peer, &id, request, |request| {
                    let call = request.extensions().get::<PlainCall>().cloned();
                    *parsed.lock().unwrap_or_else(|p| p.into_inner()) = Some(call);
                    async { StatusCode::NO_CONTENT.into_response() }
                })
                .await;
                let parsed = parsed.into_inner().unwrap_or_else(|p| p.into_inner());
                (response.status(), parsed)
            }
        };
        let call = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"fx__echo","arguments":{"text":"hi"}}}"#;
        let (status, parsed) = seen(call, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let parsed = parsed.flatten().unwrap_or_else(|| panic!("no parsed call"));
        assert_eq!(parsed.name, "fx__echo");
        assert_eq!(
            parsed.arguments.map(|a| a.get().to_owned()).as_deref(),
            Some(r#"{"text":"hi"}"#)
        );
        // A batch, or a call with a field the direct path does not know: checked in full,
        // passed on, not parsed for the face.
        let batch = r#"[{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x"}}]"#;
        let extra =
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","_meta":{}}}"#;
        for body in [batch, extra] {
            let (status, parsed) = seen(body, None).await;
            assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
            assert!(matches!(parsed, Some(None)), "{body}");
        }
        // A repeated method is not a plain call: the full check sees both methods.
        let twice = r#"{"jsonrpc":"2.0","id":7,"method":"tools/list","method":"tools/call","params":{"name":"x"}}"#;
        let reader = Some("Bearer key-reader-0123456789");
        for body in [call, twice] {
            let (status, parsed) = seen(body, reader).await;
            assert_eq!(status, StatusCode::OK, "{body}: a JSON-RPC error in a 200");
            assert!(parsed.is_none(), "{body}: the face was reached");
        }
    }

    #[test]
    fn the_bind_address_is_an_allowed_host() {
        let settings = SecuritySettings::default();
        let (security, _) = build(
            &settings,
            "10.1.2.3",
            &[("API_KEY", "k-0123456789abcdef0123")],
        );
        let allows = |security: &Security, host: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(
                http::header::HOST,
                http::HeaderValue::from_str(host).unwrap_or_else(|e| panic!("{e}")),
            );
            security
                .hosts
                .allows(&http::Uri::from_static("/mcp"), &headers)
                .is_ok()
        };
        assert!(allows(&security, "10.1.2.3:3000"));
        assert!(allows(&security, "localhost:3000"));
        assert!(!allows(&security, "10.1.2.4:3000"));
        // Bound to every interface: only the loopback names, not the wildcard address.
        let (security, _) = build(&settings, "0.0.0.0", &[]);
        for host in ["localhost", "127.0.0.1:3000", "[::1]:3000"] {
            assert!(allows(&security, host), "{host}");
        }
        for host in ["0.0.0.0:3000", "evil.example", "10.1.2.3"] {
            assert!(!allows(&security, host), "{host}");
        }
    }

    #[test]
    fn unauthenticated_clients_are_counted_by_address() {
        let v4: SocketAddr = "192.0.2.7:5000".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(client_key(v4), "192.0.2.7");
        for ip in [
            "0.0.0.0",
            "255.255.255.255",
            "10.100.9.99",
            "127.0.0.1",
            "1.20.203.4",
        ] {
            let parsed: std::net::Ipv4Addr = ip.parse().unwrap();
            assert_eq!(ipv4_text(parsed), ip);
        }
        let v6: SocketAddr = "[2001:db8:1:2:3:4:5:6]:5000"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(client_key(v6), "2001:db8:1:2::/64");
        let mapped: SocketAddr = "[::ffff:192.0.2.7]:1"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(client_key(mapped), "192.0.2.7");
    }
}
