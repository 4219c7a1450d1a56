//! Rate limits: one governor GCRA limiter per endpoint class, keyed by caller (a key name,
//! or the client's address when authentication is off).
//!
//! A rate `N/period` allows a burst of `N` and refills one request every `period / N`. The
//! state per class is a [`BoundedStore`]: at most `max_clients` callers are tracked; when a
//! new one arrives at the cap, the caller whose state is oldest (closest to a fresh bucket)
//! is forgotten, and a housekeeping pass drops every state that is already as good as fresh.
//! So memory stays bounded whatever the number of distinct keys or addresses.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use governor::clock::{Clock, MonotonicClock};
use governor::middleware::{NoOpMiddleware, StateInformationMiddleware};
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::config::{Rate, RateLimitSettings};

use super::routes::RateClass;

/// The numbers behind the `X-RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateStatus {
    /// `X-RateLimit-Limit`: the burst size.
    pub limit: u32,
    /// `X-RateLimit-Remaining`.
    pub remaining: u32,
    /// `X-RateLimit-Reset`: Unix time (seconds) when the full burst is available again.
    pub reset: u64,
    /// The period the limit refills over (for messages).
    pub period: Duration,
}

/// A rate-limiting decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No limit for this class.
    Unlimited,
    Allowed(RateStatus),
    /// Over the limit: retry after this long.
    Limited(RateStatus, Duration),
}

type ClassLimiter = RateLimiter<Arc<str>, BoundedStore, MonotonicClock, StateInformationMiddleware>;

/// One limiter per class with a configured rate.
pub struct RateLimits {
    classes: Vec<(RateClass, Rate, ClassLimiter)>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let classes: Vec<(&str, u32, Duration)> = self
            .classes
            .iter()
            .map(|(c, r, _)| (c.as_str(), r.count, r.period))
            .collect();
        f.debug_struct("RateLimits")
            .field("classes", &classes)
            .finish()
    }
}

impl RateLimits {
    pub fn new(settings: &RateLimitSettings) -> Self {
        let mut classes = Vec::new();
        for class in RateClass::ALL {
            let rate = match class {
                RateClass::Discovery => settings.discovery,
                RateClass::Management => settings.management,
                RateClass::Batch => settings.batch,
                RateClass::Calls => settings.calls,
            };
            let Some(rate) = rate else { continue };
            let Some(quota) = quota(rate) else { continue };
            let limiter: RateLimiter<_, _, _, NoOpMiddleware<Instant>> = RateLimiter::new(
                quota,
                BoundedStore::new(settings.max_clients),
                MonotonicClock,
            );
            let limiter = limiter.with_middleware::<StateInformationMiddleware>();
            classes.push((class, rate, limiter));
        }
        RateLimits { classes }
    }

    /// Counts one request of `key` in `class`.
    pub fn check(&self, class: RateClass, key: &Arc<str>) -> Verdict {
        let Some((_, rate, limiter)) = self.classes.iter().find(|(c, _, _)| *c == class) else {
            return Verdict::Unlimited;
        };
        let interval = rate.period / rate.count.max(1);
        let now_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let reset_after = |used: u32| {
            let wait = interval.saturating_mul(used);
            (now_unix + wait).as_secs() + u64::from(wait.subsec_nanos() > 0)
        };
        match limiter.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity().min(rate.count);
                Verdict::Allowed(RateStatus {
                    limit: rate.count,
                    remaining,
                    reset: reset_after(rate.count - remaining),
                    period: rate.period,
                })
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(limiter.clock().now());
                let status = RateStatus {
                    limit: rate.count,
                    remaining: 0,
                    reset: (now_unix + wait + interval.saturating_mul(rate.count - 1))
                        .as_secs()
                        .saturating_add(1),
                    period: rate.period,
                };
                Verdict::Limited(status, wait)
            }
        }
    }

    /// Drops every state that is as good as fresh (housekeeping, run periodically).
    pub fn forget_idle(&self) {
        for (_, _, limiter) in &self.classes {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// How many callers are tracked in `class`.
    pub fn tracked(&self, class: RateClass) -> usize {
        self.classes
            .iter()
            .find(|(c, _, _)| *c == class)
            .map_or(0, |(_, _, limiter)| limiter.len())
    }
}

/// `N/period` as a governor quota: burst `N`, one cell every `period / N`.
fn quota(rate: Rate) -> Option<Quota> {
    let count = NonZeroU32::new(rate.count)?;
    let interval = (rate.period / rate.count).max(Duration::from_nanos(1));
    Quota::with_period(interval).map(|q| q.allow_burst(count))
}

/// A keyed state store holding at most `capacity` keys.
pub struct BoundedStore {
    /// Key → theoretical arrival time (governor's nanoseconds since the limiter started).
    states: Mutex<HashMap<Arc<str>, u64>>,
    capacity: usize,
}

impl BoundedStore {
    pub fn new(capacity: usize) -> Self {
        BoundedStore {
            states: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }
}

impl StateStore for BoundedStore {
    type Key = Arc<str>;

    fn measure_and_replace<T, F, E>(&self, key: &Self::Key, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        let previous = states.get(key).copied();
        let (outcome, next) = f(previous.filter(|n| *n != 0).map(Nanos::new))?;
        if previous.is_none() && states.len() >= self.capacity {
            let oldest = states
                .iter()
                .min_by_key(|(_, tat)| **tat)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                states.remove(&oldest);
            }
        }
        states.insert(key.clone(), next.as_u64());
        Ok(outcome)
    }
}

impl ShrinkableKeyedStateStore<Arc<str>> for BoundedStore {
    fn retain_recent(&self, drop_below: Nanos) {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        states.retain(|_, tat| *tat > drop_below.as_u64());
    }

    fn shrink_to_fit(&self) {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        states.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits_for(calls: Rate, max_clients: usize) -> RateLimits {
        RateLimits::new(&RateLimitSettings {
            discovery: None,
            management: None,
            batch: None,
            calls: Some(calls),
            max_clients,
        })
    }

    #[test]
    fn burst_then_limited_per_key() {
        let limits = limits_for(
            Rate {
                count: 3,
                period: Duration::from_secs(3600),
            },
            100,
        );
        let a: Arc<str> = "a".into();
        let b: Arc<str> = "b".into();
        for remaining in [2, 1, 0] {
            match limits.check(RateClass::Calls, &a) {
                Verdict::Allowed(status) => {
                    assert_eq!((status.limit, status.remaining), (3, remaining));
                }
                other => panic!("{other:?}"),
            }
        }
        match limits.check(RateClass::Calls, &a) {
            Verdict::Limited(status, wait) => {
                assert_eq!(status.remaining, 0);
                assert!(wait > Duration::from_secs(1000) && wait <= Duration::from_secs(1200));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            limits.check(RateClass::Calls, &b),
            Verdict::Allowed(_)
        ));
        assert_eq!(limits.check(RateClass::Discovery, &a), Verdict::Unlimited);
    }

    #[test]
    fn state_stays_bounded() {
        let limits = limits_for(
            Rate {
                count: 5,
                period: Duration::from_secs(3600),
            },
            50,
        );
        for i in 0..10_000 {
            let key: Arc<str> = format!("10.0.{}.{}", i / 256, i % 256).into();
            limits.check(RateClass::Calls, &key);
            assert!(limits.tracked(RateClass::Calls) <= 50);
        }
        assert_eq!(limits.tracked(RateClass::Calls), 50);
        // A key that is still limited survives churn of fresher ones only as long as it
        // is not the oldest; the cap holds either way.
        let fresh = limits_for(
            Rate {
                count: 5,
                period: Duration::from_millis(5),
            },
            50,
        );
        for i in 0..20 {
            fresh.check(RateClass::Calls, &Arc::from(format!("k{i}")));
        }
        std::thread::sleep(Duration::from_millis(20));
        fresh.forget_idle();
        assert_eq!(fresh.tracked(RateClass::Calls), 0);
    }
}
