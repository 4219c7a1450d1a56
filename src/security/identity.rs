//! Who is calling: `Authorization: Bearer <token>` checked against the configured API keys
//! (`security.api_keys[]`, `API_KEY`) and, when `JWT_SECRET` is set, as an HS256 JWT.
//!
//! Keys are kept only as SHA-256 digests and compared in constant time (every key is
//! compared, whatever matched). A [`Caller`] carries a name for logs and limits, never the
//! token. Nothing here logs.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::config::{ApiKeyEntry, Permission};

use super::jwt::{JwtError, JwtVerifier, looks_like_jwt};

/// The authenticated (or anonymous) caller of one request; put in the request's extensions
/// for the faces (`GET /health` shows details only to callers that may `read`).
#[derive(Debug, Clone)]
pub struct Caller {
    /// For logs and messages: the key's configured name, `API_KEY`, `jwt:<sub>`, or the
    /// client address when authentication is off. Never secret.
    pub name: Arc<str>,
    /// What the caller may do.
    pub permissions: Permissions,
    /// Rate limits are counted per this (a key name, or the client's address).
    pub limit_key: Arc<str>,
}

/// A set of [`Permission`]s (a caller is made on every request: this allocates nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Permissions(u8);

impl Permissions {
    /// Every permission.
    pub const ALL: Permissions = Permissions(0b111);

    /// The set holding `list`.
    pub fn of(list: &[Permission]) -> Permissions {
        Permissions(list.iter().fold(0, |bits, p| bits | Self::bit(*p)))
    }

    /// Whether `permission` is in the set.
    pub fn contains(self, permission: Permission) -> bool {
        self.0 & Self::bit(permission) != 0
    }

    fn bit(permission: Permission) -> u8 {
        match permission {
            Permission::Read => 1,
            Permission::Write => 2,
            Permission::Execute => 4,
        }
    }
}

impl Caller {
    /// Whether the caller holds `permission`.
    pub fn may(&self, permission: Permission) -> bool {
        self.permissions.contains(permission)
    }

    /// Everything allowed: authentication is off (the client is identified by `address`,
    /// its rate-limit key, made once per connection).
    pub fn unauthenticated(address: &Arc<str>) -> Caller {
        Caller {
            name: address.clone(),
            permissions: Permissions::ALL,
            limit_key: address.clone(),
        }
    }

    /// Nothing allowed: authentication is on and no (valid) credential came, on an open
    /// route.
    pub fn anonymous(address: &str) -> Caller {
        let name: Arc<str> = format!("anonymous {address}").into();
        Caller {
            name: name.clone(),
            permissions: Permissions::default(),
            limit_key: name,
        }
    }
}

/// Why a request is not authenticated (401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("this endpoint needs `Authorization: Bearer <API key or JWT>`")]
    Missing,
    #[error("the Authorization header must be `Bearer <API key or JWT>`")]
    NotBearer,
    #[error("the bearer token is not a known API key")]
    UnknownKey,
    #[error(transparent)]
    Jwt(#[from] JwtError),
}

impl AuthError {
    /// The RFC 6750 `error` code for `WWW-Authenticate`, when there is one.
    pub fn bearer_error(&self) -> Option<&'static str> {
        match self {
            AuthError::Missing => None,
            AuthError::NotBearer => Some("invalid_request"),
            _ => Some("invalid_token"),
        }
    }
}

/// One configured key, as a digest.
struct StoredKey {
    name: Arc<str>,
    /// `key:<name>`, what its callers' requests are rate-limited under.
    limit_key: Arc<str>,
    digest: [u8; 32],
    permissions: Permissions,
}

/// The accepted credentials.
pub struct KeyRing {
    keys: Vec<StoredKey>,
    jwt: Option<JwtVerifier>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.keys.iter().map(|k| &*k.name).collect();
        f.debug_struct("KeyRing")
            .field("keys", &names)
            .field("jwt", &self.jwt.is_some())
            .finish()
    }
}

/// The name the `API_KEY` environment variable's key goes by.
pub const ENV_KEY_NAME: &str = "API_KEY";

impl KeyRing {
    /// The configured keys, plus `API_KEY` (all permissions) when given, plus JWTs when a
    /// secret is given. An `API_KEY` equal to a configured key adds nothing.
    pub fn new(
        configured: &[ApiKeyEntry],
        env_key: Option<&str>,
        jwt_secret: Option<&str>,
    ) -> Self {
        let mut keys: Vec<StoredKey> = configured
            .iter()
            .map(|entry| StoredKey {
                name: entry.name.as_str().into(),
                limit_key: format!("key:{}", entry.name).into(),
                digest: digest(&entry.key),
                permissions: Permissions::of(&entry.permissions),
            })
            .collect();
        if let Some(key) = env_key {
            let digest = digest(key);
            if !keys.iter().any(|k| k.digest == digest) {
                keys.push(StoredKey {
                    name: ENV_KEY_NAME.into(),
                    limit_key: format!("key:{ENV_KEY_NAME}").into(),
                    digest,
                    permissions: Permissions::ALL,
                });
            }
        }
        KeyRing {
            keys,
            jwt: jwt_secret.map(JwtVerifier::new),
        }
    }

    /// What is accepted, for the startup log: key names and whether JWTs are.
    pub fn describe(&self) -> String {
        let names: Vec<&str> = self.keys.iter().map(|k| &*k.name).collect();
        let keys = if names.is_empty() {
            "no API keys".to_owned()
        } else {
            format!("API keys: {}", names.join(", "))
        };
        if self.jwt.is_some() {
            format!("{keys}; HS256 JWTs")
        } else {
            keys
        }
    }

    /// Whether any credential is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.jwt.is_none()
    }

    /// The caller presenting `authorization` (the raw header value, if any) at Unix time
    /// `now`.
    pub fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        now: u64,
    ) -> Result<Caller, AuthError> {
        let header = authorization.ok_or(AuthError::Missing)?;
        let token = bearer_token(header).ok_or(AuthError::NotBearer)?;
        let presented = digest(token);
        let mut found: Option<&StoredKey> = None;
        for key in &self.keys {
            if constant_time_eq(&key.digest, &presented) {
                found = Some(key);
            }
        }
        if let Some(key) = found {
            return Ok(Caller {
                name: key.name.clone(),
                permissions: key.permissions,
                limit_key: key.limit_key.clone(),
            });
        }
        match &self.jwt {
            Some(verifier) if looks_like_jwt(token) => {
                let claims = verifier.verify(token, now)?;
                let name: Arc<str> = match &claims.subject {
                    Some(sub) => format!("jwt:{sub}").into(),
                    None => "jwt".into(),
                };
                Ok(Caller {
                    limit_key: name.clone(),
                    name,
                    permissions: Permissions::of(&claims.permissions),
                })
            }
            _ => Err(AuthError::UnknownKey),
        }
    }
}

/// The token of `Bearer <token>` (scheme case-insensitive), if the header has that shape.
fn bearer_token(header: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, token) = text.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer")
        && !token.is_empty()
        && !token.contains(char::is_whitespace))
    .then_some(token)
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Equality whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut difference = 0u8;
    for (x, y) in a.iter().zip(b) {
        difference |= x ^ y;
    }
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> KeyRing {
        KeyRing::new(
            &[ApiKeyEntry {
                name: "ci".into(),
                key: "key-ci-0123456789".into(),
                permissions: vec![Permission::Read],
            }],
            Some("key-env-0123456789"),
            None,
        )
    }

    #[test]
    fn keys_and_headers() {
        let ring = ring();
        let caller = ring
            .authenticate(Some(b"Bearer key-ci-0123456789"), 0)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&*caller.name, "ci");
        assert!(caller.may(Permission::Read) && !caller.may(Permission::Execute));
        let env = ring
            .authenticate(Some(b"bearer  key-env-0123456789 "), 0)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&*env.name, ENV_KEY_NAME);
        assert_eq!(env.permissions, Permissions::ALL);
        assert_eq!(env.permissions, Permissions::of(&Permission::ALL));
        assert_eq!(&*env.limit_key, "key:API_KEY");
        assert_eq!(ring.authenticate(None, 0).err(), Some(AuthError::Missing));
        assert_eq!(
            ring.authenticate(Some(b"Basic a2V5"), 0).err(),
            Some(AuthError::NotBearer)
        );
        assert_eq!(
            ring.authenticate(Some(b"Bearer key-ci-012345678"), 0).err(),
            Some(AuthError::UnknownKey)
        );
        assert!(format!("{ring:?}").contains("ci") && !format!("{ring:?}").contains("0123"));
    }
}
