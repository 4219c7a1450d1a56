//! What servers send outside a reply reaches exactly the sessions it belongs to: log
//! messages by each session's level, resource updates to subscribers (one shared downstream
//! subscription for many sessions), mcp-orch's own events; plus colliding resource URIs and
//! merged instructions.

#![allow(deprecated)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{FIXTURE, Proxy, call, client_info};
use rmcp::model::{
    LoggingLevel, LoggingMessageNotificationParam, ReadResourceRequestParams, ResourceContents,
    ResourceUpdatedNotificationParam, SetLevelRequestParams, SubscribeRequestParams,
    UnsubscribeRequestParams,
};
use rmcp::service::{NotificationContext, RoleClient, RunningService};
use rmcp::{ClientHandler, ServiceExt};
use serde_json::json;
use tokio::sync::Mutex;

/// Records log messages and resource updates.
#[derive(Clone, Default)]
struct Recorder {
    logs: Arc<Mutex<Vec<LoggingMessageNotificationParam>>>,
    updates: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for Recorder {
    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.logs.lock().await.push(params);
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.updates.lock().await.push(params.uri);
    }

    fn get_info(&self) -> rmcp::model::ClientConfig {
        client_info()
    }
}

async fn session(proxy: &Proxy) -> (RunningService<RoleClient, Recorder>, Recorder) {
    let recorder = Recorder::default();
    let transport = rmcp::transport::StreamableHttpClientTransport::from_uri(proxy.mcp_url());
    let client = recorder
        .clone()
        .serve(transport)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (client, recorder)
}

/// Polls `check` until it holds (bounded).
async fn eventually(what: &str, check: impl AsyncFn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_messages_follow_each_sessions_level_and_name_their_server() {
    let proxy = Proxy::start(
        json!({ "fx": { "command": FIXTURE, "args": ["--stdio"] }, "crashy": { "command": FIXTURE, "args": ["--stdio"] } }),
        &[],
    )
    .await;
    proxy.settled().await;
    let (quiet, quiet_logs) = session(&proxy).await;
    let (chatty, chatty_logs) = session(&proxy).await;
    quiet
        .peer()
        .set_level(SetLevelRequestParams::new(LoggingLevel::Warning))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    chatty
        .peer()
        .set_level(SetLevelRequestParams::new(LoggingLevel::Debug))
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let _ = call(
        quiet.peer(),
        "fx__log",
        json!({ "level": "info", "message": "just so you know" }),
    )
    .await;
    let _ = call(
        quiet.peer(),
        "fx__log",
        json!({ "level": "error", "message": "something broke" }),
    )
    .await;
    eventually("the chatty session to get both messages", async || {
        chatty_logs.logs.lock().await.len() >= 2
    })
    .await;
    eventually("the quiet session to get the error", async || {
        !quiet_logs.logs.lock().await.is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let quiet_seen = quiet_logs.logs.lock().await.clone();
    assert_eq!(quiet_seen.len(), 1, "{quiet_seen:?}");
    assert_eq!(quiet_seen[0].level, LoggingLevel::Error);
    assert_eq!(
        quiet_seen[0].logger.as_deref(),
        Some("fx/mcp-orch-fixture"),
        "messages name their server before the server's own logger"
    );

    // mcp-orch's own notable events reach sessions as log messages too.
    let _ = call(chatty.peer(), "crashy__crash", json!({})).await;
    eventually("a warning about the crash", async || {
        chatty_logs.logs.lock().await.iter().any(|l| {
            l.logger.as_deref() == Some("mcp-orch") && l.data.to_string().contains("crashy")
        })
    })
    .await;
    quiet.cancel().await.ok();
    chatty.cancel().await.ok();
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_shared_downstream_and_delivered_only_to_subscribers() {
    let proxy = Proxy::start(
        json!({ "fx": { "command": FIXTURE, "args": ["--stdio"] } }),
        &[],
    )
    .await;
    proxy.settled().await;
    let (a, a_rec) = session(&proxy).await;
    let (b, b_rec) = session(&proxy).await;
    let (c, c_rec) = session(&proxy).await;
    let uri = "fixture://static/hello";
    for client in [&a, &b] {
        client
            .peer()
            .subscribe(SubscribeRequestParams::new(uri))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let subscribes = |logs: &str| {
        logs.matches(&format!("subscribe {uri}")).count()
            - logs.matches(&format!("unsubscribe {uri}")).count()
    };
    assert_eq!(
        subscribes(&proxy.logs()),
        1,
        "two sessions, one downstream subscription"
    );

    let _ = call(
        c.peer(),
        "fx__notify_resource_updated",
        json!({ "uri": uri }),
    )
    .await;
    eventually("both subscribers to hear", async || {
        a_rec.updates.lock().await.len() == 1 && b_rec.updates.lock().await.len() == 1
    })
    .await;
    assert!(
        c_rec.updates.lock().await.is_empty(),
        "a session that did not subscribe was told"
    );

    a.peer()
        .unsubscribe(UnsubscribeRequestParams::new(uri))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !proxy.logs().contains(&format!("unsubscribe {uri}")),
        "B still subscribes"
    );
    let _ = call(
        c.peer(),
        "fx__notify_resource_updated",
        json!({ "uri": uri }),
    )
    .await;
    eventually("B to hear again", async || {
        b_rec.updates.lock().await.len() == 2
    })
    .await;
    assert_eq!(a_rec.updates.lock().await.len(), 1, "A unsubscribed");

    // The last subscriber leaving ends the downstream subscription.
    b.cancel().await.ok();
    eventually("the downstream unsubscribe", async || {
        proxy.logs().contains(&format!("unsubscribe {uri}"))
    })
    .await;
    a.cancel().await.ok();
    c.cancel().await.ok();
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colliding_resource_uris_are_namespaced_and_instructions_merged() {
    let proxy = Proxy::start(
        json!({
            "one": { "command": FIXTURE, "args": ["--stdio", "--name", "one", "--instructions", "Use one for ones."] },
            "two": { "command": FIXTURE, "args": ["--stdio", "--name", "two"] }
        }),
        &[],
    )
    .await;
    proxy.settled().await;
    let (client, _) = session(&proxy).await;
    let instructions = client
        .peer()
        .peer_info()
        .and_then(|i| i.instructions.clone())
        .unwrap_or_default();
    assert!(
        instructions.contains("## one") && instructions.contains("Use one for ones."),
        "{instructions}"
    );

    let resources = client
        .peer()
        .list_all_resources()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let hello: Vec<&str> = resources
        .iter()
        .map(|r| r.uri.as_str())
        .filter(|u| u.contains("static%2Fhello"))
        .collect();
    assert_eq!(hello.len(), 2, "{resources:?}");
    assert!(hello.iter().all(|u| u.starts_with("mcp-orch://")));
    assert!(
        resources.iter().all(|r| r.uri != "fixture://static/hello"),
        "never exposed bare"
    );
    for uri in hello {
        let server = if uri.starts_with("mcp-orch://one/") {
            "one"
        } else {
            "two"
        };
        let read = client
            .peer()
            .read_resource(ReadResourceRequestParams::new(uri))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        match &read.contents[0] {
            ResourceContents::TextResourceContents { text, uri: got, .. } => {
                assert_eq!(text, &format!("hello from {server}"));
                assert_eq!(got, uri, "contents carry the URI the client used");
            }
            other => panic!("{other:?}"),
        }
    }
    // The bare colliding URI is refused with a message naming the way out.
    let bare = client
        .peer()
        .read_resource(ReadResourceRequestParams::new("fixture://static/hello"))
        .await;
    assert!(bare.is_err(), "{bare:?}");
    client.cancel().await.ok();
    proxy.stop().await;
}
