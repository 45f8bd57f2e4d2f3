//! The warehouses the shared suites run against: a DuckDB file in a temporary directory or
//! a fresh database on the test PostgreSQL server, with its `[destination]` block and
//! queries through sluice's own [`Destination::query`] (opened afresh per read: DuckDB
//! read-only, PostgreSQL without the run lock), so a suite's checks are the same SQL for
//! every warehouse, in its dialect. Shared by both crates' tests (`#[path]`), next to
//! `postgres.rs`, which a test binary must include as `mod pg`.

// Each suite uses its own subset.
#![allow(dead_code)]

use std::path::PathBuf;

use sluice::consolidate::Dialect;
use sluice::destination::duckdb::DuckDb;
use sluice::destination::postgres::Postgres;
use sluice::destination::{Destination, Value};

use crate::pg::{TestDb, fresh_database};

/// Runs each named test once per [`Kind`], as `duckdb::<name>` and `postgres::<name>`: each
/// name is an `async fn(Kind)` in the calling file, which must have `Kind` in scope.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod duckdb {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::Kind::DuckDb).await
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::Kind::Postgres).await
            })*
        }
    };
}
pub(crate) use suite;

/// A kind of warehouse the suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A DuckDB file in a temporary directory.
    DuckDb,
    /// A fresh database on the test PostgreSQL server.
    Postgres,
}

/// One empty warehouse for one test.
pub struct Warehouse {
    /// Which kind.
    pub kind: Kind,
    /// Its `[destination]` block.
    pub toml: String,
    /// The DuckDB file.
    pub duckdb: Option<PathBuf>,
    /// The PostgreSQL database.
    pub postgres: Option<TestDb>,
    _dir: tempfile::TempDir,
}

impl Warehouse {
    /// A new, empty warehouse of `kind`.
    pub async fn new(kind: Kind) -> Self {
        let dir = tempfile::tempdir().unwrap();
        match kind {
            Kind::DuckDb => {
                let path = dir.path().join("w.duckdb");
                let toml = format!("[destination]\ntype = \"duckdb\"\npath = \"{}\"\n", path.display());
                Self { kind, toml, duckdb: Some(path), postgres: None, _dir: dir }
            }
            Kind::Postgres => {
                let db = fresh_database().await;
                let toml = format!("[destination]\ntype = \"postgres\"\nurl = \"{}\"\n", db.url);
                Self { kind, toml, duckdb: None, postgres: Some(db), _dir: dir }
            }
        }
    }

    /// Its SQL dialect.
    pub fn dialect(&self) -> Dialect {
        match self.kind {
            Kind::DuckDb => Dialect::DuckDb,
            Kind::Postgres => Dialect::Postgres,
        }
    }

    /// Empties it, as a new warehouse would be: the DuckDB file is removed, PostgreSQL's
    /// schemas dropped.
    pub async fn reset(&self) {
        if let Some(path) = &self.duckdb {
            let _ = std::fs::remove_file(path);
            let mut wal = path.clone().into_os_string();
            wal.push(".wal");
            let _ = std::fs::remove_file(wal);
        }
        if let Some(db) = &self.postgres {
            let dest = Postgres::connect_unlocked(&db.pg()).await.unwrap();
            let drop =
                ["salesforce", "salesforce_staging", "_sluice"].map(|s| format!("DROP SCHEMA IF EXISTS {s} CASCADE"));
            dest.execute(drop.to_vec()).await.unwrap();
        }
    }

    /// Executes statements as a user of the warehouse would, outside sluice (each committed
    /// on its own): DuckDB opened for writing, PostgreSQL without the run lock.
    pub async fn execute(&self, statements: &[&str]) {
        let statements: Vec<String> = statements.iter().map(|s| (*s).to_owned()).collect();
        let done = match (&self.duckdb, &self.postgres) {
            (Some(path), _) => DuckDb::open_with(path, 256).unwrap().execute(statements.clone()).await,
            (_, Some(db)) => Postgres::connect_unlocked(&db.pg()).await.unwrap().execute(statements.clone()).await,
            _ => unreachable!("a warehouse is one or the other"),
        };
        done.unwrap_or_else(|e| panic!("{statements:?}: {e}"));
    }

    /// Rows of a query, every value as text (`None` for NULL).
    pub async fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let rows = match (&self.duckdb, &self.postgres) {
            (Some(path), _) => DuckDb::open_read_only(path).unwrap().query(sql.into()).await,
            (_, Some(db)) => Postgres::connect_unlocked(&db.pg()).await.unwrap().query(sql.into()).await,
            _ => unreachable!("a warehouse is one or the other"),
        };
        let text = |v: Value| match v {
            Value::Null => None,
            Value::Int(i) => Some(i.to_string()),
            Value::Text(t) => Some(t),
        };
        rows.unwrap_or_else(|e| panic!("{sql}: {e}")).into_iter().map(|r| r.into_iter().map(text).collect()).collect()
    }

    /// The one integer a query returns.
    pub async fn query_i64(&self, sql: &str) -> i64 {
        let rows = self.query(sql).await;
        rows[0][0].as_deref().unwrap_or_else(|| panic!("{sql}: NULL")).parse().unwrap()
    }
}

/// A boolean expression as `'true'`, `'false'` or NULL, the same text in every dialect.
pub fn bool_text(expr: &str) -> String {
    format!("CASE WHEN {expr} IS NULL THEN NULL WHEN {expr} THEN 'true' ELSE 'false' END")
}
