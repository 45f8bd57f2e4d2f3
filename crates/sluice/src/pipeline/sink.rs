//! The pipeline-level sink: what the run loop every destination shares ([`super::flows`])
//! asks of a destination. A warehouse stages and consolidates in one transaction
//! ([`super::warehouse::WarehouseSink`]); the files destination writes parts, then a
//! manifest, then its state ([`super::files_run::FilesSink`]). The loop around them is the
//! same: bounded parallel flows, retries with backoff from the committed state, failure
//! isolation, the quota stop, API metering.

use std::future::Future;

use super::summary::{FlowSummary, Observer, RunStatus, SyncOptions};
use crate::Result;
use crate::config::{Config, FlowConfig};
use crate::source::salesforce::SalesforceSource;

/// What the flows of one run share, whatever the destination.
pub struct RunCx<'a> {
    /// The connected source.
    pub source: &'a SalesforceSource,
    /// The whole config.
    pub config: &'a Config,
    /// The run's options.
    pub opts: &'a SyncOptions,
    /// Progress sink.
    pub observer: &'a dyn Observer,
    /// This run's id.
    pub run_id: String,
}

/// A destination as the run loop drives it. The destination's run lock is held by the
/// value for its whole life (taken when it was opened).
pub trait Sink: Sync {
    /// Makes the destination ready for the run (control tables, the run's own record). An
    /// `Err` means the run cannot start.
    fn begin_run(&self, run: &RunCx<'_>) -> impl Future<Output = Result<()>> + Send;

    /// One attempt of `flow`, from its committed state to its new committed state (every
    /// window of it), recording what it did in `summary`. An attempt that fails commits
    /// nothing more than the windows it finished; the next attempt starts from there.
    fn run_flow(
        &self,
        run: &RunCx<'_>,
        flow: &FlowConfig,
        summary: &mut FlowSummary,
        attempt: u32,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Forgets the committed state of `flows` (`sluice reset`), before any of them runs.
    fn forget(&self, run: &RunCx<'_>, flows: &[&FlowConfig]) -> impl Future<Output = Result<()>> + Send;

    /// Records that `flow` failed for good with `message` (best effort: the run goes on).
    fn flow_failed(&self, run: &RunCx<'_>, flow: &FlowConfig, message: &str)
    -> impl Future<Output = Result<()>> + Send;

    /// Records how the run ended (best effort: the flows' commits stand regardless).
    fn end_run(&self, run: &RunCx<'_>, status: RunStatus) -> impl Future<Output = Result<()>> + Send;
}
