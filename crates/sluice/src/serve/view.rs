//! What `sluice serve` shows of itself: the [`View`] the scheduler keeps up to date (each
//! flow's schedule state, what the destination last said of it, the recent runs) and the
//! JSON shapes the HTTP API answers with ([`FlowView`]). The scheduler writes it, the API
//! only reads it, so no request ever waits on the destination or on a run.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::schedule::{self, Clock, Freshness, Ts};
use crate::config::FlowConfig;
use crate::pipeline::{RunRecord, StatusRow};

/// One flow as the scheduler tracks it.
#[derive(Debug, Clone)]
pub struct FlowEntry {
    /// Its config.
    pub config: FlowConfig,
    /// Its table.
    pub table: String,
    /// Its schedule state (persisted in `_sluice.schedule`).
    pub clock: Clock,
    /// Its last full read, for `full_refresh_every`.
    pub last_full_refresh: Option<Ts>,
    /// What `sluice status` says of it, as last read.
    pub status: Option<StatusRow>,
    /// When it last committed.
    pub last_success: Option<Ts>,
    /// A `late` notification was sent since it was last on time.
    pub late_notified: bool,
    /// Its clock changed in this process (a run, a pause or resume) since it was last
    /// saved: saved next, and never replaced by the destination's copy meanwhile (the
    /// clocks of other flows are, as another `sluice serve` may have run them).
    pub unsaved: bool,
    /// Another run held it when it was last asked for (another `sluice serve` runs it): not
    /// asked for again before then. Apart from the clock, which is the holder's and is
    /// taken from the destination meanwhile.
    pub held_until: Option<Ts>,
}

impl FlowEntry {
    /// `config`'s flow writing `table`, never run (due now), nothing read back yet.
    pub fn new(config: FlowConfig, table: String) -> Self {
        Self {
            config,
            table,
            clock: Clock::default(),
            last_full_refresh: None,
            status: None,
            last_success: None,
            late_notified: false,
            unsaved: false,
            held_until: None,
        }
    }

    /// Whether it may be asked for at `now` (not left to another run's holder for a while).
    pub fn askable(&self, now: Ts) -> bool {
        self.held_until.is_none_or(|until| until <= now)
    }

    /// When it is next due here: its clock's due time, or later while it waits for a holder.
    pub fn next_due(&self) -> Option<Ts> {
        let due = self.clock.next_due?;
        Some(self.held_until.map_or(due, |until| due.max(until)))
    }

    /// How far its committed window end is behind `now`, when it has one.
    pub fn lag(&self, now: Ts) -> Option<Duration> {
        let end = self.status.as_ref().and_then(|s| s.state.window_end)?;
        Some((now - end).to_std().unwrap_or(Duration::ZERO))
    }

    /// Its interval around `now` (zero for a pattern with no next time).
    pub fn interval(&self, now: Ts) -> Duration {
        schedule::interval(&self.config.schedule, now).unwrap_or(Duration::ZERO)
    }

    /// How fresh its table is at `now`.
    pub fn freshness(&self, now: Ts) -> Freshness {
        schedule::freshness(self.lag(now), self.interval(now), self.clock.failures > 0)
    }
}

/// Everything the API serves, kept by the scheduler.
#[derive(Debug, Default)]
pub struct View {
    /// Every configured flow, in config order.
    pub flows: Vec<FlowEntry>,
    /// The newest runs, newest first (the same records as `sluice history`).
    pub runs: Vec<RunRecord>,
    /// The run in progress: its id and its flows (lower-case object names).
    pub running: Option<(String, BTreeSet<String>)>,
    /// When the scheduler loop last went round.
    pub heartbeat: Option<Instant>,
    /// Whether the last access to the destination's state (schedule, status, history) worked.
    pub store_ok: bool,
    /// The org's API calls used and allowed, as the last run saw them.
    pub api_usage: Option<(u64, u64)>,
}

/// How long the scheduler loop may go without a heartbeat before `/healthz` says 503: it
/// wakes at least every [`super::scheduler::TICK`], and during a run every tick too.
pub const HEARTBEAT_STALE: Duration = Duration::from_secs(30);

impl View {
    /// Whether the scheduler loop and the state store are alive (`/healthz`).
    pub fn healthy(&self) -> bool {
        self.store_ok && self.heartbeat.is_some_and(|at| at.elapsed() <= HEARTBEAT_STALE)
    }

    /// The flow whose object is `object` (case-insensitive).
    pub fn flow_mut(&mut self, object: &str) -> Option<&mut FlowEntry> {
        self.flows.iter_mut().find(|f| f.config.object.eq_ignore_ascii_case(object))
    }

    /// Whether `object`'s flow is in the run in progress.
    pub fn is_running(&self, object: &str) -> bool {
        self.running.as_ref().is_some_and(|(_, flows)| flows.contains(&object.to_ascii_lowercase()))
    }

    /// `GET /api/v1/flows`.
    pub fn flow_views(&self, now: Ts) -> Vec<FlowView> {
        self.flows.iter().map(|f| self.flow_view(f, now)).collect()
    }

    /// One flow as `GET /api/v1/flows` shows it.
    pub fn flow_view(&self, f: &FlowEntry, now: Ts) -> FlowView {
        let running = self.is_running(&f.config.object);
        let failing = f.clock.failures > 0;
        let state = match () {
            _ if running => FlowRunState::Running,
            _ if f.clock.paused => FlowRunState::Paused,
            _ if failing => FlowRunState::Failing,
            _ => FlowRunState::Idle,
        };
        let lag = f.lag(now);
        let interval = f.interval(now);
        let last_run = self.runs.iter().find_map(|run| {
            let flow = run.flows.iter().find(|r| r.flow.eq_ignore_ascii_case(&f.config.object))?;
            let duration = match (run.started_at, run.finished_at) {
                (Some(a), Some(b)) => Some((b - a).num_milliseconds() as f64 / 1000.0),
                _ => None,
            };
            Some(LastRun {
                run_id: run.run_id.clone(),
                run_status: run.status.clone(),
                phase: flow.phase.clone(),
                rows_inserted: flow.inserted,
                rows_updated: flow.updated,
                rows_deleted: flow.deleted,
                started_at: run.started_at,
                duration_seconds: duration,
            })
        });
        FlowView {
            object: f.config.object.clone(),
            table: f.table.clone(),
            state,
            freshness: schedule::freshness(lag, interval, failing),
            window_end: f.status.as_ref().and_then(|s| s.state.window_end),
            lag_seconds: lag.map(|l| l.as_secs()),
            interval_seconds: interval.as_secs(),
            live_rows: f.status.as_ref().and_then(|s| s.live_rows),
            last_run,
            next_run: if f.clock.paused { None } else { Some(f.clock.next_due.unwrap_or(now)) },
            consecutive_failures: f.clock.failures,
            last_error: f.clock.last_error.clone(),
            hint: f.clock.last_error.as_deref().and_then(super::hints::hint),
        }
    }
}

/// A flow's state word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowRunState {
    /// Waiting for its next run.
    Idle,
    /// In the run in progress.
    Running,
    /// Paused (after too many failures, or by hand); runs again once resumed.
    Paused,
    /// Its last run failed; it is backing off.
    Failing,
}

/// One flow as `GET /api/v1/flows` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowView {
    /// Source object.
    pub object: String,
    /// Destination table.
    pub table: String,
    /// What it is doing.
    pub state: FlowRunState,
    /// How fresh its table is.
    pub freshness: Freshness,
    /// The committed window end.
    pub window_end: Option<Ts>,
    /// Now minus the committed window end.
    pub lag_seconds: Option<u64>,
    /// Its schedule's interval (for a cron pattern, the gap between its next two times).
    pub interval_seconds: u64,
    /// Live rows in its table, as last read.
    pub live_rows: Option<u64>,
    /// Its newest run.
    pub last_run: Option<LastRun>,
    /// When it runs next (`None` while paused).
    pub next_run: Option<Ts>,
    /// Failed runs in a row.
    pub consecutive_failures: u32,
    /// The last failure's message, until a run succeeds.
    pub last_error: Option<String>,
    /// What to do about it, when known ([`super::hints`]).
    pub hint: Option<&'static str>,
}

/// A flow's newest run, for [`FlowView`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastRun {
    /// Run id.
    pub run_id: String,
    /// The run's status (`ok`, `partial`, `failed`, ...).
    pub run_status: String,
    /// The phase this flow reached in it.
    pub phase: String,
    /// Rows inserted.
    pub rows_inserted: i64,
    /// Rows updated.
    pub rows_updated: i64,
    /// Rows deleted.
    pub rows_deleted: i64,
    /// When the run started.
    pub started_at: Option<Ts>,
    /// How long the run took, in seconds.
    pub duration_seconds: Option<f64>,
}
