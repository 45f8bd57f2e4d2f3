//! End to end: Salesforce objects from the sandbox, through REST and through Bulk, into
//! the files destination. For the same window the two APIs must produce byte-identical
//! Parquet, and the manifest must count the rows the sandbox holds.

use sandbox::server;
use sandbox::{Running, SandboxConfig};
use sluice::config::{Api, FileFormat};
use sluice::destination::files::FilesDestination;
use sluice::model::Window;
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
            let mut run = dest.begin(&described.schema, "r1", window).unwrap();
            for b in &batches {
                run.write(b).unwrap();
            }
            let manifest = run.finish().unwrap();
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
