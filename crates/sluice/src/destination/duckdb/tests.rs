//! The DuckDB destination against real database files: types round-trip through the
//! Parquet staging file and its view, transactions are all-or-nothing, the lock and the
//! path errors are clear.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array,
    StringArray, Time32MillisecondArray, TimestampMillisecondArray,
};
use arrow::record_batch::RecordBatch;

use super::*;
use crate::consolidate::{Dialect, FlowRun, TableRef};
use crate::destination::{Destination, Stage, Value};
use crate::model::{Column, Window};

fn batch() -> RecordBatch {
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(StringArray::from(vec![Some("001000000000001AAA"), None]))),
        ("flag", Arc::new(BooleanArray::from(vec![Some(true), None]))),
        ("n", Arc::new(Int32Array::from(vec![Some(-7), None]))),
        ("big", Arc::new(Int64Array::from(vec![Some(1 << 40), None]))),
        ("amount", Arc::new(Decimal128Array::from(vec![Some(123_456), None]).with_precision_and_scale(18, 2).unwrap())),
        ("ratio", Arc::new(Float64Array::from(vec![Some(0.25), None]))),
        ("day", Arc::new(Date32Array::from(vec![Some(20_000), None]))),
        ("ts", Arc::new(TimestampMillisecondArray::from(vec![Some(1_700_000_000_123), None]).with_timezone("UTC"))),
        ("tod", Arc::new(Time32MillisecondArray::from(vec![Some(3_723_004), None]))),
        ("raw", Arc::new(BinaryArray::from(vec![Some(&b"\x00\xff"[..]), None]))),
    ];
    RecordBatch::try_from_iter(cols).unwrap()
}

#[tokio::test]
async fn duckdb_staging_round_trips_every_type() {
    let dir = tempfile::tempdir().unwrap();
    let db = DuckDb::open(&dir.path().join("t.duckdb")).unwrap();
    db.execute(vec![
        "CREATE SCHEMA s".into(),
        "CREATE TABLE s.t (id VARCHAR(18), flag BOOLEAN, n INTEGER, big BIGINT, amount DECIMAL(18,2), ratio DOUBLE, \
         day DATE, ts TIMESTAMPTZ, tod TIME, raw BLOB)"
            .into(),
    ])
    .await
    .unwrap();
    let mut stage = db.stage(TableRef::new("s", "t")).await.unwrap();
    stage.write(batch()).await.unwrap();
    stage.write(batch()).await.unwrap();
    assert_eq!(stage.finish().await.unwrap(), 4);
    let d = Dialect::DuckDb;
    let rows = db
        .query(format!(
            "SELECT id, CAST(flag AS VARCHAR), n, big, CAST(amount AS VARCHAR), CAST(ratio AS VARCHAR), CAST(day AS \
             VARCHAR), {}, CAST(tod AS VARCHAR), hex(raw) FROM s.t ORDER BY id NULLS LAST",
            d.epoch_ms("ts")
        ))
        .await
        .unwrap();
    let t = |s: &str| Value::Text(s.into());
    assert_eq!(
        rows[0],
        vec![
            t("001000000000001AAA"),
            t("true"),
            Value::Int(-7),
            Value::Int(1 << 40),
            t("1234.56"),
            t("0.25"),
            t("2024-10-04"),
            Value::Int(1_700_000_000_123),
            t("01:02:03.004"),
            t("00FF"),
        ]
    );
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[1], rows[0]);
    assert!(rows[3].iter().all(|v| *v == Value::Null), "{:?}", rows[3]);
    let cols = db.columns(TableRef::new("s", "t")).await.unwrap().unwrap();
    let types: Vec<String> = cols.iter().map(|c| c.ty.to_string()).collect();
    assert_eq!(
        types,
        [
            "text",
            "boolean",
            "integer",
            "bigint",
            "decimal(18,2)",
            "double",
            "date",
            "timestamp with time zone",
            "time",
            "binary"
        ]
    );
    assert_eq!(db.columns(TableRef::new("s", "missing")).await.unwrap(), None);
    // The load is a file beside the database until the staging table is discarded.
    let staged = dir.path().join("t.duckdb.staging/s/t/part-00000.parquet");
    assert!(staged.is_file());
    db.discard(TableRef::new("s", "t")).await.unwrap();
    assert!(!staged.exists() && db.columns(TableRef::new("s", "t")).await.unwrap().is_none());
    db.discard(TableRef::new("s", "t")).await.unwrap();
}

#[tokio::test]
async fn duckdb_transaction_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = DuckDb::open(&dir.path().join("t.duckdb")).unwrap();
    db.execute(vec!["CREATE TABLE t (x INTEGER)".into(), "INSERT INTO t VALUES (1)".into()]).await.unwrap();
    let err = db
        .transaction(vec![
            "INSERT INTO t VALUES (2)".into(),
            "ALTER TABLE t ADD COLUMN y INTEGER".into(),
            "INSERT INTO nope VALUES (3)".into(),
        ])
        .await
        .unwrap_err();
    assert!(err.message.contains("nope"), "{}", err.message);
    let rows = db
        .query(
            "SELECT COUNT(*), (SELECT COUNT(*) FROM information_schema.columns WHERE table_name = 't') FROM t".into(),
        )
        .await
        .unwrap();
    assert_eq!(rows, vec![vec![Value::Int(1), Value::Int(1)]], "the insert and the ALTER were rolled back");
}

#[test]
fn duckdb_second_opener_in_another_process_is_told_who_holds_the_lock() {
    // DuckDB's lock is per process (a second open in this process would share the file), so
    // the holder is a child process: this test binary, re-run on the helper below.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.duckdb");
    let _held = DuckDb::open(&path).unwrap();
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--exact", "destination::duckdb::tests::duckdb_lock_helper", "--nocapture", "--include-ignored"])
        .env("SLUICE_LOCK_HELPER_PATH", &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("HELPER-ERROR destination.path:"), "{stdout}");
    assert!(stdout.contains("in use by another process"), "{stdout}");
}

/// Not a test on its own: the second process of the lock test.
#[test]
fn duckdb_lock_helper() {
    let Ok(path) = std::env::var("SLUICE_LOCK_HELPER_PATH") else { return };
    match DuckDb::open(std::path::Path::new(&path)) {
        Ok(_) => println!("HELPER-OPENED"),
        Err(e) => println!("HELPER-ERROR {}", e.message),
    }
}

#[test]
fn duckdb_missing_directory_and_read_only_file_are_user_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = DuckDb::open(&dir.path().join("no/such/dir/x.duckdb")).unwrap_err();
    assert_eq!(err.kind, crate::Kind::User);
    assert!(err.message.starts_with("destination.path: the directory"), "{}", err.message);

    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    let mut perms = std::fs::metadata(&ro).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
    std::fs::set_permissions(&ro, perms).unwrap();
    // Root ignores directory permissions; the check only means something for other users.
    if std::fs::write(ro.join("probe"), b"x").is_err() {
        let err = DuckDb::open(&ro.join("x.duckdb")).unwrap_err();
        assert_eq!(err.kind, crate::Kind::User, "{}", err.message);
        assert!(err.message.contains("destination.path"), "{}", err.message);
    }
}

#[test]
fn duckdb_type_names_parse() {
    assert_eq!(parse_type("DECIMAL(18,2)"), Some(SluiceType::Decimal { precision: 18, scale: 2 }));
    assert_eq!(parse_type("TIMESTAMP WITH TIME ZONE"), Some(SluiceType::Timestamp));
    assert_eq!(parse_type("VARCHAR"), Some(SluiceType::Text));
    assert_eq!(parse_type("HUGEINT"), None);
}

/// The flow-run record of a load of `object` that read `rows` rows, ending its window at `end`.
fn flow_run(object: &str, rows: u64, end: chrono::DateTime<chrono::Utc>) -> FlowRun {
    FlowRun {
        flow: object.into(),
        object: object.into(),
        window: Window { start: None, end },
        full_refresh: false,
        schema_fingerprint: "fp".into(),
        selection_fingerprint: "sel-1".into(),
        attempts: 1,
        rows_extracted: rows,
        api_calls: 0,
        bytes: 0,
        api_remaining: None,
        remove_absent: false,
        removed: 0,
    }
}

/// Column names that are SQL keywords, mixed case or contain quotes go through the whole
/// generated consolidation (create, merge, soft delete, schema change, history) on a real
/// DuckDB file.
#[tokio::test]
async fn duckdb_consolidation_quotes_keywords_and_quotes_in_names() {
    use crate::config::Deletes;
    use crate::consolidate::{Existing, FirstLoad, MergeSpec, consolidate, control_ddl, staging_ddl};
    use crate::model::{Cursor, TableSchema};

    let mut schema = TableSchema {
        object: "Order".into(),
        table: "order".into(),
        columns: vec![
            Column::plain("id", "Id", SluiceType::Id),
            Column::plain("select", "Select", SluiceType::Text),
            Column::plain("Mixed \"Quote\" Col", "Quote__c", SluiceType::Int),
            Column::plain("is_deleted", "IsDeleted", SluiceType::Boolean),
            Column::plain("system_modstamp", "SystemModstamp", SluiceType::Timestamp),
        ],
        cursor: Cursor::SystemModstamp,
        deleted_flag: Some("IsDeleted".into()),
    };
    let dir = tempfile::tempdir().unwrap();
    let db = DuckDb::open(&dir.path().join("q.duckdb")).unwrap();
    let d = Dialect::DuckDb;
    db.execute(control_ddl(d, chrono::DateTime::UNIX_EPOCH)).await.unwrap();
    let now = chrono::Utc::now();
    let run = || flow_run("Order", 2, now);
    let load = |schema: TableSchema, rows: Vec<(&'static str, &'static str, i32, bool, i64)>, run_id: &'static str| {
        let db = db.clone();
        async move {
            let spec = MergeSpec::new(&schema, "select", Deletes::Soft, true, run_id, now).unwrap();
            db.discard(spec.staging.clone()).await.unwrap();
            db.execute(staging_ddl(d, &spec, FirstLoad::Merge)).await.unwrap();
            let mut columns: Vec<(String, ArrayRef)> = vec![
                ("id".into(), Arc::new(StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())) as ArrayRef),
                ("select".into(), Arc::new(StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>()))),
                ("q".into(), Arc::new(Int32Array::from(rows.iter().map(|r| r.2).collect::<Vec<_>>()))),
                ("d".into(), Arc::new(BooleanArray::from(rows.iter().map(|r| r.3).collect::<Vec<_>>()))),
                (
                    "m".into(),
                    Arc::new(
                        TimestampMillisecondArray::from(rows.iter().map(|r| r.4).collect::<Vec<_>>())
                            .with_timezone("UTC"),
                    ),
                ),
            ];
            if schema.columns.len() == 6 {
                columns.push(("x".into(), Arc::new(StringArray::from(vec![Some("new"); rows.len()]))));
            }
            columns.push(("seq".into(), Arc::new(Int64Array::from_iter_values(0..rows.len() as i64))));
            let mut stage = db.stage(spec.staging.clone()).await.unwrap();
            stage.write(RecordBatch::try_from_iter(columns).unwrap()).await.unwrap();
            stage.finish().await.unwrap();
            let existing = Existing {
                target: db.columns(spec.target.clone()).await.unwrap(),
                history: db.columns(spec.history_table()).await.unwrap(),
            };
            let plan = consolidate(d, &spec, &existing, &run(), FirstLoad::Merge).unwrap();
            db.transaction(plan.statements).await.unwrap();
        }
    };
    // Two versions of one record in one load (the newer wins), and a deleted one.
    load(
        schema.clone(),
        vec![("a1", "old", 1, false, 1_000), ("a1", "new", 2, false, 2_000), ("b2", "gone", 3, true, 1_500)],
        "r1",
    )
    .await;
    // The source grows a field whose name is a keyword too.
    schema.columns.push(Column::plain("from", "From__c", SluiceType::Text));
    load(schema, vec![("a1", "newer", 4, false, 3_000), ("c3", "x", 5, false, 3_000)], "r2").await;
    let rows = db
        .query(
            "SELECT id, \"select\", \"Mixed \"\"Quote\"\" Col\", CAST(_sluice_deleted AS VARCHAR), \"from\" FROM \
             \"select\".\"order\" ORDER BY id"
                .into(),
        )
        .await
        .unwrap();
    let t = |s: &str| Value::Text(s.into());
    assert_eq!(
        rows,
        vec![
            vec![t("a1"), t("newer"), Value::Int(4), t("false"), t("new")],
            vec![t("b2"), t("gone"), Value::Int(3), t("true"), Value::Null],
            vec![t("c3"), t("x"), Value::Int(5), t("false"), t("new")],
        ]
    );
    let versions = db.query("SELECT COUNT(*) FROM \"select\".\"order_history\" WHERE id = 'a1'".into()).await.unwrap();
    assert_eq!(versions, vec![vec![Value::Int(2)]], "history: one version per load that advanced a1");
}

/// A load bigger than one slice: each Id staged twice, the newest copy in either slice, and
/// exactly the newest copy of every Id arrives, on a first load and on a full refresh.
#[tokio::test]
async fn duckdb_consolidation_in_slices_keeps_each_newest_version_once() {
    use crate::config::Deletes;
    use crate::consolidate::{
        DUCKDB_CHECK_ROWS, DUCKDB_SLICE_ROWS, DirectCheck, Existing, FirstLoad, MergeSpec, consolidate, control_ddl,
        direct_check, staging_ddl,
    };
    use crate::model::{Cursor, TableSchema};

    let schema = TableSchema {
        object: "Account".into(),
        table: "account".into(),
        columns: vec![
            Column::plain("id", "Id", SluiceType::Id),
            Column::plain("name", "Name", SluiceType::Text),
            Column::plain("is_deleted", "IsDeleted", SluiceType::Boolean),
            Column::plain("system_modstamp", "SystemModstamp", SluiceType::Timestamp),
        ],
        cursor: Cursor::SystemModstamp,
        deleted_flag: Some("IsDeleted".into()),
    };
    let dir = tempfile::tempdir().unwrap();
    let db = DuckDb::open(&dir.path().join("s.duckdb")).unwrap();
    let d = Dialect::DuckDb;
    db.execute(control_ddl(d, chrono::DateTime::UNIX_EPOCH)).await.unwrap();
    let now = chrono::Utc::now();
    let spec = MergeSpec::new(&schema, "sf", Deletes::Soft, false, "r1", now).unwrap();
    // Rows i and i + half share an Id and the later row is newer; the newer copies of the
    // first Ids fall in the first slice, the rest in the second.
    let staged = DUCKDB_SLICE_ROWS + 1_000;
    let half = staged / 2;
    db.execute(staging_ddl(d, &spec, FirstLoad::Merge)).await.unwrap();
    db.execute(vec![format!(
        "INSERT INTO {} SELECT 'id' || (i % {half}), CAST(i AS VARCHAR), FALSE, \
         to_timestamp(1767225600 + i), i FROM range({staged}) AS r(i)",
        d.table(&spec.staging)
    )])
    .await
    .unwrap();
    let run = flow_run("Account", staged, now);
    // The Id check a direct first load needs sees every Id twice, so this load merges.
    let DirectCheck::Query(checks) = direct_check(d, &spec, staged) else { panic!("DuckDB checks by query") };
    assert_eq!(checks.len(), 1);
    assert_eq!(db.query(checks[0].clone()).await.unwrap(), vec![vec![Value::Int(half as i64)]]);
    // Checked in shares of staging (by a hash of the Id), the Ids staged twice are the same.
    let mut twice = 0;
    let shares = direct_check(d, &spec, 3 * DUCKDB_CHECK_ROWS);
    let DirectCheck::Query(shares) = shares else { panic!("DuckDB checks by query") };
    assert_eq!(shares.len(), 3);
    for sql in shares {
        twice += db.query(sql).await.unwrap()[0][0].as_i64().unwrap();
    }
    assert_eq!(twice, half as i64);
    let plan = consolidate(d, &spec, &Existing::default(), &run, FirstLoad::Merge).unwrap();
    let inserts = plan.statements.iter().filter(|s| s.starts_with("INSERT INTO \"sf\".\"account\"")).count();
    assert_eq!(inserts, 2, "{:#?}", plan.statements);
    db.transaction(plan.statements).await.unwrap();
    let rows = db
        .query(format!(
            "SELECT count(*), count(DISTINCT id), \
             count(*) FILTER (WHERE CAST(name AS BIGINT) <> CAST(substr(id, 3) AS BIGINT) + {half}) \
             FROM sf.account"
        ))
        .await
        .unwrap();
    assert_eq!(rows[0], vec![Value::Int(half as i64), Value::Int(half as i64), Value::Int(0)]);

    // A full refresh of the same Ids, every copy newer than the target's: the deletes run in
    // slices too, and each Id again ends with exactly its newest copy.
    let spec = MergeSpec::new(&schema, "sf", Deletes::Soft, false, "r2", now).unwrap();
    db.execute(vec![format!("DROP TABLE {}", d.table(&spec.staging))]).await.unwrap();
    db.execute(staging_ddl(d, &spec, FirstLoad::Merge)).await.unwrap();
    db.execute(vec![format!(
        "INSERT INTO {} SELECT 'id' || (i % {half}), 'v2-' || i, FALSE, \
         to_timestamp(1767225600 + {staged} + i), i FROM range({staged}) AS r(i)",
        d.table(&spec.staging)
    )])
    .await
    .unwrap();
    let existing = Existing { target: db.columns(spec.target.clone()).await.unwrap(), history: None };
    let plan = consolidate(d, &spec, &existing, &run, FirstLoad::Merge).unwrap();
    let deletes: Vec<&String> =
        plan.statements.iter().filter(|s| s.starts_with("DELETE FROM \"sf\".\"account\"")).collect();
    assert_eq!(deletes.len(), 2, "{deletes:#?}");
    db.transaction(plan.statements).await.unwrap();
    let rows = db
        .query(format!(
            "SELECT count(*), count(DISTINCT id), \
             count(*) FILTER (WHERE name <> 'v2-' || (CAST(substr(id, 3) AS BIGINT) + {half})) \
             FROM sf.account"
        ))
        .await
        .unwrap();
    assert_eq!(rows[0], vec![Value::Int(half as i64), Value::Int(half as i64), Value::Int(0)]);
}
