//! Resources, resource templates and `completion/complete`.
//!
//! Ours live under `fixture://`; the conformance suite's under `test://`.
//! Everything here is static and deterministic; subscriptions are per-session
//! state and live in `server.rs`.

use rmcp::{
    ErrorData as McpError,
    model::{
        ArgumentInfo, CompleteResult, CompletionInfo, ReadResourceResult, Reference, Resource,
        ResourceContents, ResourceTemplate,
    },
};
use serde_json::json;

use crate::conformance::TEST_IMAGE_PNG_BASE64;

pub const HELLO_URI: &str = "fixture://static/hello";
pub const ITEM_TEMPLATE: &str = "fixture://items/{id}";
const ITEM_PREFIX: &str = "fixture://items/";

const STATIC_TEXT_URI: &str = "test://static-text";
const STATIC_BINARY_URI: &str = "test://static-binary";
const WATCHED_URI: &str = "test://watched-resource";
const DATA_TEMPLATE: &str = "test://template/{id}/data";
const DATA_PREFIX: &str = "test://template/";
const DATA_SUFFIX: &str = "/data";

/// Completion candidates for the `greeting` prompt's `name`.
const NAMES: &[&str] = &["alice", "albert", "bob", "carol", "dave"];
/// Completion candidates for template `{id}`s.
const IDS: &[&str] = &["1", "2", "3", "10", "42", "100"];
/// Completion candidates for `test_prompt_with_arguments`.
const WORDS: &[&str] = &["paris", "park", "party"];

/// `resources/list`: the direct (non-template) resources.
pub fn list() -> Vec<Resource> {
    vec![
        Resource::new(HELLO_URI, "hello")
            .with_description("A greeting naming this fixture server")
            .with_mime_type("text/plain"),
        Resource::new(STATIC_TEXT_URI, "static-text")
            .with_title("Static Text Resource")
            .with_description("A static text resource for testing")
            .with_mime_type("text/plain"),
        Resource::new(STATIC_BINARY_URI, "static-binary")
            .with_title("Static Binary Resource")
            .with_description("A static binary resource (image) for testing")
            .with_mime_type("image/png"),
        Resource::new(WATCHED_URI, "watched-resource")
            .with_title("Watched Resource")
            .with_description("A resource clients can subscribe to")
            .with_mime_type("text/plain"),
    ]
}

/// `resources/templates/list`.
pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(ITEM_TEMPLATE, "item")
            .with_description("Item <id>: its text is `item <id>`")
            .with_mime_type("text/plain"),
        ResourceTemplate::new(DATA_TEMPLATE, "template")
            .with_title("Resource Template")
            .with_description("A resource template with parameter substitution")
            .with_mime_type("application/json"),
    ]
}

/// `resources/read` for `uri`; `server_name` is this fixture's name.
pub fn read(server_name: &str, uri: &str) -> Result<ReadResourceResult, McpError> {
    let contents = match uri {
        HELLO_URI => ResourceContents::text(format!("hello from {server_name}"), uri),
        STATIC_TEXT_URI => {
            ResourceContents::text("This is the content of the static text resource.", uri)
        }
        STATIC_BINARY_URI => {
            ResourceContents::blob(TEST_IMAGE_PNG_BASE64, uri).with_mime_type("image/png")
        }
        WATCHED_URI => ResourceContents::text("Watched resource content", uri),
        _ => {
            if let Some(id) = template_id(uri, ITEM_PREFIX, "") {
                ResourceContents::text(format!("item {id}"), uri)
            } else if let Some(id) = template_id(uri, DATA_PREFIX, DATA_SUFFIX) {
                let data =
                    json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")});
                ResourceContents::text(data.to_string(), uri).with_mime_type("application/json")
            } else {
                return Err(McpError::resource_not_found(
                    format!("no resource {uri}"),
                    Some(json!({ "uri": uri })),
                ));
            }
        }
    };
    Ok(ReadResourceResult::new(vec![contents]))
}

/// The `{id}` of `prefix{id}suffix`, if `uri` has that shape and `id` is one
/// non-empty path segment.
fn template_id<'a>(uri: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    let id = uri.strip_prefix(prefix)?.strip_suffix(suffix)?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

/// `completion/complete`: a few candidates filtered by the typed prefix;
/// nothing for arguments we have no candidates for.
pub fn complete(
    reference: &Reference,
    argument: &ArgumentInfo,
) -> Result<CompleteResult, McpError> {
    let candidates: &[&str] = match (reference, argument.name.as_str()) {
        (Reference::Prompt(prompt), "name") if prompt.name == "greeting" => NAMES,
        (Reference::Prompt(prompt), "arg1" | "arg2")
            if prompt.name == "test_prompt_with_arguments" =>
        {
            WORDS
        }
        (Reference::Resource(template), "id")
            if template.uri == ITEM_TEMPLATE || template.uri == DATA_TEMPLATE =>
        {
            IDS
        }
        _ => &[],
    };
    let values = candidates
        .iter()
        .filter(|candidate| candidate.starts_with(&argument.value))
        .map(|candidate| candidate.to_string())
        .collect();
    let completion = CompletionInfo::with_all_values(values)
        .map_err(|error| McpError::internal_error(error, None))?;
    Ok(CompleteResult::new(completion))
}
