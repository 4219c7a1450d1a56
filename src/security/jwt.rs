//! JSON Web Tokens signed with `JWT_SECRET` (HS256 only), so a team can mint short-lived
//! tokens without touching `config.yaml`.
//!
//! Checked: the header's `alg` is `HS256` (anything else, `none` included, is refused) and
//! it has no `crit`; the signature (HMAC-SHA256, compared in constant time); `exp` is
//! present and in the future; `nbf`, when present, is in the past; the `permissions` claim
//! is a list of `read` / `write` / `execute`. Both time checks allow [`LEEWAY_SECS`] of clock
//! skew. `sub` (optional) names the caller in logs and rate limits. Not checked: `iss`,
//! `aud`, `iat`. Errors describe the token's problem, never its content.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::config::Permission;

/// The claim holding the token's permissions.
pub const PERMISSIONS_CLAIM: &str = "permissions";
/// Clock skew allowed on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;
/// Longest token looked at.
const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Longest `sub` kept (longer ones are cut).
const MAX_SUBJECT_CHARS: usize = 64;

/// Why a JWT was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not a well-formed JWT ({0})")]
    Malformed(&'static str),
    #[error("the token's algorithm is not HS256")]
    Algorithm,
    #[error("the token's signature does not match JWT_SECRET")]
    Signature,
    #[error("the token has no `exp` claim (a JWT must expire)")]
    NoExpiry,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (`nbf` is in the future)")]
    NotYetValid,
    #[error("the token's `permissions` claim must be a list of `read`, `write`, `execute`")]
    Permissions,
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// `sub`, cut to a few dozen printable characters; `None` when absent.
    pub subject: Option<String>,
    pub permissions: Vec<Permission>,
}

/// Verifies HS256 tokens with one secret.
#[derive(Clone)]
pub struct JwtVerifier {
    secret: Vec<u8>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtVerifier(<secret redacted>)")
    }
}

/// Whether `token` has the shape of a JWT (three base64url parts); says nothing of validity.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.starts_with("eyJ")
}

impl JwtVerifier {
    pub fn new(secret: &str) -> Self {
        JwtVerifier {
            secret: secret.as_bytes().to_vec(),
        }
    }

    /// Checks `token` at Unix time `now`.
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, JwtError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JwtError::Malformed("too long"));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed("it needs three dot-separated parts"));
        };
        let header: Value = decode_json(header, "header")?;
        if header.get("alg").and_then(Value::as_str) != Some("HS256") {
            return Err(JwtError::Algorithm);
        }
        if header.get("crit").is_some() {
            return Err(JwtError::Malformed(
                "`crit` header parameters are not supported",
            ));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| JwtError::Malformed("the signature is not base64url"))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret)
            .map_err(|_| JwtError::Malformed("unusable secret"))?;
        let signed_len = token.len() - signature_len(token);
        mac.update(&token.as_bytes()[..signed_len]);
        mac.verify_slice(&signature)
            .map_err(|_| JwtError::Signature)?;
        let claims: Value = decode_json(payload, "payload")?;
        let exp = claims
            .get("exp")
            .ok_or(JwtError::NoExpiry)
            .and_then(|v| seconds(v).ok_or(JwtError::Malformed("`exp` is not a number")))?;
        if now >= exp.saturating_add(LEEWAY_SECS) {
            return Err(JwtError::Expired);
        }
        if let Some(nbf) = claims.get("nbf") {
            let nbf = seconds(nbf).ok_or(JwtError::Malformed("`nbf` is not a number"))?;
            if now.saturating_add(LEEWAY_SECS) < nbf {
                return Err(JwtError::NotYetValid);
            }
        }
        let mut permissions = Vec::new();
        for item in claims
            .get(PERMISSIONS_CLAIM)
            .and_then(Value::as_array)
            .ok_or(JwtError::Permissions)?
        {
            let permission = item
                .as_str()
                .and_then(Permission::from_name)
                .ok_or(JwtError::Permissions)?;
            permissions.push(permission);
        }
        permissions.sort();
        permissions.dedup();
        let subject = claims.get("sub").and_then(Value::as_str).map(|s| {
            s.chars()
                .filter(|c| !c.is_control())
                .take(MAX_SUBJECT_CHARS)
                .collect()
        });
        Ok(Claims {
            subject,
            permissions,
        })
    }
}

/// Length of the last part plus its dot.
fn signature_len(token: &str) -> usize {
    token.rfind('.').map_or(0, |dot| token.len() - dot)
}

fn decode_json(part: &str, what: &'static str) -> Result<Value, JwtError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| {
        JwtError::Malformed(if what == "header" {
            "the header is not base64url"
        } else {
            "the payload is not base64url"
        })
    })?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(JwtError::Malformed(if what == "header" {
            "the header is not a JSON object"
        } else {
            "the payload is not a JSON object"
        })),
    }
}

/// A NumericDate: whole (or fractional, truncated) non-negative seconds.
fn seconds(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

/// Signs `claims` with `secret` (HS256): what `mcp-orch`'s tests and tools use to mint
/// tokens. The README shows how to do the same with Python.
pub fn mint(secret: &str, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{payload}");
    let signature = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(signed.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    format!("{signed}.{signature}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;

    fn verify(token: &str) -> Result<Claims, JwtError> {
        JwtVerifier::new("s3cret-s3cret-s3cret").verify(token, NOW)
    }

    #[test]
    fn valid_tokens_give_their_claims() {
        let token = mint(
            "s3cret-s3cret-s3cret",
            &json!({"sub": "ci", "exp": NOW + 60, "nbf": NOW - 1, "permissions": ["execute", "read", "read"]}),
        );
        assert!(looks_like_jwt(&token));
        assert_eq!(
            verify(&token),
            Ok(Claims {
                subject: Some("ci".into()),
                permissions: vec![Permission::Read, Permission::Execute]
            })
        );
    }

    #[test]
    fn every_check_refuses() {
        let good = json!({"exp": NOW + 60, "permissions": []});
        let secret = "s3cret-s3cret-s3cret";
        let with = |claims: Value| verify(&mint(secret, &claims));
        assert_eq!(
            with(json!({"exp": NOW - 31, "permissions": []})),
            Err(JwtError::Expired)
        );
        assert!(
            with(json!({"exp": NOW - 5, "permissions": []})).is_ok(),
            "leeway"
        );
        assert_eq!(with(json!({"permissions": []})), Err(JwtError::NoExpiry));
        assert_eq!(
            with(json!({"exp": NOW + 60, "nbf": NOW + 120, "permissions": []})),
            Err(JwtError::NotYetValid)
        );
        assert_eq!(with(json!({"exp": NOW + 60})), Err(JwtError::Permissions));
        assert_eq!(
            with(json!({"exp": NOW + 60, "permissions": ["admin"]})),
            Err(JwtError::Permissions)
        );
        assert_eq!(
            verify(&mint("another-secret", &good)),
            Err(JwtError::Signature)
        );
        // alg none, and a tampered payload.
        let token = mint(secret, &good);
        let mut parts: Vec<&str> = token.split('.').collect();
        let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        parts[0] = &none;
        assert_eq!(verify(&parts.join(".")), Err(JwtError::Algorithm));
        let forged =
            URL_SAFE_NO_PAD.encode(json!({"exp": NOW + 60, "permissions": ["write"]}).to_string());
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(
            verify(&format!("{}.{forged}.{}", parts[0], parts[2])),
            Err(JwtError::Signature)
        );
        assert!(matches!(verify("a.b"), Err(JwtError::Malformed(_))));
        assert!(matches!(verify("a.b.c.d"), Err(JwtError::Malformed(_))));
    }
}
