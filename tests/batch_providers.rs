//! The planner's LLM providers end to end, against the scripted fake LLM server: Azure with
//! its endpoint and key from `AZURE_AI_ENDPOINT` / `AZURE_AI_API_KEY`, Gemini with
//! `GEMINI_API_KEY`, Bedrock Converse signed with SigV4 from the `AWS_*` variables (the
//! signature recomputed over the request as received) and with a Bedrock API key; the
//! fallback from a refused forced tool call to a response format or text; keys that an
//! error body quotes never reach a status, an error or a log line.

mod batch_support;
mod common;

use std::time::Duration;

use batch_support::{
    FakeLlm, Recorded, bedrock_tool_use, header, openai_text, openai_tool_call, submit, wait_final,
};
use common::{Proxy, fixture_entry};
use mcp_orch::llm::sigv4::{self, Credentials, SignRequest};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);

fn plan() -> Value {
    json!({"goal": "echo", "tasks": [
        {"id": "t1", "tool": "fixture__echo", "args": {"text": "hi"}, "depends_on": []}
    ], "output": ["t1"]})
}

async fn start(yaml: &str, env: &[(&str, &str)], dir: &std::path::Path) -> Proxy {
    let servers = json!({"fixture": fixture_entry("fixture")});
    let proxy = batch_support::start_env(servers, yaml, dir, env).await;
    proxy.settled().await;
    proxy
}

/// A dry run of a request: the planned plan (asserting 200).
async fn dry_run(proxy: &Proxy) -> Value {
    let (status, body) = submit(proxy, json!({"request": "echo hi", "dry_run": true})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["plan"]["tasks"][0]["tool"], "fixture__echo", "{body}");
    body
}

fn only(requests: &[Recorded]) -> &Recorded {
    assert_eq!(requests.len(), 1, "{requests:?}");
    &requests[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_takes_endpoint_and_key_from_the_environment() {
    let llm = FakeLlm::start(vec![openai_tool_call(&plan())]).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let key = "azure-key-4f1c9e";
    let proxy = start(
        "llm:\n  provider: azure\n  model: gpt-4o\n",
        &[("AZURE_AI_ENDPOINT", &llm.base), ("AZURE_AI_API_KEY", key)],
        dir.path(),
    )
    .await;
    dry_run(&proxy).await;
    let requests = llm.requests();
    let sent = only(&requests);
    // Not an *.openai.azure.com host: the Azure AI Foundry model-inference route.
    assert_eq!(sent.path, "/models/chat/completions");
    assert_eq!(
        sent.query.as_deref(),
        Some("api-version=2024-05-01-preview")
    );
    assert_eq!(header(sent, "api-key"), Some(key));
    assert_eq!(header(sent, "authorization"), None);
    assert_eq!(sent.body["model"], "gpt-4o");
    assert_eq!(sent.body["tool_choice"]["function"]["name"], "submit_plan");
    assert!(!proxy.logs().contains(key), "the key was logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_uses_its_openai_compatible_endpoint_with_gemini_api_key() {
    let llm = FakeLlm::start(vec![openai_tool_call(&plan())]).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let yaml = format!(
        "llm:\n  provider: gemini\n  model: gemini-2.0-flash\n  endpoint: {}/v1beta/openai\n",
        llm.base
    );
    let proxy = start(&yaml, &[("GEMINI_API_KEY", "gem-key-77aa")], dir.path()).await;
    dry_run(&proxy).await;
    let requests = llm.requests();
    let sent = only(&requests);
    assert_eq!(sent.path, "/v1beta/openai/chat/completions");
    assert_eq!(header(sent, "authorization"), Some("Bearer gem-key-77aa"));
    assert_eq!(sent.body["model"], "gemini-2.0-flash");
    assert!(!proxy.logs().contains("gem-key-77aa"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_requests_are_signed_with_sigv4_or_carry_the_api_key() {
    let model = "anthropic.claude-3-5-haiku-20241022-v1:0";
    let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let llm = FakeLlm::start(vec![bedrock_tool_use(&plan())]).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let yaml = format!(
        "llm:\n  provider: bedrock\n  model: {model}\n  endpoint: {}\n",
        llm.base
    );
    let proxy = start(
        &yaml,
        &[
            ("AWS_REGION", "us-west-2"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", secret),
            ("AWS_SESSION_TOKEN", "session-token-123"),
        ],
        dir.path(),
    )
    .await;
    dry_run(&proxy).await;
    let requests = llm.requests();
    let sent = only(&requests);
    assert_eq!(
        sent.path,
        "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
    );
    assert_eq!(
        sent.body["toolConfig"]["toolChoice"],
        json!({"tool": {"name": "submit_plan"}})
    );
    assert!(sent.body["system"][0]["text"].is_string());
    assert_eq!(
        header(sent, "x-amz-security-token"),
        Some("session-token-123")
    );
    let authorization = header(sent, "authorization").unwrap_or_default();
    let amz_date = header(sent, "x-amz-date").unwrap_or_default();
    assert!(
        authorization.starts_with(&format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{}/us-west-2/bedrock/aws4_request, ",
            &amz_date[..8]
        )),
        "{authorization}"
    );
    // Every signed header was sent, and the signature covers the request as received.
    let signed = authorization
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_default();
    let signed_headers: Vec<(String, String)> = signed
        .split(';')
        .filter(|name| !matches!(*name, "host" | "x-amz-date" | "x-amz-security-token"))
        .map(|name| {
            let value = header(sent, name).unwrap_or_else(|| panic!("{name} signed, not sent"));
            (name.to_owned(), value.to_owned())
        })
        .collect();
    assert!(
        signed.contains("host") && signed.contains("content-type"),
        "{signed}"
    );
    let url = format!("{}{}", llm.base, sent.path);
    let expected = sigv4::sign(
        &SignRequest {
            method: "POST",
            url: &url,
            headers: &signed_headers,
            body: &sent.raw,
            region: "us-west-2",
            service: "bedrock",
            amz_date,
        },
        &Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: secret.into(),
            session_token: Some("session-token-123".into()),
        },
    );
    let expected_auth = expected
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.as_str());
    assert_eq!(expected_auth, Some(authorization));
    assert!(!proxy.logs().contains(secret), "the secret key was logged");
    drop(proxy);

    // A Bedrock API key instead: bearer auth, nothing signed.
    let llm = FakeLlm::start(vec![bedrock_tool_use(&plan())]).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let yaml = format!(
        "llm:\n  provider: bedrock\n  region: eu-central-1\n  model: amazon.nova-pro-v1:0\n  endpoint: {}\n",
        llm.base
    );
    let proxy = start(
        &yaml,
        &[("AWS_BEARER_TOKEN_BEDROCK", "bedrock-api-key-31")],
        dir.path(),
    )
    .await;
    dry_run(&proxy).await;
    let requests = llm.requests();
    let sent = only(&requests);
    assert_eq!(sent.path, "/model/amazon.nova-pro-v1%3A0/converse");
    assert_eq!(
        header(sent, "authorization"),
        Some("Bearer bedrock-api-key-31")
    );
    assert_eq!(header(sent, "x-amz-date"), None);
    assert!(!proxy.logs().contains("bedrock-api-key-31"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_tool_call_falls_back_to_a_response_format_then_text() {
    let refused = |what: &str| {
        FakeLlm::status(
            400,
            json!({"error": {"message": format!("{what} is not supported by this server")}}),
        )
    };
    let llm = FakeLlm::start(vec![
        refused("tool_choice"),
        openai_text(&plan().to_string()),
        openai_text(&plan().to_string()),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let yaml = format!(
        "llm:\n  provider: openai\n  endpoint: {}/v1\n  model: local\n",
        llm.base
    );
    let proxy = start(&yaml, &[], dir.path()).await;
    let body = dry_run(&proxy).await;
    assert_eq!(
        (body["llm_calls"].clone(), body["plan_output"].clone()),
        (json!(2), json!("json_schema")),
        "{body}"
    );
    // The mode that worked is remembered: the next plan asks that way at once.
    let body = dry_run(&proxy).await;
    assert_eq!(body["llm_calls"], 1, "{body}");
    let requests = llm.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests[0].body["tool_choice"]["function"]["name"],
        "submit_plan"
    );
    for later in &requests[1..] {
        assert!(later.body.get("tools").is_none(), "{}", later.body);
        assert_eq!(later.body["response_format"]["type"], "json_schema");
        assert_eq!(
            later.body["response_format"]["json_schema"]["name"],
            "submit_plan"
        );
    }
    assert!(proxy.logs().contains("trying the next"), "{}", proxy.logs());
    drop(proxy);

    // Anthropic has no response formats: a refused tool call falls back to fenced JSON.
    let llm = FakeLlm::start(vec![
        refused("tool_choice"),
        json!({"id": "m", "type": "message", "role": "assistant", "content": [
            {"type": "text", "text": format!("Here you go:\n```json\n{}\n```", plan())}]}),
    ])
    .await;
    let yaml = format!(
        "llm:\n  provider: anthropic\n  endpoint: {}\n  model: m\n  api_key: ant-123456\n",
        llm.base
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let proxy = start(&yaml, &[], dir.path()).await;
    let body = dry_run(&proxy).await;
    assert_eq!(body["plan_output"], "text", "{body}");
    let requests = llm.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[0].body.get("tool_choice").is_some());
    assert!(requests[1].body.get("tool_choice").is_none());
    assert!(requests[1].body.get("tools").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mode_refused_but_text_ends_on_text_and_an_outage_is_not_remembered() {
    let refused = |status: u16| FakeLlm::status(status, json!({"error": {"message": "no"}}));
    let fenced = || openai_text(&format!("```json\n{}\n```", plan()));
    let yaml = |llm: &FakeLlm| {
        format!(
            "llm:\n  provider: openai\n  endpoint: {}/v1\n  model: local\n",
            llm.base
        )
    };
    let kinds = |llm: &FakeLlm| -> Vec<Value> {
        llm.requests()
            .iter()
            .map(|r| match r.body.get("tool_choice") {
                Some(_) => json!("tool"),
                None => r.body["response_format"]["type"].clone(),
            })
            .collect()
    };

    // The whole chain: tool → json_schema → json_object → text.
    let llm = FakeLlm::start(vec![refused(400), refused(400), refused(422), fenced()]).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let proxy = start(&yaml(&llm), &[], dir.path()).await;
    let body = dry_run(&proxy).await;
    assert_eq!(
        (body["llm_calls"].clone(), body["plan_output"].clone()),
        (json!(4), json!("text")),
        "{body}"
    );
    assert_eq!(
        kinds(&llm),
        [
            json!("tool"),
            json!("json_schema"),
            json!("json_object"),
            Value::Null
        ]
    );
    drop(proxy);

    // An outage (500 in every mode) fails the plan and is not remembered as refusals: the
    // next plan asks with a forced tool call again.
    let llm = FakeLlm::start(vec![
        refused(500),
        refused(500),
        refused(500),
        refused(500),
        openai_tool_call(&plan()),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let proxy = start(&yaml(&llm), &[], dir.path()).await;
    let (status, body) = submit(&proxy, json!({"request": "echo hi", "dry_run": true})).await;
    assert_eq!(status, 502, "{body}");
    let body = dry_run(&proxy).await;
    assert_eq!(
        (body["llm_calls"].clone(), body["plan_output"].clone()),
        (json!(1), json!("tool")),
        "{body}"
    );
    assert_eq!(kinds(&llm).last(), Some(&json!("tool")));
    assert_eq!(llm.requests().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_quoted_in_an_error_body_never_reaches_status_errors_or_logs() {
    let key = "sk-test-quoted-8842";
    let unauthorized = || {
        FakeLlm::status(
            401,
            json!({"error": {"message": format!("Incorrect API key provided: {key}."), "code": "invalid_api_key"}}),
        )
    };
    let llm = FakeLlm::start(vec![unauthorized(), unauthorized()]).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let yaml = format!(
        "llm:\n  provider: openai\n  endpoint: {}/v1\n  model: m\n",
        llm.base
    );
    let proxy = start(&yaml, &[("OPENAI_API_KEY", key)], dir.path()).await;
    let (status, body) = submit(&proxy, json!({"request": "x", "dry_run": true})).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (502, json!("LLM_ERROR")),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("HTTP 401") && message.contains("[REDACTED]"),
        "{message}"
    );
    assert!(!body.to_string().contains(key), "{body}");

    let (status, body) = submit(&proxy, json!({"request": "x"})).await;
    assert_eq!(status, 202, "{body}");
    let id = body["task_id"].as_str().unwrap_or_default().to_owned();
    let status = wait_final(&proxy, &id, LIMIT).await;
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(status["error"]["code"], "PLANNING_FAILED");
    assert!(!status.to_string().contains(key), "{status}");
    // 401 is not a refused mode: one request per plan, no fallback.
    assert_eq!(llm.requests().len(), 2);
    assert_eq!(
        header(&llm.requests()[0], "authorization"),
        Some(&*format!("Bearer {key}"))
    );
    let logs = proxy.logs();
    assert!(logs.contains("HTTP 401"), "{logs}");
    assert!(!logs.contains(key), "the key was logged:\n{logs}");
}
