//! Opening a PostgreSQL database for the pipeline's commands ([`Connector`]): for a run, a
//! session that will hold the advisory locks of the flows the run claims; for `status` and
//! `history`, a plain session that reads beside a running sync.

use super::{PgUrl, Postgres, PostgresConfig, PostgresKind, SessionSettings};
use crate::config::{Config, Secret};
use crate::error::{Error, Result};
use crate::pipeline::target::{Boxed, Connector, Reader, Target, Warehouse, settings_of};

/// `destination.url`, parsed (validation already checked it).
pub(crate) fn parsed(url: &Secret) -> Result<PgUrl> {
    PgUrl::parse(url.expose()).map_err(|m| Error::user(format!("destination.url: {m}")))
}

/// The database of `config`, for a run.
async fn locked(config: &Config) -> Result<Warehouse<Postgres>> {
    let c = settings_of::<PostgresConfig>(config)?;
    let session = SessionSettings { timeouts: c.timeouts, redshift: false, lease_timeout: config.serve.lease_timeout };
    let dest = Postgres::connect_with(&parsed(&c.url)?, session).await?;
    Ok(Warehouse::new(dest, c.schema.clone()))
}

impl Connector for PostgresKind {
    fn check<'a>(&'a self, config: &'a Config) -> Boxed<'a, String> {
        Box::pin(async move { locked(config).await?.check(config).await })
    }

    fn open<'a>(&'a self, config: &'a Config, _command: &'a str) -> Boxed<'a, Box<dyn Target>> {
        Box::pin(async move { Ok(Box::new(locked(config).await?) as Box<dyn Target>) })
    }

    fn open_read<'a>(&'a self, config: &'a Config, _command: &'a str) -> Boxed<'a, Box<dyn Reader>> {
        Box::pin(async move {
            let c = settings_of::<PostgresConfig>(config)?;
            reader(&c.url, &c.schema).await
        })
    }
}

/// A plain session on the database at `url` that reads `schema`'s control tables beside a
/// running sync (PostgreSQL's, and Redshift's, whose control-table SQL is PostgreSQL's).
pub(crate) async fn reader(url: &Secret, schema: &str) -> Result<Box<dyn Reader>> {
    let dest = Postgres::connect(&parsed(url)?).await?;
    Ok(Box::new(Warehouse::new(dest, schema)))
}
