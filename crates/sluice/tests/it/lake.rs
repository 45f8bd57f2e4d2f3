//! The lake's Delta tables ([`sluice::destination::lake::delta`]) on local disk and on the
//! S3-compatible server: a copy-on-write history of commits, each read back by sluice at
//! its version and by a reader we did not write (the Python `deltalake` package), a
//! concurrent writer refused by put-if-absent, and a checkpoint that readers use.

use std::process::Command;
use std::sync::Arc;

use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use serde_json::{Value as Json, json};
use sluice::consolidate::TableRef;
use sluice::destination::lake::delta::{Change, DeltaColumn, DeltaTable, NewFile, delta_type};
use sluice::model::SluiceType;
use url::Url;

/// Writes rows of (id, amount[, stage]) as Parquet at `path` under the table's root.
async fn write_file(
    table: &DeltaTable,
    store: &Arc<dyn ObjectStore>,
    path: &str,
    rows: &[(&str, i64, Option<&str>)],
) -> NewFile {
    let with_stage = rows.iter().any(|r| r.2.is_some());
    let mut fields = vec![Field::new("id", DataType::Utf8, true), Field::new("amount", DataType::Int64, true)];
    let mut columns: Vec<arrow::array::ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
    ];
    if with_stage {
        fields.push(Field::new("stage", DataType::Utf8, true));
        columns.push(Arc::new(StringArray::from_iter(rows.iter().map(|r| r.2))));
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let size = bytes.len() as i64;
    store.put(&table.object_path(path).unwrap(), PutPayload::from(bytes)).await.unwrap();
    NewFile { path: path.into(), size, rows: rows.len() as i64 }
}

fn columns(names: &[(&str, SluiceType)]) -> Vec<DeltaColumn> {
    names.iter().map(|(n, t)| DeltaColumn { name: (*n).into(), ty: delta_type(*t).unwrap() }).collect()
}

/// Runs `body` in Python with the `deltalake` package, `uri`, `version` (`None`: the newest)
/// and `options` (the S3 server's, when `s3`) defined; returns what it prints, as JSON.
fn run_deltalake(body: &str, uri: &str, version: Option<u64>, s3: bool) -> Json {
    let python = std::env::var("SLUICE_PYTHON").unwrap_or_else(|_| {
        let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python");
        assert!(
            std::path::Path::new(venv).exists(),
            "no Python with the deltalake package: run ./scripts/test (it installs it into .venv), or set SLUICE_PYTHON"
        );
        venv.to_owned()
    });
    let options = if s3 {
        json!({
            "AWS_ENDPOINT_URL": crate::s3::endpoint(), "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        })
    } else {
        json!({})
    };
    // deltalake 1.6 with pyarrow aborts at interpreter exit now and then ("terminate called
    // without an active exception"), whatever table it read: the script leaves by os._exit
    // once its answer is out.
    let script = format!(
        "import json, os, sys\nfrom deltalake import DeltaTable\nuri, version, options = sys.argv[1], (int(sys.argv[2]) \
         if sys.argv[2] else None), json.loads(sys.argv[3])\n{body}\nsys.stdout.flush()\nos._exit(0)\n"
    );
    let out = Command::new(&python)
        .args(["-c", &script, uri, &version.map(|v| v.to_string()).unwrap_or_default(), &options.to_string()])
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e}"));
    assert!(
        out.status.success(),
        "deltalake could not read {uri}@{version:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// What the Python `deltalake` package reads of version `version` (the newest: `None`) at
/// `uri`: its files, its protocol and its rows sorted by id.
fn read_with_deltalake(uri: &str, version: Option<u64>, s3: bool) -> Json {
    let body = r#"
t = DeltaTable(uri, version=version, storage_options=options)
rows = t.to_pyarrow_table().to_pylist()
p = t.protocol()
print(json.dumps({
    "files": sorted(t.file_uris()), "reader": p.min_reader_version, "reader_features": p.reader_features or [],
    "columns": [f.name for f in t.schema().fields], "rows": sorted(rows, key=lambda r: r["id"]),
}))
"#;
    run_deltalake(body, uri, version, s3)
}

async fn copy_on_write_history(root: Url, store: Arc<dyn ObjectStore>, s3: bool) {
    let table = DeltaTable::new(root.clone(), store.clone(), &TableRef::new("salesforce", "account")).unwrap();
    assert!(table.version(None).await.unwrap().is_none(), "no table before the first commit");

    // Version 0: the table, its first file, the flow's mark and transaction 1.
    let first = write_file(&table, &store, "part-0-a.parquet", &[("001A", 10, None), ("001B", 20, None)]).await;
    let change = Change {
        columns: columns(&[("id", SluiceType::Id), ("amount", SluiceType::Long)]),
        add: vec![first.clone()],
        mark: r#"{"window_end":"2026-01-01T00:00:00Z"}"#.into(),
        data_change: true,
        ..Change::default()
    };
    let v0 = table.commit(None, change).await.unwrap();
    assert_eq!((v0.number, v0.txn, v0.mark.as_deref()), (0, Some(1), Some(r#"{"window_end":"2026-01-01T00:00:00Z"}"#)));
    assert_eq!(v0.files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["part-0-a.parquet"]);

    // Version 1: 001B changed and a column added: its file is replaced whole.
    let second = write_file(
        &table,
        &store,
        "part-0-b.parquet",
        &[("001A", 10, None), ("001B", 25, Some("Won")), ("001C", 5, Some("New"))],
    )
    .await;
    let change = Change {
        columns: columns(&[("stage", SluiceType::Text)]),
        remove: vec![first.path.clone()],
        add: vec![second],
        mark: r#"{"window_end":"2026-01-02T00:00:00Z"}"#.into(),
        data_change: true,
    };
    let v1 = table.commit(Some(&v0), change.clone()).await.unwrap();
    assert_eq!((v1.number, v1.txn), (1, Some(2)));
    assert_eq!(v1.mark.as_deref(), Some(r#"{"window_end":"2026-01-02T00:00:00Z"}"#));
    assert_eq!(v1.files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["part-0-b.parquet"]);
    assert_eq!(v1.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["id", "amount", "stage"]);

    // The same commit again (its answer lost on the way back): it is found landed, not
    // applied twice.
    let again = table.commit(Some(&v0), change.clone()).await.unwrap();
    assert_eq!((again.number, again.txn, &again.files), (1, Some(2), &v1.files));
    // Another writer that read version 0 loses: nothing of it lands.
    let other = Change { mark: r#"{"window_end":"2026-01-03T00:00:00Z"}"#.into(), ..change };
    let late = table.commit(Some(&v0), other).await.unwrap_err();
    assert!(late.is_busy() && late.to_string().contains("another writer committed version 1 first"), "{late}");
    let newest = table.version(None).await.unwrap().unwrap();
    assert_eq!((newest.number, newest.txn, &newest.files, &newest.mark), (1, Some(2), &v1.files, &v1.mark));
    let old = table.version(Some(0)).await.unwrap().unwrap();
    assert_eq!((&old.files, &old.mark), (&v0.files, &v0.mark));

    // The Python deltalake package reads each version as sluice wrote it.
    let uri = root.as_str().trim_end_matches('/');
    let read0 = read_with_deltalake(uri, Some(0), s3);
    assert_eq!(read0["reader"], 3, "{read0}");
    assert_eq!(read0["reader_features"], json!([]), "{read0}");
    assert_eq!(read0["columns"], json!(["id", "amount"]));
    assert_eq!(read0["rows"], json!([{"id": "001A", "amount": 10}, {"id": "001B", "amount": 20}]));
    let rows1 = json!([
        {"id": "001A", "amount": 10, "stage": null},
        {"id": "001B", "amount": 25, "stage": "Won"},
        {"id": "001C", "amount": 5, "stage": "New"},
    ]);
    let read1 = read_with_deltalake(uri, Some(1), s3);
    assert_eq!(read1["files"].as_array().unwrap().len(), 1, "{read1}");
    assert!(read1["files"][0].as_str().unwrap().ends_with("part-0-b.parquet"), "{read1}");
    assert_eq!(read1["rows"], rows1);

    // A checkpoint of the newest version: with the commits before it gone, sluice and
    // deltalake still read it, from the checkpoint alone.
    table.checkpoint(&newest).await.unwrap();
    assert!(store.head(&table.object_path("_delta_log/_last_checkpoint").unwrap()).await.is_ok());
    for commit in ["00000000000000000000.json", "00000000000000000001.json"] {
        store.delete(&table.object_path(&format!("_delta_log/{commit}")).unwrap()).await.unwrap();
    }
    let checkpointed = table.version(None).await.unwrap().unwrap();
    assert_eq!(
        (checkpointed.number, checkpointed.txn, &checkpointed.mark, &checkpointed.files),
        (1, Some(2), &v1.mark, &v1.files)
    );
    assert_eq!(read_with_deltalake(uri, None, s3)["rows"], rows1);
}

/// A table's root in a new temporary directory (kept while the guard lives), and its store.
fn local_root() -> (tempfile::TempDir, Url, Arc<dyn ObjectStore>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("account")).unwrap();
    let root = Url::from_directory_path(dir.path().join("account")).unwrap();
    (dir, root, Arc::new(object_store::local::LocalFileSystem::new()))
}

/// A table's root in a new bucket of the test S3 server, and its store.
async fn s3_root() -> (Url, Arc<dyn ObjectStore>) {
    let (bucket, store) = crate::s3::fresh_bucket("lake").await;
    (Url::parse(&format!("s3://{bucket}/lake/account/")).unwrap(), store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_delta_tables_keep_a_copy_on_write_history_others_read() {
    let (_dir, root, store) = local_root();
    copy_on_write_history(root, store, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_delta_tables_keep_a_copy_on_write_history_others_read() {
    let (root, store) = s3_root().await;
    copy_on_write_history(root, store, true).await;
}

/// The rows of `uri`'s Delta table at `version` (the newest: `None`) as the Python
/// `deltalake` package reads them: Id, `SystemModstamp` in epoch milliseconds, the delete
/// flags and Name, by Id.
fn synced_rows(uri: &str, version: Option<u64>, s3: bool) -> std::collections::HashMap<String, Json> {
    let rows = columns_with_stamp(uri, version, s3, &["id", "is_deleted", "_sluice_deleted", "name"]);
    let mut by_id = std::collections::HashMap::new();
    for row in rows.as_array().expect("rows") {
        let id = row["id"].as_str().unwrap().to_owned();
        assert!(by_id.insert(id.clone(), row.clone()).is_none(), "{id} twice in {uri}@{version:?}");
    }
    by_id
}

/// `columns` of every row of `uri`'s Delta table at `version` as the Python `deltalake`
/// package reads them, with `modstamp_ms`: `system_modstamp` in epoch milliseconds.
fn columns_with_stamp(uri: &str, version: Option<u64>, s3: bool, columns: &[&str]) -> Json {
    let body = format!(
        "import pyarrow as pa, pyarrow.compute as pc\nt = DeltaTable(uri, version=version, \
         storage_options=options).to_pyarrow_table()\nms = pc.divide(pc.cast(t['system_modstamp'], pa.int64()), \
         1000)\nt = t.select({}).append_column('modstamp_ms', ms)\nprint(json.dumps(t.to_pylist()))",
        serde_json::to_string(columns).unwrap()
    );
    run_deltalake(&body, uri, version, s3)
}

/// Checks rows read by deltalake against the sandbox's ground truth, row by row.
fn assert_rows_equal_truth(rows: &std::collections::HashMap<String, Json>, truth: &[serde_json::Map<String, Json>]) {
    let mut problems = Vec::new();
    for want in truth {
        let id = want["Id"].as_str().unwrap();
        let Some(got) = rows.get(id) else {
            problems.push(format!("{id}: missing"));
            continue;
        };
        let stamp =
            chrono::DateTime::parse_from_str(want["SystemModstamp"].as_str().unwrap(), "%Y-%m-%dT%H:%M:%S%.f%z")
                .unwrap()
                .timestamp_millis();
        let deleted = want["IsDeleted"] == true;
        let expected = (stamp, deleted, deleted, want["Name"].clone());
        let actual = (
            got["modstamp_ms"].as_i64().unwrap(),
            got["is_deleted"] == true,
            got["_sluice_deleted"] == true,
            got["name"].clone(),
        );
        if expected != actual {
            problems.push(format!("{id}: lake {actual:?}, source {expected:?}"));
        }
    }
    if rows.len() != truth.len() {
        problems.push(format!("{} rows in the lake, {} at the source", rows.len(), truth.len()));
    }
    assert!(problems.is_empty(), "{} differences:\n{}", problems.len(), problems[..problems.len().min(20)].join("\n"));
}

/// A lake sluice synced, twice with changes between, read by the Python `deltalake`
/// package: each run's version (found by the run id its mark records) equals the ground
/// truth as it was after that run.
/// The root of `wh`'s lake as readers name it, and whether it is on S3.
fn lake_root(wh: &crate::target::Warehouse) -> (String, bool) {
    match wh.lake.as_ref().map(|(root, _)| root) {
        Some(sluice::destination::files::FilesRoot::Local(path)) => {
            (format!("{}", std::fs::canonicalize(path).unwrap().display()), false)
        }
        Some(sluice::destination::files::FilesRoot::S3(s3)) => (format!("s3://{}/{}", s3.bucket, s3.prefix), true),
        None => unreachable!("a lake"),
    }
}

/// The Delta table at `uri` (under [`lake_root`]) of `wh`'s lake, as sluice reads it.
fn delta_table(wh: &crate::target::Warehouse, uri: &str) -> DeltaTable {
    let (url, store): (Url, Arc<dyn ObjectStore>) = match wh.lake.as_ref().map(|(root, _)| root) {
        Some(sluice::destination::files::FilesRoot::S3(r)) => {
            (Url::parse(&format!("{uri}/")).unwrap(), Arc::new(crate::s3::client(&r.bucket)))
        }
        _ => (Url::from_directory_path(uri).unwrap(), Arc::new(object_store::local::LocalFileSystem::new())),
    };
    DeltaTable::new(url, store, &TableRef::new("salesforce", "account")).unwrap()
}

async fn a_synced_lake_reads_back_in_deltalake(kind: crate::target::Kind) {
    use crate::target::Warehouse;
    let sb = crate::conformance::start(&[("Account", 300), ("Contact", 120)]).await;
    let wh = Warehouse::new(kind).await;
    let config = crate::conformance::config_for(&wh, &sb, &["Account", "Contact"], "");
    let sync = || async {
        let summary = wh.sync(&config, &sluice::pipeline::SyncOptions::default()).await.unwrap();
        assert_eq!(summary.status, sluice::pipeline::RunStatus::Ok, "{summary:#?}");
        summary.run_id
    };
    let first_run = sync().await;
    let first = crate::common::truth(&sb, "Account").await;
    let ops = json!({"mutations": [
        {"op": "churn", "object": "Account", "inserts": 20, "updates": 40, "deletes": 6, "undeletes": 1},
        {"op": "churn", "object": "Contact", "inserts": 5, "updates": 10, "deletes": 3, "undeletes": 0},
    ]});
    crate::common::admin(&sb, reqwest::Method::POST, "/sandbox/v1/mutations", Some(ops)).await;
    crate::common::advance(&sb, 3.0).await;
    let second_run = sync().await;

    let (root, s3) = lake_root(&wh);
    let account = format!("{root}/salesforce/account");
    // Each run's version, found by the run id its mark records, as a reader asks for it.
    let table = delta_table(&wh, &account);
    let newest = table.version(None).await.unwrap().unwrap().number;
    let mut last_of = std::collections::HashMap::new();
    let mut run_of = std::collections::HashMap::new();
    for v in 0..=newest {
        let mark = table.version(Some(v)).await.unwrap().unwrap().mark.unwrap();
        let run = sluice::consolidate::lake::LakeMark::parse(&mark).unwrap().run_id.expect("the run is recorded");
        last_of.insert(run.clone(), v);
        run_of.insert(v, run);
    }
    assert_eq!(last_of.len(), 2, "two runs: {last_of:?}");
    assert_rows_equal_truth(&synced_rows(&account, Some(last_of[&first_run]), s3), &first);
    let now = crate::common::truth(&sb, "Account").await;
    assert_eq!(last_of[&second_run], newest);
    assert_rows_equal_truth(&synced_rows(&account, Some(newest), s3), &now);
    let contact = format!("{root}/salesforce/contact");
    assert_rows_equal_truth(&synced_rows(&contact, None, s3), &crate::common::truth(&sb, "Contact").await);

    // The raw layer: each row each run read, once, with its run and the version it went in.
    let versions = |truth: &[serde_json::Map<String, Json>]| -> std::collections::HashSet<(String, i64)> {
        truth
            .iter()
            .map(|r| {
                let stamp = r["SystemModstamp"].as_str().unwrap();
                let ms = chrono::DateTime::parse_from_str(stamp, "%Y-%m-%dT%H:%M:%S%.f%z").unwrap().timestamp_millis();
                (r["Id"].as_str().unwrap().to_owned(), ms)
            })
            .collect()
    };
    let raw = format!("{root}/salesforce/raw/account");
    let raw = columns_with_stamp(&raw, None, s3, &["id", "_sluice_run_id", "_sluice_version", "_sluice_stage_seq"]);
    let mut read: std::collections::HashMap<String, Vec<(String, i64)>> = std::collections::HashMap::new();
    let mut positions = std::collections::HashSet::new();
    for row in raw.as_array().unwrap() {
        let (run, version) = (row["_sluice_run_id"].as_str().unwrap(), row["_sluice_version"].as_u64().unwrap());
        assert_eq!(run_of.get(&version).map(String::as_str), Some(run), "{row}: the version's mark names its run");
        assert!(positions.insert((version, row["_sluice_stage_seq"].as_i64().unwrap())), "{row} appended twice");
        let version = (row["id"].as_str().unwrap().to_owned(), row["modstamp_ms"].as_i64().unwrap());
        read.entry(run.to_owned()).or_default().push(version);
    }
    assert_eq!(read.len(), 2, "rows of two runs: {:?}", read.keys());
    let (before, after) = (versions(&first), versions(&now));
    let first_read = &read[&first_run];
    assert_eq!(first_read.len(), before.len(), "the first run read each row once");
    assert_eq!(first_read.iter().cloned().collect::<std::collections::HashSet<_>>(), before);
    let second_read: std::collections::HashSet<_> = read[&second_run].iter().cloned().collect();
    assert!(second_read.is_subset(&after), "the second run read current versions only");
    let changed: std::collections::HashSet<_> = after.difference(&before).cloned().collect();
    assert!(changed.len() >= 60, "{} versions changed", changed.len());
    assert!(
        changed.is_subset(&second_read),
        "every changed row reached the raw layer: {:?}",
        changed.difference(&second_read)
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synced_local_lake_reads_back_in_deltalake() {
    a_synced_lake_reads_back_in_deltalake(crate::target::Kind::Lake).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synced_s3_lake_reads_back_in_deltalake() {
    a_synced_lake_reads_back_in_deltalake(crate::target::Kind::LakeS3).await;
}

/// The raw layer gains a small file per run; once it holds ten, they are rewritten as one
/// in a commit that changes no data. Every row every run read is still there once, for
/// sluice and for deltalake, and the versions before the compaction still read as they were.
async fn raw_small_files_are_compacted(kind: crate::target::Kind) {
    use crate::target::Warehouse;
    let sb = crate::conformance::start(&[("Account", 200)]).await;
    let wh = Warehouse::new(kind).await;
    let config = crate::conformance::config_for(&wh, &sb, &["Account"], "");
    let mut read = 0;
    for _ in 0..12 {
        let summary = wh.sync(&config, &sluice::pipeline::SyncOptions::default()).await.unwrap();
        assert_eq!(summary.status, sluice::pipeline::RunStatus::Ok, "{summary:#?}");
        read += summary.flows[0].rows;
        let ops = json!({"mutations": [{"op": "churn", "object": "Account", "inserts": 3, "updates": 5, "deletes": 1, "undeletes": 0}]});
        crate::common::admin(&sb, reqwest::Method::POST, "/sandbox/v1/mutations", Some(ops)).await;
        crate::common::advance(&sb, 3.0).await;
    }
    let (root, s3) = lake_root(&wh);
    let uri = format!("{root}/salesforce/raw/account");
    let raw = delta_table(&wh, &uri);
    let newest = raw.version(None).await.unwrap().unwrap();
    let mut files = Vec::new();
    for v in 0..=newest.number {
        files.push(raw.version(Some(v)).await.unwrap().unwrap().files.len());
    }
    let compacted: Vec<usize> = (1..files.len()).filter(|&v| files[v] < files[v - 1]).collect();
    assert!(!compacted.is_empty(), "no compaction in {} versions", newest.number + 1);
    assert!(newest.files.len() < 10, "{} files left", newest.files.len());
    // Each row once, at the newest version and at the one before the first compaction.
    let rows = |version: Option<u64>| {
        let rows = run_deltalake(
            "t = DeltaTable(uri, version=version, storage_options=options).to_pyarrow_table()\n\
             print(json.dumps(t.select(['_sluice_version', '_sluice_stage_seq']).to_pylist()))",
            &uri,
            version,
            s3,
        );
        let rows = rows.as_array().unwrap().clone();
        let distinct: std::collections::HashSet<String> = rows.iter().map(Json::to_string).collect();
        assert_eq!(distinct.len(), rows.len(), "a row twice at {version:?}");
        rows.len() as u64
    };
    assert_eq!(rows(None), read, "every row read, once");
    let before = compacted[0] - 1;
    assert!(files[before] >= 10, "version {before} held {} files", files[before]);
    assert!(rows(Some(before as u64)) < read);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_raw_layer_is_compacted() {
    raw_small_files_are_compacted(crate::target::Kind::Lake).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_raw_layer_is_compacted() {
    raw_small_files_are_compacted(crate::target::Kind::LakeS3).await;
}

/// Expiry: files only older versions reference, and files no commit took, are deleted once
/// older than the retention, never before; the newest version's files stay and readers
/// still read it.
async fn expired_files_go_after_the_retention(root: Url, store: Arc<dyn ObjectStore>, s3: bool) {
    use std::time::Duration;
    let table = DeltaTable::new(root.clone(), store.clone(), &TableRef::new("salesforce", "account")).unwrap();
    let first = write_file(&table, &store, "b0000-v0-a-0.parquet", &[("001A", 10, None)]).await;
    let change = Change {
        columns: columns(&[("id", SluiceType::Id), ("amount", SluiceType::Long)]),
        add: vec![first.clone()],
        mark: "{}".into(),
        data_change: true,
        ..Change::default()
    };
    let v0 = table.commit(None, change).await.unwrap();
    let second = write_file(&table, &store, "b0000-v1-b-0.parquet", &[("001A", 11, None), ("001B", 5, None)]).await;
    let change = Change {
        remove: vec![first.path.clone()],
        add: vec![second.clone()],
        mark: "{}".into(),
        data_change: true,
        ..Change::default()
    };
    let v1 = table.commit(Some(&v0), change).await.unwrap();
    // A failed commit's upload: no version references it.
    write_file(&table, &store, "b0000-v2-c-0.parquet", &[("001A", 12, None)]).await;
    let exists = |path: &str| {
        let (store, location) = (store.clone(), table.object_path(path).unwrap());
        async move { store.head(&location).await.is_ok() }
    };

    let kept = table.expire(Duration::from_secs(3600), &v1).await.unwrap();
    assert_eq!(kept.files, 0, "everything is younger than an hour");
    for path in ["b0000-v0-a-0.parquet", "b0000-v1-b-0.parquet", "b0000-v2-c-0.parquet"] {
        assert!(exists(path).await, "{path} kept within the retention");
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let gone = table.expire(Duration::ZERO, &v1).await.unwrap();
    assert_eq!(gone.files, 2, "version 0's file and the unreferenced one");
    assert!(!exists("b0000-v0-a-0.parquet").await && !exists("b0000-v2-c-0.parquet").await);
    assert!(exists("b0000-v1-b-0.parquet").await, "the newest version's file stays");
    assert!(exists("_delta_log/00000000000000000001.json").await, "the log is never expired");
    let uri = root.as_str().trim_end_matches('/');
    let read = read_with_deltalake(uri, None, s3);
    assert_eq!(read["rows"], json!([{"id": "001A", "amount": 11}, {"id": "001B", "amount": 5}]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_expired_files_go_after_the_retention() {
    let (_dir, root, store) = local_root();
    expired_files_go_after_the_retention(root, store, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_expired_files_go_after_the_retention() {
    let (root, store) = s3_root().await;
    expired_files_go_after_the_retention(root, store, true).await;
}
