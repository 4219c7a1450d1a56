//! Our own tools: the ones mcp-orch's tests and benchmarks call (`echo`,
//! `add`, `sleep`, `fail`, `crash`, `large`, `progress`, `whoami`, `env`,
//! `headers`) and
//! the `--tools N` benchmark tools `tool_0000`... Tools that call back into
//! the client are in `client_tools.rs`; `add_tool`/`remove_tool` in
//! `dynamic.rs`.
//!
//! A tool error the caller should see is `Ok(CallToolResult::error(..))`
//! (`isError: true`), never a JSON-RPC error.

use std::time::Duration;

use rmcp::{
    Peer, RoleServer,
    handler::server::{
        common::schema_for_output,
        router::tool::{ToolRoute, ToolRouter},
        wrapper::Parameters,
    },
    model::{CallToolResult, ContentBlock, ProgressNotificationParam, RequestMetaObject},
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::server::Fixture;

/// The most `large` returns: 64 MiB.
const LARGE_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// What `large` repeats.
const LARGE_PATTERN: &str = "abcdefghijklmnopqrstuvwxyz0123456789\n";

#[derive(Debug, Deserialize, JsonSchema)]
pub struct EchoArgs {
    /// The text to return, exactly.
    pub text: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AddArgs {
    /// The first addend.
    pub a: f64,
    /// The second addend.
    pub b: f64,
}

/// `add`'s structured result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AddOutput {
    /// `a + b`.
    pub sum: f64,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SleepArgs {
    /// How long to sleep, in milliseconds.
    pub ms: u64,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FailArgs {
    /// The error message (default `requested failure`).
    pub message: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CrashArgs {
    /// The process exit code (default 1).
    pub code: Option<i32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct LargeArgs {
    /// The exact size of the returned text, in bytes (at most 64 MiB).
    pub bytes: u64,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ProgressArgs {
    /// How many progress notifications to send.
    pub steps: u32,
    /// The pause between two notifications, in milliseconds.
    pub interval_ms: u64,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct EnvArgs {
    /// The environment variable to read.
    pub name: String,
}

pub fn text_result(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

pub fn error_result(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

#[tool_router(router = fixture_tools, vis = "pub(crate)")]
impl Fixture {
    #[tool(description = "Returns `text` exactly, as a single text content.")]
    async fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> String {
        args.text
    }

    #[tool(
        description = "Adds two numbers: the sum as text, and as structured content `{\"sum\": ...}`.",
        output_schema = schema_for_output::<AddOutput>()
    )]
    async fn add(&self, Parameters(AddArgs { a, b }): Parameters<AddArgs>) -> CallToolResult {
        let sum = a + b;
        let mut result = text_result(sum.to_string());
        result.structured_content = Some(json!(AddOutput { sum }));
        result
    }

    #[tool(
        description = "Sleeps `ms` milliseconds, then returns `slept <ms>ms`. Stops early (and logs `sleep cancelled` to stderr) when the request is cancelled."
    )]
    async fn sleep(
        &self,
        Parameters(SleepArgs { ms }): Parameters<SleepArgs>,
        ct: CancellationToken,
    ) -> CallToolResult {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(ms)) => text_result(format!("slept {ms}ms")),
            () = ct.cancelled() => {
                eprintln!("sleep cancelled");
                error_result("sleep cancelled")
            }
        }
    }

    #[tool(description = "Returns a tool error (`isError: true`) with `message`.")]
    async fn fail(&self, Parameters(args): Parameters<FailArgs>) -> CallToolResult {
        error_result(
            args.message
                .unwrap_or_else(|| "requested failure".to_owned()),
        )
    }

    #[tool(
        description = "Exits the server process immediately with `code` (default 1), without answering."
    )]
    async fn crash(&self, Parameters(args): Parameters<CrashArgs>) -> CallToolResult {
        let code = args.code.unwrap_or(1);
        eprintln!("mcp-orch-fixture: crashing with exit code {code} as requested");
        std::process::exit(code)
    }

    #[tool(description = "Writes `text` as one line to the server's stderr; returns `written`.")]
    async fn stderr(&self, Parameters(EchoArgs { text }): Parameters<EchoArgs>) -> CallToolResult {
        eprintln!("{text}");
        CallToolResult::success(vec![ContentBlock::text("written")])
    }

    #[tool(
        description = "Freezes the whole server process (SIGSTOP to itself) after answering, so it stops answering anything, pings included."
    )]
    async fn freeze(&self) -> CallToolResult {
        tokio::spawn(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            eprintln!("mcp-orch-fixture: freezing");
            // SAFETY: stopping our own process.
            #[cfg(unix)]
            unsafe {
                libc::raise(libc::SIGSTOP);
            }
        });
        CallToolResult::success(vec![ContentBlock::text("freezing")])
    }

    #[tool(
        description = "Returns a text content of exactly `bytes` bytes of ASCII (a repeated deterministic pattern), at most 64 MiB."
    )]
    async fn large(
        &self,
        Parameters(LargeArgs { bytes }): Parameters<LargeArgs>,
    ) -> CallToolResult {
        if bytes > LARGE_MAX_BYTES {
            return error_result(format!("bytes must be at most {LARGE_MAX_BYTES}"));
        }
        // Fits: at most 64 MiB, checked above.
        let len = bytes as usize;
        let mut text = LARGE_PATTERN.repeat(len / LARGE_PATTERN.len() + 1);
        text.truncate(len);
        text_result(text)
    }

    #[tool(
        description = "Sends `steps` progress notifications (progress 1..steps, total steps, message `step <i>`) `interval_ms` apart to the request's progress token, if any, then returns `done <steps>`."
    )]
    async fn progress(
        &self,
        Parameters(ProgressArgs { steps, interval_ms }): Parameters<ProgressArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        ct: CancellationToken,
    ) -> CallToolResult {
        let token = meta.get_progress_token();
        for step in 1..=steps {
            if step > 1 {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(interval_ms)) => {}
                    () = ct.cancelled() => return error_result("progress cancelled"),
                }
            }
            if let Some(token) = &token {
                let notification = ProgressNotificationParam::new(token.clone(), f64::from(step))
                    .with_total(f64::from(steps))
                    .with_message(format!("step {step}"));
                if let Err(error) = peer.notify_progress(notification).await {
                    return error_result(format!("cannot send progress: {error}"));
                }
            }
        }
        text_result(format!("done {steps}"))
    }

    #[tool(
        description = "Returns `{\"name\": <server name>, \"pid\": <process id>}` as text, to tell servers and processes apart."
    )]
    async fn whoami(&self) -> String {
        json!({ "name": self.name(), "pid": std::process::id() }).to_string()
    }

    #[tool(
        description = "Returns the HTTP request headers this call arrived with, as a JSON object of lower-case name to value (Streamable HTTP only; a tool error over stdio). Lets tests prove what a proxy forwards."
    )]
    async fn headers(&self, extensions: rmcp::model::Extensions) -> CallToolResult {
        let Some(parts) = extensions.get::<http::request::Parts>() else {
            return error_result("no HTTP request: this session is not Streamable HTTP");
        };
        let headers: serde_json::Map<String, serde_json::Value> = parts
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), serde_json::Value::String(value))
            })
            .collect();
        text_result(serde_json::Value::Object(headers).to_string())
    }

    #[tool(
        description = "Returns the value of environment variable `name` in the server process, or a tool error if it is unset."
    )]
    async fn env(&self, Parameters(EnvArgs { name }): Parameters<EnvArgs>) -> CallToolResult {
        match std::env::var(&name) {
            Ok(value) => text_result(value),
            Err(error) => error_result(format!("environment variable {name}: {error}")),
        }
    }
}

impl Fixture {
    /// `count` trivial tools `tool_0000`... that echo `text`, for benchmarks.
    pub(crate) fn bulk_tools(count: usize) -> ToolRouter<Self> {
        let mut router = ToolRouter::new();
        for index in 0..count {
            router.add_route(Self::echo_route(
                format!("tool_{index:04}"),
                "Benchmark tool: returns `text` exactly.",
            ));
        }
        router
    }

    /// A tool `name` that behaves like `echo` (same input schema, returns
    /// `text` exactly).
    pub(crate) fn echo_route(name: String, description: &'static str) -> ToolRoute<Self> {
        let tool = rmcp::model::Tool::new(name, description, Self::echo_tool_attr().input_schema);
        ToolRoute::new(tool, |Parameters(args): Parameters<EchoArgs>| async move {
            args.text
        })
    }
}
