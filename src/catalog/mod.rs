//! The merged catalogue: what clients see of all servers together, and how each exposed
//! name or URI maps back to `(server, original)`.
//!
//! A [`Catalog`] is an immutable snapshot built from the lists the ready servers reported
//! (tools, prompts, resources, resource templates); the router swaps in a new one whenever a
//! server becomes ready, changes a list or goes away. Tool and prompt names are namespaced
//! (see [`naming`]); resource URIs pass through unchanged unless two servers list the same
//! one (see [`uri`]). Lookups never parse names: every exposed name is a key in a map. This
//! module never talks to a server.

mod naming;
mod resources;
mod uri;

use std::sync::{Arc, OnceLock};

use foldhash::{HashMap, HashSet, HashSetExt};

use rmcp::model::{ListToolsResult, Prompt, Resource, ResourceTemplate, ServerResult, Tool};

pub use naming::{MAX_EXPOSED_NAME_LEN, NameRequest, assign_exposed_names, is_client_safe};
pub use resources::{CatalogResource, CatalogTemplate, UriRoute};
pub use uri::{
    NAMESPACE_SCHEME, UriTemplate, namespaced_template, namespaced_uri, parse_namespaced,
};

/// What one ready server contributes, as it listed it (tools after its tool filter).
#[derive(Debug, Clone, Default)]
pub struct ServerTools {
    /// The server's name (the `mcpServers` key).
    pub server: Arc<str>,
    /// Its namespace prefix (`""` = unprefixed).
    pub prefix: String,
    /// Its tools with their original names, in the server's order.
    pub tools: Arc<Vec<Tool>>,
    /// Its prompts, original names.
    pub prompts: Arc<Vec<Prompt>>,
    /// Its concrete resources.
    pub resources: Arc<Vec<Resource>>,
    /// Its resource templates.
    pub templates: Arc<Vec<ResourceTemplate>>,
    /// Whether it has the resources capability (it may serve URIs it does not list).
    pub serves_resources: bool,
}

impl ServerTools {
    /// A server that contributes only tools.
    pub fn tools_only(server: Arc<str>, prefix: impl Into<String>, tools: Arc<Vec<Tool>>) -> Self {
        ServerTools {
            server,
            prefix: prefix.into(),
            tools,
            ..ServerTools::default()
        }
    }
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

/// One prompt of the merged catalogue (named like tools).
#[derive(Debug, Clone)]
pub struct CatalogPrompt {
    pub exposed: Arc<str>,
    pub server: Arc<str>,
    pub original: Arc<str>,
    /// The definition with `name` replaced by the exposed name.
    pub prompt: Prompt,
}

/// An immutable snapshot of everything the ready servers offer.
#[derive(Debug, Default)]
pub struct Catalog {
    /// In server-name order, then each server's own order.
    tools: Vec<CatalogTool>,
    /// Exposed name → index into `tools`.
    by_exposed: HashMap<Arc<str>, usize>,
    /// `(server, original)` → index into `tools`, for the REST face's `{server}.{tool}`.
    by_original: HashMap<(Arc<str>, Arc<str>), usize>,
    prompts: Vec<CatalogPrompt>,
    prompt_by_exposed: HashMap<Arc<str>, usize>,
    /// Resources, templates and URI routing.
    resources: resources::ResourceIndex,
    /// The `tools/list` result, serialized on first use (the snapshot never changes).
    tools_listing: OnceLock<Option<Arc<[u8]>>>,
}

impl Catalog {
    /// Builds the merged view. `servers` may come in any order; the result is sorted by
    /// server name so names and listing order are deterministic.
    pub fn build(mut servers: Vec<ServerTools>, separator: &str) -> Catalog {
        servers.sort_by(|a, b| a.server.cmp(&b.server));
        let mut catalog = Catalog::default();

        let tools = unique_by_name(&servers, "tool", |s| s.tools.iter(), |t| t.name.as_ref());
        let names = exposed_names(&tools, separator, |t| t.name.as_ref());
        catalog.tools.reserve_exact(tools.len());
        catalog.by_exposed.reserve(tools.len());
        catalog.by_original.reserve(tools.len());
        for ((server, tool), exposed) in tools.into_iter().zip(names) {
            let original: Arc<str> = Arc::from(tool.name.as_ref());
            let shared: Arc<str> = if exposed == *tool.name {
                original.clone()
            } else {
                Arc::from(exposed.as_str())
            };
            let mut renamed = tool.clone();
            renamed.name = exposed.into();
            let exposed = shared;
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

        let prompts = unique_by_name(
            &servers,
            "prompt",
            |s| s.prompts.iter(),
            |p| p.name.as_str(),
        );
        let names = exposed_names(&prompts, separator, |p| p.name.as_str());
        for ((server, prompt), exposed) in prompts.into_iter().zip(names) {
            let exposed: Arc<str> = exposed.into();
            let mut renamed = prompt.clone();
            renamed.name = exposed.to_string();
            catalog
                .prompt_by_exposed
                .insert(exposed.clone(), catalog.prompts.len());
            catalog.prompts.push(CatalogPrompt {
                exposed,
                server: server.server.clone(),
                original: Arc::from(prompt.name.as_str()),
                prompt: renamed,
            });
        }

        catalog.resources = resources::ResourceIndex::build(&servers);
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

    /// Whether it holds no tools.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// All prompts, in catalogue order.
    pub fn prompts(&self) -> &[CatalogPrompt] {
        &self.prompts
    }

    /// The prompt clients call `exposed`.
    pub fn prompt(&self, exposed: &str) -> Option<&CatalogPrompt> {
        self.prompt_by_exposed
            .get(exposed)
            .map(|&i| &self.prompts[i])
    }

    /// All resources, as exposed.
    pub fn resources(&self) -> &[CatalogResource] {
        self.resources.resources()
    }

    /// All resource templates, as exposed.
    pub fn templates(&self) -> &[CatalogTemplate] {
        self.resources.templates()
    }

    /// Which server a URI (as a client sent it) belongs to, and its original form.
    pub fn route_uri(&self, uri: &str) -> UriRoute {
        self.resources.route(uri)
    }

    /// The template clients know as `exposed` (for `completion/complete`).
    pub fn template(&self, exposed: &str) -> Option<&CatalogTemplate> {
        self.resources.template(exposed)
    }

    /// The URI clients see for `original` of `server` (namespaced when it collides).
    pub fn exposed_uri(&self, server: &str, original: &str) -> String {
        self.resources.exposed_uri(server, original)
    }

    /// The whole `tools/list` result (`{"tools":[…]}`) as JSON in the shape of protocol
    /// versions before 2026-07-28, serialized once per snapshot: what the `/mcp` face
    /// answers `tools/list` with. `None` only if a tool
    /// definition cannot be serialized (then callers take the typed path).
    pub fn tools_list_json(&self) -> Option<Arc<[u8]>> {
        self.tools_listing
            .get_or_init(|| {
                let mut result = ServerResult::ListToolsResult(ListToolsResult::with_all_items(
                    self.tools.iter().map(|t| t.tool.clone()).collect(),
                ));
                // The shape rmcp gives peers on protocol versions before 2026-07-28 (all
                // mcp-orch negotiates): no `resultType: "complete"`.
                result.strip_result_type_for_legacy_peer();
                match serde_json::to_vec(&result) {
                    Ok(json) => Some(json.into()),
                    Err(error) => {
                        tracing::warn!(%error, "cannot pre-serialize the tool listing");
                        None
                    }
                }
            })
            .clone()
    }

    /// Whether two snapshots expose the same tools with the same definitions (used to decide
    /// whether `notifications/tools/list_changed` must go out).
    pub fn same_tools_as(&self, other: &Catalog) -> bool {
        self.tools.len() == other.tools.len()
            && self
                .tools
                .iter()
                .zip(&other.tools)
                .all(|(a, b)| a.server == b.server && a.tool == b.tool)
    }

    /// Whether the prompts are the same in both snapshots.
    pub fn same_prompts_as(&self, other: &Catalog) -> bool {
        self.prompts.len() == other.prompts.len()
            && self
                .prompts
                .iter()
                .zip(&other.prompts)
                .all(|(a, b)| a.server == b.server && a.prompt == b.prompt)
    }

    /// Whether resources and templates are the same in both snapshots.
    pub fn same_resources_as(&self, other: &Catalog) -> bool {
        self.resources.same_as(&other.resources)
    }
}

/// Every `(server, item)` pair in catalogue order, dropping an item a server listed twice.
fn unique_by_name<'a, T: 'a, I>(
    servers: &'a [ServerTools],
    kind: &str,
    items: impl Fn(&'a ServerTools) -> I,
    name: impl Fn(&T) -> &str,
) -> Vec<(&'a ServerTools, &'a T)>
where
    I: Iterator<Item = &'a T>,
{
    let mut pairs = Vec::new();
    for server in servers {
        let mut seen = HashSet::new();
        for item in items(server) {
            if seen.insert(name(item)) {
                pairs.push((server, item));
            } else {
                tracing::warn!(server = %server.server, kind, name = name(item),
                    "server listed the same name twice; keeping the first");
            }
        }
    }
    pairs
}

fn exposed_names<T>(
    pairs: &[(&ServerTools, &T)],
    separator: &str,
    name: impl Fn(&T) -> &str,
) -> Vec<String> {
    let requests: Vec<NameRequest<'_>> = pairs
        .iter()
        .map(|(server, item)| NameRequest {
            server: &server.server,
            prefix: &server.prefix,
            original: name(item),
        })
        .collect();
    assign_exposed_names(&requests, separator, MAX_EXPOSED_NAME_LEN)
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
        ServerTools::tools_only(
            name.into(),
            prefix,
            Arc::new(tools.iter().map(|t| tool(t)).collect()),
        )
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

    #[test]
    fn prompts_are_namespaced_like_tools() {
        let mut s = server("srv", "srv", &[]);
        s.prompts = Arc::new(vec![Prompt::new("greet", Some("hi"), None)]);
        let mut bare = server("bare", "", &[]);
        bare.prompts = Arc::new(vec![Prompt::new("greet", Some("hi"), None)]);
        let catalog = Catalog::build(vec![s, bare], "__");
        let names: Vec<&str> = catalog.prompts().iter().map(|p| &*p.exposed).collect();
        assert_eq!(names, ["greet", "srv__greet"]);
        assert_eq!(
            catalog.prompt("srv__greet").map(|p| &*p.original),
            Some("greet")
        );
        assert_eq!(catalog.prompt("greet").map(|p| &*p.server), Some("bare"));
    }
}
