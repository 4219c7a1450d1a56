//! Resource URIs across servers: the namespaced form used when two servers list the same URI
//! (or template), and matching a concrete URI against RFC 6570 URI templates.
//!
//! URIs pass through unchanged by default. When two servers list the same URI, each copy is
//! exposed as `mcp-orch://<server>/<original URI, percent-encoded>`; any URI of that form is
//! also accepted to address a server explicitly. Nothing here talks to a server.

/// Scheme of the namespaced form.
pub const NAMESPACE_SCHEME: &str = "mcp-orch://";

/// `mcp-orch://<server>/<uri>` with both parts percent-encoded.
pub fn namespaced_uri(server: &str, uri: &str) -> String {
    format!(
        "{NAMESPACE_SCHEME}{}/{}",
        encode(server, false),
        encode(uri, false)
    )
}

/// The namespaced form of a URI template: literal text is encoded, `{expressions}` are kept
/// so clients can still expand them.
pub fn namespaced_template(server: &str, template: &str) -> String {
    format!(
        "{NAMESPACE_SCHEME}{}/{}",
        encode(server, false),
        encode(template, true)
    )
}

/// Splits a namespaced URI into `(server, original uri)`.
pub fn parse_namespaced(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix(NAMESPACE_SCHEME)?;
    let (server, original) = rest.split_once('/')?;
    Some((decode(server)?, decode(original)?))
}

fn encode(text: &str, keep_expressions: bool) -> String {
    let mut out = String::with_capacity(text.len() * 3 / 2);
    let mut depth = 0usize;
    for byte in text.bytes() {
        let keep = byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'.' | b'_' | b'~')
            || (keep_expressions && (byte == b'{' || byte == b'}' || depth > 0));
        if keep_expressions {
            if byte == b'{' {
                depth += 1;
            } else if byte == b'}' {
                depth = depth.saturating_sub(1);
            }
        }
        if keep {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A parsed URI template, for matching concrete URIs against it.
#[derive(Debug, Clone, PartialEq)]
pub struct UriTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    /// An expression: its operator decides what it may match.
    Expression(char),
}

impl UriTemplate {
    /// Parses a template; `None` when braces are unbalanced.
    pub fn parse(template: &str) -> Option<UriTemplate> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let close = rest[open..].find('}')? + open;
            let body = &rest[open + 1..close];
            let operator = body
                .chars()
                .next()
                .filter(|c| matches!(c, '+' | '#' | '.' | '/' | ';' | '?' | '&'))
                .unwrap_or(' ');
            parts.push(Part::Expression(operator));
            rest = &rest[close + 1..];
        }
        if rest.contains('}') {
            return None;
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Some(UriTemplate { parts })
    }

    /// Whether some expansion of the template can equal `uri`.
    pub fn matches(&self, uri: &str) -> bool {
        match_parts(&self.parts, uri.as_bytes())
    }
}

/// Backtracking match: literals must match exactly; an expression matches a run of
/// characters its operator allows (possibly empty).
fn match_parts(parts: &[Part], input: &[u8]) -> bool {
    let Some((first, rest)) = parts.split_first() else {
        return input.is_empty();
    };
    match first {
        Part::Literal(literal) => input
            .strip_prefix(literal.as_bytes())
            .is_some_and(|tail| match_parts(rest, tail)),
        Part::Expression(operator) => {
            let allowed = |b: u8| match operator {
                // Reserved expansion and fragments may contain anything.
                '+' | '#' => true,
                // Path segments and query continuations stay within their component.
                '/' | ';' | '.' => b != b'?' && b != b'#',
                '?' | '&' => b != b'#',
                _ => !matches!(b, b'/' | b'?' | b'#' | b'&' | b'='),
            };
            let mut end = 0;
            loop {
                if match_parts(rest, &input[end..]) {
                    return true;
                }
                if end == input.len() || !allowed(input[end]) {
                    return false;
                }
                end += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_uris_round_trip() {
        let uri = "file:///tmp/a b.txt?x=1#frag";
        let namespaced = namespaced_uri("my.server", uri);
        assert!(namespaced.starts_with("mcp-orch://my.server/file%3A%2F%2F%2Ftmp"));
        assert_eq!(
            parse_namespaced(&namespaced),
            Some(("my.server".to_owned(), uri.to_owned()))
        );
        assert_eq!(parse_namespaced("file:///x"), None);
        assert_eq!(parse_namespaced("mcp-orch://nopath"), None);
        assert_eq!(parse_namespaced("mcp-orch://s/%zz"), None);
    }

    #[test]
    fn namespaced_templates_keep_expressions_expandable() {
        let namespaced = namespaced_template("s", "test://items/{id}/data{?q}");
        assert_eq!(
            namespaced,
            "mcp-orch://s/test%3A%2F%2Fitems%2F{id}%2Fdata{?q}"
        );
        // A client expands {id}=7, {?q} empty; decoding gives the original server URI.
        let expanded = namespaced.replace("{id}", "7").replace("{?q}", "");
        assert_eq!(
            parse_namespaced(&expanded),
            Some(("s".to_owned(), "test://items/7/data".to_owned()))
        );
    }

    #[test]
    fn simple_expressions_match_one_segment() {
        let template = UriTemplate::parse("test://template/{id}/data");
        let Some(template) = template else {
            panic!("parse")
        };
        assert!(template.matches("test://template/42/data"));
        assert!(template.matches("test://template//data"));
        assert!(!template.matches("test://template/4/2/data"));
        assert!(!template.matches("test://template/42/other"));
        assert!(!template.matches("other://template/42/data"));
    }

    #[test]
    fn operators_widen_what_matches() {
        let reserved = UriTemplate::parse("file://{+path}").unwrap_or_else(|| panic!("parse"));
        assert!(reserved.matches("file:///a/b/c.txt"));
        let query = UriTemplate::parse("search://x{?q,lang}").unwrap_or_else(|| panic!("parse"));
        assert!(query.matches("search://x?q=rust&lang=en"));
        assert!(query.matches("search://x"));
        let path = UriTemplate::parse("api://v1{/a,b}").unwrap_or_else(|| panic!("parse"));
        assert!(path.matches("api://v1/users/7"));
    }

    #[test]
    fn unbalanced_braces_do_not_parse() {
        assert!(UriTemplate::parse("x://{id").is_none());
        assert!(UriTemplate::parse("x://id}").is_none());
        assert!(UriTemplate::parse("x://plain").is_some_and(|t| t.matches("x://plain")));
    }
}
