//! References between tasks inside `args`: `{"$ref": "t1.items[0].url"}` (replaced by that
//! JSON value, type kept) and `"...${t1.url}..."` (string interpolation; `$${` is a literal
//! `${`). Inside a `foreach` task the root `item` names the current element.
//!
//! Owns the path syntax (`root`, `.key`, `[N]`, `["any key"]`), finding every reference in
//! an arguments template, and resolving a template against the outputs of finished tasks.
//! It never decides whether a reference is allowed (that is validation).

use serde_json::{Map, Value};

/// One step of a reference path after its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// `.key` or `["key"]`
    Key(String),
    /// `[N]`
    Index(usize),
}

/// A parsed reference: a root (task id or `item`) and the steps into its output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefPath {
    /// The task id (or `item`) whose output the path starts from.
    pub root: String,
    /// The steps into that output.
    pub segments: Vec<Segment>,
}

/// Whether `c` may appear in a task id or a plain `.key`.
pub fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

impl RefPath {
    /// Parses `t1`, `t1.items[0].url`, `t1["a key"].x`.
    pub fn parse(text: &str) -> Result<RefPath, String> {
        let text = text.trim();
        let root_end = text.find(|c: char| !is_word_char(c)).unwrap_or(text.len());
        if root_end == 0 {
            return Err(format!(
                "reference `{text}` must start with a task id (letters, digits, `_`, `-`)"
            ));
        }
        let root = text[..root_end].to_owned();
        let mut segments = Vec::new();
        let mut rest = &text[root_end..];
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('.') {
                let end = after
                    .find(|c: char| !is_word_char(c))
                    .unwrap_or(after.len());
                if end == 0 {
                    return Err(format!("reference `{text}`: expected a key after `.`"));
                }
                segments.push(Segment::Key(after[..end].to_owned()));
                rest = &after[end..];
            } else if let Some(after) = rest.strip_prefix('[') {
                let Some(close) = find_bracket_end(after) else {
                    return Err(format!("reference `{text}`: unclosed `[`"));
                };
                let inner = after[..close].trim();
                if inner.starts_with('"') {
                    let key: String = serde_json::from_str(inner).map_err(|_| {
                        format!("reference `{text}`: `[{inner}]` is not a quoted key")
                    })?;
                    segments.push(Segment::Key(key));
                } else {
                    let index: usize = inner.parse().map_err(|_| {
                        format!(
                            "reference `{text}`: `[{inner}]` is not an index (0, 1, ...) or a quoted key"
                        )
                    })?;
                    segments.push(Segment::Index(index));
                }
                rest = &after[close + 1..];
            } else {
                return Err(format!(
                    "reference `{text}`: unexpected `{}`",
                    rest.chars().next().unwrap_or(' ')
                ));
            }
        }
        Ok(RefPath { root, segments })
    }

    /// The value this path names inside `root_value` (the root's output).
    pub fn lookup<'v>(&self, root_value: &'v Value) -> Result<&'v Value, String> {
        let mut current = root_value;
        let mut walked = self.root.clone();
        for segment in &self.segments {
            current = match (segment, current) {
                (Segment::Key(key), Value::Object(map)) => map.get(key).ok_or_else(|| {
                    format!("`{walked}` has no key `{key}` (keys: {})", keys(map))
                })?,
                (Segment::Index(i), Value::Array(items)) => items.get(*i).ok_or_else(|| {
                    format!("`{walked}` has {} element(s), no index {i}", items.len())
                })?,
                (Segment::Key(key), other) => {
                    return Err(format!(
                        "`{walked}` is {}, not an object with key `{key}`",
                        kind(other)
                    ));
                }
                (Segment::Index(i), other) => {
                    return Err(format!(
                        "`{walked}` is {}, not an array to take [{i}] of",
                        kind(other)
                    ));
                }
            };
            match segment {
                Segment::Key(key) => walked = format!("{walked}.{key}"),
                Segment::Index(i) => walked = format!("{walked}[{i}]"),
            }
        }
        Ok(current)
    }
}

fn find_bracket_end(text: &str) -> Option<usize> {
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            ']' if !in_string => return Some(i),
            _ => {}
        }
    }
    None
}

fn keys(map: &Map<String, Value>) -> String {
    let mut names: Vec<&str> = map.keys().map(String::as_str).take(10).collect();
    if map.len() > 10 {
        names.push("...");
    }
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// `a string`, `an array`, ...: for messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The path of a `{"$ref": "..."}` placeholder, if `value` is one.
pub fn as_ref_placeholder(value: &Value) -> Option<&str> {
    match value {
        Value::Object(map) if map.len() == 1 => map.get("$ref").and_then(Value::as_str),
        _ => None,
    }
}

/// One piece of a string with `${...}` interpolations.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Ref(&'a str),
}

/// Splits a string into literal text and `${...}` references; `$${` is a literal `${`.
fn pieces(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if start > 0 && rest[..start].ends_with('$') {
            // `$${`: the text up to and including one `$`, then a literal `{`.
            out.push(Piece::Text(&rest[..start]));
            out.push(Piece::Text("{"));
            rest = &rest[start + 2..];
            continue;
        }
        out.push(Piece::Text(&rest[..start]));
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("unclosed `${{` in \"{text}\""));
        };
        out.push(Piece::Ref(&after[..end]));
        rest = &after[end + 1..];
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

/// Where a reference was found in a template, for messages (`args.url`).
#[derive(Debug, Clone, PartialEq)]
pub struct FoundRef {
    /// The location inside the arguments (`args.query`, `args.items[1]`).
    pub location: String,
    /// The reference, or why its text is not one.
    pub path: Result<RefPath, String>,
}

/// A value as interpolated text: strings as they are, whole numbers without `.0`, anything
/// else as compact JSON.
pub fn render(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// Every reference in an arguments template.
pub fn collect(args: &Map<String, Value>) -> Vec<FoundRef> {
    let mut found = Vec::new();
    for (key, value) in args {
        collect_in(value, &format!("args.{key}"), &mut found);
    }
    found
}

fn collect_in(value: &Value, location: &str, found: &mut Vec<FoundRef>) {
    if let Some(path) = as_ref_placeholder(value) {
        found.push(FoundRef {
            location: location.to_owned(),
            path: RefPath::parse(path),
        });
        return;
    }
    match value {
        Value::String(text) => match pieces(text) {
            Ok(pieces) => {
                for piece in pieces {
                    if let Piece::Ref(path) = piece {
                        found.push(FoundRef {
                            location: location.to_owned(),
                            path: RefPath::parse(path),
                        });
                    }
                }
            }
            Err(error) => found.push(FoundRef {
                location: location.to_owned(),
                path: Err(error),
            }),
        },
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_in(item, &format!("{location}[{i}]"), found);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                collect_in(item, &format!("{location}.{key}"), found);
            }
        }
        _ => {}
    }
}

/// Replaces every reference in `template` using `scope` (root name → that root's output).
pub fn resolve(
    template: &Map<String, Value>,
    scope: &dyn Fn(&str) -> Option<Value>,
) -> Result<Map<String, Value>, String> {
    template
        .iter()
        .map(|(key, value)| Ok((key.clone(), resolve_value(value, scope)?)))
        .collect()
}

fn lookup(path_text: &str, scope: &dyn Fn(&str) -> Option<Value>) -> Result<Value, String> {
    let path = RefPath::parse(path_text)?;
    let root = scope(&path.root)
        .ok_or_else(|| format!("reference `{path_text}`: no output for `{}`", path.root))?;
    path.lookup(&root)
        .cloned()
        .map_err(|e| format!("reference `{path_text}`: {e}"))
}

fn resolve_value(value: &Value, scope: &dyn Fn(&str) -> Option<Value>) -> Result<Value, String> {
    if let Some(path) = as_ref_placeholder(value) {
        return lookup(path, scope);
    }
    Ok(match value {
        Value::String(text) if text.contains("${") => {
            let mut out = String::with_capacity(text.len());
            for piece in pieces(text)? {
                match piece {
                    Piece::Text(t) => out.push_str(t),
                    Piece::Ref(path) => out.push_str(&render(&lookup(path, scope)?)),
                }
            }
            Value::String(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| resolve_value(item, scope))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), resolve_value(v, scope)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_paths() {
        let p = RefPath::parse("t1.items[0].url").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.root, "t1");
        assert_eq!(
            p.segments,
            [
                Segment::Key("items".into()),
                Segment::Index(0),
                Segment::Key("url".into())
            ]
        );
        let p = RefPath::parse(r#"t-2["a key"]"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.segments, [Segment::Key("a key".into())]);
        for bad in ["", ".x", "t1.", "t1[", "t1[x]", "t1[-1]", "t1 x", "t1..a"] {
            assert!(RefPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lookups_explain_misses() {
        let v = json!({"items": [{"url": "u"}]});
        let p = RefPath::parse("t.items[1]").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            p.lookup(&v),
            Err("`t.items` has 1 element(s), no index 1".into())
        );
        let p = RefPath::parse("t.nope").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            p.lookup(&v),
            Err("`t` has no key `nope` (keys: items)".into())
        );
        let p = RefPath::parse("t.items.x").unwrap_or_else(|e| panic!("{e}"));
        assert!(p.lookup(&v).is_err_and(|e| e.contains("is an array")));
    }

    #[test]
    fn collects_every_reference_with_its_location() {
        let args =
            json!({"a": {"$ref": "t1.x"}, "b": ["${t2} and ${item.y}"], "c": "$${lit}", "d": "${"})
                .as_object()
                .cloned()
                .unwrap_or_default();
        let found = collect(&args);
        let shown: Vec<(String, Option<String>)> = found
            .iter()
            .map(|f| {
                (
                    f.location.clone(),
                    f.path.as_ref().ok().map(|p| p.root.clone()),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("args.a".into(), Some("t1".into())),
                ("args.b[0]".into(), Some("t2".into())),
                ("args.b[0]".into(), Some("item".into())),
                ("args.d".into(), None),
            ]
        );
    }

    #[test]
    fn resolves_keeping_types_and_interpolating() {
        let outputs = json!({"t1": {"items": [{"url": "http://x", "n": 3}]}, "t2": "plain", "item": {"k": [1, 2]}, "f": {"x": 5.0, "y": 2.5}});
        let scope = |root: &str| outputs.get(root).cloned();
        let args = json!({
            "whole": {"$ref": "t1.items[0]"},
            "n": {"$ref": "t1.items[0].n"},
            "text": "get ${t1.items[0].url} (${t1.items[0].n}) ${t2} ${item.k} $${not} ${f.x} ${f.y}",
            "nested": [{"x": {"$ref": "t2"}}],
            "untouched": {"$ref": 5}
        });
        let resolved = resolve(args.as_object().unwrap_or(&Map::new()), &scope)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            Value::Object(resolved),
            json!({
                "whole": {"url": "http://x", "n": 3},
                "n": 3,
                "text": "get http://x (3) plain [1,2] ${not} 5 2.5",
                "nested": [{"x": "plain"}],
                "untouched": {"$ref": 5}
            })
        );
        let err = resolve(
            json!({"a": {"$ref": "t1.items[5]"}})
                .as_object()
                .unwrap_or(&Map::new()),
            &scope,
        );
        assert!(err.is_err_and(|e| e.contains("no index 5")));
    }
}
