//! One attempt of one flow, for every destination: the driver that moves a
//! [`FlowSink`] through the phases of [`super::phase`] (plan, stage, commit, reconcile
//! when due, verify, clean up). What is the same everywhere lives here: reading the
//! committed state's verdict, planning the read, extracting, masking, the read window of a
//! full read, progress and timings. What a destination does with the rows is the sink's.
//!
//! The window end moves only in the sink's commit, atomically with the slice's data, so a
//! crash anywhere leaves either the old end and the old data, or the new end and the new
//! data; the next attempt starts from whichever it finds.

use futures_util::StreamExt;
use std::time::{Duration, Instant};

use super::context::selection_changed;
use super::phase::{Outcome, Phase, next};
use super::plan::{Planned, plan_flow};
use super::sink::{Commit, FlowSink, RunCx, Slice};
use super::summary::{FlowSummary, Timings};
use crate::config::FlowConfig;
use crate::mask::Masker;
use crate::model::Window;
use crate::source::salesforce::describe::Described;
use crate::{Error, Result};

/// Runs one attempt of `flow` through `sink` to the end, or to the first error, adding
/// each phase's time to the summary's [`Timings`] (a failed phase's time included).
pub(crate) async fn drive<F: FlowSink>(
    sink: &mut F,
    run: &RunCx<'_>,
    flow: &FlowConfig,
    summary: &mut FlowSummary,
) -> Result<()> {
    let mut driver = Driver {
        sink,
        run,
        flow,
        summary,
        described: None,
        masker: None,
        windows: Vec::new(),
        next_window: 0,
        full: false,
        rows: 0,
        extract_wait: Duration::ZERO,
    };
    let mut phase = Phase::Plan;
    while phase != Phase::Done {
        let started = Instant::now();
        driver.extract_wait = Duration::ZERO;
        let outcome = match phase {
            Phase::Plan => driver.plan().await,
            Phase::Stage => driver.stage().await,
            Phase::Consolidate => driver.commit().await,
            Phase::Reconcile => driver.reconcile().await,
            Phase::Formulas => driver.formulas().await,
            Phase::Verify => driver.verify().await,
            Phase::Cleanup => driver.cleanup().await,
            Phase::Done => Ok(Outcome::Completed),
        };
        driver.record_time(phase, started.elapsed());
        let outcome = outcome?;
        phase = next(phase, outcome)
            .ok_or_else(|| Error::internal(format!("{}: no phase follows {phase:?} after {outcome:?}", flow.object)))?;
    }
    Ok(())
}

/// One attempt's progress through the phases.
struct Driver<'a, 'r, F: FlowSink> {
    sink: &'a mut F,
    run: &'a RunCx<'r>,
    flow: &'a FlowConfig,
    summary: &'a mut FlowSummary,
    /// The object as planned (set by the plan phase).
    described: Option<Described>,
    masker: Option<Masker>,
    windows: Vec<Window>,
    next_window: usize,
    /// Whether the whole object is read.
    full: bool,
    /// Rows read over every slice so far.
    rows: u64,
    /// Time the current phase spent waiting for the source.
    extract_wait: Duration,
}

impl<F: FlowSink> Driver<'_, '_, F> {
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
            Phase::Formulas => t.formulas += elapsed,
            Phase::Verify => t.verify += elapsed,
            Phase::Cleanup | Phase::Done => t.cleanup += elapsed,
        }
    }

    async fn plan(&mut self) -> Result<Outcome> {
        let (run, flow) = (self.run, self.flow);
        let start = self.sink.start().await?;
        let reload = start.lost.or_else(|| selection_changed(flow, start.window_end, start.selection.as_deref()));
        if let Some(why) = &reload {
            tracing::warn!(object = %flow.object, "{why}");
            self.summary.warnings.push(why.clone());
        }
        let planned = plan_flow(
            run.source,
            run.config,
            flow,
            run.opts,
            start.window_end,
            reload.is_some(),
            run.observer,
            self.summary,
        )
        .await?;
        for warning in &planned.described.warnings {
            tracing::warn!(object = %flow.object, "{warning}");
        }
        self.summary.warnings.extend(planned.described.warnings.iter().cloned());
        self.windows = self.sink.prepare(&planned, self.summary).await?;
        let Planned { described, full, .. } = planned;
        // Masked fields are hashed before any destination sees them.
        self.masker = Masker::new(&described.schema, run.config.mask_salt.as_ref());
        self.described = Some(described);
        self.full = full;
        Ok(if self.windows.is_empty() { Outcome::NothingToRead } else { Outcome::Completed })
    }

    async fn stage(&mut self) -> Result<Outcome> {
        let (run, flow) = (self.run, self.flow);
        let slice =
            Slice { index: self.next_window, count: self.windows.len(), window: self.windows[self.next_window] };
        self.sink.begin(slice).await?;
        let read = self.read_window(slice);
        let described = self.described.as_ref().ok_or_else(|| Error::internal("phase order: no schema"))?;
        let mut stream = run.source.extract(described, read, flow.filter.as_deref(), flow.api);
        let mut staged = 0u64;
        let written: Result<()> = async {
            loop {
                let waiting = Instant::now();
                let item = stream.next().await;
                self.extract_wait += waiting.elapsed();
                let Some(batch) = item else { return Ok(()) };
                let mut batch = batch?;
                if let Some(masker) = &self.masker {
                    batch = masker.apply(&batch)?;
                }
                let rows = batch.num_rows() as u64;
                self.sink.write(batch).await?;
                staged += rows;
                self.summary.rows = self.rows + staged;
                run.observer.rows(&flow.object, self.summary.rows);
            }
        }
        .await;
        drop(stream);
        if let Err(e) = written {
            self.sink.abort().await;
            return Err(e);
        }
        self.sink.staged(staged).await?;
        self.rows += staged;
        crate::failpoint::hit("after-stage");
        Ok(Outcome::Completed)
    }

    /// What `slice` reads: its window, except that the last slice of a full read into a sink
    /// that removes what the read did not return has no upper bound. A record changed at the
    /// source after the window end (between planning and reading) would otherwise be missing
    /// from the read though the source still has it. Rows stamped after the window end are
    /// simply committed early; the next run reads them again from its look-back.
    fn read_window(&self, slice: Slice) -> Option<Window> {
        if !(self.full && slice.is_last() && self.sink.removes_absent()) {
            return Some(slice.window);
        }
        slice.window.start.map(|start| Window { start: Some(start), end: crate::source::window::source_end() })
    }

    async fn commit(&mut self) -> Result<Outcome> {
        if self.sink.commit(self.summary).await? == Commit::HandedOff {
            return Ok(Outcome::HandedOff);
        }
        crate::failpoint::hit("after-commit");
        self.next_window += 1;
        Ok(if self.next_window < self.windows.len() {
            Outcome::MoreSlices
        } else if self.sink.reconcile_due() {
            Outcome::ReconcileDue
        } else {
            self.after_checks()
        })
    }

    /// What follows the commits and the reconciliation: a formula refresh when one is due.
    fn after_checks(&self) -> Outcome {
        if self.sink.formulas_due() { Outcome::FormulasDue } else { Outcome::Completed }
    }

    async fn reconcile(&mut self) -> Result<Outcome> {
        let described = self.described.as_ref().ok_or_else(|| Error::internal("phase order: no schema"))?;
        self.sink.reconcile(described, self.summary).await?;
        Ok(self.after_checks())
    }

    async fn formulas(&mut self) -> Result<Outcome> {
        let described = self.described.as_ref().ok_or_else(|| Error::internal("phase order: no schema"))?;
        self.sink.refresh_formulas(described, self.summary).await?;
        crate::failpoint::hit("after-formulas");
        Ok(Outcome::Completed)
    }

    async fn cleanup(&mut self) -> Result<Outcome> {
        self.sink.cleanup().await?;
        crate::failpoint::hit("after-cleanup");
        Ok(Outcome::Completed)
    }

    async fn verify(&mut self) -> Result<Outcome> {
        let described = self.described.as_ref().ok_or_else(|| Error::internal("phase order: no schema"))?;
        self.sink.verify(described, self.summary).await?;
        crate::failpoint::hit("after-verify");
        Ok(Outcome::Completed)
    }
}
