//! The data part of consolidation: the changes table, the upsert, history, statistics.
//!
//! The changes table is built once, before anything is modified: the newest staged version
//! per Id (`ROW_NUMBER()`, ties on the cursor broken by the stage order), kept only when it
//! is not older than the target's row. De-duplicating first is required, not an
//! optimisation: PostgreSQL's and Redshift's MERGE fail when two source rows match one
//! target row. Every later statement reads this table, so they agree on which rows change
//! even after the target has been modified, and the history and statistics see the target
//! as it was before.
//!
//! The table is narrow: Id, cursor, stage order and the flags. De-duplication ranks only
//! those and the source's delete flag (ranking whole rows would sort every column of a
//! full load in memory), and the statements that write rows read the columns from
//! staging, joined by stage order, so a full load is copied once (staging to target)
//! rather than twice.
//!
//! The upsert, per dialect:
//! - PostgreSQL 15+: one `MERGE`. The regression guard already lives in the changes table,
//!   so the MERGE needs no conditions beyond the delete flag. `ON CONFLICT` would also
//!   work, but cannot delete (hard deletes).
//! - DuckDB and Redshift: `DELETE ... USING` the changes table, then `INSERT` the rows that
//!   are not hard-deleted. On DuckDB an in-place update of every column costs several
//!   times a delete plus an append (measured: 10,000 changed rows into 10 M, 4.9 s against
//!   0.6 s). Redshift has no `ON CONFLICT`, its MERGE allows only one unconditional `WHEN
//!   MATCHED` and one `WHEN NOT MATCHED` clause, so hard deletes and re-inserts cannot
//!   share a MERGE, and it executes an UPDATE as delete plus insert anyway. Either way a
//!   field no longer selected gets nulls in the rows this run rewrites, as DESIGN asks.
//!
//! A direct first load (see [`super::FirstLoad`]) has no changes table to build: a temp
//! view over staging stands in for it, DuckDB copies staging into the new target
//! ([`Rows::Staged`]), and PostgreSQL turns staging into the target (`promote_*`).
//!
//! Just over 600 lines: the changes table, the upsert and history are one sequence whose
//! statements must agree on names and order, so they are kept in one file.

use super::spec::{CURRENT, DELETED, MergeSpec, RUN_ID, STAGE_SEQ, SYNCED_AT, VALID_FROM, VALID_TO};
use crate::config::Deletes;
use crate::model::SluiceType;
use crate::sql::{Dialect, Upsert};

/// The changes table's flag: no target row existed.
pub const IS_NEW: &str = "_sluice_is_new";
/// The changes table's flag: the cursor moved past the target's (a new version, not a re-read).
pub const ADVANCED: &str = "_sluice_advanced";
/// The changes table's flag: the source says the record is deleted.
pub const IS_DELETED: &str = "_sluice_is_deleted";
/// The row number used to keep the newest staged version.
const ROW_NUMBER: &str = "_sluice_rn";
/// Aliases: `s` for staged/changed rows, `t` for the target.
const S: &str = "s";
const T: &str = "t";

/// Name of the changes temp table: one per table, so flows consolidating on one
/// connection never share it.
pub(super) fn changes_name(spec: &MergeSpec) -> String {
    format!("_sluice_changes_{}", spec.target.name)
}

/// `"alias"."column"`.
pub(super) fn col(dialect: Dialect, alias: &str, name: &str) -> String {
    format!("{}.{}", dialect.quote_ident(alias), dialect.quote_ident(name))
}

fn names(spec: &MergeSpec) -> Vec<&str> {
    spec.columns.iter().map(|c| c.name.as_str()).collect()
}

/// The staged columns the changes table keeps: the key, the cursor and the stage order.
pub(super) fn narrow(spec: &MergeSpec) -> Vec<&str> {
    std::iter::once(spec.id.as_str()).chain(spec.cursor.as_deref()).chain([STAGE_SEQ]).collect()
}

/// `column >= from AND column < to`: the stage-order slice `[from, to)`.
fn in_slice(column: &str, (from, to): (u64, u64)) -> String {
    format!("{column} >= {from} AND {column} < {to}")
}

/// Whether the row under `alias` is deleted at the source: its delete flag, NULL as false.
fn deleted_expr(dialect: Dialect, spec: &MergeSpec, alias: &str) -> String {
    match &spec.deleted_flag {
        Some(f) => format!("COALESCE({}, FALSE)", col(dialect, alias, f)),
        None => "FALSE".to_owned(),
    }
}

/// Drop any leftover, then create the changes temp table (see the module docs).
pub fn changes_table(dialect: Dialect, spec: &MergeSpec) -> Vec<String> {
    let d = dialect;
    let q = |n: &str| d.quote_ident(n);
    let changes = q(&changes_name(spec));
    let id_s = col(d, S, &spec.id);
    let id_t = col(d, T, &spec.id);

    // NULLS LAST explicitly: PostgreSQL and Redshift put NULLs first in DESC order, DuckDB
    // last; a version without a cursor value must never beat one with it.
    let order = match &spec.cursor {
        Some(c) => format!("{} DESC NULLS LAST, {} DESC NULLS LAST", q(c), q(STAGE_SEQ)),
        None => format!("{} DESC NULLS LAST", q(STAGE_SEQ)),
    };
    let (advanced, guard) = match &spec.cursor {
        // A full read is the truth: every staged row wins, and a changed stamp (either way)
        // is an update.
        Some(c) if spec.full => {
            let (cs, ct) = (col(d, S, c), col(d, T, c));
            (format!("({id_t} IS NULL OR {ct} IS NULL OR {cs} IS NULL OR {cs} <> {ct})"), "TRUE".to_owned())
        }
        Some(c) => {
            let (cs, ct) = (col(d, S, c), col(d, T, c));
            (
                format!("({id_t} IS NULL OR {ct} IS NULL OR {cs} > {ct})"),
                // `>=`: re-reading the same version (the look-back overlap) rewrites it
                // harmlessly; only an older version is refused.
                format!("({id_t} IS NULL OR {ct} IS NULL OR {cs} >= {ct})"),
            )
        }
        None => ("TRUE".to_owned(), "TRUE".to_owned()),
    };
    let is_deleted = deleted_expr(d, spec, S);
    // Narrow: the key, the cursor and the stage order are kept; the ranking also carries the
    // delete flag, which the flag column is computed from. The other columns are read from
    // staging by stage order when written (see `changed_rows`), so a full load is not copied
    // twice.
    let narrow = narrow(spec);
    let kept = narrow.iter().map(|c| col(d, S, c)).collect::<Vec<_>>().join(", ");
    // A flag that is also the key or the cursor must be selected once, or the name is ambiguous.
    let flag = spec.deleted_flag.as_deref().filter(|f| !narrow.contains(f));
    let ranked = narrow.iter().copied().chain(flag).map(&q).collect::<Vec<_>>().join(", ");
    let mut statements = vec![
        format!("DROP TABLE IF EXISTS {changes}"),
        // The ranked rows are filtered by rank directly, not joined back to staging: one
        // pass over staging (a full load's 1 M-row semi-join cost PostgreSQL 1.3 s).
        format!(
            "CREATE TEMP TABLE {changes} AS\nSELECT {kept},\n  {id_t} IS NULL AS {},\n  {advanced} AS {},\n  \
             {is_deleted} AS {}\nFROM (\n  SELECT {ranked}, ROW_NUMBER() OVER (PARTITION BY {} ORDER BY {order}) AS {}\n  \
             FROM {}\n) AS {}\nLEFT JOIN {} AS {} ON {id_t} = {id_s}\nWHERE {} = 1 AND {guard}",
            q(IS_NEW),
            q(ADVANCED),
            q(IS_DELETED),
            q(&spec.id),
            q(ROW_NUMBER),
            d.table(&spec.staging),
            q(S),
            d.table(&spec.target),
            q(T),
            col(d, S, ROW_NUMBER),
        ),
    ];
    if d.caps().analyze_temp_tables {
        // A temp table is never analysed by autovacuum; without statistics PostgreSQL
        // hashed the wide staging side of the join to it (measured: 1 M rows in 128
        // batches) instead of this narrow table.
        statements.push(format!("ANALYZE {changes}"));
    }
    statements
}

/// The changes of a direct first load (see [`super::FirstLoad`]): a temp view over staging
/// calling every staged row new and advanced, so the statistics, the history and the
/// control writes read it as they read the changes table, with nothing ranked or copied.
pub(super) fn direct_changes(dialect: Dialect, spec: &MergeSpec) -> String {
    format!(
        "CREATE TEMP VIEW {} AS\n{}",
        dialect.quote_ident(&changes_name(spec)),
        all_staged(dialect, spec, S, &narrow(spec))
    )
}

/// `SELECT` of `columns` of every staged row (under `alias`) with the changes table's flags:
/// every row new and advanced, deleted as the source says.
fn all_staged(dialect: Dialect, spec: &MergeSpec, alias: &str, columns: &[&str]) -> String {
    let d = dialect;
    let q = |n: &str| d.quote_ident(n);
    let select: Vec<String> = columns.iter().map(|c| col(d, alias, c)).collect();
    format!(
        "SELECT {},\n  TRUE AS {}, TRUE AS {}, {} AS {}\nFROM {} AS {}",
        select.join(", "),
        q(IS_NEW),
        q(ADVANCED),
        deleted_expr(d, spec, alias),
        q(IS_DELETED),
        d.table(&spec.staging),
        q(alias)
    )
}

/// What the upsert and the history insert read whole rows from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rows {
    /// The changes table joined to staging by stage order (every load but a direct first
    /// load); `staged` rows were loaded (see [`slices`]).
    Changes { staged: u64 },
    /// Staging itself, every row new: a direct first load (see [`super::FirstLoad`]).
    Staged,
}

impl Rows {
    /// The derived tables to read, one per statement: several for a sliced DuckDB load.
    fn sources(self, dialect: Dialect, spec: &MergeSpec) -> Vec<String> {
        match self {
            Rows::Changes { .. } => {
                self.slices(dialect).into_iter().map(|slice| changed_rows(dialect, spec, slice)).collect()
            }
            Rows::Staged => vec![staged_rows(dialect, spec)],
        }
    }

    /// The stage-order slices statements over these rows run in (see [`slices`]).
    fn slices(self, dialect: Dialect) -> Vec<Option<(u64, u64)>> {
        match self {
            Rows::Changes { staged } => slices(dialect, staged),
            Rows::Staged => vec![None],
        }
    }
}

/// The stage-order slices the upsert (with `DELETE ... USING`, its deletes and inserts) and
/// the history insert run in: `[None]` (everything at once) unless the dialect slices
/// upserts ([`crate::sql::Caps::upsert_slice_rows`]) and more rows than a slice were
/// `staged`; then each slice is `[from, to)` over `0..staged` (the loader numbers rows
/// from 0).
fn slices(dialect: Dialect, staged: u64) -> Vec<Option<(u64, u64)>> {
    let Some(size) = dialect.caps().upsert_slice_rows.filter(|size| staged > *size) else {
        return vec![None];
    };
    (0..staged).step_by(size as usize).map(|from| Some((from, (from + size).min(staged)))).collect()
}

/// The changed rows in full, as a derived table: every column from staging, joined to the
/// changes table by stage order, with the changes table's flags; only stage order
/// `[from, to)` when a slice is given (bounded on both sides, so the staging scan skips
/// the rest).
fn changed_rows(dialect: Dialect, spec: &MergeSpec, slice: Option<(u64, u64)>) -> String {
    let d = dialect;
    let q = |n: &str| d.quote_ident(n);
    let (c, st) = ("_sluice_c", "_sluice_st");
    let select: Vec<String> = names(spec)
        .iter()
        .map(|n| col(d, st, n))
        .chain([IS_NEW, ADVANCED, IS_DELETED].iter().map(|n| col(d, c, n)))
        .collect();
    let (st_seq, c_seq) = (col(d, st, STAGE_SEQ), col(d, c, STAGE_SEQ));
    let within = match slice {
        None => String::new(),
        Some(slice) => format!("\n  WHERE {} AND {}", in_slice(&c_seq, slice), in_slice(&st_seq, slice)),
    };
    format!(
        "(\n  SELECT {}\n  FROM {} AS {} JOIN {} AS {} ON {st_seq} = {c_seq}{within}\n)",
        select.join(", "),
        q(&changes_name(spec)),
        q(c),
        d.table(&spec.staging),
        q(st),
    )
}

/// Every staged row in full with the changes table's flags (all new, all advanced), as a
/// derived table: a direct first load's rows. Nothing is joined, so nothing needs slicing.
fn staged_rows(dialect: Dialect, spec: &MergeSpec) -> String {
    format!("(\n{}\n)", all_staged(dialect, spec, "_sluice_st", &names(spec)))
}

/// The changed rows in full, one derived table per statement (several for a sliced load of
/// `staged` rows): what an append writes ([`super::append`]).
pub(super) fn changed_sources(dialect: Dialect, spec: &MergeSpec, staged: u64) -> Vec<String> {
    Rows::Changes { staged }.sources(dialect, spec)
}

/// Metadata columns and the values this run writes to them, reading flags from alias `s`.
fn metadata_values(dialect: Dialect, spec: &MergeSpec) -> Vec<(&'static str, String)> {
    let mut meta =
        vec![(SYNCED_AT, dialect.timestamp_literal(spec.synced_at)), (RUN_ID, dialect.quote_literal(&spec.run_id))];
    if spec.deletes == Deletes::Soft {
        // Follows the source both ways: a delete sets it, an undelete clears it.
        meta.push((DELETED, col(dialect, S, IS_DELETED)));
    }
    meta
}

/// The upsert of the changes table into the target (see the module docs for the strategy).
/// Into a target the catalog said was absent (`new_target`; the transaction creates it with
/// a plain `CREATE TABLE`, which fails if the catalog was wrong), every row is new: a plain
/// INSERT in every dialect (PostgreSQL's MERGE of a 1 M-row first load cost 8.5 s where the
/// INSERT of the same rows cost 4.5 s), from `rows`.
pub(super) fn upsert(dialect: Dialect, spec: &MergeSpec, rows: Rows, new_target: bool) -> Vec<String> {
    let d = dialect;
    let q = |n: &str| d.quote_ident(n);
    let changes = q(&changes_name(spec));
    let target = d.table(&spec.target);
    let cols = names(spec);
    let meta = metadata_values(d, spec);
    let hard = spec.deletes == Deletes::Hard;
    let deleted = col(d, S, IS_DELETED);

    let insert_cols: Vec<String> = cols.iter().map(|c| q(c)).chain(meta.iter().map(|(n, _)| q(n))).collect();
    let insert_vals: Vec<String> =
        cols.iter().map(|c| col(d, S, c)).chain(meta.iter().map(|(_, v)| v.clone())).collect();

    let filter = if hard { format!("\nWHERE NOT {deleted}") } else { String::new() };
    let inserts = rows.sources(d, spec).into_iter().map(|source| {
        format!(
            "INSERT INTO {target} ({})\nSELECT {}\nFROM {source} AS {}{filter}",
            insert_cols.join(", "),
            insert_vals.join(", "),
            q(S)
        )
    });
    if new_target {
        return inserts.collect();
    }
    match dialect.caps().upsert {
        Upsert::Merge => {
            // The Id is the match key, so it is never SET.
            let set: Vec<String> = cols
                .iter()
                .filter(|c| **c != spec.id)
                .map(|c| format!("{} = {}", q(c), col(d, S, c)))
                .chain(meta.iter().map(|(n, v)| format!("{} = {v}", q(n))))
                .collect();
            let mut sql = format!(
                "MERGE INTO {target} AS {} USING {} AS {} ON {} = {}\n",
                q(T),
                changed_rows(d, spec, None),
                q(S),
                col(d, T, &spec.id),
                col(d, S, &spec.id)
            );
            if hard {
                sql.push_str(&format!("WHEN MATCHED AND {deleted} THEN DELETE\n"));
            }
            sql.push_str(&format!("WHEN MATCHED THEN UPDATE SET\n  {}\n", set.join(",\n  ")));
            let not_deleted = if hard { format!(" AND NOT {deleted}") } else { String::new() };
            sql.push_str(&format!(
                "WHEN NOT MATCHED{not_deleted} THEN INSERT ({})\n  VALUES ({})",
                insert_cols.join(", "),
                insert_vals.join(", ")
            ));
            vec![sql]
        }
        Upsert::DeleteInsert => {
            // Unaliased target in DELETE: Redshift's DELETE takes a table name, not an alias.
            let seq = format!("{changes}.{}", q(STAGE_SEQ));
            let deletes = rows.slices(d).into_iter().map(|slice| {
                let within = slice.map(|slice| format!(" AND {}", in_slice(&seq, slice))).unwrap_or_default();
                format!(
                    "DELETE FROM {target} USING {changes}\nWHERE {target}.{} = {changes}.{}{within}",
                    q(&spec.id),
                    q(&spec.id)
                )
            });
            deletes.chain(inserts).collect()
        }
    }
}

/// SCD type 2 on `<table>_history`, only for rows whose cursor advanced: close the current
/// version (valid until the new version's cursor), then insert the new version as current.
/// A hard delete closes the version and inserts none; a soft delete inserts a version
/// marked deleted. Plain `UPDATE ... FROM` and `INSERT ... SELECT` work in all three.
/// Reads the new versions from `rows`.
pub(super) fn history(dialect: Dialect, spec: &MergeSpec, rows: Rows) -> Vec<String> {
    let d = dialect;
    let q = |n: &str| d.quote_ident(n);
    let changes = q(&changes_name(spec));
    let history = d.table(&spec.history_table());
    let cols = names(spec);
    let valid_from = match &spec.cursor {
        Some(c) => col(d, S, c),
        None => d.timestamp_literal(spec.synced_at),
    };
    // Unaliased target: PostgreSQL forbids qualified SET columns, and Redshift's UPDATE takes
    // no alias on the target; the FROM table is named in full for the same reason.
    let valid_to = match &spec.cursor {
        Some(c) => format!("{changes}.{}", q(c)),
        None => d.timestamp_literal(spec.synced_at),
    };
    let close = format!(
        "UPDATE {history} SET {} = {valid_to}, {} = FALSE\nFROM {changes}\nWHERE {history}.{} = {changes}.{} AND \
         {history}.{} AND {changes}.{}",
        q(VALID_TO),
        q(CURRENT),
        q(&spec.id),
        q(&spec.id),
        q(CURRENT),
        q(ADVANCED),
    );
    let meta = metadata_values(d, spec);
    let insert_cols: Vec<String> = cols
        .iter()
        .map(|c| q(c))
        .chain(meta.iter().map(|(n, _)| q(n)))
        .chain([q(VALID_FROM), q(VALID_TO), q(CURRENT)])
        .collect();
    let insert_vals: Vec<String> = cols
        .iter()
        .map(|c| col(d, S, c))
        .chain(meta.iter().map(|(_, v)| v.clone()))
        .chain([valid_from, d.null_of(SluiceType::Timestamp), "TRUE".to_owned()])
        .collect();
    let hard =
        if spec.deletes == Deletes::Hard { format!(" AND NOT {}", col(d, S, IS_DELETED)) } else { String::new() };
    let inserts = rows.sources(d, spec).into_iter().map(|source| {
        format!(
            "INSERT INTO {history} ({})\nSELECT {}\nFROM {source} AS {}\nWHERE {}{hard}",
            insert_cols.join(", "),
            insert_vals.join(", "),
            q(S),
            col(d, S, ADVANCED),
        )
    });
    std::iter::once(close).chain(inserts).collect()
}

/// Seeds a history table created in this transaction beside an existing target: every
/// current target row becomes the current version, valid from its cursor, so turning
/// history on later does not leave unchanged records without any version.
pub(super) fn seed_history(dialect: Dialect, spec: &MergeSpec) -> String {
    let d = dialect;
    let q = |n: &str| d.quote_ident(n);
    let meta: Vec<&str> = spec.metadata().into_iter().map(|(n, _)| n).collect();
    let cols: Vec<&str> = names(spec).into_iter().chain(meta).collect();
    let insert_cols: Vec<String> = cols.iter().map(|c| q(c)).chain([q(VALID_FROM), q(VALID_TO), q(CURRENT)]).collect();
    let valid_from = match &spec.cursor {
        Some(c) => format!("COALESCE({}, {})", col(d, T, c), d.timestamp_literal(spec.synced_at)),
        None => d.timestamp_literal(spec.synced_at),
    };
    let values: Vec<String> = cols
        .iter()
        .map(|c| col(d, T, c))
        .chain([valid_from, d.null_of(SluiceType::Timestamp), "TRUE".to_owned()])
        .collect();
    format!(
        "INSERT INTO {} ({})\nSELECT {}\nFROM {} AS {}",
        d.table(&spec.history_table()),
        insert_cols.join(", "),
        values.join(", "),
        d.table(&spec.target),
        q(T)
    )
}

/// `COALESCE(SUM(CASE WHEN cond THEN 1 ELSE 0 END), 0)`: a count that Redshift (no
/// `FILTER`) also understands, and 0 rather than NULL on an empty table.
fn count_if(cond: &str) -> String {
    format!("COALESCE(SUM(CASE WHEN {cond} THEN 1 ELSE 0 END), 0)")
}

/// The merge counts as SELECT expressions over the changes table (alias `s`):
/// inserted = new rows not deleted; updated = existing rows whose cursor advanced, not
/// deleted; deleted = existing rows whose cursor advanced to a deleted version. Re-reads of
/// the same version count in none of them.
pub(super) fn count_exprs(dialect: Dialect) -> [String; 3] {
    let c = |n: &str| col(dialect, S, n);
    [
        count_if(&format!("{} AND NOT {}", c(IS_NEW), c(IS_DELETED))),
        count_if(&format!("NOT {} AND {} AND NOT {}", c(IS_NEW), c(ADVANCED), c(IS_DELETED))),
        count_if(&format!("NOT {} AND {} AND {}", c(IS_NEW), c(ADVANCED), c(IS_DELETED))),
    ]
}

/// A query returning one row `(inserted, updated, deleted)` for this consolidation; valid
/// between the creation of the changes table and its drop (the counts describe the target
/// as it was before the upsert, so it may run after it too).
pub fn stats_query(dialect: Dialect, spec: &MergeSpec) -> String {
    let [ins, upd, del] = count_exprs(dialect);
    let q = |n: &str| dialect.quote_ident(n);
    format!(
        "SELECT {ins} AS {}, {upd} AS {}, {del} AS {}\nFROM {} AS {}",
        q("inserted"),
        q("updated"),
        q("deleted"),
        q(&changes_name(spec)),
        q(S)
    )
}

/// The changes table (or a direct first load's view) is dropped at the end so a later
/// consolidation on the same connection starts clean (temp tables outlive the transaction
/// in all three).
pub(super) fn drop_changes(dialect: Dialect, spec: &MergeSpec, rows: Rows) -> String {
    let kind = if rows == Rows::Staged { "VIEW" } else { "TABLE" };
    format!("DROP {kind} IF EXISTS {}", dialect.quote_ident(&changes_name(spec)))
}

/// A direct first load on PostgreSQL turns staging into the target rather than copying it
/// (measured, 1 M Accounts: the copy and the key cost 2.6 s, the key alone 0.6 s). This is
/// the first step: the key, built on staging in one sort. An Id staged twice fails the
/// transaction here (unique violation) and the caller merges instead.
pub(super) fn promote_key(dialect: Dialect, spec: &MergeSpec) -> String {
    format!("ALTER TABLE {} ADD PRIMARY KEY ({})", dialect.table(&spec.staging), dialect.quote_ident(&spec.id))
}

/// Promotion, second step: the metadata columns. A constant is added as a default and the
/// default dropped again, which PostgreSQL records once in the catalog without rewriting a
/// row; the soft-delete flag is then set on the (few) deleted rows, or in hard-delete mode
/// those rows are removed.
pub(super) fn promote_rows(dialect: Dialect, spec: &MergeSpec) -> Vec<String> {
    let d = dialect;
    let q = |n: &str| d.quote_ident(n);
    let staging = d.table(&spec.staging);
    let mut statements = Vec::new();
    let mut constant = |name: &str, ty: SluiceType, value: String| {
        statements.push(format!("ALTER TABLE {staging} ADD COLUMN {} {} DEFAULT {value}", q(name), d.sql_type(ty)));
        statements.push(format!("ALTER TABLE {staging} ALTER COLUMN {} DROP DEFAULT", q(name)));
    };
    constant(SYNCED_AT, SluiceType::Timestamp, d.timestamp_literal(spec.synced_at));
    constant(RUN_ID, SluiceType::Text, d.quote_literal(&spec.run_id));
    if spec.deletes == Deletes::Soft {
        constant(DELETED, SluiceType::Boolean, "FALSE".to_owned());
    }
    if spec.deleted_flag.is_some() {
        let deleted = deleted_expr(d, spec, S);
        statements.push(match spec.deletes {
            Deletes::Soft => format!("UPDATE {staging} AS {} SET {} = TRUE\nWHERE {deleted}", q(S), q(DELETED)),
            Deletes::Hard => format!("DELETE FROM {staging} AS {}\nWHERE {deleted}", q(S)),
        });
    }
    statements
}

/// Promotion, last step (after the changes view, which reads the stage order, is dropped):
/// the stage order goes, the table moves into the target's schema, and it gets the grants
/// that schema's default privileges give a table created there (`ALTER DEFAULT PRIVILEGES
/// ... IN SCHEMA`; the role-wide ones applied when staging was created).
pub(super) fn promote_table(dialect: Dialect, spec: &MergeSpec) -> Vec<String> {
    let d = dialect;
    let staging = d.table(&spec.staging);
    let target = d.quote_literal(&d.table(&spec.target));
    let schema = d.quote_literal(&d.quote_ident(&spec.target.schema));
    let body = format!(
        "DECLARE g record;\nBEGIN\n  FOR g IN\n    SELECT a.privilege_type, a.grantee, a.is_grantable\n    \
         FROM pg_default_acl AS d, aclexplode(d.defaclacl) AS a\n    \
         WHERE d.defaclrole = (SELECT relowner FROM pg_class WHERE oid = {target}::regclass)\n      \
         AND d.defaclnamespace = {schema}::regnamespace AND d.defaclobjtype = 'r'\n  LOOP\n    \
         EXECUTE format('GRANT %s ON TABLE %s TO %s%s', g.privilege_type, {target},\n      \
         CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END,\n      \
         CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);\n  END LOOP;\nEND"
    );
    let tag = dollar_tag("grants", &body);
    vec![
        format!("ALTER TABLE {staging} DROP COLUMN {}", d.quote_ident(STAGE_SEQ)),
        format!("ALTER TABLE {staging} SET SCHEMA {}", d.quote_ident(&spec.target.schema)),
        format!("DO {tag}\n{body}\n{tag}"),
    ]
}

/// A dollar-quote tag (`$name$`, lengthened with `_` as needed) that does not occur in
/// `body`: the body holds the target's names, which config may set to anything, and the
/// first occurrence of the tag ends the quoted text.
fn dollar_tag(name: &str, body: &str) -> String {
    let mut tag = format!("${name}$");
    while body.contains(&tag) {
        tag.insert(tag.len() - 1, '_');
    }
    tag
}

/// Target rows the current run has not written: with [`super::FlowRun::remove_absent`], the
/// rows a full read did not return (every row it returned was rewritten with this run's id).
/// Live rows only in soft mode (a flagged row is gone already).
fn absent(dialect: Dialect, spec: &MergeSpec, table: &str) -> String {
    let d = dialect;
    let mut cond = format!("COALESCE({table}.{}, '') <> {}", d.quote_ident(RUN_ID), d.quote_literal(&spec.run_id));
    if spec.deletes == Deletes::Soft {
        cond.push_str(&format!(" AND NOT COALESCE({table}.{}, FALSE)", d.quote_ident(DELETED)));
    }
    cond
}

/// One row, `live` and `absent`: the target's live rows, and those a full read's last slice
/// would remove — not written by this run, and not among the Ids in staging (which its
/// transaction is about to write). Read before that transaction, under the same lock, for
/// the `max_delete_ratio` guard.
pub fn absent_counts(dialect: Dialect, spec: &MergeSpec) -> String {
    let d = dialect;
    let q = |n: &str| d.quote_ident(n);
    let target = d.table(&spec.target);
    let t = q(T);
    let live = match spec.deletes {
        Deletes::Soft => format!("NOT COALESCE({}, FALSE)", q(DELETED)),
        Deletes::Hard => "TRUE".to_owned(),
    };
    format!(
        "SELECT (SELECT COUNT(*) FROM {target} WHERE {live}) AS {}, (SELECT COUNT(*) FROM {target} AS {t} WHERE {} AND \
         NOT EXISTS (SELECT 1 FROM {} AS {} WHERE {} = {})) AS {}",
        q("live"),
        absent(d, spec, &t),
        d.table(&spec.staging),
        q(S),
        col(d, S, &spec.id),
        col(d, T, &spec.id),
        q("absent"),
    )
}

/// The end of a full read (see [`super::FlowRun::remove_absent`]): the rows it did not
/// return are gone at the source. Their current history versions close at the read's window
/// end; then they are removed (hard) or flagged deleted (soft). Runs after the upsert, so
/// every row the read returned carries this run's id.
pub(super) fn remove_absent(dialect: Dialect, spec: &MergeSpec, at: crate::model::Timestamp) -> Vec<String> {
    let target = dialect.table(&spec.target);
    remove_where(dialect, spec, &absent(dialect, spec, &target), at)
}

/// Removes (hard) or flags deleted (soft) the target rows matching `cond`, after closing
/// their current history versions at `closed_at`: what a full read's end and a
/// reconciliation both do with rows the source no longer has.
pub(super) fn remove_where(
    dialect: Dialect,
    spec: &MergeSpec,
    cond: &str,
    closed_at: crate::model::Timestamp,
) -> Vec<String> {
    let d = dialect;
    let q = |n: &str| d.quote_ident(n);
    let target = d.table(&spec.target);
    let mut out = Vec::new();
    if spec.history {
        let history = d.table(&spec.history_table());
        out.push(format!(
            "UPDATE {history} SET {} = {}, {} = FALSE\nWHERE {history}.{} AND {history}.{} IN (SELECT {target}.{} FROM \
             {target} WHERE {cond})",
            q(VALID_TO),
            d.timestamp_literal(closed_at),
            q(CURRENT),
            q(CURRENT),
            q(&spec.id),
            q(&spec.id),
        ));
    }
    out.push(match spec.deletes {
        Deletes::Hard => format!("DELETE FROM {target}\nWHERE {cond}"),
        Deletes::Soft => format!(
            "UPDATE {target} SET {} = TRUE, {} = {}, {} = {}\nWHERE {cond}",
            q(DELETED),
            q(SYNCED_AT),
            d.timestamp_literal(spec.synced_at),
            q(RUN_ID),
            d.quote_literal(&spec.run_id),
        ),
    });
    out
}
