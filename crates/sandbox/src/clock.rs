//! The org's clock: wall time plus an offset that tests can advance, or a frozen
//! instant, so time-dependent behaviour (retention, token lifetime, late commits,
//! formulas using TODAY) is testable without waiting.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Sentinel for "not frozen".
const RUNNING: i64 = i64::MIN;

/// A clock shared by every handler.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
    frozen_at: AtomicI64,
}

fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Clock {
    /// A clock running with wall time.
    pub fn new() -> Self {
        Clock { offset_ms: AtomicI64::new(0), frozen_at: AtomicI64::new(RUNNING) }
    }

    /// Now, in ms since the epoch.
    pub fn now_ms(&self) -> i64 {
        match self.frozen_at.load(Ordering::Acquire) {
            RUNNING => wall_ms() + self.offset_ms.load(Ordering::Acquire),
            t => t,
        }
    }

    /// Moves the clock forward (or back, with a negative amount).
    pub fn advance(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::AcqRel);
        let frozen = self.frozen_at.load(Ordering::Acquire);
        if frozen != RUNNING {
            self.frozen_at.store(frozen + ms, Ordering::Release);
        }
    }

    /// Jumps to an instant, keeping the frozen/running state.
    pub fn set(&self, ms: i64) {
        if self.frozen_at.load(Ordering::Acquire) != RUNNING {
            self.frozen_at.store(ms, Ordering::Release);
        }
        self.offset_ms.store(ms - wall_ms(), Ordering::Release);
    }

    /// Stops the clock at the current instant, or lets it run again from there.
    pub fn freeze(&self, frozen: bool) {
        if frozen {
            let now = self.now_ms();
            self.frozen_at.store(now, Ordering::Release);
        } else {
            let at = self.frozen_at.swap(RUNNING, Ordering::AcqRel);
            if at != RUNNING {
                self.offset_ms.store(at - wall_ms(), Ordering::Release);
            }
        }
    }

    /// Whether the clock is frozen.
    pub fn is_frozen(&self) -> bool {
        self.frozen_at.load(Ordering::Acquire) != RUNNING
    }

    /// The current offset from wall time.
    pub fn offset_ms(&self) -> i64 {
        self.now_ms() - wall_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_clock_advances_only_when_told() {
        let c = Clock::new();
        c.freeze(true);
        let t = c.now_ms();
        assert_eq!(c.now_ms(), t);
        c.advance(60_000);
        assert_eq!(c.now_ms(), t + 60_000);
        c.set(1_000);
        assert_eq!(c.now_ms(), 1_000);
        c.freeze(false);
        assert!(c.now_ms() >= 1_000 && c.now_ms() < 60_000);
    }
}
