//! Invalid configuration: mcp-orch exits non-zero with a message naming the file, the key
//! path and what was expected — and starts nothing.

mod common;

use std::process::Command;

fn run(mcp_config: &str, config_yaml: Option<&str>) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("mcp-config.json");
    std::fs::write(&path, mcp_config).unwrap_or_else(|e| panic!("{e}"));
    let mut command = Command::new(common::PROXY);
    command
        .arg("--mcp-config")
        .arg(&path)
        .args(["--port", "0", "--no-stdio"])
        .env_remove("RUST_LOG")
        .current_dir(dir.path());
    if let Some(yaml) = config_yaml {
        let yaml_path = dir.path().join("config.yaml");
        std::fs::write(&yaml_path, yaml).unwrap_or_else(|e| panic!("{e}"));
        command.arg("--config").arg(&yaml_path);
    }
    let output = command.output().unwrap_or_else(|e| panic!("{e}"));
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn wrong_type_names_file_and_key_path() {
    let (code, stderr) = run(
        r#"{"mcpServers": {"github": {"command": "npx", "args": ["-y", 5]}}}"#,
        None,
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("mcp-config.json"), "{stderr}");
    assert!(stderr.contains("mcpServers.github.args[1]"), "{stderr}");
    assert!(stderr.contains("expected"), "{stderr}");
}

#[test]
fn syntax_error_names_line_and_column() {
    let (code, stderr) = run(
        "{\n  \"mcpServers\": {\n    \"a\": { \"command\": \"x\" }\n  ,\n}",
        None,
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("mcp-config.json:"), "{stderr}");
}

#[test]
fn an_entry_without_command_or_url_is_rejected() {
    let (code, stderr) = run(r#"{"mcpServers": {"broken": {"args": []}}}"#, None);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("mcpServers.broken"), "{stderr}");
    assert!(
        stderr.contains("command") && stderr.contains("url"),
        "{stderr}"
    );
}

#[test]
fn bad_yaml_value_names_config_yaml_and_key() {
    let (code, stderr) = run(r#"{"mcpServers": {}}"#, Some("server:\n  port: lots\n"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("config.yaml"), "{stderr}");
    assert!(stderr.contains("server.port"), "{stderr}");
}

#[test]
fn a_missing_file_is_named() {
    let output = Command::new(common::PROXY)
        .args([
            "--mcp-config",
            "/nonexistent/mcp-config.json",
            "--port",
            "0",
            "--no-stdio",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent/mcp-config.json"), "{stderr}");
}

#[test]
fn a_bad_proxy_port_is_named() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("mcp-config.json");
    std::fs::write(&path, "{}").unwrap_or_else(|e| panic!("{e}"));
    let output = Command::new(common::PROXY)
        .arg("--mcp-config")
        .arg(&path)
        .arg("--no-stdio")
        .env("PROXY_PORT", "eighty")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("PROXY_PORT"), "{stderr}");
}
