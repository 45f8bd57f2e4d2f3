//! Table DDL and schema evolution: create what is missing, add new columns, widen types
//! only where it is safe, never drop or narrow.
//!
//! A field removed from the source keeps its column (history stays queryable); new rows get
//! NULL there, and the caller gets a warning. A type change is applied only when every old
//! value fits the new type ([`widens`]) and the dialect can do it inside the consolidation
//! transaction; anything else is an [`Error`] of kind user with no SQL produced, so the flow
//! fails with no data change and the watermark stays where it was.

use std::collections::HashMap;

use super::spec::{Existing, ExistingColumn, FirstLoad, MergeSpec, STAGE_SEQ, Write};
use crate::config::WriteMode;
use crate::model::SluiceType;
use crate::sql::{Dialect, TableRef};
use crate::{Error, Result};

/// Schema statements for one consolidation, and the warnings they carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaChanges {
    /// `CREATE SCHEMA` / `CREATE TABLE` / `ALTER TABLE` statements, in order.
    pub statements: Vec<String>,
    /// Removed source fields, for the user.
    pub warnings: Vec<String>,
}

/// Whether a column of type `to` holds every value of type `from` exactly.
///
/// Int → Long; integers → decimals with enough integer digits; decimals with no fewer
/// integer digits and no fewer fraction digits; Id → Text. Nothing becomes a double (it is
/// not exact) and nothing changes kind (text ↔ number ↔ time).
pub fn widens(from: SluiceType, to: SluiceType) -> bool {
    use SluiceType::*;
    let int_digits = |p: u8, s: u8| p.saturating_sub(s);
    match (from, to) {
        _ if from == to => true,
        (Int, Long) | (Id, Text) => true,
        (Int, Decimal { precision, scale }) => int_digits(precision, scale) >= 10,
        (Long, Decimal { precision, scale }) => int_digits(precision, scale) >= 19,
        (Decimal { precision: p1, scale: s1 }, Decimal { precision: p2, scale: s2 }) => {
            s2 >= s1 && int_digits(p2, s2) >= int_digits(p1, s1)
        }
        _ => false,
    }
}

/// `CREATE SCHEMA IF NOT EXISTS` for a schema.
fn create_schema(dialect: Dialect, schema: &str) -> String {
    format!("CREATE SCHEMA IF NOT EXISTS {}", dialect.quote_ident(schema))
}

/// `CREATE <kind>TABLE` (`kind`: "" or [`Dialect::transient`]) with the given columns and
/// an optional primary key. No `IF NOT EXISTS`:
/// the catalog said the table is absent, and what follows trusts that (a new target gets a
/// plain INSERT); were the catalog read wrong (a name the server folds to lower case), the
/// transaction fails here instead of adding every row a second time.
fn create_table(
    dialect: Dialect,
    kind: &str,
    table: &TableRef,
    columns: &[(&str, SluiceType)],
    key: Option<&str>,
) -> String {
    let mut defs: Vec<String> =
        columns.iter().map(|(name, ty)| format!("{} {}", dialect.quote_ident(name), dialect.sql_type(*ty))).collect();
    if let Some(key) = key {
        // PostgreSQL enforces it; on Redshift the key is informational but helps the planner.
        defs.push(format!("PRIMARY KEY ({})", dialect.quote_ident(key)));
    }
    format!("CREATE {kind}TABLE {} (\n  {}\n)", dialect.table(table), defs.join(",\n  "))
}

/// The staging table for this run's columns, created anew because staging is emptied every
/// run anyway (DESIGN step 3) and recreating it makes it follow the source's columns
/// without any ALTER. Run these before loading, outside the consolidation, once
/// [`crate::destination::Destination::discard`] has removed the previous load (which a
/// destination may have turned into something other than a table).
///
/// Staging for a direct first load on PostgreSQL is an ordinary (logged) table: it becomes
/// the target (see [`super::FirstLoad`]), so it must survive a server crash like one.
pub fn staging_ddl(dialect: Dialect, spec: &MergeSpec, first_load: FirstLoad) -> Vec<String> {
    let mut columns: Vec<(&str, SluiceType)> = spec.columns.iter().map(|c| (c.name.as_str(), c.ty)).collect();
    columns.push((STAGE_SEQ, SluiceType::Long));
    let promoted = Write::of(dialect, first_load) == Write::Promote;
    let kind = if promoted { "" } else { dialect.transient() };
    vec![create_schema(dialect, &spec.staging.schema), create_table(dialect, kind, &spec.staging, &columns, None)]
}

/// The schema part of a consolidation: create the target (and history) table when absent,
/// else bring its columns up to the spec.
///
/// `promoted`: a new target is not created here, as staging becomes it (a direct first
/// load on PostgreSQL, see [`super::FirstLoad`]).
pub fn schema_changes(
    dialect: Dialect,
    spec: &MergeSpec,
    existing: &Existing,
    promoted: bool,
) -> Result<SchemaChanges> {
    let mut out = SchemaChanges::default();
    out.statements.push(create_schema(dialect, &spec.target.schema));

    let mut target_cols: Vec<(&str, SluiceType)> = spec.columns.iter().map(|c| (c.name.as_str(), c.ty)).collect();
    target_cols.extend(spec.metadata());
    match &existing.target {
        None if promoted => {}
        None => {
            // DuckDB enforces a key with an ART index that it must hold whole in memory to
            // insert (hundreds of MB at 10 M rows) and that slows every load; the changes
            // table already guarantees one row per Id. PostgreSQL's B-tree is cheap and
            // Redshift's key only informs the planner, so they keep it.
            let appends = spec.write == WriteMode::Append;
            // An append table holds many versions per Id: no key.
            let key = (dialect.caps().keyed_target && !appends).then_some(spec.id.as_str());
            out.statements.push(create_table(dialect, "", &spec.target, &target_cols, key));
            if appends && dialect.caps().indexes {
                // What a run's duplicate check looks up (see `super::append`).
                let version: Vec<&str> = std::iter::once(spec.id.as_str()).chain(spec.cursor.as_deref()).collect();
                out.statements.push(format!(
                    "CREATE INDEX ON {} ({})",
                    dialect.table(&spec.target),
                    super::spec::ident_list(dialect, &version)
                ));
            }
        }
        Some(cols) => evolve(dialect, &spec.target, cols, &target_cols, &mut out)?,
    }

    if spec.history {
        let history = spec.history_table();
        let mut history_cols = target_cols.clone();
        history_cols.extend(MergeSpec::history_metadata());
        match &existing.history {
            // Many versions per Id, so no key on the history table.
            None => out.statements.push(create_table(dialect, "", &history, &history_cols, None)),
            Some(cols) => evolve(dialect, &history, cols, &history_cols, &mut out)?,
        }
    }
    Ok(out)
}

/// ALTERs that bring `table` (with `have`) to `want`, in `want`'s order.
fn evolve(
    dialect: Dialect,
    table: &TableRef,
    have: &[ExistingColumn],
    want: &[(&str, SluiceType)],
    out: &mut SchemaChanges,
) -> Result<()> {
    let have_by_name: HashMap<&str, SluiceType> = have.iter().map(|c| (c.name.as_str(), c.ty)).collect();
    let target = dialect.table(table);
    for &(name, ty) in want {
        match have_by_name.get(name) {
            // Redshift, PostgreSQL and DuckDB all accept one ADD COLUMN per statement; Redshift
            // accepts no more, and no IF NOT EXISTS, which the catalog check makes unneeded.
            None => out.statements.push(format!(
                "ALTER TABLE {target} ADD COLUMN {} {}",
                dialect.quote_ident(name),
                dialect.sql_type(ty)
            )),
            Some(&old) if old == ty => {}
            // The source narrowed (or the destination cannot tell the two apart, as DuckDB's
            // VARCHAR(18) and VARCHAR): the existing column holds every new value. Silent,
            // since it would otherwise repeat on every run.
            Some(&old) if widens(ty, old) => {}
            Some(&old) if widens(old, ty) => match dialect.caps().alter_type_in_transaction {
                // Redshift can only change a VARCHAR's length, and not inside a transaction
                // block, so it cannot be part of an all-or-nothing consolidation.
                false => {
                    return Err(Error::user(format!(
                        "{}.{name}: the source type changed from {old} to {ty}; Redshift cannot change a column's \
                         type inside a transaction. Change it by hand (or drop the table and run with \
                         --full-refresh); nothing was written",
                        table.name
                    )));
                }
                true => out.statements.push(format!(
                    "ALTER TABLE {target} ALTER COLUMN {} SET DATA TYPE {}",
                    dialect.quote_ident(name),
                    dialect.sql_type(ty)
                )),
            },
            Some(&old) => {
                return Err(Error::user(format!(
                    "{}.{name}: the source type changed from {old} to {ty}, which is not a safe widening; sluice \
                     never converts a column lossily. Drop or rename the column (or the table) and run with \
                     --full-refresh; nothing was written",
                    table.name
                )));
            }
        }
    }
    let wanted: Vec<&str> = want.iter().map(|(n, _)| *n).collect();
    for col in have {
        if !wanted.contains(&col.name.as_str()) && !col.name.starts_with("_sluice_") {
            out.warnings.push(format!(
                "{}.{}: the source no longer sends this field; the column is kept and new rows get NULL",
                table.name, col.name
            ));
        }
    }
    Ok(())
}
