//! Permission checks inside JSON-RPC bodies (`POST /mcp`, `POST /message`): every message
//! of a body (or of a batch) is read just far enough to know its method(s) and id, and the
//! body is passed on unchanged only if the caller may make every request in it.
//!
//! Each message's `method` keys are all collected (a body repeating `method` needs the
//! permissions of every value), so no parser difference can smuggle a method past the check.
//! A body that is not JSON-RPC-shaped is refused with a parse error instead of being
//! forwarded.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Value, json};

use crate::config::Permission;

use super::identity::Caller;
use super::routes::mcp_permission;

/// The JSON-RPC error code for "the caller's key does not allow this method".
pub const FORBIDDEN_CODE: i64 = -32003;

/// What one message is, as far as permissions go.
#[derive(Debug, Default)]
struct Message {
    /// Every `method` value (normally one; none for a response).
    methods: Vec<String>,
    /// The first `id`, if any.
    id: Option<Value>,
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
    let messages = match serde_json::from_slice::<Body>(body) {
        Ok(Body(messages)) if !messages.is_empty() => messages,
        _ => return BodyCheck::Unparsable,
    };
    let batch = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let mut refusals = Vec::new();
    for message in &messages {
        // A response (no method) answers a server request: needs `read` to be in a session.
        let needed: Vec<(String, Permission)> = if message.methods.is_empty() {
            vec![("(response)".to_owned(), Permission::Read)]
        } else {
            message
                .methods
                .iter()
                .map(|m| (m.clone(), mcp_permission(m)))
                .collect()
        };
        if let Some((method, permission)) = needed.into_iter().find(|(_, p)| !caller.may(*p)) {
            refusals.push(Refusal {
                id: message.id.clone(),
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
            .filter(|m| m.id.is_some())
            .map(|m| {
                let refusal = refusals.iter().find(|r| r.id == m.id).unwrap_or(&first);
                error_reply(m.id.clone(), refusal, caller)
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
struct Body(Vec<Message>);

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BodyVisitor)
    }
}

struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = Body;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-RPC message or batch")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Body, A::Error> {
        Ok(Body(vec![MessageVisitor.visit_map(map)?]))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Body, A::Error> {
        let mut messages = Vec::new();
        while let Some(message) = seq.next_element::<Message>()? {
            messages.push(message);
        }
        Ok(Body(messages))
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MessageVisitor)
    }
}

struct MessageVisitor;

impl<'de> Visitor<'de> for MessageVisitor {
    type Value = Message;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-RPC message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message, A::Error> {
        let mut message = Message::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "method" => match map.next_value::<Value>()? {
                    Value::String(method) => message.methods.push(method),
                    other => message.methods.push(other.to_string()),
                },
                "id" => {
                    let id = map.next_value::<Value>()?;
                    message.id.get_or_insert(id);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn caller(permissions: &[Permission]) -> Caller {
        Caller {
            name: "ci".into(),
            permissions: permissions.to_vec(),
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
