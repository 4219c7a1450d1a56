//! Reading typed values out of an already-expanded `serde_json::Value` tree, with exact key
//! paths in every error. Shared by `mcp-config.json` and `config.yaml` so both report
//! `at \`a.b[1]\`: expected X, found Y` the same way.
//!
//! Conventions: a `null` value counts as absent (YAML's `key:` with nothing after it); strings
//! that came out of `${VAR}` expansion are never echoed in errors (their original text,
//! `"${VAR}"`, is shown instead); booleans and integers are also accepted as strings
//! (`"true"`, `"3000"`) because that is all `${VAR}` can produce.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use super::expand::Expansion;
use super::{ConfigError, ConfigWarning, WarningKind, parse_duration};

/// Longest string echoed in a message before it is shortened.
const MAX_ECHO_CHARS: usize = 60;

/// The path of `key` inside the object at `parent`: `a.b`, or `a["b c"]` when the key is not
/// a plain word (so a server called `my.server` cannot be mistaken for two levels).
pub(super) fn child(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (plain, parent.is_empty()) {
        (true, true) => key.to_string(),
        (true, false) => format!("{parent}.{key}"),
        (false, _) => format!("{parent}[{}]", Value::String(key.to_string())),
    }
}

/// The path of element `i` of the array at `parent`: `a.b[1]`.
pub(super) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// `map[key]`, with `null` treated as absent.
pub(super) fn field<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    map.get(key).filter(|value| !value.is_null())
}

/// One walk over one file's tree: knows the file name for messages, which strings were
/// expanded (so they are not echoed), and collects warnings.
pub(super) struct Walk {
    file: PathBuf,
    yaml: bool,
    originals: HashMap<String, String>,
    warnings: Vec<ConfigWarning>,
}

impl Walk {
    /// Starts a walk; the expansion's unset-variable reports become the first warnings.
    pub(super) fn new(file: &Path, yaml: bool, expansion: Expansion) -> Self {
        let warnings = expansion
            .warnings
            .into_iter()
            .map(|warning| ConfigWarning::unset(file, warning))
            .collect();
        Walk {
            file: file.to_path_buf(),
            yaml,
            originals: expansion.originals,
            warnings,
        }
    }

    /// The warnings collected so far.
    pub(super) fn into_warnings(self) -> Vec<ConfigWarning> {
        self.warnings
    }

    /// `an object` / `a mapping`, in the vocabulary of the file's format.
    pub(super) fn object_word(&self) -> &'static str {
        if self.yaml { "a mapping" } else { "an object" }
    }

    /// `an array` / `a list`.
    pub(super) fn array_word(&self) -> &'static str {
        if self.yaml { "a list" } else { "an array" }
    }

    /// An `Invalid` error at `path`, describing `found` (when given) safely.
    pub(super) fn invalid(
        &self,
        path: &str,
        expected: impl Into<String>,
        found: Option<&Value>,
    ) -> ConfigError {
        let found = match found {
            Some(value) => format!(", found {}", self.describe(path, value)),
            None => String::new(),
        };
        self.invalid_with(path, expected, found)
    }

    /// An `Invalid` error with a ready-made `found` part (`", found ..."` or empty).
    pub(super) fn invalid_with(
        &self,
        path: &str,
        expected: impl Into<String>,
        found: String,
    ) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            path: if path.is_empty() {
                "(top level)".to_string()
            } else {
                path.to_string()
            },
            expected: expected.into(),
            found,
        }
    }

    /// How a value is shown after "found": its type, plus the value for scalars that came
    /// from the file itself. Expanded strings show their unexpanded text instead.
    pub(super) fn describe(&self, path: &str, value: &Value) -> String {
        match value {
            Value::Null => "null".to_string(),
            Value::Bool(b) => format!("a boolean ({b})"),
            Value::Number(n) => format!("a number ({n})"),
            Value::Array(_) => self.array_word().to_string(),
            Value::Object(_) => self.object_word().to_string(),
            Value::String(s) => match self.originals.get(path) {
                Some(original) if s.is_empty() => {
                    format!("{}, which expanded to an empty string", echo(original))
                }
                Some(original) => format!("{} (after expansion)", echo(original)),
                None if s.is_empty() => "an empty string".to_string(),
                None => echo(s),
            },
        }
    }

    /// Warns about every key of `map` (at `path`) not in `known`.
    pub(super) fn unknown_keys(&mut self, path: &str, map: &Map<String, Value>, known: &[&str]) {
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                self.warnings.push(ConfigWarning {
                    file: self.file.clone(),
                    path: child(path, key),
                    kind: WarningKind::UnknownKey,
                });
            }
        }
    }

    /// Warns that the key at `path` was ignored, and why.
    pub(super) fn not_applicable(&mut self, path: &str, reason: impl Into<String>) {
        self.warnings.push(ConfigWarning {
            file: self.file.clone(),
            path: path.to_string(),
            kind: WarningKind::NotApplicable {
                reason: reason.into(),
            },
        });
    }

    /// The value as an object; `expected` describes it for the error.
    pub(super) fn object<'v>(
        &self,
        path: &str,
        value: &'v Value,
        expected: &str,
    ) -> Result<&'v Map<String, Value>, ConfigError> {
        value
            .as_object()
            .ok_or_else(|| self.invalid(path, expected, Some(value)))
    }

    /// Any string.
    pub(super) fn string(&self, path: &str, value: &Value) -> Result<String, ConfigError> {
        match value {
            Value::String(s) => Ok(s.clone()),
            _ => Err(self.invalid(path, "a string", Some(value))),
        }
    }

    /// A string that is not empty (after expansion); `expected` names what it is.
    pub(super) fn non_empty_string(
        &self,
        path: &str,
        value: &Value,
        expected: &str,
    ) -> Result<String, ConfigError> {
        match value {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            _ => Err(self.invalid(path, expected, Some(value))),
        }
    }

    /// A non-empty string that may be a secret (an API key): on error only its type is shown,
    /// even for text written literally in the file.
    pub(super) fn secret_string(
        &self,
        path: &str,
        value: &Value,
        expected: &str,
    ) -> Result<String, ConfigError> {
        match value {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            Value::String(_) => Err(self.invalid(path, expected, Some(value))),
            Value::Bool(_) => Err(self.invalid_with(path, expected, ", found a boolean".into())),
            Value::Number(_) => Err(self.invalid_with(path, expected, ", found a number".into())),
            _ => Err(self.invalid(path, expected, Some(value))),
        }
    }

    /// `map[key]` (at `path`), or an error saying the key is required.
    pub(super) fn required<'v>(
        &self,
        path: &str,
        map: &'v Map<String, Value>,
        key: &str,
        expected: &str,
    ) -> Result<&'v Value, ConfigError> {
        field(map, key).ok_or_else(|| {
            self.invalid_with(&child(path, key), expected, ", but it is missing".into())
        })
    }

    /// `true`/`false`, or the strings `"true"`/`"false"`.
    pub(super) fn boolean(&self, path: &str, value: &Value) -> Result<bool, ConfigError> {
        match value {
            Value::Bool(b) => Ok(*b),
            Value::String(s) if s.trim() == "true" => Ok(true),
            Value::String(s) if s.trim() == "false" => Ok(false),
            _ => Err(self.invalid(path, "true or false", Some(value))),
        }
    }

    /// A whole number in `min..=max` (or a string of one); `expected` describes the range.
    pub(super) fn integer(
        &self,
        path: &str,
        value: &Value,
        min: u64,
        max: u64,
        expected: &str,
    ) -> Result<u64, ConfigError> {
        let number = match value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match number {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(self.invalid(path, expected, Some(value))),
        }
    }

    /// A positive duration: a number of seconds (possibly fractional) or a duration string.
    pub(super) fn duration(&self, path: &str, value: &Value) -> Result<Duration, ConfigError> {
        let parsed = match value {
            Value::Number(n) => match n.as_u64() {
                Some(secs) => Some(Duration::from_secs(secs)),
                None => n
                    .as_f64()
                    .and_then(|secs| Duration::try_from_secs_f64(secs).ok()),
            },
            Value::String(s) => parse_duration(s),
            _ => None,
        };
        match parsed {
            Some(duration) if !duration.is_zero() => Ok(duration),
            Some(_) => Err(self.invalid(path, "a duration greater than zero", Some(value))),
            None => Err(self.invalid(
                path,
                "a number of seconds or a duration like \"30s\"",
                Some(value),
            )),
        }
    }

    /// An array of strings.
    pub(super) fn string_list(
        &self,
        path: &str,
        value: &Value,
    ) -> Result<Vec<String>, ConfigError> {
        let expected = format!("{} of strings", self.array_word());
        let items = value
            .as_array()
            .ok_or_else(|| self.invalid(path, &expected, Some(value)))?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| self.string(&index(path, i), item))
            .collect()
    }

    /// An object whose values are all strings.
    pub(super) fn string_map(
        &self,
        path: &str,
        value: &Value,
    ) -> Result<BTreeMap<String, String>, ConfigError> {
        let expected = format!("{} of string values", self.object_word());
        let map = self.object(path, value, &expected)?;
        map.iter()
            .map(|(key, item)| Ok((key.clone(), self.string(&child(path, key), item)?)))
            .collect()
    }
}

/// A string quoted for a message, shortened when long.
fn echo(text: &str) -> String {
    if text.chars().count() <= MAX_ECHO_CHARS {
        return Value::String(text.to_string()).to_string();
    }
    let head: String = text.chars().take(MAX_ECHO_CHARS - 1).collect();
    Value::String(format!("{head}…")).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn walk(yaml: bool) -> Walk {
        let mut expansion = Expansion::default();
        expansion
            .originals
            .insert("a.secret".into(), "${TOKEN}".into());
        expansion
            .originals
            .insert("a.gone".into(), "${GONE}".into());
        Walk::new(Path::new("f"), yaml, expansion)
    }

    #[test]
    fn paths_quote_keys_that_are_not_plain_words() {
        assert_eq!(child("", "mcpServers"), "mcpServers");
        assert_eq!(child("mcpServers", "git-hub_2"), "mcpServers.git-hub_2");
        assert_eq!(
            child("mcpServers", "my.server"),
            "mcpServers[\"my.server\"]"
        );
        assert_eq!(child("mcpServers", ""), "mcpServers[\"\"]");
        assert_eq!(index("mcpServers.a.args", 1), "mcpServers.a.args[1]");
    }

    #[test]
    fn describe_never_echoes_expanded_strings() {
        let w = walk(false);
        assert_eq!(
            w.describe("a.secret", &json!("hunter2")),
            "\"${TOKEN}\" (after expansion)"
        );
        assert_eq!(
            w.describe("a.gone", &json!("")),
            "\"${GONE}\", which expanded to an empty string"
        );
        assert_eq!(w.describe("a.other", &json!("soon")), "\"soon\"");
        assert_eq!(w.describe("a.other", &json!("")), "an empty string");
        assert_eq!(w.describe("x", &json!(3)), "a number (3)");
        assert_eq!(w.describe("x", &json!(false)), "a boolean (false)");
        assert_eq!(w.describe("x", &json!([])), "an array");
        assert_eq!(walk(true).describe("x", &json!({})), "a mapping");
    }

    #[test]
    fn long_strings_are_shortened() {
        let long = "x".repeat(100);
        let shown = walk(false).describe("p", &json!(long));
        assert_eq!(shown.chars().count(), MAX_ECHO_CHARS + 2);
        assert!(shown.ends_with("x…\""), "{shown}");
    }

    #[test]
    fn scalars_accept_their_string_forms() {
        let w = walk(false);
        assert!(w.boolean("p", &json!("true")).unwrap());
        assert!(!w.boolean("p", &json!(false)).unwrap());
        assert!(w.boolean("p", &json!("yes")).is_err());
        assert_eq!(w.integer("p", &json!("3000"), 0, 65535, "x").unwrap(), 3000);
        assert!(w.integer("p", &json!(70000), 0, 65535, "x").is_err());
        assert!(w.integer("p", &json!(1.5), 0, 65535, "x").is_err());
        assert_eq!(
            w.duration("p", &json!(1.5)).unwrap(),
            Duration::from_millis(1500)
        );
    }

    #[test]
    fn duration_errors_explain_the_accepted_forms() {
        let w = walk(false);
        assert_eq!(
            w.duration("t", &json!("soon")).unwrap_err().to_string(),
            "f: at `t`: expected a number of seconds or a duration like \"30s\", found \"soon\""
        );
        assert_eq!(
            w.duration("t", &json!(0)).unwrap_err().to_string(),
            "f: at `t`: expected a duration greater than zero, found a number (0)"
        );
        assert!(w.duration("t", &json!(-1)).is_err());
    }

    #[test]
    fn string_collections_report_the_bad_element() {
        let w = walk(false);
        assert_eq!(
            w.string_list("a.args", &json!(["x", 1]))
                .unwrap_err()
                .to_string(),
            "f: at `a.args[1]`: expected a string, found a number (1)"
        );
        assert_eq!(
            w.string_list("a.args", &json!("x"))
                .unwrap_err()
                .to_string(),
            "f: at `a.args`: expected an array of strings, found \"x\""
        );
        assert_eq!(
            w.string_map("a.env", &json!({"K": true}))
                .unwrap_err()
                .to_string(),
            "f: at `a.env.K`: expected a string, found a boolean (true)"
        );
        assert_eq!(
            walk(true)
                .string_map("a.env", &json!([]))
                .unwrap_err()
                .to_string(),
            "f: at `a.env`: expected a mapping of string values, found a list"
        );
    }
}
