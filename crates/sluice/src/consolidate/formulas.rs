//! Formula refresh SQL (DESIGN "Formula fields"; issue "`sluice serve`"): a formula field
//! is computed when it is read, so its value changes (a parent renamed, a day passed)
//! without the record's `SystemModstamp` moving, and no incremental read sees it. Every
//! `formula_refresh_every` the orchestrator reads `Id` plus the flow's formula fields of
//! every source row the table keeps (the recycle bin's too, where deletes are soft) into
//! the formula table beside staging; then one transaction
//! writes the values that differ into the target (and into the current versions of its
//! history), stamps the rows it rewrote with the run, and records `last_formula_refresh`.
//! The window end is not touched: no other column was read.
//!
//! A history table gets the new values in place, in its current versions, rather than a
//! new version: the record did not change at the source (its cursor did not move), only
//! what a formula computes from it and its neighbours, and a version per recomputation
//! would make every day of a `DaysSince` formula a version of every row.
//!
//! Rows the target does not hold (created after the window end) are not inserted: the
//! next incremental run brings them whole. [`formula_counts`] is read before the
//! transaction, under the same lock, for the run's summary.

use super::merge::col;
use super::spec::{CURRENT, MergeSpec, RUN_ID, SYNCED_AT};
use crate::model::{Column, SluiceType};
use crate::sql::{Dialect, TableRef};

/// The alias of the formula table in the statements.
const F: &str = "f";

/// The table the formula values are loaded into: `<staging schema>.<table>__formulas`.
pub fn formulas_table(spec: &MergeSpec) -> TableRef {
    TableRef::new(&spec.staging.schema, format!("{}__formulas", spec.target.name))
}

/// Create the formula table (Id plus `formulas`), before loading it (after
/// [`crate::destination::Destination::discard`] removed the previous one).
pub fn formulas_ddl(dialect: Dialect, spec: &MergeSpec, formulas: &[Column]) -> Vec<String> {
    let d = dialect;
    let mut defs = vec![format!("{} {}", d.quote_ident(&spec.id), d.sql_type(SluiceType::Id))];
    defs.extend(formulas.iter().map(|c| format!("{} {}", d.quote_ident(&c.name), d.sql_type(c.ty))));
    vec![
        format!("CREATE SCHEMA IF NOT EXISTS {}", d.quote_ident(&spec.staging.schema)),
        format!("CREATE {}TABLE {} ({})", d.transient(), d.table(&formulas_table(spec)), defs.join(", ")),
    ]
}

/// The condition (over `table`, unaliased, and the formula table as `f`) of a row whose
/// formula values differ: the same Id, and a value that is not equal and not both NULL
/// (`IS DISTINCT FROM` spelled out, which Redshift lacks).
fn differs(d: Dialect, spec: &MergeSpec, table: &str, formulas: &[Column]) -> String {
    let id = format!("{table}.{}", d.quote_ident(&spec.id));
    let terms: Vec<String> = formulas
        .iter()
        .map(|c| {
            let (t, f) = (format!("{table}.{}", d.quote_ident(&c.name)), col(d, F, &c.name));
            format!("NOT ({t} = {f} OR ({t} IS NULL AND {f} IS NULL))")
        })
        .collect();
    format!("{id} = {} AND ({})", col(d, F, &spec.id), terms.join(" OR "))
}

/// One row, one column: the target rows whose formula values differ from the formula
/// table's (what the refresh rewrites).
pub fn formula_counts(dialect: Dialect, spec: &MergeSpec, formulas: &[Column]) -> String {
    let d = dialect;
    let target = d.table(&spec.target);
    format!(
        "SELECT COUNT(*) FROM {target} WHERE EXISTS (SELECT 1 FROM {} AS {} WHERE {})",
        d.table(&formulas_table(spec)),
        d.quote_ident(F),
        differs(d, spec, &target, formulas)
    )
}

/// `UPDATE table SET <formulas from f>, <stamps> FROM <formula table> AS f WHERE <differs>`.
fn update(d: Dialect, spec: &MergeSpec, table: &TableRef, formulas: &[Column], extra: &str) -> String {
    let table = d.table(table);
    let mut set: Vec<String> =
        formulas.iter().map(|c| format!("{} = {}", d.quote_ident(&c.name), col(d, F, &c.name))).collect();
    set.push(format!("{} = {}", d.quote_ident(SYNCED_AT), d.timestamp_literal(spec.synced_at)));
    set.push(format!("{} = {}", d.quote_ident(RUN_ID), d.quote_literal(&spec.run_id)));
    format!(
        "UPDATE {table} SET {}\nFROM {} AS {}\nWHERE {}{extra}",
        set.join(", "),
        d.table(&formulas_table(spec)),
        d.quote_ident(F),
        differs(d, spec, &table, formulas)
    )
}

/// The refresh transaction: rewrite the differing formula values in the target and in the
/// current history versions, and stamp `last_formula_refresh`.
pub fn formulas_apply(dialect: Dialect, spec: &MergeSpec, formulas: &[Column]) -> Vec<String> {
    let d = dialect;
    let mut out = vec![update(d, spec, &spec.target, formulas, "")];
    if spec.history {
        let history = spec.history_table();
        let current = format!(" AND {}.{}", d.table(&history), d.quote_ident(CURRENT));
        out.push(update(d, spec, &history, formulas, &current));
    }
    out.push(super::control::formulas_refreshed(d, &spec.target, spec.synced_at));
    out
}
