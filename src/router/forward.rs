//! Requests from clients to servers: each goes to the server that owns the name or URI, over
//! the connection for the calling session, with the server's timeout, the caller's
//! cancellation, and progress and server→client requests routed back to the caller.
//! Resource subscriptions are reference-counted per `(server, URI)` on shared servers, so
//! several sessions watching one URI cost one downstream subscription.

#![allow(deprecated)]

use std::sync::Arc;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, ClientNotification, ClientRequest,
    CompleteRequest, CompleteRequestParams, CompleteResult, GetExtensions, GetPromptRequest,
    GetPromptRequestParams, GetPromptResult, JsonObject, LoggingLevel, ReadResourceRequest,
    ReadResourceRequestParams, ReadResourceResult, Reference, ResourceContents,
    RootsListChangedNotification, SetLevelRequest, SetLevelRequestParams, SubscribeRequest,
    SubscribeRequestParams, UnsubscribeRequest, UnsubscribeRequestParams,
};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::{CallContext, Router, RouterError, UpstreamSession};
use crate::catalog::{CatalogTool, UriRoute};
use crate::config::Isolation;
use crate::downstream::{CallOptions, Connection, Downstream, DownstreamError, Reply};

impl Router {
    /// Calls the tool clients know as `exposed`.
    pub async fn call_tool(
        &self,
        exposed: &str,
        arguments: Option<JsonObject>,
        context: CallContext,
    ) -> Result<CallToolResult, RouterError> {
        let (downstream, reply) = self
            .forward_call(exposed, Arguments::Object(arguments), context)
            .await?;
        decode(&downstream, "tools/call result", reply)
    }

    /// Calls a tool and returns its result as raw JSON (the REST face passes it through).
    pub async fn call_tool_json(
        &self,
        exposed: &str,
        arguments: Option<JsonObject>,
        context: CallContext,
    ) -> Result<serde_json::Value, RouterError> {
        let (downstream, reply) = self
            .forward_call(exposed, Arguments::Object(arguments), context)
            .await?;
        reply
            .into_value()
            .map_err(|e| protocol(&downstream, "tools/call result", e))
    }

    /// Calls a tool with `arguments` (a JSON object) passed on as they are, and returns the
    /// server's result as it sent it, once it has the shape of a tool result (the direct
    /// paths pass both through without decoding them). `context.meta` is not forwarded.
    pub async fn call_tool_passthrough(
        &self,
        exposed: &str,
        arguments: Option<Box<RawValue>>,
        context: CallContext,
    ) -> Result<Reply, RouterError> {
        let (downstream, reply) = self
            .forward_call(exposed, Arguments::Raw(arguments), context)
            .await?;
        if let Reply::Raw(raw) = &reply {
            check_tool_result(raw.get())
                .map_err(|e| protocol(&downstream, "tools/call result", e))?;
        }
        Ok(reply)
    }

    /// Resolves `{server}.{tool}` (the REST form) using the catalogue, never by splitting:
    /// every server name that is a prefix of `target` followed by `.` is tried, longest
    /// first. An exposed name is accepted too.
    pub async fn resolve_rest_name(&self, target: &str) -> Option<CatalogTool> {
        if let Some(found) = self.resolve_in(&self.catalog(), target) {
            return Some(found);
        }
        if self.startup_complete().await
            && let Some(found) = self.resolve_in(&self.catalog(), target)
        {
            return Some(found);
        }
        self.resolve_in(&self.known.load(), target)
    }

    fn resolve_in(&self, catalog: &crate::catalog::Catalog, target: &str) -> Option<CatalogTool> {
        let mut servers: Vec<Arc<Downstream>> = self
            .downstreams
            .iter()
            .filter(|d| {
                target.len() > d.name().len() + 1
                    && target.starts_with(&**d.name())
                    && target.as_bytes()[d.name().len()] == b'.'
            })
            .collect();
        servers.sort_by_key(|d| std::cmp::Reverse(d.name().len()));
        for downstream in servers {
            let tool = &target[downstream.name().len() + 1..];
            if let Some(found) = catalog.get_original(downstream.name(), tool) {
                return Some(found.clone());
            }
        }
        catalog.get(target).cloned()
    }

    async fn forward_call(
        &self,
        exposed: &str,
        arguments: Arguments,
        context: CallContext,
    ) -> Result<(Arc<Downstream>, Reply), RouterError> {
        let mut catalog = self.catalog.load_full();
        if catalog.get(exposed).is_none() && self.startup_complete().await {
            // A call that raced the servers' startup sees the finished catalogue.
            catalog = self.catalog.load_full();
        }
        let Some(tool) = catalog.get(exposed) else {
            return Err(self.why_missing(exposed));
        };
        let downstream = self.server(&tool.server)?;
        let name = tool.original.clone();
        let reply = match arguments {
            Arguments::Object(arguments) => {
                let mut params = CallToolRequestParams::new(name.to_string());
                params.arguments = arguments;
                let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
                // Boxed: the typed path's future is large and would make every raw
                // call's future (the direct paths') as large.
                Box::pin(self.send(&downstream, request, context)).await?
            }
            Arguments::Raw(arguments) => {
                let _counted = self.track();
                let timeout = downstream.timeout_for(&name);
                let (connection, options) =
                    self.prepare(&downstream, context, false, timeout).await?;
                connection.call_raw(name, arguments, options).await?
            }
        };
        Ok((downstream, reply))
    }

    /// Gets the prompt clients know as `exposed`.
    pub async fn get_prompt(
        &self,
        exposed: &str,
        arguments: Option<JsonObject>,
        context: CallContext,
    ) -> Result<GetPromptResult, RouterError> {
        self.startup_complete().await;
        let catalog = self.catalog();
        let prompt = catalog
            .prompt(exposed)
            .ok_or_else(|| RouterError::UnknownPrompt(exposed.to_owned()))?;
        let downstream = self.server(&prompt.server)?;
        let mut params = GetPromptRequestParams::new(prompt.original.to_string());
        params.arguments = arguments;
        let request = ClientRequest::GetPromptRequest(GetPromptRequest::new(params));
        let reply = self.send(&downstream, request, context).await?;
        decode(&downstream, "prompts/get result", reply)
    }

    /// Reads a resource; URIs in the answer are given in the form clients know.
    pub async fn read_resource(
        &self,
        uri: &str,
        context: CallContext,
    ) -> Result<ReadResourceResult, RouterError> {
        let (downstream, original) = self.route_uri(uri).await?;
        let request = ClientRequest::ReadResourceRequest(ReadResourceRequest::new(
            ReadResourceRequestParams::new(original.clone()),
        ));
        let reply = self.send(&downstream, request, context).await?;
        let mut result: ReadResourceResult = decode(&downstream, "resources/read result", reply)?;
        let catalog = self.catalog();
        for contents in &mut result.contents {
            let content_uri = match contents {
                ResourceContents::TextResourceContents { uri, .. }
                | ResourceContents::BlobResourceContents { uri, .. } => uri,
                _ => continue,
            };
            *content_uri = if *content_uri == original {
                uri.to_owned()
            } else {
                catalog.exposed_uri(downstream.name(), content_uri)
            };
        }
        Ok(result)
    }

    /// Routes `completion/complete` to the owner of the prompt or resource template.
    pub async fn complete(
        &self,
        mut params: CompleteRequestParams,
        context: CallContext,
    ) -> Result<CompleteResult, RouterError> {
        self.startup_complete().await;
        let catalog = self.catalog();
        let downstream = match &mut params.r#ref {
            Reference::Prompt(reference) => {
                let prompt = catalog
                    .prompt(&reference.name)
                    .ok_or_else(|| RouterError::UnknownPrompt(reference.name.clone()))?;
                reference.name = prompt.original.to_string();
                self.server(&prompt.server)?
            }
            Reference::Resource(reference) => match catalog.template(&reference.uri) {
                Some(template) => {
                    reference.uri = template.original.clone();
                    self.server(&template.server)?
                }
                None => {
                    let (downstream, original) = self.route_uri(&reference.uri).await?;
                    reference.uri = original;
                    downstream
                }
            },
            _ => {
                return Err(RouterError::UnknownPrompt(
                    "(a completion reference of an unknown kind)".to_owned(),
                ));
            }
        };
        params.meta = None;
        let request = ClientRequest::CompleteRequest(CompleteRequest::new(params));
        let reply = self.send(&downstream, request, context).await?;
        decode(&downstream, "completion/complete result", reply)
    }

    /// Subscribes a session to a resource. On a shared server the first subscriber makes
    /// the downstream subscription; later ones only count.
    pub async fn subscribe(
        &self,
        session: &Arc<UpstreamSession>,
        uri: &str,
    ) -> Result<(), RouterError> {
        let (downstream, original) = self.route_uri(uri).await?;
        if !session.subscribe(downstream.name(), &original) {
            return Ok(());
        }
        let request = |uri: String| {
            ClientRequest::SubscribeRequest(SubscribeRequest::new(SubscribeRequestParams::new(uri)))
        };
        if downstream.entry().isolation == Isolation::Session {
            let context = CallContext {
                session: Some(session.clone()),
                ..CallContext::default()
            };
            let result = self
                .send(&downstream, request(original.clone()), context)
                .await;
            if result.is_err() {
                session.unsubscribe(downstream.name(), &original);
            }
            return result.map(|_| ());
        }
        let key = (downstream.name().clone(), original.clone());
        let first = {
            let mut counts = self.lock_subscribers();
            let count = counts.entry(key.clone()).or_insert(0);
            *count += 1;
            *count == 1
        };
        if first
            && let Err(error) = self
                .send(
                    &downstream,
                    request(original.clone()),
                    CallContext::internal(),
                )
                .await
        {
            session.unsubscribe(downstream.name(), &original);
            self.release_subscription(&key);
            return Err(error);
        }
        Ok(())
    }

    /// Ends a session's subscription; the last subscriber ends the downstream one.
    pub async fn unsubscribe(
        &self,
        session: &Arc<UpstreamSession>,
        uri: &str,
    ) -> Result<(), RouterError> {
        let (downstream, original) = self.route_uri(uri).await?;
        if !session.unsubscribe(downstream.name(), &original) {
            return Ok(());
        }
        if downstream.entry().isolation == Isolation::Session {
            let context = CallContext {
                session: Some(session.clone()),
                ..CallContext::default()
            };
            return self.send_unsubscribe(&downstream, original, context).await;
        }
        if self.release_subscription(&(downstream.name().clone(), original.clone())) {
            self.send_unsubscribe(&downstream, original, CallContext::internal())
                .await?;
        }
        Ok(())
    }

    async fn send_unsubscribe(
        &self,
        downstream: &Arc<Downstream>,
        uri: String,
        context: CallContext,
    ) -> Result<(), RouterError> {
        let request = ClientRequest::UnsubscribeRequest(UnsubscribeRequest::new(
            UnsubscribeRequestParams::new(uri),
        ));
        self.send(downstream, request, context).await.map(|_| ())
    }

    /// Decrements a subscription count; true when it reached zero.
    fn release_subscription(&self, key: &(Arc<str>, String)) -> bool {
        let mut counts = self.lock_subscribers();
        match counts.get_mut(key) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                counts.remove(key);
                true
            }
            None => false,
        }
    }

    fn lock_subscribers(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<(Arc<str>, String), usize>> {
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a session's `logging/setLevel` and, when the most verbose level any session
    /// wants changes, passes it to every server that logs.
    pub async fn set_level(&self, session: &Arc<UpstreamSession>, level: LoggingLevel) {
        session.set_log_level(level);
        self.apply_log_level().await;
    }

    pub(super) async fn apply_log_level(&self) {
        let Some(level) = self.sessions.most_verbose_level() else {
            return;
        };
        let sends = self.downstreams.iter().filter(|d| {
            d.status() == crate::downstream::Status::Ready
                && d.info().is_some_and(|i| i.capabilities.logging.is_some())
        });
        let sends = sends.map(|downstream| async move {
            let request = ClientRequest::SetLevelRequest(SetLevelRequest::new(
                SetLevelRequestParams::new(level),
            ));
            if let Err(error) = self
                .send(&downstream, request, CallContext::internal())
                .await
            {
                tracing::debug!(server = %downstream.name(), %error, "logging/setLevel failed");
            }
        });
        futures::future::join_all(sends).await;
    }

    /// Passes a session's `notifications/roots/list_changed` to the servers it may concern:
    /// shared servers that were told mcp-orch supports roots.
    pub async fn roots_list_changed(&self, _session: &Arc<UpstreamSession>) {
        for downstream in self
            .downstreams
            .iter()
            .filter(|d| d.entry().capabilities.roots)
        {
            if let Ok(connection) = downstream.connection() {
                let notification = ClientNotification::RootsListChangedNotification(
                    RootsListChangedNotification::default(),
                );
                let _ = connection.notify(notification).await;
            }
        }
    }

    /// Cleans up after a session: its subscriptions and per-session instances.
    pub(super) async fn session_ended(&self, session: Arc<UpstreamSession>) {
        for (server, uri) in session.take_subscriptions() {
            let Some(downstream) = self.downstreams.get(&server) else {
                continue;
            };
            if downstream.entry().isolation == Isolation::Shared
                && self.release_subscription(&(server.clone(), uri.clone()))
            {
                let _ = self
                    .send_unsubscribe(&downstream, uri, CallContext::internal())
                    .await;
            }
        }
        self.downstreams.release_session(session.id).await;
        self.apply_log_level().await;
    }

    /// Which server a client's URI belongs to, and its original form.
    async fn route_uri(&self, uri: &str) -> Result<(Arc<Downstream>, String), RouterError> {
        self.startup_complete().await;
        match self.catalog().route_uri(uri) {
            UriRoute::Server { server, original } => Ok((self.server(&server)?, original)),
            UriRoute::Ambiguous(servers) => Err(RouterError::AmbiguousUri {
                uri: uri.to_owned(),
                servers: servers.iter().map(|s| s.to_string()).collect(),
            }),
            UriRoute::Unknown => Err(RouterError::UnknownUri(uri.to_owned())),
        }
    }

    fn server(&self, name: &str) -> Result<Arc<Downstream>, RouterError> {
        self.downstreams
            .get(name)
            .ok_or_else(|| RouterError::UnknownServer(name.to_owned()))
    }

    /// A name that is not callable: either unknown, or a tool of a server that is down.
    fn why_missing(&self, exposed: &str) -> RouterError {
        let known = self.known.load();
        let owner = known
            .get(exposed)
            .and_then(|t| self.downstreams.get(&t.server));
        match owner.map(|d| d.connection()) {
            Some(Err(unavailable)) => RouterError::Downstream(unavailable),
            _ => RouterError::UnknownTool(exposed.to_owned()),
        }
    }

    /// Sends one request over the connection for the calling session.
    async fn send(
        &self,
        downstream: &Arc<Downstream>,
        mut request: ClientRequest,
        mut context: CallContext,
    ) -> Result<Reply, RouterError> {
        let _counted = self.track();
        let mut progress = false;
        if let Some(mut meta) = context.meta.take() {
            progress = meta.get_progress_token().is_some();
            meta.0.0.remove("progressToken");
            if !meta.0.0.is_empty() {
                request.extensions_mut().insert(meta);
            }
        }
        let timeout = match &request {
            ClientRequest::CallToolRequest(call) => downstream.timeout_for(&call.params.name),
            _ => downstream.call_timeout(),
        };
        let (connection, options) = self.prepare(downstream, context, progress, timeout).await?;
        Ok(connection.request(request, options).await?)
    }

    /// The connection for the calling session, and the options of its request: the
    /// caller's timeout (capped by the server's `maxTimeout`), else `timeout`.
    async fn prepare(
        &self,
        downstream: &Arc<Downstream>,
        context: CallContext,
        progress: bool,
        timeout: std::time::Duration,
    ) -> Result<(Arc<Connection>, CallOptions), RouterError> {
        let session_id = context.session.as_ref().map(|s| s.id);
        let connection = downstream.connection_for(session_id).await?;
        let options = CallOptions {
            session: session_id,
            internal: context.internal,
            progress,
            timeout: context
                .timeout
                .map_or(timeout, |t| t.min(downstream.max_timeout())),
            max_timeout: Some(downstream.max_timeout()),
            events: context.events,
            cancel: context.cancel,
        };
        Ok((connection, options))
    }
}

/// A call's arguments: decoded, or the caller's JSON text passed on as it is.
enum Arguments {
    Object(Option<JsonObject>),
    Raw(Option<Box<RawValue>>),
}

fn decode<T: DeserializeOwned>(
    downstream: &Downstream,
    what: &'static str,
    reply: Reply,
) -> Result<T, RouterError> {
    reply.decode().map_err(|e| protocol(downstream, what, e))
}

fn protocol(downstream: &Downstream, what: &'static str, error: serde_json::Error) -> RouterError {
    RouterError::Downstream(DownstreamError::Protocol {
        server: downstream.name().to_string(),
        what,
        detail: error.to_string(),
    })
}

/// Checks what [`CallToolResult`]'s own decoding checks, without decoding the content: an
/// object with `content` (an array), `structuredContent` or `isError` (a boolean), and no
/// `resultType` other than `complete`.
fn check_tool_result(json: &str) -> Result<(), serde_json::Error> {
    use serde::de::Error;
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Shape<'a> {
        #[serde(default, borrow)]
        content: Option<&'a serde_json::value::RawValue>,
        #[serde(default, deserialize_with = "present")]
        structured_content: Option<()>,
        #[serde(default)]
        is_error: Option<bool>,
        #[serde(default)]
        result_type: Option<std::borrow::Cow<'a, str>>,
    }
    let shape: Shape<'_> = serde_json::from_str(json)?;
    if shape.content.is_some_and(|c| !c.get().starts_with('[')) {
        return Err(serde_json::Error::custom("content is not an array"));
    }
    if shape.result_type.is_some_and(|t| t != "complete") {
        return Err(serde_json::Error::custom(
            "CallToolResult requires resultType to be \"complete\" when present",
        ));
    }
    if shape.content.is_none() && shape.structured_content.is_none() && shape.is_error.is_none() {
        return Err(serde_json::Error::custom(
            "expected at least one known CallToolResult field (content, structuredContent, or isError)",
        ));
    }
    Ok(())
}

/// A field that is there, even as `null`.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<()>, D::Error> {
    <serde::de::IgnoredAny as serde::Deserialize>::deserialize(deserializer).map(|_| Some(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pass-through accepts exactly what decoding into `CallToolResult` accepts (as far
    /// as the result's own fields go).
    #[test]
    fn the_passed_through_result_is_checked_like_a_decoded_one() {
        let decodes = |json: &str| serde_json::from_str::<CallToolResult>(json).is_ok();
        for json in [
            r#"{"content":[{"type":"text","text":"hi"}]}"#,
            r#"{"content":[],"isError":true,"unknownField":1}"#,
            r#"{"structuredContent":null}"#,
            r#"{"isError":false,"_meta":{"a":1}}"#,
            r#"{"content":[],"resultType":"complete"}"#,
            r#"{}"#,
            r#"{"_meta":{}}"#,
            r#"{"content":null}"#,
            r#"{"content":"text"}"#,
            r#"{"isError":"yes"}"#,
            r#"{"content":[],"resultType":"input_required"}"#,
            r#"[]"#,
            r#"7"#,
        ] {
            assert_eq!(check_tool_result(json).is_ok(), decodes(json), "{json}");
        }
    }
}
