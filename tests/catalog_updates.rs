//! The cached catalogue: downstream pagination is followed, and a server's
//! `tools/list_changed` refreshes the merged list and reaches every upstream session.

mod common;

use std::time::{Duration, Instant};

use common::{FIXTURE, Proxy, call, text};
use rmcp::ServiceExt;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downstream_pagination_is_followed() {
    let proxy = Proxy::start(
        json!({ "paged": { "command": FIXTURE, "args": ["--stdio", "--tools", "250", "--page-size", "40"] } }),
        &[],
    )
    .await;
    let (_, tools) = proxy.get("/tools/paged").await;
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t["original_name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        names.contains(&"tool_0000") && names.contains(&"tool_0249"),
        "{names:?}"
    );
    assert!(names.contains(&"echo"));
    let unique: std::collections::HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "no page was read twice");
    assert!(names.len() >= 250 + 29, "{} tools", names.len());
    let (status, result) = proxy
        .post("/tools/paged.tool_0249", r#"{"text":"last page"}"#)
        .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["content"][0]["text"], "last page");
    proxy.stop().await;
}

/// Counts `notifications/tools/list_changed`.
#[derive(Clone)]
struct Watcher(tokio::sync::mpsc::UnboundedSender<()>);

impl rmcp::ClientHandler for Watcher {
    async fn on_tool_list_changed(
        &self,
        _context: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        let _ = self.0.send(());
    }

    fn get_info(&self) -> rmcp::model::ClientConfig {
        common::client_info()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_servers_list_change_reaches_every_session() {
    let proxy = Proxy::start(
        json!({ "dyn": { "command": FIXTURE, "args": ["--stdio"] } }),
        &[],
    )
    .await;
    proxy.settled().await;
    let (tx_a, mut changed_a) = tokio::sync::mpsc::unbounded_channel();
    let (tx_b, mut changed_b) = tokio::sync::mpsc::unbounded_channel();
    let session_a = Watcher(tx_a)
        .serve(rmcp::transport::StreamableHttpClientTransport::from_uri(
            proxy.mcp_url(),
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let session_b = Watcher(tx_b)
        .serve(rmcp::transport::StreamableHttpClientTransport::from_uri(
            proxy.mcp_url(),
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let added = call(
        session_a.peer(),
        "dyn__add_tool",
        json!({ "name": "brand_new" }),
    )
    .await;
    assert!(added.is_ok_and(|r| r.is_error != Some(true)));
    for changed in [&mut changed_a, &mut changed_b] {
        let got = tokio::time::timeout(Duration::from_secs(5), changed.recv()).await;
        assert!(matches!(got, Ok(Some(()))), "a session missed list_changed");
    }
    let tools = session_b
        .peer()
        .list_all_tools()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(tools.iter().any(|t| t.name == "dyn__brand_new"));
    let echoed = call(
        session_b.peer(),
        "dyn__brand_new",
        json!({ "text": "fresh" }),
    )
    .await;
    assert_eq!(echoed.as_ref().map(text).ok().as_deref(), Some("fresh"));

    let removed = call(
        session_b.peer(),
        "dyn__remove_tool",
        json!({ "name": "brand_new" }),
    )
    .await;
    assert!(removed.is_ok_and(|r| r.is_error != Some(true)));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let tools = session_a
            .peer()
            .list_all_tools()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if !tools.iter().any(|t| t.name == "dyn__brand_new") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the removed tool is still listed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let gone = call(session_a.peer(), "dyn__brand_new", json!({ "text": "x" })).await;
    assert!(
        matches!(gone, Err(rmcp::ServiceError::McpError(ref e)) if e.code.0 == -32602),
        "{gone:?}"
    );
    session_a.cancel().await.ok();
    session_b.cancel().await.ok();
    proxy.stop().await;
}
