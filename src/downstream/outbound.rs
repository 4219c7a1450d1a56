//! What a connection hands its wire to send: rmcp's typed messages, or a `tools/call` whose
//! arguments are still the caller's JSON text.
//!
//! The direct paths of the stdio face and `/mcp` never decode a call's arguments: they
//! reach the stdio wire as the bytes the client sent, written into the request line around
//! mcp-orch's own id, the tool's original name and the progress token. Wires that speak
//! through rmcp's typed client (Streamable HTTP) decode them there.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientJsonRpcMessage, ClientRequest, JsonObject,
    NumberOrString, ProgressToken, RequestId,
};
use serde_json::value::RawValue;

/// One message for a server.
// Typed messages went through the queue by value before raw calls existed; boxing them now
// would add an allocation to every message to save a copy.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Outbound {
    Message(ClientJsonRpcMessage),
    RawCall(RawCall),
}

/// A `tools/call` with the caller's arguments as they came.
#[derive(Debug)]
pub(crate) struct RawCall {
    pub id: i64,
    /// The tool's name on its server (the catalogue's, shared).
    pub name: Arc<str>,
    /// A JSON object, or `None`.
    pub arguments: Option<Box<RawValue>>,
    /// Ask for progress, with the request id as the token.
    pub progress: bool,
}

impl Outbound {
    /// The id of a request (what a failed send reports back).
    pub fn request_id(&self) -> Option<RequestId> {
        match self {
            Outbound::Message(ClientJsonRpcMessage::Request(request)) => Some(request.id.clone()),
            Outbound::RawCall(call) => Some(NumberOrString::Number(call.id)),
            Outbound::Message(_) => None,
        }
    }

    /// Appends the message as JSON (no newline).
    pub fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        match self {
            Outbound::Message(message) => serde_json::to_writer(out, message),
            Outbound::RawCall(call) => {
                out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
                serde_json::to_writer(&mut *out, &call.id)?;
                out.extend_from_slice(br#","method":"tools/call","params":{"name":"#);
                serde_json::to_writer(&mut *out, &call.name)?;
                if let Some(arguments) = &call.arguments {
                    out.extend_from_slice(br#","arguments":"#);
                    out.extend_from_slice(arguments.get().as_bytes());
                }
                if call.progress {
                    out.extend_from_slice(br#","_meta":{"progressToken":"#);
                    serde_json::to_writer(&mut *out, &call.id)?;
                    out.push(b'}');
                }
                out.extend_from_slice(b"}}");
                Ok(())
            }
        }
    }

    /// rmcp's typed message (decoding a raw call's arguments).
    pub fn into_message(self) -> Result<ClientJsonRpcMessage, serde_json::Error> {
        match self {
            Outbound::Message(message) => Ok(message),
            Outbound::RawCall(call) => {
                let mut params = CallToolRequestParams::new(call.name.to_string());
                params.arguments = match &call.arguments {
                    Some(raw) => Some(serde_json::from_str::<JsonObject>(raw.get())?),
                    None => None,
                };
                let mut request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
                if call.progress {
                    use rmcp::model::GetMeta;
                    request
                        .get_meta_mut()
                        .set_progress_token(ProgressToken(NumberOrString::Number(call.id)));
                }
                Ok(ClientJsonRpcMessage::request(
                    request,
                    NumberOrString::Number(call.id),
                ))
            }
        }
    }
}

impl From<ClientJsonRpcMessage> for Outbound {
    fn from(message: ClientJsonRpcMessage) -> Self {
        Outbound::Message(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A raw call is written as the typed one would be, arguments byte for byte.
    #[test]
    fn a_raw_call_is_the_typed_call_with_the_callers_bytes() {
        for (arguments, progress) in [
            (
                Some(r#"{"text":"h\u00e9 \"q\"","n":1.50,"deep":{"a":[1,{}]}}"#),
                true,
            ),
            (Some("{}"), false),
            (None, false),
        ] {
            let raw = || RawCall {
                id: 42,
                name: "echo \"x\"".into(),
                arguments: arguments.map(|a| RawValue::from_string(a.to_owned()).unwrap()),
                progress,
            };
            let mut written = Vec::new();
            Outbound::RawCall(raw()).write_json(&mut written).unwrap();
            if let Some(arguments) = arguments {
                let text = String::from_utf8(written.clone()).unwrap();
                assert!(text.contains(arguments), "{text}");
            }
            let mut typed = Vec::new();
            Outbound::RawCall(raw())
                .into_message()
                .and_then(|m| serde_json::to_writer(&mut typed, &m))
                .unwrap();
            let as_value =
                |bytes: &[u8]| serde_json::from_slice::<serde_json::Value>(bytes).unwrap();
            assert_eq!(as_value(&written), as_value(&typed));
            assert_eq!(
                Outbound::RawCall(raw()).request_id(),
                Some(NumberOrString::Number(42))
            );
        }
    }
}
