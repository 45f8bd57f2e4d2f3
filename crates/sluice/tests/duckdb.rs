//! Exactly-once replication into DuckDB, scenario by scenario, against an in-process
//! sandbox over HTTP. After every run the DuckDB table is compared with the sandbox's
//! ground truth row by row and value by value (`common/warehouse.rs`).

mod common;
#[path = "common/warehouse.rs"]
mod warehouse;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{advance, mutate, post};
use sandbox::server;
use sandbox::{Running, SandboxConfig};
use serde_json::json;
use sluice::config::{self, Config};
use sluice::model::{Naming, TableSchema};
use sluice::source::salesforce::SalesforceSource;
use sluice::source::salesforce::describe::Selection;
use sluice::sync::{self, FlowStatus, RunSummary, SyncOptions};
use warehouse::{Expect, assert_matches, duckdb_rows, truth};

async fn start(counts: &[(&str, usize)]) -> Running {
    let counts = counts.iter().map(|(o, n)| (o.to_string(), *n as u64)).collect();
    server::start(SandboxConfig { seed: 11, counts, ..SandboxConfig::default() }).await.expect("sandbox starts")
}

struct Setup {
    _dir: tempfile::TempDir,
    db: PathBuf,
    config: Config,
}

/// A DuckDB config for `flows` ("Object" or "Object; key = value; key = value").
fn setup(sb: &Running, flows: &[&str], defaults: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.duckdb");
    let mut text = format!(
        r#"{}
[destination]
type = "duckdb"
path = "{}"

[defaults]
reconcile_every = "never"
{defaults}
"#,
        common::source_toml(&sb.login_url, ""),
        db.display()
    );
    for flow in flows {
        let mut parts = flow.split("; ");
        text.push_str(&format!("\n[[flows]]\nobject = \"{}\"\n", parts.next().unwrap()));
        for extra in parts {
            text.push_str(extra);
            text.push('\n');
        }
    }
    let config = config::load(&text, "test.toml", &|_| None).expect("valid config");
    Setup { _dir: dir, db, config }
}

async fn run(s: &Setup) -> RunSummary {
    let summary = sync::sync(&s.config, &SyncOptions::default(), &sync::Quiet).await.expect("the run starts");
    for f in &summary.flows {
        assert_eq!(f.status, FlowStatus::Ok, "{f:#?}");
    }
    summary
}

async fn schema_of(sb: &Running, object: &str) -> TableSchema {
    let source = SalesforceSource::connect(&common::password(&sb.login_url)).await.unwrap();
    let selection = Selection { naming: Naming::SnakeCase, ..Selection::default() };
    source.describe(object, &selection).await.unwrap().schema
}

/// Compares the table of `object` with the truth; returns the rows compared.
async fn check(sb: &Running, s: &Setup, object: &str, expect: Expect) -> usize {
    let schema = schema_of(sb, object).await;
    let rows = duckdb_rows(&s.db, "salesforce", &schema);
    assert_matches(&rows, &truth(sb, object).await, &schema, expect)
}

fn query_i64(db: &Path, sql: &str) -> i64 {
    duckdb::Connection::open(db).unwrap().query_row(sql, [], |r| r.get(0)).unwrap()
}

fn some_live_ids(sb_truth: &std::collections::HashMap<String, serde_json::Value>, n: usize) -> Vec<String> {
    let mut ids: Vec<String> =
        sb_truth.iter().filter(|(_, r)| !r["IsDeleted"].as_bool().unwrap_or(false)).map(|(id, _)| id.clone()).collect();
    ids.sort();
    ids.truncate(n);
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_load_matches_the_source_for_every_type() {
    let sb = start(&[("Account", 300), ("Contact", 200), ("Invoice__c", 150)]).await;
    let s = setup(&sb, &["Account", "Contact", "Invoice__c"], "");
    let summary = run(&s).await;
    for f in &summary.flows {
        // Recycle-bin rows arrive as tombstones: neither inserted (not live) nor deleted
        // (never live here before).
        let m = f.merged.expect("merge counts");
        let v = f.verify.expect("verified");
        assert!(v.matches(), "{f:#?}");
        assert_eq!((m.inserted, m.updated, m.deleted), (v.destination, 0, 0), "{f:#?}");
        assert!(f.rows >= m.inserted, "{f:#?}");
    }
    assert_eq!(check(&sb, &s, "Account", Expect::Soft).await, 300);
    assert_eq!(check(&sb, &s, "Contact", Expect::Soft).await, 200);
    assert_eq!(check(&sb, &s, "Invoice__c", Expect::Soft).await, 150);
    // Control tables: the window end is committed and the run recorded.
    let flows = query_i64(&s.db, "SELECT COUNT(*) FROM _sluice.flows WHERE window_end IS NOT NULL");
    assert_eq!(flows, 3);
    let runs = query_i64(&s.db, "SELECT COUNT(*) FROM _sluice.runs WHERE status = 'ok'");
    assert_eq!(runs, 1);
    let staging =
        query_i64(&s.db, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'salesforce_staging'");
    assert_eq!(staging, 0, "staging is dropped after the run");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_inserts_and_two_updates_of_one_row_between_runs() {
    let sb = start(&[("Account", 200)]).await;
    let s = setup(&sb, &["Account"], "");
    run(&s).await;
    let ids = some_live_ids(&truth(&sb, "Account").await, 3);
    advance(&sb, 5.0).await;
    mutate(
        &sb,
        json!([
            {"op": "update", "object": "Account", "id": ids[0], "fields": {"Name": "First Name"}},
            {"op": "update", "object": "Account", "id": ids[1], "fields": {"NumberOfEmployees": 7}},
            {"op": "insert", "object": "Account", "count": 5},
        ]),
    )
    .await;
    advance(&sb, 3.0).await;
    mutate(&sb, json!([{"op": "update", "object": "Account", "id": ids[0], "fields": {"Name": "Second Name"}}])).await;
    advance(&sb, 2.0).await;
    let summary = run(&s).await;
    let m = summary.flows[0].merged.unwrap();
    assert_eq!((m.inserted, m.updated, m.deleted), (5, 2, 0), "{:#?}", summary.flows[0]);
    assert!(summary.flows[0].rows < 50, "incremental, not a full read: {}", summary.flows[0].rows);
    assert_eq!(check(&sb, &s, "Account", Expect::Soft).await, 205);
    let name: String = duckdb::Connection::open(&s.db)
        .unwrap()
        .query_row("SELECT name FROM salesforce.account WHERE id = ?", [&ids[0]], |r| r.get(0))
        .unwrap();
    assert_eq!(name, "Second Name", "the newer of two versions wins");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_rows_in_one_second_and_a_late_commit() {
    let sb = start(&[("Account", 100)]).await;
    let s = setup(&sb, &["Account"], "");
    run(&s).await;
    post(&sb, "/sandbox/v1/clock", json!({"freeze": true})).await;
    let inserted = mutate(&sb, json!([{"op": "insert", "object": "Account", "count": 300}])).await;
    assert_eq!(inserted.len(), 300);
    let late =
        mutate(&sb, json!([{"op": "insert", "object": "Account", "fields": {"Name": "Late Co"}, "late_secs": 60}]))
            .await;
    run(&s).await; // the window ends on the frozen second
    advance(&sb, 120.0).await; // the late transaction commits, stamped two minutes ago
    run(&s).await;
    assert_eq!(check(&sb, &s, "Account", Expect::Soft).await, 401);
    let found = query_i64(&s.db, &format!("SELECT COUNT(*) FROM salesforce.account WHERE id = '{}'", late[0]));
    assert_eq!(found, 1, "the lookback caught the late commit");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_and_hard_deletes_undelete_and_purge_found_by_reconciliation() {
    let sb = start(&[("Contact", 150)]).await;
    let soft = setup(&sb, &["Contact"], "deletes = \"soft\"");
    let hard = setup(&sb, &["Contact"], "deletes = \"hard\"");
    run(&soft).await;
    run(&hard).await;
    let ids = some_live_ids(&truth(&sb, "Contact").await, 4);
    advance(&sb, 5.0).await;
    mutate(
        &sb,
        json!([
            {"op": "delete", "object": "Contact", "id": ids[0]},
            {"op": "delete", "object": "Contact", "id": ids[1]},
            {"op": "delete", "object": "Contact", "id": ids[2]},
        ]),
    )
    .await;
    advance(&sb, 5.0).await;
    for s in [&soft, &hard] {
        let summary = run(s).await;
        assert_eq!(summary.flows[0].merged.unwrap().deleted, 3);
    }
    check(&sb, &soft, "Contact", Expect::Soft).await;
    check(&sb, &hard, "Contact", Expect::Hard).await;

    // Undelete one; delete and purge another before the next run: no query can see the
    // purge, so only reconciliation (turned on now) finds it.
    advance(&sb, 5.0).await;
    mutate(
        &sb,
        json!([
            {"op": "undelete", "object": "Contact", "id": ids[1]},
            {"op": "delete", "object": "Contact", "id": ids[3]},
            {"op": "purge", "object": "Contact", "id": ids[3]},
        ]),
    )
    .await;
    advance(&sb, 5.0).await;
    for s in [&soft, &hard] {
        let mut config = s.config.clone();
        config.flows[0].settings.reconcile_every = Some(Duration::ZERO);
        let summary = sync::sync(&config, &SyncOptions::default(), &sync::Quiet).await.unwrap();
        assert_eq!(summary.flows[0].status, FlowStatus::Ok, "{:#?}", summary.flows[0]);
        assert_eq!(summary.flows[0].reconciled, Some(1), "{:#?}", summary.flows[0]);
    }
    check(&sb, &soft, "Contact", Expect::Soft).await;
    check(&sb, &hard, "Contact", Expect::Hard).await;
    let flagged = query_i64(
        &soft.db,
        &format!("SELECT COUNT(*) FROM salesforce.contact WHERE id = '{}' AND _sluice_deleted", ids[3]),
    );
    assert_eq!(flagged, 1, "soft mode keeps the purged row, flagged");
    let back = query_i64(&hard.db, &format!("SELECT COUNT(*) FROM salesforce.contact WHERE id = '{}'", ids[1]));
    assert_eq!(back, 1, "the undeleted row is back in hard mode");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_refuses_to_delete_most_of_a_table() {
    let sb = start(&[("Lead", 40)]).await;
    let mut s = setup(&sb, &["Lead; max_delete_ratio = 0.5"], "");
    run(&s).await;
    s.config.flows[0].settings.reconcile_every = Some(Duration::ZERO);
    let ids = some_live_ids(&truth(&sb, "Lead").await, 30);
    let purges: Vec<_> = ids.iter().map(|id| json!({"op": "purge", "object": "Lead", "id": id})).collect();
    let deletes: Vec<_> = ids.iter().map(|id| json!({"op": "delete", "object": "Lead", "id": id})).collect();
    mutate(&sb, json!(deletes)).await;
    mutate(&sb, json!(purges)).await;
    advance(&sb, 5.0).await;
    let before = query_i64(&s.db, "SELECT COUNT(*) FROM salesforce.lead WHERE NOT _sluice_deleted");
    let summary = sync::sync(&s.config, &SyncOptions::default(), &sync::Quiet).await.unwrap();
    let f = &summary.flows[0];
    assert_eq!(f.status, FlowStatus::Failed, "{f:#?}");
    assert!(f.error.as_deref().unwrap().contains("max_delete_ratio"), "{f:#?}");
    let after = query_i64(&s.db, "SELECT COUNT(*) FROM salesforce.lead WHERE NOT _sluice_deleted");
    assert_eq!(before, after, "nothing deleted");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_added_at_run_time_becomes_a_column() {
    let sb = start(&[("Account", 50)]).await;
    let s = setup(&sb, &["Account"], "");
    run(&s).await;
    let ids = some_live_ids(&truth(&sb, "Account").await, 2);
    advance(&sb, 2.0).await;
    mutate(
        &sb,
        json!([
            {"op": "add_field", "object": "Account", "field": {"name": "Tier__c", "type": "picklist", "values": ["Gold", "Silver"]}},
            {"op": "update", "object": "Account", "id": ids[0], "fields": {"Tier__c": "Gold"}},
        ]),
    )
    .await;
    advance(&sb, 2.0).await;
    run(&s).await;
    assert_eq!(check(&sb, &s, "Account", Expect::Soft).await, 50);
    let gold = query_i64(&s.db, "SELECT COUNT(*) FROM salesforce.account WHERE tier__c = 'Gold'");
    assert_eq!(gold, 1);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_mode_keeps_versions_with_validity_ranges() {
    let sb = start(&[("Account", 30)]).await;
    let s = setup(&sb, &["Account; history = true"], "");
    run(&s).await;
    let id = some_live_ids(&truth(&sb, "Account").await, 1).remove(0);
    for name in ["V2", "V3"] {
        advance(&sb, 5.0).await;
        mutate(&sb, json!([{"op": "update", "object": "Account", "id": id, "fields": {"Name": name}}])).await;
        advance(&sb, 2.0).await;
        run(&s).await;
    }
    assert_eq!(check(&sb, &s, "Account", Expect::Soft).await, 30);
    let conn = duckdb::Connection::open(&s.db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT name, epoch_ms(CAST(_sluice_valid_from AS TIMESTAMP)), epoch_ms(CAST(_sluice_valid_to AS \
             TIMESTAMP)), _sluice_current, epoch_ms(CAST(system_modstamp AS TIMESTAMP)) FROM salesforce.account_history \
             WHERE id = ? ORDER BY _sluice_valid_from",
        )
        .unwrap();
    let versions: Vec<(String, i64, Option<i64>, bool, i64)> = stmt
        .query_map([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(versions.len(), 3, "{versions:?}");
    assert_eq!(versions[1].0, "V2");
    assert_eq!(versions[2].0, "V3");
    for pair in versions.windows(2) {
        assert_eq!(pair[0].2, Some(pair[1].1), "a version ends where the next begins: {versions:?}");
        assert!(!pair[0].3);
    }
    assert_eq!((versions[2].2, versions[2].3), (None, true), "the newest is current");
    for v in &versions {
        assert_eq!(v.1, v.4, "valid_from is the version's SystemModstamp");
    }
    let current = query_i64(&s.db, "SELECT COUNT(*) FROM salesforce.account_history WHERE _sluice_current");
    assert_eq!(current, 30, "one current version per record");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_of_the_same_window_changes_nothing() {
    let sb = start(&[("Account", 80), ("Opportunity", 40)]).await;
    let s = setup(&sb, &["Account", "Opportunity"], "");
    run(&s).await;
    let schema = schema_of(&sb, "Account").await;
    let before = duckdb_rows(&s.db, "salesforce", &schema);
    // The same rows again: a lookback reaching back past every row, then a full re-read.
    let mut again = s.config.clone();
    for flow in &mut again.flows {
        flow.settings.lookback = Duration::from_secs(20 * 365 * 86_400);
    }
    for opts in [SyncOptions::default(), SyncOptions { full_refresh: true, ..SyncOptions::default() }] {
        let summary = sync::sync(&again, &opts, &sync::Quiet).await.unwrap();
        for f in &summary.flows {
            let m = f.merged.unwrap();
            assert_eq!((m.inserted, m.updated, m.deleted), (0, 0, 0), "{f:#?}");
            assert_eq!(f.rows, if f.object == "Account" { 80 } else { 40 }, "the window was read again");
        }
        let after = duckdb_rows(&s.db, "salesforce", &schema);
        assert_eq!(before.len(), after.len());
        for (id, row) in &before {
            assert_eq!(row.values, after[id].values, "{id}");
        }
    }
    assert_eq!(check(&sb, &s, "Opportunity", Expect::Soft).await, 40);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sliced_full_load_and_parallel_flows_commit_everything() {
    let sb = start(&[("Account", 400), ("Contact", 300), ("Lead", 100)]).await;
    let s = setup(&sb, &["Account; slice = \"365d\"", "Contact", "Lead"], "");
    let summary = run(&s).await;
    assert_eq!(summary.flows.iter().map(|f| f.rows).sum::<u64>(), 800);
    assert_eq!(check(&sb, &s, "Account", Expect::Soft).await, 400);
    assert_eq!(check(&sb, &s, "Contact", Expect::Soft).await, 300);
    assert_eq!(check(&sb, &s, "Lead", Expect::Soft).await, 100);
    let extracted =
        query_i64(&s.db, "SELECT rows_extracted FROM _sluice.flow_runs WHERE flow = 'Account' AND phase = 'done'");
    assert_eq!(extracted, 400, "the flow-run row has the totals of all slices");
    sb.shutdown().await;
}
