//! The conformance suite: the same scenarios against every destination, warehouses,
//! files roots and lakes alike (`target::conformance!`: DuckDB, PostgreSQL, Redshift's SQL
//! on PostgreSQL, files on local disk, files on S3, a lake on local disk, a lake on S3), each checked against the sandbox's
//! ground truth row by row and value by value (`common/target.rs` says how each is read
//! back). What a destination cannot do, it refuses by its configuration, with the key and
//! why, and the suite checks the refusal rather than skipping.
//!
//! Where a warehouse records more (merge counts, control tables, timings), the scenario
//! checks that too; the warehouse-only behaviour (hard deletes, history, reconciliation,
//! append, layouts, procedures) is in `scenarios.rs`.

use crate::{common, target, warehouse};

use std::time::Duration;

use chrono::SubsecRound;

use common::{advance, mutate, post};
use sandbox::server;
use sandbox::{Running, SandboxConfig};
use serde_json::json;
use sluice::config::Config;
use sluice::model::{Naming, TableSchema};
use sluice::pipeline::{FlowStatus, RunSummary, SyncOptions};
use sluice::source::salesforce::SalesforceSource;
use sluice::source::salesforce::describe::Selection;
use target::{Kind, Warehouse};
use warehouse::{Expect, assert_matches, truth};

// The helpers below are shared with the warehouse-only scenarios (`scenarios.rs`).

/// An in-process sandbox holding `counts` rows of each object.
pub(crate) async fn start(counts: &[(&str, usize)]) -> Running {
    let counts = counts.iter().map(|(o, n)| (o.to_string(), *n as u64)).collect();
    server::start(SandboxConfig { seed: 11, counts, ..SandboxConfig::default() }).await.expect("sandbox starts")
}

/// One destination and the config writing into it.
pub(crate) struct Setup {
    pub(crate) wh: Warehouse,
    pub(crate) config: Config,
}

/// A config for `flows` ("Object" or "Object; key = value; key = value") into a new, empty
/// destination of `kind`.
async fn setup(kind: Kind, sb: &Running, flows: &[&str]) -> Setup {
    setup_with(kind, sb, flows, "").await
}

/// [`setup`] with more `[defaults]`. Warehouses skip reconciliation unless asked (files
/// have none), so that every kind does the same work.
pub(crate) async fn setup_with(kind: Kind, sb: &Running, flows: &[&str], defaults: &str) -> Setup {
    let wh = Warehouse::new(kind).await;
    let config = config_for(&wh, sb, flows, defaults);
    Setup { wh, config }
}

/// The config of [`setup_with`] for a destination already there.
pub(crate) fn config_for(wh: &Warehouse, sb: &Running, flows: &[&str], defaults: &str) -> Config {
    let reconcile = if wh.kind.is_files() { "" } else { "reconcile_every = \"never\"\n" };
    let mut text =
        format!("{}\n{}\n[defaults]\n{reconcile}{defaults}\n", common::source_toml(&sb.login_url, ""), wh.toml);
    for flow in flows {
        let mut parts = flow.split("; ");
        text.push_str(&format!("\n[[flows]]\nobject = \"{}\"\n", parts.next().unwrap()));
        for extra in parts {
            text.push_str(extra);
            text.push('\n');
        }
    }
    sluice::load_config(&text, "test.toml", &|_| None).expect("valid config")
}

/// One sync, every flow of which must succeed.
pub(crate) async fn run(s: &Setup) -> RunSummary {
    let summary = s.wh.sync(&s.config, &SyncOptions::default()).await.expect("the run starts");
    for f in &summary.flows {
        assert_eq!(f.status, FlowStatus::Ok, "{f:#?}");
    }
    summary
}

/// The table `object` becomes under the default naming.
pub(crate) async fn schema_of(sb: &Running, object: &str) -> TableSchema {
    let source = SalesforceSource::connect(&common::password(&sb.login_url)).await.unwrap();
    let selection = Selection { naming: Naming::SnakeCase, ..Selection::default() };
    source.describe(object, &selection).await.unwrap().schema
}

/// Compares the destination's rows of `object` with the truth; returns how many.
pub(crate) async fn check(sb: &Running, s: &Setup, object: &str, expect: Expect) -> usize {
    let schema = schema_of(sb, object).await;
    let rows = warehouse::rows(&s.wh, "salesforce", &schema).await;
    let matched = assert_matches(&rows, &truth(sb, object).await, &schema, expect);
    let faults = s.wh.raw_faults(&schema.table).await;
    assert!(faults.is_empty(), "the raw layer: {faults:#?}");
    matched
}

/// The first `n` live Ids of `truth`, in Id order.
pub(crate) fn some_live_ids(truth: &std::collections::HashMap<String, serde_json::Value>, n: usize) -> Vec<String> {
    let mut ids: Vec<String> =
        truth.iter().filter(|(_, r)| !r["IsDeleted"].as_bool().unwrap_or(false)).map(|(id, _)| id.clone()).collect();
    ids.sort();
    ids.truncate(n);
    ids
}

/// Every field type of three objects (a standard one with compound fields, one with
/// references, a custom one), value by value. A warehouse also records what it did: merge
/// counts, the control tables, what each flow cost and where its time went.
async fn first_load_matches_the_source_for_every_type(kind: Kind) {
    let sb = start(&[("Account", 300), ("Contact", 200), ("Invoice__c", 150)]).await;
    let s = setup(kind, &sb, &["Account", "Contact", "Invoice__c"]).await;
    let summary = run(&s).await;
    assert_eq!(check(&sb, &s, "Account", Expect::Soft).await, 300);
    assert_eq!(check(&sb, &s, "Contact", Expect::Soft).await, 200);
    assert_eq!(check(&sb, &s, "Invoice__c", Expect::Soft).await, 150);
    for f in &summary.flows {
        assert!(f.api_calls.is_some_and(|n| n >= 2), "describe and at least one query: {f:#?}");
    }
    if kind.is_files() {
        return sb.shutdown().await;
    }
    for f in &summary.flows {
        // Recycle-bin rows arrive as tombstones: neither inserted (not live) nor deleted
        // (never live here before).
        let m = f.merged.expect("merge counts");
        let v = f.verify.expect("verified");
        assert!(v.matches(), "{f:#?}");
        assert_eq!((m.inserted, m.updated, m.deleted), (v.destination, 0, 0), "{f:#?}");
        assert!(f.rows >= m.inserted, "{f:#?}");
    }
    // Control tables: the window end is committed and the run recorded.
    let flows = s.wh.query_i64("SELECT COUNT(*) FROM _sluice.flows WHERE window_end IS NOT NULL").await;
    assert_eq!(flows, 3);
    let runs = s.wh.query_i64("SELECT COUNT(*) FROM _sluice.runs WHERE status = 'ok'").await;
    assert_eq!(runs, 1);
    // What each flow cost is recorded, and what the org has left.
    let costed = "SELECT COUNT(*) FROM _sluice.flow_runs WHERE api_calls > 0 AND bytes > 1000 AND api_remaining > 0";
    assert_eq!(s.wh.query_i64(costed).await, 3);
    for f in &summary.flows {
        // Where the time went: every phase that ran took time, none was skipped, and the
        // phases add up to no more than the flow's own wall time.
        let t = f.timings.expect("a warehouse flow records its phases");
        for (phase, d) in t.phases() {
            let ran = !["reconcile", "formulas"].contains(&phase); // not due on a first load
            assert_eq!(!d.is_zero(), ran, "{phase}: {t:#?}");
        }
        let sum: std::time::Duration = t.phases().iter().map(|(_, d)| *d).sum();
        assert!(sum <= f.duration, "{sum:?} > {:?}: {t:#?}", f.duration);
        let json = serde_json::to_value(f).unwrap();
        assert_eq!(json["timings"]["extract"], t.extract.as_millis() as u64, "milliseconds in JSON: {json}");
    }
    let staging =
        s.wh.query_i64("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'salesforce_staging'")
            .await;
    assert_eq!(staging, 0, "staging is dropped after the run");
    sb.shutdown().await;
}

/// Inserts and two updates of one row between runs: the newer version wins, and the run
/// is incremental.
async fn updates_inserts_and_two_updates_of_one_row_between_runs(kind: Kind) {
    let sb = start(&[("Account", 200)]).await;
    let s = setup(kind, &sb, &["Account"]).await;
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
    if !kind.is_files() {
        let m = summary.flows[0].merged.unwrap();
        assert_eq!((m.inserted, m.updated, m.deleted), (5, 2, 0), "{:#?}", summary.flows[0]);
    }
    assert!(summary.flows[0].rows < 50, "incremental, not a full read: {}", summary.flows[0].rows);
    assert_eq!(check(&sb, &s, "Account", Expect::Soft).await, 205);
    let name = s.wh.query(&format!("SELECT name FROM salesforce.account WHERE id = '{}'", ids[0])).await;
    assert_eq!(name, [[Some("Second Name".to_owned())]], "the newer of two versions wins");
    sb.shutdown().await;
}

/// Many rows stamped in one second, and a transaction that commits after the window it is
/// stamped in: the look-back catches it, and each row arrives once.
async fn many_rows_in_one_second_and_a_late_commit(kind: Kind) {
    let sb = start(&[("Account", 100)]).await;
    let s = setup(kind, &sb, &["Account"]).await;
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
    let found = s.wh.query_i64(&format!("SELECT COUNT(*) FROM salesforce.account WHERE id = '{}'", late[0])).await;
    assert_eq!(found, 1, "the lookback caught the late commit");
    sb.shutdown().await;
}

/// Recycle-bin deletes arrive with the next run (flagged), and an undelete clears the flag.
async fn deletes_and_undeletes_arrive(kind: Kind) {
    let sb = start(&[("Contact", 90)]).await;
    let s = setup(kind, &sb, &["Contact"]).await;
    run(&s).await;
    let ids = some_live_ids(&truth(&sb, "Contact").await, 3);
    advance(&sb, 5.0).await;
    let deletes: Vec<_> = ids.iter().map(|id| json!({"op": "delete", "object": "Contact", "id": id})).collect();
    mutate(&sb, json!(deletes)).await;
    advance(&sb, 5.0).await;
    run(&s).await;
    check(&sb, &s, "Contact", Expect::Soft).await;
    let flagged =
        format!("SELECT COUNT(*) FROM salesforce.contact WHERE _sluice_deleted AND id IN ('{}')", ids.join("', '"));
    assert_eq!(s.wh.query_i64(&flagged).await, 3);
    advance(&sb, 5.0).await;
    mutate(&sb, json!([{"op": "undelete", "object": "Contact", "id": ids[1]}])).await;
    advance(&sb, 5.0).await;
    run(&s).await;
    check(&sb, &s, "Contact", Expect::Soft).await;
    assert_eq!(s.wh.query_i64(&flagged).await, 2);
    sb.shutdown().await;
}

/// A field added to the object while sluice runs becomes a column (files: a column of the
/// new runs), filled where the source has a value.
async fn a_field_added_at_run_time_becomes_a_column(kind: Kind) {
    let sb = start(&[("Account", 50)]).await;
    let s = setup(kind, &sb, &["Account"]).await;
    run(&s).await;
    let ids = some_live_ids(&truth(&sb, "Account").await, 1);
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
    let gold = s.wh.query_i64("SELECT COUNT(*) FROM salesforce.account WHERE tier__c = 'Gold'").await;
    assert_eq!(gold, 1);
    sb.shutdown().await;
}

/// Reading the same window again (a look-back reaching past every row, then a full read)
/// leaves what a reader sees unchanged, value by value.
async fn a_rerun_of_the_same_window_changes_nothing(kind: Kind) {
    let sb = start(&[("Account", 80), ("Opportunity", 40)]).await;
    let s = setup(kind, &sb, &["Account", "Opportunity"]).await;
    run(&s).await;
    let schema = schema_of(&sb, "Account").await;
    let before = warehouse::rows(&s.wh, "salesforce", &schema).await;
    let mut again = s.config.clone();
    for flow in &mut again.flows {
        flow.settings.lookback = Duration::from_secs(20 * 365 * 86_400);
    }
    for opts in [SyncOptions::default(), SyncOptions { full_refresh: true, ..SyncOptions::default() }] {
        let summary = s.wh.sync(&again, &opts).await.unwrap();
        for f in &summary.flows {
            assert_eq!(f.status, FlowStatus::Ok, "{f:#?}");
            if !kind.is_files() {
                let m = f.merged.unwrap();
                assert_eq!((m.inserted, m.updated, m.deleted), (0, 0, 0), "{f:#?}");
            }
            assert_eq!(f.rows, if f.object == "Account" { 80 } else { 40 }, "the window was read again");
        }
        let after = warehouse::rows(&s.wh, "salesforce", &schema).await;
        assert_eq!(before.len(), after.len());
        for (id, row) in &before {
            assert_eq!(row.values, after[id].values, "{id}");
        }
    }
    assert_eq!(check(&sb, &s, "Opportunity", Expect::Soft).await, 40);
    sb.shutdown().await;
}

/// A sliced first load (each slice committed on its own) beside flows running in parallel.
async fn sliced_full_load_and_parallel_flows_commit_everything(kind: Kind) {
    let sb = start(&[("Account", 400), ("Contact", 300), ("Lead", 100)]).await;
    let s = setup(kind, &sb, &["Account; slice = \"365d\"", "Contact", "Lead"]).await;
    let summary = run(&s).await;
    assert_eq!(summary.flows.iter().map(|f| f.rows).sum::<u64>(), 800);
    assert_eq!(check(&sb, &s, "Account", Expect::Soft).await, 400);
    assert_eq!(check(&sb, &s, "Contact", Expect::Soft).await, 300);
    assert_eq!(check(&sb, &s, "Lead", Expect::Soft).await, 100);
    if !kind.is_files() {
        let extracted =
            s.wh.query_i64("SELECT rows_extracted FROM _sluice.flow_runs WHERE flow = 'Account' AND phase = 'done'")
                .await;
        assert_eq!(extracted, 400, "the flow-run row has the totals of all slices");
    }
    sb.shutdown().await;
}

/// A formula's value changes without its record's cursor moving: here the parent Account
/// is renamed (each of its invoices' `Account_Name__c` follows) and a day passes (every
/// unpaid invoice's `Days_Overdue__c` grows). No incremental run can see that; the formula
/// refresh does, rewriting exactly the rows whose values changed, and only their formula
/// columns. A files root refuses `formula_refresh_every` by its config (below).
async fn formula_changes_arrive_on_the_formula_refresh(kind: Kind) {
    if kind.is_files() {
        return;
    }
    let sb = start(&[("Account", 30), ("Invoice__c", 200)]).await;
    let flows = ["Invoice__c"];
    // No look-back: the incremental run reads exactly what changed after the first one.
    let s = setup_with(kind, &sb, &flows, "lookback = \"0s\"\nformula_refresh_every = \"never\"\n").await;
    run(&s).await;
    assert_eq!(check(&sb, &s, "Invoice__c", Expect::Soft).await, 200);
    let before = truth(&sb, "Invoice__c").await;
    let parent = before
        .values()
        .filter_map(|r| r["Account__c"].as_str())
        .min()
        .expect("an invoice with a parent account")
        .to_owned();
    advance(&sb, 5.0).await;
    mutate(&sb, json!([{"op": "update", "object": "Account", "id": parent, "fields": {"Name": "Renamed Parent"}}]))
        .await;
    advance(&sb, 86_400.0).await;
    let after = truth(&sb, "Invoice__c").await;
    let formulas = ["Account_Name__c", "Days_Overdue__c"];
    let changed: Vec<&String> =
        after.iter().filter(|(id, r)| formulas.iter().any(|f| r[*f] != before[*id][*f])).map(|(id, _)| id).collect();
    let children = after.values().filter(|r| r["Account__c"].as_str() == Some(parent.as_str())).count();
    assert!(changed.len() > children && children > 0, "the test changes both formulas: {} rows", changed.len());
    for id in &changed {
        assert_eq!(after[*id]["SystemModstamp"], before[*id]["SystemModstamp"], "{id}: a formula moves no stamp");
    }

    // An incremental run reads nothing of it.
    let summary = run(&s).await;
    assert_eq!(summary.flows[0].formulas, None, "not asked for");
    assert_eq!(summary.flows[0].rows, 0, "no record changed: {:#?}", summary.flows[0]);
    let stale =
        s.wh.query_i64(&format!(
            "SELECT COUNT(*) FROM salesforce.invoice__c WHERE account__c = '{parent}' AND account_name__c = 'Renamed \
             Parent'"
        ))
        .await;
    assert_eq!(stale, 0, "the rename is invisible to an incremental read");

    // The refresh, due a second after the last full read: exactly the changed rows are
    // rewritten, and the table equals the source row by row.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let refresh_began = chrono::Utc::now();
    let s = Setup {
        config: config_for(&s.wh, &sb, &flows, "lookback = \"0s\"\nformula_refresh_every = \"1s\"\n"),
        wh: s.wh,
    };
    let summary = run(&s).await;
    let refresh = summary.flows[0].formulas.expect("the formula refresh was due");
    assert_eq!((refresh.read, refresh.changed), (200, changed.len() as u64), "{:#?}", summary.flows[0]);
    assert!(summary.flows[0].timings.unwrap().formulas > Duration::ZERO);
    assert_eq!(check(&sb, &s, "Invoice__c", Expect::Soft).await, 200);
    let refreshed_by_run = s
        .wh
        .query_i64(&format!("SELECT COUNT(*) FROM salesforce.invoice__c WHERE _sluice_run_id = '{}'", summary.run_id))
        .await;
    assert_eq!(refreshed_by_run, changed.len() as i64, "only the rows whose formulas changed are rewritten");
    let stamped = s.wh.query_i64("SELECT COUNT(*) FROM _sluice.flows WHERE last_formula_refresh IS NOT NULL").await;
    assert_eq!(stamped, 1);
    if kind != Kind::RedshiftOnPostgres {
        // `sluice status` says when (Redshift's SQL runs on a PostgreSQL the config does not name).
        let status = sluice::pipeline::status(&s.config).await.unwrap();
        let at = status[0].state.last_formula_refresh.expect("status shows the refresh");
        assert!(at >= refresh_began.trunc_subsecs(0), "{at} before {refresh_began}");
    }

    // Not due again within the interval (an hour here: reading the table back above may
    // take more than a second on some destinations): the next run reads no formulas.
    let s = Setup {
        config: config_for(&s.wh, &sb, &flows, "lookback = \"0s\"\nformula_refresh_every = \"1h\"\n"),
        wh: s.wh,
    };
    let summary = run(&s).await;
    assert_eq!(summary.flows[0].formulas, None);
    sb.shutdown().await;
}

/// What a destination cannot do is refused by its configuration, naming the key and why,
/// before anything runs; what it can do is accepted.
async fn what_a_destination_cannot_do_is_refused_by_its_config(kind: Kind) {
    let sb = start(&[("Account", 5)]).await;
    let wh = Warehouse::new(kind).await;
    // (flow setting, what only a merging destination does)
    let merge_only = [
        "deletes = \"hard\"",
        "history = true",
        "reconcile_every = \"1d\"",
        "formula_refresh_every = \"1d\"",
        "max_delete_ratio = 0.2",
        "write = \"merge\"",
    ];
    for setting in merge_only {
        let text = format!(
            "{}\n{}\n[[flows]]\nobject = \"Account\"\n{setting}\n",
            common::source_toml(&sb.login_url, ""),
            wh.toml
        );
        let loaded = sluice::load_config(&text, "test.toml", &|_| None);
        let key = format!("flows[0].{}", setting.split(' ').next().unwrap());
        // A lake merges, but keeps no history table yet.
        let why = if kind.is_files() {
            Some("append-only")
        } else if kind.is_lake() && setting.starts_with("history") {
            Some("does not keep history tables")
        } else {
            None
        };
        match (why, loaded) {
            (Some(why), Err(errors)) => {
                assert_eq!(errors.len(), 1, "{errors:#?}");
                assert_eq!(errors[0].key, key, "{errors:#?}");
                assert!(errors[0].message.contains(why), "{errors:#?}");
            }
            (None, Ok(_)) => {}
            (why, other) => panic!("{setting} on {kind:?} (refused for: {why:?}): {other:?}"),
        }
    }
    sb.shutdown().await;
}

target::conformance!(
    first_load_matches_the_source_for_every_type,
    updates_inserts_and_two_updates_of_one_row_between_runs,
    many_rows_in_one_second_and_a_late_commit,
    deletes_and_undeletes_arrive,
    a_field_added_at_run_time_becomes_a_column,
    a_rerun_of_the_same_window_changes_nothing,
    sliced_full_load_and_parallel_flows_commit_everything,
    what_a_destination_cannot_do_is_refused_by_its_config,
    formula_changes_arrive_on_the_formula_refresh,
);
