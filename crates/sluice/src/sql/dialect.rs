//! The SQL dialects sluice generates for, and what differs between them: quoting,
//! literals, type names, identifier limits, and what each server can do ([`Caps`], one
//! table, [`Dialect::caps`]). Pure; generators and the pipeline ask a capability, never
//! which dialect it is.

use crate::model::{SluiceType, Timestamp};

/// The SQL dialects consolidation is generated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// DuckDB 1.5 (has `MERGE INTO`, since 1.4).
    DuckDb,
    /// PostgreSQL 15 or newer (has `MERGE`).
    Postgres,
    /// Amazon Redshift (no `ON CONFLICT`; a restricted `MERGE`).
    Redshift,
}

/// How the rows of the changes table reach the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// One `MERGE` (PostgreSQL 15+).
    Merge,
    /// `DELETE ... USING` then `INSERT` (DuckDB: its MERGE was slower; Redshift: its MERGE is
    /// restricted).
    DeleteInsert,
}

/// How a first load whose staging holds each Id once is written into the new target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstLoadWrite {
    /// Through the changes table, like any other load.
    Merge,
    /// Staging copied into the new target.
    Copy,
    /// Staging keyed, then made the target.
    Promote,
}

/// The lock that keeps a second run off a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunLock {
    /// The database file's own write lock: one process per file.
    File,
    /// A session advisory lock per schema (and one on the control schema while it is set up).
    Advisory,
    /// A lease row in `_sluice.locks`, refreshed while the run lives.
    Lease,
}

/// What a server can do, as the SQL generators and the pipeline need to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// How the changes reach the target.
    pub upsert: Upsert,
    /// How a direct first load is written.
    pub first_load: FirstLoadWrite,
    /// Whether the target table gets a primary key on the Id. DuckDB enforces a key with an
    /// ART index it must hold whole in memory to insert (hundreds of MB at 10 M rows); the
    /// changes table already guarantees one row per Id.
    pub keyed_target: bool,
    /// Whether tables take secondary indexes (`CREATE INDEX`): an append table gets one on
    /// its version key, so a run's duplicate check probes it instead of scanning the table.
    /// Redshift has none; DuckDB skips row groups by their min/max on the cursor instead.
    pub indexes: bool,
    /// Whether a column's type can be widened inside the consolidation's transaction.
    pub alter_type_in_transaction: bool,
    /// The run lock.
    pub run_lock: RunLock,
    /// Whether stored procedures exist (`consolidation = "procedure"`).
    pub procedures: bool,
    /// Whether temp tables need an explicit `ANALYZE` (autovacuum never analyses them).
    pub analyze_temp_tables: bool,
    /// Whether the consolidation raises `work_mem` for its transaction.
    pub work_mem: bool,
    /// Staged rows above which the upsert and the history insert run in stage-order
    /// slices, bounding what one statement holds in memory; `None`: one statement.
    pub upsert_slice_rows: Option<u64>,
    /// Whether a backslash in a string literal is an escape character (Redshift), so it
    /// must be doubled; DuckDB and PostgreSQL (`standard_conforming_strings`, the default)
    /// keep it as it is.
    pub backslash_escapes: bool,
}

/// Staged rows per `INSERT` and per `DELETE` on DuckDB ([`Caps::upsert_slice_rows`]). Its hash join of the changes
/// table with staging does not spill enough: a first load of 2 M Accounts ran out of
/// memory at a 160 MB limit (1 M passed at 128 MB, not at 100 MB) while the same rows
/// inserted in slices of stage order pass at 128 MB, about as fast (and at 96 MB since
/// staging's row groups hold 32 Ki rows, see `destination/parquet.rs`). Parquet's
/// row-group statistics on the stage order let each slice read only its part of staging.
/// The `DELETE ... USING` of a full refresh of 10 M Accounts ran out of memory at 112 MB
/// whole and passes in slices (5.5 s in all, each slice scanning the target's Ids once).
pub const DUCKDB_SLICE_ROWS: u64 = 1 << 19;

impl Dialect {
    /// What this server can do (the one table of differences beyond spelling).
    pub fn caps(self) -> Caps {
        match self {
            Dialect::DuckDb => Caps {
                upsert: Upsert::DeleteInsert,
                first_load: FirstLoadWrite::Copy,
                indexes: false,
                keyed_target: false,
                alter_type_in_transaction: true,
                run_lock: RunLock::File,
                procedures: false,
                analyze_temp_tables: false,
                work_mem: false,
                upsert_slice_rows: Some(DUCKDB_SLICE_ROWS),
                backslash_escapes: false,
            },
            Dialect::Postgres => Caps {
                upsert: Upsert::Merge,
                first_load: FirstLoadWrite::Promote,
                indexes: true,
                keyed_target: true,
                alter_type_in_transaction: true,
                run_lock: RunLock::Advisory,
                procedures: true,
                analyze_temp_tables: true,
                work_mem: true,
                upsert_slice_rows: None,
                backslash_escapes: false,
            },
            Dialect::Redshift => Caps {
                upsert: Upsert::DeleteInsert,
                first_load: FirstLoadWrite::Merge,
                indexes: false,
                // Redshift's key only informs the planner.
                keyed_target: true,
                alter_type_in_transaction: false,
                run_lock: RunLock::Lease,
                procedures: true,
                analyze_temp_tables: false,
                work_mem: false,
                upsert_slice_rows: None,
                backslash_escapes: true,
            },
        }
    }

    /// All dialects, for tests and golden files.
    pub const ALL: [Dialect; 3] = [Dialect::DuckDb, Dialect::Postgres, Dialect::Redshift];

    /// Lower-case name, as used for golden-file directories.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::DuckDb => "duckdb",
            Dialect::Postgres => "postgres",
            Dialect::Redshift => "redshift",
        }
    }

    /// An identifier, always double-quoted with embedded quotes doubled, so keywords
    /// (`select`, `order`), mixed case (`naming = "original"`) and quotes survive. All three
    /// dialects follow the SQL standard here.
    pub fn quote_ident(self, name: &str) -> String {
        format!("\"{}\"", name.replace('"', "\"\""))
    }

    /// A string literal. Single quotes are doubled everywhere; backslashes where they
    /// escape ([`Caps::backslash_escapes`]).
    pub fn quote_literal(self, value: &str) -> String {
        let mut s = value.replace('\'', "''");
        if self.caps().backslash_escapes {
            s = s.replace('\\', "\\\\");
        }
        format!("'{s}'")
    }

    /// A `timestamp with time zone` literal in UTC. `CAST` rather than a typed literal
    /// because all three dialects accept it the same way.
    pub fn timestamp_literal(self, ts: Timestamp) -> String {
        format!("CAST('{}' AS {})", ts.format("%Y-%m-%d %H:%M:%S%.6f+00"), self.sql_type(SluiceType::Timestamp))
    }

    /// `DROP TABLE IF EXISTS` for a table: staging, Id snapshots, leftovers of a crashed run.
    pub fn drop_table(self, table: &TableRef) -> String {
        format!("DROP TABLE IF EXISTS {}", self.table(table))
    }

    /// The server's name, for messages.
    pub fn server(self) -> &'static str {
        match self {
            Dialect::DuckDb => "DuckDB",
            Dialect::Postgres => "PostgreSQL",
            Dialect::Redshift => "Redshift",
        }
    }

    /// The longest identifier the server keeps, in bytes: PostgreSQL silently cuts longer
    /// ones, Redshift refuses them; DuckDB has no limit that matters here.
    pub fn max_identifier_bytes(self) -> usize {
        match self {
            Dialect::Postgres => 63,
            Dialect::Redshift => 127,
            Dialect::DuckDb => usize::MAX,
        }
    }

    /// The table kind for data a crash may lose (staging, Id snapshots), with its trailing
    /// space: PostgreSQL's `UNLOGGED` skips the write-ahead log, which halves a load's
    /// writes; a crash empties such a table, and the next load discards it anyway.
    pub fn transient(self) -> &'static str {
        match self {
            Dialect::Postgres => "UNLOGGED ",
            Dialect::DuckDb | Dialect::Redshift => "",
        }
    }

    /// A typed NULL: `CAST(NULL AS <type>)`, where a bare NULL would leave the type open.
    pub fn null_of(self, ty: SluiceType) -> String {
        format!("CAST(NULL AS {})", self.sql_type(ty))
    }

    /// [`Dialect::timestamp_literal`], or a typed NULL for `None`.
    pub fn timestamp_or_null(self, ts: Option<Timestamp>) -> String {
        ts.map_or_else(|| self.null_of(SluiceType::Timestamp), |t| self.timestamp_literal(t))
    }

    /// `expr` (a `timestamp with time zone`) as milliseconds since the Unix epoch, a `BIGINT`:
    /// how control-table instants are read back, the same in every dialect's result.
    pub fn epoch_ms(self, expr: &str) -> String {
        match self {
            // DuckDB sessions are UTC (`destination::duckdb`): the TIMESTAMPTZ → TIMESTAMP cast is the UTC instant.
            Dialect::DuckDb => format!("epoch_ms(CAST({expr} AS TIMESTAMP))"),
            Dialect::Postgres | Dialect::Redshift => format!("CAST(EXTRACT(EPOCH FROM {expr}) * 1000 AS BIGINT)"),
        }
    }

    /// `"schema"."table"`.
    pub fn table(self, table: &TableRef) -> String {
        format!("{}.{}", self.quote_ident(&table.schema), self.quote_ident(&table.name))
    }

    /// The destination column type of a [`SluiceType`] (DESIGN "Destinations").
    ///
    /// Redshift measures VARCHAR in bytes, not characters: text gets the maximum, 65535
    /// bytes (Salesforce long text areas beyond that need SUPER, not done yet); an Id is
    /// ASCII, so 18 bytes hold it.
    pub fn sql_type(self, ty: SluiceType) -> String {
        use Dialect::*;
        match (self, ty) {
            (_, SluiceType::Id) => "VARCHAR(18)".into(),
            (DuckDb, SluiceType::Text) => "VARCHAR".into(),
            (Postgres, SluiceType::Text) => "TEXT".into(),
            (Redshift, SluiceType::Text) => "VARCHAR(65535)".into(),
            (_, SluiceType::Boolean) => "BOOLEAN".into(),
            (_, SluiceType::Int) => "INTEGER".into(),
            (_, SluiceType::Long) => "BIGINT".into(),
            (_, SluiceType::Decimal { precision, scale }) => format!("DECIMAL({precision},{scale})"),
            (DuckDb, SluiceType::Double) => "DOUBLE".into(),
            (Postgres | Redshift, SluiceType::Double) => "DOUBLE PRECISION".into(),
            (_, SluiceType::Date) => "DATE".into(),
            (_, SluiceType::Timestamp) => "TIMESTAMPTZ".into(),
            (_, SluiceType::Time) => "TIME".into(),
            (DuckDb, SluiceType::Binary) => "BLOB".into(),
            (Postgres, SluiceType::Binary) => "BYTEA".into(),
            // VARBYTE's maximum is 1,024,000 bytes.
            (Redshift, SluiceType::Binary) => "VARBYTE(1024000)".into(),
        }
    }
}

/// A schema-qualified table name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableRef {
    /// Schema (`salesforce`, `salesforce_staging`, `_sluice`).
    pub schema: String,
    /// Table (`account`).
    pub name: String,
}

impl TableRef {
    /// A table reference from its two parts.
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        Self { schema: schema.into(), name: name.into() }
    }
}
