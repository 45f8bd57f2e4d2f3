//! The library's one error type.
//!
//! Every failure is described on two independent axes, so the orchestrator never has to
//! match on message strings:
//!
//! - [`Kind`] says *who must act*: the user (bad config, bad credentials, missing
//!   permission, unknown object), the outside world (the SaaS API or the warehouse is
//!   down, slow, or out of quota), or us (a bug).
//! - [`Retry`] says *what the orchestrator does next*: give up, back off and retry, or
//!   wait a known time first.
//!
//! A quota stop (`REQUEST_LIMIT_EXCEEDED`, or sluice's own `api_budget_percent`) is an
//! error of kind [`Kind::External`] with [`Retry::After`], marked by a [`QuotaExceeded`]
//! source so [`Error::is_quota`] can tell it apart from a `Retry-After` on a 429. It is
//! never a success: the run stops cleanly at a flow boundary, reports it, and the next run
//! resumes from the last committed window.
//!
//! A destination's unique-key violation is marked the same way, by a [`DuplicateKey`]
//! source: a direct first load relies on it to learn that staging held an Id twice
//! ([`crate::consolidate::FirstLoad`]).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Boxed underlying cause of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One error of the library: who must act, what to do next, and a message for humans.
///
/// The message never contains a secret: constructors take already-rendered text, and the
/// code that renders it holds secrets only as [`crate::config::Secret`].
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// Who must act.
    pub kind: Kind,
    /// What the orchestrator does next.
    pub retry: Retry,
    /// A message naming what failed and where, meant for the person running sluice.
    pub message: String,
    /// The underlying cause, if any.
    #[source]
    pub source: Option<BoxError>,
}

/// Who must act on an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The user: configuration, credentials, permissions, unknown objects or fields.
    User,
    /// The outside world: the source API or the destination failed, timed out, or is
    /// out of quota.
    External,
    /// sluice itself: an invariant broke or we sent a request the API could not accept.
    Internal,
}

/// What the orchestrator does with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Retry {
    /// Retrying cannot help.
    Never,
    /// Retry with exponential backoff and jitter, a bounded number of times.
    Backoff,
    /// Retry no sooner than after this long (a `Retry-After` header, a quota reset).
    After(Duration),
}

/// Marks an [`Error`] as a quota stop: the API's request limit or sluice's own API
/// budget was reached. It is the error's `source`, so the struct stays the same shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct QuotaExceeded {
    /// Requests used in the current 24-hour window, when known.
    pub used: Option<u64>,
    /// The org's limit for the window, when known.
    pub max: Option<u64>,
}

impl fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.used, self.max) {
            (Some(used), Some(max)) => write!(f, "API quota reached ({used}/{max} requests)"),
            _ => f.write_str("API quota reached"),
        }
    }
}

/// Marks an [`Error`] as "another run holds the destination": the user's to resolve (wait,
/// or stop the other run), but no mistake in the config, and the same command succeeds once
/// the other run ends ([`Error::is_busy`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the destination is in use by another run")]
pub struct Busy;

/// Marks an [`Error`] as a destination's unique-key violation (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("duplicate key")]
pub struct DuplicateKey;

/// How long a quota stop waits when the API does not say. Salesforce's request limit is
/// a rolling 24-hour window, so usage falls gradually: an hour is a reasonable first
/// look, and the next scheduled run checks again anyway.
pub const QUOTA_RETRY_AFTER: Duration = Duration::from_secs(3600);

impl Error {
    /// An error with every field given.
    pub fn new(kind: Kind, retry: Retry, message: impl Into<String>) -> Self {
        Self { kind, retry, message: message.into(), source: None }
    }

    /// A problem the user must fix (config, credentials, permissions); never retried.
    pub fn user(message: impl Into<String>) -> Self {
        Self::new(Kind::User, Retry::Never, message)
    }

    /// A transient failure outside sluice; retried with backoff.
    pub fn external(message: impl Into<String>) -> Self {
        Self::new(Kind::External, Retry::Backoff, message)
    }

    /// A failure outside sluice that retrying the same request cannot fix.
    pub fn external_fatal(message: impl Into<String>) -> Self {
        Self::new(Kind::External, Retry::Never, message)
    }

    /// A transient failure outside sluice to retry after `wait` (a `Retry-After`).
    pub fn external_after(message: impl Into<String>, wait: Duration) -> Self {
        Self::new(Kind::External, Retry::After(wait), message)
    }

    /// A bug in sluice; never retried.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Kind::Internal, Retry::Never, message)
    }

    /// A quota stop: external, retried no sooner than `wait` (next run), never a success.
    pub fn quota(message: impl Into<String>, quota: QuotaExceeded, wait: Duration) -> Self {
        Self::new(Kind::External, Retry::After(wait), message).with_source(quota)
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Prefixes the message with where it happened (`"Account: "`, `"flows[2]: "`).
    pub fn context(mut self, prefix: impl fmt::Display) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }

    /// Whether this is a quota stop (see the module docs).
    pub fn is_quota(&self) -> bool {
        self.source.as_ref().is_some_and(|s| s.is::<QuotaExceeded>())
    }

    /// The quota details when this is a quota stop.
    pub fn quota_details(&self) -> Option<&QuotaExceeded> {
        self.source.as_ref().and_then(|s| s.downcast_ref::<QuotaExceeded>())
    }

    /// Another run holds the destination's lock: a user error marked [`Busy`].
    pub fn busy(message: impl Into<String>) -> Self {
        Self::user(message).with_source(Busy)
    }

    /// Whether another run holds the destination ([`Error::busy`]).
    pub fn is_busy(&self) -> bool {
        self.source.as_ref().is_some_and(|s| s.is::<Busy>())
    }

    /// Whether a destination refused a duplicate key (see the module docs).
    pub fn is_duplicate_key(&self) -> bool {
        self.source.as_ref().is_some_and(|s| s.is::<DuplicateKey>())
    }

    /// Whether the orchestrator may try again (now with backoff, or later).
    pub fn is_retryable(&self) -> bool {
        self.retry != Retry::Never
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::User => "user",
            Kind::External => "external",
            Kind::Internal => "internal",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_set_both_axes() {
        let cases = [
            (Error::user("u"), Kind::User, Retry::Never),
            (Error::external("e"), Kind::External, Retry::Backoff),
            (Error::external_fatal("e"), Kind::External, Retry::Never),
            (Error::external_after("e", Duration::from_secs(5)), Kind::External, Retry::After(Duration::from_secs(5))),
            (Error::internal("i"), Kind::Internal, Retry::Never),
        ];
        for (err, kind, retry) in cases {
            assert_eq!((err.kind, err.retry), (kind, retry), "{err}");
            assert!(!err.is_quota());
        }
    }

    #[test]
    fn quota_is_external_after_and_detectable() {
        let q = QuotaExceeded { used: Some(4001), max: Some(5000) };
        let err = Error::quota("API budget of 80% reached", q.clone(), QUOTA_RETRY_AFTER);
        assert_eq!(err.kind, Kind::External);
        assert_eq!(err.retry, Retry::After(QUOTA_RETRY_AFTER));
        assert!(err.is_quota());
        assert!(err.is_retryable());
        assert_eq!(err.quota_details(), Some(&q));
        assert_eq!(q.to_string(), "API quota reached (4001/5000 requests)");
        // A plain Retry-After is not a quota stop.
        assert!(!Error::external_after("slow down", Duration::from_secs(1)).is_quota());
    }

    #[test]
    fn context_and_source_chain() {
        let io = std::io::Error::other("reset");
        let err = Error::external("read failed").with_source(io).context("Account");
        assert_eq!(err.to_string(), "Account: read failed");
        let src = std::error::Error::source(&err).map(|s| s.to_string());
        assert_eq!(src.as_deref(), Some("reset"));
    }
}
