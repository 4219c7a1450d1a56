//! The upstream sessions currently connected, and what each asked for: its log level and its
//! resource subscriptions. Faces register a session when its client has initialized; the
//! registration ends (and the router cleans up after it) when the session does.

#![allow(deprecated)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use rmcp::model::{ClientCapabilities, LoggingLevel};
use rmcp::service::{Peer, RoleServer};

/// One connected upstream session.
#[derive(Debug)]
pub struct UpstreamSession {
    /// Process-local id (also used to key per-session instances).
    pub id: u64,
    /// Where to send notifications and requests for this session.
    pub peer: Peer<RoleServer>,
    /// What its client said it supports (sampling, elicitation, roots).
    pub capabilities: ClientCapabilities,
    /// `logging/setLevel`; `None` = the client never asked (it gets what servers send).
    log_level: Mutex<Option<LoggingLevel>>,
    /// `(server, original URI)` it subscribed to.
    subscriptions: Mutex<HashSet<(Arc<str>, String)>>,
}

impl UpstreamSession {
    /// The level it asked for.
    pub fn log_level(&self) -> Option<LoggingLevel> {
        *self.log_level.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn set_log_level(&self, level: LoggingLevel) {
        *self.log_level.lock().unwrap_or_else(|p| p.into_inner()) = Some(level);
    }

    /// Whether a message at `level` goes to this session.
    pub fn admits(&self, level: LoggingLevel) -> bool {
        self.log_level()
            .is_none_or(|min| level_rank(level) >= level_rank(min))
    }

    /// Records a subscription; false if it already had it.
    pub(super) fn subscribe(&self, server: &Arc<str>, uri: &str) -> bool {
        self.lock_subscriptions()
            .insert((server.clone(), uri.to_owned()))
    }

    /// Drops a subscription; false if it did not have it.
    pub(super) fn unsubscribe(&self, server: &Arc<str>, uri: &str) -> bool {
        self.lock_subscriptions()
            .remove(&(server.clone(), uri.to_owned()))
    }

    /// Whether it subscribed to `uri` of `server`.
    pub fn is_subscribed(&self, server: &str, uri: &str) -> bool {
        self.lock_subscriptions()
            .iter()
            .any(|(s, u)| &**s == server && u == uri)
    }

    pub(super) fn take_subscriptions(&self) -> Vec<(Arc<str>, String)> {
        self.lock_subscriptions().drain().collect()
    }

    /// Whether its client can answer sampling requests.
    pub fn can_sample(&self) -> bool {
        self.capabilities.sampling.is_some()
    }

    /// Whether its client can answer elicitation requests (`url` mode when `url`).
    pub fn can_elicit(&self, url: bool) -> bool {
        match &self.capabilities.elicitation {
            None => false,
            // Before modes existed, an empty elicitation capability meant form support.
            Some(e) if url => e.url.is_some(),
            Some(e) => e.form.is_some() || e.url.is_none(),
        }
    }

    /// Whether its client declared anything a server may ask it during a call (sampling,
    /// elicitation, roots).
    pub fn may_answer_server_requests(&self) -> bool {
        let c = &self.capabilities;
        c.sampling.is_some() || c.elicitation.is_some() || c.roots.is_some()
    }

    /// Whether its client can answer `roots/list`.
    pub fn can_list_roots(&self) -> bool {
        self.capabilities.roots.is_some()
    }

    fn lock_subscriptions(&self) -> std::sync::MutexGuard<'_, HashSet<(Arc<str>, String)>> {
        self.subscriptions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// RFC 5424 order, lowest first.
pub fn level_rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

/// The live upstream sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    next_id: AtomicU64,
    sessions: Mutex<HashMap<u64, Arc<UpstreamSession>>>,
}

/// Keeps a session registered; dropping it unregisters and calls `on_end` with the session.
pub struct SessionRegistration {
    session: Arc<UpstreamSession>,
    sessions: Weak<Sessions>,
    on_end: Option<Box<dyn FnOnce(Arc<UpstreamSession>) + Send + Sync>>,
}

impl std::fmt::Debug for SessionRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRegistration")
            .field("id", &self.session.id)
            .finish()
    }
}

impl SessionRegistration {
    /// The registered session.
    pub fn session(&self) -> &Arc<UpstreamSession> {
        &self.session
    }
}

impl Drop for SessionRegistration {
    fn drop(&mut self) {
        if let Some(sessions) = self.sessions.upgrade() {
            sessions.lock().remove(&self.session.id);
        }
        tracing::debug!(session = self.session.id, "upstream session ended");
        if let Some(on_end) = self.on_end.take() {
            on_end(self.session.clone());
        }
    }
}

impl Sessions {
    /// A fresh session id.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Registers a session until the returned registration is dropped.
    pub(super) fn register(
        self: &Arc<Self>,
        id: u64,
        peer: Peer<RoleServer>,
        capabilities: ClientCapabilities,
        on_end: Box<dyn FnOnce(Arc<UpstreamSession>) + Send + Sync>,
    ) -> SessionRegistration {
        let session = Arc::new(UpstreamSession {
            id,
            peer,
            capabilities,
            log_level: Mutex::new(None),
            subscriptions: Mutex::new(HashSet::new()),
        });
        self.lock().insert(id, session.clone());
        tracing::debug!(session = id, "upstream session registered");
        SessionRegistration {
            session,
            sessions: Arc::downgrade(self),
            on_end: Some(on_end),
        }
    }

    /// The session with this id, if still connected.
    pub fn get(&self, id: u64) -> Option<Arc<UpstreamSession>> {
        self.lock().get(&id).cloned()
    }

    /// Every connected session.
    pub fn all(&self) -> Vec<Arc<UpstreamSession>> {
        self.lock().values().cloned().collect()
    }

    /// How many sessions are connected.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The most verbose level any session asked for, if any asked.
    pub fn most_verbose_level(&self) -> Option<LoggingLevel> {
        self.lock()
            .values()
            .filter_map(|s| s.log_level())
            .min_by_key(|l| level_rank(*l))
    }

    /// Runs `send` for every session (each in its own task, never waiting on a slow one);
    /// a session whose transport has closed is dropped from the registry.
    pub fn broadcast<F, Fut>(self: &Arc<Self>, filter: impl Fn(&UpstreamSession) -> bool, send: F)
    where
        F: Fn(Peer<RoleServer>) -> Fut,
        Fut: Future<Output = Result<(), rmcp::service::ServiceError>> + Send + 'static,
    {
        for session in self.all().into_iter().filter(|s| filter(s)) {
            let delivery = send(session.peer.clone());
            let sessions = Arc::downgrade(self);
            let id = session.id;
            tokio::spawn(async move {
                if delivery.await.is_err()
                    && let Some(sessions) = sessions.upgrade()
                {
                    sessions.lock().remove(&id);
                }
            });
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<UpstreamSession>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}
