//! End to end: Salesforce objects from the sandbox, through REST and through Bulk, into
//! the files destination. For the same window the two APIs must produce byte-identical
//! Parquet, and the manifest must count the rows the sandbox holds.

use std::collections::HashMap;
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sandbox::server;
use sandbox::{Running, SandboxConfig};
use sluice::config::Api;
use sluice::destination::files::{FileFormat, FilesConfig};
use sluice::destination::files::{FilesDestination, LeaseRecord};
use sluice::model::Window;
use sluice::pipeline::{self, FlowStatus, SyncOptions};
use sluice::source::salesforce::describe::Selection;
use sluice::source::salesforce::{Options, SalesforceSource};

use crate::common;

const OBJECTS: [&str; 7] = ["Account", "Case", "Contact", "Invoice__c", "Lead", "Opportunity", "User"];

async fn start() -> Running {
    let counts = OBJECTS.iter().map(|o| (o.to_string(), if *o == "User" { 15 } else { 250 })).collect();
    server::start(SandboxConfig { seed: 5, counts, ..SandboxConfig::default() }).await.expect("sandbox starts")
}

#[tokio::test]
async fn rest_and_bulk_give_byte_identical_parquet() {
    let sb = start().await;
    let mut opts = Options::default();
    opts.bulk.poll_min = std::time::Duration::from_millis(10);
    opts.bulk.poll_max = std::time::Duration::from_millis(50);
    let src = SalesforceSource::connect_with(&common::password(&sb.login_url), opts).await.expect("connects");
    src.describe("Account", &Selection::default()).await.unwrap();
    let end = src.source_now().expect("API responses carry the source clock in Date");
    let window = Window { start: None, end };
    let root = tempfile::tempdir().unwrap();
    for object in OBJECTS {
        let described = src.describe(object, &Selection::default()).await.unwrap();
        let mut parts = Vec::new();
        let truth_rows = common::truth(&sb, object).await.len() as u64;
        for api in [Api::Rest, Api::Bulk] {
            let dest = FilesDestination::new(root.path().join(format!("{api:?}")), FileFormat::Parquet);
            let batches = src.extract_all(&described, Some(window), None, api).await.unwrap();
            let mut run = dest.begin(&described.schema, "r1", window).await.unwrap();
            for b in &batches {
                run.write(b).await.unwrap();
            }
            let manifest = run.finish().await.unwrap();
            assert_eq!(manifest.rows, truth_rows, "{object} via {api:?}: every row, deleted ones too");
            assert_eq!(manifest.parts.len(), 1);
            let path =
                root.path().join(format!("{api:?}/{}/run=r1/{}", described.schema.table, manifest.parts[0].file));
            parts.push(std::fs::read(path).unwrap());
        }
        assert!(parts[0] == parts[1], "{object}: REST and Bulk Parquet differ");
    }
    sb.shutdown().await;
}

/// (Id, IsDeleted, Name) of every row of every committed run of `table` under an S3 root,
/// read back from the bucket.
async fn s3_rows(store: &Arc<dyn ObjectStore>, dest: &FilesDestination, prefix: &str, table: &str) -> Vec<Row> {
    use arrow::array::{Array, BooleanArray, StringArray};
    let mut rows = Vec::new();
    for run in dest.runs(table).await.unwrap() {
        for part in &run.parts {
            let key = ObjectPath::from(format!("{prefix}/{table}/run={}/{}", run.run_id, part.file));
            let bytes = store.get(&key).await.unwrap().bytes().await.unwrap();
            assert_eq!(bytes.len() as u64, part.bytes, "the manifest's size of {key}");
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap().build().unwrap();
            for batch in reader {
                let batch = batch.unwrap();
                let col = |n: &str| batch.column_by_name(n).unwrap().clone();
                let ids = col("id");
                let ids = ids.as_any().downcast_ref::<StringArray>().unwrap();
                let deleted = col("is_deleted");
                let deleted = deleted.as_any().downcast_ref::<BooleanArray>().unwrap();
                let names = col("name");
                let names = names.as_any().downcast_ref::<StringArray>().unwrap();
                rows.extend((0..batch.num_rows()).map(|i| {
                    (ids.value(i).to_owned(), deleted.value(i), (!names.is_null(i)).then(|| names.value(i).to_owned()))
                }));
            }
        }
    }
    rows
}

type Row = (String, bool, Option<String>);

/// The newest row read per Id, by run order.
fn newest(rows: &[Row]) -> HashMap<String, Row> {
    rows.iter().map(|r| (r.0.clone(), r.clone())).collect()
}

/// What the sandbox holds, as [`Row`]s by Id.
async fn truth_rows(sb: &Running, object: &str) -> HashMap<String, Row> {
    let truth = common::truth(sb, object).await;
    truth
        .into_iter()
        .map(|r| {
            let id = r["Id"].as_str().expect("an Id").to_owned();
            let row = (id.clone(), r["IsDeleted"].as_bool().unwrap_or(false), r["Name"].as_str().map(str::to_owned));
            (id, row)
        })
        .collect()
}

/// `path = "s3://bucket/prefix"`: runs, manifests and the state land in the bucket (moto
/// here), the rows read back from it equal the org's, an incremental run adds only what
/// changed, a crashed run's objects are removed, and the root's lease lets one run in at a
/// time: a held lease refuses a run naming its holder, a lapsed one is taken over, and a
/// finished run gives it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_on_s3_hold_every_row_one_run_at_a_time() {
    let sb = start().await;
    let (name, store) = crate::s3::fresh_bucket("sluice-files").await;
    let text = format!(
        "{}\n[destination]\ntype = \"files\"\npath = \"s3://{name}/landing/\"\ns3_endpoint = \"{}\"\ns3_region = \
         \"us-east-1\"\n\n[[flows]]\nobject = \"Account\"\n\n[[flows]]\nobject = \"Contact\"\n",
        common::source_toml(&sb.login_url, ""),
        crate::s3::endpoint()
    );
    let config = sluice::load_config(&text, "test.toml", &|_| None).expect("valid config");
    let root = &config.destination.settings::<FilesConfig>().expect("files").root;
    let dest = FilesDestination::open(root, FileFormat::Parquet).unwrap();
    assert_eq!(dest.root_shown(), format!("s3://{name}/landing/"));
    // A run that died before its manifest left objects behind.
    let crashed = ObjectPath::from("landing/account/run=crashed/part-00000.parquet");
    store.put(&crashed, PutPayload::from_static(b"partial")).await.unwrap();

    let opts = SyncOptions::default();
    let summary = pipeline::sync(&config, &opts, &pipeline::Quiet).await.expect("the run starts");
    assert!(summary.flows.iter().all(|f| f.status == FlowStatus::Ok), "{summary:#?}");
    assert!(store.head(&crashed).await.is_err(), "the crashed run's objects are gone");
    assert!(store.head(&ObjectPath::from("landing/.sluice.lock")).await.is_err(), "the lease is given back");
    for object in ["Account", "Contact"] {
        let table = object.to_lowercase();
        let rows = s3_rows(&store, &dest, "landing", &table).await;
        assert_eq!(newest(&rows), truth_rows(&sb, object).await, "{object}");
        assert_eq!(rows.len(), newest(&rows).len(), "{object}: one row per Id in a first run");
    }
    let state = dest.state().await.unwrap();
    assert_eq!(state.len(), 2, "{state:?}");

    // An incremental run adds the changed rows as a new run.
    let ids: Vec<String> = truth_rows(&sb, "Account").await.into_keys().take(2).collect();
    common::advance(&sb, 5.0).await;
    common::mutate(
        &sb,
        serde_json::json!([
            {"op": "update", "object": "Account", "id": ids[0], "fields": {"Name": "Renamed on S3"}},
            {"op": "delete", "object": "Account", "id": ids[1]},
            {"op": "insert", "object": "Account", "count": 3},
        ]),
    )
    .await;
    common::advance(&sb, 3.0).await;
    let summary = pipeline::sync(&config, &opts, &pipeline::Quiet).await.expect("the run starts");
    assert!(summary.flows.iter().all(|f| f.status == FlowStatus::Ok), "{summary:#?}");
    let runs = dest.runs("account").await.unwrap();
    assert_eq!(runs.len(), 2, "{runs:#?}");
    assert!(runs[1].rows >= 5 && runs[1].rows < 50, "incremental: {}", runs[1].rows);
    let rows = s3_rows(&store, &dest, "landing", "account").await;
    assert_eq!(newest(&rows), truth_rows(&sb, "Account").await);

    // A held lease refuses the next run, naming who holds it; then it is given back.
    let held = dest.lock("sync").await.unwrap();
    let err = pipeline::sync(&config, &opts, &pipeline::Quiet).await.expect_err("refused while held");
    assert!(err.message.contains("in use by another sluice run") && err.message.contains("`sluice sync`"), "{err}");
    held.release().await.unwrap();
    // A lease whose run died (not refreshed for longer than the lease) is taken over.
    let lapsed = LeaseRecord {
        holder: "`sluice sync`, pid 1 on a machine that died".into(),
        expires_at: chrono::Utc::now() - chrono::Duration::seconds(1),
    };
    let lock = ObjectPath::from("landing/.sluice.lock");
    store.put(&lock, PutPayload::from(serde_json::to_vec(&lapsed).unwrap())).await.unwrap();
    let summary = pipeline::sync(&config, &opts, &pipeline::Quiet).await.expect("a lapsed lease is taken over");
    assert!(summary.flows.iter().all(|f| f.status == FlowStatus::Ok), "{summary:#?}");
    assert!(store.head(&lock).await.is_err(), "given back after the run");
    sb.shutdown().await;
}
