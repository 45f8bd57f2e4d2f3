//! The checks after consolidation: reconciliation (deletes no incremental query can see,
//! guarded by `max_delete_ratio`), the formula refresh (formula values that changed without
//! the cursor moving) and verification (source `COUNT()` against destination live rows at
//! the window end). DESIGN "One flow, one run", steps 5 and the reconciliation paragraph.

use chrono::Utc;
use futures_util::StreamExt;

use super::context::Ctx;
use super::summary::{FormulaRefresh, VerifyCounts};
use crate::config::{Api, Deletes, FlowConfig, WriteMode};
use crate::consolidate::{self, MergeSpec, TableRef};
use crate::destination::{Changed, Destination, Stage, Value, first_value};
use crate::mask::Masker;
use crate::model::{Column, Cursor, TableSchema, Timestamp, Window};
use crate::source::salesforce::describe::Described;
use crate::{Error, Result};

/// The flow's `where` combined with "not in the recycle bin": the rows a live count or a
/// live-Id snapshot must see.
fn live_filter(flow: &FlowConfig, schema: &TableSchema) -> Option<String> {
    let deleted = schema.deleted_flag.as_deref().map(|f| format!("{f} = false"));
    match (deleted, flow.filter.as_deref()) {
        (Some(d), Some(f)) => Some(format!("{d} AND ({f})")),
        (Some(d), None) => Some(d),
        (None, f) => f.map(str::to_owned),
    }
}

/// `described`'s schema cut down to its Id and `more` columns: what a check reads.
fn id_and(flow: &FlowConfig, described: &Described, more: &[Column]) -> Result<Described> {
    let schema = &described.schema;
    let id = schema
        .column_by_source("Id")
        .cloned()
        .ok_or_else(|| Error::internal(format!("{}: no Id column", flow.object)))?;
    Ok(Described {
        schema: TableSchema {
            object: schema.object.clone(),
            table: schema.table.clone(),
            columns: std::iter::once(id).chain(more.iter().cloned()).collect(),
            cursor: Cursor::None,
            deleted_flag: None,
        },
        skipped: Vec::new(),
        warnings: Vec::new(),
    })
}

/// Bulk reads millions of rows in a few calls; REST where the flow insists.
fn check_api(flow: &FlowConfig) -> Api {
    if flow.api == Api::Rest { Api::Rest } else { Api::Auto }
}

/// Loads `read`'s columns of the source rows `filter` selects into `table`, beside staging
/// (any leftover discarded, then created by `ddl`), masked fields hashed as a sync hashes
/// them: what reconciliation and the formula refresh compare the target with. Returns the
/// rows read.
async fn load_beside<D: Destination>(
    cx: &Ctx<'_, D>,
    flow: &FlowConfig,
    read: &Described,
    filter: Option<&str>,
    table: TableRef,
    ddl: Vec<String>,
) -> Result<u64> {
    let masker = Masker::new(&read.schema, cx.config.mask_salt.as_ref());
    cx.dest.discard(table.clone()).await?;
    cx.dest.execute(ddl).await?;
    let mut stage = cx.dest.stage(table).await?;
    let mut stream = cx.source.extract(read, None, filter, check_api(flow));
    let mut rows = 0u64;
    while let Some(batch) = stream.next().await {
        let mut batch = batch?;
        if let Some(m) = &masker {
            batch = m.apply(&batch)?;
        }
        rows += batch.num_rows() as u64;
        stage.write(batch).await?;
    }
    drop(stream);
    stage.finish().await?;
    Ok(rows)
}

/// The formula fields `described` selects: what a formula refresh reads.
pub fn formula_columns(described: &Described) -> Vec<Column> {
    described.schema.columns.iter().filter(|c| c.formula).cloned().collect()
}

/// Refreshes one flow's formula fields (see `consolidate::formulas`): reads `Id` and the
/// formula fields of every source row the table keeps into the formula table, then rewrites the
/// values that changed in one transaction with `last_formula_refresh`. Masked formula
/// fields are hashed as in a sync, so an unchanged value compares equal.
pub async fn refresh_formulas<D: Destination>(
    cx: &Ctx<'_, D>,
    flow: &FlowConfig,
    described: &Described,
    spec: &MergeSpec,
) -> Result<FormulaRefresh> {
    let d = cx.dest.dialect();
    let formulas = formula_columns(described);
    let read = id_and(flow, described, &formulas)?;
    let table = consolidate::formulas_table(spec);
    // The rows the table keeps: recycle-bin rows too where deletes are soft (their
    // formulas are computed as well; the query reads them as incremental runs do).
    let filter = match spec.deletes {
        Deletes::Soft => flow.filter.clone(),
        Deletes::Hard => live_filter(flow, &described.schema),
    };
    let ddl = consolidate::formulas_ddl(d, spec, &formulas);
    let rows = load_beside(cx, flow, &read, filter.as_deref(), table.clone(), ddl).await?;

    let _turn = cx.merge_lock.lock().await;
    let counted = cx.dest.query(consolidate::formula_counts(d, spec, &formulas)).await?;
    let changed = first_value(&counted).and_then(Value::as_i64).unwrap_or(0) as u64;
    let touched = Changed { id: spec.id.clone(), ids: Some(table.clone()), run_id: cx.run_id.clone(), read: None };
    cx.dest.write_rows(&spec.target, touched, consolidate::formulas_apply(d, spec, &formulas)).await?;
    cx.dest.discard(table).await?;
    tracing::info!(object = %flow.object, read = rows, changed, "formula refresh");
    Ok(FormulaRefresh { read: rows, changed })
}

/// Reconciles one flow: snapshot the source's live Ids into the Id table, count what would
/// go, refuse above `max_delete_ratio`, else remove it in one transaction. Returns the rows
/// removed (or flagged, in soft mode).
pub async fn reconcile<D: Destination>(
    cx: &Ctx<'_, D>,
    flow: &FlowConfig,
    described: &Described,
    spec: &MergeSpec,
) -> Result<u64> {
    let d = cx.dest.dialect();
    let schema = &described.schema;
    let ids = id_and(flow, described, &[])?;
    // The snapshot starts now (by the source's clock, as cursors are): rows changed after
    // this instant may be missing from it and are never touched.
    let snapshot_start = cx.source.source_now().unwrap_or_else(Utc::now);
    let filter = live_filter(flow, schema);
    let ddl = consolidate::ids_ddl(d, spec);
    load_beside(cx, flow, &ids, filter.as_deref(), consolidate::ids_table(spec), ddl).await?;

    let _turn = cx.merge_lock.lock().await;
    let rows = cx.dest.query(consolidate::reconcile_counts(d, spec, snapshot_start)).await?;
    let get = |i: usize| rows.first().and_then(|r| r.get(i)).and_then(|v| v.as_i64()).unwrap_or(0) as u64;
    let (live, gone) = (get(0), get(1));
    let ratio = flow.settings.max_delete_ratio;
    if gone > 0 && gone as f64 > ratio * live as f64 {
        cx.dest.discard(consolidate::ids_table(spec)).await?;
        return Err(Error::user(format!(
            "{}: reconciliation refused: {gone} of {live} live rows are absent from the source, more than \
             max_delete_ratio = {ratio} allows; nothing was deleted (the synced data is committed). If the \
             source really lost them, raise max_delete_ratio for this flow or run `sluice verify --repair` \
             after checking",
            flow.object
        )));
    }
    let touched = Changed { id: spec.id.clone(), ids: None, run_id: cx.run_id.clone(), read: None };
    cx.dest.write_rows(&spec.target, touched, consolidate::reconcile_apply(d, spec, snapshot_start)).await?;
    cx.dest.discard(consolidate::ids_table(spec)).await?;
    if gone > 0 {
        tracing::info!(object = %flow.object, removed = gone, "reconciliation removed rows the source no longer has");
    }
    Ok(gone)
}

/// Source live rows with cursor before `end` against destination live rows with cursor
/// before `end` (every row, for an object without a cursor).
pub async fn verify<D: Destination>(
    cx: &Ctx<'_, D>,
    flow: &FlowConfig,
    described: &Described,
    spec: &MergeSpec,
    end: Option<Timestamp>,
) -> Result<VerifyCounts> {
    let schema = &described.schema;
    let window = end.filter(|_| schema.cursor.is_incremental()).map(|end| Window { start: None, end });
    let filter = live_filter(flow, schema);
    let source = cx.source.count(schema, window, filter.as_deref()).await?;
    let end = window.map(|w| w.end);
    let sql = match spec.write {
        WriteMode::Merge => {
            consolidate::live_count(cx.dest.dialect(), &spec.target, spec.deletes, spec.cursor.as_deref(), end)
        }
        WriteMode::Append => consolidate::append_live_count(cx.dest.dialect(), spec, end),
    };
    let rows = cx.dest.query(sql).await?;
    let destination = first_value(&rows).and_then(Value::as_i64).unwrap_or(0) as u64;
    if source != destination {
        tracing::warn!(
            object = %flow.object, source, destination,
            "row counts differ at the window end (changes made after it are expected to)"
        );
    }
    Ok(VerifyCounts { at: end, source, destination })
}
