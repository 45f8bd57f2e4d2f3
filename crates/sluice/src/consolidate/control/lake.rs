//! What the lake destination persists (part of [`super`], the one module that spells
//! persisted words): the flow's mark in each Delta version, the names of its data files,
//! the bucket of an Id, and the work database's mirror table, which says which Delta
//! version of each target its tables hold.
//!
//! The mark ([`LakeMark`]) is the flow's `_sluice.flows` row as JSON, the bucket count and
//! the work table's columns with their DuckDB types: from it alone, with the version's
//! data files, a lost or stale work database is rebuilt ([`flow_restore`]).

use serde::{Deserialize, Serialize};

use super::{FLOWS, Layout, create_table, table, target_key};
use crate::consolidate::spec::RUN_ID;
use crate::model::SluiceType::{Int, Long, Text};
use crate::sql::{Dialect, TableRef};

/// The domain of a lake table's Delta metadata that holds its flow's mark, committed in
/// the same Delta version as the data.
pub const LAKE_MARK_DOMAIN: &str = "sluice";

/// The Delta application id (`txn` action) of the flow writing `target` in a lake: its
/// transaction number counts the flow's commits there.
pub fn lake_app_id(target: &TableRef) -> String {
    format!("sluice:{}.{}", target.schema, target.name)
}

/// The mirror table of a lake's work database.
const MIRROR: Layout = Layout {
    name: "lake_mirror",
    columns: &[("target_schema", Text), ("target_table", Text), ("version", Long), ("buckets", Int)],
    key: &["target_schema", "target_table"],
};

const D: Dialect = Dialect::DuckDb;

/// Creates the mirror table where it is missing.
pub fn mirror_ddl() -> String {
    create_table(D, &MIRROR, true)
}

/// One row or none: the Delta version the work table of `target` holds, and its bucket count.
pub fn mirror_read(target: &TableRef) -> String {
    format!("SELECT version, buckets FROM {} WHERE {}", D.table(&table(MIRROR.name)), target_key(D, target, None))
}

/// Records that the work table of `target` holds `version`, bucketed in `buckets`.
pub fn mirror_write(target: &TableRef, version: u64, buckets: u32) -> Vec<String> {
    vec![
        mirror_forget(target),
        format!(
            "INSERT INTO {} VALUES ({}, {}, {version}, {buckets})",
            D.table(&table(MIRROR.name)),
            D.quote_literal(&target.schema),
            D.quote_literal(&target.name)
        ),
    ]
}

/// Forgets what the work table of `target` mirrors.
pub fn mirror_forget(target: &TableRef) -> String {
    format!("DELETE FROM {} WHERE {}", D.table(&table(MIRROR.name)), target_key(D, target, None))
}

/// One row or none: the `_sluice.flows` row of `target` as JSON text.
pub fn flow_json(target: &TableRef) -> String {
    format!(
        "SELECT CAST(to_json(f) AS VARCHAR) FROM {} AS f WHERE {}",
        D.table(&table(FLOWS.name)),
        target_key(D, target, Some("f"))
    )
}

/// Replaces the `_sluice.flows` row of `target` by the one a mark carries (`json`, as
/// [`flow_json`] read it); only deletes it when the mark has none.
pub fn flow_restore(target: &TableRef, json: Option<&str>) -> Vec<String> {
    let flows = D.table(&table(FLOWS.name));
    let mut out = vec![format!("DELETE FROM {flows} WHERE {}", target_key(D, target, None))];
    if let Some(json) = json {
        let structure: serde_json::Map<String, serde_json::Value> =
            FLOWS.columns.iter().map(|(name, ty)| ((*name).to_owned(), D.sql_type(*ty).into())).collect();
        let structure = serde_json::Value::Object(structure).to_string();
        out.push(format!(
            "INSERT INTO {flows} BY NAME SELECT unnest(json_transform(j, {})) FROM (SELECT CAST({} AS JSON) AS j)",
            D.quote_literal(&structure),
            D.quote_literal(json)
        ));
    }
    out
}

/// The flow's mark in a Delta version ([`LAKE_MARK_DOMAIN`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LakeMark {
    /// The `_sluice.flows` row at this version, as [`flow_json`] reads it (`None`: the
    /// flow was forgotten).
    pub flow: Option<String>,
    /// Files are bucketed by [`bucket_sql`] into this many buckets.
    pub buckets: u32,
    /// The work table's columns and their DuckDB types, in order (the data files hold
    /// them so, a time of day as text).
    pub columns: Vec<(String, String)>,
    /// The run that committed the version (absent in marks written before it was recorded).
    #[serde(default)]
    pub run_id: Option<String>,
    /// The rows the version's transaction read, uploaded to the table's raw layer and
    /// committed there right after this version; a crash in between leaves them here, and
    /// the next opening commits them ([`RawPending`]).
    #[serde(default)]
    pub raw: Option<RawPending>,
}

/// Files uploaded to a table's raw layer for one Delta version of the table, and the
/// columns they hold (name, DuckDB type), for the raw table's commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawPending {
    /// The files, relative to the raw table's root.
    pub files: Vec<RawFile>,
    /// Their columns in order.
    pub columns: Vec<(String, String)>,
}

/// One data file of the raw layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawFile {
    /// Relative to the raw table's root.
    pub path: String,
    /// Bytes.
    pub size: i64,
    /// Rows.
    pub rows: i64,
}

/// The mark of a raw table's version: which version of the table it holds the read rows of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawMark {
    /// The table's Delta version whose transaction read the rows this version adds.
    pub version: u64,
    /// The run that read them.
    pub run_id: Option<String>,
}

impl RawMark {
    /// The mark as committed.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The directory beside a schema's tables that holds their raw layer:
/// `<schema>/raw/<table>/`. No flow's table may take the name.
pub const RAW_DIR: &str = "raw";

/// The raw layer's column holding the table's Delta version the rows were applied in
/// (beside [`RUN_ID`], the run, and [`crate::consolidate::STAGE_SEQ`], the order they were
/// read in).
pub const RAW_VERSION: &str = "_sluice_version";

/// The columns the raw layer adds to the staged ones, as a select list: the run and the
/// table's version.
pub fn raw_extras(run_id: &str, version: u64) -> String {
    format!(
        "{} AS {}, CAST({version} AS BIGINT) AS {}",
        D.quote_literal(run_id),
        D.quote_ident(RUN_ID),
        D.quote_ident(RAW_VERSION)
    )
}

/// The name of the raw layer's file of the rows read for Delta version `version` of its
/// table (`token` tells apart two writers preparing the same version).
pub fn raw_file_name(version: u64, token: &str) -> String {
    format!("r-v{version}-{token}.parquet")
}

/// The name of the `n`th file a compaction of the raw layer writes for its version
/// `version` (`token` as in [`raw_file_name`]).
pub fn raw_compacted_name(version: u64, token: &str, n: usize) -> String {
    format!("r-c{version}-{token}-{n}.parquet")
}

impl LakeMark {
    /// The mark as committed.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A mark read back; `None` when it is not one this sluice wrote.
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

/// The bucket (0 to `buckets - 1`) of the Id in column `id`, as a DuckDB expression: the
/// MD5 of the Id as a number modulo `buckets`, so it never changes with the engine's
/// version. For a power of two (every count [`buckets_for`] gives) the same value comes
/// from the low bits: DuckDB's `%` on its 128-bit integers took 2.3 s per million Ids
/// (a third of an export's time), `&` 0.09 s.
pub fn bucket_sql(id: &str, buckets: u32) -> String {
    let number = format!("md5_number(CAST({} AS VARCHAR))", D.quote_ident(id));
    if buckets.is_power_of_two() {
        format!("CAST({number} & {} AS INTEGER)", buckets - 1)
    } else {
        format!("CAST({number} % {buckets} AS INTEGER)")
    }
}

/// The name of a data file of bucket `bucket`, written for Delta version `version`
/// (`token` tells apart two writers preparing the same version; `n` the files of one bucket).
pub fn file_name(bucket: u32, version: u64, token: &str, n: usize) -> String {
    format!("b{bucket:04}-v{version}-{token}-{n}.parquet")
}

/// The bucket a data file's name says it holds; `None` for a name sluice did not write.
pub fn file_bucket(path: &str) -> Option<u32> {
    let name = path.rsplit('/').next()?;
    let rest = name.strip_prefix('b')?;
    let (bucket, tail) = rest.split_once('-')?;
    (tail.ends_with(".parquet") && bucket.len() == 4).then(|| bucket.parse().ok()).flatten()
}

/// How many buckets a table of `rows` rows is written in: files of at most about
/// [`ROWS_PER_BUCKET`] rows at first, a power of two up to 256. Fixed once the table exists.
pub fn buckets_for(rows: u64) -> u32 {
    let wanted = rows.div_ceil(ROWS_PER_BUCKET).max(1);
    wanted.next_power_of_two().min(256) as u32
}

/// The rows a bucket's file holds at most when a table is first written.
pub const ROWS_PER_BUCKET: u64 = 250_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_carry_their_bucket() {
        let name = file_name(7, 12, "a1b2", 0);
        assert_eq!(name, "b0007-v12-a1b2-0.parquet");
        assert_eq!(file_bucket(&name), Some(7));
        assert_eq!(file_bucket(&format!("sub/{name}")), Some(7));
        for other in ["part-0001.parquet", "b7-v1-x-0.parquet", "b0007-v1-x-0.json", "bxxxx-v1.parquet"] {
            assert_eq!(file_bucket(other), None, "{other}");
        }
    }

    #[test]
    fn bucket_counts() {
        for (rows, buckets) in [(0, 1), (1, 1), (250_000, 1), (250_001, 2), (1_000_000, 4), (10_000_000, 64)] {
            assert_eq!(buckets_for(rows), buckets, "{rows}");
        }
        assert_eq!(buckets_for(u64::MAX / 2), 256);
    }

    /// A lake's files are bucketed for good: the fast expression for a power of two must
    /// put every Id where the modulo put it when the table was first written.
    #[test]
    fn buckets_by_low_bits_equal_buckets_by_modulo() {
        let conn = duckdb::Connection::open_in_memory().unwrap();
        for buckets in [1, 2, 4, 64, 256] {
            let fast = bucket_sql("id", buckets);
            assert!(fast.contains('&'), "{fast}");
            let sql = format!(
                "SELECT count(*) FILTER (WHERE {fast} <> CAST(md5_number(id) % {buckets} AS INTEGER)), \
                 count(DISTINCT {fast}) FROM (SELECT '001' || i AS id FROM range(20000) AS r(i))"
            );
            let (differ, distinct): (i64, i64) = conn.query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
            assert_eq!((differ, distinct), (0, i64::from(buckets)), "{buckets} buckets");
        }
        assert!(bucket_sql("id", 3).contains("% 3"));
    }

    #[test]
    fn marks_read_back() {
        let mark = LakeMark {
            flow: Some("{\"window_end\":\"2026-12-07 10:00:00+00\"}".into()),
            buckets: 4,
            columns: vec![("id".into(), "VARCHAR".into())],
            run_id: Some("20261207T120000Z-ab12".into()),
            raw: Some(RawPending {
                files: vec![RawFile { path: raw_file_name(3, "a1b2"), size: 10, rows: 2 }],
                columns: vec![("id".into(), "VARCHAR".into())],
            }),
        };
        assert_eq!(LakeMark::parse(&mark.to_json()), Some(mark));
        assert_eq!(LakeMark::parse("{\"window_end\": 1}"), None);
    }
}
