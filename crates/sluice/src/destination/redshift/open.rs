//! Opening a Redshift cluster for the pipeline's commands ([`Connector`]): for a run, a
//! session holding the schema's lease, staging through S3; for `status` and `history`, a
//! plain PostgreSQL-protocol session (the control-table SQL is PostgreSQL's).

use super::{Redshift, RedshiftConfig, RedshiftKind};
use crate::config::Config;
use crate::destination::postgres::open::{parsed, reader};
use crate::error::Result;
use crate::pipeline::target::{Boxed, Connector, Reader, Target, Warehouse, settings_of};

/// The cluster of `config`, its schema's lease held.
async fn leased(config: &Config) -> Result<Warehouse<Redshift>> {
    let c = settings_of::<RedshiftConfig>(config)?;
    let dest =
        Redshift::connect(&parsed(&c.url)?, &c.schema, &c.staging, c.timeouts, config.serve.lease_timeout).await?;
    Ok(Warehouse::new(dest, c.schema.clone()))
}

impl Connector for RedshiftKind {
    fn check<'a>(&'a self, config: &'a Config) -> Boxed<'a, String> {
        Box::pin(async move { leased(config).await?.check(config).await })
    }

    fn open<'a>(&'a self, config: &'a Config, _command: &'a str) -> Boxed<'a, Box<dyn Target>> {
        Box::pin(async move { Ok(Box::new(leased(config).await?) as Box<dyn Target>) })
    }

    fn open_read<'a>(&'a self, config: &'a Config, _command: &'a str) -> Boxed<'a, Box<dyn Reader>> {
        Box::pin(async move {
            let c = settings_of::<RedshiftConfig>(config)?;
            reader(&c.url, &c.schema).await
        })
    }
}
