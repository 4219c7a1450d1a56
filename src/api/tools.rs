//! `GET /tools`, `GET /tools/{server}`, `POST /tools/{server}.{tool}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rmcp::model::JsonObject;
use serde_json::{Value, json};

use crate::catalog::CatalogTool;
use crate::router::CallContext;

use super::{ApiError, ApiState, RequestId};

/// The REST view of one tool.
fn describe(tool: &CatalogTool) -> Value {
    let mut out = json!({
        "name": &*tool.exposed,
        "server": &*tool.server,
        "original_name": &*tool.original,
        "rest_path": format!("/tools/{}.{}", tool.server, tool.original),
        "description": tool.tool.description,
        "input_schema": &*tool.tool.input_schema,
    });
    if let Some(object) = out.as_object_mut() {
        if let Some(title) = &tool.tool.title {
            object.insert("title".into(), json!(title));
        }
        if let Some(schema) = &tool.tool.output_schema {
            object.insert("output_schema".into(), json!(&**schema));
        }
        if let Some(annotations) = &tool.tool.annotations {
            object.insert("annotations".into(), json!(annotations));
        }
    }
    out
}

/// `GET /tools`
pub async fn list_all(State(state): State<ApiState>) -> Json<Value> {
    state.router.startup_complete().await;
    let catalog = state.router.catalog();
    let tools: Vec<Value> = catalog.tools().iter().map(describe).collect();
    Json(json!({ "count": tools.len(), "tools": tools }))
}

/// `GET /tools/{server}`
pub async fn list_server(
    State(state): State<ApiState>,
    request_id: RequestId,
    Path(server): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let Some(downstream) = state.router.downstreams().get(&server) else {
        return Err(ApiError::new(
            &request_id,
            StatusCode::NOT_FOUND,
            "SERVER_NOT_FOUND",
            format!("no server named '{server}' is configured"),
        )
        .with_details(json!({ "server": server })));
    };
    state.router.startup_complete().await;
    let catalog = state.router.catalog();
    let tools: Vec<Value> = catalog.tools_of(&server).map(describe).collect();
    Ok(Json(json!({
        "server": server,
        "status": downstream.status(),
        "count": tools.len(),
        "tools": tools,
    })))
}

/// `POST /tools/{server}.{tool}`: the body is the arguments object (empty body = `{}`); the
/// answer is the tool's result as the server returned it (`content`, `structuredContent`,
/// `isError`). A tool that reports an error still answers 200 with `isError: true`; a call
/// that could not be made answers an error status.
pub async fn call(
    State(state): State<ApiState>,
    request_id: RequestId,
    Path(target): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let Some(tool) = state.router.resolve_rest_name(&target).await else {
        return Err(ApiError::new(
            &request_id,
            StatusCode::NOT_FOUND,
            "TOOL_NOT_FOUND",
            format!(
                "no tool '{target}': use /tools/{{server}}.{{tool}} with a name from GET /tools"
            ),
        )
        .with_details(json!({ "tool": target })));
    };
    let arguments = parse_arguments(&body).map_err(|message| {
        ApiError::new(
            &request_id,
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENTS",
            message,
        )
        .with_details(json!({ "tool": target }))
    })?;
    let result = state
        .router
        .call_tool_json(&tool.exposed, Some(arguments), CallContext::default())
        .await
        .map_err(|e| ApiError::from_router(&request_id, e))?;
    Ok(Json(result))
}

fn parse_arguments(body: &[u8]) -> Result<JsonObject, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(JsonObject::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(format!(
            "the request body must be a JSON object of tool arguments, not {}",
            kind(&other)
        )),
        Err(error) => Err(format!("the request body is not valid JSON: {error}")),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_must_be_an_object() {
        assert_eq!(parse_arguments(b"").map(|o| o.len()), Ok(0));
        assert_eq!(parse_arguments(b" \n").map(|o| o.len()), Ok(0));
        assert_eq!(parse_arguments(br#"{"a":1}"#).map(|o| o.len()), Ok(1));
        let err = parse_arguments(b"[1]").err().unwrap_or_default();
        assert!(err.contains("not an array"), "{err}");
        let err = parse_arguments(b"{").err().unwrap_or_default();
        assert!(err.contains("not valid JSON"), "{err}");
    }
}
