//! Opening a DuckDB file for the pipeline's commands ([`Connector`]): for a run, read-write
//! (the file lock is the run lock); for `status` and `history`, read-only.

use super::{DuckDb, DuckDbConfig, DuckDbKind};
use crate::config::Config;
use crate::error::Result;
use crate::pipeline::target::{Boxed, Connector, Reader, Target, Warehouse, settings_of};

/// The file of `config`, open read-write: its lock held.
fn writable(config: &Config) -> Result<Warehouse<DuckDb>> {
    let c = settings_of::<DuckDbConfig>(config)?;
    Ok(Warehouse::new(DuckDb::open_with(&c.path, c.memory_limit_mib)?, c.schema.clone()))
}

impl Connector for DuckDbKind {
    fn check<'a>(&'a self, config: &'a Config) -> Boxed<'a, String> {
        Box::pin(async move { writable(config)?.check(config).await })
    }

    fn open<'a>(&'a self, config: &'a Config, _command: &'a str) -> Boxed<'a, Box<dyn Target>> {
        Box::pin(async move { Ok(Box::new(writable(config)?) as Box<dyn Target>) })
    }

    fn open_read<'a>(&'a self, config: &'a Config, _command: &'a str) -> Boxed<'a, Box<dyn Reader>> {
        Box::pin(async move {
            let c = settings_of::<DuckDbConfig>(config)?;
            let dest = DuckDb::open_read_only(&c.path)?;
            Ok(Box::new(Warehouse::new(dest, c.schema.clone())) as Box<dyn Reader>)
        })
    }
}
