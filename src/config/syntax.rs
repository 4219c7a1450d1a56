//! Turning file text into a `serde_json::Value` tree: JSON for `mcp-config.json`, YAML (via
//! serde-saphyr) for `config.yaml`. Both share this step so expansion and typed parsing
//! downstream see the same tree shape; syntax errors become [`ConfigError::Syntax`] with a
//! 1-based line and column and a one-line message.

use std::fmt;
use std::path::Path;

use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::ConfigError;

/// Parses JSON text. Whitespace-only text is an empty object (an empty file means "nothing
/// configured"). Duplicate keys are a syntax error: serde_json would silently keep the last
/// one, which would silently drop a server.
pub(super) fn parse_json(text: &str, file: &Path) -> Result<Value, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_str::<NoDuplicates>(text) {
        Ok(NoDuplicates(value)) => Ok(value),
        Err(err) => {
            let message = strip_position_suffix(&err.to_string());
            Err(ConfigError::Syntax {
                file: file.to_path_buf(),
                line: err.line().max(1),
                column: err.column().max(1),
                message: one_line(&message),
            })
        }
    }
}

/// Parses YAML text. Empty (or comment-only) text is `null`, which callers treat as "all
/// defaults". serde-saphyr already rejects duplicate keys. Booleans are YAML 1.2 (`true`,
/// `false`): the YAML 1.1 spellings `yes`/`no`/`on`/`off` stay strings, so `host: no` or a
/// key `on` is not silently turned into a boolean.
pub(super) fn parse_yaml(text: &str, file: &Path) -> Result<Value, ConfigError> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    let options = serde_saphyr::options! { strict_booleans: true };
    match serde_saphyr::from_str_with_options::<Option<Value>>(text, options) {
        Ok(value) => Ok(value.unwrap_or(Value::Null)),
        Err(err) => {
            let err = err.without_snippet();
            let (line, column) = err
                .location()
                .map(|loc| (loc.line(), loc.column()))
                .unwrap_or((0, 0));
            let rendered = err.render_with_options(serde_saphyr::render_options! {
                snippets: serde_saphyr::SnippetMode::Off,
            });
            Err(ConfigError::Syntax {
                file: file.to_path_buf(),
                line: usize::try_from(line).unwrap_or(usize::MAX).max(1),
                column: usize::try_from(column).unwrap_or(usize::MAX).max(1),
                message: one_line(&developer_hint_removed(&strip_position_suffix(&rendered))),
            })
        }
    }
}

/// serde_json appends ` at line L column C`; serde-saphyr's plain rendering appends a similar
/// suffix. The position lives in its own fields, so drop it from the message.
fn strip_position_suffix(message: &str) -> String {
    for marker in [" at line ", " at line: "] {
        if let Some(index) = message.rfind(marker) {
            let tail = &message[index + marker.len()..];
            if tail.starts_with(|c: char| c.is_ascii_digit()) {
                return message[..index].to_string();
            }
        }
    }
    message.to_string()
}

/// serde-saphyr addresses some messages to the programmer ("set DuplicateKeyPolicy in Options
/// if acceptable"); the user of a config file cannot act on that.
fn developer_hint_removed(message: &str) -> String {
    match message.find(", set DuplicateKeyPolicy") {
        Some(index) => message[..index].to_string(),
        None => message.to_string(),
    }
}

/// `Display` of errors is one line; parser messages occasionally are not.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A JSON value whose objects must not repeat a key.
struct NoDuplicates(Value);

impl<'de> Deserialize<'de> for NoDuplicates {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(NoDuplicatesVisitor)
            .map(NoDuplicates)
    }
}

struct NoDuplicatesVisitor;

impl<'de> Visitor<'de> for NoDuplicatesVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        NoDuplicates::deserialize(deserializer).map(|v| v.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(NoDuplicates(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(A::Error::custom(format_args!(
                    "duplicate key {}",
                    Value::String(key)
                )));
            }
            let NoDuplicates(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syntax(result: Result<Value, ConfigError>) -> (usize, usize, String) {
        match result {
            Err(ConfigError::Syntax {
                line,
                column,
                message,
                ..
            }) => (line, column, message),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn json_syntax_error_has_position_and_one_line_message() {
        let (line, column, message) = syntax(parse_json(
            "{\n  \"a\": 1,\n  \"b\" 2\n}",
            Path::new("x.json"),
        ));
        assert_eq!((line, column), (3, 7));
        assert!(message.contains("expected `:`"), "{message}");
        assert!(!message.contains("line"), "{message}");
    }

    #[test]
    fn json_duplicate_key_is_a_syntax_error() {
        let (line, _, message) = syntax(parse_json(
            "{\"mcpServers\": {\n\"a\": {},\n\"a\": {}}}",
            Path::new("x.json"),
        ));
        assert_eq!(line, 3);
        assert_eq!(message, "duplicate key \"a\"");
    }

    #[test]
    fn empty_json_is_an_empty_object() {
        assert_eq!(
            parse_json(" \n", Path::new("x")).unwrap(),
            Value::Object(Map::new())
        );
    }

    #[test]
    fn json_byte_order_mark_is_skipped() {
        assert_eq!(
            parse_json("\u{feff}{\"a\": 1}", Path::new("x")).unwrap(),
            serde_json::json!({"a": 1})
        );
        assert_eq!(
            parse_json("\u{feff}", Path::new("x")).unwrap(),
            Value::Object(Map::new())
        );
    }

    #[test]
    fn json_values_round_trip() {
        let value = parse_json(
            r#"{"a": [1, -2, 1.5, true, null, "s"], "b": {}}"#,
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(
            value,
            serde_json::json!({"a": [1, -2, 1.5, true, null, "s"], "b": {}})
        );
    }

    #[test]
    fn empty_and_comment_only_yaml_is_null() {
        assert_eq!(parse_yaml("", Path::new("c")).unwrap(), Value::Null);
        assert_eq!(
            parse_yaml("# nothing\n", Path::new("c")).unwrap(),
            Value::Null
        );
    }

    #[test]
    fn yaml_parses_into_json_values() {
        let value = parse_yaml(
            "server:\n  host: 127.0.0.1\n  port: 3000\nlist: [a, 2]\nflag: true\n",
            Path::new("c"),
        )
        .unwrap();
        assert_eq!(
            value,
            serde_json::json!({"server": {"host": "127.0.0.1", "port": 3000},
                "list": ["a", 2], "flag": true})
        );
    }

    #[test]
    fn yaml_booleans_are_yaml_1_2() {
        let value = parse_yaml("a: yes\nb: off\nc: True\nd: false\n", Path::new("c")).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"a": "yes", "b": "off", "c": true, "d": false})
        );
    }

    #[test]
    fn yaml_syntax_error_has_position_and_one_line_message() {
        let (line, column, message) = syntax(parse_yaml(
            "server:\n  port: [1, 2\nproxy: {}\n",
            Path::new("c"),
        ));
        assert!(line >= 2, "{line}");
        assert!(column >= 1);
        assert!(!message.contains('\n'));
        assert!(!message.is_empty());
    }

    #[test]
    fn yaml_duplicate_key_is_a_syntax_error() {
        let (line, _, message) = syntax(parse_yaml("a: 1\nb: 2\na: 3\n", Path::new("c")));
        assert_eq!(line, 3);
        assert_eq!(message, "duplicate mapping key: a");
    }
}
