//! Named crash points for the crash tests: `SLUICE_FAILPOINT=<name>` makes the process abort
//! (as abruptly as a `kill -9`) the first time it reaches [`hit`] with that name, or the
//! N-th time with `<name>:N`. Unset, a hit costs one relaxed atomic load.
//!
//! The names mark the phase boundaries of a flow (`after-stage`, `consolidate-statement`,
//! `before-commit`, `after-commit`, `after-verify`, `after-cleanup`), where a crash is
//! most likely to expose a window that advanced without its data, or data without its
//! window.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

struct Armed {
    name: String,
    nth: u64,
    seen: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var("SLUICE_FAILPOINT").ok().filter(|s| !s.is_empty())?;
            let (name, nth) = match spec.rsplit_once(':') {
                Some((name, n)) => (name.to_owned(), n.parse().unwrap_or(1)),
                None => (spec, 1),
            };
            Some(Armed { name, nth: nth.max(1), seen: AtomicU64::new(0) })
        })
        .as_ref()
}

/// Aborts the process here if `SLUICE_FAILPOINT` names this point (see the module docs).
pub fn hit(name: &str) {
    if let Some(armed) = armed()
        && armed.name == name
        && armed.seen.fetch_add(1, Ordering::Relaxed) + 1 == armed.nth
    {
        eprintln!("sluice: failpoint {name} reached, aborting");
        std::process::abort();
    }
}
