//! One run of a set of flows (DESIGN "One flow, one run"): the entry point for every
//! destination, the summary types, and the files destination's run.
//!
//! [`sync`] opens the destination first (taking DuckDB's file lock or PostgreSQL's
//! advisory lock, so a second run fails before calling the source), connects to the source, and hands warehouses to
//! [`crate::run`]. For the files destination it connects to the source once, then walks the selected flows in config order:
//! check the API budget (a quota stop ends the run at a flow boundary, the remaining
//! flows are `skipped`), read the flow's committed window end, describe the object, plan
//! the window `[E − lookback, U)` (full on a first run, a `--full-refresh`, `mode =
//! "full"`, or an object without a cursor), extract it, write one files run, write the
//! run's manifest, and only then save the new window end. A crash at any point leaves no
//! manifest and no advanced state, so the next run reads the window again. With `slice`,
//! the window is cut into slices, each written and committed as a run of its own
//! (`<run id>-001`, ...), so a failure loses at most one slice.
//!
//! A failing flow aborts its own run (its files are removed) and is recorded as
//! `failed`; the other flows still run. Nothing here prints: progress goes to an
//! [`Observer`].

use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::StreamExt;
use serde::{Serialize, Serializer};

use crate::config::{Config, DestinationConfig, FileFormat, FlowConfig, Mode};
use crate::destination::Destination;
use crate::destination::duckdb::DuckDb;
use crate::destination::files::{FilesDestination, FlowState};
use crate::destination::postgres::{PgUrl, Postgres, SessionSettings};
use crate::destination::redshift::Redshift;
use crate::error::{Error, Result};
use crate::model::{Cursor, Timestamp, Window};
use crate::source::plan_windows;
use crate::source::salesforce::describe::{Described, Selection};
use crate::source::salesforce::{Options, SalesforceSource, rest};

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Only these flows (by object name, case-insensitive); `None` for all.
    pub objects: Option<Vec<String>>,
    /// Read every selected flow's full window, ignoring committed state.
    pub full_refresh: bool,
    /// Tuning of the Salesforce source.
    pub source: Options,
    /// What started the run (`manual`, `demo`, `schedule`), recorded in `_sluice.runs`.
    pub trigger: String,
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
    /// Comparing source and destination counts.
    #[serde(serialize_with = "millis")]
    pub verify: Duration,
    /// Dropping staging.
    #[serde(serialize_with = "millis")]
    pub cleanup: Duration,
}

impl Timings {
    /// Each phase with its time, in order, by the names the JSON uses.
    pub fn phases(&self) -> [(&'static str, Duration); 7] {
        [
            ("plan", self.plan),
            ("extract", self.extract),
            ("load", self.load),
            ("consolidate", self.consolidate),
            ("reconcile", self.reconcile),
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
        self.verify += other.verify;
        self.cleanup += other.cleanup;
    }
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
    /// `ok` when every flow committed, `failed` when none did, else `partial`.
    pub(crate) fn of(flows: &[FlowSummary]) -> Self {
        match flows.iter().filter(|f| f.status.succeeded()).count() {
            n if n == flows.len() => RunStatus::Ok,
            0 => RunStatus::Failed,
            _ => RunStatus::Partial,
        }
    }
}

/// A flow's planned read, shared by the files run and the warehouse driver.
pub(crate) struct Planned {
    /// The object's schema for this flow.
    pub described: Described,
    /// Whether the whole object is read (first run, `--full-refresh`, `mode = "full"`, no cursor).
    pub full: bool,
    /// The windows (slices) to read, in order; empty when the source clock has not moved.
    pub windows: Vec<Window>,
}

/// Checks the API budget, describes the object and plans the flow's windows from the
/// `committed` end (DESIGN step 1), or in full when `reload` (the destination lost what the
/// committed end stands for); sets the summary's table and window and tells the observer
/// the flow started.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn plan_flow(
    source: &SalesforceSource,
    config: &Config,
    flow: &FlowConfig,
    opts: &SyncOptions,
    committed: Option<Timestamp>,
    reload: bool,
    observer: &dyn Observer,
    summary: &mut FlowSummary,
) -> Result<Planned> {
    source.client().check_budget()?;
    let described = source.describe(&flow.object, &Selection::for_flow(flow, config.destination.naming())).await?;
    summary.table = described.schema.table.clone();
    let settings = &flow.settings;
    let full = reload || opts.full_refresh || settings.mode == Mode::Full || described.schema.cursor == Cursor::None;
    let now = source.source_now().unwrap_or_else(Utc::now);
    let committed = committed.filter(|_| !full);
    // A full window is sliced from the oldest row, so fetch it only when slicing one.
    let oldest = match (settings.slice, committed, described.schema.cursor.field()) {
        (Some(_), None, Some(field)) => rest::oldest(source.client(), &flow.object, field).await?,
        _ => None,
    };
    let windows = plan_windows(committed, now, settings.lookback, settings.lag, settings.slice, oldest);
    let windows = fit_to_budget(source, flow, &described, windows).await?;
    // `None` when the source clock has not passed the committed end: nothing to read yet.
    summary.window = windows.first().zip(windows.last()).map(|(a, b)| Window { start: a.start, end: b.end });
    observer.flow_started(&flow.object, summary.window.as_ref());
    Ok(Planned { described, full, windows })
}

/// Merges runs of empty slices into the next slice with data (one cheap query per merged
/// slice: where the next data lies), then checks the plan against the API budget: a plan
/// whose estimated calls exceed what `api_budget_percent` leaves today is refused before
/// anything is read, with the estimate, rather than stopping half way (a first load with
/// `slice = "1h"` over ten years once planned thousands of calls). Probing stops as soon as
/// the estimate is over the budget.
async fn fit_to_budget(
    source: &SalesforceSource,
    flow: &FlowConfig,
    described: &Described,
    windows: Vec<Window>,
) -> Result<Vec<Window>> {
    use crate::source::window::{calls_per_window, merge_until_data};
    let client = source.client();
    let bulk = match flow.api {
        crate::config::Api::Rest => false,
        _ => described.bulk_compatible(),
    };
    let per_window = calls_per_window(bulk, flow.api == crate::config::Api::Auto);
    let left = client.budget_left();
    // Describe is done; the verification's count and the run's own reads remain.
    const OVERHEAD: u64 = 2;
    let refuse = |estimate: u64, windows: usize, left: u64| {
        Error::user(format!(
            "{}: the plan reads {windows} windows, an estimated {estimate} API calls at least, more than the {left}              left today within api_budget_percent = {}; widen this flow's `slice` (or raise api_budget_percent) so              that it fits",
            flow.object,
            source.client().budget_percent()
        ))
    };
    let field = described.schema.cursor.field();
    let mut merged = Vec::with_capacity(windows.len());
    let mut probes = 0u64;
    match field {
        Some(field) if windows.len() > 1 => {
            let mut i = 0;
            while i < windows.len() {
                let first = rest::oldest_from(client, &flow.object, field, windows[i].start).await?;
                probes += 1;
                let (window, next) = merge_until_data(&windows, i, first);
                merged.push(window);
                i = next;
                let so_far = probes + merged.len() as u64 * per_window + OVERHEAD;
                if let Some(left) = left
                    && so_far > left
                {
                    let lower = so_far + (windows.len() - i).min(1) as u64 * per_window;
                    return Err(refuse(lower, merged.len() + usize::from(i < windows.len()), left));
                }
            }
            if merged.len() < windows.len() {
                tracing::info!(object = %flow.object, planned = windows.len(), kept = merged.len(), "merged empty slices");
            }
        }
        _ => merged = windows,
    }
    let estimate = probes + merged.len() as u64 * per_window + OVERHEAD;
    if let Some(left) = left
        && estimate > left
    {
        return Err(refuse(estimate, merged.len(), left));
    }
    Ok(merged)
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

/// The flows `objects` names, in config order (all of them for `None`). An unknown
/// name is a user error listing the valid ones.
pub fn select_flows<'a>(config: &'a Config, objects: Option<&[String]>) -> Result<Vec<&'a FlowConfig>> {
    let Some(wanted) = objects else { return Ok(config.flows.iter().collect()) };
    let unknown: Vec<&str> = wanted
        .iter()
        .map(|w| w.trim())
        .filter(|w| !config.flows.iter().any(|f| f.object.eq_ignore_ascii_case(w)))
        .collect();
    if !unknown.is_empty() {
        let valid: Vec<&str> = config.flows.iter().map(|f| f.object.as_str()).collect();
        return Err(Error::user(format!(
            "--objects: no flow for {} in {}; the flows are: {}",
            unknown.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(", "),
            config.origin,
            valid.join(", ")
        )));
    }
    Ok(config.flows.iter().filter(|f| wanted.iter().any(|w| f.object.eq_ignore_ascii_case(w.trim()))).collect())
}

/// Opens the configured warehouse for writing, which takes its run lock (DuckDB's file
/// lock, PostgreSQL's advisory lock, Redshift's lease), binds it to `$dest` and the schema
/// to `$schema`, awaits `$body` (an async block) for whichever type it is, and gives the
/// lock back before returning the body's result. The body is written once; the macro
/// instantiates it per destination type, because [`Destination`] is generic, not dyn.
macro_rules! with_warehouse {
    ($config:expr, $command:expr, |$dest:ident, $schema:ident| $body:expr) => {{
        let (warehouse, $schema) = warehouse($config, $command)?;
        match warehouse {
            Warehouse::DuckDb { path, memory_limit_mib } => {
                let $dest = DuckDb::open_with(path, memory_limit_mib)?;
                released(&$dest, $body.await).await
            }
            Warehouse::Postgres { url, timeouts } => {
                let session = SessionSettings { timeouts, redshift: false };
                let $dest = Postgres::connect_with(&url, $schema, session).await?;
                released(&$dest, $body.await).await
            }
            Warehouse::Redshift { url, staging, timeouts } => {
                let $dest = Redshift::connect(&url, $schema, staging, timeouts).await?;
                released(&$dest, $body.await).await
            }
        }
    }};
}

/// `result`, once `dest`'s run lock is given back. A failed release only delays the next
/// run until the server notices, so it is logged, not raised.
async fn released<D: Destination, T>(dest: &D, result: Result<T>) -> Result<T> {
    if let Err(e) = dest.release().await {
        tracing::warn!(error = %e, "could not release the run lock; the next run waits until the server frees it");
    }
    result
}

/// Checks the destination can be written (`sluice check`), saying what was checked.
pub async fn check_destination(config: &Config) -> Result<String> {
    match &config.destination {
        DestinationConfig::Files { path, format, .. } => {
            FilesDestination::new(path, *format).check()?;
            Ok(format!("destination {} is writable", path.display()))
        }
        _ => with_warehouse!(config, "check", |dest, schema| async {
            dest.query("SELECT 1".into()).await?;
            Ok(format!("destination {} opens for writing and schema {schema} is free to write", dest.location()))
        }),
    }
}

/// A warehouse destination as configured: what opening it needs.
enum Warehouse<'a> {
    DuckDb { path: &'a std::path::Path, memory_limit_mib: u64 },
    Postgres { url: PgUrl, timeouts: crate::config::PgTimeouts },
    Redshift { url: PgUrl, staging: &'a crate::destination::redshift::S3Staging, timeouts: crate::config::PgTimeouts },
}

/// The configured warehouse and its schema; a user error for the files destination.
fn warehouse<'a>(config: &'a Config, command: &str) -> Result<(Warehouse<'a>, &'a str)> {
    match &config.destination {
        DestinationConfig::DuckDb { path, schema, memory_limit_mib, .. } => {
            Ok((Warehouse::DuckDb { path, memory_limit_mib: *memory_limit_mib }, schema))
        }
        DestinationConfig::Postgres { url, schema, timeouts, .. } => {
            Ok((Warehouse::Postgres { url: pg_url(url)?, timeouts: *timeouts }, schema))
        }
        DestinationConfig::Redshift { url, schema, staging, timeouts, .. } => {
            Ok((Warehouse::Redshift { url: pg_url(url)?, staging, timeouts: *timeouts }, schema))
        }
        DestinationConfig::Files { path, .. } => Err(Error::user(format!(
            "`sluice {command}` reads a warehouse's control tables; destination.type = \"files\" keeps its state in {}",
            FilesDestination::new(path, FileFormat::Parquet).state_path().display()
        ))),
    }
}

/// `destination.url`, parsed (validation already checked it).
fn pg_url(url: &crate::config::Secret) -> Result<PgUrl> {
    PgUrl::parse(url.expose()).map_err(|m| Error::user(format!("destination.url: {m}")))
}

/// One flow's state as `sluice status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusRow {
    /// The control-table state.
    #[serde(flatten)]
    pub state: crate::run::report::FlowState,
    /// Live rows in the flow's table.
    pub live_rows: Option<u64>,
    /// How far the committed window end is behind now, in seconds; 0 when it is ahead (the
    /// org's clock runs ahead of this machine's).
    pub lag_seconds: Option<i64>,
}

/// `sluice status`: every flow's committed window end, last run, live rows and lag. Reads
/// beside a running sync where the warehouse allows it (PostgreSQL; not DuckDB).
pub async fn status(config: &Config) -> Result<Vec<StatusRow>> {
    match warehouse(config, "status")? {
        (Warehouse::DuckDb { path, .. }, schema) => status_of(&DuckDb::open_read_only(path)?, config, schema).await,
        // Redshift reads through a plain session: the SQL is PostgreSQL's.
        (Warehouse::Postgres { url, .. } | Warehouse::Redshift { url, .. }, schema) => {
            status_of(&Postgres::connect_unlocked(&url).await?, config, schema).await
        }
    }
}

async fn status_of<D: Destination>(dest: &D, config: &Config, schema: &str) -> Result<Vec<StatusRow>> {
    let naming = config.destination.naming();
    let mut rows = Vec::new();
    for state in crate::run::report::status(dest, schema).await? {
        let flow = config.flows.iter().find(|f| naming.apply(&f.object) == state.table);
        let soft = flow.is_none_or(|f| f.settings.deletes == crate::config::Deletes::Soft);
        let table = crate::consolidate::TableRef::new(schema, &state.table);
        let live_rows = crate::run::report::live_rows(dest, table, soft).await?;
        let lag_seconds = state.window_end.map(|e| (Utc::now() - e).num_seconds().max(0));
        rows.push(StatusRow { state, live_rows, lag_seconds });
    }
    Ok(rows)
}

/// `sluice history`: the newest `limit` runs with their flows.
pub async fn history(config: &Config, limit: usize) -> Result<Vec<crate::run::report::RunRecord>> {
    match warehouse(config, "history")? {
        (Warehouse::DuckDb { path, .. }, schema) => {
            crate::run::report::history(&DuckDb::open_read_only(path)?, schema, limit).await
        }
        (Warehouse::Postgres { url, .. } | Warehouse::Redshift { url, .. }, schema) => {
            crate::run::report::history(&Postgres::connect_unlocked(&url).await?, schema, limit).await
        }
    }
}

/// `sluice verify [--repair]` (see [`crate::run::verify`]).
pub async fn verify(config: &Config, opts: &SyncOptions, repair: bool) -> Result<Vec<crate::run::FlowVerify>> {
    let flows = select_flows(config, opts.objects.as_deref())?;
    with_warehouse!(config, "verify", |dest, schema| async {
        let source = SalesforceSource::connect_with(&config.source, opts.source).await?;
        crate::run::verify(&dest, &source, config, flows, opts, schema, repair).await
    })
}

/// Runs the selected flows once (see the module docs). An `Err` means the run could not
/// start (unknown `--objects`, bad credentials, unreachable source, unreadable state);
/// failures of single flows are in the summary.
pub async fn sync(config: &Config, opts: &SyncOptions, observer: &dyn Observer) -> Result<RunSummary> {
    let flows = select_flows(config, opts.objects.as_deref())?;
    let DestinationConfig::Files { path, format, .. } = &config.destination else {
        return with_warehouse!(config, "sync", |dest, schema| async {
            let source = SalesforceSource::connect_with(&config.source, opts.source).await?;
            crate::run::run(&dest, &source, config, flows, opts, observer, schema).await
        });
    };
    let dest = FilesDestination::new(path, *format);
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
