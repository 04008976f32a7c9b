//! Time sources for devices that keep time (the PL031), injectable so tests need not sleep.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A function a clock calls when its time jumps; see [`Clock::on_jump`].
pub type JumpWaker = Box<dyn Fn() + Send + Sync>;

/// A monotonic time source: time since an arbitrary, fixed origin.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time. Never goes backwards.
    fn now(&self) -> Duration;

    /// Registers `wake`, called after the time moves other than by waiting (a test clock
    /// advanced by hand), so a thread sleeping until a deadline re-reads the time. Real clocks
    /// never jump, and ignore it.
    fn on_jump(&self, wake: JumpWaker) {
        let _ = wake;
    }
}

/// The host's monotonic clock (`Instant`), counted from when the value was made.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// A clock at zero now.
    pub fn new() -> Self {
        MonotonicClock {
            origin: Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to, for tests.
#[derive(Default)]
pub struct ManualClock {
    now: Mutex<Duration>,
    wakers: Mutex<Vec<JumpWaker>>,
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .finish_non_exhaustive()
    }
}

impl ManualClock {
    /// A clock at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the time forward by `by` (saturating) and wakes the sleepers.
    pub fn advance(&self, by: Duration) {
        {
            let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
            *now = now.saturating_add(by);
        }
        // Woken without holding `now`: a waker may take a device lock whose holder reads the
        // time, and the time lock must never be taken inside that.
        let wakers = self.wakers.lock().unwrap_or_else(PoisonError::into_inner);
        for wake in wakers.iter() {
            wake();
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn on_jump(&self, wake: JumpWaker) {
        self.wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(wake);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn manual_clock_moves_when_told_and_wakes() {
        let clock = ManualClock::new();
        let woken = Arc::new(AtomicU32::new(0));
        let w = woken.clone();
        clock.on_jump(Box::new(move || {
            w.fetch_add(1, Ordering::Relaxed);
        }));
        assert_eq!(clock.now(), Duration::ZERO);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now(), Duration::from_millis(1500));
        assert_eq!(woken.load(Ordering::Relaxed), 1);
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), Duration::MAX);
    }

    #[test]
    fn monotonic_clock_does_not_go_back() {
        let clock = MonotonicClock::new();
        let a = clock.now();
        assert!(clock.now() >= a);
    }
}
