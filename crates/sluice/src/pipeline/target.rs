//! What a destination type implements so that every command can run on it: a
//! [`Connector`] opens it (for a run: a [`Target`], holding its run lock; to read what
//! runs recorded: a [`Reader`]). The one list of connectors is
//! [`super::connect::DESTINATIONS`].
//!
//! A SQL warehouse only opens its [`Destination`]: [`Warehouse`] does the rest for every
//! one of them, through the warehouses' sink ([`super::warehouse`]). A destination that is
//! not a SQL warehouse (files) implements [`Target`] with a sink of its own.

use futures_util::future::{BoxFuture, LocalBoxFuture};

use super::flows;
use super::plan::select_flows;
use super::report::{self, RunRecord, ScheduleState, StatusRow};
use super::sink::RunCx;
use super::summary::{FlowStatus, FlowSummary, Observer, RunStatus, RunSummary, SyncOptions};
use super::warehouse::{self, FlowVerify, WarehouseSink};
use crate::config::{Config, DestinationKind, DestinationSettings, FlowConfig};
use crate::consolidate::{self, ScheduleRow, TableRef};
use crate::destination::{Destination, QueryResult};
use crate::error::{Error, Result};
use crate::source::salesforce::SalesforceSource;

/// A command's future, boxed so that [`Connector`] can be a trait object.
pub type Boxed<'a, T> = BoxFuture<'a, Result<T>>;

/// A run's future. It is not `Send`: rustc cannot yet prove a warehouse run's future
/// `Send` through the sink's generic associated type (`Sink::Flow<'s>`, see
/// rust-lang/rust#100013), so a run is awaited where it was started, not spawned.
pub type LocalBoxed<'a, T> = LocalBoxFuture<'a, Result<T>>;

/// A destination type, beyond its configuration ([`DestinationKind`]): how to open it.
pub trait Connector: DestinationKind {
    /// `sluice check`: opens the destination as a run would, says in a sentence what was
    /// checked, and lets it go.
    fn check<'a>(&'a self, config: &'a Config) -> Boxed<'a, String>;

    /// Opens the destination for a run of `command` (`"sync"`, `"verify"`), taking its run
    /// lock, which is held until [`Target::release`]: a second run fails here, naming the
    /// holder, before the source is called.
    fn open<'a>(&'a self, config: &'a Config, command: &'a str) -> Boxed<'a, Box<dyn Target>>;

    /// Opens the destination to read what runs recorded (`status`, `history`), beside a
    /// running sync where the destination allows it.
    fn open_read<'a>(&'a self, config: &'a Config, command: &'a str) -> Boxed<'a, Box<dyn Reader>>;
}

/// A destination open for runs, its run lock held.
pub trait Target: Send + Sync {
    /// Runs the selected flows once (see [`super::connect::sync`]).
    fn sync<'a>(
        &'a self,
        config: &'a Config,
        opts: &'a SyncOptions,
        observer: &'a dyn Observer,
    ) -> LocalBoxed<'a, RunSummary>;

    /// `sluice verify [--repair]` (see [`super::warehouse::verify`]).
    fn verify<'a>(&'a self, config: &'a Config, opts: &'a SyncOptions, repair: bool) -> Boxed<'a, Vec<FlowVerify>>;

    /// `sluice serve`'s schedule state of the flows this destination holds, the control
    /// tables made ready first (created or migrated, as a run would).
    fn load_schedule<'a>(&'a self, config: &'a Config) -> Boxed<'a, ScheduleState>;

    /// Replaces the schedule state of `rows`' flows, in one transaction.
    fn save_schedule<'a>(&'a self, config: &'a Config, rows: &'a [ScheduleRow]) -> Boxed<'a, ()>;

    /// Gives the run lock back. A failure only delays the next run until the lock lapses
    /// or the server notices, so it is logged, not raised.
    fn release(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// A destination open to read what runs recorded.
pub trait Reader: Send + Sync {
    /// `sluice status` (see [`report::status_rows`]).
    fn status<'a>(&'a self, config: &'a Config) -> Boxed<'a, Vec<StatusRow>>;

    /// `sluice history`: the newest `limit` runs with their flows.
    fn history(&self, limit: usize) -> Boxed<'_, Vec<RunRecord>>;

    /// `sluice query`: a user's SQL, nothing of it kept (see [`Destination::read_only`]).
    fn query(&self, sql: String) -> Boxed<'_, QueryResult>;
}

/// The settings of `config`'s destination as the type `T` its connector expects.
pub fn settings_of<T: DestinationSettings>(config: &Config) -> Result<&T> {
    config.destination.settings::<T>().ok_or_else(|| {
        Error::internal(format!("the destination's settings are not those of type = {:?}", config.destination.kind()))
    })
}

/// A SQL warehouse, open: the destination and the schema its flows write.
pub struct Warehouse<D> {
    /// The open destination.
    pub dest: D,
    /// The schema of the replicated tables.
    pub schema: String,
    /// Set once the control tables were made ready through this opening (see
    /// [`Warehouse::control_ready`]).
    control: tokio::sync::OnceCell<()>,
}

impl<D> Warehouse<D> {
    /// `dest`, open, writing `schema`.
    pub fn new(dest: D, schema: impl Into<String>) -> Self {
        Self { dest, schema: schema.into(), control: tokio::sync::OnceCell::new() }
    }
}

impl<D: Destination> Warehouse<D> {
    /// Makes the control tables ready ([`warehouse::prepare_control`]) once per opening:
    /// `sluice serve` reads and writes its schedule several times while it holds the
    /// destination, and the layout cannot change under its lock.
    async fn control_ready(&self, config: &Config) -> Result<()> {
        let prepare = || warehouse::prepare_control(&self.dest, config, &self.schema);
        self.control.get_or_try_init(prepare).await?;
        Ok(())
    }

    /// `sluice check` of a warehouse opened for writing: it answers a query and no other run
    /// holds a flow of `config` ([`claim`]), then its locks are given back.
    pub async fn check(self, config: &Config) -> Result<String> {
        let checked = async {
            self.dest.query("SELECT 1".into()).await?;
            claim(&self.dest, &self.schema, config, config.flows.iter().collect(), false).await
        };
        let answered = checked.await;
        let shown = format!(
            "destination {} opens for writing and the flows' tables in schema {} are free to write",
            self.dest.location(),
            self.schema
        );
        self.give_back().await;
        answered.map(|_| shown)
    }

    /// Gives the run lock back (see [`Target::release`]).
    async fn give_back(&self) {
        if let Err(e) = self.dest.release().await {
            tracing::warn!(error = %e, "could not release the run lock; the next run waits until the server frees it");
        }
    }
}

impl<D: Destination> Target for Warehouse<D> {
    fn sync<'a>(
        &'a self,
        config: &'a Config,
        opts: &'a SyncOptions,
        observer: &'a dyn Observer,
    ) -> LocalBoxed<'a, RunSummary> {
        Box::pin(sync_into(&self.dest, &self.schema, config, opts, observer))
    }

    fn verify<'a>(&'a self, config: &'a Config, opts: &'a SyncOptions, repair: bool) -> Boxed<'a, Vec<FlowVerify>> {
        Box::pin(async move {
            // A repair writes: the flows' locks first, as a run takes them. A check only
            // reads, beside a run if need be.
            if repair {
                claim(&self.dest, &self.schema, config, select_flows(config, opts.objects.as_deref())?, false).await?;
            }
            let (flows, source) = selected_source(config, opts).await?;
            warehouse::verify(&self.dest, &source, config, flows, opts, &self.schema, repair).await
        })
    }

    fn load_schedule<'a>(&'a self, config: &'a Config) -> Boxed<'a, ScheduleState> {
        Box::pin(async move {
            self.control_ready(config).await?;
            report::schedule_state(&self.dest, &self.schema).await
        })
    }

    fn save_schedule<'a>(&'a self, config: &'a Config, rows: &'a [ScheduleRow]) -> Boxed<'a, ()> {
        Box::pin(async move {
            self.control_ready(config).await?;
            let d = self.dest.dialect();
            self.dest.transaction(consolidate::schedule_writes(d, &self.schema, rows, chrono::Utc::now())).await
        })
    }

    fn release(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move { self.give_back().await })
    }
}

impl<D: Destination> Reader for Warehouse<D> {
    fn status<'a>(&'a self, config: &'a Config) -> Boxed<'a, Vec<StatusRow>> {
        Box::pin(report::status_rows(&self.dest, config, &self.schema))
    }

    fn history(&self, limit: usize) -> Boxed<'_, Vec<RunRecord>> {
        Box::pin(report::history(&self.dest, &self.schema, limit))
    }

    fn query(&self, sql: String) -> Boxed<'_, QueryResult> {
        Box::pin(self.dest.read_only(sql))
    }
}

/// Runs the selected flows of `config` once into `schema` of `dest`, a warehouse already
/// open (its run lock held by whoever opened it): what [`super::connect::sync`] does once
/// it has opened the configured one. The config's `[destination]` is not looked at beyond
/// its naming and consolidation, so a caller may bring any [`Destination`].
///
/// The selected flows' run locks are claimed first ([`claim`]), before the source is called.
pub async fn sync_into<D: Destination>(
    dest: &D,
    schema: &str,
    config: &Config,
    opts: &SyncOptions,
    observer: &dyn Observer,
) -> Result<RunSummary> {
    let selected = select_flows(config, opts.objects.as_deref())?;
    let order: Vec<String> = selected.iter().map(|f| f.object.clone()).collect();
    let (free, held) = claim(dest, schema, config, selected, opts.skip_held).await?;
    let not_run = |flows: Vec<FlowSummary>| RunSummary {
        run_id: opts.run_id.clone().unwrap_or_else(super::summary::new_run_id),
        flows,
        status: RunStatus::Failed,
        stopped: None,
        api_usage: None,
    };
    let ran = async {
        let source = SalesforceSource::connect_with(&config.source, opts.source).await?;
        let run = RunCx::new(&source, config, opts, observer);
        flows::run(&WarehouseSink::new(dest, schema, &run), &run, free.clone()).await
    };
    let mut summary = if free.is_empty() {
        // Every one is held elsewhere: nothing to run, nothing to record.
        not_run(Vec::new())
    } else {
        match ran.await {
            Ok(summary) => summary,
            // The run could not start (the source, the destination): the flows it claimed
            // failed, the held ones stay held, not failures of this run.
            Err(e) if !held.is_empty() => {
                let failed = Err(e);
                not_run(
                    free.iter()
                        .map(|flow| {
                            let mut summary = FlowSummary::new(flow, config.destination.naming());
                            summary.finish(&failed);
                            summary
                        })
                        .collect(),
                )
            }
            Err(e) => return Err(e),
        }
    };
    for flow in &held {
        observer.flow_finished(flow);
    }
    summary.flows.extend(held);
    summary.flows.sort_by_key(|f| order.iter().position(|o| *o == f.object));
    Ok(summary)
}

/// Claims the run lock of each of `flows` in `schema` of `dest` ([`Destination::claim`]).
/// The ones free are returned to run; one held by another run fails the whole run with a
/// [`Error::busy`] naming the holder, or with `skip_held` (`sluice serve`) comes back as a
/// [`FlowStatus::Held`] summary carrying that message.
async fn claim<'c, D: Destination>(
    dest: &D,
    schema: &str,
    config: &Config,
    flows: Vec<&'c FlowConfig>,
    skip_held: bool,
) -> Result<(Vec<&'c FlowConfig>, Vec<FlowSummary>)> {
    let naming = config.destination.naming();
    let targets = flows.iter().map(|f| TableRef::new(schema, naming.apply(&f.object))).collect();
    let answers = dest.claim(targets).await?;
    let (mut free, mut held) = (Vec::new(), Vec::new());
    for (flow, answer) in flows.into_iter().zip(answers) {
        match answer {
            None => free.push(flow),
            Some(message) if !skip_held => return Err(Error::busy(message)),
            Some(message) => {
                let mut summary = FlowSummary::new(flow, naming);
                summary.status = FlowStatus::Held;
                summary.error = Some(message);
                held.push(summary);
            }
        }
    }
    Ok((free, held))
}

/// What every run and `verify` start from: the flows `opts` selects and the source,
/// connected.
pub async fn selected_source<'c>(
    config: &'c Config,
    opts: &SyncOptions,
) -> Result<(Vec<&'c FlowConfig>, SalesforceSource)> {
    let flows = select_flows(config, opts.objects.as_deref())?;
    let source = SalesforceSource::connect_with(&config.source, opts.source).await?;
    Ok((flows, source))
}
