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

/// Lists resources and templates.
pub async fn list_resources(
    connection: &Connection,
    timeout: Duration,
) -> Result<(Vec<Resource>, Vec<ResourceTemplate>), String> {
    let resources = list_all::<ListResourcesResult>(connection, "resources/list", timeout).await?;
    // Templates are optional even for resource servers: a server that does not implement
    // the method contributes none rather than failing.
    let templates = match list_all::<ListResourceTemplatesResult>(
        connection,
        "resources/templates/list",
        timeout,
    )
    .await
    {
        Ok(templates) => templates,
        Err(error) => {
            tracing::debug!(server = %connection.server(), %error, "no resource templates");
            Vec::new()
        }
    };
    Ok((resources, templates))
}

/// Lists everything the server's capabilities say it has.
pub async fn list_everything(
    connection: &Connection,
    capabilities: &ServerCapabilities,
    filter: &ToolFilter,
    timeout: Duration,
) -> Result<Lists, String> {
    let mut lists = Lists {
        serves_resources: capabilities.resources.is_some(),
        ..Lists::default()
    };
    if capabilities.tools.is_some() {
        lists.tools = Arc::new(list_tools(connection, filter, timeout).await?);
    }
    // Tools are what a client came for: failing to list them fails the start. A server
    // whose prompts or resources cannot be listed still serves its tools.
    if capabilities.prompts.is_some() {
        match list_prompts(connection, timeout).await {
            Ok(prompts) => lists.prompts = Arc::new(prompts),
            Err(error) => {
                tracing::warn!(server = %connection.server(), %error, "serving no prompts")
            }
        }
    }
    if capabilities.resources.is_some() {
        match list_resources(connection, timeout).await {
            Ok((resources, templates)) => {
                lists.resources = Arc::new(resources);
                lists.templates = Arc::new(templates);
            }
            Err(error) => {
                tracing::warn!(server = %connection.server(), %error, "serving no resources")
            }
        }
    }
    Ok(lists)
}
