//! The state every handler shares ([`AppState`]) and the daily API call counter it
//! holds ([`ApiUsage`]); [`AppState::tick`] lives in `tick.rs`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use rand_chacha::ChaCha8Rng;

use super::{cursors, jobs};
use crate::clock::Clock;
use crate::knobs::Knobs;
use crate::oauth::OAuthServer;
use crate::store::Org;

/// API calls counted against the daily limit (a rolling 24 h window, reset as a whole).
#[derive(Debug, Default)]
pub struct ApiUsage {
    used: AtomicU64,
    window_start: AtomicI64,
}

impl ApiUsage {
    /// Counts one call at `now`; returns the calls used in the window including this one.
    pub fn count(&self, now: i64) -> u64 {
        let start = self.window_start.load(Ordering::Acquire);
        if now - start >= 86_400_000
            && self.window_start.compare_exchange(start, now, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            self.used.store(0, Ordering::Release);
        }
        self.used.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Calls used so far in the window.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// Starts a new window (admin API).
    pub fn reset(&self, now: i64) {
        self.window_start.store(now, Ordering::Release);
        self.used.store(0, Ordering::Release);
    }
}

impl AppState {
    /// Whether `token` is a session the org issued that has not expired at `now` (the
    /// `token_lifetime_secs` knob).
    pub fn session_valid(&self, token: &str, now: i64) -> bool {
        let lifetime = self.knobs.read().token_lifetime_secs.map(|s| s as i64 * 1000);
        self.oauth.store().check(token, now, lifetime).is_ok()
    }
}

/// Everything the handlers share.
pub struct AppState {
    /// The records.
    pub org: RwLock<Org>,
    /// The org's clock.
    pub clock: Clock,
    /// Current knobs.
    pub knobs: RwLock<Knobs>,
    /// Token endpoint logic and issued tokens.
    pub oauth: OAuthServer,
    /// Base URL of this server (`http://127.0.0.1:PORT`); both login and instance URL.
    pub base_url: String,
    /// URL of its Pub/Sub API (`https://127.0.0.1:PORT`), a port of its own.
    pub pubsub_url: String,
    /// API call counter.
    pub api: ApiUsage,
    /// REST query cursors.
    pub cursors: cursors::Cursors,
    /// Bulk API 2.0 query jobs.
    pub jobs: jobs::Jobs,
    /// Randomness for faults and churn (seeded, so a run is reproducible).
    pub rng: Mutex<ChaCha8Rng>,
    /// Seed of the generated data (churn inserts generate more of it).
    pub seed: u64,
    /// Anchor of generated timestamps.
    pub anchor_ms: i64,
    /// When the org started (clock time), for knobs that act "after N seconds".
    pub started_ms: i64,
    /// Which `fields_added` knobs have been applied (by object and name).
    pub added_fields: Mutex<Vec<(String, String)>>,
}
