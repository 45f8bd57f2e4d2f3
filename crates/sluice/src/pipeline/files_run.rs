//! The files destination's run: it connects to the source once, then walks the selected
//! flows in config order: check the API budget (a quota stop ends the run at a flow
//! boundary, the remaining flows are `skipped`), read the flow's committed window end,
//! describe the object, plan the window `[E − lookback, U)` (full on a first run, a
//! `--full-refresh`, `mode = "full"`, or an object without a cursor), extract it, write one
//! files run, write the run's manifest, and only then save the new window end. A crash at
//! any point leaves no manifest and no advanced state, so the next run reads the window
//! again. With `slice`, the window is cut into slices, each written and committed as a run
//! of its own (`<run id>-001`, ...), so a failure loses at most one slice.
//!
//! A failing flow aborts its own run (its files are removed) and is recorded as `failed`;
//! the other flows still run.

use std::time::Instant;

use futures_util::StreamExt;

use super::plan::{Planned, plan_flow};
use super::summary::{FlowStatus, FlowSummary, Observer, RunStatus, RunSummary, SyncOptions, new_run_id};
use crate::config::{Config, FlowConfig};
use crate::destination::files::{FilesDestination, FlowState};
use crate::error::Result;
use crate::model::Timestamp;
use crate::source::salesforce::SalesforceSource;

/// Runs `flows` into the files destination `dest` (see the module docs).
pub(crate) async fn run(
    dest: FilesDestination,
    config: &Config,
    flows: Vec<&FlowConfig>,
    opts: &SyncOptions,
    observer: &dyn Observer,
) -> Result<RunSummary> {
    // One run at a time (held to the end of this function), then a damaged state file stops
    // the run before any work; each flow writes only its own entry, so this one read serves
    // every flow.
    let _lock = dest.lock("sync")?;
    let state = dest.state()?;
    let source = SalesforceSource::connect_with(&config.source, opts.source).await?;
    let run_id = new_run_id();
    let naming = config.destination.naming();
    let mut summaries = Vec::with_capacity(flows.len());
    let mut stopped = false;
    for flow in flows {
        let started = Instant::now();
        let mut summary = FlowSummary::new(flow, naming);
        if stopped {
            summary.error = Some("not run: the run stopped (quota)".to_owned());
            observer.flow_finished(&summary);
            summaries.push(summary);
            continue;
        }
        let meter = std::sync::Arc::new(crate::source::salesforce::client::Meter::default());
        let committed = state.get(&flow.object).map(|s| s.window_end);
        let flow_run = run_flow(&source, &dest, config, flow, opts, committed, &run_id, observer, &mut summary);
        let result = crate::source::salesforce::client::metered(meter.clone(), flow_run).await;
        summary.api_calls = Some(meter.calls());
        summary.duration = started.elapsed();
        summary.finish(&result);
        stopped |= summary.status == FlowStatus::Stopped;
        observer.flow_finished(&summary);
        summaries.push(summary);
    }
    let status = RunStatus::of(&summaries);
    Ok(RunSummary { run_id, flows: summaries, status, stopped: stopped.then(|| "quota".to_owned()) })
}

/// One flow: budget, plan, describe, extract, write, manifest, state — in that order.
#[allow(clippy::too_many_arguments)]
async fn run_flow(
    source: &SalesforceSource,
    dest: &FilesDestination,
    config: &Config,
    flow: &FlowConfig,
    opts: &SyncOptions,
    committed: Option<Timestamp>,
    run_id: &str,
    observer: &dyn Observer,
    summary: &mut FlowSummary,
) -> Result<()> {
    // A committed window whose runs are all gone (removed outside sluice) stands for data the
    // destination no longer has: read in full again.
    let table = config.destination.naming().apply(&flow.object);
    let reload = committed.is_some() && dest.runs(&table)?.is_empty();
    if reload {
        let why = format!(
            "no committed run of {table} is left under {} although a window was committed: reading the object in \
             full",
            dest.state_path().parent().unwrap_or(std::path::Path::new(".")).display()
        );
        tracing::warn!(object = %flow.object, "{why}");
        summary.warnings.push(why);
    }
    let Planned { described, windows: planned, .. } =
        plan_flow(source, config, flow, opts, committed, reload, observer, summary).await?;
    for warning in &described.warnings {
        tracing::warn!(object = %flow.object, "{warning}");
    }
    // Masked fields are hashed before any destination sees them.
    let masker = crate::mask::Masker::new(&described.schema, config.mask_salt.as_ref());
    // Each slice is a run of its own, committed (manifest, then state) before the next.
    let mut rows = 0u64;
    for (i, window) in planned.iter().enumerate() {
        let id = if planned.len() == 1 { run_id.to_owned() } else { format!("{run_id}-{:03}", i + 1) };
        let mut writer = dest.begin(&described.schema, &id, *window)?;
        let mut stream = source.extract(&described, Some(*window), flow.filter.as_deref(), flow.api);
        let written: Result<()> = async {
            while let Some(batch) = stream.next().await {
                let mut batch = batch?;
                if let Some(masker) = &masker {
                    batch = masker.apply(&batch)?;
                }
                writer.write(&batch)?;
                rows += batch.num_rows() as u64;
                observer.rows(&flow.object, rows);
            }
            Ok(())
        }
        .await;
        drop(stream);
        summary.rows = rows;
        if let Err(e) = written {
            if let Err(cleanup) = writer.abort() {
                tracing::warn!(object = %flow.object, error = %cleanup, "could not remove the failed run");
            }
            return Err(e);
        }
        writer.finish()?;
        dest.save_state(&flow.object, FlowState { window_end: window.end, run_id: id })?;
    }
    Ok(())
}
