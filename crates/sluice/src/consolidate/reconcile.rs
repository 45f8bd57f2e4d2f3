//! Reconciliation SQL (DESIGN "Reconciliation"): the deletes no incremental query can see.
//!
//! A hard delete, or a soft delete purged from the recycle bin before the next run, leaves
//! no row for `queryAll` to return, so its destination row would live for ever. The
//! orchestrator loads the source's live Ids (a snapshot started at `snapshot_start`) into
//! the Id table beside staging; a destination row that is live, absent from the snapshot,
//! and whose cursor is older than the snapshot's start (so it cannot be a row created while
//! the snapshot was read) is gone at the source.
//!
//! [`reconcile_counts`] measures first, so the `max_delete_ratio` guard can refuse before
//! anything changes; [`reconcile_apply`] is one transaction: mark or delete the rows, close
//! their history versions, and stamp the flow's `last_reconciliation`.

use super::spec::{DELETED, MergeSpec, SYNCED_AT};
use crate::config::Deletes;
use crate::model::{SluiceType, Timestamp};
use crate::sql::{Dialect, TableRef};

/// The table the live Ids are loaded into: `<staging schema>.<table>__ids`.
pub fn ids_table(spec: &MergeSpec) -> TableRef {
    TableRef::new(&spec.staging.schema, format!("{}__ids", spec.target.name))
}

/// Create the Id table, before loading the snapshot (after
/// [`crate::destination::Destination::discard`] removed the previous one).
pub fn ids_ddl(dialect: Dialect, spec: &MergeSpec) -> Vec<String> {
    let table = dialect.table(&ids_table(spec));
    vec![
        format!("CREATE SCHEMA IF NOT EXISTS {}", dialect.quote_ident(&spec.staging.schema)),
        format!(
            "CREATE {}TABLE {table} ({} {})",
            dialect.transient(),
            dialect.quote_ident(&spec.id),
            dialect.sql_type(SluiceType::Id)
        ),
    ]
}

/// `WHERE` condition (on alias-free target columns) of the rows reconciliation removes.
fn gone(dialect: Dialect, spec: &MergeSpec, snapshot_start: Timestamp) -> String {
    let q = |n: &str| dialect.quote_ident(n);
    let target = dialect.table(&spec.target);
    let mut cond = format!(
        "NOT EXISTS (SELECT 1 FROM {} AS {} WHERE {}.{} = {target}.{})",
        dialect.table(&ids_table(spec)),
        q("i"),
        q("i"),
        q(&spec.id),
        q(&spec.id)
    );
    if let Some(cursor) = &spec.cursor {
        cond.push_str(&format!(" AND {target}.{} < {}", q(cursor), dialect.timestamp_literal(snapshot_start)));
    }
    if spec.deletes == Deletes::Soft {
        cond.push_str(&format!(" AND NOT COALESCE({target}.{}, FALSE)", q(DELETED)));
    }
    cond
}

/// Live destination rows.
pub fn live_condition(dialect: Dialect, deletes: Deletes) -> String {
    match deletes {
        Deletes::Soft => format!("NOT COALESCE({}, FALSE)", dialect.quote_ident(DELETED)),
        Deletes::Hard => "TRUE".to_owned(),
    }
}

/// The same count for an append table ([`super::append`]), which holds versions: the Ids
/// whose newest version before `end` is not deleted (ties on the cursor go to the later
/// write). One row, one column.
pub fn append_live_count(dialect: Dialect, spec: &MergeSpec, end: Option<Timestamp>) -> String {
    let d = dialect;
    let q = |n: &str| d.quote_ident(n);
    let deleted = match &spec.deleted_flag {
        Some(flag) => format!("COALESCE({}, FALSE)", q(flag)),
        None => "FALSE".to_owned(),
    };
    let mut order = vec![format!("{} DESC", q(SYNCED_AT))];
    let mut cond = "TRUE".to_owned();
    if let Some(cursor) = &spec.cursor {
        order.insert(0, format!("{} DESC NULLS LAST", q(cursor)));
        if let Some(end) = end {
            cond = format!("{} < {}", q(cursor), d.timestamp_literal(end));
        }
    }
    format!(
        "SELECT COUNT(*) FROM (\n  SELECT {deleted} AS {}, ROW_NUMBER() OVER (PARTITION BY {} ORDER BY {}) AS {}\n  \
         FROM {} WHERE {cond}\n) AS {} WHERE {} = 1 AND NOT {}",
        q("deleted"),
        q(&spec.id),
        order.join(", "),
        q("rn"),
        d.table(&spec.target),
        q("v"),
        q("rn"),
        q("deleted"),
    )
}

/// One row: `live` (live destination rows) and `gone` (rows reconciliation would remove).
pub fn reconcile_counts(dialect: Dialect, spec: &MergeSpec, snapshot_start: Timestamp) -> String {
    let target = dialect.table(&spec.target);
    format!(
        "SELECT (SELECT COUNT(*) FROM {target} WHERE {}) AS {}, (SELECT COUNT(*) FROM {target} WHERE {}) AS {}",
        live_condition(dialect, spec.deletes),
        dialect.quote_ident("live"),
        gone(dialect, spec, snapshot_start),
        dialect.quote_ident("gone"),
    )
}

/// The reconciliation transaction: remove (hard) or flag (soft) the gone rows, close their
/// current history versions at the snapshot's start, stamp `last_reconciliation`, drop the
/// Id table.
pub fn reconcile_apply(dialect: Dialect, spec: &MergeSpec, snapshot_start: Timestamp) -> Vec<String> {
    let cond = gone(dialect, spec, snapshot_start);
    let mut out = super::merge::remove_where(dialect, spec, &cond, snapshot_start);
    out.push(super::control::reconciled(dialect, &spec.target, spec.synced_at));
    out.push(super::control::rows_present_update(dialect, &spec.target));
    out
}

/// Live rows of `table` whose `cursor` is before `end` (what `verify` compares with the
/// source's `COUNT()` at the same instant; every live row without a cursor or an end). One
/// row, one column.
pub fn live_count(
    dialect: Dialect,
    table: &TableRef,
    deletes: Deletes,
    cursor: Option<&str>,
    end: Option<Timestamp>,
) -> String {
    let mut cond = live_condition(dialect, deletes);
    if let (Some(cursor), Some(end)) = (cursor, end) {
        cond.push_str(&format!(" AND {} < {}", dialect.quote_ident(cursor), dialect.timestamp_literal(end)));
    }
    format!("SELECT COUNT(*) FROM {} WHERE {cond}", dialect.table(table))
}
