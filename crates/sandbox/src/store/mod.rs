//! The org's records: one columnar [`Table`] per object, and the [`Org`] that applies
//! writes with Salesforce's semantics.
//!
//! Invariants the rest of the sandbox relies on:
//! - every write stamps `SystemModstamp` (and, for user writes, `LastModifiedDate`) with
//!   the server clock truncated to the second, as real orgs do (samples always end in
//!   `.000`), so many rows share a timestamp;
//! - a delete keeps the row with `IsDeleted = true` in the recycle bin until it is
//!   purged (retention, or an explicit purge); purged rows vanish from every query;
//! - rows are never physically removed, so a row number stays valid for a query
//!   cursor's lifetime;
//! - a late commit is a write whose stamp is taken now but which is applied (made
//!   visible) only at `visible_at`, with its original stamp.

mod access;
mod changes;
pub mod column;
mod derive;
mod org;
mod table;

pub use access::{Accessor, RowView};
pub use changes::{Captured, ChangeKind, ChangeLog, DEFAULT_RETENTION_MS, Transaction};
pub use column::Column;
pub use org::{Change, ChangeError, Org};
pub use table::{SystemColumns, Table};

use crate::value::days_from_ms;

/// Today in days since the epoch at `now_ms`.
pub fn today(now_ms: i64) -> i32 {
    days_from_ms(now_ms)
}

#[cfg(test)]
mod tests;
