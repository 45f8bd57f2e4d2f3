//! The control tables (`_sluice.flows`, `_sluice.runs`, `_sluice.flow_runs`; DESIGN "Control
//! tables") and the writes that commit a flow's new window end and its flow-run row in the
//! same transaction as the data.
//!
//! Upserts are written as `UPDATE` then `INSERT ... WHERE NOT EXISTS` (flows) and `DELETE`
//! then `INSERT` (flow-run rows): the one form all three dialects share, Redshift having no
//! `ON CONFLICT`. A run holds the flow's lock, so nothing interleaves between the two.

use super::merge::{changes_name, count_exprs};
use super::{Dialect, FlowRun, MergeSpec, TableRef};
use crate::model::{SluiceType, Timestamp};

/// The control schema.
pub const CONTROL_SCHEMA: &str = "_sluice";

fn table(name: &str) -> TableRef {
    TableRef::new(CONTROL_SCHEMA, name)
}

/// `CREATE SCHEMA` and `CREATE TABLE IF NOT EXISTS` for the three control tables.
pub fn control_ddl(dialect: Dialect) -> Vec<String> {
    use SluiceType::{Int, Long, Text, Timestamp};
    let create = |name: &str, cols: &[(&str, SluiceType)], key: &[&str]| {
        let mut defs: Vec<String> =
            cols.iter().map(|(n, ty)| format!("{} {}", dialect.quote_ident(n), dialect.sql_type(*ty))).collect();
        defs.push(format!("PRIMARY KEY ({})", super::ident_list(dialect, key)));
        format!("CREATE TABLE IF NOT EXISTS {} (\n  {}\n)", dialect.table(&table(name)), defs.join(",\n  "))
    };
    vec![
        format!("CREATE SCHEMA IF NOT EXISTS {}", dialect.quote_ident(CONTROL_SCHEMA)),
        create(
            "flows",
            &[
                ("flow", Text),
                ("object", Text),
                ("window_end", Timestamp),
                ("last_full_refresh", Timestamp),
                ("last_reconciliation", Timestamp),
                ("schema_fingerprint", Text),
                ("updated_at", Timestamp),
            ],
            &["flow"],
        ),
        create(
            "runs",
            &[
                ("run_id", Text),
                ("trigger", Text),
                ("started_at", Timestamp),
                ("finished_at", Timestamp),
                ("status", Text),
                ("config_fingerprint", Text),
            ],
            &["run_id"],
        ),
        create(
            "flow_runs",
            &[
                ("run_id", Text),
                ("flow", Text),
                ("phase", Text),
                ("attempts", Int),
                ("window_start", Timestamp),
                ("window_end", Timestamp),
                ("rows_extracted", Long),
                ("rows_inserted", Long),
                ("rows_updated", Long),
                ("rows_deleted", Long),
                ("api_calls", Long),
                ("bytes", Long),
                ("error", Text),
                ("finished_at", Timestamp),
            ],
            &["run_id", "flow"],
        ),
    ]
}

/// The statements that commit the flow: its new window end in `_sluice.flows`, and the
/// flow-run row with the merge counts computed from the changes table (so they must run
/// before it is dropped).
pub fn control_writes(dialect: Dialect, spec: &MergeSpec, run: &FlowRun) -> Vec<String> {
    let d = dialect;
    let q = |n: &str| d.quote_ident(n);
    let lit = |s: &str| d.quote_literal(s);
    let flows = d.table(&table("flows"));
    let flow_runs = d.table(&table("flow_runs"));
    let now = d.timestamp_literal(spec.synced_at);
    let window_end = d.timestamp_literal(run.window.end);
    let window_start = d.timestamp_or_null(run.window.start);
    let flow = lit(&run.flow);

    let mut set = vec![
        format!("{} = {}", q("object"), lit(&run.object)),
        format!("{} = {window_end}", q("window_end")),
        format!("{} = {}", q("schema_fingerprint"), lit(&run.schema_fingerprint)),
        format!("{} = {now}", q("updated_at")),
    ];
    if run.full_refresh {
        set.push(format!("{} = {now}", q("last_full_refresh")));
    }
    let update_flow = format!("UPDATE {flows} SET {}\nWHERE {} = {flow}", set.join(", "), q("flow"));
    let insert_flow = format!(
        "INSERT INTO {flows} ({}, {}, {}, {}, {}, {})\nSELECT {flow}, {}, {window_end}, {}, {}, {now}\nWHERE NOT \
         EXISTS (SELECT 1 FROM {flows} WHERE {} = {flow})",
        q("flow"),
        q("object"),
        q("window_end"),
        q("last_full_refresh"),
        q("schema_fingerprint"),
        q("updated_at"),
        lit(&run.object),
        if run.full_refresh { now.clone() } else { d.null_of(SluiceType::Timestamp) },
        lit(&run.schema_fingerprint),
        q("flow"),
    );

    let delete_run = format!("DELETE FROM {flow_runs} WHERE {}", run_key(d, &spec.run_id, &run.flow));
    let [ins, upd, del] = count_exprs(d);
    let cols = [
        "run_id",
        "flow",
        "phase",
        "attempts",
        "window_start",
        "window_end",
        "rows_extracted",
        "rows_inserted",
        "rows_updated",
        "rows_deleted",
        "api_calls",
        "bytes",
        "error",
        "finished_at",
    ];
    let values = [
        lit(&spec.run_id),
        flow.clone(),
        lit("consolidated"),
        run.attempts.to_string(),
        window_start,
        window_end.clone(),
        run.rows_extracted.to_string(),
        ins,
        upd,
        del,
        run.api_calls.to_string(),
        run.bytes.to_string(),
        d.null_of(SluiceType::Text),
        now.clone(),
    ];
    let insert_run = format!(
        "INSERT INTO {flow_runs} ({})\nSELECT {}\nFROM {} AS {}",
        super::ident_list(d, &cols),
        values.join(", "),
        q(&changes_name(spec)),
        q("s"),
    );
    vec![update_flow, insert_flow, delete_run, insert_run]
}

/// A run's row in `_sluice.runs` as it starts: status `running`. A run that dies keeps this
/// status; the next run, holding the lock, marks it `abandoned` ([`abandon_runs`]).
pub fn run_started(
    dialect: Dialect,
    run_id: &str,
    trigger: &str,
    started_at: Timestamp,
    config_fp: &str,
) -> Vec<String> {
    let d = dialect;
    let runs = d.table(&table("runs"));
    vec![
        format!("DELETE FROM {runs} WHERE {} = {}", d.quote_ident("run_id"), d.quote_literal(run_id)),
        format!(
            "INSERT INTO {runs} ({}) VALUES ({}, {}, {}, {}, {}, {})",
            super::ident_list(d, &["run_id", "trigger", "started_at", "finished_at", "status", "config_fingerprint"]),
            d.quote_literal(run_id),
            d.quote_literal(trigger),
            d.timestamp_literal(started_at),
            d.null_of(SluiceType::Timestamp),
            d.quote_literal("running"),
            d.quote_literal(config_fp),
        ),
    ]
}

/// Runs still `running` when a new run takes the lock died without finishing.
pub fn abandon_runs(dialect: Dialect) -> String {
    let d = dialect;
    let running = format!("{} = {}", d.quote_ident("status"), d.quote_literal("running"));
    update(d, "runs", &[("status", d.quote_literal("abandoned"))], &running)
}

/// The run's final status (`ok`, `partial`, `failed`).
pub fn run_finished(dialect: Dialect, run_id: &str, status: &str, finished_at: Timestamp) -> String {
    let d = dialect;
    let set = [("status", d.quote_literal(status)), ("finished_at", d.timestamp_literal(finished_at))];
    update(d, "runs", &set, &format!("{} = {}", d.quote_ident("run_id"), d.quote_literal(run_id)))
}

/// Moves a flow-run row to a later phase (`verified`, `done`).
pub fn flow_phase(dialect: Dialect, run_id: &str, flow: &str, phase: &str) -> String {
    let d = dialect;
    update(d, "flow_runs", &[("phase", d.quote_literal(phase))], &run_key(d, run_id, flow))
}

/// Records a flow's failure in its flow-run row: phase `failed` and the error. A row that a
/// committed consolidation wrote keeps its counts (the failure came later, in reconciliation
/// or verification); otherwise a row is inserted. The window end is not touched.
pub fn flow_failed(dialect: Dialect, run_id: &str, flow: &str, error: &str, at: Timestamp) -> Vec<String> {
    let d = dialect;
    let flow_runs = d.table(&table("flow_runs"));
    let key = run_key(d, run_id, flow);
    vec![
        update(
            d,
            "flow_runs",
            &[
                ("phase", d.quote_literal("failed")),
                ("error", d.quote_literal(error)),
                ("finished_at", d.timestamp_literal(at)),
            ],
            &key,
        ),
        format!(
            "INSERT INTO {flow_runs} ({})\nSELECT {}, {}, {}, {}, {}\nWHERE NOT EXISTS (SELECT 1 FROM {flow_runs} WHERE {key})",
            super::ident_list(d, &["run_id", "flow", "phase", "error", "finished_at"]),
            d.quote_literal(run_id),
            d.quote_literal(flow),
            d.quote_literal("failed"),
            d.quote_literal(error),
            d.timestamp_literal(at),
        ),
    ]
}

/// The flow-run row of a load handed to its stored procedure (see `procedure`): phase
/// `handed_off`, the window and what was read; the procedure's consolidation rewrites it
/// with the merge counts.
pub fn flow_handed_off(dialect: Dialect, run_id: &str, run: &FlowRun, at: Timestamp) -> Vec<String> {
    let d = dialect;
    let flow_runs = d.table(&table("flow_runs"));
    let cols = [
        "run_id",
        "flow",
        "phase",
        "attempts",
        "window_start",
        "window_end",
        "rows_extracted",
        "api_calls",
        "bytes",
        "finished_at",
    ];
    let values = [
        d.quote_literal(run_id),
        d.quote_literal(&run.flow),
        d.quote_literal(super::procedure::HANDED_OFF),
        run.attempts.to_string(),
        d.timestamp_or_null(run.window.start),
        d.timestamp_literal(run.window.end),
        run.rows_extracted.to_string(),
        run.api_calls.to_string(),
        run.bytes.to_string(),
        d.timestamp_literal(at),
    ];
    vec![
        format!("DELETE FROM {flow_runs} WHERE {}", run_key(d, run_id, &run.flow)),
        format!("INSERT INTO {flow_runs} ({}) VALUES ({})", super::ident_list(d, &cols), values.join(", ")),
    ]
}

/// `SELECT 1` when the flow-run row of `run_id` and `flow` is still waiting for its
/// procedure ([`flow_handed_off`]).
pub(super) fn handed_off_query(d: Dialect, run_id: &str, flow: &str) -> String {
    format!(
        "SELECT 1 FROM {} WHERE {} AND {} = {}",
        d.table(&table("flow_runs")),
        run_key(d, run_id, flow),
        d.quote_ident("phase"),
        d.quote_literal(super::procedure::HANDED_OFF)
    )
}

/// `"run_id" = '…' AND "flow" = '…'`: the key of a flow-run row.
/// `UPDATE <control table> SET a = x, ... WHERE cond`.
fn update(d: Dialect, name: &str, set: &[(&str, String)], cond: &str) -> String {
    let set: Vec<String> = set.iter().map(|(column, value)| format!("{} = {value}", d.quote_ident(column))).collect();
    format!("UPDATE {} SET {} WHERE {cond}", d.table(&table(name)), set.join(", "))
}

fn run_key(d: Dialect, run_id: &str, flow: &str) -> String {
    format!(
        "{} = {} AND {} = {}",
        d.quote_ident("run_id"),
        d.quote_literal(run_id),
        d.quote_ident("flow"),
        d.quote_literal(flow)
    )
}

/// One row or none: the flow's window end, last reconciliation and last full refresh, as
/// epoch milliseconds.
pub fn read_flow(dialect: Dialect, flow: &str) -> String {
    let d = dialect;
    let ms = |c: &str| d.epoch_ms(&d.quote_ident(c));
    format!(
        "SELECT {}, {}, {} FROM {} WHERE {} = {}",
        ms("window_end"),
        ms("last_reconciliation"),
        ms("last_full_refresh"),
        d.table(&table("flows")),
        d.quote_ident("flow"),
        d.quote_literal(flow),
    )
}

/// One row: the inserted, updated and deleted counts a consolidation recorded.
pub fn read_merge_counts(dialect: Dialect, run_id: &str, flow: &str) -> String {
    let d = dialect;
    format!(
        "SELECT {} FROM {} WHERE {}",
        super::ident_list(d, &["rows_inserted", "rows_updated", "rows_deleted"]),
        d.table(&table("flow_runs")),
        run_key(d, run_id, flow)
    )
}

/// After a sliced window, the flow-run row (which each slice's consolidation rewrote) gets
/// the totals over all slices and the first slice's start.
pub fn flow_totals(
    dialect: Dialect,
    run_id: &str,
    flow: &str,
    extracted: u64,
    [inserted, updated, deleted]: [u64; 3],
    window_start: Option<Timestamp>,
) -> String {
    let d = dialect;
    let set = [
        ("rows_extracted", extracted.to_string()),
        ("rows_inserted", inserted.to_string()),
        ("rows_updated", updated.to_string()),
        ("rows_deleted", deleted.to_string()),
        ("window_start", d.timestamp_or_null(window_start)),
    ];
    update(d, "flow_runs", &set, &run_key(d, run_id, flow))
}
