//! Tools that change at runtime: `add_tool {name}` registers a tool `name`
//! that behaves like `echo`, `remove_tool {name}` removes one `add_tool`
//! added. Both are process-wide (every session sees the change) and, before
//! answering, send `notifications/tools/list_changed` to every open session.
//!
//! [`ToolSet`] owns the tool router. It is copy-on-write: a change builds a
//! new router, while `tools/call`s in flight keep the snapshot they started
//! with, so no lock is held across an `await`.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex, PoisonError},
};

use rmcp::{
    Peer, RoleServer,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::CallToolResult,
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::{
    server::Fixture,
    tools::{error_result, text_result},
};

/// The longest tool name `add_tool` accepts (the spec's limit).
const MAX_NAME_LEN: usize = 128;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct NameArgs {
    /// The tool's name: 1 to 128 characters out of `A-Z a-z 0-9 _ - .`.
    pub name: String,
}

/// The tools of one fixture process and the sessions to tell when they
/// change.
pub struct ToolSet {
    state: Mutex<State>,
    /// Open sessions by [`Fixture::session`]: the ones that initialized,
    /// listed tools or changed them.
    peers: Mutex<BTreeMap<u64, Peer<RoleServer>>>,
}

struct State {
    router: Arc<ToolRouter<Fixture>>,
    /// The names `add_tool` added, which `remove_tool` may remove.
    added: BTreeSet<String>,
}

impl ToolSet {
    pub fn new(router: ToolRouter<Fixture>) -> Self {
        Self {
            state: Mutex::new(State {
                router: Arc::new(router),
                added: BTreeSet::new(),
            }),
            peers: Mutex::new(BTreeMap::new()),
        }
    }

    /// The current tools.
    pub fn snapshot(&self) -> Arc<ToolRouter<Fixture>> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .router
            .clone()
    }

    /// Sends `notifications/tools/list_changed` to `session` from now on.
    pub fn watch(&self, session: u64, peer: &Peer<RoleServer>) {
        self.peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(session)
            .or_insert_with(|| peer.clone());
    }

    /// Stops notifying `session` (it ended).
    pub fn forget(&self, session: u64) {
        self.peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&session);
    }

    fn add(&self, name: &str) -> Result<(), String> {
        validate_name(name)?;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.router.has_route(name) {
            return Err(format!("tool {name} already exists"));
        }
        let mut router = ToolRouter::clone(&state.router);
        router.add_route(Fixture::echo_route(
            name.to_owned(),
            "Added by `add_tool`: returns `text` exactly.",
        ));
        state.router = Arc::new(router);
        state.added.insert(name.to_owned());
        Ok(())
    }

    fn remove(&self, name: &str) -> Result<(), String> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !state.added.remove(name) {
            return Err(format!("no tool {name} added by add_tool"));
        }
        let mut router = ToolRouter::clone(&state.router);
        router.remove_route(name);
        state.router = Arc::new(router);
        Ok(())
    }

    /// Sends `notifications/tools/list_changed` to every open session,
    /// forgetting the closed ones.
    async fn notify_list_changed(&self) {
        let peers: Vec<Peer<RoleServer>> = {
            let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
            peers.retain(|_, peer| !peer.is_transport_closed());
            peers.values().cloned().collect()
        };
        for peer in peers {
            if let Err(error) = peer.notify_tool_list_changed().await {
                eprintln!("mcp-orch-fixture: cannot send tools/list_changed: {error}");
            }
        }
    }
}

/// SEP-986 tool names: 1 to 128 characters out of `A-Z a-z 0-9 _ - .`.
fn validate_name(name: &str) -> Result<(), String> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if name.is_empty() || name.len() > MAX_NAME_LEN || !valid_chars {
        return Err(format!(
            "invalid tool name {name:?}: use 1 to {MAX_NAME_LEN} characters out of A-Z a-z 0-9 _ - ."
        ));
    }
    Ok(())
}

#[tool_router(router = dynamic_tools, vis = "pub(crate)")]
impl Fixture {
    #[tool(
        description = "Registers a tool `name` that behaves like `echo` (returns its `text` argument), then sends notifications/tools/list_changed. A tool error if `name` exists or is not a valid tool name."
    )]
    async fn add_tool(
        &self,
        Parameters(NameArgs { name }): Parameters<NameArgs>,
        peer: Peer<RoleServer>,
    ) -> CallToolResult {
        let tools = &self.shared.tools;
        tools.watch(self.session, &peer);
        if let Err(message) = tools.add(&name) {
            return error_result(message);
        }
        tools.notify_list_changed().await;
        text_result(format!("added tool {name}"))
    }

    #[tool(
        description = "Removes a tool `add_tool` registered, then sends notifications/tools/list_changed. A tool error for any other name."
    )]
    async fn remove_tool(
        &self,
        Parameters(NameArgs { name }): Parameters<NameArgs>,
        peer: Peer<RoleServer>,
    ) -> CallToolResult {
        let tools = &self.shared.tools;
        tools.watch(self.session, &peer);
        if let Err(message) = tools.remove(&name) {
            return error_result(message);
        }
        tools.notify_list_changed().await;
        text_result(format!("removed tool {name}"))
    }
}
