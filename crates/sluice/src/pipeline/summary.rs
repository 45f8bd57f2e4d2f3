//! What a run reports: its options, its progress ([`Observer`]) and its outcome
//! ([`RunSummary`], one [`FlowSummary`] per flow, with [`Timings`] by phase), the same for
//! every destination.

use std::time::Duration;

use chrono::Utc;
use serde::{Serialize, Serializer};

use crate::config::FlowConfig;
use crate::consolidate::Trigger;
use crate::error::Result;
use crate::model::{Timestamp, Window};
use crate::source::salesforce::Options;

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Only these flows (by object name, case-insensitive); `None` for all.
    pub objects: Option<Vec<String>>,
    /// Read every selected flow's full window, ignoring committed state.
    pub full_refresh: bool,
    /// Forget the selected flows' committed state first (`sluice reset`), so they are read
    /// in full now and, should this run fail, on the next run too.
    pub reset: bool,
    /// Tuning of the Salesforce source.
    pub source: Options,
    /// What started the run, recorded in `_sluice.runs`.
    pub trigger: Trigger,
    /// How a flow that failed for a retryable reason is tried again.
    pub flow_retry: FlowRetry,
    /// The run's id, when the caller chose it before starting the run (`sluice serve` answers
    /// a request with it); a new one ([`new_run_id`]) when `None`.
    pub run_id: Option<String>,
    /// Run the selected flows no other run holds, reporting the others as
    /// [`FlowStatus::Held`] (`sluice serve`, sharing flows with other processes); otherwise a
    /// flow another run holds fails the run before it starts, naming the holder.
    pub skip_held: bool,
}

/// How a flow that failed for a retryable reason (the destination or the API hiccuped)
/// is tried again from its committed state: exponential backoff with jitter between
/// `min_delay` and `max_delay`, `attempts` in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowRetry {
    /// Attempts per flow, the first included (at least 1).
    pub attempts: u32,
    /// The first delay.
    pub min_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
}

impl Default for FlowRetry {
    /// 3 attempts, waiting about 0.5 s then 1 s: long enough for a transient fault to
    /// clear, short enough not to hold the run.
    fn default() -> Self {
        Self { attempts: 3, min_delay: Duration::from_millis(500), max_delay: Duration::from_secs(30) }
    }
}

/// Progress of a run, for progress bars and logs. Every method has an empty default.
pub trait Observer: Send + Sync {
    /// A flow starts extracting `window` (`None`: nothing to read this time).
    fn flow_started(&self, _object: &str, _window: Option<&Window>) {}
    /// `rows` rows of the flow were written so far.
    fn rows(&self, _object: &str, _rows: u64) {}
    /// A flow is done (in any status).
    fn flow_finished(&self, _flow: &FlowSummary) {}
}

/// An [`Observer`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Observer for Quiet {}

/// How one flow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowStatus {
    /// Its window was written and committed.
    Ok,
    /// It failed; its run was removed and its state is unchanged.
    Failed,
    /// The API quota (or budget) stopped the run at this flow; the next run resumes.
    Stopped,
    /// Not run because an earlier flow hit the API quota.
    Skipped,
    /// Not run because another run writes it now (another `sluice serve` sharing the
    /// destination); its error names the holder.
    Held,
    /// Staged and handed to its stored procedure (`consolidation = "procedure"`); the
    /// window end moves when the warehouse calls it.
    HandedOff,
}

impl FlowStatus {
    /// Whether the flow did all a run asks of it.
    pub fn succeeded(self) -> bool {
        matches!(self, FlowStatus::Ok | FlowStatus::HandedOff)
    }
}

impl std::fmt::Display for FlowStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FlowStatus::Ok => "ok",
            FlowStatus::Failed => "failed",
            FlowStatus::Stopped => "stopped: quota",
            FlowStatus::Skipped => "skipped",
            FlowStatus::Held => "held by another run",
            FlowStatus::HandedOff => "handed off",
        })
    }
}

/// How the run as a whole ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every flow committed.
    Ok,
    /// Some flows committed, others failed, stopped or were skipped.
    Partial,
    /// No flow committed.
    Failed,
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunStatus::Ok => "ok",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
        })
    }
}

fn secs<S: Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

fn millis<S: Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// Where a warehouse flow's time went, phase by phase (milliseconds in JSON), summed over
/// its attempts. Extraction and loading overlap (batches are written while the next is
/// read): `extract` is the time spent waiting for the source, `load` the rest of staging.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Timings {
    /// Reading the committed state, describing the object, planning windows.
    #[serde(serialize_with = "millis")]
    pub plan: Duration,
    /// Waiting for the source's pages.
    #[serde(serialize_with = "millis")]
    pub extract: Duration,
    /// Writing staging (and preparing it), besides waiting for the source.
    #[serde(serialize_with = "millis")]
    pub load: Duration,
    /// The consolidation transaction(s).
    #[serde(serialize_with = "millis")]
    pub consolidate: Duration,
    /// Reconciliation, when it was due.
    #[serde(serialize_with = "millis")]
    pub reconcile: Duration,
    /// Re-reading the formula fields, when it was due.
    #[serde(serialize_with = "millis")]
    pub formulas: Duration,
    /// Comparing source and destination counts.
    #[serde(serialize_with = "millis")]
    pub verify: Duration,
    /// Dropping staging.
    #[serde(serialize_with = "millis")]
    pub cleanup: Duration,
}

impl Timings {
    /// Each phase with its time, in order, by the names the JSON uses.
    pub fn phases(&self) -> [(&'static str, Duration); 8] {
        [
            ("plan", self.plan),
            ("extract", self.extract),
            ("load", self.load),
            ("consolidate", self.consolidate),
            ("reconcile", self.reconcile),
            ("formulas", self.formulas),
            ("verify", self.verify),
            ("cleanup", self.cleanup),
        ]
    }

    /// Adds `other`, phase by phase.
    pub fn add(&mut self, other: &Timings) {
        self.plan += other.plan;
        self.extract += other.extract;
        self.load += other.load;
        self.consolidate += other.consolidate;
        self.reconcile += other.reconcile;
        self.formulas += other.formulas;
        self.verify += other.verify;
        self.cleanup += other.cleanup;
    }
}

/// What a formula refresh did: the source rows it read (Id and formula fields), and the
/// rows of the table whose formula values had changed and were rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FormulaRefresh {
    /// Source rows read.
    pub read: u64,
    /// Rows rewritten.
    pub changed: u64,
}

/// The outcome of one flow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowSummary {
    /// Source object.
    pub object: String,
    /// Destination table (directory); the object name before it was described.
    pub table: String,
    /// How it ended.
    pub status: FlowStatus,
    /// The window read, when one was planned.
    pub window: Option<Window>,
    /// Rows written (committed only when `status` is ok).
    pub rows: u64,
    /// API calls made for this flow, when the source was reached.
    pub api_calls: Option<u64>,
    /// Wall-clock time, in seconds in JSON.
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    /// What went wrong (failed, stopped, skipped).
    pub error: Option<String>,
    /// Rows the consolidation inserted, updated and deleted (warehouses).
    pub merged: Option<MergeCounts>,
    /// Rows reconciliation removed, when it ran.
    pub reconciled: Option<u64>,
    /// The formula refresh, when it ran.
    pub formulas: Option<FormulaRefresh>,
    /// Source and destination live rows at the window end (warehouses).
    pub verify: Option<VerifyCounts>,
    /// Things the user should know that did not stop the flow.
    pub warnings: Vec<String>,
    /// The `CALL` that consolidates a handed-off load.
    pub handed_off: Option<String>,
    /// Where the time went (warehouses; the files destination does not record phases).
    pub timings: Option<Timings>,
}

impl FlowSummary {
    /// A flow not run yet: `skipped`, nothing read.
    pub fn new(flow: &FlowConfig, naming: crate::model::Naming) -> Self {
        Self {
            object: flow.object.clone(),
            table: naming.apply(&flow.object),
            status: FlowStatus::Skipped,
            window: None,
            rows: 0,
            api_calls: None,
            duration: Duration::ZERO,
            error: None,
            merged: None,
            reconciled: None,
            formulas: None,
            verify: None,
            warnings: Vec::new(),
            handed_off: None,
            timings: None,
        }
    }
}

impl FlowSummary {
    /// Records how the flow ended: `ok`, `stopped` for a quota stop, else `failed`, with the
    /// error prefixed by the object name.
    pub(crate) fn finish(&mut self, result: &Result<()>) {
        let Err(e) = result else {
            self.status = if self.handed_off.is_some() { FlowStatus::HandedOff } else { FlowStatus::Ok };
            return;
        };
        // What a flow's error says is shown, logged and written to the control tables: any
        // URL credentials a server or library quoted are cut out here, whatever the source.
        let message = crate::redact::userinfo(&e.message).into_owned();
        let message = if message.starts_with(&self.object) { message } else { format!("{}: {message}", self.object) };
        self.status = if e.is_quota() { FlowStatus::Stopped } else { FlowStatus::Failed };
        tracing::info!(object = %self.object, error = %message, "flow did not complete");
        self.error = Some(message);
    }
}

impl RunStatus {
    /// How `_sluice.runs.status` records it.
    pub fn persisted(self) -> crate::consolidate::RunState {
        use crate::consolidate::RunState;
        match self {
            RunStatus::Ok => RunState::Ok,
            RunStatus::Partial => RunState::Partial,
            RunStatus::Failed => RunState::Failed,
        }
    }

    /// `ok` when every flow committed, `failed` when none did, else `partial`.
    pub(crate) fn of(flows: &[FlowSummary]) -> Self {
        match flows.iter().filter(|f| f.status.succeeded()).count() {
            n if n == flows.len() => RunStatus::Ok,
            0 => RunStatus::Failed,
            _ => RunStatus::Partial,
        }
    }
}

/// What one consolidation changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MergeCounts {
    /// New records.
    pub inserted: u64,
    /// Records whose version advanced.
    pub updated: u64,
    /// Records deleted (removed, or flagged in soft mode).
    pub deleted: u64,
}

/// A verification: live rows at the source and in the destination, both counted over
/// cursors before `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VerifyCounts {
    /// The window end compared at (`None`: every row, for objects without a cursor).
    pub at: Option<Timestamp>,
    /// The source's `COUNT()`.
    pub source: u64,
    /// The destination's live rows.
    pub destination: u64,
}

impl VerifyCounts {
    /// Whether the counts agree.
    pub fn matches(&self) -> bool {
        self.source == self.destination
    }
}

/// The outcome of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// The run's id (UTC timestamp and a random suffix).
    pub run_id: String,
    /// Every selected flow, in config order.
    pub flows: Vec<FlowSummary>,
    /// How the run ended.
    pub status: RunStatus,
    /// Why the run stopped early (`"quota"`), if it did.
    pub stopped: Option<String>,
    /// The org's API calls used and allowed in its rolling 24 hours, as the run's last
    /// response said (`Sforce-Limit-Info`).
    pub api_usage: Option<(u64, u64)>,
}

impl RunSummary {
    /// Whether every flow committed.
    pub fn is_ok(&self) -> bool {
        self.status == RunStatus::Ok
    }
}

/// A fresh run id: `YYYYMMDDTHHMMSSZ-xxxx` (UTC, then 4 random hex digits), which sorts
/// by time.
pub fn new_run_id() -> String {
    format!("{}-{:04x}", Utc::now().format("%Y%m%dT%H%M%SZ"), rand::random::<u16>())
}
