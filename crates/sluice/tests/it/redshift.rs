//! The Redshift destination, as far as it can be checked without a cluster (see
//! `docs/redshift.md`):
//! - loads are uploaded as Parquet parts to a real S3-compatible server (the moto server
//!   `./scripts/test` starts; `SLUICE_TEST_S3_ENDPOINT`) and read back value by value;
//! - the consolidation in Redshift's dialect runs on the test PostgreSQL server, round
//!   after round of changes, and leaves exactly what PostgreSQL's own dialect leaves
//!   (whose first load goes straight from staging, [`FirstLoad::Direct`], and falls back
//!   to the merge when an Id was staged twice);
//! - the schema lease (Redshift has no advisory locks) works on the same server;
//! - the `COPY` statement is the one Redshift documents.

use crate::pg;

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Decimal128Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use chrono::{TimeZone, Utc};
use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use pg::fresh_database;
use sluice::config::Deletes;
use sluice::consolidate::procedure::hand_off;
use sluice::consolidate::{
    Dialect, Existing, FirstLoad, FlowRun, LEASE, MergeSpec, TableRef, consolidate, control_ddl, staging_ddl,
};
use sluice::destination::postgres::Postgres;
use sluice::destination::redshift::{Lease, S3Stager, copy_sql};
use sluice::destination::{Destination, Stage, Value};
use sluice::error::Kind;
use sluice::model::{Column, Cursor, SluiceType, TableSchema, Window};

use crate::s3::bucket;
use crate::target::AsRedshift;

fn batch(first: i64, n: usize) -> RecordBatch {
    let ids: Vec<String> = (first..first + n as i64).map(|i| format!("001{i:015}")).collect();
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(StringArray::from(ids))),
        ("name", Arc::new(StringArray::from_iter((0..n).map(|i| (i % 7 != 0).then(|| format!("Ünïcode 'name' {i}")))))),
        ("n", Arc::new(Int32Array::from_iter((0..n).map(|i| (i % 5 != 0).then_some(i as i32 - 3))))),
        (
            "amount",
            Arc::new(
                Decimal128Array::from_iter((0..n).map(|i| (i % 3 != 0).then_some(i as i128 * 101 - 7)))
                    .with_precision_and_scale(18, 2)
                    .unwrap(),
            ),
        ),
        ("flag", Arc::new(BooleanArray::from_iter((0..n).map(|i| Some(i % 2 == 0))))),
        (
            "ts",
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(
                    (0..n).map(|i| 1_700_000_000_000_000 + i as i64 * 1_000_001),
                )
                .with_timezone("UTC"),
            ),
        ),
        ("seq", Arc::new(Int64Array::from_iter_values(first..first + n as i64))),
    ];
    RecordBatch::try_from_iter(cols).unwrap()
}

#[tokio::test]
async fn loads_are_uploaded_as_parquet_parts_and_read_back_value_by_value() {
    let store = bucket("sluice-upload").await;
    let mut stager = S3Stager::new(store.clone(), "sluice-upload", "stage/salesforce_staging/account".into());
    stager.set_part_rows(1000);
    assert_eq!(stager.url(), "s3://sluice-upload/stage/salesforce_staging/account/");
    let sent = [batch(0, 700), batch(700, 700), batch(1400, 100), batch(1500, 0)];
    for b in &sent {
        stager.write(b.clone()).await.unwrap();
    }
    assert_eq!(stager.finish().await.unwrap(), (1500, 2), "a part closes once it holds 1000 rows");

    let mut parts: Vec<ObjectPath> = store
        .list(Some(&ObjectPath::from("stage/salesforce_staging/account")))
        .map(|m| m.unwrap().location)
        .collect()
        .await;
    parts.sort();
    assert_eq!(
        parts.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["stage/salesforce_staging/account/part-00000.parquet", "stage/salesforce_staging/account/part-00001.parquet"]
    );
    let mut got = Vec::new();
    for part in &parts {
        let bytes = store.get(part).await.unwrap().bytes().await.unwrap();
        for b in ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap().build().unwrap() {
            got.push(b.unwrap());
        }
    }
    let got = arrow::compute::concat_batches(&got[0].schema(), &got).unwrap();
    let want = arrow::compute::concat_batches(&sent[0].schema(), &sent).unwrap();
    assert_eq!(got.schema(), want.schema(), "names, types and the UTC zone survive");
    assert_eq!(got.num_rows(), 1500);
    for (g, w) in got.columns().iter().zip(want.columns()) {
        assert_eq!(g.to_data(), w.to_data());
    }
}

#[test]
fn copy_reads_every_part_under_the_load_prefix_with_the_role() {
    let t = TableRef::new("salesforce_staging", "account");
    assert_eq!(
        copy_sql(&t, "s3://b/p/salesforce_staging/account/", "arn:aws:iam::123456789012:role/Load", None),
        "COPY \"salesforce_staging\".\"account\" FROM 's3://b/p/salesforce_staging/account/' IAM_ROLE \
         'arn:aws:iam::123456789012:role/Load' FORMAT AS PARQUET"
    );
    assert!(
        copy_sql(&t, "s3://b/o'k/", "arn:aws:iam::1:role/r", Some("eu-west-1"))
            .ends_with("FROM 's3://b/o''k/' IAM_ROLE 'arn:aws:iam::1:role/r' FORMAT AS PARQUET REGION 'eu-west-1'")
    );
}

fn column(name: &str, source: &str, ty: SluiceType) -> Column {
    Column { name: name.into(), source_name: source.into(), ty, nullable: true, formula: false, masked: false }
}

fn account() -> TableSchema {
    TableSchema {
        object: "Account".into(),
        table: "account".into(),
        columns: vec![
            column("id", "Id", SluiceType::Id),
            column("name", "Name", SluiceType::Text),
            column("n", "N__c", SluiceType::Int),
            column("amount", "Amount__c", SluiceType::Decimal { precision: 18, scale: 2 }),
            column("is_deleted", "IsDeleted", SluiceType::Boolean),
            column("system_modstamp", "SystemModstamp", SluiceType::Timestamp),
        ],
        cursor: Cursor::SystemModstamp,
        deleted_flag: Some("IsDeleted".into()),
    }
}

/// Staged rows: (id number, name, modstamp second, deleted).
fn staged(rows: &[(i64, &str, i64, bool)]) -> RecordBatch {
    let n = rows.len();
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(StringArray::from_iter_values(rows.iter().map(|r| format!("001{:015}", r.0))))),
        ("name", Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1)))),
        ("n", Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.0 as i32)))),
        (
            "amount",
            Arc::new(
                Decimal128Array::from_iter_values(rows.iter().map(|r| r.0 as i128 * 100 + 5))
                    .with_precision_and_scale(18, 2)
                    .unwrap(),
            ),
        ),
        ("is_deleted", Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.3))))),
        (
            "system_modstamp",
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| (1_700_000_000 + r.2) * 1_000_000))
                    .with_timezone("UTC"),
            ),
        ),
        ("_sluice_stage_seq", Arc::new(Int64Array::from_iter_values(0..n as i64))),
    ];
    RecordBatch::try_from_iter(cols).unwrap()
}

/// One round: stage `rows` and consolidate them in `dialect` into `<schema>`, on PostgreSQL.
async fn round(
    db: &Postgres,
    dialect: Dialect,
    schema: &str,
    deletes: Deletes,
    history: bool,
    k: u32,
    rows: &[(i64, &str, i64, bool)],
) {
    let (_, _, statements) = stage_and_plan(db, dialect, schema, deletes, history, k, rows, None, true).await;
    db.transaction(statements).await.unwrap_or_else(|e| panic!("{dialect:?} round {k}: {e}"));
}

/// Stages `rows` and returns the spec, the flow run and the consolidation's statements,
/// planned against the catalog or, when given, against `catalog` instead; a first load goes
/// direct when `direct` (as the flow does unless it hands off to a procedure).
#[allow(clippy::too_many_arguments)]
async fn stage_and_plan(
    db: &Postgres,
    dialect: Dialect,
    schema: &str,
    deletes: Deletes,
    history: bool,
    k: u32,
    rows: &[(i64, &str, i64, bool)],
    catalog: Option<Existing>,
    direct: bool,
) -> (MergeSpec, FlowRun, Vec<String>) {
    let synced = Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, k).unwrap();
    let spec = MergeSpec::new(&account(), schema, deletes, history, &format!("run-{k}"), synced).unwrap();
    db.execute(control_ddl(dialect, chrono::DateTime::UNIX_EPOCH)).await.unwrap();
    let existing = match catalog {
        Some(existing) => existing,
        None => Existing {
            target: db.columns(spec.target.clone()).await.unwrap(),
            history: if history { db.columns(spec.history_table()).await.unwrap() } else { None },
        },
    };
    // As the flow asks: a first load directly (PostgreSQL then stages durably, to promote
    // staging); Redshift, and every load into an existing table, merge regardless.
    let first_load = if direct && existing.target.is_none() { FirstLoad::Direct } else { FirstLoad::Merge };
    db.discard(spec.staging.clone()).await.unwrap();
    db.execute(staging_ddl(dialect, &spec, first_load)).await.unwrap();
    let mut stage = db.stage(spec.staging.clone()).await.unwrap();
    stage.write(staged(rows)).await.unwrap();
    stage.finish().await.unwrap();
    let run = FlowRun {
        flow: format!("Account-{schema}"),
        object: "Account".into(),
        window: Window { start: None, end: synced },
        full_refresh: false,
        schema_fingerprint: "fp".into(),
        selection_fingerprint: "sel-1".into(),
        attempts: 1,
        rows_extracted: rows.len() as u64,
        api_calls: 0,
        bytes: 0,
        api_remaining: None,
        remove_absent: false,
        removed: 0,
    };
    let statements = consolidate(dialect, &spec, &existing, &run, first_load).unwrap().statements;
    (spec, run, statements)
}

/// A first load trusts the catalog's "no such table" and INSERTs every row; a wrong answer
/// (Redshift folding a name's case, say) must fail the transaction, not add the rows twice.
#[tokio::test]
async fn a_target_the_catalog_missed_fails_the_consolidation_instead_of_doubling_it() {
    let url = fresh_database().await.pg();
    let db = Postgres::connect(&url).await.unwrap();
    let rows: &[(i64, &str, i64, bool)] = &[(1, "a", 10, false), (2, "b", 11, false)];
    for (dialect, schema) in [(Dialect::Redshift, "missed_rs"), (Dialect::Postgres, "missed_pg")] {
        round(&db, dialect, schema, Deletes::Soft, false, 0, rows).await;
        let before = table_text(&db, &format!("{schema}.account")).await;
        assert_eq!(before.len(), 2);
        let (_, _, blind) =
            stage_and_plan(&db, dialect, schema, Deletes::Soft, false, 1, rows, Some(Existing::default()), true).await;
        let err = db.transaction(blind).await.expect_err("the CREATE TABLE must fail");
        assert!(err.to_string().contains("already exists"), "{dialect:?}: {err}");
        assert_eq!(table_text(&db, &format!("{schema}.account")).await, before, "{dialect:?}: nothing changed");
    }
}

async fn table_text(db: &Postgres, table: &str) -> Vec<Vec<Value>> {
    db.query(format!("SELECT * FROM {table} ORDER BY 1, 2, 3")).await.unwrap()
}

#[tokio::test]
async fn redshift_consolidation_runs_on_postgres_and_matches_the_postgres_dialect() {
    let url = fresh_database().await.pg();
    let db = Postgres::connect(&url).await.unwrap();
    let rounds: [&[(i64, &str, i64, bool)]; 4] = [
        // A first load.
        &[(1, "a", 10, false), (2, "b", 10, false), (3, "c", 11, false), (4, "d", 12, true)],
        // Two versions of one row, an older re-read that must not win, a delete.
        &[(1, "a2", 20, false), (1, "a3", 21, false), (2, "b-old", 5, false), (3, "c", 22, true), (5, "e", 22, false)],
        // An undelete, and the same second twice for one Id (stage order decides).
        &[(3, "c-back", 30, false), (5, "e2", 31, false), (5, "e3", 31, false)],
        // A re-read of the same window: nothing changes.
        &[(3, "c-back", 30, false), (5, "e3", 31, false)],
    ];
    for (deletes, history) in [(Deletes::Soft, false), (Deletes::Hard, false), (Deletes::Soft, true)] {
        let tag =
            format!("{}{}", if deletes == Deletes::Soft { "soft" } else { "hard" }, if history { "_h" } else { "" });
        // (PostgreSQL reserves schema names starting `pg_`.)
        let (rs, pgs) = (format!("rs_{tag}"), format!("p_{tag}"));
        for (k, rows) in rounds.iter().enumerate() {
            round(&db, Dialect::Redshift, &rs, deletes, history, k as u32, rows).await;
            round(&db, Dialect::Postgres, &pgs, deletes, history, k as u32, rows).await;
            let (a, b) =
                (table_text(&db, &format!("{rs}.account")).await, table_text(&db, &format!("{pgs}.account")).await);
            assert_eq!(a, b, "{tag} round {k}: the two dialects disagree");
            if history {
                let h = |s: &str| format!("{s}.account_history");
                assert_eq!(table_text(&db, &h(&rs)).await, table_text(&db, &h(&pgs)).await, "{tag} history round {k}");
            }
        }
        let names = db.query(format!("SELECT name FROM {rs}.account ORDER BY id")).await.unwrap();
        let names: Vec<&str> = names.iter().filter_map(|r| r[0].as_str()).collect();
        match deletes {
            Deletes::Soft => assert_eq!(names, ["a3", "b", "c-back", "d", "e3"], "{tag}"),
            Deletes::Hard => assert_eq!(names, ["a3", "b", "c-back", "e3"], "{tag}"),
        }
        let counts = |schema: &str| {
            db.query(format!(
                "SELECT run_id, rows_inserted, rows_updated, rows_deleted FROM _sluice.flow_runs WHERE flow = \
                 'Account-{schema}' ORDER BY run_id"
            ))
        };
        let (rs_counts, pg_counts) = (counts(&rs).await.unwrap(), counts(&pgs).await.unwrap());
        assert_eq!(rs_counts.len(), rounds.len(), "{tag}");
        assert_eq!(rs_counts, pg_counts, "{tag}: merge counts");
        // The direct first load built PostgreSQL's key afterwards; it is there all the same.
        let key = db
            .query(format!(
                "SELECT COUNT(*) FROM pg_constraint WHERE conrelid = '{pgs}.account'::regclass AND contype = 'p'"
            ))
            .await
            .unwrap();
        assert_eq!(key[0][0].as_i64(), Some(1), "{tag}");
    }
}

/// A direct first load's key is what proves staging held each Id once on PostgreSQL: with
/// an Id staged twice (its newer version deleted, which hard-delete mode must still see),
/// the transaction fails as a duplicate key and leaves nothing; the merge then keeps the
/// newest version of each Id, here none of the deleted one.
#[tokio::test]
async fn a_direct_first_load_with_an_id_staged_twice_fails_whole_and_the_merge_takes_over() {
    let url = fresh_database().await.pg();
    let db = Postgres::connect(&url).await.unwrap();
    let rows: &[(i64, &str, i64, bool)] = &[(1, "a", 10, false), (2, "b", 10, false), (1, "a-gone", 11, true)];
    let (spec, run, direct) =
        stage_and_plan(&db, Dialect::Postgres, "twice", Deletes::Hard, false, 0, rows, None, true).await;
    let err = db.transaction(direct).await.expect_err("the key must refuse the second Id");
    assert!(err.is_duplicate_key(), "{err}");
    let tables = "SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'twice' AND tablename = 'account'";
    assert_eq!(db.query(tables.into()).await.unwrap()[0][0].as_i64(), Some(0), "no target, not even an empty one");
    let runs = db.query("SELECT COUNT(*) FROM _sluice.flow_runs".into()).await.unwrap();
    assert_eq!(runs[0][0].as_i64(), Some(0), "no flow-run row either");

    let merge = consolidate(Dialect::Postgres, &spec, &Existing::default(), &run, FirstLoad::Merge).unwrap();
    db.transaction(merge.statements).await.unwrap();
    let names = db.query("SELECT id, name FROM twice.account ORDER BY id".into()).await.unwrap();
    assert_eq!(names, [[Value::Text("001000000000000002".into()), Value::Text("b".into())]]);
}

/// A promoted first load is created in the staging schema, so the target schema's default
/// privileges (`ALTER DEFAULT PRIVILEGES ... IN SCHEMA`) must be applied on the move, as a
/// `CREATE TABLE` there would have; also into a schema whose name holds the grants block's
/// usual dollar-quote tag.
#[tokio::test]
async fn a_promoted_first_load_gets_the_target_schemas_default_privileges() {
    let test_db = fresh_database().await;
    let db = Postgres::connect(&test_db.pg()).await.unwrap();
    let reader = format!("reader_{}", test_db.name);
    db.execute(vec![format!("CREATE ROLE \"{reader}\"")]).await.unwrap();
    for schema in ["granted", "g$grants$"] {
        db.execute(vec![
            format!("CREATE SCHEMA \"{schema}\""),
            format!("ALTER DEFAULT PRIVILEGES IN SCHEMA \"{schema}\" GRANT SELECT ON TABLES TO \"{reader}\""),
        ])
        .await
        .unwrap();
        round(&db, Dialect::Postgres, schema, Deletes::Soft, false, 0, &[(1, "a", 10, false)]).await;
        let may = |what: &str| {
            db.query(format!(
                "SELECT COUNT(*) FROM (SELECT 1 WHERE has_table_privilege('{reader}', '\"{schema}\".account', \
                 '{what}')) AS x"
            ))
        };
        assert_eq!(may("SELECT").await.unwrap()[0][0].as_i64(), Some(1), "{schema}: the default grant");
        assert_eq!(may("INSERT").await.unwrap()[0][0].as_i64(), Some(0), "{schema}: and nothing more");
    }
    db.execute(vec![format!("DROP OWNED BY \"{reader}\""), format!("DROP ROLE \"{reader}\"")]).await.unwrap();
}

#[tokio::test]
async fn the_schema_lease_is_exclusive_named_released_and_expires() {
    let url = fresh_database().await.pg();
    let a = Postgres::connect(&url).await.unwrap();
    // The lease table as an older sluice made it, without `expires_at`: it is added.
    a.execute(vec![
        "CREATE SCHEMA _sluice".into(),
        "CREATE TABLE _sluice.locks (schema_name VARCHAR(256), holder VARCHAR(256), heartbeat TIMESTAMPTZ)".into(),
    ])
    .await
    .unwrap();
    let lease = Lease::take(a.clone(), "salesforce", LEASE).await.unwrap();
    let err = Lease::take(a.clone(), "salesforce", LEASE).await.expect_err("a second lease on the schema");
    assert_eq!(err.kind, Kind::User);
    assert!(
        err.message.contains("in use by another sluice run") && err.message.contains("last seen"),
        "{}",
        err.message
    );
    Lease::take(a.clone(), "other", LEASE).await.unwrap().release().await.unwrap();
    lease.release().await.unwrap();
    let again = Lease::take(a.clone(), "salesforce", LEASE).await.unwrap();
    // A lease lapses by its holder's time-out, not by the one of the run asking: seen a
    // minute ago, with ten to live, it is held still for a run whose own time-out is 10 s.
    a.execute(vec!["UPDATE _sluice.locks SET heartbeat = heartbeat - INTERVAL '1 minute'".into()]).await.unwrap();
    let short = std::time::Duration::from_secs(10);
    let err = Lease::take(a.clone(), "salesforce", short).await.expect_err("held by its own time-out");
    assert!(err.message.contains("lapses at"), "{}", err.message);
    // A lease written by an older sluice (no expiry) lapses after the longest time-out.
    a.execute(vec!["UPDATE _sluice.locks SET expires_at = NULL, heartbeat = now() - INTERVAL '9 minutes'".into()])
        .await
        .unwrap();
    Lease::take(a.clone(), "salesforce", short).await.expect_err("an old lease within the longest time-out");
    // A holder that stopped refreshing long ago (a crashed run) loses the lease.
    a.execute(vec!["UPDATE _sluice.locks SET heartbeat = now() - INTERVAL '11 minutes'".into()]).await.unwrap();
    let taken = Lease::take(a.clone(), "salesforce", short).await.unwrap();
    drop(again);
    taken.release().await.unwrap();
    let left = a.query("SELECT COUNT(*) FROM _sluice.locks".into()).await.unwrap();
    assert_eq!(left[0][0].as_i64(), Some(0));
}

/// The lease is refreshed on a session of its own, so a consolidation that holds the run's
/// main session for longer than the lease lasts does not let it expire; and a lease another
/// run took over (after it expired) is noticed, so the run stops before committing.
#[tokio::test]
async fn the_lease_stays_alive_through_a_long_transaction_and_notices_a_takeover() {
    let url = fresh_database().await.pg();
    let main = Postgres::connect(&url).await.unwrap();
    let every = std::time::Duration::from_millis(200);
    // A lease lapsing after four heartbeats.
    let lease = Lease::take(Postgres::connect(&url).await.unwrap(), "salesforce", every * 4).await.unwrap();
    let beat = "SELECT CAST(EXTRACT(EPOCH FROM heartbeat) * 1000 AS BIGINT) FROM _sluice.locks";
    let watcher = Postgres::connect(&url).await.unwrap();
    let first = watcher.query(beat.into()).await.unwrap()[0][0].as_i64().unwrap();
    main.transaction(vec!["SELECT pg_sleep(1.5)".into()]).await.unwrap();
    let later = watcher.query(beat.into()).await.unwrap()[0][0].as_i64().unwrap();
    assert!(later >= first + 1000, "refreshed during the transaction: {first} then {later}");
    lease.check().unwrap();
    watcher.execute(vec!["UPDATE _sluice.locks SET holder = 'another run'".into()]).await.unwrap();
    tokio::time::sleep(every * 3).await;
    let err = lease.check().expect_err("the lease is no longer ours");
    assert!(err.message.contains("could not be refreshed"), "{}", err.message);
}

/// The stored procedure of both dialects, run on PostgreSQL (Redshift's `GETDATE()` is
/// given a PostgreSQL stand-in): each round's hand-off, then `CALL`, gives the same table
/// as consolidating directly; a second `CALL` does nothing; a held run lock refuses it.
#[tokio::test]
async fn the_consolidation_procedure_matches_consolidating_directly() {
    let url = fresh_database().await.pg();
    let db = Postgres::connect(&url).await.unwrap();
    db.execute(vec![
        "CREATE FUNCTION getdate() RETURNS timestamp LANGUAGE sql AS $$ SELECT now() AT TIME ZONE 'UTC' $$".into(),
        "CREATE SCHEMA IF NOT EXISTS \"_sluice\"".into(),
        "CREATE TABLE \"_sluice\".\"locks\" (\"schema_name\" VARCHAR(256), \"holder\" VARCHAR(256), \"heartbeat\" \
         TIMESTAMPTZ)"
            .into(),
    ])
    .await
    .unwrap();
    let rounds: [&[(i64, &str, i64, bool)]; 3] = [
        &[(1, "a", 10, false), (2, "b", 10, false), (3, "c", 11, true)],
        &[(1, "a2", 20, false), (2, "b-old", 5, false), (3, "c-back", 21, false), (4, "d", 21, false)],
        &[(4, "d", 21, true), (5, "e", 30, false)],
    ];
    for (dialect, schema) in [(Dialect::Redshift, "proc_rs"), (Dialect::Postgres, "proc_pg")] {
        let direct = format!("{schema}_direct");
        let call = format!("CALL {schema}.sluice_consolidate_account()");
        for (k, rows) in rounds.iter().enumerate() {
            let k = k as u32;
            let (spec, run, statements) =
                stage_and_plan(&db, dialect, schema, Deletes::Hard, true, k, rows, None, false).await;
            db.transaction(hand_off(dialect, &spec, &run, &statements).unwrap()).await.unwrap();
            if k == 0 {
                // A sync holding the schema: the CALL refuses and changes nothing.
                let err = match dialect {
                    Dialect::Redshift => {
                        let lease = format!("INSERT INTO _sluice.locks VALUES ('{schema}', 'another run', now())");
                        db.execute(vec![lease]).await.unwrap();
                        let err = db.execute(vec![call.clone()]).await.expect_err("a live lease refuses the CALL");
                        db.execute(vec!["DELETE FROM _sluice.locks".into()]).await.unwrap();
                        err
                    }
                    _ => {
                        let holder = Postgres::connect(&url).await.unwrap();
                        assert_eq!(holder.claim(vec![TableRef::new(schema, "account")]).await.unwrap(), vec![None]);
                        let err = db.execute(vec![call.clone()]).await.expect_err("the advisory lock refuses the CALL");
                        holder.release().await.unwrap();
                        err
                    }
                };
                let held = match dialect {
                    Dialect::Redshift => format!("holds schema {schema}"),
                    _ => format!("holds table \"{schema}\".\"account\""),
                };
                assert!(err.to_string().contains(&held), "{dialect:?}: {err}");
                let tables = db
                    .query(format!("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{schema}'"))
                    .await
                    .unwrap();
                assert_eq!(tables[0][0].as_i64(), Some(0), "{dialect:?}: the refused CALL created nothing");
            }
            db.execute(vec![call.clone()]).await.unwrap();
            round(&db, Dialect::Postgres, &direct, Deletes::Hard, true, k, rows).await;
            for table in ["account", "account_history"] {
                let (a, b) = (
                    table_text(&db, &format!("{schema}.{table}")).await,
                    table_text(&db, &format!("{direct}.{table}")).await,
                );
                assert_eq!(a, b, "{dialect:?} round {k}: {table} differs from a direct consolidation");
            }
            // Called again: nothing to do.
            let before = table_text(&db, &format!("{schema}.account_history")).await;
            db.execute(vec![call.clone()]).await.unwrap();
            assert_eq!(table_text(&db, &format!("{schema}.account_history")).await, before, "{dialect:?} round {k}");
            let staged = db
                .query(format!(
                    "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{schema}_staging'"
                ))
                .await
                .unwrap();
            assert_eq!(staged[0][0].as_i64(), Some(0), "{dialect:?}: the CALL dropped staging");
        }
    }
}

/// Two schemas' first runs on one Redshift database set the control tables up at the same
/// moment: both succeed (Redshift has no advisory lock to serialise them, so whichever
/// loses the race to create `_sluice` and its tables tries again and finds them there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_setups_racing_on_one_database_both_succeed() {
    let text = "[source]\ntype = \"salesforce\"\nlogin_url = \"https://x.my.salesforce.com\"\nauth = \
                \"client_credentials\"\nclient_id = \"id\"\nclient_secret = \"s\"\n[destination]\ntype = \
                \"redshift\"\nurl = \"postgres://u:p@h:5439/dev\"\ns3_staging = \"s3://b/p\"\niam_role = \
                \"arn:aws:iam::1:role/r\"\n[[flows]]\nobject = \"Account\"\n";
    let config = sluice::load_config(text, "test.toml", &|_| None).expect("valid config");
    for round in 0..8 {
        let db = fresh_database().await;
        let a = AsRedshift(Postgres::connect(&db.pg()).await.unwrap());
        let b = AsRedshift(Postgres::connect(&db.pg()).await.unwrap());
        let (ra, rb) = tokio::join!(
            sluice::pipeline::warehouse::prepare_control(&a, &config, "one"),
            sluice::pipeline::warehouse::prepare_control(&b, &config, "two")
        );
        ra.unwrap_or_else(|e| panic!("round {round}, schema one: {e}"));
        rb.unwrap_or_else(|e| panic!("round {round}, schema two: {e}"));
        let layout = a.0.query("SELECT COUNT(*) FROM _sluice.layout".into()).await.unwrap();
        assert_eq!(layout[0][0].as_i64(), Some(1), "one layout row");
    }
}
