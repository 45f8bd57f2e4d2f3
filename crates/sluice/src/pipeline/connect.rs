//! The one file that names concrete destinations: [`DESTINATIONS`], the list every
//! configuration is checked against ([`load_config`]) and every command opens its
//! destination from. Adding a destination is one folder under `destination/` (its
//! `config.rs` implementing [`crate::config::DestinationKind`], its code implementing
//! [`Connector`]) and one line in that list.
//!
//! [`sync`] opens the destination first (taking DuckDB's file lock, PostgreSQL's advisory
//! lock, Redshift's lease or a files root's lock, so a second run fails before calling the
//! source), then runs the flows through the loop every destination shares
//! ([`super::flows`]). Nothing here prints: progress goes to an [`Observer`].

use super::plan::select_flows;
use super::report::{RunRecord, StatusRow};
use super::summary::{Observer, RunSummary, SyncOptions};
use super::target::{Connector, Reader, Target};
use super::warehouse::FlowVerify;
use crate::config::{self, Config, ConfigError, DestinationKind};
use crate::destination::QueryResult;
use crate::destination::duckdb::DuckDbKind;
use crate::destination::files::FilesKind;
use crate::destination::lake::LakeKind;
use crate::destination::postgres::PostgresKind;
use crate::destination::redshift::RedshiftKind;
use crate::error::{Error, Result};

/// Every destination type, in the order messages list them.
pub const DESTINATIONS: &[&dyn Connector] = &[&DuckDbKind, &PostgresKind, &RedshiftKind, &FilesKind, &LakeKind];

/// The destination types, as configuration checks them.
pub fn destination_kinds() -> Vec<&'static dyn DestinationKind> {
    DESTINATIONS.iter().map(|c| *c as &dyn DestinationKind).collect()
}

/// Parses and checks a configuration's text (see [`config::load`]) against every
/// destination type sluice has. `env` resolves `${VAR}`.
pub fn load_config(
    text: &str,
    origin: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<Config, Vec<ConfigError>> {
    config::load(text, origin, env, &destination_kinds())
}

/// The connector of `config`'s destination type.
fn connector(config: &Config) -> Result<&'static dyn Connector> {
    let kind = config.destination.kind();
    DESTINATIONS
        .iter()
        .copied()
        .find(|c| c.name() == kind)
        .ok_or_else(|| Error::internal(format!("no connector for destination type = {kind:?}")))
}

/// Checks the destination can be written (`sluice check`), saying what was checked.
pub async fn check_destination(config: &Config) -> Result<String> {
    connector(config)?.check(config).await
}

/// Runs the selected flows once (see the module docs). An `Err` means the run could not
/// start (unknown `--objects`, bad credentials, unreachable source, unreadable state);
/// failures of single flows are in the summary.
pub async fn sync(config: &Config, opts: &SyncOptions, observer: &dyn Observer) -> Result<RunSummary> {
    // An unknown `--objects` fails before the destination is opened.
    select_flows(config, opts.objects.as_deref())?;
    let target = connector(config)?.open(config, "sync").await?;
    let result = target.sync(config, opts, observer).await;
    target.release().await;
    result
}

/// `sluice verify [--repair]` (see [`super::warehouse::verify`]).
pub async fn verify(config: &Config, opts: &SyncOptions, repair: bool) -> Result<Vec<FlowVerify>> {
    select_flows(config, opts.objects.as_deref())?;
    let target = connector(config)?.open(config, "verify").await?;
    let result = target.verify(config, opts, repair).await;
    target.release().await;
    result
}

/// Opens the configured destination for runs of `command` (`sluice serve` keeps one open
/// only while it writes), its run lock taken: a second holder fails here, naming the first.
pub async fn open_target(config: &Config, command: &str) -> Result<Box<dyn Target>> {
    connector(config)?.open(config, command).await
}

/// Opens the configured destination to read what runs recorded.
pub async fn open_reader(config: &Config, command: &str) -> Result<Box<dyn Reader>> {
    connector(config)?.open_read(config, command).await
}

/// `sluice status`: every flow's committed window end, last run, live rows and lag. Reads
/// beside a running sync where the destination allows it (PostgreSQL; not DuckDB).
pub async fn status(config: &Config) -> Result<Vec<StatusRow>> {
    connector(config)?.open_read(config, "status").await?.status(config).await
}

/// `sluice query`: runs `sql` in the configured destination, keeping nothing it does.
pub async fn query(config: &Config, sql: String) -> Result<QueryResult> {
    connector(config)?.open_read(config, "query").await?.query(sql).await
}

/// `sluice history`: the newest `limit` runs with their flows.
pub async fn history(config: &Config, limit: usize) -> Result<Vec<RunRecord>> {
    connector(config)?.open_read(config, "history").await?.history(limit).await
}
