//! What servers send that is not a reply, on its way to the right upstream session(s):
//! log messages (to sessions whose level admits them), resource updates (to the sessions
//! subscribed to that URI), elicitation completions (to the session that was asked), list
//! changes (catalogue rebuild, then `list_changed` to every session), and server→client
//! requests (to the session whose call caused them, after checking its client can answer).
//! Nothing is ever sent to a session it does not belong to.

#![allow(deprecated)]

use std::sync::{Arc, Weak};

use futures::FutureExt;
use futures::future::BoxFuture;
use rmcp::model::{
    ClientResult, CustomNotification, ElicitRequestParams, ErrorCode, ErrorData, LoggingLevel,
    LoggingMessageNotificationParam, ResourceUpdatedNotificationParam, ServerNotification,
    ServerRequest,
};

use super::{Router, UpstreamSession};
use crate::downstream::{DownstreamObserver, ListKind};

/// The method of the notification that ends a URL-mode elicitation.
const ELICITATION_COMPLETE: &str = "notifications/elicitation/complete";

/// Forwards downstream events to the router without keeping it alive.
pub(super) struct RouterObserver(pub(super) Weak<Router>);

impl DownstreamObserver for RouterObserver {
    fn lists_changed(&self, _server: &str, _kind: Option<ListKind>) {
        if let Some(router) = self.0.upgrade() {
            router.rebuild_catalog();
        }
    }

    fn notification(&self, server: &str, session: Option<u64>, notification: ServerNotification) {
        let Some(router) = self.0.upgrade() else {
            return;
        };
        match notification {
            ServerNotification::LoggingMessageNotification(message) => {
                router.deliver_log(server, session, message.params);
            }
            ServerNotification::ResourceUpdatedNotification(updated) => {
                router.deliver_resource_updated(server, session, updated.params);
            }
            ServerNotification::CustomNotification(custom)
                if custom.method == ELICITATION_COMPLETE =>
            {
                router.deliver_elicitation_complete(server, custom);
            }
            other => {
                tracing::debug!(%server, ?other, "dropping a notification no session asked for")
            }
        }
    }

    fn server_request(
        &self,
        server: &str,
        session: Option<u64>,
        request: ServerRequest,
    ) -> BoxFuture<'static, Result<ClientResult, ErrorData>> {
        let Some(router) = self.0.upgrade() else {
            return async { Err(ErrorData::internal_error("mcp-orch is shutting down", None)) }
                .boxed();
        };
        let server = server.to_owned();
        async move {
            let target = match session {
                // A per-session instance belongs to exactly one session.
                Some(id) => router.sessions.get(id).ok_or("its session has ended"),
                // A shared server outside any call: unambiguous only with one session.
                None => {
                    let all = router.sessions.all();
                    match all.len() {
                        1 => Ok(all[0].clone()),
                        0 => Err("no client session is connected"),
                        _ => Err("no call is in flight and several client sessions are connected"),
                    }
                }
            };
            match target {
                Ok(session) => router.relay(&server, &session, request).await,
                Err(why) => Err(ErrorData::new(
                    ErrorCode::INVALID_REQUEST,
                    format!(
                        "mcp-orch cannot relay {} from server '{server}': {why}",
                        method_of(&request)
                    ),
                    None,
                )),
            }
        }
        .boxed()
    }

    fn server_event(&self, server: &str, message: &str) {
        if let Some(router) = self.0.upgrade() {
            let mut params = LoggingMessageNotificationParam::new(
                LoggingLevel::Warning,
                serde_json::json!({ "server": server, "message": message }),
            );
            params.logger = Some("mcp-orch".to_owned());
            router.deliver_log_as_is(None, params);
        }
    }
}

impl Router {
    /// Relays a server→client request to `session`, or explains why its client cannot take
    /// it. The answer goes back to the server that asked.
    pub async fn relay(
        &self,
        server: &str,
        session: &Arc<UpstreamSession>,
        request: ServerRequest,
    ) -> Result<ClientResult, ErrorData> {
        let method = method_of(&request);
        let supported = match &request {
            ServerRequest::CreateMessageRequest(_) => session.can_sample(),
            ServerRequest::ListRootsRequest(_) => session.can_list_roots(),
            ServerRequest::ElicitRequest(elicit) => match &elicit.params {
                ElicitRequestParams::UrlElicitationParams { elicitation_id, .. } => {
                    let ok = session.can_elicit(true);
                    if ok && !elicitation_id.is_empty() {
                        self.elicitations
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(elicitation_id.clone(), session.id);
                    }
                    ok
                }
                ElicitRequestParams::FormElicitationParams { .. } => session.can_elicit(false),
                _ => false,
            },
            ServerRequest::PingRequest(_) => true,
            _ => false,
        };
        if !supported {
            return Err(ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                format!(
                    "server '{server}' sent {method}, but the client of the session that caused it \
                     does not support it"
                ),
                None,
            ));
        }
        match session.peer.send_request(request).await {
            Ok(answer) => Ok(answer),
            Err(rmcp::service::ServiceError::McpError(error)) => Err(error),
            Err(error) => Err(ErrorData::internal_error(
                format!("mcp-orch could not relay {method} to the client: {error}"),
                None,
            )),
        }
    }

    /// A server's log message, tagged with the server's name, to the sessions whose level
    /// admits it (only the owning session for a per-session instance).
    fn deliver_log(
        &self,
        server: &str,
        session: Option<u64>,
        mut params: LoggingMessageNotificationParam,
    ) {
        params.logger = Some(match params.logger.take() {
            Some(logger) => format!("{server}/{logger}"),
            None => server.to_owned(),
        });
        self.deliver_log_as_is(session, params);
    }

    fn deliver_log_as_is(&self, session: Option<u64>, params: LoggingMessageNotificationParam) {
        let level = params.level;
        self.sessions.broadcast(
            |s| session.is_none_or(|id| id == s.id) && s.admits(level),
            |peer| {
                let params = params.clone();
                async move { peer.notify_logging_message(params).await }
            },
        );
    }

    /// `resources/updated` to the sessions subscribed to that URI, in the URI form they know.
    fn deliver_resource_updated(
        &self,
        server: &str,
        session: Option<u64>,
        params: ResourceUpdatedNotificationParam,
    ) {
        let original = params.uri.clone();
        let exposed = self.catalog().exposed_uri(server, &original);
        self.sessions.broadcast(
            |s| session.is_none_or(|id| id == s.id) && s.is_subscribed(server, &original),
            |peer| {
                let mut params = params.clone();
                params.uri = exposed.clone();
                async move { peer.notify_resource_updated(params).await }
            },
        );
    }

    /// `notifications/elicitation/complete` to the session the elicitation was sent to.
    fn deliver_elicitation_complete(&self, server: &str, notification: CustomNotification) {
        let id = notification
            .params
            .as_ref()
            .and_then(|p| p.get("elicitationId"))
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let session = id.as_ref().and_then(|id| {
            self.elicitations
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(id)
        });
        let Some(session) = session.and_then(|s| self.sessions.get(s)) else {
            tracing::debug!(%server, ?id, "elicitation completion for no known session");
            return;
        };
        let peer = session.peer.clone();
        tokio::spawn(async move {
            let _ = peer
                .send_notification(ServerNotification::CustomNotification(notification))
                .await;
        });
    }
}

fn method_of(request: &ServerRequest) -> &'static str {
    match request {
        ServerRequest::PingRequest(_) => "ping",
        ServerRequest::CreateMessageRequest(_) => "sampling/createMessage",
        ServerRequest::ListRootsRequest(_) => "roots/list",
        ServerRequest::ElicitRequest(_) => "elicitation/create",
        _ => "a server request",
    }
}
