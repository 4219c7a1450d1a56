//! Checking tool arguments against a tool's JSON Schema `inputSchema`: the subset MCP
//! servers use (`type`, `properties`, `required`, `additionalProperties`, `items`, `enum`,
//! `const`, numeric and length bounds, `anyOf`/`oneOf`/`allOf`, local `$ref`s into
//! `$defs`/`definitions`). Unknown keywords are ignored, so a schema we do not fully
//! understand never rejects a valid call; the server remains the final judge.
//!
//! Plans are checked before their inputs exist, so in template mode a `{"$ref": ...}` value
//! matches anything and a string with `${...}` is only checked for being a string.

use serde_json::{Map, Value};

use super::refs::{as_ref_placeholder, kind};

/// Most problems reported for one call; more are summarised.
const MAX_PROBLEMS: usize = 10;
/// Deepest `$ref` chain followed (guards against self-referencing schemas).
const MAX_DEPTH: usize = 32;

/// Checks `args` against `schema`. `templates`: treat references as unknown values.
/// Returns every problem found, each starting with its location (`args.x`).
pub fn check(schema: &Value, args: &Map<String, Value>, templates: bool) -> Vec<String> {
    let mut checker = Checker {
        root: schema,
        templates,
        problems: Vec::new(),
    };
    checker.check(schema, &Value::Object(args.clone()), "args", 0);
    if checker.problems.len() > MAX_PROBLEMS {
        let more = checker.problems.len() - MAX_PROBLEMS;
        checker.problems.truncate(MAX_PROBLEMS);
        checker.problems.push(format!("... and {more} more"));
    }
    checker.problems
}

struct Checker<'s> {
    root: &'s Value,
    templates: bool,
    problems: Vec<String>,
}

impl<'s> Checker<'s> {
    fn resolve_ref(&self, reference: &str) -> Option<&'s Value> {
        let pointer = reference.strip_prefix('#')?;
        self.root.pointer(pointer)
    }

    fn check(&mut self, schema: &'s Value, value: &Value, at: &str, depth: usize) {
        let Value::Object(schema_map) = schema else {
            if schema == &Value::Bool(false) {
                self.problems.push(format!("{at}: not allowed here"));
            }
            return;
        };
        if depth > MAX_DEPTH {
            return;
        }
        if self.templates && as_ref_placeholder(value).is_some() {
            return;
        }
        let interpolated = self.templates && value.as_str().is_some_and(|s| s.contains("${"));
        if let Some(target) = schema_map.get("$ref").and_then(Value::as_str)
            && let Some(resolved) = self.resolve_ref(target)
        {
            self.check(resolved, value, at, depth + 1);
        }
        if let Some(expected) = schema_map.get("type")
            && !type_matches(expected, value)
        {
            self.problems.push(format!(
                "{at}: expected {}, found {}",
                describe_type(expected),
                show(value)
            ));
            return;
        }
        if !interpolated {
            self.check_values(schema_map, value, at);
        }
        match value {
            Value::Object(map) => self.check_object(schema_map, map, at, depth),
            Value::Array(items) => {
                if let Some(item_schema) = schema_map.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item_schema, item, &format!("{at}[{i}]"), depth + 1);
                    }
                }
            }
            _ => {}
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(options)) = schema_map.get(key) {
                let matched = options.iter().any(|option| {
                    let mut probe = Checker {
                        root: self.root,
                        templates: self.templates,
                        problems: Vec::new(),
                    };
                    probe.check(option, value, at, depth + 1);
                    probe.problems.is_empty()
                });
                if !matched {
                    self.problems.push(format!(
                        "{at}: {} matches none of the {} allowed forms",
                        show(value),
                        options.len()
                    ));
                }
            }
        }
        if let Some(Value::Array(all)) = schema_map.get("allOf") {
            for part in all {
                self.check(part, value, at, depth + 1);
            }
        }
    }

    fn check_values(&mut self, schema: &Map<String, Value>, value: &Value, at: &str) {
        if let Some(Value::Array(allowed)) = schema.get("enum")
            && !allowed.contains(value)
        {
            let list: Vec<String> = allowed.iter().take(10).map(Value::to_string).collect();
            self.problems.push(format!(
                "{at}: expected one of {}, found {}",
                list.join(", "),
                show(value)
            ));
        }
        if let Some(constant) = schema.get("const")
            && constant != value
        {
            self.problems
                .push(format!("{at}: expected {constant}, found {}", show(value)));
        }
        if let Some(n) = value.as_f64() {
            let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
            if let Some(min) = bound("minimum").filter(|min| n < *min) {
                self.problems
                    .push(format!("{at}: {n} is less than the minimum {min}"));
            }
            if let Some(max) = bound("maximum").filter(|max| n > *max) {
                self.problems
                    .push(format!("{at}: {n} is more than the maximum {max}"));
            }
            if let Some(min) = bound("exclusiveMinimum").filter(|min| n <= *min) {
                self.problems
                    .push(format!("{at}: {n} must be more than {min}"));
            }
            if let Some(max) = bound("exclusiveMaximum").filter(|max| n >= *max) {
                self.problems
                    .push(format!("{at}: {n} must be less than {max}"));
            }
        }
        let count = |key: &str| schema.get(key).and_then(Value::as_u64);
        let length = match value {
            Value::String(s) => Some((
                s.chars().count() as u64,
                "minLength",
                "maxLength",
                "character",
            )),
            Value::Array(a) => Some((a.len() as u64, "minItems", "maxItems", "item")),
            _ => None,
        };
        if let Some((len, min_key, max_key, unit)) = length {
            if let Some(min) = count(min_key).filter(|min| len < *min) {
                self.problems.push(format!(
                    "{at}: has {len} {unit}(s), at least {min} required"
                ));
            }
            if let Some(max) = count(max_key).filter(|max| len > *max) {
                self.problems
                    .push(format!("{at}: has {len} {unit}(s), at most {max} allowed"));
            }
        }
    }

    fn check_object(
        &mut self,
        schema: &'s Map<String, Value>,
        map: &Map<String, Value>,
        at: &str,
        depth: usize,
    ) {
        let properties = schema.get("properties").and_then(Value::as_object);
        if let Some(Value::Array(required)) = schema.get("required") {
            for name in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(name) {
                    self.problems
                        .push(format!("{at}: missing required property `{name}`"));
                }
            }
        }
        for (key, item) in map {
            let path = format!("{at}.{key}");
            match properties.and_then(|p| p.get(key)) {
                Some(property) => self.check(property, item, &path, depth + 1),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        let known: Vec<&str> = properties
                            .map(|p| p.keys().map(String::as_str).collect())
                            .unwrap_or_default();
                        self.problems.push(format!(
                            "{path}: unknown property (allowed: {})",
                            if known.is_empty() {
                                "none".into()
                            } else {
                                known.join(", ")
                            }
                        ));
                    }
                    Some(extra @ Value::Object(_)) => self.check(extra, item, &path, depth + 1),
                    _ => {}
                },
            }
        }
    }
}

fn type_matches(expected: &Value, value: &Value) -> bool {
    match expected {
        Value::String(name) => one_type(name, value),
        Value::Array(names) => names
            .iter()
            .filter_map(Value::as_str)
            .any(|name| one_type(name, value)),
        _ => true,
    }
}

fn one_type(name: &str, value: &Value) -> bool {
    match name {
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64()
                || value.is_u64()
                || value
                    .as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.is_finite())
        }
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "null" => value.is_null(),
        _ => true,
    }
}

fn describe_type(expected: &Value) -> String {
    let one = |name: &str| match name {
        "string" => "a string".to_owned(),
        "number" => "a number".to_owned(),
        "integer" => "an integer".to_owned(),
        "boolean" => "a boolean".to_owned(),
        "object" => "an object".to_owned(),
        "array" => "an array".to_owned(),
        "null" => "null".to_owned(),
        other => other.to_owned(),
    };
    match expected {
        Value::String(name) => one(name),
        Value::Array(names) => names
            .iter()
            .filter_map(Value::as_str)
            .map(one)
            .collect::<Vec<_>>()
            .join(" or "),
        other => other.to_string(),
    }
}

/// A value for a message: its type, plus short scalars.
fn show(value: &Value) -> String {
    match value {
        Value::String(s) if s.chars().count() <= 40 => format!("a string ({value})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::Bool(b) => format!("a boolean ({b})"),
        other => kind(other).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "text": {"type": "string", "minLength": 1},
                "n": {"type": "integer", "minimum": 0, "maximum": 10},
                "mode": {"enum": ["a", "b"]},
                "list": {"type": "array", "items": {"$ref": "#/$defs/item"}},
                "either": {"anyOf": [{"type": "string"}, {"type": "null"}]}
            },
            "required": ["text"],
            "additionalProperties": false,
            "$defs": {"item": {"type": "object", "required": ["x"], "properties": {"x": {"type": "number"}}}}
        })
    }

    #[test]
    fn accepts_valid_arguments() {
        let ok =
            args(json!({"text": "hi", "n": 3, "mode": "a", "list": [{"x": 1.5}], "either": null}));
        assert_eq!(check(&schema(), &ok, false), Vec::<String>::new());
        assert_eq!(
            check(&json!({}), &args(json!({"any": 1})), false),
            Vec::<String>::new()
        );
    }

    #[test]
    fn reports_every_problem_with_its_location() {
        let bad =
            args(json!({"n": 11, "mode": "c", "list": [{"y": 1}], "either": 5, "extra": true}));
        let problems = check(&schema(), &bad, false);
        assert_eq!(
            problems,
            [
                "args: missing required property `text`",
                "args.either: a number (5) matches none of the 2 allowed forms",
                "args.extra: unknown property (allowed: either, list, mode, n, text)",
                "args.list[0]: missing required property `x`",
                "args.mode: expected one of \"a\", \"b\", found a string (\"c\")",
                "args.n: 11 is more than the maximum 10",
            ]
        );
        let problems = check(&schema(), &args(json!({"text": 5})), false);
        assert_eq!(
            problems,
            ["args.text: expected a string, found a number (5)"]
        );
    }

    #[test]
    fn templates_accept_references() {
        let template =
            args(json!({"text": "${t1.x}", "n": {"$ref": "t1.n"}, "list": {"$ref": "t2"}}));
        assert_eq!(check(&schema(), &template, true), Vec::<String>::new());
        // A reference where a string is expected is fine; interpolation into a number is not.
        let bad = args(json!({"text": "ok", "n": "${t1.n}"}));
        assert_eq!(
            check(&schema(), &bad, true),
            ["args.n: expected an integer, found a string (\"${t1.n}\")"]
        );
        // Outside template mode a placeholder is just an object.
        let concrete = args(json!({"text": {"$ref": "t1"}}));
        assert_eq!(check(&schema(), &concrete, false).len(), 1);
    }
}
