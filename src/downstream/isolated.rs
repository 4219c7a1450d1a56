//! Per-session instances of an `"isolation": "session"` server: each upstream session gets
//! its own process (or remote session), started on its first call, stopped when the session
//! ends, at most `maxSessions` at a time. Because an instance serves one session only, every
//! server→client request it sends is attributed exactly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::DownstreamError;
use super::connection::Connection;
use super::server::{Downstream, Wire};

/// One session's instance, started once.
#[derive(Default)]
struct Slot {
    started: OnceCell<Result<(Arc<Connection>, Wire), String>>,
}

/// The per-session instances of one server.
pub(super) struct SessionInstances {
    slots: Mutex<HashMap<u64, Arc<Slot>>>,
    max: usize,
}

impl SessionInstances {
    pub(super) fn new(max: usize) -> Self {
        SessionInstances {
            slots: Mutex::new(HashMap::new()),
            max: max.max(1),
        }
    }

    /// How many sessions have an instance.
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }

    /// The session's connection, starting its instance on first use. A failed or ended
    /// instance is forgotten, so the session's next call starts a fresh one.
    pub(super) async fn connection(
        &self,
        downstream: &Arc<Downstream>,
        session: u64,
    ) -> Result<Arc<Connection>, DownstreamError> {
        let slot = {
            let mut slots = self.lock();
            match slots.get(&session) {
                Some(slot) => slot.clone(),
                None => {
                    if slots.len() >= self.max {
                        return Err(DownstreamError::Unavailable {
                            server: downstream.name().to_string(),
                            reason: format!(
                                "it already runs {} per-session processes (maxSessions)",
                                self.max
                            ),
                        });
                    }
                    let slot = Arc::new(Slot::default());
                    slots.insert(session, slot.clone());
                    slot
                }
            }
        };
        let started = slot
            .started
            .get_or_init(|| async {
                let mut wire = None;
                let timeout = downstream.startup_timeout();
                let launched = tokio::time::timeout(
                    timeout,
                    downstream.launch(downstream.hooks(Some(session)), &mut wire, timeout),
                )
                .await
                .unwrap_or_else(|_| Err("it did not finish starting in time".to_owned()));
                match (launched, wire) {
                    (Ok((connection, _)), Some(wire)) => {
                        tracing::info!(server = %downstream.name(), session, "per-session instance started");
                        Ok((connection, wire))
                    }
                    (Ok(_), None) => Err("no process or session was created".to_owned()),
                    (Err(error), wire) => {
                        if let Some(wire) = wire {
                            wire.stop().await;
                        }
                        Err(error)
                    }
                }
            })
            .await;
        if let Ok((_, wire)) = started
            && !self.is_current(session, &slot)
        {
            // The session ended while its instance was starting: nobody will release it.
            wire.stop().await;
            return Err(DownstreamError::Closed {
                server: downstream.name().to_string(),
                reason: "the session ended".to_owned(),
            });
        }
        match started {
            Ok((connection, _)) if !connection.is_closed() => Ok(connection.clone()),
            Ok((connection, wire)) => {
                let reason = connection
                    .close_reason()
                    .unwrap_or_else(|| "it ended".to_owned());
                let wire = wire.clone();
                self.forget(session, &slot);
                wire.stop().await;
                Err(DownstreamError::Closed {
                    server: downstream.name().to_string(),
                    reason: format!("the session's own instance ended: {reason}"),
                })
            }
            Err(reason) => {
                let reason = reason.clone();
                self.forget(session, &slot);
                Err(DownstreamError::Start {
                    server: downstream.name().to_string(),
                    reason,
                })
            }
        }
    }

    /// Stops a session's instance, if it has one.
    pub(super) async fn release(&self, session: u64) {
        let slot = self.lock().remove(&session);
        if let Some(slot) = slot
            && let Some(Ok((_, wire))) = slot.started.get()
        {
            wire.stop().await;
        }
    }

    /// Stops every instance.
    pub(super) async fn release_all(&self) {
        let slots: Vec<Arc<Slot>> = self.lock().drain().map(|(_, slot)| slot).collect();
        let stops = slots.iter().filter_map(|slot| match slot.started.get() {
            Some(Ok((_, wire))) => Some(wire.stop()),
            _ => None,
        });
        futures::future::join_all(stops).await;
    }

    fn is_current(&self, session: u64, slot: &Arc<Slot>) -> bool {
        self.lock()
            .get(&session)
            .is_some_and(|s| Arc::ptr_eq(s, slot))
    }

    fn forget(&self, session: u64, slot: &Arc<Slot>) {
        let mut slots = self.lock();
        if slots.get(&session).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            slots.remove(&session);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Slot>>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }
}
