//! Batch mode with an LLM planner, against a scripted fake LLM HTTP server speaking the
//! OpenAI-compatible and Anthropic formats: a valid plan runs; an invalid plan is sent
//! back once with the validator's problems and the repaired plan runs; garbage fails the
//! batch with the problems; `llm.generate` steps reach the LLM with interpolated inputs.
//! The request bodies and headers the LLM received are asserted.

mod batch_support;
mod common;

use std::time::Duration;

use batch_support::{
    FakeLlm, anthropic_tool_use, events, openai_text, openai_tool_call, result, start, submit,
    wait_final,
};
use common::fixture_entry;
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);

fn openai_yaml(llm: &FakeLlm) -> String {
    format!(
        "llm:\n  provider: openai\n  endpoint: {}/v1\n  model: test-model\n  api_key: sk-test-123\n",
        llm.base
    )
}

fn valid_plan() -> Value {
    json!({"goal": "echo and add", "tasks": [
        {"id": "t1", "tool": "fixture__echo", "args": {"text": "hello"}, "depends_on": []},
        {"id": "t2", "tool": "fixture__add", "args": {"a": 2, "b": 3}, "depends_on": []},
        {"id": "t3", "tool": "fixture__echo", "args": {"text": "${t1} ${t2.sum}"}, "depends_on": ["t1", "t2"]}
    ], "output": ["t3"]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_forced_tool_call_plans_and_the_plan_runs() {
    let llm = FakeLlm::start(vec![openai_tool_call(&valid_plan())]).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let proxy = start(
        json!({"fixture": fixture_entry("fixture")}),
        &openai_yaml(&llm),
        dir.path(),
    )
    .await;
    proxy.settled().await;
    let request = "Echo hello, add 2 and 3, then echo both results";
    let (status, body) = submit(&proxy, json!({"request": request})).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "planning");
    let id = body["task_id"].as_str().unwrap_or_default().to_owned();
    let status = wait_final(&proxy, &id, LIMIT).await;
    assert_eq!(status["status"], "succeeded", "{status}");
    assert!(
        status["timings"]["planning_ms"].as_u64().is_some(),
        "{status}"
    );
    assert_eq!(status["goal"], "echo and add");
    assert_eq!(
        result(&proxy, &id).await["outputs"],
        json!({"t3": "hello 5"})
    );
    let kinds: Vec<String> = events(&proxy, &id, None)
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds.first().map(String::as_str), Some("plan.ready"));

    let requests = llm.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer sk-test-123")
    );
    let body = &sent.body;
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["tools"][0]["function"]["name"], "submit_plan");
    assert_eq!(
        body["tools"][0]["function"]["parameters"]["required"],
        json!(["goal", "tasks", "output"])
    );
    assert_eq!(
        body["tool_choice"],
        json!({"type": "function", "function": {"name": "submit_plan"}})
    );
    assert_eq!(body["messages"][0]["role"], "system");
    let system = body["messages"][0]["content"].as_str().unwrap_or("");
    assert!(
        system.contains("- fixture__echo(text*: string) — Returns `text` exactly"),
        "{system}"
    );
    assert!(
        system.contains("- fixture__sleep(ms*: integer)"),
        "{system}"
    );
    assert!(system.contains("depends_on"), "{system}");
    assert_eq!(
        body["messages"][1],
        json!({"role": "user", "content": request})
    );
    assert_eq!(body["messages"].as_array().map(Vec::len), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_invalid_plan_is_repaired_once_with_the_problems() {
    let broken = json!({"goal": "g", "tasks": [
        {"id": "t1", "tool": "fixture__ech0", "args": {"text": "x"}, "depends_on": []},
        {"id": "t2", "tool": "fixture__echo", "args": {"text": "${t1}"}, "depends_on": []}
    ], "output": ["t2"]});
    let fixed = json!({"goal": "g", "tasks": [
        {"id": "t1", "tool": "fixture__echo", "args": {"text": "x"}, "depends_on": []},
        {"id": "t2", "tool": "fixture__echo", "args": {"text": "got ${t1}"}, "depends_on": ["t1"]}
    ], "output": ["t2"]});
    let llm = FakeLlm::start(vec![
        anthropic_tool_use(&broken),
        anthropic_tool_use(&fixed),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let yaml = format!(
        "llm:\n  provider: anthropic\n  anthropic:\n    endpoint: {}\n    model: claude-test\n    api_key: ant-key\n",
        llm.base
    );
    let proxy = start(
        json!({"fixture": fixture_entry("fixture")}),
        &yaml,
        dir.path(),
    )
    .await;
    proxy.settled().await;
    let (status, body) = submit(&proxy, json!({"request": "echo x then echo it back"})).await;
    assert_eq!(status, 202, "{body}");
    let id = body["task_id"].as_str().unwrap_or_default().to_owned();
    let status = wait_final(&proxy, &id, LIMIT).await;
    assert_eq!(status["status"], "succeeded", "{status}");
    assert_eq!(result(&proxy, &id).await["outputs"], json!({"t2": "got x"}));

    let requests = llm.requests();
    assert_eq!(requests.len(), 2);
    let first = &requests[0];
    assert_eq!(first.path, "/v1/messages");
    assert_eq!(
        first.headers.get("x-api-key").and_then(|v| v.to_str().ok()),
        Some("ant-key")
    );
    assert_eq!(
        first
            .headers
            .get("anthropic-version")
            .and_then(|v| v.to_str().ok()),
        Some("2023-06-01")
    );
    assert_eq!(
        first.body["tool_choice"],
        json!({"type": "tool", "name": "submit_plan"})
    );
    assert_eq!(first.body["tools"][0]["name"], "submit_plan");
    assert!(
        first.body["system"]
            .as_str()
            .is_some_and(|s| s.contains("fixture__echo("))
    );
    let repair = &requests[1].body["messages"];
    assert_eq!(repair.as_array().map(Vec::len), Some(3), "{repair}");
    assert_eq!(repair[1]["role"], "assistant");
    assert!(
        repair[1]["content"]
            .as_str()
            .is_some_and(|c| c.contains("fixture__ech0")),
        "{repair}"
    );
    let problems = repair[2]["content"].as_str().unwrap_or("");
    assert!(
        problems.contains("task `t1`") && problems.contains("UNKNOWN_TOOL"),
        "{problems}"
    );
    assert!(
        problems.contains("did you mean fixture__echo"),
        "{problems}"
    );
    assert!(
        problems.contains("task `t2`") && problems.contains("UNDECLARED_DEPENDENCY"),
        "{problems}"
    );
    // The parameters of the tools the plan used are restated, for small models.
    assert!(
        problems.contains("take exactly these parameters"),
        "{problems}"
    );
    assert!(
        problems.contains("- fixture__echo(text*: string)"),
        "{problems}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_twice_fails_the_batch_with_the_problems() {
    let llm = FakeLlm::start(vec![
        openai_text("I am not sure what you mean."),
        openai_text("Sorry, no."),
        openai_text("```json\n{\"goal\": \"g\", \"tasks\": [{\"id\": \"t1\", \"tool\": \"fixture__echo\", \"args\": {\"text\": \"fenced\"}, \"depends_on\": []}], \"output\": [\"t1\"]}\n```"),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let proxy = start(
        json!({"fixture": fixture_entry("fixture")}),
        &openai_yaml(&llm),
        dir.path(),
    )
    .await;
    proxy.settled().await;
    let (status, body) = submit(&proxy, json!({"request": "do something"})).await;
    assert_eq!(status, 202, "{body}");
    let id = body["task_id"].as_str().unwrap_or_default().to_owned();
    let status = wait_final(&proxy, &id, LIMIT).await;
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(status["error"]["code"], "PLANNING_FAILED", "{status}");
    assert_eq!(
        status["error"]["problems"][0]["code"], "NO_PLAN",
        "{status}"
    );
    assert_eq!(llm.requests().len(), 2);
    // A text answer with a fenced JSON plan is accepted (dry run: planned, nothing runs).
    let (status, body) = submit(&proxy, json!({"request": "echo fenced", "dry_run": true})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["plan"]["tasks"][0]["args"]["text"], "fenced");
    assert_eq!(body["llm_calls"], 1);
    // The script is exhausted now: the LLM answers HTTP 500.
    let (status, body) = submit(&proxy, json!({"request": "again", "dry_run": true})).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (502, json!("LLM_ERROR")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_generate_steps_get_their_inputs_interpolated() {
    let llm = FakeLlm::start(vec![openai_text("A short summary.")]).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let proxy = start(
        json!({"fixture": fixture_entry("fixture")}),
        &openai_yaml(&llm),
        dir.path(),
    )
    .await;
    proxy.settled().await;
    let plan = json!({"tasks": [
        {"id": "t1", "tool": "fixture__echo", "args": {"text": "the raw data"}},
        {"id": "t2", "tool": "llm.generate", "args": {"prompt": "Summarise: ${t1}"}, "depends_on": ["t1"]}
    ]});
    let id = batch_support::run_plan(&proxy, plan, json!({})).await;
    let status = wait_final(&proxy, &id, LIMIT).await;
    assert_eq!(status["status"], "succeeded", "{status}");
    assert_eq!(
        result(&proxy, &id).await["outputs"],
        json!({"t2": "A short summary."})
    );
    let requests = llm.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].body["messages"][1]["content"],
        "Summarise: the raw data"
    );
    assert!(requests[0].body.get("tools").is_none());
}
