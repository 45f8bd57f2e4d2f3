//! What a DuckDB write transaction needs beyond `memory_limit`, which DuckDB cannot spill.
//!
//! `memory_limit` bounds DuckDB's buffer pool, which evicts and spills. Two things a
//! consolidation holds are neither evicted nor spilled until its transaction ends
//! (measured on DuckDB 1.5.6, a 50-column table of 10 M rows, 2 threads):
//! - An uncommitted `DELETE` keeps, for every 2,048-row vector it deletes from, the
//!   deleting transaction's id per row and the structures around them: about 22 KiB per
//!   vector touched. Changes spread over a table touch every vector once they outnumber
//!   them: 10,000 Ids spread over 10 M rows held ~103 MiB, and the merge failed at 112 MiB
//!   (at `COMMIT`), passed at 128 MiB.
//! - Beside those deletes, the rows it inserts need about 1 KiB per row of that table
//!   (50,000 spread changes needed 129–160 MiB, 200,000 needed 193–256 MiB), bounded
//!   because full row groups go to disk. Alone (a first load) they fit the limit.
//!
//! A write therefore raises the limit by [`allowance_mib`] for its transaction alone, and
//! sets it back after: the buffer pool stays at what the user chose, and a merge's cost
//! follows its changes (and, up to one vector each, the table's size), not a limit tuned
//! for the largest table. (DuckDB 2.0.1 passed 10,000 spread changes at 112 MiB, not 50,000.)

use duckdb::Connection;

use super::error::sql_error;
use crate::consolidate::{Dialect, TableRef};
use crate::{Error, Result};

/// Rows per DuckDB vector, the unit of its version information.
const VECTOR_ROWS: u64 = 2_048;
/// The deleting transaction's id for each row of a vector (8 bytes × 2,048) and the
/// structures around it: 103 MiB measured for 4,883 vectors (21.6 KiB each), rounded up.
const DELETE_BYTES_PER_VECTOR: u64 = 24 * 1_024;
/// Transaction-local storage per inserted row, rounded up from the measurements above.
const INSERT_BYTES_PER_ROW: u64 = 1_024;
/// Inserted rows held in local storage at most: about one row group (122,880 rows) plus
/// the one being filled; the rest is on disk.
const INSERT_ROWS_HELD: u64 = 131_072;

/// The MiB a transaction that writes `changed` rows of a table of `table_rows` rows needs
/// beyond the buffer pool (see the module docs). `changed` counts rows that may be deleted
/// or inserted, duplicates included: an upper bound is safe.
pub fn allowance_mib(table_rows: u64, changed: u64) -> u64 {
    let vectors = table_rows.div_ceil(VECTOR_ROWS);
    // Only rows the table has can be deleted. A load into an empty table deletes nothing,
    // and its inserts alone stream to disk row group by row group within the limit (a first
    // load of 10 M Accounts passes at 112 MiB), as they do beside few deletes.
    let deletable = changed.min(table_rows);
    let bytes =
        DELETE_BYTES_PER_VECTOR * deletable.min(vectors) + INSERT_BYTES_PER_ROW * deletable.min(INSERT_ROWS_HELD);
    bytes.div_ceil(1 << 20)
}

/// The table's row count as DuckDB's catalog keeps it (no scan), 0 when it does not
/// exist: `?1` schema, `?2` table.
const TABLE_ROWS_SQL: &str =
    "SELECT COALESCE(max(estimated_size), 0) FROM duckdb_tables() WHERE schema_name = ?1 AND table_name = ?2";

/// [`allowance_mib`] for a write to `target` of the rows `listed` hold (the changed Ids,
/// the rows read), or of any row of it (`any_row`).
pub(super) fn write_allowance_mib(
    conn: &Connection,
    target: &TableRef,
    listed: &[TableRef],
    any_row: bool,
) -> Result<u64> {
    let table_rows = table_rows(conn, target)?;
    // Rows that may be deleted (the listed Ids, or any) or inserted (the rows read).
    let mut changed = if any_row { table_rows } else { 0 };
    for table in listed {
        changed = changed.max(count_rows(conn, table)?);
    }
    Ok(allowance_mib(table_rows, changed))
}

pub(super) fn set_limit(conn: &Connection, mib: u64) -> Result<()> {
    conn.execute_batch(&format!("SET memory_limit = '{mib}MiB'"))
        .map_err(|e| Error::internal(format!("DuckDB memory_limit: {e}")))
}

/// `table`'s rows as the catalog counts them; 0 when it does not exist.
fn table_rows(conn: &Connection, table: &TableRef) -> Result<u64> {
    let n: i64 = conn
        .query_row(TABLE_ROWS_SQL, [&table.schema, &table.name], |r| r.get(0))
        .map_err(|e| sql_error(e, TABLE_ROWS_SQL))?;
    Ok(n.max(0) as u64)
}

/// `SELECT count(*)` of a table or view (a staging table is a view over its Parquet file,
/// whose footer holds the count).
fn count_rows(conn: &Connection, table: &TableRef) -> Result<u64> {
    let sql = format!("SELECT count(*) FROM {}", Dialect::DuckDb.table(table));
    let n: i64 = conn.query_row(&sql, [], |r| r.get(0)).map_err(|e| sql_error(e, &sql))?;
    Ok(n.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::allowance_mib;

    #[test]
    fn the_allowance_follows_the_changes_and_one_vector_each_at_most() {
        // (table rows, changed rows, MiB)
        let cases = [
            (0, 0, 0),
            // A first load: nothing to delete, nothing beyond the limit.
            (0, 10_000_000, 0),
            // A large load into a small table: its few deletes, and as many inserts.
            (1_000, 1_000_000, 1),
            // Few changes: one vector each.
            (1_000_000, 100, 3),
            (10_000_000, 1_000, 25),
            // Spread changes in 10 M rows: every vector (4,883 of them) once. Measured
            // without the allowance, these needed 113–128, 129–160 and 193–256 MiB.
            (10_000_000, 10_000, 125),
            (10_000_000, 50_000, 164),
            (10_000_000, 200_000, 243),
            // A full refresh of 10 M rows.
            (10_000_000, 10_000_000, 243),
            // 100 M rows: the deletes' bookkeeping dominates.
            (100_000_000, 1_000_000, 1_273),
        ];
        for (rows, changed, mib) in cases {
            assert_eq!(allowance_mib(rows, changed), mib, "{rows} rows, {changed} changed");
        }
    }
}
