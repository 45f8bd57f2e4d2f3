//! The run loop every destination shares (DESIGN "Orchestration").
//!
//! [`run`] lets the [`Sink`] prepare the run, then drives every selected flow through the
//! sink ([`super::flow::drive`] for each attempt) with at most `max_parallel_flows` at once, in config order. A flow whose error is
//! retryable (the destination or the API hiccuped) is tried again from its committed state
//! with backoff; any other failure is recorded by the sink and isolated — the other flows
//! go on and the run is `partial`. A quota stop lets running flows end and skips the ones
//! not started; the next run resumes.
//!
//! The exactly-once guarantee does not depend on any of this bookkeeping: it rests on each
//! sink's commit alone (a warehouse's consolidation transaction, the files destination's
//! manifest then state).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use backon::BackoffBuilder as _;
use futures_util::StreamExt;

use super::sink::{RunCx, Sink};
use super::summary::{FlowStatus, FlowSummary, RunStatus, RunSummary};
use crate::Result;
use crate::config::FlowConfig;
use crate::source::salesforce::client::{Meter, metered};

/// Runs `flows` into `sink` (see the module docs). An `Err` means the run could not start;
/// single flows' failures are in the summary.
pub(crate) async fn run<S: Sink>(sink: &S, run: &RunCx<'_>, flows: Vec<&FlowConfig>) -> Result<RunSummary> {
    sink.begin_run(run).await?;
    // From here on a kill leaves a run the next one marks abandoned (the crash tests wait
    // for this line).
    tracing::debug!(run = %run.run_id, "run recorded");
    if run.opts.reset {
        sink.forget(run, &flows).await?;
        for flow in &flows {
            tracing::warn!(object = %flow.object, "reset: the committed state is forgotten; reading the object in full");
        }
    }
    let stopped = AtomicBool::new(false);
    let parallel = run.config.source.max_parallel_flows.max(1);
    let summaries: Vec<FlowSummary> = futures_util::stream::iter(flows)
        .map(|flow| run_flow(sink, run, flow, &stopped))
        .buffered(parallel)
        .collect()
        .await;

    let status = RunStatus::of(&summaries);
    // The flows' own commits stand whatever happens to this bookkeeping (a full disk, a
    // lost connection): the summary must still say which committed.
    let recorded = match crate::failpoint::check("run-finished") {
        Ok(()) => sink.end_run(run, status).await,
        Err(e) => Err(e),
    };
    if let Err(e) = recorded {
        tracing::warn!(run = %run.run_id, error = %e, "could not record the end of the run; the flows' results stand");
    }
    let stopped = summaries.iter().any(|s| s.status == FlowStatus::Stopped).then(|| "quota".to_owned());
    let api_usage = run.source.client().api_usage();
    Ok(RunSummary { run_id: run.run_id.clone(), flows: summaries, status, stopped, api_usage })
}

/// One flow with its retries, turned into a summary whatever happens.
async fn run_flow<S: Sink>(sink: &S, run: &RunCx<'_>, flow: &FlowConfig, stopped: &AtomicBool) -> FlowSummary {
    let started = Instant::now();
    let naming = run.config.destination.naming();
    let mut summary = FlowSummary::new(flow, naming);
    if stopped.load(Ordering::SeqCst) {
        summary.error = Some("not run: the run stopped (quota)".to_owned());
        run.observer.flow_finished(&summary);
        return summary;
    }
    // Every call made for this flow, over all its attempts (flows run side by side, so the
    // client's own total cannot tell them apart).
    let meter = std::sync::Arc::new(Meter::default());
    // The client's backoff crate, as delays only: each attempt restarts the flow from its
    // committed state with a fresh summary, which backon's closure-based retry cannot hand back.
    let retry = run.opts.flow_retry;
    let mut delays = backon::ExponentialBuilder::default()
        .with_min_delay(retry.min_delay)
        .with_max_delay(retry.max_delay)
        .with_jitter()
        .with_max_times(retry.attempts.max(1) as usize - 1)
        .build();
    let mut attempt = 1;
    let result = loop {
        let mut fresh = FlowSummary::new(flow, naming);
        let attempt_of = async {
            let mut open = sink.open_flow(run, flow, attempt).await?;
            super::flow::drive(&mut open, run, flow, &mut fresh).await
        };
        let result = metered(meter.clone(), attempt_of).await;
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
    if let (Err(_), Some(message)) = (&result, &summary.error)
        && let Err(e) = sink.flow_failed(run, flow, message).await
    {
        tracing::warn!(object = %flow.object, error = %e, "could not record the failure");
    }
    run.observer.flow_finished(&summary);
    summary
}
