//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in
//! `scripts/npm/package.json`, run with the pinned Node 22) in `server` mode against
//! mcp-orch's `/mcp`, with mcp-orch fronting our fixture unprefixed. Every scenario of the
//! pinned version (`--suite all`) must pass; the pass count is printed.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{FIXTURE, Proxy};
use serde_json::json;

/// Checks the pinned 0.1.16 reports with `--suite all` (32 scenarios). A lower count means
/// scenarios went missing, which is as much a regression as a failure.
const EXPECTED_CHECKS: usize = 46;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_conformance_scenario_passes_through_mcp_orch() {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join(".deps/npm/node_modules/.bin");
    let suite = bin.join("conformance");
    assert!(
        suite.exists() && bin.join("node").exists(),
        "the conformance suite is not installed: run scripts/install-test-deps"
    );
    let proxy = Proxy::start(
        json!({ "conformance": { "command": FIXTURE, "args": ["--stdio"], "prefix": "" } }),
        &[],
    )
    .await;
    proxy.settled().await;
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = tokio::process::Command::new(&suite)
        .args(["server", "--url", &proxy.mcp_url(), "--suite", "all"])
        .env("PATH", path)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .unwrap_or_else(|_| panic!("the conformance suite did not finish in 180 s"))
        .unwrap_or_else(|e| panic!("cannot run the conformance suite: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with('✓') || l.starts_with('✗') || l.starts_with("Total"))
        .collect();
    println!(
        "conformance (mcp-orch /mcp → fixture):\n{}",
        summary.join("\n")
    );
    let total = summary
        .iter()
        .find(|l| l.starts_with("Total:"))
        .unwrap_or_else(|| panic!("no summary in the suite's output:\n{stdout}\n{stderr}"));
    let numbers: Vec<usize> = total
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let (passed, failed) = (
        numbers.first().copied().unwrap_or(0),
        numbers.get(1).copied().unwrap_or(usize::MAX),
    );
    assert_eq!(
        failed,
        0,
        "conformance failures:\n{stdout}\nmcp-orch log:\n{}",
        proxy.logs()
    );
    assert!(
        passed >= EXPECTED_CHECKS,
        "only {passed} of {EXPECTED_CHECKS} checks ran:\n{stdout}"
    );
    assert!(summary.iter().all(|l| !l.starts_with('✗')), "{stdout}");
    proxy.stop().await;
}
