//! Which `/mcp` session (rmcp's `Mcp-Session-Id`) is which upstream session, for the direct
//! path in front of rmcp ([`super::mcp_face`]).
//!
//! rmcp assigns the session id in its answer to `initialize`, so the handler learns it from
//! the first message that carries it (`notifications/initialized`, or any later request that
//! reaches rmcp) and records it here; the entry goes when the handler does (rmcp closed the
//! session).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::direct::Calls;
use crate::router::UpstreamSession;

/// One `/mcp` session as the direct path sees it.
#[derive(Debug)]
pub struct HttpSession {
    pub(super) session: Arc<UpstreamSession>,
    /// Its direct calls in flight.
    pub(super) calls: Arc<Calls>,
    /// When a message of it last went through rmcp (recorded first when the handler learned
    /// the id, which happens while rmcp handles one of its messages).
    rmcp_seen: Mutex<Instant>,
}

impl HttpSession {
    /// Whether this request goes through rmcp, to keep the session alive there: once per
    /// `every`; records it if so.
    pub(super) fn rmcp_should_see(&self, every: Duration) -> bool {
        let now = Instant::now();
        let mut seen = self.rmcp_seen.lock().unwrap_or_else(|p| p.into_inner());
        if now.duration_since(*seen) < every {
            return false;
        }
        *seen = now;
        true
    }
}

/// Every live `/mcp` session whose id is known, by `Mcp-Session-Id`.
#[derive(Debug, Default)]
pub struct HttpSessions {
    by_id: Mutex<HashMap<String, Arc<HttpSession>>>,
}

impl HttpSessions {
    /// The session with this `Mcp-Session-Id`, if known.
    pub(super) fn get(&self, id: &str) -> Option<Arc<HttpSession>> {
        self.lock().get(id).cloned()
    }

    pub(super) fn insert(&self, id: String, session: Arc<UpstreamSession>) {
        let entry = Arc::new(HttpSession {
            session,
            calls: Arc::default(),
            rmcp_seen: Mutex::new(Instant::now()),
        });
        self.lock().insert(id, entry);
    }

    pub(super) fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<HttpSession>>> {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner())
    }
}
