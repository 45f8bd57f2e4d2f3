//! The pipeline-level sink: the one contract every destination implements, and all the
//! run loop ([`super::flows`]) and the flow driver ([`super::flow`]) ask of one.
//!
//! A run: [`Sink::begin_run`], then per flow and attempt [`Sink::open_flow`], which hands
//! back a [`FlowSink`] driven through
//! `start → prepare → (begin → write… → staged → commit)… → reconcile → refresh_formulas →
//! verify → cleanup` (the two after the commits when due),
//! then [`Sink::end_run`]. The driver owns everything that is the same for every
//! destination (planning the read, extracting, masking, the read window of a full read,
//! timings, progress); a sink owns only its effects. A warehouse stages and consolidates
//! in one transaction with the window end ([`super::warehouse_flow::WarehouseFlow`]); the
//! files destination writes parts, then a manifest, then its state
//! (`FilesFlow`, in `destination/files/sink.rs`).

use std::future::Future;

use arrow::record_batch::RecordBatch;

use super::plan::Planned;
use super::summary::{FlowSummary, Observer, RunStatus, SyncOptions};
use crate::Result;
use crate::config::{Config, FlowConfig};
use crate::model::{Timestamp, Window};
use crate::source::salesforce::SalesforceSource;
use crate::source::salesforce::describe::Described;

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

impl<'a> RunCx<'a> {
    /// A new run, with the id `opts` chose or a new one ([`super::summary::new_run_id`]).
    pub fn new(
        source: &'a SalesforceSource,
        config: &'a Config,
        opts: &'a SyncOptions,
        observer: &'a dyn Observer,
    ) -> Self {
        Self { source, config, opts, observer, run_id: opts.run_id.clone().unwrap_or_else(super::summary::new_run_id) }
    }
}

/// A destination as the run loop drives it. The destination's run lock is held by the
/// value for its whole life (taken when it was opened).
pub trait Sink: Sync {
    /// One attempt of one flow into this destination.
    type Flow<'s>: FlowSink
    where
        Self: 's;

    /// Makes the destination ready for the run (control tables, the run's own record). An
    /// `Err` means the run cannot start.
    fn begin_run(&self, run: &RunCx<'_>) -> impl Future<Output = Result<()>> + Send;

    /// Opens attempt `attempt` (1, 2, …) of `flow`. A retry opens a new one, which starts
    /// again from what the earlier attempts committed.
    fn open_flow<'s>(
        &'s self,
        run: &'s RunCx<'_>,
        flow: &'s FlowConfig,
        attempt: u32,
    ) -> impl Future<Output = Result<Self::Flow<'s>>> + Send;

    /// Forgets the committed state of `flows` (`sluice reset`), before any of them runs.
    fn forget(&self, run: &RunCx<'_>, flows: &[&FlowConfig]) -> impl Future<Output = Result<()>> + Send;

    /// Records that `flow` failed for good with `message` (best effort: the run goes on).
    fn flow_failed(&self, run: &RunCx<'_>, flow: &FlowConfig, message: &str)
    -> impl Future<Output = Result<()>> + Send;

    /// Records how the run ended (best effort: the flows' commits stand regardless).
    fn end_run(&self, run: &RunCx<'_>, status: RunStatus) -> impl Future<Output = Result<()>> + Send;
}

/// What a destination holds for a flow before it is planned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Start {
    /// The committed window end (`None`: never committed, or forgotten).
    pub window_end: Option<Timestamp>,
    /// The fingerprint of the flow's selection at that commit, when recorded (see
    /// [`super::context::selection_changed`]).
    pub selection: Option<String>,
    /// Why the committed window no longer stands for what the destination holds (a table
    /// dropped or emptied, committed runs removed): the flow is read in full.
    pub lost: Option<String>,
}

/// One slice of a flow's read, as the driver hands it to [`FlowSink::begin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    /// Its position among the flow's slices, from 0.
    pub index: usize,
    /// How many slices the flow reads.
    pub count: usize,
    /// The window it covers; committed as the flow's new end by [`FlowSink::commit`].
    pub window: Window,
}

impl Slice {
    /// Whether it is the flow's last slice.
    pub fn is_last(&self) -> bool {
        self.index + 1 == self.count
    }
}

/// How a slice's commit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// The slice and its window end are committed.
    Applied,
    /// The load was handed to the warehouse, which commits it later (nothing more to do
    /// for the flow in this run: checks need the committed table).
    HandedOff,
}

/// One attempt of one flow inside a destination: the per-flow contract. The driver calls
/// the methods in the order the module docs give; a sink may rely on it.
pub trait FlowSink: Send {
    /// Reads the flow's committed state, and refuses to go on where the destination cannot
    /// take the flow as configured (say, a table written another way).
    fn start(&mut self) -> impl Future<Output = Result<Start>> + Send;

    /// The read is planned (`planned.full`: the whole object is read): returns the slices'
    /// windows to write, the planned ones unless the destination needs them otherwise (a
    /// hand-off to a stored procedure joins them into one).
    fn prepare(
        &mut self,
        planned: &Planned,
        summary: &mut FlowSummary,
    ) -> impl Future<Output = Result<Vec<Window>>> + Send;

    /// Whether the last slice of a full read is the whole truth: rows it did not return are
    /// removed, so it reads past its window end too (a record changed while the read ran
    /// must not look deleted). Sinks that only add rows say no.
    fn removes_absent(&self) -> bool;

    /// Opens `slice` for writing.
    fn begin(&mut self, slice: Slice) -> impl Future<Output = Result<()>> + Send;

    /// Writes one batch of the open slice (masked already).
    fn write(&mut self, batch: RecordBatch) -> impl Future<Output = Result<()>> + Send;

    /// The read of the open slice failed after `begin`: drops what it wrote, best effort
    /// (what is left is never committed, and the next attempt clears it).
    fn abort(&mut self) -> impl Future<Output = ()> + Send;

    /// Every batch of the open slice is written: `rows` of them.
    fn staged(&mut self, rows: u64) -> impl Future<Output = Result<()>> + Send;

    /// Commits the open slice with its window end, atomically: after a crash either both
    /// are there or neither. Counts of what changed go to `summary`.
    fn commit(&mut self, summary: &mut FlowSummary) -> impl Future<Output = Result<Commit>> + Send;

    /// Whether a reconciliation (removing rows the source no longer has) is due now that
    /// every slice is committed.
    fn reconcile_due(&self) -> bool;

    /// Reconciles the committed table with the source.
    fn reconcile(
        &mut self,
        described: &Described,
        summary: &mut FlowSummary,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Whether a formula refresh (re-reading the formula fields, whose values change
    /// without the cursor moving) is due now that every slice is committed.
    fn formulas_due(&self) -> bool;

    /// Re-reads the formula fields of every live source row and rewrites the values that
    /// changed, in one transaction, leaving the window alone.
    fn refresh_formulas(
        &mut self,
        described: &Described,
        summary: &mut FlowSummary,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Compares what the destination holds with the source at the committed window end,
    /// where the destination can count it.
    fn verify(&mut self, described: &Described, summary: &mut FlowSummary) -> impl Future<Output = Result<()>> + Send;

    /// Removes what the flow's commits no longer need (staging).
    fn cleanup(&mut self) -> impl Future<Output = Result<()>> + Send;
}
