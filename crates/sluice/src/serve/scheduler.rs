//! The scheduler loop of `sluice serve`: runs each flow when its [`schedule`] says so,
//! through the same pipeline as `sluice sync` (one run at a time: the flows due, with those
//! due within a tenth of their interval, [`schedule::joins_run`]; full refreshes in a run
//! of their own), keeps the [`View`] the API serves, persists every flow's [`Clock`] in the
//! destination, and stops gracefully.
//!
//! - The destination is open (its run lock held) only while a run writes or the schedule is
//!   saved: between runs `sluice status` and `history` read it, on DuckDB too, and a
//!   `sluice sync` started by hand runs (a scheduled run meanwhile finds it held and tries
//!   again after a back-off, without counting a failure).
//! - Shared: several serves on one destination share its flows through the flows' run
//!   locks (PostgreSQL: one per flow, so different flows run side by side in different
//!   processes; DuckDB's file and Redshift's schema lease: one at a time). A run takes the
//!   locks of the flows it can and reports the others held ([`Outcome::Held`]: looked at
//!   again shortly, no failure counted). Each run first takes the clocks this process has
//!   not changed from `_sluice.schedule` (another serve may have run those flows) and runs
//!   only what is still due; each save writes only the clocks changed here. A process that
//!   dies gives its flows up with its sessions, which the server drops within
//!   `serve.lease_timeout` (a Redshift lease lapses after it).
//! - Durable: the clocks are saved after every run and every pause or resume. A kill -9
//!   at any instant loses at most the clock update of the run in progress, so that run's
//!   flows are due again on restart; what they had committed is committed once (the
//!   window moves with the data), so nothing is duplicated and nothing skipped.
//! - Shutdown (the `shutdown` channel turning `true`, on SIGTERM/SIGINT in the binary):
//!   no new run starts; a run in progress gets `shutdown_grace` to finish, then it is
//!   dropped, which aborts it safely (its flows keep their committed windows).
//!
//! Runs are awaited on this task, never spawned: a run's future is not `Send` (see
//! [`crate::pipeline::target::LocalBoxed`]). The HTTP API runs on other tasks and talks to
//! this loop through the [`View`] and a channel of [`Command`]s.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};

use super::metrics::Metrics;
use super::notify::{self, EventKind, Notifier};
use super::schedule::{self, Clock, Outcome, Ts};
use super::view::{FlowEntry, View};
use crate::config::Config;
use crate::consolidate::{ScheduleRow, Trigger};
use crate::error::{Error, Result};
use crate::pipeline::report::ScheduleState;
use crate::pipeline::target::Target;
use crate::pipeline::{self, FlowStatus, Quiet, RunSummary, SyncOptions};

/// The longest the loop sleeps: it wakes at least this often to beat its heart (see
/// [`super::view::HEARTBEAT_STALE`]) and retry saving a schedule the destination refused.
pub const TICK: Duration = Duration::from_secs(5);

/// Runs kept in the view for `GET /api/v1/runs`.
pub const RUNS_KEPT: usize = 200;

/// What the API asks of the scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run these flows (object names as configured) now, as run `run_id`.
    Run {
        /// The id the API already answered with.
        run_id: String,
        /// The flows.
        objects: Vec<String>,
        /// Read them in full.
        full_refresh: bool,
    },
    /// This flow (object, as configured) was paused or resumed in the view (and marked
    /// unsaved there): wake up and save it.
    Changed(String),
}

/// One run the loop is about to make.
struct Batch {
    run_id: Option<String>,
    objects: Vec<String>,
    full_refresh: bool,
    trigger: Trigger,
}

/// The scheduler, between runs.
pub struct Scheduler {
    config: Arc<Config>,
    view: Arc<Mutex<View>>,
    commands: mpsc::UnboundedReceiver<Command>,
    shutdown: watch::Receiver<bool>,
    queued: VecDeque<Batch>,
    metrics: Arc<Metrics>,
    notifier: Notifier,
}

impl Scheduler {
    /// A scheduler of `config`'s flows, serving `view`, taking `commands`, stopping when
    /// `shutdown` turns `true`, counting into `metrics`. Reads nothing yet:
    /// [`Scheduler::load`] does.
    pub fn new(
        config: Arc<Config>,
        view: Arc<Mutex<View>>,
        commands: mpsc::UnboundedReceiver<Command>,
        shutdown: watch::Receiver<bool>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let notifier = Notifier::new(config.serve.notify_url.clone());
        Self { config, view, commands, shutdown, queued: VecDeque::new(), metrics, notifier }
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Runs flows as they fall due until shutdown, once [`Scheduler::load`] has read the
    /// persisted clocks. Failures are the flows', recorded in their clocks; it returns
    /// `Ok` once shut down.
    pub async fn run(mut self) -> Result<()> {
        self.refresh_view().await;
        while !self.stopping() {
            self.beat();
            self.drain_commands();
            if self.unsaved() && self.queued.is_empty() {
                self.save_alone().await;
            }
            if let Some(batch) = self.next_batch() {
                self.run_batch(batch).await;
                continue;
            }
            let wait = self.until_next_due();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                command = self.commands.recv() => if let Some(c) = command { self.take(c) },
                _ = self.shutdown.changed() => {}
            }
        }
        if self.unsaved() {
            self.save_alone().await;
        }
        Ok(())
    }

    /// Reads the flows' persisted clocks and last full reads, through the destination
    /// opened as a run would (migrating its control tables if they are older). An `Err`
    /// means serve cannot start: the destination cannot be opened, or keeps no control
    /// tables. A destination another run holds is read at the first run instead.
    pub async fn load(&mut self) -> Result<()> {
        let state = match pipeline::open_target(&self.config, "serve").await {
            Ok(target) => {
                let state = target.load_schedule(&self.config).await;
                target.release().await;
                state?
            }
            // Another run holds it (another serve, a sync by hand): start with every flow
            // due; each run takes the persisted clocks before it runs anything.
            Err(e) if e.is_busy() => {
                tracing::info!(error = %e, "the destination is busy; its schedule state is read at the first run");
                ScheduleState::default()
            }
            Err(e) => return Err(e),
        };
        let naming = self.config.destination.naming();
        let flows = self
            .config
            .flows
            .iter()
            .map(|flow| {
                let mut entry = FlowEntry::new(flow.clone(), naming.apply(&flow.object));
                if let Some(row) = state.rows.iter().find(|r| r.table == entry.table) {
                    entry.clock = row.clock.clone();
                }
                entry.last_full_refresh = state.last_full_refresh.get(&entry.table).copied();
                entry
            })
            .collect();
        let mut view = self.view.lock();
        view.flows = flows;
        view.store_ok = true;
        Ok(())
    }

    /// Says the loop is alive, and sends a `late` event for each flow that just fell late.
    fn beat(&self) {
        let now = Utc::now();
        let mut view = self.view.lock();
        view.heartbeat = Some(Instant::now());
        for flow in &mut view.flows {
            let lag = flow.lag(now).map(|l| l.as_secs());
            let (send, sent) = notify::late_event(flow.freshness(now), lag.is_some(), flow.late_notified);
            flow.late_notified = sent;
            if send {
                self.notifier.send(Notifier::event(EventKind::Late, flow, None, lag));
            }
        }
    }

    fn drain_commands(&mut self) {
        while let Ok(command) = self.commands.try_recv() {
            self.take(command);
        }
    }

    fn take(&mut self, command: Command) {
        match command {
            Command::Run { run_id, objects, full_refresh } => {
                self.queued.push_back(Batch { run_id: Some(run_id), objects, full_refresh, trigger: Trigger::Api })
            }
            // The API marked the flow unsaved itself (see `change_clock`); this only wakes
            // the loop to save it.
            Command::Changed(_) => {}
        }
    }

    /// A run asked through the API first, else the flows due now: those whose full
    /// refresh is due in one run, the others in another.
    fn next_batch(&mut self) -> Option<Batch> {
        if let Some(batch) = self.queued.pop_front() {
            return Some(batch);
        }
        let now = Utc::now();
        let view = self.view.lock();
        if !view.flows.iter().any(|f| f.clock.is_due(now) && f.askable(now)) {
            return None;
        }
        let due: Vec<&FlowEntry> = view
            .flows
            .iter()
            .filter(|f| f.askable(now) && schedule::joins_run(&f.config.schedule, &f.clock, now))
            .collect();
        let (full, incremental): (Vec<&FlowEntry>, Vec<&FlowEntry>) =
            due.into_iter().partition(|f| schedule::wants_full_refresh(&f.config.schedule, f.last_full_refresh, now));
        let objects = |flows: &[&FlowEntry]| flows.iter().map(|f| f.config.object.clone()).collect::<Vec<_>>();
        if !incremental.is_empty() {
            return Some(Batch {
                run_id: None,
                objects: objects(&incremental),
                full_refresh: false,
                trigger: Trigger::Schedule,
            });
        }
        (!full.is_empty()).then(|| Batch {
            run_id: None,
            objects: objects(&full),
            full_refresh: true,
            trigger: Trigger::Schedule,
        })
    }

    /// How long to sleep: until the first unpaused flow falls due, at most [`TICK`].
    fn until_next_due(&self) -> Duration {
        let now = Utc::now();
        let view = self.view.lock();
        let first = view.flows.iter().filter(|f| !f.clock.paused).filter_map(FlowEntry::next_due).min();
        first.map_or(TICK, |due| (due - now).to_std().unwrap_or(Duration::ZERO).min(TICK))
    }

    /// One run of `batch`, then its flows' clocks, saved, and the view refreshed.
    async fn run_batch(&mut self, batch: Batch) {
        let run_id = batch.run_id.clone().unwrap_or_else(pipeline::new_run_id);
        let config = Arc::clone(&self.config);
        let opened = pipeline::open_target(&config, "serve").await;
        let mut objects = batch.objects.clone();
        if let Ok(target) = &opened
            && batch.trigger == Trigger::Schedule
        {
            // Another serve sharing this destination may have run some of them meanwhile.
            self.adopt(target.as_ref()).await;
            let now = Utc::now();
            let view = self.view.lock();
            objects.retain(|o| {
                view.flows.iter().any(|f| {
                    f.config.object == *o && f.askable(now) && schedule::joins_run(&f.config.schedule, &f.clock, now)
                })
            });
        }
        if objects.is_empty() {
            tracing::debug!(flows = ?batch.objects, "another sluice serve ran these flows; nothing is due");
            if let Ok(target) = opened {
                target.release().await;
            }
            return;
        }
        let flows: BTreeSet<String> = objects.iter().map(|o| o.to_ascii_lowercase()).collect();
        self.view.lock().running = Some((run_id.clone(), flows));
        let started = Utc::now();
        tracing::info!(run = %run_id, flows = ?objects, full_refresh = batch.full_refresh, trigger = batch.trigger.word(), "run starts");
        let opts = SyncOptions {
            objects: Some(objects.clone()),
            full_refresh: batch.full_refresh,
            trigger: batch.trigger,
            run_id: Some(run_id.clone()),
            skip_held: true,
            ..SyncOptions::default()
        };
        let (result, target) = match opened {
            Ok(target) => (self.await_run(target.as_ref(), &config, &opts).await, Some(target)),
            Err(e) => (Some(Err(e)), None),
        };
        let Some(result) = result else {
            // Aborted at shutdown: its flows keep their committed windows, and their clocks
            // stay as they were (due), so the next start runs them at once.
            if let Some(target) = target {
                target.release().await;
            }
            self.view.lock().running = None;
            return;
        };
        let finished = Utc::now();
        let outcomes = outcomes_of(&objects, &result);
        let summary = result.as_ref().ok();
        let took = (finished - started).to_std().unwrap_or_default();
        self.metrics.run_ended(summary, &outcomes, took);
        if let Some(usage) = summary.and_then(|s| s.api_usage) {
            self.view.lock().api_usage = Some(usage);
        }
        let mut ended: Vec<String> =
            outcomes.iter().map(|(flow, outcome)| format!("{flow} {}", outcome.word())).collect();
        ended.sort();
        tracing::info!(run = %run_id, flows = %ended.join(", "), "run ends");
        self.record(&run_id, &outcomes, started, finished);
        if let Some(target) = target {
            self.save(target.as_ref()).await;
            target.release().await;
        }
        self.view.lock().running = None;
        self.refresh_view().await;
    }

    /// Awaits the run, answering the API meanwhile; on shutdown gives it
    /// `shutdown_grace`, then drops it. `None`: it was dropped.
    async fn await_run(
        &mut self,
        target: &dyn Target,
        config: &Config,
        opts: &SyncOptions,
    ) -> Option<Result<RunSummary>> {
        let mut run = pin!(target.sync(config, opts, &Quiet));
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let grace_over = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                result = &mut run => return Some(result),
                () = tokio::time::sleep(TICK) => self.beat(),
                command = self.commands.recv() => if let Some(c) = command { self.take(c) },
                _ = self.shutdown.changed(), if deadline.is_none() => {
                    if self.stopping() {
                        tracing::warn!(grace = ?config.serve.shutdown_grace, "shutting down: the run in progress may finish within the grace");
                        deadline = Some(tokio::time::Instant::now() + config.serve.shutdown_grace);
                    }
                }
                () = grace_over => {
                    tracing::warn!("the shutdown grace is over: the run in progress is aborted; its flows keep their committed windows");
                    return None;
                }
            }
        }
    }

    /// The clocks after a run, in the view.
    fn record(&mut self, run_id: &str, outcomes: &HashMap<String, Outcome>, started: Ts, finished: Ts) {
        let mut view = self.view.lock();
        for flow in &mut view.flows {
            let Some(outcome) = outcomes.get(&flow.config.object) else { continue };
            flow.held_until = None;
            match schedule::after_run(&flow.config.schedule, &flow.clock, started, finished, outcome) {
                // A held flow's clock is its holder's, taken from the destination until this
                // one asks again, shortly (after a back-off, not at once: the holder saves
                // its clock only when its run ends).
                Ok(clock) if *outcome == Outcome::Held => flow.held_until = clock.next_due,
                Ok(clock) => {
                    flow.unsaved = true;
                    if *outcome == Outcome::Succeeded {
                        flow.last_success = Some(finished);
                    }
                    if clock.paused && !flow.clock.paused {
                        tracing::error!(flow = %flow.config.object, failures = clock.failures, "paused after too many failed runs in a row; resume it through the API");
                    }
                    let happened = notify::events(&flow.clock, &clock, outcome);
                    flow.clock = clock;
                    for kind in happened {
                        self.notifier.send(Notifier::event(kind, flow, Some(run_id), None));
                    }
                }
                Err(e) => tracing::error!(flow = %flow.config.object, error = %e, "cannot compute the next run"),
            }
        }
    }

    /// Whether some clock changed here since it was last saved.
    fn unsaved(&self) -> bool {
        self.view.lock().flows.iter().any(|f| f.unsaved)
    }

    /// The clocks of the flows changed here, as rows.
    fn unsaved_rows(&self) -> Vec<ScheduleRow> {
        let view = self.view.lock();
        view.flows
            .iter()
            .filter(|f| f.unsaved)
            .map(|f| ScheduleRow { table: f.table.clone(), flow: f.config.object.clone(), clock: f.clock.clone() })
            .collect()
    }

    /// Takes from the destination (open as `target`) every clock not changed here since the
    /// last save, and each flow's last full read. `false` when it could not be read.
    async fn adopt(&mut self, target: &dyn Target) -> bool {
        let state = target.load_schedule(&self.config).await;
        let mut view = self.view.lock();
        match state {
            Ok(ScheduleState { rows, last_full_refresh }) => {
                view.store_ok = true;
                for flow in &mut view.flows {
                    flow.last_full_refresh = last_full_refresh.get(&flow.table).copied();
                    if flow.unsaved {
                        continue;
                    }
                    if let Some(row) = rows.iter().find(|r| r.table == flow.table) {
                        flow.clock = row.clock.clone();
                    }
                }
                true
            }
            Err(e) => {
                view.store_ok = false;
                tracing::warn!(error = %e, "could not read the schedule state; trying again shortly");
                false
            }
        }
    }

    /// Saves the clocks changed here through an open target, after taking the others'.
    async fn save(&mut self, target: &dyn Target) {
        if !self.adopt(target).await {
            return;
        }
        let rows = self.unsaved_rows();
        match target.save_schedule(&self.config, &rows).await {
            Ok(()) => {
                // Saved, unless the API changed a clock meanwhile (then it is saved next time).
                let mut view = self.view.lock();
                for flow in &mut view.flows {
                    if rows.iter().any(|r| r.table == flow.table && r.clock == flow.clock) {
                        flow.unsaved = false;
                    }
                }
            }
            Err(e) => {
                self.view.lock().store_ok = false;
                tracing::warn!(error = %e, "could not save the schedule state; trying again shortly");
            }
        }
    }

    /// Opens the destination just to save the clocks (after a pause or resume).
    async fn save_alone(&mut self) {
        match pipeline::open_target(&self.config, "serve").await {
            Ok(target) => {
                self.save(target.as_ref()).await;
                target.release().await;
            }
            Err(e) if e.is_busy() => tracing::info!(error = %e, "the destination is busy; the schedule is saved later"),
            Err(e) => {
                self.view.lock().store_ok = false;
                tracing::warn!(error = %e, "could not open the destination to save the schedule state");
            }
        }
    }

    /// Reads status and history for the view (the API's answers between runs).
    async fn refresh_view(&mut self) {
        let read = async {
            let reader = pipeline::open_reader(&self.config, "serve").await?;
            let status = reader.status(&self.config).await?;
            let runs = reader.history(RUNS_KEPT).await?;
            Ok::<_, Error>((status, runs))
        };
        match read.await {
            Ok((status, runs)) => {
                let mut view = self.view.lock();
                for flow in &mut view.flows {
                    flow.status = status.iter().find(|s| s.state.table == flow.table).cloned();
                    // Before this process's first success: the last commit the destination recorded.
                    if flow.last_success.is_none()
                        && let Some(state) = flow.status.as_ref().map(|s| &s.state)
                        && state.last_phase.as_deref().is_some_and(|p| p != "failed")
                    {
                        flow.last_success = state.last_finished;
                    }
                }
                view.runs = runs;
            }
            Err(e) if e.is_busy() => tracing::info!(error = %e, "the destination is busy; status is read later"),
            Err(e) => tracing::warn!(error = %e, "could not read status and history"),
        }
    }
}

/// Each flow's outcome (by object name, as configured: `objects` and the summary's flows
/// are the config's flows) from a run's result.
fn outcomes_of(objects: &[String], result: &Result<RunSummary>) -> HashMap<String, Outcome> {
    let all = |outcome: Outcome| objects.iter().map(|o| (o.clone(), outcome.clone())).collect();
    match result {
        // Another holder of the destination (a `sluice sync` by hand), or the API budget:
        // no fault of the flows.
        Err(e) if e.is_busy() || e.is_quota() => all(Outcome::Deferred),
        Err(e) => all(Outcome::Failed(e.message.clone())),
        Ok(summary) => summary
            .flows
            .iter()
            .map(|f| {
                let outcome = match f.status {
                    s if s.succeeded() => Outcome::Succeeded,
                    FlowStatus::Held => Outcome::Held,
                    FlowStatus::Stopped | FlowStatus::Skipped => Outcome::Deferred,
                    _ => Outcome::Failed(f.error.clone().unwrap_or_else(|| "failed".into())),
                };
                (f.object.clone(), outcome)
            })
            .collect(),
    }
}

/// A flow that is not in `view` by `object`: the API's 404.
pub fn unknown_flow(object: &str, config: &Config) -> Error {
    let names: Vec<&str> = config.flows.iter().map(|f| f.object.as_str()).collect();
    Error::user(format!("no flow for object {object:?}; the flows are: {}", names.join(", ")))
}

/// For the API: the view's clock of `object` (case-insensitive) replaced by
/// `change(clock)` and marked unsaved, under one lock, so that the scheduler never takes
/// the destination's older clock over it; the flow's name as configured, or `None` when
/// there is no such flow.
pub fn change_clock(view: &Mutex<View>, object: &str, change: impl FnOnce(&Clock) -> Clock) -> Option<String> {
    let mut view = view.lock();
    let flow = view.flow_mut(object)?;
    flow.clock = change(&flow.clock);
    flow.unsaved = true;
    Some(flow.config.object.clone())
}
