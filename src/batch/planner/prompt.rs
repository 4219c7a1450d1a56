//! What the planner tells the LLM: the plan's JSON Schema (typed per tool for small
//! catalogues), the rules and an example, the catalogue one line per tool trimmed to the
//! prompt budget, and the repair message listing the validator's problems. Pure text and
//! JSON; nothing here talks to an LLM.

use serde_json::{Value, json};

use crate::batch::validate::{Problem, ValidationContext};
use crate::catalog::{Catalog, CatalogTool};
use crate::llm::ChatMessage;

/// The JSON Schema of a plan, given to the model.
pub fn plan_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "goal": {"type": "string"},
            "tasks": {"type": "array", "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "tool": {"type": "string"},
                    "args": {"type": "object"},
                    "depends_on": {"type": "array", "items": {"type": "string"}},
                    "foreach": {"type": "object", "properties": {
                        "over": {"type": "string"}, "max_items": {"type": "integer"}},
                        "required": ["over", "max_items"]}
                },
                "required": ["id", "tool", "args", "depends_on"]
            }},
            "output": {"type": "array", "items": {"type": "string"}}
        },
        "required": ["goal", "tasks", "output"]
    })
}

/// Up to this many tools, the plan schema spells out each tool's arguments (one `anyOf`
/// branch per tool), so models with constrained decoding (llama.cpp) cannot get argument
/// names wrong; above it the schema would crowd the prompt.
pub const TYPED_SCHEMA_MAX_TOOLS: usize = 12;

/// The plan schema with one task variant per tool: `tool` fixed to its name and `args` to
/// its parameters (each may also be a `{"$ref": ...}`).
pub fn typed_plan_schema(tools: &[&CatalogTool], llm_generate: bool) -> Value {
    // A reference `{"$ref": "t1.path"}`. Its `$ref` key is only required, not declared in
    // `properties`: JSON-schema-to-grammar converters (llama.cpp's) read a `properties` map
    // with a `$ref` key as a schema reference and give up on the whole schema.
    let reference = json!({"type": "object", "required": ["$ref"]});
    let variant = |name: &str, input: &Value| {
        let properties: serde_json::Map<String, Value> = input
            .get("properties")
            .and_then(Value::as_object)
            .map(|props| {
                props
                    .iter()
                    .map(|(key, prop)| {
                        let mut plain = serde_json::Map::new();
                        for keep in ["type", "enum", "items"] {
                            if let Some(v) = prop.get(keep) {
                                plain.insert(keep.into(), v.clone());
                            }
                        }
                        (
                            key.clone(),
                            json!({"anyOf": [Value::Object(plain), reference.clone()]}),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let required = input.get("required").cloned().unwrap_or(json!([]));
        json!({
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "tool": {"const": name},
                "args": {"type": "object", "properties": properties, "required": required,
                         "additionalProperties": false},
                "depends_on": {"type": "array", "items": {"type": "string"}},
                "foreach": {"type": "object", "properties": {
                    "over": {"type": "string"}, "max_items": {"type": "integer"}},
                    "required": ["over", "max_items"]}
            },
            "required": ["id", "tool", "args", "depends_on"]
        })
    };
    let mut variants: Vec<Value> = tools
        .iter()
        .map(|t| variant(&t.exposed, &Value::Object((*t.tool.input_schema).clone())))
        .collect();
    if llm_generate {
        variants.push(variant(
            crate::batch::plan::LLM_GENERATE,
            &crate::batch::validate::llm_generate_schema(),
        ));
    }
    let mut schema = plan_schema();
    schema["properties"]["tasks"]["items"] = json!({"anyOf": variants});
    schema
}

const RULES: &str = r#"You are the planner of mcp-orch. Turn the user's request into a plan: a graph of tool calls that runs in parallel wherever possible. Submit the plan with the submit_plan tool (or answer with the plan as one JSON object).

Plan format:
{"goal": "<one sentence>",
 "tasks": [{"id": "t1", "tool": "<exact tool name from the list>", "args": {<arguments>}, "depends_on": []}],
 "output": ["<ids of the tasks whose results answer the request>"]}

Rules:
- Use only tools from the list below, spelled exactly. The keys of "args" are exactly the tool's parameter names: web__fetch(url*: string) takes {"url": "..."}. Give every required parameter (marked *) with the right type.
- Tasks that do not need each other's results must NOT depend on each other: they run at the same time.
- To pass a result on: {"$ref": "t1"} is the whole result of task t1 and {"$ref": "t1.items[0].url"} a part of it (the type is kept); inside a string write "text ${t1.field} text". Every task you refer to MUST be listed in depends_on.
- To call a tool once per element of an array result, add "foreach": {"over": "t1.items", "max_items": 20} and use {"$ref": "item"} or "${item.name}" for the element.
- Ids are short: t1, t2, ... Keep the plan as small as the request allows.

Example (with tools web__search(query*: string) and web__fetch(url*: string)): request "search for rust and for go, then fetch the first rust result":
{"goal": "Search rust and go, fetch the first rust hit", "tasks": [
 {"id": "t1", "tool": "web__search", "args": {"query": "rust"}, "depends_on": []},
 {"id": "t2", "tool": "web__search", "args": {"query": "go"}, "depends_on": []},
 {"id": "t3", "tool": "web__fetch", "args": {"url": {"$ref": "t1.results[0].url"}}, "depends_on": ["t1"]}],
 "output": ["t2", "t3"]}
"#;

const GENERATE_RULE: &str = "- llm.generate(prompt*: string, json: boolean) writes, analyses or summarises with an LLM, e.g. {\"prompt\": \"Summarise: ${t1}\"}.\n";

/// The system prompt for `request` (rules, limits and `tools`, the catalogue the caller
/// may use, trimmed to `max_prompt_chars`) and how many tools it describes.
pub fn system_prompt(
    request: &str,
    tools: &[&CatalogTool],
    context: &ValidationContext<'_>,
    max_prompt_chars: usize,
) -> (String, usize) {
    let mut head = RULES.to_owned();
    if context.llm_available {
        head.push_str(GENERATE_RULE);
    }
    head.push_str(&format!(
        "- At most {} tasks; foreach max_items at most {}.\n\nTools:\n",
        context.limits.max_tasks, context.limits.max_fanout
    ));
    let budget = max_prompt_chars.saturating_sub(head.len());
    let (lines, count) = fit_catalog(tools, request, budget);
    (format!("{head}{lines}"), count)
}

/// The tool names the last answer used (for the reminder in the repair message).
pub(super) fn answer_tools(messages: &[ChatMessage]) -> Vec<String> {
    let Some(last) = messages.last() else {
        return Vec::new();
    };
    let Some(Value::Object(plan)) = crate::llm::extract_json(&last.content) else {
        return Vec::new();
    };
    let mut tools: Vec<String> = plan
        .get("tasks")
        .and_then(Value::as_array)
        .map(|tasks| {
            tasks
                .iter()
                .filter_map(|t| t.get("tool").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    tools.sort();
    tools.dedup();
    tools
}

/// The problems, plus the exact parameters of the tools the plan used, so a small model
/// can fix argument names.
pub(super) fn repair_message(problems: &[Problem], used: &[String], catalog: &Catalog) -> String {
    let mut text = String::from("That plan cannot run. Problems:\n");
    for problem in problems.iter().take(20) {
        text.push_str(&format!("- {problem}\n"));
    }
    let signatures: Vec<String> = used
        .iter()
        .filter_map(|name| catalog.get(name))
        .map(|tool| describe_tool(tool, 120))
        .collect();
    if !signatures.is_empty() {
        text.push_str("The tools you used take exactly these parameters (* = required):\n");
        text.push_str(&signatures.join("\n"));
        text.push('\n');
    }
    text.push_str("Submit the whole corrected plan.");
    text
}

/// One line describing a tool: `name(a*: string, b: integer) — description`.
pub fn describe_tool(tool: &CatalogTool, description_chars: usize) -> String {
    let schema = &tool.tool.input_schema;
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let params: Vec<String> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(name, prop)| {
                    let star = if required.contains(&name.as_str()) {
                        "*"
                    } else {
                        ""
                    };
                    format!("{name}{star}: {}", type_of(prop))
                })
                .collect()
        })
        .unwrap_or_default();
    let description: String = tool
        .tool
        .description
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let mut short: String = description.chars().take(description_chars).collect();
    if description.chars().count() > description_chars {
        short.push('…');
    }
    let mut line = format!("- {}({})", tool.exposed, params.join(", "));
    if !short.is_empty() {
        line.push_str(" — ");
        line.push_str(&short);
    }
    line
}

fn type_of(prop: &Value) -> String {
    if let Some(values) = prop.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .take(8)
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("|");
    }
    match prop.get("type") {
        Some(Value::String(t)) if t == "array" => match prop.get("items") {
            Some(items) => format!("array of {}", type_of(items)),
            None => "array".into(),
        },
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("|"),
        _ => "any".into(),
    }
}

/// The catalogue lines that fit `budget` characters, and how many tools they describe.
fn fit_catalog(tools: &[&CatalogTool], request: &str, budget: usize) -> (String, usize) {
    for description_chars in [300, 120, 40] {
        let lines: Vec<String> = tools
            .iter()
            .map(|t| describe_tool(t, description_chars))
            .collect();
        let total: usize = lines.iter().map(|l| l.len() + 1).sum();
        if total <= budget {
            return (lines.join("\n") + "\n", lines.len());
        }
    }
    // Still too long: keep the tools that share the most words with the request.
    let words: Vec<String> = request
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 2)
        .map(str::to_owned)
        .collect();
    let mut ranked: Vec<(usize, usize, String)> = tools
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let hay = format!(
                "{} {}",
                t.exposed,
                t.tool.description.as_deref().unwrap_or("")
            )
            .to_lowercase();
            let score = words.iter().filter(|w| hay.contains(w.as_str())).count();
            (score, i, describe_tool(t, 40))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut used = 0;
    let mut kept: Vec<(usize, String)> = Vec::new();
    for (_, i, line) in ranked {
        if used + line.len() + 1 > budget {
            continue;
        }
        used += line.len() + 1;
        kept.push((i, line));
    }
    kept.sort();
    let count = kept.len();
    let omitted = tools.len() - count;
    let mut text: String = kept.into_iter().map(|(_, l)| l + "\n").collect();
    if omitted > 0 {
        text.push_str(&format!("({omitted} less related tools omitted)\n"));
    }
    (text, count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ServerTools;
    use rmcp::model::Tool;
    use std::sync::Arc;

    fn catalog(n: usize) -> Catalog {
        let tools: Vec<Tool> = (0..n)
            .map(|i| {
                serde_json::from_value(json!({
                    "name": format!("tool{i}"),
                    "description": format!("Does thing number {i}. {}", "Long words here. ".repeat(20)),
                    "inputSchema": {"type": "object", "properties": {
                        "text": {"type": "string"}, "mode": {"enum": ["a", "b"]},
                        "list": {"type": "array", "items": {"type": "integer"}}}, "required": ["text"]}
                }))
                .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        let mut weather: Tool = serde_json::from_value(json!({"name": "weather", "description": "Forecast for a city", "inputSchema": {"type": "object"}}))
            .unwrap_or_else(|e| panic!("{e}"));
        weather.description = Some("Weather forecast for a city".into());
        let mut all = tools;
        all.push(weather);
        Catalog::build(
            vec![ServerTools::tools_only("s".into(), "s", Arc::new(all))],
            "__",
        )
    }

    #[test]
    fn small_catalogues_get_a_schema_with_each_tools_arguments() {
        let catalog = catalog(1);
        let tools: Vec<&CatalogTool> = catalog.tools().iter().collect();
        let schema = typed_plan_schema(&tools, true);
        let variants = &schema["properties"]["tasks"]["items"]["anyOf"];
        assert_eq!(variants.as_array().map(Vec::len), Some(3));
        let first = &variants[0]["properties"];
        assert_eq!(first["tool"], json!({"const": "s__tool0"}));
        assert_eq!(first["args"]["required"], json!(["text"]));
        assert_eq!(first["args"]["additionalProperties"], false);
        assert_eq!(
            first["args"]["properties"]["text"]["anyOf"][0],
            json!({"type": "string"})
        );
        assert_eq!(
            first["args"]["properties"]["text"]["anyOf"][1],
            json!({"type": "object", "required": ["$ref"]})
        );
        // No `properties` map anywhere has a `$ref` key (grammar converters choke on it).
        fn no_ref_property(value: &Value) -> bool {
            match value {
                Value::Object(map) => {
                    map.get("properties")
                        .and_then(Value::as_object)
                        .is_none_or(|p| !p.contains_key("$ref"))
                        && map.values().all(no_ref_property)
                }
                Value::Array(items) => items.iter().all(no_ref_property),
                _ => true,
            }
        }
        assert!(no_ref_property(&schema), "{schema}");
        assert_eq!(
            variants[2]["properties"]["tool"],
            json!({"const": "llm.generate"})
        );
    }

    #[test]
    fn tools_are_described_compactly() {
        let catalog = catalog(1);
        let line = describe_tool(&catalog.tools()[0], 20);
        assert_eq!(
            line,
            "- s__tool0(list: array of integer, mode: \"a\"|\"b\", text*: string) — Does thing number 0.…"
        );
    }

    #[test]
    fn large_catalogues_are_trimmed_to_the_most_related_tools() {
        let catalog = catalog(400);
        let tools: Vec<&CatalogTool> = catalog.tools().iter().collect();
        let (text, count) = fit_catalog(&tools, "what is the weather in Paris", 4000);
        assert!(text.len() <= 4100, "{}", text.len());
        assert!(count < 401 && count > 10, "{count}");
        assert!(text.contains("s__weather("), "{text}");
        assert!(text.contains("less related tools omitted"));
        let (text, count) = fit_catalog(&tools[..3], "x", 100_000);
        assert_eq!(count, 3);
        assert!(text.contains("Long words here. Long"));
    }
}
