//! Permission checks inside JSON-RPC bodies (`POST /mcp`, `POST /message`): every message
//! of a body (or of a batch) is read just far enough to know its method(s) and id, and the
//! body is passed on unchanged only if the caller may make every request in it.
//!
//! Each message's `method` keys are all collected (a body repeating `method` needs the
//! permissions of every value), so no parser difference can smuggle a method past the check.
//! A body that is not JSON-RPC-shaped is refused with a parse error instead of being
//! forwarded.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::config::Permission;

use super::identity::Caller;
use super::routes::mcp_permission;

/// The JSON-RPC error code for "the caller's key does not allow this method".
pub const FORBIDDEN_CODE: i64 = -32003;

/// What one message is, as far as permissions go (borrowed from the body: the check
/// allocates nothing per key or value).
#[derive(Debug, Default)]
struct Message<'a> {
    /// Every `method` value (normally one; none for a response).
    methods: Vec<Cow<'a, str>>,
    /// The first `id`, as written, if any.
    id: Option<&'a RawValue>,
}

/// A request the caller may not make.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub id: Option<Value>,
    pub method: String,
    pub permission: Permission,
}

/// The outcome for a whole body.
#[derive(Debug, PartialEq)]
pub enum BodyCheck {
    /// Every message is allowed: pass the body on.
    Allowed,
    /// The body is not a JSON-RPC message or batch.
    Unparsable,
    /// At least one message is not allowed; the reply to send instead, and whether any
    /// message had an id (a reply can be matched to it).
    Refused {
        reply: Value,
        answerable: bool,
        first: Refusal,
    },
}

/// Checks every message of `body` against `caller`'s permissions.
pub fn check(body: &[u8], caller: &Caller) -> BodyCheck {
    let messages = match serde_json::from_slice::<Body<'_>>(body) {
        Ok(Body(messages)) if !messages.is_empty() => messages,
        _ => return BodyCheck::Unparsable,
    };
    let batch = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let mut refusals = Vec::new();
    for message in &messages {
        // A response (no method) answers a server request: needs `read` to be in a session.
        let refused = if message.methods.is_empty() {
            (!caller.may(Permission::Read)).then(|| ("(response)".to_owned(), Permission::Read))
        } else {
            message
                .methods
                .iter()
                .map(|method| (method, mcp_permission(method)))
                .find(|(_, permission)| !caller.may(*permission))
                .map(|(method, permission)| (method.to_string(), permission))
        };
        if let Some((method, permission)) = refused {
            refusals.push(Refusal {
                id: message.id.map(id_value),
                method,
                permission,
            });
        }
    }
    let Some(first) = refusals.first().cloned() else {
        return BodyCheck::Allowed;
    };
    let answerable = messages.iter().any(|m| m.id.is_some());
    let replies: Vec<Value> = if batch {
        // The whole batch is refused: every request in it gets an error.
        messages
            .iter()
            .filter_map(|m| m.id.map(id_value))
            .map(|id| {
                let refusal = refusals
                    .iter()
                    .find(|r| r.id.as_ref() == Some(&id))
                    .unwrap_or(&first);
                error_reply(Some(id), refusal, caller)
            })
            .collect()
    } else {
        vec![error_reply(first.id.clone(), &first, caller)]
    };
    let reply = if batch {
        Value::Array(replies)
    } else {
        replies.into_iter().next().unwrap_or(Value::Null)
    };
    BodyCheck::Refused {
        reply,
        answerable,
        first,
    }
}

/// An id as written (valid JSON, the parser checked it) as a value.
fn id_value(id: &RawValue) -> Value {
    serde_json::from_str(id.get()).unwrap_or(Value::Null)
}

/// The JSON-RPC error for a refused request.
pub fn error_reply(id: Option<Value>, refusal: &Refusal, caller: &Caller) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id.unwrap_or(Value::Null),
        "error": {
            "code": FORBIDDEN_CODE,
            "message": format!(
                "forbidden: {} needs the '{}' permission, which '{}' does not have",
                refusal.method, refusal.permission, caller.name
            ),
            "data": { "method": refusal.method, "permission": refusal.permission.as_str() },
        }
    })
}

/// The JSON-RPC parse error for a body that is not JSON-RPC.
pub fn parse_error() -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": -32700, "message": "parse error: the body is not a JSON-RPC message or batch" }
    })
}

/// A body: one message or a batch.
struct Body<'a>(Vec<Message<'a>>);

impl<'de> Deserialize<'de> for Body<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BodyVisitor)
    }
}

struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = Body<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-RPC message or batch")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Body<'de>, A::Error> {
        Ok(Body(vec![MessageVisitor.visit_map(map)?]))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Body<'de>, A::Error> {
        let mut messages = Vec::new();
        while let Some(message) = seq.next_element::<Message<'de>>()? {
            messages.push(message);
        }
        Ok(Body(messages))
    }
}

impl<'de> Deserialize<'de> for Message<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MessageVisitor)
    }
}

struct MessageVisitor;

impl<'de> Visitor<'de> for MessageVisitor {
    type Value = Message<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-RPC message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message<'de>, A::Error> {
        let mut message = Message::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Method => {
                    let method: &'de RawValue = map.next_value()?;
                    message.methods.push(method_name(method));
                }
                Key::Id => {
                    let id: &'de RawValue = map.next_value()?;
                    message.id.get_or_insert(id);
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(message)
    }
}

/// A `method` value as the permission table knows it: a string's text; anything else as
/// its JSON (which names no method, so it needs `execute`).
fn method_name(raw: &RawValue) -> Cow<'_, str> {
    let text = raw.get();
    if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"'))
        && !inner.contains('\\')
    {
        return Cow::Borrowed(inner);
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::String(method)) => Cow::Owned(method),
        Ok(other) => Cow::Owned(other.to_string()),
        Err(_) => Cow::Owned(text.to_owned()),
    }
}

/// The keys of a message the check looks at, read without allocating.
enum Key {
    Method,
    Id,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(match key {
            "method" => Key::Method,
            "id" => Key::Id,
            _ => Key::Other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::identity::Permissions;
    use std::sync::Arc;

    fn caller(permissions: &[Permission]) -> Caller {
        Caller {
            name: "ci".into(),
            permissions: Permissions::of(permissions),
            limit_key: Arc::from("ci"),
        }
    }

    #[test]
    fn single_messages() {
        let reader = caller(&[Permission::Read]);
        let list = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        assert_eq!(check(list, &reader), BodyCheck::Allowed);
        let call = br#"{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"a"}}"#;
        match check(call, &reader) {
            BodyCheck::Refused {
                reply,
                answerable,
                first,
            } => {
                assert!(answerable);
                assert_eq!(first.permission, Permission::Execute);
                assert_eq!(reply["id"], "x");
                assert_eq!(reply["error"]["code"], FORBIDDEN_CODE);
                let message = reply["error"]["message"].as_str().unwrap_or_default();
                assert!(
                    message.contains("'execute'") && message.contains("tools/call"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        let note = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        assert_eq!(check(note, &reader), BodyCheck::Allowed);
        let nobody = caller(&[]);
        assert!(matches!(
            check(note, &nobody),
            BodyCheck::Refused {
                answerable: false,
                ..
            }
        ));
        assert_eq!(check(b"not json", &reader), BodyCheck::Unparsable);
        assert_eq!(check(b"[]", &reader), BodyCheck::Unparsable);
        assert_eq!(check(b"[1]", &reader), BodyCheck::Unparsable);
    }

    #[test]
    fn repeated_method_keys_need_every_permission() {
        let reader = caller(&[Permission::Read]);
        let sneaky = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"tools/list","params":{"name":"a"}}"#;
        assert!(matches!(check(sneaky, &reader), BodyCheck::Refused { .. }));
        let sneaky = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}"#;
        assert!(matches!(check(sneaky, &reader), BodyCheck::Refused { .. }));
        // Escapes in keys and values are read as the JSON means them.
        let escaped = br#"{"jsonrpc":"2.0","id":1,"me\u0074hod":"tools\/call"}"#;
        match check(escaped, &reader) {
            BodyCheck::Refused { first, .. } => assert_eq!(first.method, "tools/call"),
            other => panic!("{other:?}"),
        }
        let odd = br#"{"jsonrpc":"2.0","id":1,"method":7}"#;
        match check(odd, &reader) {
            BodyCheck::Refused { first, .. } => assert_eq!(first.method, "7"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn batches_are_refused_whole() {
        let reader = caller(&[Permission::Read]);
        let batch = br#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call"}]"#;
        match check(batch, &reader) {
            BodyCheck::Refused { reply, .. } => {
                let replies = reply.as_array().cloned().unwrap_or_default();
                assert_eq!(replies.len(), 2);
                assert_eq!(replies[1]["id"], 2);
                assert!(
                    replies[1]["error"]["message"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("tools/call")
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
