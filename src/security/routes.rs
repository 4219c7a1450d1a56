//! The route table: every HTTP route mcp-orch serves, with the permission it needs and the
//! rate-limit class it counts against. It is the only source of routes: the REST face builds
//! its router from it ([`crate::api::routes`]), the security layer answers 404 for any
//! request that matches no row (so a route added without a row is unreachable), and the
//! table-driven test in `tests/security_permissions.rs` walks every row.
//!
//! This file never looks at a request's credentials; it only classifies.

use http::Method;

use crate::config::Permission;

/// What a route does, so the face that owns it can attach its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /health`
    Health,
    /// `GET /tools`
    Tools,
    /// `GET /tools/{server}`
    ToolsOfServer,
    /// `POST /tools/{server}.{tool}`
    CallTool,
    /// `GET /servers`
    Servers,
    /// `POST /servers/reload`
    ReloadServers,
    /// `POST /servers/{name}/restart`
    RestartServer,
    /// `POST /servers/{name}/stop`
    StopServer,
    /// `POST /servers/{name}/start`
    StartServer,
    /// `GET /servers/{name}/logs`
    ServerLogs,
    /// `POST /mcp`: JSON-RPC messages (Streamable HTTP).
    McpPost,
    /// `GET /mcp`: the session's server-to-client stream.
    McpStream,
    /// `DELETE /mcp`: ends a session.
    McpDelete,
    /// `GET /sse`: opens a legacy HTTP+SSE session.
    SseOpen,
    /// `POST /message?sessionId=`: JSON-RPC messages of a legacy SSE session.
    SseMessage,
    /// `POST /batch/execute`
    BatchExecute,
    /// `DELETE /batch/cancel/{id}`
    BatchCancel,
    /// `GET /batch/status/{id}`
    BatchStatus,
    /// `GET /batch/result/{id}`
    BatchResult,
    /// `GET /batch/events/{id}`
    BatchEvents,
    /// `GET /batch/tasks`
    BatchTasks,
}

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Anyone, without credentials; the answer reveals details only to callers with `read`.
    Open,
    /// The caller must hold this permission.
    Needs(Permission),
    /// The body is JSON-RPC: each message's method decides (see [`super::mcp_permission`]).
    JsonRpc,
}

/// The endpoint classes rate limits are counted in (`security.rate_limits.<class>`).
///
/// Listings, status polling and MCP traffic are cheap and frequent, so they count as
/// `Calls`; the tight seed limits go to what is expensive or changes things.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateClass {
    /// Searching a server registry (reserved: no route yet).
    Discovery,
    /// Reload, start/stop/restart (later add/remove) servers.
    Management,
    /// Starting and cancelling batches.
    Batch,
    /// Tool calls, all MCP traffic, listings, logs, batch status, `/health`.
    Calls,
}

impl RateClass {
    /// Every class, in config order.
    pub const ALL: [RateClass; 4] = [
        RateClass::Discovery,
        RateClass::Management,
        RateClass::Batch,
        RateClass::Calls,
    ];

    /// The name used in `config.yaml` and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            RateClass::Discovery => "discovery",
            RateClass::Management => "management",
            RateClass::Batch => "batch",
            RateClass::Calls => "calls",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Route {
    pub method: Method,
    /// Literal segments and `{name}` placeholders (one non-empty segment each), axum syntax.
    pub path: &'static str,
    pub endpoint: Endpoint,
    pub guard: Guard,
    pub class: RateClass,
}

const fn row(
    method: Method,
    path: &'static str,
    endpoint: Endpoint,
    guard: Guard,
    class: RateClass,
) -> Route {
    Route {
        method,
        path,
        endpoint,
        guard,
        class,
    }
}

use Endpoint as E;
use Guard::{JsonRpc, Needs, Open};
use Permission::{Execute, Read, Write};
use RateClass::{Batch, Calls, Management};

/// Every HTTP route of mcp-orch. Rows whose endpoint no face serves yet answer 404 after
/// the security checks (they are reserved for the parts being built).
pub static ROUTES: &[Route] = &[
    row(Method::GET, "/health", E::Health, Open, Calls),
    row(Method::GET, "/tools", E::Tools, Needs(Read), Calls),
    row(
        Method::GET,
        "/tools/{target}",
        E::ToolsOfServer,
        Needs(Read),
        Calls,
    ),
    row(
        Method::POST,
        "/tools/{target}",
        E::CallTool,
        Needs(Execute),
        Calls,
    ),
    row(Method::GET, "/servers", E::Servers, Needs(Read), Calls),
    row(
        Method::POST,
        "/servers/reload",
        E::ReloadServers,
        Needs(Write),
        Management,
    ),
    row(
        Method::POST,
        "/servers/{name}/restart",
        E::RestartServer,
        Needs(Write),
        Management,
    ),
    row(
        Method::POST,
        "/servers/{name}/stop",
        E::StopServer,
        Needs(Write),
        Management,
    ),
    row(
        Method::POST,
        "/servers/{name}/start",
        E::StartServer,
        Needs(Write),
        Management,
    ),
    row(
        Method::GET,
        "/servers/{name}/logs",
        E::ServerLogs,
        Needs(Read),
        Calls,
    ),
    row(Method::POST, "/mcp", E::McpPost, JsonRpc, Calls),
    row(Method::GET, "/mcp", E::McpStream, Needs(Read), Calls),
    row(Method::DELETE, "/mcp", E::McpDelete, Needs(Read), Calls),
    row(Method::GET, "/sse", E::SseOpen, Needs(Read), Calls),
    row(Method::POST, "/message", E::SseMessage, JsonRpc, Calls),
    row(
        Method::POST,
        "/batch/execute",
        E::BatchExecute,
        Needs(Execute),
        Batch,
    ),
    row(
        Method::DELETE,
        "/batch/cancel/{id}",
        E::BatchCancel,
        Needs(Execute),
        Batch,
    ),
    row(
        Method::GET,
        "/batch/status/{id}",
        E::BatchStatus,
        Needs(Read),
        Calls,
    ),
    row(
        Method::GET,
        "/batch/result/{id}",
        E::BatchResult,
        Needs(Read),
        Calls,
    ),
    row(
        Method::GET,
        "/batch/events/{id}",
        E::BatchEvents,
        Needs(Read),
        Calls,
    ),
    row(
        Method::GET,
        "/batch/tasks",
        E::BatchTasks,
        Needs(Read),
        Calls,
    ),
];

/// How a request path relates to the table.
#[derive(Debug)]
pub enum Lookup {
    Found(&'static Route),
    /// The path exists, with other methods.
    WrongMethod(Vec<Method>),
    NotFound,
}

/// Finds the row for `method` and `path` (no query string).
pub fn lookup(method: &Method, path: &str) -> Lookup {
    let mut methods = Vec::new();
    for route in ROUTES {
        if path_matches(route.path, path) {
            if route.method == *method {
                return Lookup::Found(route);
            }
            methods.push(route.method.clone());
        }
    }
    if methods.is_empty() {
        Lookup::NotFound
    } else {
        Lookup::WrongMethod(methods)
    }
}

/// Whether `path` fits `pattern` (`{x}` matches exactly one non-empty segment).
fn path_matches(pattern: &str, path: &str) -> bool {
    let mut want = pattern.split('/');
    let mut got = path.split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') => {
                if g.is_empty() {
                    return false;
                }
            }
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

/// The permission an MCP method needs. The table is the documented one (README
/// "Security"); notifications need `read`; a method not listed needs `execute`, because a
/// method we do not know might act on a downstream server.
pub fn mcp_permission(method: &str) -> Permission {
    if method.starts_with("notifications/") {
        return Read;
    }
    MCP_METHODS
        .iter()
        .find(|(name, _)| *name == method)
        .map_or(Execute, |(_, permission)| *permission)
}

/// MCP methods a client may send, and what each needs.
pub static MCP_METHODS: &[(&str, Permission)] = &[
    ("initialize", Read),
    ("ping", Read),
    ("tools/list", Read),
    ("resources/list", Read),
    ("resources/templates/list", Read),
    ("prompts/list", Read),
    ("completion/complete", Read),
    ("logging/setLevel", Read),
    ("server/discover", Read),
    ("tasks/list", Read),
    ("tasks/get", Read),
    ("tools/call", Execute),
    ("prompts/get", Execute),
    ("resources/read", Execute),
    ("resources/subscribe", Execute),
    ("resources/unsubscribe", Execute),
    ("tasks/result", Execute),
    ("tasks/cancel", Execute),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_matches_placeholders_and_methods() {
        let found = |m: Method, p: &str| match lookup(&m, p) {
            Lookup::Found(route) => Some(route.endpoint),
            _ => None,
        };
        assert_eq!(found(Method::GET, "/tools"), Some(E::Tools));
        assert_eq!(found(Method::GET, "/tools/a.b"), Some(E::ToolsOfServer));
        assert_eq!(found(Method::POST, "/tools/a.b"), Some(E::CallTool));
        assert_eq!(
            found(Method::POST, "/servers/reload"),
            Some(E::ReloadServers)
        );
        assert_eq!(found(Method::POST, "/servers/x/stop"), Some(E::StopServer));
        assert_eq!(found(Method::GET, "/tools/"), None);
        assert_eq!(found(Method::GET, "/tools/a/b"), None);
        assert_eq!(found(Method::GET, "/mcp/"), None);
        assert!(matches!(
            lookup(&Method::PUT, "/tools"),
            Lookup::WrongMethod(m) if m == [Method::GET]
        ));
        assert!(matches!(lookup(&Method::GET, "/nope"), Lookup::NotFound));
    }

    #[test]
    fn rows_are_unique() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {} twice",
                    a.method,
                    a.path
                );
                assert_ne!(a.endpoint, b.endpoint);
            }
        }
    }

    #[test]
    fn mcp_methods() {
        assert_eq!(mcp_permission("tools/list"), Read);
        assert_eq!(mcp_permission("tools/call"), Execute);
        assert_eq!(mcp_permission("notifications/initialized"), Read);
        assert_eq!(mcp_permission("sampling/whatever"), Execute);
    }
}
