//! The upstream sessions currently connected, so server-wide events (a tool list changed)
//! reach every one of them. Faces register a session when its client has initialized and
//! the registration ends when the session does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use rmcp::service::{Peer, RoleServer};

/// The live upstream sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    next_id: AtomicU64,
    peers: Mutex<HashMap<u64, Peer<RoleServer>>>,
}

/// Keeps a session registered; dropping it unregisters.
#[derive(Debug)]
pub struct SessionRegistration {
    id: u64,
    sessions: Weak<Sessions>,
}

impl SessionRegistration {
    /// This session's id (process-local, for logs).
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for SessionRegistration {
    fn drop(&mut self) {
        if let Some(sessions) = self.sessions.upgrade() {
            sessions.lock().remove(&self.id);
            tracing::debug!(session = self.id, "upstream session ended");
        }
    }
}

impl Sessions {
    /// Registers a session's peer until the returned registration is dropped.
    pub fn register(self: &Arc<Self>, peer: Peer<RoleServer>) -> SessionRegistration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        self.lock().insert(id, peer);
        tracing::debug!(session = id, "upstream session registered");
        SessionRegistration {
            id,
            sessions: Arc::downgrade(self),
        }
    }

    /// How many sessions are connected.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Sends `notifications/tools/list_changed` to every session, without waiting on any of
    /// them; a session whose transport has closed is dropped from the registry.
    pub fn broadcast_tools_changed(self: &Arc<Self>) {
        let peers: Vec<(u64, Peer<RoleServer>)> =
            self.lock().iter().map(|(id, p)| (*id, p.clone())).collect();
        for (id, peer) in peers {
            let sessions = Arc::downgrade(self);
            tokio::spawn(async move {
                if peer.notify_tool_list_changed().await.is_err()
                    && let Some(sessions) = sessions.upgrade()
                {
                    sessions.lock().remove(&id);
                }
            });
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Peer<RoleServer>>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }
}
