//! What a server offers: its tools, prompts, resources and resource templates, each listed
//! by following every page (with a bound, so a server that paginates forever is an error).

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    ClientRequest, ListPromptsRequest, ListPromptsResult, ListResourceTemplatesRequest,
    ListResourceTemplatesResult, ListResourcesRequest, ListResourcesResult, ListToolsRequest,
    ListToolsResult, PaginatedRequestParams, Prompt, Resource, ResourceTemplate,
    ServerCapabilities, Tool,
};
use serde::de::DeserializeOwned;

use super::connection::{CallOptions, Connection};
use crate::config::ToolFilter;

/// A server that keeps paginating past this many pages is treated as broken.
const MAX_LIST_PAGES: usize = 1000;

/// Which list changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Tools,
    Prompts,
    Resources,
}

/// Everything one server offers, as last listed. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Lists {
    pub tools: Arc<Vec<Tool>>,
    pub prompts: Arc<Vec<Prompt>>,
    pub resources: Arc<Vec<Resource>>,
    pub templates: Arc<Vec<ResourceTemplate>>,
    /// Whether the server has the resources capability.
    pub serves_resources: bool,
}

impl Lists {
    /// Whether `other` holds the very same lists: the same shared vectors (a listing is
    /// never mutated, only replaced), not merely equal ones. Cheap: no item is compared.
    pub fn is_same(&self, other: &Lists) -> bool {
        Arc::ptr_eq(&self.tools, &other.tools)
            && Arc::ptr_eq(&self.prompts, &other.prompts)
            && Arc::ptr_eq(&self.resources, &other.resources)
            && Arc::ptr_eq(&self.templates, &other.templates)
            && self.serves_resources == other.serves_resources
    }

    /// Whether it offers nothing (what a server that was never ready contributes).
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
            && self.prompts.is_empty()
            && self.resources.is_empty()
            && self.templates.is_empty()
            && !self.serves_resources
    }
}

/// A page of some list.
trait Page: DeserializeOwned {
    type Item;
    fn request(params: Option<PaginatedRequestParams>) -> ClientRequest;
    fn into_parts(self) -> (Vec<Self::Item>, Option<String>);
}

macro_rules! page {
    ($result:ty, $item:ty, $variant:ident, $request:ty, $field:ident) => {
        impl Page for $result {
            type Item = $item;
            fn request(params: Option<PaginatedRequestParams>) -> ClientRequest {
                ClientRequest::$variant(match params {
                    Some(params) => <$request>::with_param(params),
                    None => <$request>::default(),
                })
            }
            fn into_parts(self) -> (Vec<$item>, Option<String>) {
                (self.$field, self.next_cursor)
            }
        }
    };
}

page!(
    ListToolsResult,
    Tool,
    ListToolsRequest,
    ListToolsRequest,
    tools
);
page!(
    ListPromptsResult,
    Prompt,
    ListPromptsRequest,
    ListPromptsRequest,
    prompts
);
page!(
    ListResourcesResult,
    Resource,
    ListResourcesRequest,
    ListResourcesRequest,
    resources
);
page!(
    ListResourceTemplatesResult,
    ResourceTemplate,
    ListResourceTemplatesRequest,
    ListResourceTemplatesRequest,
    resource_templates
);

/// Lists every page of one list.
async fn list_all<P: Page>(
    connection: &Connection,
    method: &str,
    timeout: Duration,
) -> Result<Vec<P::Item>, String> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_LIST_PAGES {
        let params = cursor
            .take()
            .map(|c| PaginatedRequestParams::default().with_cursor(Some(c)));
        let reply = connection
            .request(
                P::request(params),
                CallOptions {
                    timeout,
                    internal: true,
                    ..CallOptions::default()
                },
            )
            .await
            .map_err(|e| format!("{method} failed: {e}"))?;
        let page: P = reply
            .decode()
            .map_err(|e| format!("{method} returned an invalid result: {e}"))?;
        let (page_items, next) = page.into_parts();
        items.extend(page_items);
        match next {
            Some(next) if !next.is_empty() => cursor = Some(next),
            _ => return Ok(items),
        }
    }
    Err(format!(
        "{method} kept paginating past {MAX_LIST_PAGES} pages"
    ))
}

/// Lists the tools (after the filter).
pub async fn list_tools(
    connection: &Connection,
    filter: &ToolFilter,
    timeout: Duration,
) -> Result<Vec<Tool>, String> {
    let tools = list_all::<ListToolsResult>(connection, "tools/list", timeout).await?;
    Ok(tools
        .into_iter()
        .filter(|t| filter.allows(&t.name))
        .collect())
}

/// Lists the prompts.
pub async fn list_prompts(
    connection: &Connection,
    timeout: Duration,
) -> Result<Vec<Prompt>, String> {
    list_all::<ListPromptsResult>(connection, "prompts/list", timeout).await
}

/// Lists resources and templates (both requests in flight at once).
pub async fn list_resources(
    connection: &Connection,
    timeout: Duration,
) -> Result<(Vec<Resource>, Vec<ResourceTemplate>), String> {
    let (resources, templates) = tokio::join!(
        list_all::<ListResourcesResult>(connection, "resources/list", timeout),
        list_all::<ListResourceTemplatesResult>(connection, "resources/templates/list", timeout),
    );
    // Templates are optional even for resource servers: a server that does not implement
    // the method contributes none rather than failing.
    let templates = templates.unwrap_or_else(|error| {
        tracing::debug!(server = %connection.server(), %error, "no resource templates");
        Vec::new()
    });
    Ok((resources?, templates))
}

/// Lists everything the server's capabilities say it has. The lists are requested at
/// once, not one after another: a server's start costs one round trip for all of them.
pub async fn list_everything(
    connection: &Connection,
    capabilities: &ServerCapabilities,
    filter: &ToolFilter,
    timeout: Duration,
) -> Result<Lists, String> {
    let tools = async {
        match capabilities.tools {
            Some(_) => list_tools(connection, filter, timeout).await.map(Some),
            None => Ok(None),
        }
    };
    let prompts = async {
        match capabilities.prompts {
            Some(_) => Some(list_prompts(connection, timeout).await),
            None => None,
        }
    };
    let resources = async {
        match capabilities.resources {
            Some(_) => Some(list_resources(connection, timeout).await),
            None => None,
        }
    };
    let (tools, prompts, resources) = tokio::join!(tools, prompts, resources);
    let mut lists = Lists {
        serves_resources: capabilities.resources.is_some(),
        ..Lists::default()
    };
    // Tools are what a client came for: failing to list them fails the start. A server
    // whose prompts or resources cannot be listed still serves its tools.
    if let Some(tools) = tools? {
        lists.tools = Arc::new(tools);
    }
    match prompts {
        Some(Ok(prompts)) => lists.prompts = Arc::new(prompts),
        Some(Err(error)) => {
            tracing::warn!(server = %connection.server(), %error, "serving no prompts")
        }
        None => {}
    }
    match resources {
        Some(Ok((resources, templates))) => {
            lists.resources = Arc::new(resources);
            lists.templates = Arc::new(templates);
        }
        Some(Err(error)) => {
            tracing::warn!(server = %connection.server(), %error, "serving no resources")
        }
        None => {}
    }
    Ok(lists)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str) -> Tool {
        Tool::new(name.to_owned(), "t", Arc::new(serde_json::Map::new()))
    }

    #[test]
    fn the_same_lists_are_the_same_vectors_not_equal_ones() {
        let lists = Lists {
            tools: Arc::new(vec![tool("a")]),
            serves_resources: true,
            ..Lists::default()
        };
        assert!(lists.is_same(&lists.clone()));
        let mut relisted = lists.clone();
        relisted.tools = Arc::new(vec![tool("a")]);
        assert!(
            !lists.is_same(&relisted),
            "an equal but new listing is another listing"
        );
        let mut other = lists.clone();
        other.serves_resources = false;
        assert!(!lists.is_same(&other));
    }

    #[test]
    fn empty_means_nothing_offered_and_no_resources_capability() {
        assert!(Lists::default().is_empty());
        let capability_only = Lists {
            serves_resources: true,
            ..Lists::default()
        };
        assert!(!capability_only.is_empty());
        let with_tool = Lists {
            tools: Arc::new(vec![tool("a")]),
            ..Lists::default()
        };
        assert!(!with_tool.is_empty());
    }
}
