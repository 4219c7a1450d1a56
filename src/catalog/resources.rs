//! Resources and resource templates across servers, and the rule that routes a URI to the
//! server that owns it.
//!
//! Routing a URI a client sent (for `resources/read`, `subscribe`, `unsubscribe`):
//! 1. a URI some server listed → that server (exposed URIs are unique by construction);
//! 2. the namespaced form `mcp-orch://<server>/<uri>` → that server, with the original URI;
//! 3. a URI matching the templates of exactly one server → that server;
//!    of several servers → ambiguous: the client is told to use the namespaced form;
//! 4. otherwise, when exactly one server has the resources capability → that server
//!    (servers may serve URIs they do not list); else unknown.
//!
//! Never a silent pick between two servers.

use std::sync::Arc;

use foldhash::{HashMap, HashSet, HashSetExt};

use rmcp::model::{Resource, ResourceTemplate};

use super::ServerTools;
use super::uri::{UriTemplate, namespaced_template, namespaced_uri, parse_namespaced};

/// A resource as clients see it.
#[derive(Debug, Clone)]
pub struct CatalogResource {
    /// The URI clients use (the original, or the namespaced form when it collides).
    pub exposed: String,
    pub server: Arc<str>,
    /// The URI on its server.
    pub original: String,
    /// The definition with `uri` replaced by `exposed`.
    pub resource: Resource,
}

/// A resource template as clients see it.
#[derive(Debug, Clone)]
pub struct CatalogTemplate {
    /// The template clients see (the original, or the namespaced form when it collides).
    pub exposed: String,
    pub server: Arc<str>,
    /// The template on its server.
    pub original: String,
    /// The definition with `uri_template` replaced by `exposed`.
    pub template: ResourceTemplate,
    /// Matches concrete URIs against the original template (`None` if it does not parse).
    matcher: Option<UriTemplate>,
}

/// Where a URI goes.
#[derive(Debug, Clone, PartialEq)]
pub enum UriRoute {
    /// To `server`, as `original`.
    Server { server: Arc<str>, original: String },
    /// Several servers could own it; the client must use the namespaced form.
    Ambiguous(Vec<Arc<str>>),
    /// No server owns it.
    Unknown,
}

/// The resource part of a catalogue snapshot.
#[derive(Debug, Default)]
pub(super) struct ResourceIndex {
    resources: Vec<CatalogResource>,
    by_exposed: HashMap<String, usize>,
    templates: Vec<CatalogTemplate>,
    template_by_exposed: HashMap<String, usize>,
    /// `(server, original URI)` pairs exposed in namespaced form.
    namespaced: HashSet<(Arc<str>, String)>,
    /// Servers with the resources capability, in name order.
    resource_servers: Vec<Arc<str>>,
}

/// The URIs (or templates) that more than one server lists: those are namespaced.
fn listed_by_several<'a, I>(
    servers: &'a [ServerTools],
    uris: impl Fn(&'a ServerTools) -> I,
) -> HashSet<&'a str>
where
    I: Iterator<Item = &'a str>,
{
    // Each URI's first server; a URI another server lists too is shared.
    let mut first: HashMap<&str, &str> = HashMap::default();
    let mut shared = HashSet::new();
    for server in servers {
        for uri in uris(server) {
            match first.get(uri) {
                Some(owner) if *owner != &*server.server => {
                    shared.insert(uri);
                }
                Some(_) => {}
                None => {
                    first.insert(uri, &server.server);
                }
            }
        }
    }
    shared
}

impl ResourceIndex {
    pub(super) fn build(servers: &[ServerTools]) -> ResourceIndex {
        let mut index = ResourceIndex {
            resource_servers: servers
                .iter()
                .filter(|s| s.serves_resources)
                .map(|s| s.server.clone())
                .collect(),
            ..ResourceIndex::default()
        };

        let shared_uris =
            listed_by_several(servers, |s| s.resources.iter().map(|r| r.uri.as_str()));
        for server in servers {
            let mut seen = HashSet::new();
            for resource in server.resources.iter() {
                if !seen.insert(resource.uri.as_str()) {
                    continue;
                }
                let collides = shared_uris.contains(resource.uri.as_str());
                let exposed = if collides {
                    index
                        .namespaced
                        .insert((server.server.clone(), resource.uri.clone()));
                    namespaced_uri(&server.server, &resource.uri)
                } else {
                    resource.uri.clone()
                };
                let mut renamed = resource.clone();
                renamed.uri = exposed.clone();
                index
                    .by_exposed
                    .insert(exposed.clone(), index.resources.len());
                index.resources.push(CatalogResource {
                    exposed,
                    server: server.server.clone(),
                    original: resource.uri.clone(),
                    resource: renamed,
                });
            }
        }

        let shared_templates = listed_by_several(servers, |s| {
            s.templates.iter().map(|t| t.uri_template.as_str())
        });
        for server in servers {
            let mut seen = HashSet::new();
            for template in server.templates.iter() {
                if !seen.insert(template.uri_template.as_str()) {
                    continue;
                }
                let collides = shared_templates.contains(template.uri_template.as_str());
                let exposed = if collides {
                    namespaced_template(&server.server, &template.uri_template)
                } else {
                    template.uri_template.clone()
                };
                let mut renamed = template.clone();
                renamed.uri_template = exposed.clone();
                index
                    .template_by_exposed
                    .insert(exposed.clone(), index.templates.len());
                index.templates.push(CatalogTemplate {
                    exposed,
                    server: server.server.clone(),
                    original: template.uri_template.clone(),
                    matcher: if collides {
                        None
                    } else {
                        UriTemplate::parse(&template.uri_template)
                    },
                    template: renamed,
                });
            }
        }
        index
    }

    pub(super) fn resources(&self) -> &[CatalogResource] {
        &self.resources
    }

    pub(super) fn templates(&self) -> &[CatalogTemplate] {
        &self.templates
    }

    pub(super) fn template(&self, exposed: &str) -> Option<&CatalogTemplate> {
        self.template_by_exposed
            .get(exposed)
            .map(|&i| &self.templates[i])
    }

    pub(super) fn exposed_uri(&self, server: &str, original: &str) -> String {
        let key: (Arc<str>, String) = (Arc::from(server), original.to_owned());
        if self.namespaced.contains(&key) {
            namespaced_uri(server, original)
        } else {
            original.to_owned()
        }
    }

    pub(super) fn route(&self, uri: &str) -> UriRoute {
        if let Some(&i) = self.by_exposed.get(uri) {
            let resource = &self.resources[i];
            return UriRoute::Server {
                server: resource.server.clone(),
                original: resource.original.clone(),
            };
        }
        if let Some((server, original)) = parse_namespaced(uri) {
            return match self.resource_servers.iter().find(|s| ***s == *server) {
                Some(server) => UriRoute::Server {
                    server: server.clone(),
                    original,
                },
                None => UriRoute::Unknown,
            };
        }
        let mut owners: Vec<Arc<str>> = Vec::new();
        for template in &self.templates {
            if template.matcher.as_ref().is_some_and(|m| m.matches(uri))
                && !owners.contains(&template.server)
            {
                owners.push(template.server.clone());
            }
        }
        match owners.len() {
            1 => UriRoute::Server {
                server: owners.remove(0),
                original: uri.to_owned(),
            },
            0 if self.resource_servers.len() == 1 => UriRoute::Server {
                server: self.resource_servers[0].clone(),
                original: uri.to_owned(),
            },
            0 => UriRoute::Unknown,
            _ => UriRoute::Ambiguous(owners),
        }
    }

    pub(super) fn same_as(&self, other: &ResourceIndex) -> bool {
        self.resources.len() == other.resources.len()
            && self.templates.len() == other.templates.len()
            && self
                .resources
                .iter()
                .zip(&other.resources)
                .all(|(a, b)| a.server == b.server && a.resource == b.resource)
            && self
                .templates
                .iter()
                .zip(&other.templates)
                .all(|(a, b)| a.server == b.server && a.template == b.template)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(name: &str, resources: &[&str], templates: &[&str]) -> ServerTools {
        ServerTools {
            server: name.into(),
            prefix: name.into(),
            resources: Arc::new(resources.iter().map(|u| Resource::new(*u, *u)).collect()),
            templates: Arc::new(
                templates
                    .iter()
                    .map(|t| {
                        serde_json::from_value(serde_json::json!({"uriTemplate": t, "name": t}))
                            .unwrap_or_else(|e| panic!("{e}"))
                    })
                    .collect(),
            ),
            serves_resources: true,
            ..ServerTools::default()
        }
    }

    fn route(index: &ResourceIndex, uri: &str) -> Option<(String, String)> {
        match index.route(uri) {
            UriRoute::Server { server, original } => Some((server.to_string(), original)),
            _ => None,
        }
    }

    #[test]
    fn unique_uris_pass_through_and_collisions_are_namespaced() {
        let index = ResourceIndex::build(&[
            server("a", &["file:///shared", "a://only", "a://only"], &[]),
            server("b", &["file:///shared"], &[]),
        ]);
        let exposed: Vec<&str> = index
            .resources()
            .iter()
            .map(|r| r.exposed.as_str())
            .collect();
        // A URI one server lists twice is still that server's alone (listed once).
        assert_eq!(exposed.iter().filter(|&&u| u == "a://only").count(), 1);
        assert!(
            !exposed.contains(&"file:///shared"),
            "a colliding URI is never exposed bare"
        );
        let a_shared = namespaced_uri("a", "file:///shared");
        let b_shared = namespaced_uri("b", "file:///shared");
        assert!(exposed.contains(&a_shared.as_str()) && exposed.contains(&b_shared.as_str()));
        assert_eq!(
            route(&index, "a://only"),
            Some(("a".into(), "a://only".into()))
        );
        assert_eq!(
            route(&index, &b_shared),
            Some(("b".into(), "file:///shared".into()))
        );
        assert_eq!(index.exposed_uri("a", "file:///shared"), a_shared);
        assert_eq!(index.exposed_uri("a", "a://only"), "a://only");
        // The bare colliding URI matches no listing and two servers serve resources.
        assert_eq!(index.route("file:///shared"), UriRoute::Unknown);
    }

    #[test]
    fn templates_route_to_their_only_owner_or_report_ambiguity() {
        let index = ResourceIndex::build(&[
            server("a", &[], &["items://{id}", "both://{x}"]),
            server("b", &[], &["notes://{id}/text", "both://{y}"]),
        ]);
        assert_eq!(
            route(&index, "items://7"),
            Some(("a".into(), "items://7".into()))
        );
        assert_eq!(
            route(&index, "notes://7/text"),
            Some(("b".into(), "notes://7/text".into()))
        );
        match index.route("both://1") {
            UriRoute::Ambiguous(owners) => assert_eq!(owners.len(), 2),
            other => panic!("expected ambiguity, got {other:?}"),
        }
        assert_eq!(index.route("nobody://x"), UriRoute::Unknown);
    }

    #[test]
    fn identical_templates_are_namespaced_and_route_by_namespace() {
        let index = ResourceIndex::build(&[
            server("a", &[], &["item://{id}"]),
            server("b", &[], &["item://{id}"]),
        ]);
        let exposed: Vec<&str> = index
            .templates()
            .iter()
            .map(|t| t.exposed.as_str())
            .collect();
        assert_eq!(exposed.len(), 2);
        assert!(exposed.iter().all(|t| t.starts_with("mcp-orch://")));
        let expanded = exposed[1].replace("{id}", "9");
        assert_eq!(
            route(&index, &expanded),
            Some(("b".into(), "item://9".into()))
        );
    }

    #[test]
    fn a_lone_resource_server_gets_unlisted_uris() {
        let index = ResourceIndex::build(&[server("only", &[], &[])]);
        assert_eq!(
            route(&index, "x://anything"),
            Some(("only".into(), "x://anything".into()))
        );
    }
}
