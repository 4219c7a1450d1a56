//! The production [`ToolRunner`]: catalogue tools go through the router (never to a
//! downstream directly), `llm.generate` goes to the configured LLM provider.
//!
//! Also decides what a tool result becomes as a task output: `structuredContent` when the
//! tool gave one; otherwise the text of its text blocks (joined by newlines), parsed as JSON
//! when it is a JSON object or array; otherwise the content blocks themselves.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use rmcp::model::{CallToolResult, ErrorData};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::downstream::{CallEvent, DownstreamError};
use crate::llm::{ChatMessage, ChatRequest, LlmProvider};
use crate::router::{CallContext, Router, RouterError};

use super::executor::{CallOutcome, ProgressFn, ToolRunner};
use super::plan::LLM_GENERATE;

/// Calls tools through the router and `llm.generate` through the LLM.
pub struct RouterRunner {
    /// The shared core every call goes through.
    pub router: Arc<Router>,
    /// For `llm.generate`; `None` when no provider is configured (validation then rejects
    /// plans that use it).
    pub llm: Option<Arc<dyn LlmProvider>>,
}

/// How much longer the router waits than the attempt's limit (see [`RouterRunner::call`]).
const ROUTER_SLACK: std::time::Duration = std::time::Duration::from_secs(1);

impl ToolRunner for RouterRunner {
    fn call(
        &self,
        tool: &str,
        args: Map<String, Value>,
        progress: ProgressFn,
        cancel: CancellationToken,
        timeout: std::time::Duration,
    ) -> BoxFuture<'static, CallOutcome> {
        if tool == LLM_GENERATE {
            return generate(self.llm.clone(), args, cancel).boxed();
        }
        let router = self.router.clone();
        let tool = tool.to_owned();
        async move {
            let (events_tx, mut events_rx) = tokio::sync::mpsc::unbounded_channel();
            let context = CallContext {
                events: Some(events_tx),
                cancel: Some(cancel),
                // The attempt's limit, not the server's default: a task may run longer than
                // the server's `timeout` (up to its `maxTimeout`). A little slack so that the
                // executor's own timer, which cancels and reports the attempt, fires first.
                timeout: Some(timeout.saturating_add(ROUTER_SLACK)),
                ..CallContext::default()
            };
            let call = router.call_tool(&tool, Some(args), context);
            tokio::pin!(call);
            let result = loop {
                tokio::select! {
                    biased;
                    Some(event) = events_rx.recv() => relay(event, &progress),
                    result = &mut call => break result,
                }
            };
            // Whatever arrived just before the result still counts.
            while let Ok(event) = events_rx.try_recv() {
                relay(event, &progress);
            }
            match result {
                Ok(result) => outcome_of(result),
                Err(error) => classify(error),
            }
        }
        .boxed()
    }
}

/// Passes a call's progress on; answers server→client requests with an error (a batch has
/// no client to ask).
fn relay(event: CallEvent, progress: &ProgressFn) {
    match event {
        CallEvent::Progress(p) => {
            let mut update = json!({ "progress": p.progress });
            if let Some(map) = update.as_object_mut() {
                if let Some(total) = p.total {
                    map.insert("total".into(), json!(total));
                }
                if let Some(message) = p.message {
                    map.insert("message".into(), json!(message));
                }
            }
            progress(update);
        }
        CallEvent::ServerRequest { respond, .. } => {
            let _ = respond.send(Err(ErrorData::invalid_request(
                "mcp-orch batch mode has no client to answer sampling, elicitation or roots requests",
                None,
            )));
        }
    }
}

/// A tool result as a task outcome.
pub fn outcome_of(result: CallToolResult) -> CallOutcome {
    let text = || {
        result
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    if result.is_error == Some(true) {
        let message = text();
        return CallOutcome::ToolError(if message.is_empty() {
            "(no message)".into()
        } else {
            message
        });
    }
    if let Some(structured) = result.structured_content.clone() {
        return CallOutcome::Success(structured);
    }
    let all_text = result.content.iter().all(|c| c.as_text().is_some());
    if all_text && !result.content.is_empty() {
        let text = text();
        let trimmed = text.trim_start();
        if (trimmed.starts_with('{') || trimmed.starts_with('['))
            && let Ok(value) = serde_json::from_str::<Value>(&text)
        {
            return CallOutcome::Success(value);
        }
        return CallOutcome::Success(Value::String(text));
    }
    CallOutcome::Success(serde_json::to_value(&result.content).unwrap_or(Value::Null))
}

/// Transport failures (retryable) versus the rest.
fn classify(error: RouterError) -> CallOutcome {
    let message = error.to_string();
    match error {
        RouterError::Downstream(
            DownstreamError::Timeout { .. }
            | DownstreamError::Closed { .. }
            | DownstreamError::Unavailable { .. }
            | DownstreamError::Start { .. }
            | DownstreamError::Cancelled { .. },
        ) => CallOutcome::Transport(message),
        _ => CallOutcome::Failed(message),
    }
}

/// `llm.generate {prompt, system?, json?, max_tokens?}`.
async fn generate(
    llm: Option<Arc<dyn LlmProvider>>,
    args: Map<String, Value>,
    cancel: CancellationToken,
) -> CallOutcome {
    let Some(llm) = llm else {
        return CallOutcome::Failed(format!("{LLM_GENERATE}: no LLM provider is configured"));
    };
    let prompt = args
        .get("prompt")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let json_mode = args.get("json").and_then(Value::as_bool).unwrap_or(false);
    let mut system = args
        .get("system")
        .and_then(Value::as_str)
        .unwrap_or("You are a precise assistant. Answer the request directly.")
        .to_owned();
    if json_mode {
        system.push_str(" Answer with one JSON value only, no prose, no code fences.");
    }
    let request = ChatRequest {
        system,
        messages: vec![ChatMessage::user(prompt)],
        structured: None,
        json_mode,
        max_tokens: args
            .get("max_tokens")
            .and_then(Value::as_u64)
            .map(|n| n.min(32_768) as u32),
    };
    let answer = tokio::select! {
        answer = llm.complete(request) => answer,
        () = cancel.cancelled() => return CallOutcome::Transport(format!("{LLM_GENERATE} cancelled")),
    };
    match answer {
        Ok(response) if json_mode => match crate::llm::extract_json(&response.text) {
            Some(value) => CallOutcome::Success(value),
            None => CallOutcome::Failed(format!(
                "{LLM_GENERATE}: the model did not answer with JSON: {}",
                crate::llm::preview(&response.text)
            )),
        },
        Ok(response) => CallOutcome::Success(Value::String(response.text)),
        Err(error) if error.is_transient() => CallOutcome::Transport(error.to_string()),
        Err(error) => CallOutcome::Failed(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::ContentBlock;

    #[test]
    fn results_become_outputs() {
        let mut structured = CallToolResult::success(vec![ContentBlock::text("5")]);
        structured.structured_content = Some(json!({"sum": 5}));
        assert_eq!(
            outcome_of(structured),
            CallOutcome::Success(json!({"sum": 5}))
        );
        let text = CallToolResult::success(vec![ContentBlock::text("a"), ContentBlock::text("b")]);
        assert_eq!(outcome_of(text), CallOutcome::Success(json!("a\nb")));
        let json_text = CallToolResult::success(vec![ContentBlock::text(" {\"k\": [1]}")]);
        assert_eq!(
            outcome_of(json_text),
            CallOutcome::Success(json!({"k": [1]}))
        );
        let number_text = CallToolResult::success(vec![ContentBlock::text("42")]);
        assert_eq!(outcome_of(number_text), CallOutcome::Success(json!("42")));
        let error = CallToolResult::error(vec![ContentBlock::text("nope")]);
        assert_eq!(outcome_of(error), CallOutcome::ToolError("nope".into()));
    }
}
