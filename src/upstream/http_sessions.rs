//! Which `/mcp` session (rmcp's `Mcp-Session-Id`) is which upstream session, for the direct
//! path in front of rmcp ([`super::mcp_face`]).
//!
//! rmcp assigns the session id in its answer to `initialize`, so the handler learns it from
//! the first message that carries it (`notifications/initialized`, or any later request that
//! reaches rmcp) and records it here; the entry goes when the handler does (rmcp closed the
//! session).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use foldhash::HashMap;

use super::direct::Calls;
use crate::router::UpstreamSession;

/// One `/mcp` session as the direct path sees it.
#[derive(Debug)]
pub struct HttpSession {
    pub(super) session: Arc<UpstreamSession>,
    /// Its direct calls in flight.
    pub(super) calls: Arc<Calls>,
    /// When a call of it last went through rmcp (recorded first when the handler learned
    /// the id, which happens while rmcp handles one of its messages).
    pub(super) calls_seen: RmcpSeen,
    /// When its `tools/list` last went through rmcp. Kept apart from the calls' timer: a
    /// session's first listing always goes to rmcp (as an SSE stream), which the
    /// conformance suite's multi-stream check relies on.
    pub(super) list_seen: RmcpSeen,
}

/// When a kind of request of one session last went through rmcp, which keeps the session
/// alive there (rmcp closes a session after five minutes without traffic; requests answered
/// in front of it are invisible to it).
#[derive(Debug)]
pub(super) struct RmcpSeen(Mutex<Option<Instant>>);

impl RmcpSeen {
    fn never() -> Self {
        RmcpSeen(Mutex::new(None))
    }

    fn now() -> Self {
        RmcpSeen(Mutex::new(Some(Instant::now())))
    }

    /// Whether this request goes through rmcp: the first time, then once per `every`;
    /// records it if so.
    pub(super) fn due(&self, every: Duration) -> bool {
        let now = Instant::now();
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if seen.is_some_and(|last| now.duration_since(last) < every) {
            return false;
        }
        *seen = Some(now);
        true
    }
}

/// Every live `/mcp` session whose id is known, by `Mcp-Session-Id`.
#[derive(Debug, Default)]
pub struct HttpSessions {
    /// Keys are ids rmcp made (looked up with what clients send, never inserted from it),
    /// so a fast seeded hash is enough.
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
            calls_seen: RmcpSeen::now(),
            list_seen: RmcpSeen::never(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rmcp_sees_a_kind_of_request_first_then_once_per_period() {
        let listing = RmcpSeen::never();
        assert!(listing.due(KEEP), "the first listing goes to rmcp");
        assert!(!listing.due(KEEP), "then not again within the period");
        let calls = RmcpSeen::now();
        assert!(!calls.due(KEEP), "calls count from when the id was learned");
        assert!(
            calls.due(Duration::ZERO),
            "a period that has passed sends one to rmcp"
        );
        assert!(!calls.due(KEEP), "and restarts the period");
    }

    const KEEP: Duration = Duration::from_secs(60);
}
