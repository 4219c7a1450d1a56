//! The permission table, end to end: every route of the route table and every MCP method ×
//! {no token, bad token, expired JWT, a token lacking the permission, the right token (an
//! API key and a JWT)} gives the status the README documents. The routes come from
//! `mcp_orch::security::ROUTES` itself, so a new route is covered (and must have a row) the
//! moment it exists.

mod common;
mod security_support;

use mcp_orch::config::Permission;
use mcp_orch::security::{Endpoint, FORBIDDEN_CODE, Guard, MCP_METHODS, ROUTES, Route};
use reqwest::Method;
use serde_json::{Value, json};

use security_support::{Answer, assert_no_secret_in_logs, jwt, key, key_without, send, start};

/// The credential cases every row is tried with.
#[derive(Debug, Clone, Copy)]
enum Case {
    NoToken,
    BadToken,
    ExpiredJwt,
    Lacking,
    RightKey,
    RightJwt,
}

const CASES: [Case; 6] = [
    Case::NoToken,
    Case::BadToken,
    Case::ExpiredJwt,
    Case::Lacking,
    Case::RightKey,
    Case::RightJwt,
];

/// A concrete path for a row (placeholders filled with names that exist where it matters).
fn sample_path(route: &Route) -> String {
    let target = if route.method == Method::POST {
        "fx.echo"
    } else {
        "fx"
    };
    route
        .path
        .replace("{target}", target)
        .replace("{name}", "fx")
        .replace("{id}", "no-such-task")
}

fn sample_body(route: &Route) -> Option<String> {
    match route.endpoint {
        Endpoint::CallTool => Some(json!({"text": "hi"}).to_string()),
        Endpoint::McpPost | Endpoint::SseMessage => {
            Some(json!({"jsonrpc": "2.0", "id": 7, "method": "ping"}).to_string())
        }
        Endpoint::BatchExecute => Some(json!({"request": "nothing"}).to_string()),
        _ if route.method == Method::POST => Some("{}".to_owned()),
        _ => None,
    }
}

/// The permission a row needs for the sample request.
fn needed(route: &Route) -> Option<&'static str> {
    match route.guard {
        Guard::Open => None,
        Guard::Needs(p) => Some(p.as_str()),
        Guard::JsonRpc => Some("read"), // the sample body is `ping`
    }
}

fn token(case: Case, permission: Option<&str>) -> Option<String> {
    let all = ["read", "write", "execute"];
    match case {
        Case::NoToken => None,
        Case::BadToken => Some("k-not-a-key-3c59dc048e8850243be8079a5c74d079".to_owned()),
        Case::ExpiredJwt => Some(jwt("expired", &all, -3600)),
        Case::Lacking => Some(key_without(permission.unwrap_or("read")).to_owned()),
        Case::RightKey => Some(key(&[permission.unwrap_or("read")]).to_owned()),
        Case::RightJwt => Some(jwt("ci", &[permission.unwrap_or("read")], 600)),
    }
}

fn assert_unauthenticated(what: &str, answer: &Answer, case: Case) {
    assert_eq!(answer.status, 401, "{what} {case:?}: {answer:?}");
    let challenge = answer.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer"),
        "{what} {case:?}: {challenge}"
    );
    if !matches!(case, Case::NoToken) {
        assert!(
            challenge.contains("invalid_token"),
            "{what} {case:?}: {challenge}"
        );
    }
    assert_eq!(answer.json()["error"]["code"], "UNAUTHORIZED", "{what}");
    assert!(answer.json()["error"]["request_id"].is_string(), "{what}");
}

/// Not refused by the security layer (the face may still say 400/404 about the request).
fn assert_admitted(what: &str, answer: &Answer) {
    assert!(
        ![401, 403, 405, 413, 429].contains(&answer.status),
        "{what}: refused: {answer:?}"
    );
    assert!(
        !answer.body.contains("PERMISSION_DENIED")
            && !answer.body.contains(&FORBIDDEN_CODE.to_string()),
        "{what}: {answer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_times_every_credential_gives_the_documented_status() {
    let proxy = start("").await;
    let mut tokens = Vec::new();
    let mut checked = 0;
    for route in ROUTES {
        let path = sample_path(route);
        let what = format!("{} {path}", route.method);
        let permission = needed(route);
        for case in CASES {
            let token = token(case, permission);
            tokens.extend(token.clone());
            let answer = send(
                &proxy,
                route.method.clone(),
                &path,
                token.as_deref(),
                sample_body(route),
                &[],
            )
            .await;
            checked += 1;
            match (route.guard, case) {
                // /health: open, details only for `read`.
                (Guard::Open, Case::RightKey | Case::RightJwt) => {
                    assert_eq!(answer.status, 200, "{what} {case:?}");
                    assert!(
                        answer.json()["version"].is_string(),
                        "{what} {case:?}: {answer:?}"
                    );
                }
                (Guard::Open, _) => {
                    assert_eq!(answer.status, 200, "{what} {case:?}");
                    assert_eq!(answer.json(), json!({"status": "ok"}), "{what} {case:?}");
                }
                (_, Case::NoToken | Case::BadToken | Case::ExpiredJwt) => {
                    assert_unauthenticated(&what, &answer, case);
                }
                (Guard::Needs(p), Case::Lacking) => {
                    assert_eq!(answer.status, 403, "{what}: {answer:?}");
                    let error = &answer.json()["error"];
                    assert_eq!(error["code"], "PERMISSION_DENIED", "{what}");
                    assert_eq!(error["details"]["permission"], p.as_str(), "{what}");
                    assert!(
                        error["message"]
                            .as_str()
                            .is_some_and(|m| m.contains(p.as_str())),
                        "{what}: {error}"
                    );
                }
                (Guard::JsonRpc, Case::Lacking) => {
                    // The JSON-RPC error for the refused `ping`: in the POST's answer on
                    // /mcp, as an HTTP 403 on the legacy /message.
                    let expected = if route.endpoint == Endpoint::McpPost {
                        200
                    } else {
                        403
                    };
                    assert_eq!(answer.status, expected, "{what}: {answer:?}");
                    let reply = answer.json();
                    assert_eq!(reply["id"], 7, "{what}: {reply}");
                    assert_eq!(reply["error"]["code"], FORBIDDEN_CODE, "{what}");
                    assert_eq!(reply["error"]["data"]["permission"], "read", "{what}");
                }
                (_, Case::RightKey | Case::RightJwt) => {
                    assert_admitted(&format!("{what} {case:?}"), &answer);
                    let served = matches!(
                        route.endpoint,
                        Endpoint::Tools
                            | Endpoint::ToolsOfServer
                            | Endpoint::CallTool
                            | Endpoint::Servers
                    );
                    if served {
                        assert_eq!(answer.status, 200, "{what} {case:?}: {answer:?}");
                    }
                    if route.endpoint == Endpoint::CallTool {
                        assert_eq!(answer.json()["content"][0]["text"], "hi");
                    }
                    assert!(answer.header("x-ratelimit-limit").is_some(), "{what}");
                }
            }
        }
    }
    assert_eq!(checked, ROUTES.len() * CASES.len());
    // Unknown routes are refused before anything else, with or without credentials.
    let unknown = send(
        &proxy,
        Method::GET,
        "/admin",
        Some(key(&["read"])),
        None,
        &[],
    )
    .await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert_eq!(unknown.json()["error"]["code"], "ROUTE_NOT_FOUND");
    let wrong = send(
        &proxy,
        Method::PUT,
        "/tools",
        Some(key(&["read"])),
        None,
        &[],
    )
    .await;
    assert_eq!(wrong.status, 405, "{wrong:?}");
    assert_eq!(wrong.header("allow").as_deref(), Some("GET"));
    assert_no_secret_in_logs(&proxy, &tokens);
    proxy.stop().await;
}

/// Opens an MCP session with the full key; returns its id.
async fn open_session(proxy: &common::Proxy) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "table", "version": "0"}}});
    let full = key(&["read", "write", "execute"]);
    let answer = send(
        proxy,
        Method::POST,
        "/mcp",
        Some(full),
        Some(init.to_string()),
        &[],
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let session = answer
        .header("mcp-session-id")
        .unwrap_or_else(|| panic!("no session id: {answer:?}"));
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let answer = send(
        proxy,
        Method::POST,
        "/mcp",
        Some(full),
        Some(note.to_string()),
        &[("mcp-session-id", &session)],
    )
    .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mcp_method_times_every_credential_gives_the_documented_answer() {
    let proxy = start("").await;
    let session = open_session(&proxy).await;
    let mut methods: Vec<(&str, Permission)> = MCP_METHODS.to_vec();
    methods.extend([
        ("notifications/initialized", Permission::Read),
        ("notifications/cancelled", Permission::Read),
        ("vendor/unknown-method", Permission::Execute),
    ]);
    let mut tokens = Vec::new();
    for (id, (method, permission)) in methods.iter().enumerate() {
        assert_eq!(
            mcp_orch::security::mcp_permission(method),
            *permission,
            "{method}"
        );
        let notification = method.starts_with("notifications/");
        let id = id as u64 + 100;
        let message = if notification {
            json!({"jsonrpc": "2.0", "method": method, "params": {"requestId": 1}})
        } else {
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": {}})
        };
        for case in CASES {
            let token = token(case, Some(permission.as_str()));
            tokens.extend(token.clone());
            let answer = send(
                &proxy,
                Method::POST,
                "/mcp",
                token.as_deref(),
                Some(message.to_string()),
                &[("mcp-session-id", &session)],
            )
            .await;
            let what = format!("{method} {case:?}");
            match case {
                Case::NoToken | Case::BadToken | Case::ExpiredJwt => {
                    assert_unauthenticated(&what, &answer, case);
                }
                Case::Lacking if notification => {
                    assert_eq!(answer.status, 403, "{what}: {answer:?}");
                    assert_eq!(answer.json()["error"]["code"], FORBIDDEN_CODE, "{what}");
                }
                Case::Lacking => {
                    assert_eq!(answer.status, 200, "{what}: {answer:?}");
                    let reply = answer.json();
                    assert_eq!(reply["id"], id, "{what}: {reply}");
                    assert_eq!(reply["error"]["code"], FORBIDDEN_CODE, "{what}");
                    let text = reply["error"]["message"].as_str().unwrap_or_default();
                    assert!(
                        text.contains(method) && text.contains(permission.as_str()),
                        "{what}: {text}"
                    );
                }
                Case::RightKey | Case::RightJwt => {
                    assert_admitted(&what, &answer);
                    if notification {
                        assert_eq!(answer.status, 202, "{what}: {answer:?}");
                    } else {
                        let replies = answer.messages();
                        assert!(
                            replies.iter().any(|m| m["id"] == id),
                            "{what}: no answer to the request: {answer:?}"
                        );
                    }
                }
            }
        }
    }
    assert_no_secret_in_logs(&proxy, &tokens);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_client_with_a_read_key_lists_but_cannot_call() {
    let mut proxy = start("").await;
    proxy.token = Some(key(&["read"]).to_owned());
    let client = proxy.mcp().await;
    let tools = client
        .list_all_tools()
        .await
        .unwrap_or_else(|e| panic!("tools/list: {e}"));
    assert!(tools.iter().any(|t| t.name == "fx__echo"));
    let error = common::call(&client, "fx__echo", json!({"text": "x"}))
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        error.contains("'execute'") && error.contains("reader"),
        "the client sees a clear JSON-RPC error: {error}"
    );
    client.cancel().await.ok();

    proxy.token = Some(key(&["read", "execute"]).to_owned());
    let client = proxy.mcp().await;
    let result = common::call(&client, "fx__echo", json!({"text": "x"}))
        .await
        .unwrap_or_else(|e| panic!("tools/call: {e}"));
    assert_eq!(common::text(&result), "x");
    client.cancel().await.ok();
    let _: Value = Value::Null;
    proxy.stop().await;
}
