//! The run orchestrator for warehouse destinations (DESIGN "Orchestration").
//!
//! [`run`] records the run in `_sluice.runs`, then drives every selected flow through the
//! phases of [`super::phase`] ([`flow::FlowDriver`]) with at most `max_parallel_flows` at once,
//! in config order. A flow whose error is retryable (the warehouse or the API hiccuped) is
//! tried again from its committed window with backoff; any other failure is recorded in
//! `_sluice.flow_runs` and isolated — the other flows go on and the run is `partial`. A
//! quota stop lets running flows end and skips the ones not started; the next run resumes.
//!
//! The exactly-once guarantee does not depend on any of this bookkeeping: it rests on the
//! consolidation transaction alone ([`crate::consolidate`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use backon::BackoffBuilder as _;
use chrono::Utc;
use futures_util::StreamExt;

use super::context::{Ctx, config_fingerprint, layout_state};
use super::summary::{
    FlowStatus, FlowSummary, Observer, Quiet, RunStatus, RunSummary, SyncOptions, VerifyCounts, new_run_id,
};
use super::{checks, flow};
use crate::config::{Config, Consolidation, FlowConfig};
use crate::consolidate;
use crate::destination::{Destination, Value};
use crate::source::salesforce::SalesforceSource;
use crate::source::salesforce::client::{Meter, metered};
use crate::{Error, Result};

/// Attempts per flow for retryable errors.
const MAX_ATTEMPTS: u32 = 3;

/// Makes the control tables ready for a run into `schema`: refuses a layout from a newer
/// sluice, migrates an older one (in one transaction), creates what is missing. Serialised
/// among runs of other schemas of the same database where the destination allows it
/// ([`consolidate::setup_lock`]).
async fn prepare_control<D: Destination>(dest: &D, config: &Config, schema: &str) -> Result<()> {
    let lock = consolidate::setup_lock(dest.dialect());
    if let Some([take, _]) = &lock {
        dest.execute(vec![take.clone()]).await?;
    }
    let result = prepare_locked(dest, config, schema).await;
    if let Some([_, give]) = lock
        && let Err(e) = dest.execute(vec![give]).await
    {
        tracing::warn!(error = %e, "could not give back the control-table lock; the session's end frees it");
    }
    result
}

async fn prepare_locked<D: Destination>(dest: &D, config: &Config, schema: &str) -> Result<()> {
    let d = dest.dialect();
    let state = layout_state(dest).await?;
    consolidate::check_layout(state, &dest.location())?;
    if state == consolidate::LayoutState::V1 {
        let naming = config.destination.naming();
        let rows = dest.query(consolidate::v1_flows_query(d)).await?;
        let tables: Vec<(String, String)> = rows
            .iter()
            .filter_map(|r| r.first().and_then(Value::as_str))
            .map(|flow| (flow.to_owned(), naming.apply(flow)))
            .collect();
        dest.transaction(consolidate::migrate_v1(d, schema, &tables, Utc::now())).await?;
        tracing::warn!(
            schema,
            flows = tables.len(),
            "upgraded the control tables to layout {}: they are now keyed by target table; the existing state was \
             given to schema {schema}",
            consolidate::LAYOUT_VERSION
        );
    }
    dest.execute(consolidate::control_ddl(d, Utc::now())).await
}

/// Runs the flows into a warehouse (see the module docs). An `Err` means the run could not
/// start; single flows' failures are in the summary.
pub async fn run<D: Destination>(
    dest: &D,
    source: &SalesforceSource,
    config: &Config,
    flows: Vec<&FlowConfig>,
    opts: &SyncOptions,
    observer: &dyn Observer,
    schema: &str,
) -> Result<RunSummary> {
    let d = dest.dialect();
    let run_id = new_run_id();
    prepare_control(dest, config, schema).await?;
    // Holding the schema (its lock), any run of it still marked running is dead.
    let mut setup = vec![consolidate::abandon_runs(d, schema)];
    setup.extend(consolidate::run_started(
        d,
        &run_id,
        schema,
        if opts.trigger.is_empty() { "manual" } else { &opts.trigger },
        Utc::now(),
        &config_fingerprint(config),
    ));
    dest.execute(setup).await?;
    if d.caps().procedures && config.destination.consolidation() == Consolidation::Run {
        // A procedure left by an earlier `consolidation = "procedure"` would consolidate
        // whatever this run stages: gone before any flow stages.
        let rows = dest.query(consolidate::procedure::leftovers_query(d, schema)).await?;
        dest.execute(consolidate::procedure::drop_leftovers(d, schema, &rows)).await?;
    }

    let cx = Ctx::new(dest, source, config, opts, observer, run_id.clone(), schema);
    let stopped = AtomicBool::new(false);
    let parallel = config.source.max_parallel_flows.max(1);
    let summaries: Vec<FlowSummary> =
        futures_util::stream::iter(flows).map(|flow| run_flow(&cx, flow, &stopped)).buffered(parallel).collect().await;

    let status = RunStatus::of(&summaries);
    // The flows' own commits stand whatever happens to this bookkeeping row (a full disk,
    // a lost connection): the summary must still say which committed. The row stays
    // `running` and the next run of the schema marks it abandoned.
    let record = consolidate::run_finished(d, &run_id, status.persisted(), Utc::now());
    let recorded = match crate::failpoint::check("run-finished") {
        Ok(()) => dest.execute(vec![record]).await,
        Err(e) => Err(e),
    };
    if let Err(e) = recorded {
        tracing::warn!(run = %run_id, error = %e, "could not record the end of the run; the flows' results stand");
    }
    let stopped = summaries.iter().any(|s| s.status == FlowStatus::Stopped).then(|| "quota".to_owned());
    Ok(RunSummary { run_id, flows: summaries, status, stopped })
}

/// One flow with its retries, turned into a summary whatever happens.
async fn run_flow<D: Destination>(cx: &Ctx<'_, D>, flow: &FlowConfig, stopped: &AtomicBool) -> FlowSummary {
    let started = Instant::now();
    let mut summary = FlowSummary::new(flow, cx.config.destination.naming());
    if stopped.load(Ordering::SeqCst) {
        summary.error = Some("not run: the run stopped (quota)".to_owned());
        cx.observer.flow_finished(&summary);
        return summary;
    }
    // Every call made for this flow, over all its attempts (flows run side by side, so the
    // client's own total cannot tell them apart).
    let meter = std::sync::Arc::new(Meter::default());
    // The client's backoff crate, as delays only: each attempt restarts the flow from its
    // committed window with a fresh summary, which backon's closure-based retry cannot hand back.
    let mut delays = backon::ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(500))
        .with_max_delay(std::time::Duration::from_secs(30))
        .with_jitter()
        .with_max_times(MAX_ATTEMPTS as usize - 1)
        .build();
    let mut attempt = 1;
    let result = loop {
        let mut fresh = FlowSummary::new(flow, cx.config.destination.naming());
        let result = metered(meter.clone(), flow::FlowDriver::new(cx, flow, &mut fresh, attempt).run()).await;
        summary = fresh;
        match (result, delays.next()) {
            (Err(e), Some(delay)) if e.is_retryable() && !e.is_quota() => {
                tracing::warn!(object = %flow.object, attempt, error = %e, "flow failed, retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            (other, _) => break other,
        }
    };
    summary.api_calls = Some(meter.calls());
    summary.duration = started.elapsed();
    summary.finish(&result);
    if summary.status == FlowStatus::Stopped {
        stopped.store(true, Ordering::SeqCst);
    }
    if let (Err(_), Some(message)) = (&result, &summary.error) {
        let target = cx.target_of(flow);
        let record =
            consolidate::flow_failed(cx.dest.dialect(), &cx.run_id, &target, &flow.object, message, Utc::now());
        if let Err(e) = cx.dest.execute(record).await {
            tracing::warn!(object = %flow.object, error = %e, "could not record the failure");
        }
    }
    cx.observer.flow_finished(&summary);
    summary
}

/// The outcome of `sluice verify` for one flow.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FlowVerify {
    /// Flow (object) name.
    pub flow: String,
    /// The counts, when the flow has committed anything and the check ran.
    pub counts: Option<VerifyCounts>,
    /// Rows `--repair` removed (or flagged, in soft mode).
    pub repaired: Option<u64>,
    /// Why the check could not run, or the repair was refused.
    pub error: Option<String>,
}

/// `sluice verify [--repair]`: per selected flow, the source's live count against the
/// destination's at the committed window end; with `repair`, a reconciliation first (still
/// guarded by `max_delete_ratio`).
pub async fn verify<D: Destination>(
    dest: &D,
    source: &SalesforceSource,
    config: &Config,
    flows: Vec<&FlowConfig>,
    opts: &SyncOptions,
    schema: &str,
    repair: bool,
) -> Result<Vec<FlowVerify>> {
    prepare_control(dest, config, schema).await?;
    let run_id = format!("verify-{}", new_run_id());
    let cx = Ctx::new(dest, source, config, opts, &Quiet, run_id, schema);
    let mut out = Vec::new();
    for flow in flows {
        let mut result = FlowVerify { flow: flow.object.clone(), counts: None, repaired: None, error: None };
        if let Err(e) = verify_one(&cx, flow, repair, &mut result).await {
            result.error = Some(e.message);
        }
        out.push(result);
    }
    Ok(out)
}

async fn verify_one<D: Destination>(
    cx: &Ctx<'_, D>,
    flow: &FlowConfig,
    repair: bool,
    out: &mut FlowVerify,
) -> Result<()> {
    use crate::source::salesforce::describe::Selection;
    let committed = flow::committed(cx.dest, &cx.target_of(flow)).await?;
    let Some(end) = committed.window_end else {
        return Err(Error::user(format!(
            "{}: never synced into this destination; run `sluice sync` first",
            flow.object
        )));
    };
    let described =
        cx.source.describe(&flow.object, &Selection::for_flow(flow, cx.config.destination.naming())).await?;
    let spec = consolidate::MergeSpec::new(
        &described.schema,
        &cx.schema,
        flow.settings.deletes,
        flow.settings.history,
        &cx.run_id,
        Utc::now(),
    )?;
    if cx.dest.columns(spec.target.clone()).await?.is_none() {
        return Err(Error::user(format!(
            "{}: table {} is missing",
            flow.object,
            cx.dest.dialect().table(&spec.target)
        )));
    }
    if repair {
        out.repaired = Some(checks::reconcile(cx, flow, &described, &spec).await?);
    }
    out.counts = Some(checks::verify(cx, flow, &described, &spec, Some(end)).await?);
    Ok(())
}
