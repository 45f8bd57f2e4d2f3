//! The files destination as the run loop drives it ([`FilesSink`]). Per flow: read the
//! flow's committed window end, describe the object, plan the window `[E − lookback, U)`
//! (full on a first run, a `--full-refresh`, `mode = "full"`, or an object without a
//! cursor), extract it, write one files run, write the run's manifest, and only then save
//! the new window end. A crash at any point leaves no manifest and no advanced state, so the
//! next run reads the window again. With `slice`, the window is cut into slices, each
//! written and committed as a run of its own (`<run id>-001`, ...), so a failure loses at
//! most one slice.
//!
//! A failing attempt aborts its own files run (its files are removed); the shared loop
//! ([`super::flows`]) retries it from the saved state or records the flow as `failed`,
//! and runs flows side by side as for every destination.

use futures_util::StreamExt;

use super::context::{selection_changed, selection_fingerprint};
use super::plan::{Planned, plan_flow};
use super::sink::{RunCx, Sink};
use super::summary::{FlowSummary, RunStatus};
use crate::config::FlowConfig;
use crate::destination::files::{FilesDestination, FlowState, RunLock};
use crate::error::Result;

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
    async fn begin_run(&self, _run: &RunCx<'_>) -> Result<()> {
        Ok(())
    }

    /// One attempt: plan, describe, extract, write, manifest, state — in that order. A
    /// retry reads the state again (an earlier attempt may have committed slices) and
    /// names its runs `<run id>-r<attempt>` so they never meet the earlier attempt's.
    async fn run_flow(
        &self,
        run: &RunCx<'_>,
        flow: &FlowConfig,
        summary: &mut FlowSummary,
        attempt: u32,
    ) -> Result<()> {
        let saved = self.dest.state().await?.get(&flow.object).cloned();
        let committed = saved.as_ref().map(|s| s.window_end);
        let run_id = if attempt == 1 { run.run_id.clone() } else { format!("{}-r{attempt}", run.run_id) };
        let config = run.config;
        // A committed window whose runs are all gone (removed outside sluice) stands for data the
        // destination no longer has: read in full again.
        let table = config.destination.naming().apply(&flow.object);
        let changed = selection_changed(flow, committed, saved.as_ref().and_then(|s| s.selection.as_deref()));
        let lost = committed.is_some() && !self.dest.has_committed_run(&table).await?;
        if let Some(why) = &changed {
            tracing::warn!(object = %flow.object, "{why}");
            summary.warnings.push(why.clone());
        }
        let reload = lost || changed.is_some();
        if lost {
            let why = format!(
                "no committed run of {table} is left under {} although a window was committed: reading the object in \
                 full",
                self.dest.root_shown()
            );
            tracing::warn!(object = %flow.object, "{why}");
            summary.warnings.push(why);
        }
        let Planned { described, windows: planned, .. } =
            plan_flow(run.source, config, flow, run.opts, committed, reload, run.observer, summary).await?;
        for warning in &described.warnings {
            tracing::warn!(object = %flow.object, "{warning}");
        }
        // Masked fields are hashed before any destination sees them.
        let masker = crate::mask::Masker::new(&described.schema, config.mask_salt.as_ref());
        // Each slice is a run of its own, committed (manifest, then state) before the next.
        let mut rows = 0u64;
        for (i, window) in planned.iter().enumerate() {
            let id = if planned.len() == 1 { run_id.clone() } else { format!("{run_id}-{:03}", i + 1) };
            let mut writer = self.dest.begin(&described.schema, &id, *window).await?;
            let mut stream = run.source.extract(&described, Some(*window), flow.filter.as_deref(), flow.api);
            let written: Result<()> = async {
                while let Some(batch) = stream.next().await {
                    let mut batch = batch?;
                    if let Some(masker) = &masker {
                        batch = masker.apply(&batch)?;
                    }
                    writer.write(&batch).await?;
                    rows += batch.num_rows() as u64;
                    run.observer.rows(&flow.object, rows);
                }
                Ok(())
            }
            .await;
            drop(stream);
            summary.rows = rows;
            if let Err(e) = written {
                if let Err(cleanup) = writer.abort().await {
                    tracing::warn!(object = %flow.object, error = %cleanup, "could not remove the failed run");
                }
                return Err(e);
            }
            // The crash points of a files run: parts written, no manifest (the run is
            // invisible and removed by the next); the manifest written, the state not (the
            // next run reads the window again: a second run holding the same versions).
            crate::failpoint::hit("after-stage");
            self.lock.check()?;
            crate::failpoint::hit("before-commit");
            writer.finish().await?;
            crate::failpoint::hit("after-commit");
            let selection = Some(selection_fingerprint(flow));
            self.save_state(&flow.object, FlowState { window_end: window.end, run_id: id, selection }).await?;
            crate::failpoint::hit("after-cleanup");
        }
        Ok(())
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
