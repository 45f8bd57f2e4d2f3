//! The data part of an append consolidation (`write = "append"`): the target is an event
//! log, one row per version read, never updated or removed.
//!
//! A version is the record's whole row as read. Runs overlap (the look-back re-reads the
//! end of the last window; a retried or crashed run reads its window again), so the same
//! version arrives more than once: a staged row is appended only when neither the target
//! nor an earlier staged row already holds that version, compared on the Id and the cursor
//! first (the lookup) and then on every column, NULL matching NULL. Two reads of a record
//! within one cursor second that differ in any value are two versions, and both are kept.
//!
//! The duplicate check must not cost a scan of the whole log: a duplicate carries the same
//! cursor value as the staged row, so only target rows at or after the window's start can
//! match. That bound is written out as a literal, which lets DuckDB skip row groups by their
//! cursor statistics; PostgreSQL probes the index the table was created with
//! ([`super::ddl`]). A full read (no window start) compares with the whole table.
//!
//! The changes table has the merge's shape (see [`super::merge`]): every row new and
//! advanced, none deleted, so the flow-run row counts appended versions as inserted, and
//! the rows are written from staging by stage order, in slices where the dialect wants them.

use super::merge::{ADVANCED, IS_DELETED, IS_NEW, changed_sources, changes_name, col, narrow};
use super::spec::{MergeSpec, RUN_ID, STAGE_SEQ, SYNCED_AT};
use crate::model::Timestamp;
use crate::sql::Dialect;

/// Whether the rows under `a` and `b` hold the same version: equal Ids, then every other
/// column equal or both NULL (`IS NOT DISTINCT FROM` spelled out, which Redshift lacks).
fn same_version(d: Dialect, spec: &MergeSpec, a: &str, b: &str) -> String {
    let mut terms = vec![format!("{} = {}", col(d, a, &spec.id), col(d, b, &spec.id))];
    // The cursor first: the likeliest difference, and what DuckDB and PostgreSQL join on.
    let others = spec
        .cursor
        .iter()
        .chain(spec.columns.iter().map(|c| &c.name).filter(|n| **n != spec.id && Some(*n) != spec.cursor.as_ref()));
    for name in others {
        let (x, y) = (col(d, a, name), col(d, b, name));
        terms.push(format!("({x} = {y} OR ({x} IS NULL AND {y} IS NULL))"));
    }
    terms.join("\n    AND ")
}

/// Drop any leftover, then create the changes table: the staged rows that are versions
/// the target does not hold yet, each once. `start`: the window's start (see the module
/// docs).
pub(super) fn changes_table(dialect: Dialect, spec: &MergeSpec, start: Option<Timestamp>) -> Vec<String> {
    let d = dialect;
    let q = |n: &str| d.quote_ident(n);
    let changes = q(&changes_name(spec));
    let (s, e, t) = ("s", "e", "t");
    let kept: Vec<String> = narrow(spec).into_iter().map(|c| col(d, s, c)).collect();
    let bound = match (&spec.cursor, start) {
        (Some(cursor), Some(start)) => format!("\n    AND {} >= {}", col(d, t, cursor), d.timestamp_literal(start)),
        _ => String::new(),
    };
    let mut statements = vec![
        format!("DROP TABLE IF EXISTS {changes}"),
        format!(
            "CREATE TEMP TABLE {changes} AS\nSELECT {},\n  TRUE AS {}, TRUE AS {}, FALSE AS {}\nFROM {} AS {}\nWHERE NOT \
             EXISTS (\n  SELECT 1 FROM {} AS {}\n  WHERE {}\n    AND {} < {}\n)\nAND NOT EXISTS (\n  SELECT 1 FROM {} \
             AS {}\n  WHERE {}{bound}\n)",
            kept.join(", "),
            q(IS_NEW),
            q(ADVANCED),
            q(IS_DELETED),
            d.table(&spec.staging),
            q(s),
            d.table(&spec.staging),
            q(e),
            same_version(d, spec, e, s),
            col(d, e, STAGE_SEQ),
            col(d, s, STAGE_SEQ),
            d.table(&spec.target),
            q(t),
            same_version(d, spec, t, s),
        ),
    ];
    if d.caps().analyze_temp_tables {
        statements.push(format!("ANALYZE {changes}"));
    }
    statements
}

/// The appends: every row of the changes table, in full from staging, with this run's
/// metadata. `staged`: the rows the load staged (for the dialect's slices).
pub(super) fn insert(dialect: Dialect, spec: &MergeSpec, staged: u64) -> Vec<String> {
    let d = dialect;
    let q = |n: &str| d.quote_ident(n);
    let names: Vec<&str> = spec.columns.iter().map(|c| c.name.as_str()).collect();
    let into: Vec<String> = names.iter().chain(&[SYNCED_AT, RUN_ID]).map(|n| q(n)).collect();
    let values: Vec<String> = names
        .iter()
        .map(|n| col(d, "s", n))
        .chain([d.timestamp_literal(spec.synced_at), d.quote_literal(&spec.run_id)])
        .collect();
    changed_sources(d, spec, staged)
        .into_iter()
        .map(|source| {
            format!(
                "INSERT INTO {} ({})\nSELECT {}\nFROM {source} AS {}",
                d.table(&spec.target),
                into.join(", "),
                values.join(", "),
                q("s")
            )
        })
        .collect()
}
