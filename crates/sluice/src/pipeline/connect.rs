//! The one file that names concrete destinations: the config's `[destination]` becomes
//! an open DuckDB file, PostgreSQL or Redshift session, or a files directory, and each
//! command (`sync`, `check`, `status`, `history`, `verify`) runs on it.
//!
//! [`sync`] opens the destination first (taking DuckDB's file lock, PostgreSQL's advisory
//! lock or Redshift's lease, so a second run fails before calling the source), connects to
//! the source, and hands the destination, as a [`super::sink::Sink`], to the run loop every
//! destination shares ([`super::flows`]). Nothing here prints: progress goes to an [`Observer`].

use chrono::Utc;
use serde::Serialize;

use super::files_run::FilesSink;
use super::flows;
use super::plan::select_flows;
use super::report::{self, FlowState, RunRecord};
use super::sink::RunCx;
use super::summary::{Observer, RunSummary, SyncOptions, new_run_id};
use super::warehouse::{self, FlowVerify, WarehouseSink};
use crate::config::{Config, DestinationConfig};
use crate::destination::Destination;
use crate::destination::duckdb::DuckDb;
use crate::destination::files::FilesDestination;
use crate::destination::postgres::{PgUrl, Postgres, SessionSettings};
use crate::destination::redshift::Redshift;
use crate::error::{Error, Result};
use crate::source::salesforce::SalesforceSource;

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
        DestinationConfig::Files { root, format, .. } => {
            let dest = FilesDestination::open(root, *format)?;
            dest.check().await?;
            Ok(format!("destination {} is writable", dest.root_shown()))
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
        DestinationConfig::Files { root, format, .. } => Err(Error::user(format!(
            "`sluice {command}` reads a warehouse's control tables; destination.type = \"files\" keeps its state in {}",
            FilesDestination::open(root, *format)?.state_shown()
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
    pub state: FlowState,
    /// Live rows in the flow's table.
    pub live_rows: Option<u64>,
    /// How far the committed window end is behind now, in seconds; 0 when it is ahead (the
    /// org's clock runs ahead of this machine's).
    pub lag_seconds: Option<i64>,
    /// For a flow no longer in the config: what it left behind and the statements that drop
    /// it (sluice drops nothing by itself).
    pub removed: Option<Removed>,
}

/// What a flow removed from the config left in the warehouse.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Removed {
    /// The tables it wrote that still exist (the target, its history).
    pub tables: Vec<String>,
    /// The SQL that drops them and forgets the flow's window.
    pub drop_sql: Vec<String>,
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
    for state in report::status(dest, schema).await? {
        let flow = config.flows.iter().find(|f| naming.apply(&f.object) == state.table);
        let soft = flow.is_none_or(|f| f.settings.deletes == crate::config::Deletes::Soft);
        let table = crate::consolidate::TableRef::new(schema, &state.table);
        let live_rows = report::live_rows(dest, table.clone(), soft).await?;
        let lag_seconds = state.window_end.map(|e| (Utc::now() - e).num_seconds().max(0));
        let removed = match flow {
            Some(_) => None,
            None => Some(left_behind(dest, &table).await?),
        };
        rows.push(StatusRow { state, live_rows, lag_seconds, removed });
    }
    Ok(rows)
}

/// What the flow writing `table`, no longer configured, left behind, and how to drop it.
async fn left_behind<D: Destination>(dest: &D, table: &crate::consolidate::TableRef) -> Result<Removed> {
    let d = dest.dialect();
    let history = crate::consolidate::TableRef::new(&table.schema, format!("{}_history", table.name));
    let mut tables = Vec::new();
    let mut drop_sql = Vec::new();
    for t in [table, &history] {
        if dest.columns(t.clone()).await?.is_some() {
            tables.push(d.table(t));
            drop_sql.push(format!("DROP TABLE {}", d.table(t)));
        }
    }
    drop_sql.push(crate::consolidate::forget_flow(d, table));
    Ok(Removed { tables, drop_sql })
}

/// `sluice history`: the newest `limit` runs with their flows.
pub async fn history(config: &Config, limit: usize) -> Result<Vec<RunRecord>> {
    match warehouse(config, "history")? {
        (Warehouse::DuckDb { path, .. }, schema) => {
            report::history(&DuckDb::open_read_only(path)?, schema, limit).await
        }
        (Warehouse::Postgres { url, .. } | Warehouse::Redshift { url, .. }, schema) => {
            report::history(&Postgres::connect_unlocked(&url).await?, schema, limit).await
        }
    }
}

/// `sluice verify [--repair]` (see [`super::warehouse::verify`]).
pub async fn verify(config: &Config, opts: &SyncOptions, repair: bool) -> Result<Vec<FlowVerify>> {
    let flows = select_flows(config, opts.objects.as_deref())?;
    with_warehouse!(config, "verify", |dest, schema| async {
        let source = SalesforceSource::connect_with(&config.source, opts.source).await?;
        warehouse::verify(&dest, &source, config, flows, opts, schema, repair).await
    })
}

/// Runs the selected flows of `config` once into `schema` of `dest`, a warehouse already
/// open (its run lock held by whoever opened it): what [`sync`] does once it has opened the
/// configured one. The config's `[destination]` is not looked at beyond its naming and
/// consolidation, so a caller may bring any [`Destination`].
pub async fn sync_into<D: Destination>(
    dest: &D,
    schema: &str,
    config: &Config,
    opts: &SyncOptions,
    observer: &dyn Observer,
) -> Result<RunSummary> {
    let flows = select_flows(config, opts.objects.as_deref())?;
    let source = SalesforceSource::connect_with(&config.source, opts.source).await?;
    let run = RunCx { source: &source, config, opts, observer, run_id: new_run_id() };
    flows::run(&WarehouseSink::new(dest, schema, &run), &run, flows).await
}

/// Runs the selected flows once (see the module docs). An `Err` means the run could not
/// start (unknown `--objects`, bad credentials, unreachable source, unreadable state);
/// failures of single flows are in the summary.
pub async fn sync(config: &Config, opts: &SyncOptions, observer: &dyn Observer) -> Result<RunSummary> {
    let flows = select_flows(config, opts.objects.as_deref())?;
    let DestinationConfig::Files { root, format, .. } = &config.destination else {
        return with_warehouse!(config, "sync", |dest, schema| async {
            sync_into(&dest, schema, config, opts, observer).await
        });
    };
    let sink = FilesSink::open(FilesDestination::open(root, *format)?, "sync").await?;
    let result = async {
        let source = SalesforceSource::connect_with(&config.source, opts.source).await?;
        let run = RunCx { source: &source, config, opts, observer, run_id: new_run_id() };
        flows::run(&sink, &run, flows).await
    }
    .await;
    sink.release().await;
    result
}
