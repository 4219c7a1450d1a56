//! Where a request may come from: `Host` and `Origin` allow-lists (DNS-rebinding
//! protection, answered 403) and CORS (off unless origins are configured).
//!
//! Entries use rmcp's syntax, so the same lists also go to rmcp's own check on `/mcp`:
//! hosts are `name` (any port) or `name:port`; origins are `scheme://host` (the scheme's
//! default port), `scheme://host:port` or `scheme://host:*`; `*` allows anything and `null`
//! matches the browsers' `Origin: null`. Comparison ignores case and IPv6 brackets.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Uri};

/// One `host[:port]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRule {
    host: String,
    port: Option<u16>,
}

/// One origin entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginRule {
    Null,
    Tuple {
        scheme: String,
        host: String,
        /// `None` = any port (`:*`).
        port: Option<u16>,
    },
}

/// An allow-list of hosts or origins.
#[derive(Debug, Clone)]
pub struct AllowList<T> {
    any: bool,
    rules: Vec<T>,
}

pub type HostList = AllowList<HostRule>;
pub type OriginList = AllowList<OriginRule>;

fn normalize(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl HostList {
    /// Parses entries; returns the ones it could not read, for a warning.
    pub fn hosts(entries: &[String]) -> (HostList, Vec<String>) {
        let mut list = AllowList {
            any: false,
            rules: Vec::new(),
        };
        let mut bad = Vec::new();
        for entry in entries {
            let entry = entry.trim();
            if entry == "*" {
                list.any = true;
            } else if let Ok(ip) = entry.parse::<std::net::Ipv6Addr>() {
                list.rules.push(HostRule {
                    host: ip.to_string(),
                    port: None,
                });
            } else if let Ok(authority) = http::uri::Authority::try_from(entry) {
                list.rules.push(HostRule {
                    host: normalize(authority.host()),
                    port: authority.port_u16(),
                });
            } else {
                bad.push(entry.to_owned());
            }
        }
        (list, bad)
    }

    /// Whether the request's `Host` (or HTTP/2 `:authority`) is allowed. A request with
    /// neither is refused.
    pub fn allows(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), String> {
        if self.any {
            return Ok(());
        }
        // The usual `Host` (a name or IPv4 address, maybe a port) is read in place; anything
        // else goes through `Authority`, which copies it.
        if let Some(value) = headers.get(header::HOST)
            && let Some((host, port)) = plain_host(value.as_bytes())
        {
            return if self.matches(host, port) {
                Ok(())
            } else {
                Err(shown(value))
            };
        }
        let authority = match headers.get(header::HOST) {
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|s| http::uri::Authority::try_from(s).ok())
                .ok_or_else(|| shown(value))?,
            None => uri.authority().cloned().ok_or_else(String::new)?,
        };
        if self.matches(authority.host(), authority.port_u16()) {
            Ok(())
        } else {
            Err(shown_str(authority.as_str()))
        }
    }

    /// Whether a rule allows `host` (as written: brackets and case do not matter) and `port`.
    fn matches(&self, host: &str, port: Option<u16>) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        // Rule hosts are lower case (`normalize`).
        self.rules.iter().any(|rule| {
            rule.host.eq_ignore_ascii_case(host) && rule.port.is_none_or(|p| Some(p) == port)
        })
    }
}

/// `host[:port]` when `host` is only letters, digits, dots and dashes and `port` is a
/// number: what [`http::uri::Authority`] would read, without copying. `None` for anything
/// else (IPv6, user info, odd characters), which takes the `Authority` path.
fn plain_host(value: &[u8]) -> Option<(&str, Option<u16>)> {
    let (host, port) = match value.iter().position(|b| *b == b':') {
        Some(colon) => (&value[..colon], Some(&value[colon + 1..])),
        None => (value, None),
    };
    if host.is_empty()
        || !host
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
    {
        return None;
    }
    let port = match port {
        None => None,
        Some(digits)
            if !digits.is_empty() && digits.len() <= 5 && digits.iter().all(u8::is_ascii_digit) =>
        {
            Some(std::str::from_utf8(digits).ok()?.parse::<u16>().ok()?)
        }
        Some(_) => return None,
    };
    Some((std::str::from_utf8(host).ok()?, port))
}

impl OriginList {
    /// Parses entries; returns the ones it could not read, for a warning.
    pub fn origins(entries: &[String]) -> (OriginList, Vec<String>) {
        let mut list = AllowList {
            any: false,
            rules: Vec::new(),
        };
        let mut bad = Vec::new();
        for entry in entries {
            let entry = entry.trim();
            if entry == "*" {
                list.any = true;
                continue;
            }
            if entry.eq_ignore_ascii_case("null") {
                list.rules.push(OriginRule::Null);
                continue;
            }
            let (base, any_port) = match entry.strip_suffix(":*") {
                Some(base) => (base, true),
                None => (entry, false),
            };
            match parse_origin(base) {
                Some((scheme, host, port)) if !(any_port && port.is_some()) => {
                    let port = if any_port {
                        None
                    } else {
                        port.or_else(|| default_port(&scheme))
                    };
                    list.rules.push(OriginRule::Tuple { scheme, host, port });
                }
                _ => bad.push(entry.to_owned()),
            }
        }
        (list, bad)
    }

    /// Whether `origin` (the header's value) is allowed.
    pub fn allows_value(&self, origin: &HeaderValue) -> bool {
        if self.any {
            return true;
        }
        let Ok(text) = origin.to_str() else {
            return false;
        };
        if text.trim().eq_ignore_ascii_case("null") {
            return self.rules.contains(&OriginRule::Null);
        }
        let Some((scheme, host, port)) = parse_origin(text.trim()) else {
            return false;
        };
        let port = port.or_else(|| default_port(&scheme));
        self.rules.iter().any(|rule| match rule {
            OriginRule::Null => false,
            OriginRule::Tuple {
                scheme: s,
                host: h,
                port: p,
            } => *s == scheme && *h == host && (p.is_none() || *p == port),
        })
    }

    /// Whether the request's `Origin`, if any, is allowed (no `Origin`: not a browser).
    pub fn allows(&self, headers: &HeaderMap) -> Result<(), String> {
        match headers.get(header::ORIGIN) {
            None => Ok(()),
            Some(origin) if self.allows_value(origin) => Ok(()),
            Some(origin) => Err(shown(origin)),
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.any && self.rules.is_empty()
    }
}

/// `scheme://host[:port]` with nothing after it.
fn parse_origin(text: &str) -> Option<(String, String, Option<u16>)> {
    let uri = Uri::try_from(text).ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?;
    if authority.as_str().contains('@') || !matches!(uri.path(), "" | "/") || uri.query().is_some()
    {
        return None;
    }
    Some((scheme, normalize(authority.host()), authority.port_u16()))
}

/// A client-supplied header value, safe to show in a message: printable ASCII, cut short.
fn shown(value: &HeaderValue) -> String {
    shown_str(&String::from_utf8_lossy(value.as_bytes()))
}

fn shown_str(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(100)
        .collect()
}

/// The request headers a browser may send cross-origin.
const CORS_ALLOW_HEADERS: &str = "authorization, content-type, accept, mcp-session-id, \
     mcp-protocol-version, last-event-id, x-request-id";
/// The response headers a browser script may read.
const CORS_EXPOSE_HEADERS: &str = "mcp-session-id, mcp-protocol-version, x-request-id, \
     x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset, retry-after, www-authenticate";

/// CORS: which browser origins get CORS headers. Empty = off.
#[derive(Debug, Clone)]
pub struct Cors {
    origins: OriginList,
}

impl Cors {
    pub fn new(origins: OriginList) -> Self {
        Cors { origins }
    }

    pub fn enabled(&self) -> bool {
        !self.origins.is_empty()
    }

    /// The allowed origin of a request, if CORS applies to it.
    pub fn origin_of(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        self.origins.allows_value(origin).then(|| origin.clone())
    }

    /// Whether this is a preflight request CORS should answer.
    pub fn is_preflight(&self, method: &Method, headers: &HeaderMap) -> bool {
        self.enabled()
            && method == Method::OPTIONS
            && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// Headers of a preflight answer for `origin`.
    pub fn preflight_headers(&self, origin: HeaderValue, out: &mut HeaderMap) {
        self.response_headers(origin, out);
        out.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
        );
        out.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(CORS_ALLOW_HEADERS),
        );
        out.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }

    /// Headers added to every answer to an allowed origin.
    pub fn response_headers(&self, origin: HeaderValue, out: &mut HeaderMap) {
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        out.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(CORS_EXPOSE_HEADERS),
        );
        out.append(header::VARY, HeaderValue::from_static("origin"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn host(list: &HostList, value: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::HOST,
            HeaderValue::from_str(value).unwrap_or_else(|e| panic!("{e}")),
        );
        list.allows(&Uri::from_static("/mcp"), &headers).is_ok()
    }

    #[test]
    fn hosts() {
        let (list, bad) = HostList::hosts(&strings(&[
            "localhost",
            "127.0.0.1",
            "::1",
            "api.example:8443",
            "a b",
        ]));
        assert_eq!(bad, ["a b"]);
        assert!(host(&list, "localhost:3000"));
        assert!(host(&list, "LOCALHOST"));
        assert!(host(&list, "[::1]:3000"));
        assert!(host(&list, "api.example:8443"));
        assert!(!host(&list, "api.example:443"));
        assert!(!host(&list, "evil.example.com"));
        assert!(!host(&list, "localhost.evil.example.com"));
        let (any, _) = HostList::hosts(&strings(&["*"]));
        assert!(host(&any, "evil.example.com"));
        let no_host = list.allows(&Uri::from_static("/mcp"), &HeaderMap::new());
        assert!(no_host.is_err());
        // Both ways of reading `Host` (in place, and through `Authority`) agree.
        assert!(host(&list, "127.0.0.1:3000") && host(&list, "LocalHost:1"));
        assert!(!host(&list, "user@evil.example") && !host(&list, "evil.example:3000"));
        assert!(host(&list, "localhost:") && host(&list, "user@localhost:3000"));
    }

    /// What `plain_host` reads is what `Authority` reads, for every shape it takes.
    #[test]
    fn plain_hosts_read_like_authorities() {
        for text in [
            "localhost",
            "LOCALHOST:3000",
            "127.0.0.1:0",
            "a-b.c:65535",
            "x:00080",
            "localhost:65536",
            "localhost:",
            ":80",
            "[::1]:80",
            "user@host",
            "a_b",
            "host:8:9",
        ] {
            let authority = http::uri::Authority::try_from(text).ok();
            match plain_host(text.as_bytes()) {
                Some((host, port)) => {
                    let authority = authority.unwrap_or_else(|| panic!("{text}: not an authority"));
                    assert_eq!(
                        (host, port),
                        (authority.host(), authority.port_u16()),
                        "{text}"
                    );
                }
                None => assert!(
                    !matches!(
                        text,
                        "localhost" | "LOCALHOST:3000" | "127.0.0.1:0" | "a-b.c:65535" | "x:00080"
                    ),
                    "{text}: should be read in place"
                ),
            }
        }
    }

    #[test]
    fn origins() {
        let (list, bad) = OriginList::origins(&strings(&[
            "http://localhost:*",
            "https://app.example.com",
            "http://[::1]:*",
            "null",
            "app.example.com",
        ]));
        assert_eq!(bad, ["app.example.com"]);
        let ok = |v: &str| {
            list.allows_value(&HeaderValue::from_str(v).unwrap_or_else(|e| panic!("{e}")))
        };
        assert!(ok("http://localhost:5173"));
        assert!(ok("http://localhost"));
        assert!(ok("https://app.example.com"));
        assert!(ok("https://app.example.com:443"));
        assert!(!ok("https://app.example.com:8443"));
        assert!(!ok("http://app.example.com"));
        assert!(ok("http://[::1]:80"));
        assert!(ok("null"));
        assert!(!ok("http://evil.example.com"));
        assert!(!ok("https://localhost:5173"));
        assert!(!ok("garbage"));
        assert!(list.allows(&HeaderMap::new()).is_ok());
    }
}
