//! The merged catalogue: every exposed tool name ↔ `(server, original name)`.
//!
//! A [`Catalog`] is an immutable snapshot built from the tool lists the downstreams reported;
//! the router swaps in a new one whenever a server becomes ready, changes its list or goes
//! away. Lookups never parse names: the exposed name is a key in a map. This module never
//! talks to a server.

mod naming;

use std::collections::HashMap;
use std::sync::Arc;

use rmcp::model::Tool;

pub use naming::{MAX_EXPOSED_NAME_LEN, NameRequest, assign_exposed_names, is_client_safe};

/// The tools one ready server contributes, as it listed them (after its tool filter).
#[derive(Debug, Clone)]
pub struct ServerTools {
    /// The server's name (the `mcpServers` key).
    pub server: Arc<str>,
    /// Its namespace prefix (`""` = unprefixed).
    pub prefix: String,
    /// Its tools with their original names, in the server's order.
    pub tools: Arc<Vec<Tool>>,
}

/// One tool of the merged catalogue.
#[derive(Debug, Clone)]
pub struct CatalogTool {
    /// The name clients see and call.
    pub exposed: Arc<str>,
    /// The server that owns it.
    pub server: Arc<str>,
    /// Its name on that server.
    pub original: Arc<str>,
    /// The definition as the server gave it, with `name` replaced by the exposed name.
    pub tool: Tool,
}

/// An immutable snapshot of the merged tools.
#[derive(Debug, Default)]
pub struct Catalog {
    /// In server-name order, then each server's own order.
    tools: Vec<CatalogTool>,
    /// Exposed name → index into `tools`.
    by_exposed: HashMap<Arc<str>, usize>,
    /// `(server, original)` → index into `tools`, for the REST face's `{server}.{tool}`.
    by_original: HashMap<(Arc<str>, Arc<str>), usize>,
}

impl Catalog {
    /// Builds the merged view. `servers` may come in any order; the result is sorted by
    /// server name so names and listing order are deterministic.
    pub fn build(mut servers: Vec<ServerTools>, separator: &str) -> Catalog {
        servers.sort_by(|a, b| a.server.cmp(&b.server));
        let mut pairs: Vec<(&ServerTools, &Tool)> = Vec::new();
        for server in &servers {
            let mut seen = std::collections::HashSet::new();
            for tool in server.tools.iter() {
                if seen.insert(tool.name.as_ref()) {
                    pairs.push((server, tool));
                } else {
                    tracing::warn!(server = %server.server, tool = %tool.name,
                        "server listed the same tool twice; keeping the first");
                }
            }
        }
        let requests: Vec<NameRequest<'_>> = pairs
            .iter()
            .map(|(server, tool)| NameRequest {
                server: &server.server,
                prefix: &server.prefix,
                original: &tool.name,
            })
            .collect();
        let names = assign_exposed_names(&requests, separator, MAX_EXPOSED_NAME_LEN);

        let mut catalog = Catalog {
            tools: Vec::with_capacity(pairs.len()),
            by_exposed: HashMap::with_capacity(pairs.len()),
            by_original: HashMap::with_capacity(pairs.len()),
        };
        for ((server, tool), exposed) in pairs.into_iter().zip(names) {
            let exposed: Arc<str> = exposed.into();
            let original: Arc<str> = Arc::from(tool.name.as_ref());
            let mut renamed = tool.clone();
            renamed.name = exposed.to_string().into();
            let index = catalog.tools.len();
            catalog.by_exposed.insert(exposed.clone(), index);
            catalog
                .by_original
                .insert((server.server.clone(), original.clone()), index);
            catalog.tools.push(CatalogTool {
                exposed,
                server: server.server.clone(),
                original,
                tool: renamed,
            });
        }
        catalog
    }

    /// All tools, in catalogue order.
    pub fn tools(&self) -> &[CatalogTool] {
        &self.tools
    }

    /// The tool clients call `exposed`.
    pub fn get(&self, exposed: &str) -> Option<&CatalogTool> {
        self.by_exposed.get(exposed).map(|&i| &self.tools[i])
    }

    /// The tool `original` of `server`.
    pub fn get_original(&self, server: &str, original: &str) -> Option<&CatalogTool> {
        let key: (Arc<str>, Arc<str>) = (Arc::from(server), Arc::from(original));
        self.by_original.get(&key).map(|&i| &self.tools[i])
    }

    /// The tools of one server, in its order.
    pub fn tools_of<'a>(&'a self, server: &'a str) -> impl Iterator<Item = &'a CatalogTool> + 'a {
        self.tools.iter().filter(move |t| &*t.server == server)
    }

    /// How many tools the catalogue holds.
    pub fn len(&self) -> usize {
        self.tools.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// Whether two snapshots expose the same names with the same definitions (used to decide
    /// whether `notifications/tools/list_changed` must go out).
    pub fn same_tools_as(&self, other: &Catalog) -> bool {
        self.tools.len() == other.tools.len()
            && self
                .tools
                .iter()
                .zip(&other.tools)
                .all(|(a, b)| a.server == b.server && a.tool == b.tool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(name: &str) -> Tool {
        serde_json::from_value(json!({
            "name": name,
            "description": format!("the {name} tool"),
            "inputSchema": {"type": "object", "properties": {"x": {"type": "string"}}},
            "annotations": {"readOnlyHint": true},
            "_meta": {"vendor/key": 1}
        }))
        .unwrap_or_else(|e| panic!("bad test tool: {e}"))
    }

    fn server(name: &str, prefix: &str, tools: &[&str]) -> ServerTools {
        ServerTools {
            server: name.into(),
            prefix: prefix.into(),
            tools: Arc::new(tools.iter().map(|t| tool(t)).collect()),
        }
    }

    #[test]
    fn merges_servers_in_name_order_and_maps_both_ways() {
        let catalog = Catalog::build(
            vec![
                server("zeta", "zeta", &["b", "a"]),
                server("alpha", "alpha", &["x"]),
            ],
            "__",
        );
        let names: Vec<&str> = catalog.tools().iter().map(|t| &*t.exposed).collect();
        assert_eq!(names, ["alpha__x", "zeta__b", "zeta__a"]);
        let hit = catalog.get("zeta__a").map(|t| (&*t.server, &*t.original));
        assert_eq!(hit, Some(("zeta", "a")));
        let hit = catalog.get_original("zeta", "b").map(|t| &*t.exposed);
        assert_eq!(hit, Some("zeta__b"));
        assert!(catalog.get("zeta").is_none());
        assert_eq!(catalog.tools_of("zeta").count(), 2);
    }

    #[test]
    fn definitions_pass_through_except_the_name() {
        let catalog = Catalog::build(vec![server("s", "s", &["t"])], "__");
        let entry = &catalog.tools()[0];
        let mut expected = tool("t");
        expected.name = "s__t".into();
        assert_eq!(entry.tool, expected);
        assert!(entry.tool.meta.is_some());
        assert!(entry.tool.annotations.is_some());
    }

    #[test]
    fn server_names_containing_the_separator_resolve_by_lookup() {
        let catalog = Catalog::build(
            vec![server("a__b", "a__b", &["c"]), server("a", "a", &["b__c"])],
            "__",
        );
        // Both raw names are "a__b__c": they get distinct names and resolve to their own server.
        let first = catalog.get_original("a__b", "c").map(|t| t.exposed.clone());
        let second = catalog.get_original("a", "b__c").map(|t| t.exposed.clone());
        let (Some(first), Some(second)) = (first, second) else {
            panic!("both tools must be in the catalogue");
        };
        assert_ne!(first, second);
        assert_eq!(catalog.get(&first).map(|t| &*t.server), Some("a__b"));
        assert_eq!(catalog.get(&second).map(|t| &*t.server), Some("a"));
    }

    #[test]
    fn duplicate_tools_of_one_server_keep_the_first() {
        let catalog = Catalog::build(vec![server("s", "s", &["t", "t"])], "__");
        assert_eq!(catalog.len(), 1);
    }

    #[test]
    fn same_tools_as_detects_changes() {
        let a = Catalog::build(vec![server("s", "s", &["t"])], "__");
        let b = Catalog::build(vec![server("s", "s", &["t"])], "__");
        let c = Catalog::build(vec![server("s", "s", &["t", "u"])], "__");
        assert!(a.same_tools_as(&b));
        assert!(!a.same_tools_as(&c));
    }
}
