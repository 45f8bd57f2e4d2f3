//! What only warehouses do, scenario by scenario, against an in-process sandbox over HTTP:
//! hard deletes, reconciliation, history, append, control-table layouts, flow lifecycle,
//! procedures; run once per warehouse (DuckDB, PostgreSQL; see `suite!` at the end), and
//! the deletes, purges, history and full-refresh scenarios on Redshift's SQL on PostgreSQL
//! too. What every destination must do is in `conformance.rs`. After every run the table is compared
//! with the sandbox's ground truth row by row and value by value (`common/warehouse.rs`).

use crate::{common, target, warehouse};

use std::time::Duration;

use crate::conformance::{Setup, check, run, schema_of, setup_with as setup, some_live_ids, start};
use common::{advance, mutate};
use sandbox::Running;
use serde_json::json;
use sluice::config::{Config, Deletes};
use sluice::consolidate::{MergeSpec, procedure};
use sluice::model::Naming;
use sluice::pipeline::{self, FlowStatus, SyncOptions};
use sluice::source::salesforce::SalesforceSource;
use sluice::source::salesforce::describe::Selection;
use target::{Kind, Warehouse, bool_text};
use warehouse::{Expect, assert_matches, truth};

/// `rename` gives fields the columns the user chose and `where` limits the rows: the table
/// holds exactly the org's rows that match, value by value, under the chosen names, and
/// the names the naming rule would have given are not there.
async fn rename_and_where_shape_the_table(kind: Kind) {
    let sb = start(&[("Account", 200)]).await;
    let flow =
        "Account; rename = { Name = \"account_name\", Industry = \"sector\" }; where = \"NumberOfEmployees > 500\"";
    let s = setup(kind, &sb, &[flow], "").await;
    let summary = run(&s).await;
    assert!(summary.flows[0].verify.expect("verified").matches(), "{summary:#?}");
    let source = SalesforceSource::connect(&common::password(&sb.login_url)).await.unwrap();
    let selection = Selection::for_flow(&s.config.flows[0], Naming::SnakeCase);
    let schema = source.describe("Account", &selection).await.unwrap().schema;
    assert_eq!(schema.column_by_source("Name").unwrap().name, "account_name");
    assert_eq!(schema.column_by_source("Industry").unwrap().name, "sector");
    let matching: std::collections::HashMap<String, serde_json::Value> = truth(&sb, "Account")
        .await
        .into_iter()
        .filter(|(_, r)| r["NumberOfEmployees"].as_i64().is_some_and(|n| n > 500))
        .collect();
    assert!(!matching.is_empty() && matching.len() < 200, "the filter keeps some rows: {}", matching.len());
    let rows = warehouse::rows(&s.wh, "salesforce", &schema).await;
    assert_eq!(assert_matches(&rows, &matching, &schema, Expect::Soft), matching.len());
    let derived = "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = 'salesforce' AND \
                   table_name = 'account' AND column_name IN ('name', 'industry')";
    assert_eq!(s.wh.query_i64(derived).await, 0, "no column under the derived names");
    sb.shutdown().await;
}

async fn soft_and_hard_deletes_undelete_and_purge_found_by_reconciliation(kind: Kind) {
    let sb = start(&[("Contact", 150)]).await;
    let soft = setup(kind, &sb, &["Contact"], "deletes = \"soft\"").await;
    let hard = setup(kind, &sb, &["Contact"], "deletes = \"hard\"").await;
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
        let summary = s.wh.sync(&config, &SyncOptions::default()).await.unwrap();
        assert_eq!(summary.flows[0].status, FlowStatus::Ok, "{:#?}", summary.flows[0]);
        assert_eq!(summary.flows[0].reconciled, Some(1), "{:#?}", summary.flows[0]);
    }
    check(&sb, &soft, "Contact", Expect::Soft).await;
    check(&sb, &hard, "Contact", Expect::Hard).await;
    let flagged = soft
        .wh
        .query_i64(&format!("SELECT COUNT(*) FROM salesforce.contact WHERE id = '{}' AND _sluice_deleted", ids[3]))
        .await;
    assert_eq!(flagged, 1, "soft mode keeps the purged row, flagged");
    let back = hard.wh.query_i64(&format!("SELECT COUNT(*) FROM salesforce.contact WHERE id = '{}'", ids[1])).await;
    assert_eq!(back, 1, "the undeleted row is back in hard mode");
    sb.shutdown().await;
}

async fn reconciliation_refuses_to_delete_most_of_a_table(kind: Kind) {
    let sb = start(&[("Lead", 40)]).await;
    let mut s = setup(kind, &sb, &["Lead; max_delete_ratio = 0.5"], "").await;
    run(&s).await;
    s.config.flows[0].settings.reconcile_every = Some(Duration::ZERO);
    let ids = some_live_ids(&truth(&sb, "Lead").await, 30);
    let purges: Vec<_> = ids.iter().map(|id| json!({"op": "purge", "object": "Lead", "id": id})).collect();
    let deletes: Vec<_> = ids.iter().map(|id| json!({"op": "delete", "object": "Lead", "id": id})).collect();
    mutate(&sb, json!(deletes)).await;
    mutate(&sb, json!(purges)).await;
    advance(&sb, 5.0).await;
    let before = s.wh.query_i64("SELECT COUNT(*) FROM salesforce.lead WHERE NOT _sluice_deleted").await;
    let summary = s.wh.sync(&s.config, &SyncOptions::default()).await.unwrap();
    let f = &summary.flows[0];
    assert_eq!(f.status, FlowStatus::Failed, "{f:#?}");
    assert!(f.error.as_deref().unwrap().contains("max_delete_ratio"), "{f:#?}");
    let after = s.wh.query_i64("SELECT COUNT(*) FROM salesforce.lead WHERE NOT _sluice_deleted").await;
    assert_eq!(before, after, "nothing deleted");
    sb.shutdown().await;
}

async fn history_mode_keeps_versions_with_validity_ranges(kind: Kind) {
    let sb = start(&[("Account", 30)]).await;
    let s = setup(kind, &sb, &["Account; history = true"], "").await;
    run(&s).await;
    let id = some_live_ids(&truth(&sb, "Account").await, 1).remove(0);
    for name in ["V2", "V3"] {
        advance(&sb, 5.0).await;
        mutate(&sb, json!([{"op": "update", "object": "Account", "id": id, "fields": {"Name": name}}])).await;
        advance(&sb, 2.0).await;
        run(&s).await;
    }
    assert_eq!(check(&sb, &s, "Account", Expect::Soft).await, 30);
    let d = s.wh.dialect();
    let sql = format!(
        "SELECT name, {}, {}, {}, {} FROM salesforce.account_history WHERE id = '{id}' ORDER BY _sluice_valid_from",
        d.epoch_ms("_sluice_valid_from"),
        d.epoch_ms("_sluice_valid_to"),
        bool_text("_sluice_current"),
        d.epoch_ms("system_modstamp"),
    );
    let int = |v: &Option<String>| v.as_deref().map(|t| t.parse::<i64>().unwrap());
    let versions: Vec<(String, i64, Option<i64>, bool, i64)> =
        s.wh.query(&sql)
            .await
            .iter()
            .map(|r| {
                (
                    r[0].clone().unwrap(),
                    int(&r[1]).unwrap(),
                    int(&r[2]),
                    r[3].as_deref() == Some("true"),
                    int(&r[4]).unwrap(),
                )
            })
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
    let current = s.wh.query_i64("SELECT COUNT(*) FROM salesforce.account_history WHERE _sluice_current").await;
    assert_eq!(current, 30, "one current version per record");
    sb.shutdown().await;
}

/// `setup`, writing into `schema` of an existing warehouse (another config on the same
/// database).
fn setup_in(wh_toml: &str, sb: &Running, schema: &str, flows: &str) -> Config {
    let text = format!(
        "{}\n{wh_toml}schema = \"{schema}\"\n[defaults]\nreconcile_every = \"never\"\n\n[[flows]]\nobject = \"{flows}\"\n",
        common::source_toml(&sb.login_url, ""),
    );
    sluice::load_config(&text, "test.toml", &|_| None).expect("valid config")
}

/// Two configs writing one object into two schemas of one database keep a window each: the
/// second schema's first sync is a full load, not an incremental read from the first
/// schema's window end (which once loaded 8 of 1,979 rows).
async fn two_schemas_of_one_database_keep_a_window_each(kind: Kind) {
    let sb = start(&[("Account", 150)]).await;
    let s = setup(kind, &sb, &["Account"], "").await;
    run(&s).await;
    advance(&sb, 5.0).await;
    mutate(&sb, json!([{"op": "insert", "object": "Account", "count": 4}])).await;
    advance(&sb, 3.0).await;
    let other = setup_in(&s.wh.toml, &sb, "sales_two", "Account");
    let summary = pipeline::sync(&other, &SyncOptions::default(), &pipeline::Quiet).await.expect("the run starts");
    assert_eq!(summary.flows[0].status, FlowStatus::Ok, "{:#?}", summary.flows[0]);
    assert_eq!(summary.flows[0].window.and_then(|w| w.start), None, "a first load of its own");
    let schema = schema_of(&sb, "Account").await;
    let rows = warehouse::rows(&s.wh, "sales_two", &schema).await;
    assert_eq!(assert_matches(&rows, &truth(&sb, "Account").await, &schema, Expect::Soft), 154);
    // The first schema's next run is incremental and brings the same new rows.
    run(&s).await;
    assert_eq!(check(&sb, &s, "Account", Expect::Soft).await, 154);
    let windows = s.wh.query_i64("SELECT COUNT(DISTINCT target_schema) FROM _sluice.flows").await;
    assert_eq!(windows, 2);
    // Each config's status and history show only its own flows and runs.
    let mine = pipeline::history(&other, 10).await.unwrap();
    assert_eq!(mine.len(), 1, "{mine:#?}");
    let status = pipeline::status(&other).await.unwrap();
    assert_eq!(status.len(), 1);
    let live = truth(&sb, "Account").await.values().filter(|r| r["IsDeleted"] != true).count() as u64;
    assert_eq!((status[0].state.table.as_str(), status[0].live_rows), ("account", Some(live)));
    sb.shutdown().await;
}

/// A table dropped or emptied outside sluice is noticed (its committed window stands for
/// rows it no longer holds) and read again in full, with a warning.
async fn a_dropped_or_emptied_table_is_reloaded_in_full(kind: Kind) {
    let sb = start(&[("Account", 120), ("Contact", 60)]).await;
    let s = setup(kind, &sb, &["Account", "Contact"], "").await;
    run(&s).await;
    s.wh.execute(&["DROP TABLE salesforce.account", "DELETE FROM salesforce.contact"]).await;
    advance(&sb, 3.0).await;
    let summary = run(&s).await;
    for (f, what) in summary.flows.iter().zip(["is missing", "is empty"]) {
        assert_eq!(f.window.and_then(|w| w.start), None, "read in full: {f:#?}");
        assert!(f.warnings.iter().any(|w| w.contains(what) && w.contains("reading the object in full")), "{f:#?}");
    }
    assert_eq!(check(&sb, &s, "Account", Expect::Soft).await, 120);
    assert_eq!(check(&sb, &s, "Contact", Expect::Soft).await, 60);
    // An incremental run after that is incremental again.
    advance(&sb, 3.0).await;
    let summary = run(&s).await;
    assert!(summary.flows.iter().all(|f| f.window.is_some_and(|w| w.start.is_some()) && f.warnings.is_empty()));
    sb.shutdown().await;
}

/// A full refresh is the truth at its window end: rows the source no longer returns (purged
/// from the recycle bin, hard-deleted) are removed (hard) or flagged (soft), and a row with a
/// newer stamp but wrong values is replaced by the source's, which an incremental run never
/// does (it must not let an older version win).
/// Damage no incremental run repairs, on two live Accounts (returned): the first is
/// deleted and purged at the source without any run seeing it; the second gets a wrong name
/// in the destination with a stamp newer than the source's. The source clock then moves on.
async fn purge_one_and_damage_another(kind: Kind, sb: &Running, s: &Setup) -> Vec<String> {
    let ids = some_live_ids(&truth(sb, "Account").await, 2);
    mutate(
        sb,
        json!([
            {"op": "delete", "object": "Account", "id": ids[0]},
            {"op": "purge", "object": "Account", "id": ids[0]},
        ]),
    )
    .await;
    // The bundled DuckDB has no time zones: its arithmetic is on plain timestamps.
    let later = match kind {
        Kind::DuckDb => "CAST(CAST(system_modstamp AS TIMESTAMP) + INTERVAL 365 DAY AS TIMESTAMPTZ)",
        Kind::Postgres | Kind::RedshiftOnPostgres => "system_modstamp + INTERVAL '365 days'",
        Kind::Files | Kind::FilesS3 | Kind::Lake | Kind::LakeS3 => {
            unreachable!("a files root or a lake is never edited in place")
        }
    };
    let wrong =
        format!("UPDATE salesforce.account SET name = 'WRONG', system_modstamp = {later} WHERE id = '{}'", ids[1]);
    s.wh.execute(&[&wrong]).await;
    advance(sb, 3.0).await;
    ids
}

/// A flow removed from the config is reported by `status` with what it left behind (its
/// table, its history table, its window) and the statements that drop them; those
/// statements work, after which `status` no longer lists it.
async fn status_reports_what_a_removed_flow_left_behind(kind: Kind) {
    let sb = start(&[("Account", 40), ("Contact", 30)]).await;
    let s = setup(kind, &sb, &["Account", "Contact; history = true"], "").await;
    run(&s).await;
    let mut fewer = s.config.clone();
    fewer.flows.retain(|f| f.object == "Account");
    let status = pipeline::status(&fewer).await.unwrap();
    let row =
        |table: &str| status.iter().find(|r| r.state.table == table).unwrap_or_else(|| panic!("{table}: {status:#?}"));
    assert_eq!(row("account").removed, None);
    let removed = row("contact").removed.clone().expect("Contact is reported as removed");
    assert_eq!(removed.tables, ["\"salesforce\".\"contact\"", "\"salesforce\".\"contact_history\""]);
    assert_eq!(removed.drop_sql.len(), 3, "{removed:#?}");
    let statements: Vec<&str> = removed.drop_sql.iter().map(String::as_str).collect();
    s.wh.execute(&statements).await;
    let status = pipeline::status(&fewer).await.unwrap();
    assert_eq!(status.iter().map(|r| r.state.table.as_str()).collect::<Vec<_>>(), ["account"], "{status:#?}");
    let tables = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'salesforce' AND \
                  table_name LIKE 'contact%'";
    assert_eq!(s.wh.query_i64(tables).await, 0);
    // Account still syncs as before.
    let summary = pipeline::sync(&fewer, &SyncOptions::default(), &pipeline::Quiet).await.unwrap();
    assert_eq!(summary.status, pipeline::RunStatus::Ok, "{summary:#?}");
    sb.shutdown().await;
}

/// A flow whose `fields`, `exclude`, `rename` or `mask` changed is read in full, with a
/// warning: the table holds every row under the new selection (here, a renamed column
/// filled for every row), not just the rows changed since the last run.
async fn a_changed_selection_reloads_the_flow(kind: Kind) {
    let sb = start(&[("Account", 80)]).await;
    let s = setup(kind, &sb, &["Account"], "").await;
    run(&s).await;
    advance(&sb, 3.0).await;
    let mut renamed = s.config.clone();
    renamed.flows[0].rename = vec![("Name".into(), "account_name".into())];
    let summary = pipeline::sync(&renamed, &SyncOptions::default(), &pipeline::Quiet).await.expect("the run starts");
    let f = &summary.flows[0];
    assert_eq!(f.status, FlowStatus::Ok, "{f:#?}");
    assert!(f.window.expect("a window").is_full(), "read in full: {f:#?}");
    assert!(f.warnings.iter().any(|w| w.contains("rename or mask changed")), "{f:#?}");
    let source = SalesforceSource::connect(&common::password(&sb.login_url)).await.unwrap();
    let schema =
        source.describe("Account", &Selection::for_flow(&renamed.flows[0], Naming::SnakeCase)).await.unwrap().schema;
    let rows = warehouse::rows(&s.wh, "salesforce", &schema).await;
    assert_eq!(assert_matches(&rows, &truth(&sb, "Account").await, &schema, Expect::Soft), 80);
    // Unchanged since: the next run is incremental again.
    advance(&sb, 3.0).await;
    let summary = pipeline::sync(&renamed, &SyncOptions::default(), &pipeline::Quiet).await.unwrap();
    assert!(!summary.flows[0].window.expect("a window").is_full(), "{summary:#?}");
    sb.shutdown().await;
}

/// Control tables of older layouts (2: before flows recorded their selection; 3: their
/// write mode; 5: their last formula refresh) are upgraded in place on the next run: the
/// columns are added, the layout says the current one, and the windows stay (the run is
/// incremental, nothing is reloaded for want of a recorded selection).
async fn control_tables_of_older_layouts_are_upgraded_keeping_the_windows(kind: Kind) {
    let sb = start(&[("Account", 50)]).await;
    let s = setup(kind, &sb, &["Account"], "").await;
    run(&s).await;
    // Layout 5 had no last_formula_refresh; 3 had no write_mode either; 2 no
    // selection_fingerprint either.
    let layouts = [
        (5, &["last_formula_refresh"][..]),
        (3, &["last_formula_refresh", "write_mode"][..]),
        (2, &["last_formula_refresh", "write_mode", "selection_fingerprint"][..]),
    ];
    for (from, dropped) in layouts {
        let mut statements: Vec<String> =
            dropped.iter().map(|c| format!("ALTER TABLE _sluice.flows DROP COLUMN {c}")).collect();
        statements.push(format!("UPDATE _sluice.layout SET version = {from}"));
        s.wh.execute(&statements.iter().map(String::as_str).collect::<Vec<_>>()).await;
        advance(&sb, 3.0).await;
        let summary = run(&s).await;
        assert!(!summary.flows[0].window.expect("a window").is_full(), "incremental after {from}: {summary:#?}");
        let current = sluice::consolidate::LAYOUT_VERSION;
        assert_eq!(s.wh.query_i64("SELECT MAX(version) FROM _sluice.layout").await, current);
        let recorded =
            "SELECT COUNT(*) FROM _sluice.flows WHERE selection_fingerprint IS NOT NULL AND write_mode = 'merge'";
        assert_eq!(s.wh.query_i64(recorded).await, 1, "the run recorded its selection and write mode");
        check(&sb, &s, "Account", Expect::Soft).await;
    }
    sb.shutdown().await;
}

/// `sluice reset --objects Account` forgets that flow's committed window and reloads it in
/// full: a wrong row that incremental runs never touch (its stamp is newer than the
/// source's) is repaired, a purge no query reports is applied, and the other flow keeps its
/// window.
async fn reset_forgets_a_flow_and_reloads_it_in_full(kind: Kind) {
    let sb = start(&[("Account", 100), ("Contact", 60)]).await;
    let s = setup(kind, &sb, &["Account", "Contact"], "").await;
    run(&s).await;
    let ids = purge_one_and_damage_another(kind, &sb, &s).await;
    let window = |table: &str| {
        format!("SELECT {} FROM _sluice.flows WHERE target_table = '{table}'", s.wh.dialect().epoch_ms("window_end"))
    };
    let contact_before = s.wh.query_i64(&window("contact")).await;

    let opts = SyncOptions { objects: Some(vec!["account".into()]), reset: true, ..SyncOptions::default() };
    let summary = pipeline::sync(&s.config, &opts, &pipeline::Quiet).await.expect("the run starts");
    assert_eq!(summary.flows.len(), 1, "only the reset flow runs: {summary:#?}");
    let f = &summary.flows[0];
    assert_eq!(f.status, FlowStatus::Ok, "{f:#?}");
    assert!(f.window.expect("a window").is_full(), "read in full: {f:#?}");
    check(&sb, &s, "Account", Expect::Soft).await;
    let name = format!("SELECT name FROM salesforce.account WHERE id = '{}'", ids[1]);
    assert_ne!(s.wh.query(&name).await, [[Some("WRONG".to_owned())]], "repaired");
    let flagged = format!("SELECT COUNT(*) FROM salesforce.account WHERE id = '{}' AND _sluice_deleted", ids[0]);
    assert_eq!(s.wh.query_i64(&flagged).await, 1, "the purged row is flagged");
    assert_eq!(s.wh.query_i64(&window("contact")).await, contact_before, "Contact keeps its window");
    sb.shutdown().await;
}

async fn a_full_refresh_removes_what_the_source_lost_and_repairs_wrong_rows(kind: Kind) {
    for deletes in ["soft", "hard"] {
        let sb = start(&[("Account", 120)]).await;
        let s = setup(kind, &sb, &[&format!("Account; deletes = \"{deletes}\"")], "").await;
        let expect = if deletes == "soft" { Expect::Soft } else { Expect::Hard };
        run(&s).await;
        let ids = purge_one_and_damage_another(kind, &sb, &s).await;
        run(&s).await;
        let name = format!("SELECT name FROM salesforce.account WHERE id = '{}'", ids[1]);
        assert_eq!(s.wh.query(&name).await, [[Some("WRONG".to_owned())]], "an incremental run never regresses a row");
        let gone = format!("SELECT COUNT(*) FROM salesforce.account WHERE id = '{}'", ids[0]);
        assert_eq!(s.wh.query_i64(&gone).await, 1, "no incremental query sees a purge");

        let opts = SyncOptions { full_refresh: true, ..SyncOptions::default() };
        let summary = s.wh.sync(&s.config, &opts).await.expect("the run starts");
        let f = &summary.flows[0];
        assert_eq!(f.status, FlowStatus::Ok, "{f:#?}");
        assert_eq!(f.merged.map(|m| m.deleted), Some(1), "{f:#?}");
        check(&sb, &s, "Account", expect).await;
        assert_ne!(s.wh.query(&name).await, [[Some("WRONG".to_owned())]], "{deletes}: repaired");
        match expect {
            Expect::Hard => assert_eq!(s.wh.query_i64(&gone).await, 0, "removed"),
            Expect::Soft => {
                let flagged = format!("{gone} AND _sluice_deleted");
                assert_eq!(s.wh.query_i64(&flagged).await, 1, "flagged");
            }
        }
        // Guarded by max_delete_ratio: a source that lost most rows is not mirrored blindly.
        let live = match expect {
            Expect::Hard => "SELECT COUNT(*) FROM salesforce.account",
            Expect::Soft => "SELECT COUNT(*) FROM salesforce.account WHERE NOT _sluice_deleted",
        };
        let before = s.wh.query_i64(live).await;
        let victims = some_live_ids(&truth(&sb, "Account").await, 80);
        let ops: Vec<_> = victims
            .iter()
            .flat_map(|id| {
                [
                    json!({"op": "delete", "object": "Account", "id": id}),
                    json!({"op": "purge", "object": "Account", "id": id}),
                ]
            })
            .collect();
        mutate(&sb, json!(ops)).await;
        advance(&sb, 3.0).await;
        let summary = s.wh.sync(&s.config, &opts).await.expect("the run starts");
        let f = &summary.flows[0];
        assert_eq!(f.status, FlowStatus::Failed, "{f:#?}");
        assert!(f.error.as_deref().is_some_and(|e| e.contains("max_delete_ratio")), "{f:#?}");
        assert_eq!(s.wh.query_i64(live).await, before, "{deletes}: nothing removed");
        sb.shutdown().await;
    }
}

/// Control tables of the first layout (keyed by object, before `_sluice.layout` existed)
/// are upgraded by the first run that meets them, in one transaction, keeping every flow's
/// window: the run after the upgrade is incremental, not a reload.
async fn control_tables_of_the_first_layout_are_migrated_keeping_the_windows(kind: Kind) {
    let sb = start(&[("Account", 100)]).await;
    let s = setup(kind, &sb, &["Account"], "").await;
    run(&s).await;
    let keep =
        |cols: &str, from: &str, to: &str| format!("CREATE TABLE _sluice.{to} AS SELECT {cols} FROM _sluice.{from}");
    let flows = "flow, object, window_end, last_full_refresh, last_reconciliation, schema_fingerprint, updated_at";
    let runs = "run_id, trigger, started_at, finished_at, status, config_fingerprint";
    let flow_runs = "run_id, flow, phase, attempts, window_start, window_end, rows_extracted, rows_inserted, \
                     rows_updated, rows_deleted, api_calls, bytes, error, finished_at";
    let v1 = [
        keep(flows, "flows", "old_flows"),
        keep(runs, "runs", "old_runs"),
        keep(flow_runs, "flow_runs", "old_flow_runs"),
        "DROP TABLE _sluice.flows".into(),
        "DROP TABLE _sluice.runs".into(),
        "DROP TABLE _sluice.flow_runs".into(),
        "DROP TABLE _sluice.layout".into(),
        "CREATE TABLE _sluice.flows (flow TEXT, object TEXT, window_end TIMESTAMPTZ, last_full_refresh TIMESTAMPTZ, \
         last_reconciliation TIMESTAMPTZ, schema_fingerprint TEXT, updated_at TIMESTAMPTZ, PRIMARY KEY (flow))"
            .into(),
        "CREATE TABLE _sluice.runs (run_id TEXT, trigger TEXT, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, \
         status TEXT, config_fingerprint TEXT, PRIMARY KEY (run_id))"
            .into(),
        "CREATE TABLE _sluice.flow_runs (run_id TEXT, flow TEXT, phase TEXT, attempts INTEGER, window_start \
         TIMESTAMPTZ, window_end TIMESTAMPTZ, rows_extracted BIGINT, rows_inserted BIGINT, rows_updated BIGINT, \
         rows_deleted BIGINT, api_calls BIGINT, bytes BIGINT, error TEXT, finished_at TIMESTAMPTZ, PRIMARY KEY \
         (run_id, flow))"
            .into(),
        "INSERT INTO _sluice.flows SELECT * FROM _sluice.old_flows".into(),
        "INSERT INTO _sluice.runs SELECT * FROM _sluice.old_runs".into(),
        "INSERT INTO _sluice.flow_runs SELECT * FROM _sluice.old_flow_runs".into(),
        "DROP TABLE _sluice.old_flows".into(),
        "DROP TABLE _sluice.old_runs".into(),
        "DROP TABLE _sluice.old_flow_runs".into(),
    ];
    let v1: Vec<&str> = v1.iter().map(String::as_str).collect();
    s.wh.execute(&v1).await;
    let end = s.wh.query("SELECT CAST(window_end AS VARCHAR) FROM _sluice.flows").await;
    advance(&sb, 5.0).await;
    mutate(&sb, json!([{"op": "insert", "object": "Account", "count": 3}])).await;
    advance(&sb, 3.0).await;
    let summary = run(&s).await;
    let f = &summary.flows[0];
    assert!(f.window.is_some_and(|w| w.start.is_some()), "incremental after the upgrade: {f:#?}");
    assert_eq!(f.merged.map(|m| m.inserted), Some(3), "{f:#?}");
    assert_eq!(check(&sb, &s, "Account", Expect::Soft).await, 103);
    let keyed = "SELECT COUNT(*) FROM _sluice.flows WHERE target_schema = 'salesforce' AND target_table = 'account'";
    assert_eq!(s.wh.query_i64(keyed).await, 1);
    let current = sluice::consolidate::LAYOUT_VERSION;
    assert_eq!(
        s.wh.query_i64("SELECT MAX(version) FROM _sluice.layout").await,
        current,
        "straight to the current layout"
    );
    let history = pipeline::history(&s.config, 10).await.unwrap();
    assert_eq!(history.len(), 2, "the run before the upgrade is kept: {history:#?}");
    assert_ne!(s.wh.query("SELECT CAST(window_end AS VARCHAR) FROM _sluice.flows").await, end, "the window moved");
    sb.shutdown().await;
}

/// `write = "append"`: the table is an event log. Every version read is one row (a deleted
/// version included, with the source's `is_deleted`), a re-read of the same versions adds
/// nothing, and the newest version of each Id equals the org row by row. The flow's
/// neighbour still merges in the same run, and switching the flow to merge afterwards is
/// refused with what to do, leaving the log as it was.
async fn append_keeps_every_version_read_once(kind: Kind) {
    let sb = start(&[("Account", 100), ("Contact", 40)]).await;
    let s = setup(kind, &sb, &["Account; write = \"append\"", "Contact"], "").await;
    let summary = run(&s).await;
    let before = truth(&sb, "Account").await;
    let n = before.len() as i64;
    assert_eq!(summary.flows[0].merged.map(|m| m.inserted), Some(n as u64), "{:#?}", summary.flows[0]);
    let ids = some_live_ids(&before, 3);
    advance(&sb, 5.0).await;
    mutate(
        &sb,
        json!([
            {"op": "update", "object": "Account", "id": ids[0], "fields": {"Name": "First Name"}},
            {"op": "update", "object": "Account", "id": ids[1], "fields": {"NumberOfEmployees": 7}},
            {"op": "delete", "object": "Account", "id": ids[2]},
            {"op": "insert", "object": "Account", "count": 4},
        ]),
    )
    .await;
    advance(&sb, 3.0).await;
    mutate(&sb, json!([{"op": "update", "object": "Account", "id": ids[0], "fields": {"Name": "Second Name"}}])).await;
    advance(&sb, 2.0).await;
    let summary = run(&s).await;
    let f = &summary.flows[0];
    // ids[0] twice between runs is one version read; ids[1], the deleted ids[2], 4 new.
    assert_eq!(f.merged.map(|m| (m.inserted, m.updated, m.deleted)), Some((7, 0, 0)), "{f:#?}");
    assert!(f.verify.expect("verified").matches(), "{f:#?}");
    let count = |sql: &'static str| s.wh.query_i64(sql);
    assert_eq!(count("SELECT COUNT(*) FROM salesforce.account").await, n + 7);
    assert_eq!(count("SELECT COUNT(DISTINCT id) FROM salesforce.account").await, n + 4);
    let versions =
        s.wh.query(&format!("SELECT name FROM salesforce.account WHERE id = '{}' ORDER BY system_modstamp", ids[0]))
            .await;
    assert_eq!(versions.len(), 2, "the first read and the newest: {versions:?}");
    assert_eq!(versions[1], [Some("Second Name".to_owned())]);
    let deleted = format!(
        "SELECT {} FROM salesforce.account WHERE id = '{}' ORDER BY system_modstamp",
        bool_text("is_deleted"),
        ids[2]
    );
    assert_eq!(s.wh.query(&deleted).await, [[Some("false".to_owned())], [Some("true".to_owned())]]);
    // The newest version of each Id is the org's row.
    s.wh.execute(&[
        "CREATE VIEW salesforce.account_newest AS SELECT *, COALESCE(is_deleted, FALSE) AS _sluice_deleted FROM \
         (SELECT *, ROW_NUMBER() OVER (PARTITION BY id ORDER BY system_modstamp DESC, _sluice_synced_at DESC) AS rn \
         FROM salesforce.account) AS v WHERE rn = 1",
    ])
    .await;
    let mut newest = schema_of(&sb, "Account").await;
    newest.table = "account_newest".into();
    let rows = warehouse::rows(&s.wh, "salesforce", &newest).await;
    assert_eq!(assert_matches(&rows, &truth(&sb, "Account").await, &newest, Expect::Soft), n as usize + 4);
    let contacts = truth(&sb, "Contact").await.len();
    assert_eq!(check(&sb, &s, "Contact", Expect::Soft).await, contacts, "the merge flow beside it");

    // The look-back re-reads the last versions: nothing is appended twice.
    advance(&sb, 2.0).await;
    let summary = run(&s).await;
    assert!(summary.flows[0].rows > 0, "the look-back read something: {:#?}", summary.flows[0]);
    assert_eq!(summary.flows[0].merged.map(|m| m.inserted), Some(0), "{:#?}", summary.flows[0]);
    assert_eq!(count("SELECT COUNT(*) FROM salesforce.account").await, n + 7);

    // The same table cannot start merging.
    let text = common::source_toml(&sb.login_url, "") + "\n" + &s.wh.toml + "\n[[flows]]\nobject = \"Account\"\n";
    let merge = sluice::load_config(&text, "test.toml", &|_| None).expect("valid config");
    let summary = pipeline::sync(&merge, &SyncOptions::default(), &pipeline::Quiet).await.expect("the run starts");
    let f = &summary.flows[0];
    assert_eq!(f.status, FlowStatus::Failed, "{f:#?}");
    let error = f.error.as_deref().unwrap_or_default();
    assert!(error.contains("was written with write = \"append\"") && error.contains("sluice reset"), "{error}");
    assert_eq!(count("SELECT COUNT(*) FROM salesforce.account").await, n + 7, "the log is untouched");
    sb.shutdown().await;
}

target::suite!(
    append_keeps_every_version_read_once,
    a_changed_selection_reloads_the_flow,
    control_tables_of_older_layouts_are_upgraded_keeping_the_windows,
    status_reports_what_a_removed_flow_left_behind,
    reset_forgets_a_flow_and_reloads_it_in_full,
    rename_and_where_shape_the_table,
    control_tables_of_the_first_layout_are_migrated_keeping_the_windows,
    two_schemas_of_one_database_keep_a_window_each,
    a_dropped_or_emptied_table_is_reloaded_in_full,
    a_full_refresh_removes_what_the_source_lost_and_repairs_wrong_rows,
    soft_and_hard_deletes_undelete_and_purge_found_by_reconciliation,
    reconciliation_refuses_to_delete_most_of_a_table,
    history_mode_keeps_versions_with_validity_ranges,
);

// The scenarios of deletes, purges, history and full refresh, which the conformance suite
// does not hold (a files root refuses them), on Redshift's SQL too (run by the pipeline on
// PostgreSQL, see `target::AsRedshift`).
target::on_kind!(
    redshift_on_postgres,
    RedshiftOnPostgres,
    soft_and_hard_deletes_undelete_and_purge_found_by_reconciliation,
    reconciliation_refuses_to_delete_most_of_a_table,
    history_mode_keeps_versions_with_validity_ranges,
    a_full_refresh_removes_what_the_source_lost_and_repairs_wrong_rows,
);

/// `consolidation = "procedure"` (PostgreSQL only): a sync stages and hands the load off
/// whole (the flow's `slice` is not used: a full load is one hand-off); the warehouse's
/// `CALL` consolidates it, a second `CALL` does nothing, and a hand-off nobody called is
/// superseded by the next sync without losing a change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_procedure_consolidates_when_called_and_only_once() {
    let sb = start(&[("Account", 120)]).await;
    let wh = Warehouse::new(Kind::Postgres).await;
    let text = format!(
        "{}\n{}consolidation = \"procedure\"\n[defaults]\nreconcile_every = \"never\"\n\n[[flows]]\nobject = \
         \"Account\"\nslice = \"365d\"\n",
        common::source_toml(&sb.login_url, ""),
        wh.toml
    );
    let s = Setup { config: sluice::load_config(&text, "test.toml", &|_| None).expect("valid config"), wh };
    let call = "CALL \"salesforce\".\"sluice_consolidate_account\"()";
    let hand_off = |s: &Setup| {
        let config = s.config.clone();
        async move {
            let summary =
                pipeline::sync(&config, &SyncOptions::default(), &pipeline::Quiet).await.expect("the run starts");
            let f = summary.flows[0].clone();
            assert_eq!(f.status, FlowStatus::HandedOff, "{f:#?}");
            assert_eq!(f.handed_off.as_deref(), Some(call));
            assert!(f.merged.is_none() && f.verify.is_none(), "{f:#?}");
            f
        }
    };
    let window_end = "SELECT COUNT(*) FROM _sluice.flows WHERE window_end IS NOT NULL";
    let consolidated = "SELECT COUNT(*) FROM _sluice.flow_runs WHERE phase = 'consolidated'";

    // Staged, not consolidated: no table, no window end.
    assert_eq!(hand_off(&s).await.rows, 120);
    let tables = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'salesforce' AND table_name = \
                  'account'";
    assert_eq!(s.wh.query_i64(tables).await, 0);
    assert_eq!(s.wh.query_i64(window_end).await, 0);

    s.wh.query(call).await;
    assert_eq!(check(&sb, &s, "Account", Expect::Soft).await, 120);
    assert_eq!(s.wh.query_i64(consolidated).await, 1);
    let schema = schema_of(&sb, "Account").await;
    let before = warehouse::rows(&s.wh, "salesforce", &schema).await;
    // A second CALL finds its load consolidated and changes nothing.
    s.wh.query(call).await;
    let after = warehouse::rows(&s.wh, "salesforce", &schema).await;
    assert_eq!(before.len(), after.len());
    for (id, row) in &before {
        assert_eq!(row.values, after[id].values, "{id}");
    }
    assert_eq!(s.wh.query_i64(consolidated).await, 1);

    // Changes, a hand-off nobody calls, more changes, another hand-off: one CALL of the
    // latest brings every change of both.
    let ids = some_live_ids(&truth(&sb, "Account").await, 2);
    advance(&sb, 5.0).await;
    mutate(
        &sb,
        json!([
            {"op": "update", "object": "Account", "id": ids[0], "fields": {"Name": "Missed Hand-off"}},
            {"op": "insert", "object": "Account", "count": 3},
        ]),
    )
    .await;
    advance(&sb, 3.0).await;
    hand_off(&s).await;
    // What every sync does before it touches staging: the procedure becomes idle, so a
    // CALL between then and the next hand-off changes nothing.
    let mut spec_schema = schema_of(&sb, "Account").await;
    spec_schema.table = "account".into();
    let spec = MergeSpec::new(&spec_schema, "salesforce", Deletes::Soft, false, "r", chrono::Utc::now()).unwrap();
    for statement in procedure::idle(s.wh.dialect(), &spec, "Account").unwrap() {
        s.wh.query(&statement).await;
    }
    s.wh.query(call).await;
    assert_eq!(warehouse::rows(&s.wh, "salesforce", &schema).await.len(), 120, "the idle procedure did nothing");
    mutate(&sb, json!([{"op": "delete", "object": "Account", "id": ids[1]}])).await;
    advance(&sb, 3.0).await;
    let second = hand_off(&s).await;
    assert!(second.rows >= 5, "the second sync read from the unmoved window end again: {second:#?}");
    s.wh.query(call).await;
    assert_eq!(check(&sb, &s, "Account", Expect::Soft).await, 123);
    let name = s.wh.query(&format!("SELECT name FROM salesforce.account WHERE id = '{}'", ids[0])).await;
    assert_eq!(name, [[Some("Missed Hand-off".to_owned())]]);
    assert_eq!(s.wh.query_i64(consolidated).await, 2, "the superseded hand-off never ran");

    // Back to consolidation = "run": the first sync drops the procedure before staging.
    let text = text.replace("consolidation = \"procedure\"\n", "");
    let config = sluice::load_config(&text, "test.toml", &|_| None).expect("valid config");
    let summary = pipeline::sync(&config, &SyncOptions::default(), &pipeline::Quiet).await.expect("the run starts");
    assert_eq!(summary.flows[0].status, FlowStatus::Ok, "{:#?}", summary.flows[0]);
    let procs = "SELECT COUNT(*) FROM pg_proc WHERE proname = 'sluice_consolidate_account'";
    assert_eq!(s.wh.query_i64(procs).await, 0, "no procedure is left to commit a later load");
    sb.shutdown().await;
}
