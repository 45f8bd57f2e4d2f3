//! One flow of a warehouse run, driven through [`super::phase`]: plan, stage, consolidate
//! (one transaction, with the window end), reconcile when due, verify, clean up.
//!
//! The window end moves only inside the consolidation transaction, so a crash anywhere
//! leaves either the old end and the old data, or the new end and the new data; the next
//! load of the flow discards whatever a crashed load left behind.

use arrow::array::{ArrayRef, Int64Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use chrono::Utc;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::checks;
use super::context::{Ctx, fingerprint, merge_counts, selection_changed, selection_fingerprint};
use super::phase::{Outcome, Phase, next};
use super::plan::{Planned, plan_flow};
use super::summary::{FlowSummary, MergeCounts, Timings};
use crate::config::{FlowConfig, WriteMode};
use crate::consolidate::{self, DirectCheck, Existing, FirstLoad, FlowRun, MergeSpec, STAGE_SEQ, TableRef, procedure};
use crate::destination::{Destination, Stage, Value, first_value};
use crate::mask::Masker;
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

/// One flow's run state, moved through the phases by `FlowDriver::run`.
pub struct FlowDriver<'a, D: Destination> {
    pub(super) cx: &'a Ctx<'a, D>,
    pub(super) flow: &'a FlowConfig,
    pub(super) summary: &'a mut FlowSummary,
    pub(super) attempts: u32,
    described: Option<Described>,
    masker: Option<Masker>,
    /// Built once the object is described; phases only move its `synced_at`.
    spec: Option<MergeSpec>,
    committed: Committed,
    windows: Vec<Window>,
    next_window: usize,
    full: bool,
    rows_extracted: u64,
    staged: u64,
    /// Chosen when staging is created (PostgreSQL stages a first load durably, to promote
    /// it); [`FirstLoad::Direct`] only tentatively until the consolidation looks again.
    first_load: FirstLoad,
    /// A full read's removal that `max_delete_ratio` refused: the flow fails with it once
    /// the rows read are committed.
    refused_removal: Option<Error>,
    /// Time the current staging phase spent waiting for the source.
    extract_wait: Duration,
}

impl<'a, D: Destination> FlowDriver<'a, D> {
    pub(super) fn new(cx: &'a Ctx<'a, D>, flow: &'a FlowConfig, summary: &'a mut FlowSummary, attempts: u32) -> Self {
        Self {
            cx,
            flow,
            summary,
            attempts,
            described: None,
            masker: None,
            spec: None,
            committed: Committed::default(),
            windows: Vec::new(),
            next_window: 0,
            full: false,
            rows_extracted: 0,
            staged: 0,
            first_load: FirstLoad::Merge,
            refused_removal: None,
            extract_wait: Duration::ZERO,
        }
    }

    /// Runs every phase to the end, or to the first error, adding each phase's time to the
    /// summary's [`Timings`] (a failed phase's time included).
    pub(super) async fn run(&mut self) -> Result<()> {
        let mut phase = Phase::Plan;
        while phase != Phase::Done {
            let started = Instant::now();
            self.extract_wait = Duration::ZERO;
            let outcome = match phase {
                Phase::Plan => self.plan().await,
                Phase::Stage => self.stage().await,
                Phase::Consolidate => self.consolidate().await,
                Phase::Reconcile => self.reconcile().await,
                Phase::Verify => self.verify().await,
                Phase::Cleanup => self.cleanup().await,
                Phase::Done => Ok(Outcome::Completed),
            };
            self.record_time(phase, started.elapsed());
            let outcome = outcome?;
            phase = next(phase, outcome).ok_or_else(|| {
                Error::internal(format!("{}: no phase follows {phase:?} after {outcome:?}", self.flow.object))
            })?;
        }
        Ok(())
    }

    /// Adds `elapsed`, the time of one `phase`, to the summary's timings.
    fn record_time(&mut self, phase: Phase, elapsed: Duration) {
        let t = self.summary.timings.get_or_insert_with(Timings::default);
        match phase {
            Phase::Plan => t.plan += elapsed,
            Phase::Stage => {
                let waited = self.extract_wait.min(elapsed);
                t.extract += waited;
                t.load += elapsed - waited;
            }
            Phase::Consolidate => t.consolidate += elapsed,
            Phase::Reconcile => t.reconcile += elapsed,
            Phase::Verify => t.verify += elapsed,
            Phase::Cleanup | Phase::Done => t.cleanup += elapsed,
        }
    }

    fn described(&self) -> Result<&Described> {
        self.described.as_ref().ok_or_else(|| Error::internal("phase order: no schema before planning"))
    }

    /// The merge spec, stamped `synced_at = now` for the statements about to be generated.
    fn spec_now(&mut self) -> Result<&MergeSpec> {
        let spec = self.spec.as_mut().ok_or_else(|| Error::internal("phase order: no merge spec before planning"))?;
        spec.synced_at = Utc::now();
        Ok(spec)
    }

    async fn plan(&mut self) -> Result<Outcome> {
        let (cx, flow) = (self.cx, self.flow);
        let target = cx.target_of(flow);
        self.committed = committed(cx.dest, &target).await?;
        check_write_mode(cx.dest, &target, &self.committed, flow).await?;
        let mut reload = reload_reason(cx.dest, &target, &self.committed).await?;
        if reload.is_none() {
            reload = selection_changed(flow, self.committed.window_end, self.committed.selection.as_deref());
        }
        if let Some(why) = &reload {
            tracing::warn!(object = %flow.object, "{why}");
            self.summary.warnings.push(why.clone());
        }
        let Planned { described, full, windows } = plan_flow(
            cx.source,
            cx.config,
            flow,
            cx.opts,
            self.committed.window_end,
            reload.is_some(),
            cx.observer,
            self.summary,
        )
        .await?;
        self.summary.warnings.extend(described.warnings.iter().cloned());
        let s = &flow.settings;
        let mut spec = MergeSpec::new(&described.schema, &cx.schema, s.deletes, s.history, &cx.run_id, Utc::now())?;
        spec.full = full;
        spec.write = s.write;
        self.spec = Some(spec);
        // Masked fields are hashed before the destination sees them.
        self.masker = Masker::new(&described.schema, cx.config.mask_salt.as_ref());
        self.described = Some(described);
        self.full = full;
        self.windows = windows;
        if cx.hands_off() {
            let (d, spec) = (cx.dest.dialect(), self.spec.as_ref().ok_or_else(|| Error::internal("no merge spec"))?);
            procedure::check_name(d, spec, &flow.object)?;
            // A load is handed off whole (see `consolidate::procedure`).
            if let (Some(first), Some(last)) = (self.windows.first().copied(), self.windows.last().copied())
                && self.windows.len() > 1
            {
                self.windows = vec![Window { start: first.start, end: last.end }];
            }
            if self.reconcile_due() {
                let warning = "reconciliation is due but needs the consolidated table: run `sluice verify --repair` \
                               after the CALL (consolidation = \"procedure\")";
                tracing::warn!(object = %flow.object, "{warning}");
                self.summary.warnings.push(warning.to_owned());
            }
        }
        Ok(if self.windows.is_empty() { Outcome::NothingToRead } else { Outcome::Completed })
    }

    async fn stage(&mut self) -> Result<Outcome> {
        let (cx, flow) = (self.cx, self.flow);
        let first = self.next_window == 0;
        let spec = self.spec_now()?;
        let d = cx.dest.dialect();
        if first && cx.hands_off() {
            // Before staging is touched, the procedure must not consolidate it (see
            // `consolidate::procedure`).
            cx.dest.execute(procedure::idle(d, spec, &flow.object)?).await?;
        }
        cx.dest.discard(spec.staging.clone()).await?;
        // Only a first window can be a first load: each window's consolidation creates the target.
        let direct = first
            && spec.write == WriteMode::Merge
            && consolidate::loads_directly(d)
            && !cx.hands_off()
            && cx.dest.columns(spec.target.clone()).await?.is_none();
        let first_load = if direct { FirstLoad::Direct } else { FirstLoad::Merge };
        cx.dest.execute(consolidate::staging_ddl(d, spec, first_load)).await?;
        let mut stage = cx.dest.stage(spec.staging.clone()).await?;
        let described = self.described.as_ref().ok_or_else(|| Error::internal("phase order: no schema"))?;
        let mut stream = cx.source.extract(described, self.read_window(), flow.filter.as_deref(), flow.api);
        let mut staged = 0u64;
        loop {
            let waiting = Instant::now();
            let item = stream.next().await;
            self.extract_wait += waiting.elapsed();
            let Some(batch) = item else { break };
            let mut batch = batch?;
            if let Some(masker) = &self.masker {
                batch = masker.apply(&batch)?;
            }
            let rows = batch.num_rows() as u64;
            stage.write(with_stage_seq(&batch, staged as i64)?).await?;
            staged += rows;
            self.summary.rows = self.rows_extracted + staged;
            cx.observer.rows(&flow.object, self.summary.rows);
        }
        drop(stream);
        let loaded = stage.finish().await?;
        if loaded != staged {
            return Err(Error::internal(format!("{}: staged {loaded} rows of {staged}", flow.object)));
        }
        self.staged = staged;
        self.first_load = first_load;
        self.rows_extracted += staged;
        crate::failpoint::hit("after-stage");
        Ok(Outcome::Completed)
    }

    /// What the current slice reads: its window, except that the last slice of a full read
    /// has no upper bound. A full read removes what it did not return, and a record changed
    /// at the source after the window end (between planning and reading) would otherwise be
    /// missing from it though the source still has it. Rows stamped after the window end are
    /// simply consolidated early; the next run reads them again from its look-back.
    fn read_window(&self) -> Option<Window> {
        let window = self.windows[self.next_window];
        if !self.full_read_ends_here() {
            return Some(window);
        }
        window.start.map(|start| Window { start: Some(start), end: crate::source::window::source_end() })
    }

    /// Whether the current slice is the last of a full read.
    fn full_read_ends_here(&self) -> bool {
        self.full && self.next_window + 1 == self.windows.len()
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

    async fn consolidate(&mut self) -> Result<Outcome> {
        let (cx, flow) = (self.cx, self.flow);
        let window = self.windows[self.next_window];
        let d = cx.dest.dialect();
        // One consolidation at a time per destination: DuckDB reports concurrent catalog
        // changes as conflicts, and the transactions are short next to extraction.
        let _turn = cx.merge_lock.lock().await;
        let spec = self.spec_now()?.clone();
        let existing = Existing {
            target: cx.dest.columns(spec.target.clone()).await?,
            history: if spec.history { cx.dest.columns(spec.history_table()).await? } else { None },
        };
        let described = self.described()?;
        // What the flow's calls cost so far, this attempt's and earlier ones' (`run::run_flow`
        // meters them).
        let meter = crate::source::salesforce::client::current_meter();
        let mut run = FlowRun {
            flow: flow.object.clone(),
            object: flow.object.clone(),
            window,
            full_refresh: self.full && self.next_window + 1 == self.windows.len(),
            schema_fingerprint: fingerprint(&described.schema),
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
        self.summary.warnings.extend(plan.warnings);
        if cx.hands_off() {
            cx.dest.transaction(procedure::hand_off(d, &spec, &run, &plan.statements)?).await?;
            let call = format!("CALL {}()", d.table(&procedure::procedure_name(&spec)));
            tracing::info!(object = %flow.object, staged = self.staged, %call, "handed off to the warehouse");
            self.summary.handed_off = Some(call);
            return Ok(Outcome::HandedOff);
        }
        let started = std::time::Instant::now();
        match cx.dest.transaction(plan.statements).await {
            // Rolled back whole: the ranked merge handles an Id staged twice.
            Err(e) if first_load == FirstLoad::Direct && e.is_duplicate_key() => {
                tracing::info!(object = %flow.object, "staging holds an Id twice; merging the first load instead");
                let plan = consolidate::consolidate(d, &spec, &existing, &run, FirstLoad::Merge)?;
                cx.dest.transaction(plan.statements).await?;
            }
            done => done?,
        }
        crate::failpoint::hit("after-commit");
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
        let total = self.summary.merged.get_or_insert_with(MergeCounts::default);
        total.inserted += counts.inserted;
        total.updated += counts.updated;
        total.deleted += counts.deleted;
        self.next_window += 1;
        if self.next_window < self.windows.len() {
            return Ok(Outcome::MoreSlices);
        }
        if self.windows.len() > 1 {
            let counts = [total.inserted, total.updated, total.deleted];
            let start = self.windows[0].start;
            let sql = consolidate::flow_totals(d, &cx.run_id, &spec.target, self.rows_extracted, counts, start);
            cx.dest.execute(vec![sql]).await?;
        }
        if let Some(refused) = self.refused_removal.take() {
            return Err(refused);
        }
        Ok(if self.reconcile_due() { Outcome::ReconcileDue } else { Outcome::Completed })
    }

    /// [`FirstLoad::Direct`] where staging was made for it (the target was absent, and a
    /// hand-off always merges, since the warehouse's procedure reads staging later), the
    /// target is still absent and the dialect can show that staging holds each Id once
    /// ([`consolidate::direct_check`]).
    async fn first_load(&self, spec: &MergeSpec, existing: &Existing) -> Result<FirstLoad> {
        let cx = self.cx;
        if self.first_load == FirstLoad::Merge || existing.target.is_some() {
            return Ok(FirstLoad::Merge);
        }
        Ok(match consolidate::direct_check(cx.dest.dialect(), spec) {
            DirectCheck::Key => FirstLoad::Direct,
            DirectCheck::Never => FirstLoad::Merge,
            DirectCheck::Query(sql) => {
                let rows = cx.dest.query(sql).await?;
                let twice = first_value(&rows).and_then(Value::as_i64);
                match twice {
                    Some(0) => FirstLoad::Direct,
                    Some(_) => FirstLoad::Merge,
                    None => return Err(Error::internal(format!("{}: no answer to the Id check", self.flow.object))),
                }
            }
        })
    }

    /// Due when `reconcile_every` has passed since the last reconciliation or full
    /// refresh (a full refresh just read every row, so it counts as one).
    fn reconcile_due(&self) -> bool {
        let Some(every) = self.flow.settings.reconcile_every else { return false };
        if self.full || self.flow.settings.write == WriteMode::Append {
            return false;
        }
        let last = match (self.committed.last_reconciliation, self.committed.last_full_refresh) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        last.is_none_or(|t| Utc::now() - t >= chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX))
    }

    async fn reconcile(&mut self) -> Result<Outcome> {
        let spec = self.spec_now()?.clone();
        let removed = checks::reconcile(self.cx, self.flow, self.described()?, &spec).await?;
        self.summary.reconciled = Some(removed);
        Ok(Outcome::Completed)
    }

    async fn verify(&mut self) -> Result<Outcome> {
        let (cx, flow) = (self.cx, self.flow);
        let spec = self.spec.as_ref().ok_or_else(|| Error::internal("phase order: no merge spec"))?;
        let end = self.windows.last().map(|w| w.end);
        self.summary.verify = Some(checks::verify(cx, flow, self.described()?, spec, end).await?);
        let phase =
            consolidate::flow_phase(cx.dest.dialect(), &cx.run_id, &spec.target, consolidate::FlowPhase::Verified);
        cx.dest.execute(vec![phase]).await?;
        crate::failpoint::hit("after-verify");
        Ok(Outcome::Completed)
    }

    async fn cleanup(&mut self) -> Result<Outcome> {
        let (cx, d) = (self.cx, self.cx.dest.dialect());
        let spec = self.spec.as_ref().ok_or_else(|| Error::internal("phase order: no merge spec"))?;
        cx.dest.discard(spec.staging.clone()).await?;
        cx.dest
            .execute(vec![consolidate::flow_phase(d, &cx.run_id, &spec.target, consolidate::FlowPhase::Done)])
            .await?;
        crate::failpoint::hit("after-cleanup");
        Ok(Outcome::Completed)
    }
}
