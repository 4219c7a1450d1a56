//! `${VAR}` and `${VAR:-default}` expansion over every string of a parsed config tree.
//!
//! Rules, applied to string values only (never to keys):
//! - `${NAME}` is replaced by the variable's value; when unset it becomes `""` and an
//!   [`ExpandWarning`] names the key path and the variable (never a value).
//! - `${NAME:-default}` uses `default` when the variable is unset *or empty*; `default` may be
//!   empty and may itself contain `${...}` references.
//! - `$${` is an escape for a literal `${` (so `$${HOME}` yields `${HOME}`).
//! - A `$` not followed by `{` is literal, and so is a `${` that is never closed or whose
//!   name is not a valid variable name (`[A-Za-z_][A-Za-z0-9_]*`): such text is kept as
//!   written rather than failing, since the typed check that follows usually rejects it with
//!   a precise message anyway.

use std::collections::HashMap;

use serde_json::Value;

use super::tree::{child, index};

/// A variable that was referenced but is not set and has no default.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpandWarning {
    /// Key path of the string that referenced it.
    pub path: String,
    /// The variable name.
    pub variable: String,
}

/// Expands every string in `value` in place using `lookup`; returns the unset variables.
///
/// `lookup` is injected so tests (and embedders) do not depend on the process environment;
/// the file loaders pass `std::env::var`.
pub fn expand_env(
    value: &mut serde_json::Value,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Vec<ExpandWarning> {
    expand_tree(value, lookup).warnings
}

/// Everything an expansion pass learned, for the typed parsing that follows it.
#[derive(Debug, Default)]
pub(super) struct Expansion {
    /// Unset variables, in tree order.
    pub warnings: Vec<ExpandWarning>,
    /// Key path → the string as written, for every string that referenced a variable. Error
    /// messages show this instead of the expanded (possibly secret) value.
    pub originals: HashMap<String, String>,
}

/// [`expand_env`], also reporting which strings were expanded.
pub(super) fn expand_tree(value: &mut Value, lookup: &dyn Fn(&str) -> Option<String>) -> Expansion {
    let mut expansion = Expansion::default();
    expand_at(value, "", lookup, &mut expansion);
    expansion
}

fn expand_at(
    value: &mut Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    out: &mut Expansion,
) {
    match value {
        Value::String(text) => {
            if !text.contains('$') {
                return;
            }
            let mut unset = Vec::new();
            let mut referenced = false;
            let expanded = expand_str(text, lookup, &mut unset, &mut referenced);
            if referenced {
                let original = std::mem::replace(text, expanded);
                out.originals.insert(path.to_string(), original);
            } else {
                *text = expanded;
            }
            for variable in unset {
                let warning = ExpandWarning {
                    path: path.to_string(),
                    variable,
                };
                if !out.warnings.contains(&warning) {
                    out.warnings.push(warning);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_at(item, &index(path, i), lookup, out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                expand_at(item, &child(path, key), lookup, out);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Expands one string. `unset` collects unset variables without defaults; `referenced` is
/// set when any `${NAME...}` reference was substituted.
fn expand_str(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
    referenced: &mut bool,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(escaped) = after.strip_prefix("${") {
            out.push_str("${");
            rest = escaped;
            continue;
        }
        let Some(body_and_rest) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        if let Some(end) = closing_brace(body_and_rest) {
            let body = &body_and_rest[..end];
            let (name, default) = match body.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (body, None),
            };
            if is_variable_name(name) {
                *referenced = true;
                match (lookup(name), default) {
                    (Some(value), Some(_)) if !value.is_empty() => out.push_str(&value),
                    (Some(value), None) => out.push_str(&value),
                    (_, Some(default)) => {
                        out.push_str(&expand_str(default, lookup, unset, referenced));
                    }
                    (None, None) => {
                        if !unset.iter().any(|seen| seen == name) {
                            unset.push(name.to_string());
                        }
                    }
                }
                rest = &body_and_rest[end + 1..];
                continue;
            }
        }
        // Unterminated or not a variable name: keep the `${` literally and carry on after it.
        out.push_str("${");
        rest = body_and_rest;
    }
    out.push_str(rest);
    out
}

/// Byte index of the `}` closing a `${` whose body starts `body`; nested `${...}` (in
/// defaults) are skipped over.
fn closing_brace(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/u".into()),
            "TOKEN" => Some("s3cr3t-value".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn one(text: &str) -> (String, Vec<ExpandWarning>) {
        let mut value = json!(text);
        let warnings = expand_env(&mut value, &env);
        (value.as_str().unwrap_or_default().to_string(), warnings)
    }

    #[test]
    fn substitutes_set_variables() {
        assert_eq!(one("${HOME}/x").0, "/home/u/x");
        assert_eq!(one("a${HOME}b${HOME}c").0, "a/home/ub/home/uc");
        assert_eq!(one("Bearer ${TOKEN}").0, "Bearer s3cr3t-value");
        assert_eq!(one("${EMPTY}").0, "");
    }

    #[test]
    fn defaults_apply_when_unset_or_empty() {
        assert_eq!(one("${NOPE:-fallback}"), ("fallback".into(), vec![]));
        assert_eq!(one("${EMPTY:-fallback}").0, "fallback");
        assert_eq!(one("${HOME:-fallback}").0, "/home/u");
        assert_eq!(one("${NOPE:-}"), (String::new(), vec![]));
        assert_eq!(one("${NOPE:-a:-b}").0, "a:-b");
        assert_eq!(one("${NOPE:-${HOME}/d}").0, "/home/u/d");
        assert_eq!(one("${NOPE:-${ALSO_NOPE:-deep}}!").0, "deep!");
    }

    #[test]
    fn escapes_and_stray_dollars_are_literal() {
        assert_eq!(one("$${HOME}"), ("${HOME}".into(), vec![]));
        // Left to right: a lone `$`, then the `$${` escape.
        assert_eq!(one("$$${HOME}").0, "$${HOME}");
        assert_eq!(one("${NOPE:-$${X}}").0, "${X}");
        assert_eq!(one("cost: $5, $HOME, $").0, "cost: $5, $HOME, $");
        assert_eq!(one("$$x").0, "$$x");
    }

    #[test]
    fn unterminated_and_invalid_references_are_literal() {
        assert_eq!(one("${HOME"), ("${HOME".into(), vec![]));
        assert_eq!(one("x ${"), ("x ${".into(), vec![]));
        assert_eq!(one("${}").0, "${}");
        assert_eq!(one("${1X}").0, "${1X}");
        assert_eq!(one("${A B} ${HOME}").0, "${A B} /home/u");
        assert_eq!(one("${HOME:default}").0, "${HOME:default}");
    }

    #[test]
    fn unset_variables_become_empty_and_are_reported_once_per_string() {
        let (text, warnings) = one("a${NOPE}b${NOPE}${NOPE:-d}");
        assert_eq!(text, "abd");
        assert_eq!(
            warnings,
            vec![ExpandWarning {
                path: String::new(),
                variable: "NOPE".into()
            }]
        );
    }

    #[test]
    fn walks_nested_arrays_and_objects_but_not_keys() {
        let mut value = json!({
            "${HOME}": "${HOME}",
            "list": ["${HOME}", 1, null, true, ["${UNSET_A}"]],
            "obj": {"inner": {"k": "${UNSET_B}", "my.key": "${UNSET_C:-c}"}},
        });
        let warnings = expand_env(&mut value, &env);
        assert_eq!(
            value,
            json!({
                "${HOME}": "/home/u",
                "list": ["/home/u", 1, null, true, [""]],
                "obj": {"inner": {"k": "", "my.key": "c"}},
            })
        );
        let reported: Vec<(&str, &str)> = warnings
            .iter()
            .map(|w| (w.path.as_str(), w.variable.as_str()))
            .collect();
        assert_eq!(
            reported,
            vec![("list[4][0]", "UNSET_A"), ("obj.inner.k", "UNSET_B")]
        );
    }

    #[test]
    fn warnings_never_contain_values() {
        let mut value = json!({"a": "${TOKEN}${MISSING}", "b": ["${MISSING:-${TOKEN}}"]});
        let warnings = expand_env(&mut value, &env);
        assert_eq!(warnings.len(), 1);
        let shown = format!("{warnings:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("MISSING"));
    }

    #[test]
    fn originals_record_only_strings_with_references() {
        let mut value = json!({"a": "${TOKEN}", "b": "$${X}", "c": "plain", "d": "$5"});
        let expansion = expand_tree(&mut value, &env);
        assert_eq!(
            expansion.originals,
            HashMap::from([("a".to_string(), "${TOKEN}".to_string())])
        );
        assert_eq!(value["b"], "${X}");
    }
}
