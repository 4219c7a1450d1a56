//! AWS Bedrock Converse (`POST /model/{modelId}/converse`), authenticated either with a
//! Bedrock API key (`Authorization: Bearer`, `llm.api_key` or `AWS_BEARER_TOKEN_BEDROCK`)
//! or with SigV4 (`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`,
//! region from `llm.region` or `AWS_REGION`). A structured answer is requested as a forced
//! tool (`toolChoice: {tool: {name}}`, supported by Anthropic and Mistral models on
//! Bedrock); a text answer with a JSON block is accepted too.

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::http::{client, post_json};
use super::sigv4::{self, Credentials, SignRequest};
use super::{ChatRequest, ChatResponse, LlmError, LlmProvider};
use crate::config::{LlmSettings, PlanOutput};

/// How requests are authenticated.
enum Auth {
    /// A Bedrock API key.
    Bearer(String),
    /// Signed requests.
    SigV4(Credentials),
}

/// The Bedrock Converse API.
pub struct Bedrock {
    url: String,
    region: String,
    auth: Auth,
    model: String,
    max_tokens: u32,
    temperature: f64,
    timeout: Duration,
    client: reqwest::Client,
}

impl Bedrock {
    /// `bearer` wins over `credentials` when both are present.
    pub fn new(
        settings: &LlmSettings,
        region: Option<String>,
        bearer: Option<String>,
        credentials: Option<Credentials>,
    ) -> Result<Self, LlmError> {
        let missing = |detail: &str| LlmError::Config {
            provider: "bedrock",
            detail: detail.into(),
        };
        let region = region.ok_or_else(|| missing("set `llm.region` or AWS_REGION"))?;
        let model = settings
            .model
            .clone()
            .ok_or_else(|| missing("set `llm.model` (a Bedrock model id)"))?;
        let auth = match (bearer, credentials) {
            (Some(key), _) => Auth::Bearer(key),
            (None, Some(credentials)) => Auth::SigV4(credentials),
            (None, None) => {
                return Err(missing(
                    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a Bedrock API key in \
                     `llm.api_key` / AWS_BEARER_TOKEN_BEDROCK)",
                ));
            }
        };
        let endpoint = settings
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://bedrock-runtime.{region}.amazonaws.com"));
        let url = format!(
            "{}/model/{}/converse",
            endpoint.trim_end_matches('/'),
            sigv4::encode_path_segment(&model)
        );
        Ok(Bedrock {
            url,
            region,
            auth,
            model,
            max_tokens: settings.max_tokens,
            temperature: settings.temperature,
            timeout: settings.timeout,
            client: client("bedrock", settings.timeout)?,
        })
    }

    fn body(&self, request: &ChatRequest) -> Value {
        let messages: Vec<Value> = request
            .messages
            .iter()
            .map(|m| json!({"role": m.role.as_str(), "content": [{"text": m.content}]}))
            .collect();
        let mut system = request.system.clone();
        if request.json_mode {
            system.push_str("\nAnswer with a single JSON value and nothing else.");
        }
        let mut body = json!({
            "messages": messages,
            "system": [{"text": system}],
            "inferenceConfig": {
                "maxTokens": request.max_tokens.unwrap_or(self.max_tokens),
                "temperature": self.temperature,
            },
        });
        if let (Some(s), Some(map)) = (&request.structured, body.as_object_mut())
            && s.mode != PlanOutput::Text
        {
            map.insert(
                "toolConfig".into(),
                json!({
                    "tools": [{"toolSpec": {"name": s.name, "description": s.description,
                                            "inputSchema": {"json": s.schema}}}],
                    "toolChoice": {"tool": {"name": s.name}},
                }),
            );
        }
        body
    }

    /// The headers for one request with `body` at `amz_date`.
    fn auth_headers(&self, body: &[u8], amz_date: &str) -> Vec<(String, String)> {
        match &self.auth {
            Auth::Bearer(key) => vec![("authorization".into(), format!("Bearer {key}"))],
            Auth::SigV4(credentials) => {
                let signed = [
                    ("content-type".to_owned(), "application/json".to_owned()),
                    ("accept".to_owned(), "application/json".to_owned()),
                ];
                sigv4::sign(
                    &SignRequest {
                        method: "POST",
                        url: &self.url,
                        headers: &signed,
                        body,
                        region: &self.region,
                        service: "bedrock",
                        amz_date,
                    },
                    credentials,
                )
            }
        }
    }
}

/// Reads `output.message.content`: text blocks and the first `toolUse` input.
pub fn parse_response(value: &Value) -> Result<ChatResponse, LlmError> {
    let Some(blocks) = value["output"]["message"]["content"].as_array() else {
        return Err(LlmError::Invalid {
            provider: "bedrock",
            detail: format!(
                "no `output.message.content` in {}",
                super::preview(&value.to_string())
            ),
        });
    };
    let text = blocks
        .iter()
        .filter_map(|b| b["text"].as_str())
        .collect::<Vec<_>>()
        .join("");
    let structured = blocks
        .iter()
        .find_map(|b| b.get("toolUse"))
        .map(|t| t["input"].clone());
    Ok(ChatResponse { text, structured })
}

impl LlmProvider for Bedrock {
    fn describe(&self) -> String {
        let auth = match self.auth {
            Auth::Bearer(_) => "API key",
            Auth::SigV4(_) => "SigV4",
        };
        format!("bedrock {} at {} ({auth})", self.model, self.url)
    }

    /// A forced tool call, or text: no response formats.
    fn plan_outputs(&self) -> &'static [PlanOutput] {
        &[PlanOutput::Tool, PlanOutput::Text]
    }

    fn complete(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse, LlmError>> {
        async move {
            let body = serde_json::to_vec(&self.body(&request)).unwrap_or_default();
            let headers = self.auth_headers(&body, &sigv4::amz_date(std::time::SystemTime::now()));
            let answer = post_json(
                &self.client,
                "bedrock",
                self.timeout,
                &self.url,
                &headers,
                body,
            )
            .await?;
            parse_response(&answer)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bedrock(bearer: Option<&str>) -> Bedrock {
        let settings = LlmSettings {
            model: Some("anthropic.claude-3-5-haiku-20241022-v1:0".into()),
            ..LlmSettings::default()
        };
        Bedrock::new(
            &settings,
            Some("us-west-2".into()),
            bearer.map(str::to_owned),
            Some(Credentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
                session_token: Some("tok".into()),
            }),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn model_ids_are_encoded_in_the_url_and_signed() {
        let b = bedrock(None);
        assert_eq!(
            b.url,
            "https://bedrock-runtime.us-west-2.amazonaws.com/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
        );
        let headers = b.auth_headers(b"{}", "20250101T000000Z");
        let auth = headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-west-2/bedrock/aws4_request, SignedHeaders=accept;content-type;host;x-amz-date;x-amz-security-token, Signature="), "{auth}");
        assert!(
            headers
                .iter()
                .any(|(k, v)| k == "x-amz-security-token" && v == "tok")
        );
        let bearer = bedrock(Some("bedrock-key"));
        assert_eq!(
            bearer.auth_headers(b"{}", "x"),
            [("authorization".to_owned(), "Bearer bedrock-key".to_owned())]
        );
    }

    #[test]
    fn tool_use_is_the_structured_answer() {
        let answer = json!({"output": {"message": {"role": "assistant", "content": [
            {"text": "ok"}, {"toolUse": {"toolUseId": "1", "name": "submit_plan", "input": {"goal": "g"}}}]}}});
        let parsed = parse_response(&answer).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.text, "ok");
        assert_eq!(parsed.structured, Some(json!({"goal": "g"})));
    }
}
