//! Opt-in tier (not in the default run): the real small local LLM plans a batch over the
//! fixture's tools, and the plan runs. Start the model first
//! (`/work/shared/tools/local-llm/local-llm.sh start`, ~20-30 s per plan on 2 idle cores),
//! then: `cargo test --test batch_local_llm -- --ignored --nocapture`.
//! `MCP_ORCH_LOCAL_LLM_URL` overrides the endpoint (default `http://127.0.0.1:8089/v1`),
//! `MCP_ORCH_LOCAL_LLM_PLAN_OUTPUT` the plan output mode (default `tool`).

mod batch_support;
mod common;

use std::time::Duration;

use batch_support::{result, start, submit, wait_final};
use common::FIXTURE;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local LLM server (see the file's doc)"]
async fn the_local_model_plans_a_parallel_batch_that_runs() {
    let url = std::env::var("MCP_ORCH_LOCAL_LLM_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8089/v1".into());
    let mode = std::env::var("MCP_ORCH_LOCAL_LLM_PLAN_OUTPUT").unwrap_or_else(|_| "tool".into());
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let yaml = format!(
        "llm:\n  provider: openai\n  endpoint: {url}\n  model: local\n  timeout: 600s\n  max_tokens: 600\n  plan_output: {mode}\n"
    );
    let servers = json!({"fixture": {"command": FIXTURE, "args": ["--stdio", "--name", "fixture"],
        "tools": {"include": ["echo", "add", "sleep"]}}});
    let proxy = start(servers, &yaml, dir.path()).await;
    proxy.settled().await;
    let request = "Add 2 and 3. At the same time, echo the text hello. \
                   When the sum is ready, echo a sentence containing the sum.";
    let (status, body) = submit(&proxy, json!({"request": request})).await;
    assert_eq!(status, 202, "{body}");
    let id = body["task_id"].as_str().unwrap_or_default().to_owned();
    let status = wait_final(&proxy, &id, Duration::from_secs(900)).await;
    let result = result(&proxy, &id).await;
    println!(
        "planning_ms={} status={} plan={}",
        status["timings"]["planning_ms"], status["status"], result["plan"]
    );
    assert_eq!(status["status"], "succeeded", "{status}\n{result}");
    let tools: Vec<&str> = result["tasks"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["tool"].as_str()).collect())
        .unwrap_or_default();
    assert!(tools.contains(&"fixture__add"), "{tools:?}");
    assert!(tools.contains(&"fixture__echo"), "{tools:?}");
}
