//! One flow of a warehouse run (DuckDB, PostgreSQL, Redshift) as a [`FlowSink`]: a slice
//! is staged into a staging table, then consolidated into the target in one transaction
//! with the window end; reconciliation when due, verification and the staging's removal
//! follow. [`super::flow`] drives it.
//!
//! The window end moves only inside the consolidation transaction, so a crash anywhere
//! leaves either the old end and the old data, or the new end and the new data; the next
//! load of the flow discards whatever a crashed load left behind.

use arrow::array::{ArrayRef, Int64Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use chrono::Utc;
use std::sync::Arc;

use super::checks;
use super::context::{Ctx, fingerprint, merge_counts, selection_fingerprint};
use super::plan::Planned;
use super::sink::{Commit, FlowSink, Slice, Start};
use super::summary::{FlowSummary, MergeCounts};
use crate::config::{FlowConfig, WriteMode};
use crate::consolidate::{self, DirectCheck, Existing, FirstLoad, FlowRun, MergeSpec, STAGE_SEQ, TableRef, procedure};
use crate::destination::{Changed, Destination, Stage, Value, first_value};
use crate::model::{Timestamp, Window};
use crate::source::salesforce::describe::Described;
use crate::{Error, Result};

/// What `_sluice.flows` holds for a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The committed window end.
    pub window_end: Option<Timestamp>,
    /// When reconciliation last ran.
    pub last_reconciliation: Option<Timestamp>,
    /// When the last full refresh committed.
    pub last_full_refresh: Option<Timestamp>,
    /// When the formula fields were last refreshed.
    pub last_formula_refresh: Option<Timestamp>,
    /// Whether the table held rows when the last consolidation committed (`None`: not
    /// recorded, as for state migrated from an older layout).
    pub rows_present: Option<bool>,
    /// The fingerprint of the flow's selection at the last commit (`None`: not recorded).
    pub selection: Option<String>,
    /// How the flow's table was written (merge for layouts before 4, which only merged).
    pub write: WriteMode,
}

impl Default for Committed {
    fn default() -> Self {
        Self {
            window_end: None,
            last_reconciliation: None,
            last_full_refresh: None,
            last_formula_refresh: None,
            rows_present: None,
            selection: None,
            write: WriteMode::Merge,
        }
    }
}

/// Reads the control row of the flow writing `target`.
pub async fn committed<D: Destination>(dest: &D, target: &TableRef) -> Result<Committed> {
    let rows = dest.query(consolidate::read_flow(dest.dialect(), target)).await?;
    let Some(r) = rows.first() else { return Ok(Committed::default()) };
    let word = r.get(5).and_then(Value::as_str);
    let write = consolidate::write_of(word).ok_or_else(|| {
        Error::user(format!(
            "{}: the control tables say it is written with write mode {:?}, which this sluice does not know (a newer \
             one wrote it): upgrade sluice",
            dest.dialect().table(target),
            word.unwrap_or_default()
        ))
    })?;
    Ok(Committed {
        window_end: r[0].as_timestamp(),
        last_reconciliation: r[1].as_timestamp(),
        last_full_refresh: r[2].as_timestamp(),
        last_formula_refresh: r.get(6).and_then(Value::as_timestamp),
        rows_present: r[3].as_i64().map(|n| n != 0),
        selection: r.get(4).and_then(Value::as_str).map(str::to_owned),
        write,
    })
}

/// A flow whose table was written one way (merge or append) and is now configured the
/// other: the table cannot change shape under it (an append table holds many rows per Id;
/// a merged one, one), so the flow stops with what to do.
pub async fn check_write_mode<D: Destination>(
    dest: &D,
    target: &TableRef,
    committed: &Committed,
    flow: &FlowConfig,
) -> Result<()> {
    let wanted = flow.settings.write;
    if committed.window_end.is_none() || committed.write == wanted || dest.columns(target.clone()).await?.is_none() {
        return Ok(());
    }
    let word = |w: WriteMode| consolidate::write_word(w);
    Err(Error::user(format!(
        "{}: table {} was written with write = {:?} and the config now says write = {:?}; a table cannot change \
         how it is written. Write to another schema, or drop the table and run `sluice reset --objects {}`",
        flow.object,
        dest.dialect().table(target),
        word(committed.write),
        word(wanted),
        flow.object
    )))
}

/// Why a flow with a committed window must be read in full anyway: its table is gone, or
/// empty though the last commit left rows in it (dropped or truncated outside sluice). Its
/// window end says what it held, not what it holds. Both checks read the catalog and at
/// most one row, never the whole table.
pub async fn reload_reason<D: Destination>(
    dest: &D,
    target: &TableRef,
    committed: &Committed,
) -> Result<Option<String>> {
    if committed.window_end.is_none() {
        return Ok(None);
    }
    let shown = dest.dialect().table(target);
    if dest.columns(target.clone()).await?.is_none() {
        return Ok(Some(format!(
            "table {shown} is missing although a window was committed for it: reading the object in full"
        )));
    }
    if committed.rows_present == Some(true) {
        let rows = dest.query(consolidate::has_rows_query(dest.dialect(), target)).await?;
        if first_value(&rows).and_then(Value::as_i64) == Some(0) {
            return Ok(Some(format!(
                "table {shown} is empty although the last run left rows in it: reading the object in full"
            )));
        }
    }
    Ok(None)
}

/// A batch with the stage-order column appended: `first`, `first + 1`, ...
pub fn with_stage_seq(batch: &RecordBatch, first: i64) -> Result<RecordBatch> {
    let n = batch.num_rows() as i64;
    let seq: ArrayRef = Arc::new(Int64Array::from_iter_values(first..first + n));
    let mut fields: Vec<Field> = batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(STAGE_SEQ, DataType::Int64, false));
    let mut columns = batch.columns().to_vec();
    columns.push(seq);
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| Error::internal(format!("adding the stage order: {e}")))
}

/// One attempt of one flow into a warehouse.
pub struct WarehouseFlow<'a, D: Destination> {
    cx: &'a Ctx<'a, D>,
    flow: &'a FlowConfig,
    attempts: u32,
    target: TableRef,
    /// The fingerprint of the object's schema as described (recorded with each commit).
    schema_fingerprint: String,
    /// Built once the object is described; phases only move its `synced_at`.
    spec: Option<MergeSpec>,
    committed: Committed,
    /// Whether the whole object is read.
    full: bool,
    /// Whether the read starts from the beginning (a full read, a first load, a reload):
    /// every row and formula value is read now.
    from_start: bool,
    slice: Option<Slice>,
    /// The open staging load of the current slice.
    stage: Option<D::Stage>,
    /// Rows written to the current slice's staging so far.
    staged: u64,
    /// Rows staged by the earlier slices of this attempt.
    rows_extracted: u64,
    /// Chosen when staging is created (PostgreSQL stages a first load durably, to promote
    /// it); [`FirstLoad::Direct`] only tentatively until the consolidation looks again.
    first_load: FirstLoad,
    /// A full read's removal that `max_delete_ratio` refused: the flow fails with it once
    /// the rows read are committed.
    refused_removal: Option<Error>,
}

impl<'a, D: Destination> WarehouseFlow<'a, D> {
    pub(super) fn new(cx: &'a Ctx<'a, D>, flow: &'a FlowConfig, attempts: u32) -> Self {
        Self {
            cx,
            flow,
            attempts,
            target: cx.target_of(flow),
            schema_fingerprint: String::new(),
            spec: None,
            committed: Committed::default(),
            full: false,
            from_start: false,
            slice: None,
            stage: None,
            staged: 0,
            rows_extracted: 0,
            first_load: FirstLoad::Merge,
            refused_removal: None,
        }
    }

    /// The merge spec, stamped `synced_at = now` for the statements about to be generated.
    fn spec_now(&mut self) -> Result<&MergeSpec> {
        let spec = self.spec.as_mut().ok_or_else(|| Error::internal("phase order: no merge spec before planning"))?;
        spec.synced_at = Utc::now();
        Ok(spec)
    }

    fn slice(&self) -> Result<Slice> {
        self.slice.ok_or_else(|| Error::internal("phase order: no slice open"))
    }

    /// Whether the current slice is the last of a full read.
    fn full_read_ends_here(&self) -> bool {
        self.full && self.slice.is_some_and(|s| s.is_last())
    }
    /// For the last slice of a full read into an existing table: how many target rows the
    /// read did not return (they are gone at the source), checked against
    /// `max_delete_ratio`. `Ok(Some(n))` to remove them in the consolidation; `Ok(None)`
    /// when there is nothing to check; the refusal is kept for after the commit (the data
    /// read is committed either way).
    async fn absent_rows(&mut self, spec: &MergeSpec, existing: &Existing) -> Result<Option<u64>> {
        // An append table keeps what the source lost: its versions are history.
        if !self.full_read_ends_here() || existing.target.is_none() || spec.write == WriteMode::Append {
            return Ok(None);
        }
        let rows = self.cx.dest.query(consolidate::absent_counts(self.cx.dest.dialect(), spec)).await?;
        let get = |i: usize| rows.first().and_then(|r| r.get(i)).and_then(Value::as_i64).unwrap_or(0) as u64;
        let (live, absent) = (get(0), get(1));
        let ratio = self.flow.settings.max_delete_ratio;
        if absent > 0 && absent as f64 > ratio * live as f64 {
            self.refused_removal = Some(Error::user(format!(
                "{}: the full read did not return {absent} of {live} live rows, more than max_delete_ratio = \
                 {ratio} allows removing; they were kept (the rows read are committed). If the source really \
                 lost them, raise max_delete_ratio for this flow and refresh again",
                self.flow.object
            )));
            return Ok(None);
        }
        Ok(Some(absent))
    }

    /// Whether a check run every `every` (`None`: never) is due, `last` done then: never on
    /// an append table; the last full refresh counts as the check.
    fn check_due(&self, every: Option<std::time::Duration>, last: Option<Timestamp>) -> bool {
        let Some(every) = every else { return false };
        if self.flow.settings.write == WriteMode::Append {
            return false;
        }
        let last = match (last, self.committed.last_full_refresh) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        last.is_none_or(|t| Utc::now() - t >= chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX))
    }

    /// [`FirstLoad::Direct`] where staging was made for it (the target was absent, and a
    /// hand-off always merges, since the warehouse's procedure reads staging later), the
    /// target is still absent and the dialect can show that staging holds each Id once
    /// ([`consolidate::direct_check`]).
    async fn first_load(&mut self, spec: &MergeSpec, existing: &Existing) -> Result<FirstLoad> {
        let cx = self.cx;
        if self.first_load == FirstLoad::Merge || existing.target.is_some() {
            return Ok(FirstLoad::Merge);
        }
        Ok(match consolidate::direct_check(cx.dest.dialect(), spec, self.staged) {
            DirectCheck::Key => FirstLoad::Direct,
            DirectCheck::Never => FirstLoad::Merge,
            DirectCheck::Query(queries) => {
                for sql in queries {
                    let rows = cx.dest.query(sql).await?;
                    match first_value(&rows).and_then(Value::as_i64) {
                        Some(0) => {}
                        Some(_) => return Ok(FirstLoad::Merge),
                        None => {
                            return Err(Error::internal(format!("{}: no answer to the Id check", self.flow.object)));
                        }
                    }
                }
                FirstLoad::Direct
            }
        })
    }
}

impl<D: Destination> FlowSink for WarehouseFlow<'_, D> {
    async fn start(&mut self) -> Result<Start> {
        let (dest, target) = (self.cx.dest, &self.target);
        self.committed = committed(dest, target).await?;
        check_write_mode(dest, target, &self.committed, self.flow).await?;
        Ok(Start {
            window_end: self.committed.window_end,
            selection: self.committed.selection.clone(),
            lost: reload_reason(dest, target, &self.committed).await?,
        })
    }

    async fn prepare(&mut self, planned: &Planned, summary: &mut FlowSummary) -> Result<Vec<Window>> {
        let (cx, flow) = (self.cx, self.flow);
        let s = &flow.settings;
        let mut spec =
            MergeSpec::new(&planned.described.schema, &cx.schema, s.deletes, s.history, &cx.run_id, Utc::now())?;
        spec.full = planned.full;
        spec.write = s.write;
        self.full = planned.full;
        self.from_start = planned.full || planned.windows.first().is_some_and(|w| w.start.is_none());
        self.schema_fingerprint = fingerprint(&planned.described.schema);
        let mut windows = planned.windows.clone();
        if cx.hands_off() {
            procedure::check_name(cx.dest.dialect(), &spec, &flow.object)?;
            // A load is handed off whole (see `consolidate::procedure`).
            if let (Some(first), Some(last)) = (windows.first().copied(), windows.last().copied())
                && windows.len() > 1
            {
                windows = vec![Window { start: first.start, end: last.end }];
            }
            if self.reconcile_due() {
                let warning = "reconciliation is due but needs the consolidated table: run `sluice verify --repair` \
                               after the CALL (consolidation = \"procedure\")";
                tracing::warn!(object = %flow.object, "{warning}");
                summary.warnings.push(warning.to_owned());
            }
        }
        self.spec = Some(spec);
        if cx.hands_off() && self.formulas_due() {
            let warning = "a formula refresh is due but needs the consolidated table, which the CALL writes later \
                           (consolidation = \"procedure\"): formula values are refreshed by `sluice sync \
                           --full-refresh`";
            tracing::warn!(object = %flow.object, "{warning}");
            summary.warnings.push(warning.to_owned());
        }
        Ok(windows)
    }

    fn removes_absent(&self) -> bool {
        // An append table keeps what the source lost: its versions are history.
        self.flow.settings.write == WriteMode::Merge
    }

    async fn begin(&mut self, slice: Slice) -> Result<()> {
        let (cx, flow) = (self.cx, self.flow);
        self.slice = Some(slice);
        let spec = self.spec_now()?;
        let d = cx.dest.dialect();
        if slice.index == 0 && cx.hands_off() {
            // Before staging is touched, the procedure must not consolidate it (see
            // `consolidate::procedure`).
            cx.dest.execute(procedure::idle(d, spec, &flow.object)?).await?;
        }
        cx.dest.discard(spec.staging.clone()).await?;
        // Only a first slice can be a first load: each slice's consolidation creates the target.
        let direct = slice.index == 0
            && spec.write == WriteMode::Merge
            && consolidate::loads_directly(d)
            && !cx.hands_off()
            && cx.dest.columns(spec.target.clone()).await?.is_none();
        let first_load = if direct { FirstLoad::Direct } else { FirstLoad::Merge };
        cx.dest.execute(consolidate::staging_ddl(d, spec, first_load)).await?;
        let staging = spec.staging.clone();
        self.stage = Some(cx.dest.stage(staging).await?);
        self.first_load = first_load;
        self.staged = 0;
        Ok(())
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let stage = self.stage.as_mut().ok_or_else(|| Error::internal("phase order: no staging open"))?;
        let rows = batch.num_rows() as u64;
        stage.write(with_stage_seq(&batch, self.staged as i64)?).await?;
        self.staged += rows;
        Ok(())
    }

    async fn abort(&mut self) {
        // Staging is never consolidated without its commit; the next attempt discards it.
        self.stage = None;
    }

    async fn staged(&mut self, rows: u64) -> Result<()> {
        let stage = self.stage.take().ok_or_else(|| Error::internal("phase order: no staging open"))?;
        let loaded = stage.finish().await?;
        if loaded != rows || rows != self.staged {
            return Err(Error::internal(format!(
                "{}: staged {loaded} rows of {rows} read ({} written)",
                self.flow.object, self.staged
            )));
        }
        self.rows_extracted += rows;
        Ok(())
    }

    async fn commit(&mut self, summary: &mut FlowSummary) -> Result<Commit> {
        let (cx, flow) = (self.cx, self.flow);
        let slice = self.slice()?;
        let d = cx.dest.dialect();
        // One consolidation at a time per destination: DuckDB reports concurrent catalog
        // changes as conflicts, and the transactions are short next to extraction.
        let _turn = cx.merge_lock.lock().await;
        let spec = self.spec_now()?.clone();
        let existing = Existing {
            target: cx.dest.columns(spec.target.clone()).await?,
            history: if spec.history { cx.dest.columns(spec.history_table()).await? } else { None },
        };
        // What the flow's calls cost so far, this attempt's and earlier ones' (`flows::run_flow`
        // meters them).
        let meter = crate::source::salesforce::client::current_meter();
        let mut run = FlowRun {
            flow: flow.object.clone(),
            object: flow.object.clone(),
            window: slice.window,
            full_refresh: self.full_read_ends_here(),
            schema_fingerprint: self.schema_fingerprint.clone(),
            selection_fingerprint: selection_fingerprint(flow),
            attempts: self.attempts,
            rows_extracted: self.staged,
            api_calls: meter.as_ref().map_or(0, |m| m.calls()),
            bytes: meter.as_ref().map_or(0, |m| m.bytes()),
            api_remaining: cx.source.client().api_remaining(),
            remove_absent: false,
            removed: 0,
        };
        if let Some(absent) = self.absent_rows(&spec, &existing).await? {
            run.remove_absent = true;
            run.removed = absent;
        }
        // A full read whose removals were refused did not bring the table to the source's
        // state: it does not count as a full refresh (nor, so, as a reconciliation).
        run.full_refresh &= self.refused_removal.is_none();
        let first_load = self.first_load(&spec, &existing).await?;
        let plan = consolidate::consolidate(d, &spec, &existing, &run, first_load)?;
        for warning in &plan.warnings {
            tracing::warn!(object = %flow.object, "{warning}");
        }
        summary.warnings.extend(plan.warnings);
        if cx.hands_off() {
            cx.dest.transaction(procedure::hand_off(d, &spec, &run, &plan.statements)?).await?;
            let call = format!("CALL {}()", d.table(&procedure::procedure_name(&spec)));
            tracing::info!(object = %flow.object, staged = self.staged, %call, "handed off to the warehouse");
            summary.handed_off = Some(call);
            return Ok(Commit::HandedOff);
        }
        let started = std::time::Instant::now();
        // A full read's removals reach rows it did not stage.
        let ids = (!run.remove_absent).then(|| spec.staging.clone());
        let read = Some(spec.staging.clone());
        let changed = Changed { id: spec.id.clone(), ids, run_id: cx.run_id.clone(), read };
        match cx.dest.write_rows(&spec.target, changed.clone(), plan.statements).await {
            // Rolled back whole: the ranked merge handles an Id staged twice.
            Err(e) if first_load == FirstLoad::Direct && e.is_duplicate_key() => {
                tracing::info!(object = %flow.object, "staging holds an Id twice; merging the first load instead");
                let plan = consolidate::consolidate(d, &spec, &existing, &run, FirstLoad::Merge)?;
                cx.dest.write_rows(&spec.target, changed, plan.statements).await?;
            }
            done => done?,
        }
        let counts = merge_counts(cx.dest, &cx.run_id, &spec.target).await?;
        // Where a run's time goes: `SLUICE_LOG=sluice=info` (and the benchmarks) read this.
        tracing::info!(
            object = %flow.object,
            staged = self.staged,
            inserted = counts.inserted,
            updated = counts.updated,
            deleted = counts.deleted,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "consolidated"
        );
        let total = summary.merged.get_or_insert_with(MergeCounts::default);
        total.inserted += counts.inserted;
        total.updated += counts.updated;
        total.deleted += counts.deleted;
        if !slice.is_last() {
            return Ok(Commit::Applied);
        }
        if slice.count > 1 {
            let counts = [total.inserted, total.updated, total.deleted];
            let start = summary.window.and_then(|w| w.start);
            let sql = consolidate::flow_totals(d, &cx.run_id, &spec.target, self.rows_extracted, counts, start);
            cx.dest.execute(vec![sql]).await?;
        }
        match self.refused_removal.take() {
            Some(refused) => Err(refused),
            None => Ok(Commit::Applied),
        }
    }

    /// Due when `reconcile_every` has passed since the last reconciliation or full refresh
    /// (which counts as one); not in a full read, which removed what the source lost. A
    /// first load reconciles when due: a record hard-deleted while it was read may have been
    /// read before it went.
    fn reconcile_due(&self) -> bool {
        !self.full && self.check_due(self.flow.settings.reconcile_every, self.committed.last_reconciliation)
    }

    /// Due when `formula_refresh_every` has passed since the last formula refresh or full
    /// refresh, for a flow that selects formula fields; not in a run that read from the
    /// beginning, which read every formula value just now.
    fn formulas_due(&self) -> bool {
        let has_formulas = self.spec.as_ref().is_some_and(|s| s.columns.iter().any(|c| c.formula));
        let every = self.flow.settings.formula_refresh_every;
        has_formulas && !self.from_start && self.check_due(every, self.committed.last_formula_refresh)
    }

    async fn refresh_formulas(&mut self, described: &Described, summary: &mut FlowSummary) -> Result<()> {
        let spec = self.spec_now()?.clone();
        summary.formulas = Some(checks::refresh_formulas(self.cx, self.flow, described, &spec).await?);
        Ok(())
    }

    async fn reconcile(&mut self, described: &Described, summary: &mut FlowSummary) -> Result<()> {
        let spec = self.spec_now()?.clone();
        summary.reconciled = Some(checks::reconcile(self.cx, self.flow, described, &spec).await?);
        Ok(())
    }

    async fn verify(&mut self, described: &Described, summary: &mut FlowSummary) -> Result<()> {
        let (cx, flow) = (self.cx, self.flow);
        let spec = self.spec.as_ref().ok_or_else(|| Error::internal("phase order: no merge spec"))?;
        let end = summary.window.map(|w| w.end);
        summary.verify = Some(checks::verify(cx, flow, described, spec, end).await?);
        let phase =
            consolidate::flow_phase(cx.dest.dialect(), &cx.run_id, &spec.target, consolidate::FlowPhase::Verified);
        cx.dest.execute(vec![phase]).await
    }

    async fn cleanup(&mut self) -> Result<()> {
        let (cx, d) = (self.cx, self.cx.dest.dialect());
        let spec = self.spec.as_ref().ok_or_else(|| Error::internal("phase order: no merge spec"))?;
        cx.dest.discard(spec.staging.clone()).await?;
        cx.dest.execute(vec![consolidate::flow_phase(d, &cx.run_id, &spec.target, consolidate::FlowPhase::Done)]).await
    }
}
