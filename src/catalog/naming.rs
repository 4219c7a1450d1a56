//! Exposed names: how a downstream `(server, tool)` pair is named towards clients.
//!
//! The rules (documented in the README, "Tool names"):
//! 1. `raw = prefix + separator + name`, or just `name` when the prefix is empty.
//! 2. When the separator is client-safe (only `[A-Za-z0-9_-]`), every character outside that
//!    set is replaced by `_`, so the result matches `^[a-zA-Z0-9_-]{1,64}$` (Claude's rule;
//!    OpenAI's is the same). With a `.` separator, `.` is kept too.
//! 3. A name longer than the limit is cut and given a stable hash suffix `_xxxxxxxx`
//!    (FNV-1a of the original server and tool names, so it never changes between runs).
//! 4. If two pairs still end up with the same name (e.g. sanitising made `a.b` equal to
//!    `a_b`): when exactly one of them is pristine (its name needed no change) it keeps the
//!    name, and every other member gets the hash-suffixed form; otherwise all of them do.
//!    Should even that collide, a salted hash is used, in a fixed order. Exposed names are
//!    therefore unique by construction, and the outcome never depends on listing order.
//!
//! Nothing here ever splits a name on the separator: the reverse direction is a map lookup
//! (see [`super::Catalog`]).

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

/// Claude rejects tool names longer than this; OpenAI uses the same cap.
pub const MAX_EXPOSED_NAME_LEN: usize = 64;

/// Length of the hash suffix including its leading `_`.
const HASH_SUFFIX_LEN: usize = 9;

/// One name to assign: which server it belongs to, its namespace prefix and its original name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRequest<'a> {
    pub server: &'a str,
    pub prefix: &'a str,
    pub original: &'a str,
}

/// Assigns exposed names to `requests` (same order in the result). The result is unique and,
/// for a client-safe separator, every name matches `^[a-zA-Z0-9_-]{1,max_len}$`.
pub fn assign_exposed_names(
    requests: &[NameRequest<'_>],
    separator: &str,
    max_len: usize,
) -> Vec<String> {
    let max_len = max_len.max(HASH_SUFFIX_LEN + 1);
    let extra_allowed: &[char] = if separator.contains('.') { &['.'] } else { &[] };
    let mut names: Vec<String> = requests
        .iter()
        .map(|r| natural_name(r, separator, extra_allowed, max_len))
        .collect();

    // In a colliding group a lone pristine member keeps its name; the others are hashed.
    // Collisions are rare: find them in one pass, group only those.
    let groups: Vec<Vec<usize>> = {
        let mut first: HashMap<&str, usize> = HashMap::with_capacity(names.len());
        let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, name) in names.iter().enumerate() {
            if let Some(&earlier) = first.get(name.as_str()) {
                groups
                    .entry(name.as_str())
                    .or_insert_with(|| vec![earlier])
                    .push(i);
            } else {
                first.insert(name.as_str(), i);
            }
        }
        groups.into_values().collect()
    };
    let mut to_hash: Vec<usize> = Vec::new();
    for members in groups {
        let pristine: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&i| names[i] == raw_name(&requests[i], separator))
            .collect();
        if pristine.len() == 1 {
            to_hash.extend(members.into_iter().filter(|&i| i != pristine[0]));
        } else {
            to_hash.extend(members);
        }
    }
    if to_hash.is_empty() {
        // No two names are equal: unique already.
        return names;
    }
    for i in to_hash {
        let sanitized = sanitize(raw_name(&requests[i], separator), extra_allowed);
        names[i] = hashed_name(&sanitized, &requests[i], max_len, 0);
    }

    // Last resort: a hashed name equal to another name. Resolve in a fixed order so the
    // outcome does not depend on the order servers answered in.
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|&a, &b| {
        (requests[a].server, requests[a].original).cmp(&(requests[b].server, requests[b].original))
    });
    let mut taken: HashSet<String> = HashSet::with_capacity(names.len());
    for i in order {
        let mut salt = 0u32;
        while taken.contains(&names[i]) {
            salt += 1;
            let sanitized = sanitize(raw_name(&requests[i], separator), extra_allowed);
            names[i] = hashed_name(&sanitized, &requests[i], max_len, salt);
        }
        taken.insert(names[i].clone());
    }
    names
}

/// Whether `name` is accepted by the strictest clients (`^[a-zA-Z0-9_-]{1,64}$`).
pub fn is_client_safe(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_EXPOSED_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn raw_name(request: &NameRequest<'_>, separator: &str) -> String {
    if request.prefix.is_empty() {
        request.original.to_owned()
    } else {
        let mut raw =
            String::with_capacity(request.prefix.len() + separator.len() + request.original.len());
        raw.push_str(request.prefix);
        raw.push_str(separator);
        raw.push_str(request.original);
        raw
    }
}

/// The name before collisions are looked at (hashed when empty or too long once sanitised).
fn natural_name(
    request: &NameRequest<'_>,
    separator: &str,
    extra_allowed: &[char],
    max_len: usize,
) -> String {
    let sanitized = sanitize(raw_name(request, separator), extra_allowed);
    if sanitized.is_empty() || sanitized.len() > max_len {
        hashed_name(&sanitized, request, max_len, 0)
    } else {
        sanitized
    }
}

/// `raw` with every character outside `[A-Za-z0-9_-]` (plus `extra_allowed`) replaced by
/// `_`; returned as it is when there is none (the usual case).
fn sanitize(raw: String, extra_allowed: &[char]) -> String {
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-' || extra_allowed.contains(&c);
    if raw.chars().all(allowed) {
        return raw;
    }
    raw.chars()
        .map(|c| if allowed(c) { c } else { '_' })
        .collect()
}

fn hashed_name(sanitized: &str, request: &NameRequest<'_>, max_len: usize, salt: u32) -> String {
    let mut hash = fnv1a(request.server.as_bytes(), FNV_OFFSET);
    hash = fnv1a(&[0], hash);
    hash = fnv1a(request.original.as_bytes(), hash);
    if salt > 0 {
        hash = fnv1a(&salt.to_le_bytes(), hash);
    }
    let suffix = format!("_{:08x}", (hash ^ (hash >> 32)) as u32);
    // `sanitized` is ASCII except for allowed multi-byte-free chars, so byte cuts are safe;
    // still, cut on a char boundary to be robust.
    let keep = max_len - suffix.len();
    let mut head: String = sanitized.chars().take(keep).collect();
    while head.len() > keep {
        head.pop();
    }
    head.push_str(&suffix);
    head
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64 bit: tiny, stable across versions and platforms (unlike `DefaultHasher`).
fn fnv1a(bytes: &[u8], mut hash: u64) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(server: &'a str, original: &'a str) -> NameRequest<'a> {
        NameRequest {
            server,
            prefix: server,
            original,
        }
    }

    fn assign(reqs: &[NameRequest<'_>]) -> Vec<String> {
        assign_exposed_names(reqs, "__", MAX_EXPOSED_NAME_LEN)
    }

    #[test]
    fn plain_names_are_prefix_separator_tool() {
        let names = assign(&[req("github", "list_issues"), req("fs", "read_file")]);
        assert_eq!(names, ["github__list_issues", "fs__read_file"]);
    }

    #[test]
    fn empty_prefix_exposes_the_original_name() {
        let names = assign(&[NameRequest {
            server: "conformance",
            prefix: "",
            original: "test_simple_text",
        }]);
        assert_eq!(names, ["test_simple_text"]);
    }

    #[test]
    fn configured_separator_is_used() {
        let names = assign_exposed_names(&[req("a", "b")], ".", 64);
        assert_eq!(names, ["a.b"]);
        let names = assign_exposed_names(&[req("a", "b")], "-", 64);
        assert_eq!(names, ["a-b"]);
    }

    #[test]
    fn servers_with_underscores_dashes_and_dots_stay_readable() {
        let names = assign(&[
            req("my_server", "do_it"),
            req("my-server", "do-it"),
            req("my.server", "do.it"),
        ]);
        assert_eq!(names[0], "my_server__do_it");
        assert_eq!(names[1], "my-server__do-it");
        // `my.server`/`do.it` sanitises to the same text as `my_server`/`do_it`; the pristine
        // one keeps the plain name and the sanitised one gets a hash suffix.
        assert!(names[2].starts_with("my_server__do_it_"), "{}", names[2]);
        assert_eq!(names[2].len(), "my_server__do_it".len() + HASH_SUFFIX_LEN);
        assert!(names.iter().all(|n| is_client_safe(n)), "{names:?}");
    }

    #[test]
    fn collisions_get_distinct_hash_suffixes_for_every_member() {
        // "a_" + "__" + "_b" and "a" + "__" + "__b" are both "a____b".
        let names = assign(&[req("a_", "_b"), req("a", "__b")]);
        assert_ne!(names[0], names[1]);
        assert!(names[0].starts_with("a____b_") && names[0].len() == 6 + HASH_SUFFIX_LEN);
        assert!(names[1].starts_with("a____b_") && names[1].len() == 6 + HASH_SUFFIX_LEN);
    }

    #[test]
    fn collision_resolution_does_not_depend_on_order() {
        let forward = assign(&[req("x", "a.b"), req("x", "a_b"), req("y", "t")]);
        let backward = assign(&[req("y", "t"), req("x", "a_b"), req("x", "a.b")]);
        assert_eq!(forward[0], backward[2]);
        assert_eq!(forward[1], backward[1]);
        assert_eq!(forward[2], backward[0]);
    }

    #[test]
    fn long_names_are_shortened_deterministically() {
        let long_tool = "t".repeat(100);
        let first = assign(&[req("server", &long_tool)]);
        let second = assign(&[req("server", &long_tool)]);
        assert_eq!(first, second);
        assert_eq!(first[0].len(), MAX_EXPOSED_NAME_LEN);
        assert!(is_client_safe(&first[0]));
        assert!(first[0].starts_with("server__ttt"));
        // The suffix is a pure function of (server, tool): pin it so a change is noticed.
        assert_eq!(&first[0][55..], "_e8dec267", "{}", first[0]);
    }

    #[test]
    fn long_names_sharing_a_head_stay_distinct() {
        let a = format!("{}_alpha", "x".repeat(80));
        let b = format!("{}_beta", "x".repeat(80));
        let names = assign(&[req("s", &a), req("s", &b)]);
        assert_ne!(names[0], names[1]);
        assert!(names.iter().all(|n| n.len() == MAX_EXPOSED_NAME_LEN));
    }

    #[test]
    fn names_with_forbidden_characters_are_sanitised() {
        let names = assign(&[req("files", "read/file v2"), req("ünï", "çödé")]);
        assert_eq!(names[0], "files__read_file_v2");
        assert!(is_client_safe(&names[1]), "{}", names[1]);
    }

    #[test]
    fn a_natural_name_equal_to_a_hashed_one_is_still_unique() {
        let long_tool = "t".repeat(100);
        let hashed = assign(&[req("server", &long_tool)]).remove(0);
        // A second server that literally has a tool named like the hashed form.
        let names = assign(&[
            req("server", &long_tool),
            NameRequest {
                server: "other",
                prefix: "",
                original: &hashed,
            },
        ]);
        assert_ne!(names[0], names[1]);
        let unique: HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), 2);
    }

    #[test]
    fn many_random_like_names_are_unique_and_safe() {
        let servers = ["a", "a_", "a-", "a.b", "a__b", "A", "_"];
        let tools = ["x", "_x", "x_", "__x", "x.y", "x y", "x/y", "", "é"];
        let reqs: Vec<NameRequest<'_>> = servers
            .iter()
            .flat_map(|s| tools.iter().map(move |t| req(s, t)))
            .collect();
        let names = assign(&reqs);
        let unique: HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert!(names.iter().all(|n| is_client_safe(n)), "{names:?}");
    }
}
