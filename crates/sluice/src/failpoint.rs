//! Named crash points for the crash tests: `SLUICE_FAILPOINT=<name>` makes the process abort
//! (as abruptly as a `kill -9`) the first time it reaches [`hit`] with that name, or the
//! N-th time with `<name>:N`. `SLUICE_FAILPOINT=error:<name>` instead makes [`check`] with
//! that name return an error (a full disk, a dropped connection at that step), every time.
//!
//! Only builds with the `failpoints` cargo feature honour the variable; the tests turn it on
//! (`sluice-cli`'s dev-dependency on this crate), the binaries users build do not, so no stray
//! environment variable can make a production run fail on purpose. Without the feature
//! [`hit`] is empty; with it, a hit costs one relaxed atomic load when the variable is unset.
//!
//! The names mark the phase boundaries of a flow, where a crash is most likely to expose a
//! window that advanced without its data, or data without its window. The flow driver
//! ([`crate::pipeline::flow`]) hits the same ones for every destination: `after-stage`
//! (a slice written, not committed), `after-commit` (a slice and its window end
//! committed), `after-formulas` (a formula refresh committed), `after-verify`,
//! `after-cleanup`. Inside a commit, each destination names its
//! own steps: `before-commit` everywhere (a warehouse's transaction about to commit, a files
//! run's parts written without their manifest), `consolidate-statement` between a
//! warehouse's consolidation statements, `after-manifest` (a files run's manifest written,
//! the state not yet).

/// Whether this build honours `SLUICE_FAILPOINT` (the `failpoints` feature).
pub const ENABLED: bool = cfg!(feature = "failpoints");

#[cfg(feature = "failpoints")]
mod armed {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Armed {
        name: String,
        nth: u64,
        error: bool,
        seen: AtomicU64,
    }

    fn armed() -> Option<&'static Armed> {
        static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
        ARMED
            .get_or_init(|| {
                let spec = std::env::var("SLUICE_FAILPOINT").ok().filter(|s| !s.is_empty())?;
                if let Some(name) = spec.strip_prefix("error:") {
                    return Some(Armed { name: name.to_owned(), nth: 1, error: true, seen: AtomicU64::new(0) });
                }
                let (name, nth) = match spec.rsplit_once(':') {
                    Some((name, n)) => (name.to_owned(), n.parse().unwrap_or(1)),
                    None => (spec, 1),
                };
                Some(Armed { name, nth: nth.max(1), error: false, seen: AtomicU64::new(0) })
            })
            .as_ref()
    }

    pub fn hit(name: &str) {
        if let Some(armed) = armed()
            && !armed.error
            && armed.name == name
            && armed.seen.fetch_add(1, Ordering::Relaxed) + 1 == armed.nth
        {
            eprintln!("sluice: failpoint {name} reached, aborting");
            std::process::abort();
        }
    }

    pub fn failing(name: &str) -> bool {
        armed().is_some_and(|a| a.error && a.name == name)
    }
}

/// Aborts the process here if this build has failpoints and `SLUICE_FAILPOINT` names this
/// point (see the module docs).
#[inline]
pub fn hit(name: &str) {
    #[cfg(feature = "failpoints")]
    armed::hit(name);
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}

/// An error here if this build has failpoints and `SLUICE_FAILPOINT=error:<name>` names this
/// point (see the module docs).
#[inline]
pub fn check(name: &str) -> crate::Result<()> {
    #[cfg(feature = "failpoints")]
    if armed::failing(name) {
        return Err(crate::Error::external(format!("failpoint {name}: an injected error")));
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
    Ok(())
}
