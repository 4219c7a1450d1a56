//! The timer hyper's header timeouts run on: one tokio timer for all connections.
//!
//! hyper arms a header-read timeout each time a connection waits for its next request and
//! drops it once the headers are in — on a keep-alive connection, once per request. With
//! hyper_util's `TokioTimer` every one of those is a tokio timer of its own, and a timer
//! earlier than the runtime's next wake-up (the next request's, 10 s ahead, is earlier than
//! the 30 s health check) makes tokio wake its driver through its eventfd: one extra system
//! call per request, and a driver that looks busy to the idle poll (`app::runtime`) right
//! when it is about to sleep. Here a sleep is an entry in one ordered map, and one tokio
//! timer stands for the earliest deadline: a new deadline later than that one (the usual
//! case: each request's deadline is later than the last) touches no tokio timer at all.
//! When that timer fires, it wakes the sleeps that are due and moves on to the earliest
//! left. Deadlines are exact, not rounded.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// A [`hyper::rt::Timer`] whose sleeps share one tokio timer (see the module docs).
#[derive(Clone)]
pub struct HeaderTimer {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Tells the driver task its deadline moved earlier, or that the timer is gone.
    wake_driver: Arc<Notify>,
}

#[derive(Default)]
struct State {
    /// Pending sleeps by (deadline, id), with the task to wake when due.
    sleeps: BTreeMap<(Instant, u64), Waker>,
    next_id: u64,
    /// What the driver's tokio timer is set for (None: it waits to be told).
    armed: Option<Instant>,
}

impl HeaderTimer {
    /// A timer whose driver task runs on the current tokio runtime until the last clone of
    /// the timer, and the last of its sleeps, are dropped.
    pub fn new() -> Self {
        let wake_driver = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake_driver: wake_driver.clone(),
        });
        tokio::spawn(drive(Arc::downgrade(&shared), wake_driver));
        HeaderTimer { shared }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The driver holds only a weak reference: let it see that it is alone.
        self.wake_driver.notify_one();
    }
}

impl hyper::rt::Timer for HeaderTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HeaderSleep {
            shared: self.shared.clone(),
            deadline,
            key: None,
        })
    }
}

/// One sleep: registered on its first pending poll, removed when dropped.
struct HeaderSleep {
    shared: Arc<Shared>,
    deadline: Instant,
    /// Its entry in the map once registered.
    key: Option<(Instant, u64)>,
}

impl hyper::rt::Sleep for HeaderSleep {}

impl Future for HeaderSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if Instant::now() >= this.deadline {
            this.unregister();
            return Poll::Ready(());
        }
        let mut state = lock(&this.shared.state);
        let key = match this.key {
            Some(key) => key,
            None => {
                state.next_id = state.next_id.wrapping_add(1);
                let key = (this.deadline, state.next_id);
                this.key = Some(key);
                key
            }
        };
        match state.sleeps.get_mut(&key) {
            Some(waker) => waker.clone_from(cx.waker()),
            None => {
                state.sleeps.insert(key, cx.waker().clone());
            }
        }
        // Only a deadline earlier than the driver's needs the driver to move.
        if state.armed.is_none_or(|armed| this.deadline < armed) {
            state.armed = Some(this.deadline);
            drop(state);
            this.shared.wake_driver.notify_one();
        }
        Poll::Pending
    }
}

impl HeaderSleep {
    fn unregister(&mut self) {
        if let Some(key) = self.key.take() {
            lock(&self.shared.state).sleeps.remove(&key);
        }
    }
}

impl Drop for HeaderSleep {
    fn drop(&mut self) {
        // The driver's timer stays where it is: the next sleep is most likely later.
        self.unregister();
    }
}

/// The driver task: one tokio timer at the earliest armed deadline; wakes what is due.
async fn drive(shared: Weak<Shared>, wake_driver: Arc<Notify>) {
    loop {
        let armed = match shared.upgrade() {
            Some(shared) => lock(&shared.state).armed,
            None => return,
        };
        match armed {
            Some(deadline) => {
                tokio::select! {
                    () = tokio::time::sleep_until(deadline.into()) => {}
                    () = wake_driver.notified() => continue,
                }
            }
            None => {
                wake_driver.notified().await;
                continue;
            }
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let due = {
            let mut state = lock(&shared.state);
            let now = Instant::now();
            let mut due = Vec::new();
            while let Some(entry) = state.sleeps.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                due.push(entry.remove());
            }
            state.armed = state.sleeps.keys().next().map(|(deadline, _)| *deadline);
            due
        };
        for waker in due {
            waker.wake();
        }
    }
}

/// The state lock; a panic elsewhere while holding it leaves plain data behind, still usable.
fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Timer;

    /// Waits for `sleep` and says how long that took.
    async fn timed(sleep: Pin<Box<dyn hyper::rt::Sleep>>) -> Duration {
        let start = Instant::now();
        sleep.await;
        start.elapsed()
    }

    #[tokio::test]
    async fn sleeps_end_at_their_deadlines_in_any_order() {
        let timer = HeaderTimer::new();
        let ms = Duration::from_millis;
        let (late, early, middle) = tokio::join!(
            timed(timer.sleep(ms(300))),
            timed(timer.sleep(ms(100))),
            timed(timer.sleep(ms(200))),
        );
        // Never early; late only by what a busy test machine adds.
        assert!(early >= ms(100) && early < ms(2100), "{early:?}");
        assert!(middle >= ms(200) && middle < ms(2200), "{middle:?}");
        assert!(late >= ms(300) && late < ms(2300), "{late:?}");
        assert!(lock(&timer.shared.state).sleeps.is_empty());
    }

    #[tokio::test]
    async fn a_later_deadline_leaves_the_driver_alone_and_dropped_sleeps_leave() {
        let timer = HeaderTimer::new();
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut first = timer.sleep(Duration::from_secs(10));
        assert!(first.as_mut().poll(&mut cx).is_pending());
        let armed = lock(&timer.shared.state).armed;
        assert!(armed.is_some());
        let mut second = timer.sleep(Duration::from_secs(20));
        assert!(second.as_mut().poll(&mut cx).is_pending());
        assert_eq!(lock(&timer.shared.state).armed, armed);
        assert_eq!(lock(&timer.shared.state).sleeps.len(), 2);
        drop(first);
        drop(second);
        assert!(lock(&timer.shared.state).sleeps.is_empty());
        // An earlier one moves the driver.
        let mut third = timer.sleep(Duration::from_secs(1));
        assert!(third.as_mut().poll(&mut cx).is_pending());
        assert!(lock(&timer.shared.state).armed < armed);
    }

    #[tokio::test]
    async fn the_driver_ends_with_the_timer() {
        let timer = HeaderTimer::new();
        let shared = Arc::downgrade(&timer.shared);
        let notify = timer.shared.wake_driver.clone();
        // Started and waiting to be told.
        tokio::task::yield_now().await;
        assert_eq!(Arc::strong_count(&notify), 3);
        drop(timer);
        // The driver held only a weak reference to the state and was told: it returns and
        // drops its handle on the notifier.
        assert!(shared.upgrade().is_none());
        for _ in 0..100 {
            if Arc::strong_count(&notify) == 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(Arc::strong_count(&notify), 1);
    }
}
