//! DuckDB's memory under sluice's writes: a merge whose changes are spread over a large
//! table needs memory DuckDB cannot spill (the deletes' version information, per 2,048-row
//! vector touched), which `destination/duckdb/memory.rs` adds to `memory_limit` for the
//! transaction. Without it, every incremental run of such a table failed at its limit.

use crate::conformance::{check, config_for, run, some_live_ids, start};
use crate::target::{Kind, Warehouse};
use crate::warehouse::{Expect, truth};
use crate::{common, conformance};

use serde_json::json;

/// Copies of each synced Account stored right after it, so that the originals (the rows
/// the sandbox changes) lie one per DuckDB vector over the whole table.
const COPIES: u64 = 1_000;

/// 2,000 Accounts grown to 2 M rows (977 vectors); every Account changes at the org; the
/// incremental run's merge touches every vector, under `memory_limit = "32MB"` (the least allowed),
/// at which the merge failed without the allowance. The originals then equal the org's rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_changes_in_a_large_duckdb_table_fit_the_memory_limit() {
    let sb = start(&[("Account", 2_000)]).await;
    let mut wh = Warehouse::new(Kind::DuckDb).await;
    wh.toml.push_str("memory_limit = \"32MB\"\n");
    let s = conformance::Setup { config: config_for(&wh, &sb, &["Account"], ""), wh };
    run(&s).await;
    s.wh.execute(&[&format!(
        "CREATE TABLE salesforce.grown AS SELECT a.* REPLACE (CASE WHEN r.i = 0 THEN a.id ELSE \
         printf('001SY%013d', r.i * 1000000000 + a.rowid) END AS id) \
         FROM salesforce.account a, range(0, {COPIES}) r(i) ORDER BY a.rowid, r.i"
    )])
    .await;
    s.wh.execute(&["DROP TABLE salesforce.account", "ALTER TABLE salesforce.grown RENAME TO account"]).await;
    assert_eq!(s.wh.query_i64("SELECT count(*) FROM salesforce.account").await, 2_000_000);

    common::advance(&sb, 5.0).await;
    let live = some_live_ids(&truth(&sb, "Account").await, usize::MAX);
    let ops: Vec<_> = live
        .iter()
        .map(|id| json!({"op": "update", "object": "Account", "id": id, "fields": {"Description": format!("changed {id}")}}))
        .collect();
    assert!(ops.len() > 1_900, "{} live Accounts", ops.len());
    common::mutate(&sb, json!(ops)).await;
    common::advance(&sb, 5.0).await;

    let summary = run(&s).await;
    assert_eq!(summary.flows[0].merged.expect("merged").updated, live.len() as u64, "{summary:#?}");
    // The copies are no Account of the org: without them the table is the org's.
    s.wh.execute(&["DELETE FROM salesforce.account WHERE id LIKE '001SY%'"]).await;
    check(&sb, &s, "Account", Expect::Soft).await;
    sb.shutdown().await;
}
