//! The files destination as the run loop drives it ([`FilesSink`], and [`FilesFlow`] per
//! flow). Each slice of a flow's read is one files run: its parts are written, then the
//! run's manifest, and only then the flow's new window end in the root's state. A crash at
//! any point leaves no manifest and no advanced state, or a manifest and no advanced state
//! (the next run reads the window again: a second run holding the same versions, which a
//! reader's newest-version-per-Id sees once). With `slice`, each slice is a run of its own
//! (`<run id>-001`, ...), committed before the next, so a failure loses at most one slice.
//!
//! A failing attempt aborts its own files run (its files are removed); the shared loop
//! ([`crate::pipeline::flows`]) retries it from the saved state or records the flow as `failed`,
//! and runs flows side by side as for every destination.

use arrow::record_batch::RecordBatch;

use super::{FilesDestination, FlowState, RunLock, RunWriter};
use crate::config::FlowConfig;
use crate::error::{Error, Result};
use crate::model::{TableSchema, Window};
use crate::pipeline::context::selection_fingerprint;
use crate::pipeline::plan::Planned;
use crate::pipeline::sink::{Commit, FlowSink, RunCx, Sink, Slice, Start};
use crate::pipeline::summary::{FlowSummary, RunStatus};
use crate::source::salesforce::describe::Described;

/// Gives `lock` back; a failure only makes the next run wait for the lease to lapse.
async fn release(lock: RunLock) {
    if let Err(e) = lock.release().await {
        tracing::warn!(error = %e, "could not give back the run lock; the next run waits until it lapses");
    }
}

/// A files root as the run loop drives it, holding the root's run lock.
pub(crate) struct FilesSink {
    dest: FilesDestination,
    lock: RunLock,
    /// The state file is rewritten whole; flows running side by side take turns.
    state_turn: tokio::sync::Mutex<()>,
}

impl FilesSink {
    /// Takes the root's run lock for `command`, then reads the state once so that a damaged
    /// state file stops the run before any work.
    pub(crate) async fn open(dest: FilesDestination, command: &str) -> Result<Self> {
        let lock = dest.lock(command).await?;
        if let Err(e) = dest.state().await {
            release(lock).await;
            return Err(e);
        }
        Ok(Self { dest, lock, state_turn: tokio::sync::Mutex::new(()) })
    }

    /// Gives the run lock back (see [`RunLock::release`]).
    pub(crate) async fn release(self) {
        release(self.lock).await;
    }

    /// Records a flow's committed window (after its manifest).
    async fn save_state(&self, object: &str, state: FlowState) -> Result<()> {
        let _turn = self.state_turn.lock().await;
        self.lock.check()?;
        self.dest.save_state(object, state).await
    }
}

impl Sink for FilesSink {
    type Flow<'s> = FilesFlow<'s>;

    async fn begin_run(&self, _run: &RunCx<'_>) -> Result<()> {
        Ok(())
    }

    /// A retry names its runs `<run id>-r<attempt>` so they never meet the earlier
    /// attempt's.
    async fn open_flow<'s>(&'s self, run: &'s RunCx<'_>, flow: &'s FlowConfig, attempt: u32) -> Result<FilesFlow<'s>> {
        Ok(FilesFlow {
            sink: self,
            flow,
            run_id: if attempt == 1 { run.run_id.clone() } else { format!("{}-r{attempt}", run.run_id) },
            table: run.config.destination.naming().apply(&flow.object),
            schema: None,
            slice: None,
            writer: None,
        })
    }

    async fn forget(&self, _run: &RunCx<'_>, flows: &[&FlowConfig]) -> Result<()> {
        let _turn = self.state_turn.lock().await;
        let objects: Vec<&str> = flows.iter().map(|f| f.object.as_str()).collect();
        self.dest.forget(&objects).await
    }

    async fn flow_failed(&self, _run: &RunCx<'_>, _flow: &FlowConfig, _message: &str) -> Result<()> {
        // The failure is in the run's summary; the files root records committed runs only.
        Ok(())
    }

    async fn end_run(&self, _run: &RunCx<'_>, _status: RunStatus) -> Result<()> {
        Ok(())
    }
}

/// One attempt of one flow into a files root.
pub(crate) struct FilesFlow<'s> {
    sink: &'s FilesSink,
    flow: &'s FlowConfig,
    /// This attempt's run id; a slice's files run is named after it.
    run_id: String,
    /// The flow's table: its directory under the root.
    table: String,
    /// The object's schema, once planned.
    schema: Option<TableSchema>,
    slice: Option<Slice>,
    /// The open files run of the current slice.
    writer: Option<RunWriter>,
}

/// The files run of `slice` of an attempt named `run_id`: the attempt's own name when it
/// reads one slice, else numbered from `-001`.
fn slice_run_id(run_id: &str, slice: Slice) -> String {
    if slice.count == 1 { run_id.to_owned() } else { format!("{run_id}-{:03}", slice.index + 1) }
}

impl FilesFlow<'_> {
    fn writer(&mut self) -> Result<&mut RunWriter> {
        self.writer.as_mut().ok_or_else(|| Error::internal("phase order: no files run open"))
    }
}

impl FlowSink for FilesFlow<'_> {
    /// The saved state; a committed window whose runs are all gone (removed outside
    /// sluice) stands for data the root no longer has, so the flow is read in full.
    async fn start(&mut self) -> Result<Start> {
        let dest = &self.sink.dest;
        let saved = dest.state().await?.remove(&self.flow.object);
        let window_end = saved.as_ref().map(|s| s.window_end);
        let lost = (window_end.is_some() && !dest.has_committed_run(&self.table).await?).then(|| {
            format!(
                "no committed run of {} is left under {} although a window was committed: reading the object in full",
                self.table,
                dest.root_shown()
            )
        });
        Ok(Start { window_end, selection: saved.and_then(|s| s.selection), lost })
    }

    async fn prepare(&mut self, planned: &Planned, _summary: &mut FlowSummary) -> Result<Vec<Window>> {
        self.schema = Some(planned.described.schema.clone());
        Ok(planned.windows.clone())
    }

    fn removes_absent(&self) -> bool {
        false
    }

    async fn begin(&mut self, slice: Slice) -> Result<()> {
        let schema = self.schema.as_ref().ok_or_else(|| Error::internal("phase order: no schema"))?;
        let id = slice_run_id(&self.run_id, slice);
        self.writer = Some(self.sink.dest.begin(schema, &id, slice.window).await?);
        self.slice = Some(slice);
        Ok(())
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.writer()?.write(&batch).await
    }

    async fn abort(&mut self) {
        if let Some(writer) = self.writer.take()
            && let Err(e) = writer.abort().await
        {
            tracing::warn!(object = %self.flow.object, error = %e, "could not remove the failed run");
        }
    }

    async fn staged(&mut self, _rows: u64) -> Result<()> {
        Ok(())
    }

    /// The manifest, then the state: the crash points between are `before-commit` (parts
    /// without a manifest: invisible, removed by the next run) and `after-manifest` (a
    /// manifest without the state: the next run reads the window again).
    async fn commit(&mut self, _summary: &mut FlowSummary) -> Result<Commit> {
        let slice = self.slice.ok_or_else(|| Error::internal("phase order: no slice open"))?;
        let writer = self.writer.take().ok_or_else(|| Error::internal("phase order: no files run open"))?;
        self.sink.lock.check()?;
        crate::failpoint::hit("before-commit");
        writer.finish().await?;
        crate::failpoint::hit("after-manifest");
        let selection = Some(selection_fingerprint(self.flow));
        let state = FlowState { window_end: slice.window.end, run_id: slice_run_id(&self.run_id, slice), selection };
        self.sink.save_state(&self.flow.object, state).await?;
        Ok(Commit::Applied)
    }

    fn reconcile_due(&self) -> bool {
        // Nothing to reconcile: a files root keeps every version it was given.
        false
    }

    async fn reconcile(&mut self, _described: &Described, _summary: &mut FlowSummary) -> Result<()> {
        Ok(())
    }

    fn formulas_due(&self) -> bool {
        // A files root keeps the versions it read, formula values as they were then; the
        // config refuses `formula_refresh_every` for it.
        false
    }

    async fn refresh_formulas(&mut self, _described: &Described, _summary: &mut FlowSummary) -> Result<()> {
        Ok(())
    }

    /// A root's rows are versions, not current rows: no count to compare with the source's.
    async fn verify(&mut self, _described: &Described, _summary: &mut FlowSummary) -> Result<()> {
        Ok(())
    }

    /// Each commit left nothing behind: a run's files are its committed data.
    async fn cleanup(&mut self) -> Result<()> {
        Ok(())
    }
}
