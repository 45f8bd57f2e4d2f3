//! Opening a lake for the pipeline's commands ([`Connector`]): every command opens the
//! work database (its file lock is the run lock of this machine's runs) and first brings
//! the configured flows' work tables to the lake's newest versions ([`LakeDb::refresh`]),
//! so `status`, `history`, `query` and `verify` see what the lake holds; then the
//! warehouse machinery does the rest, as on DuckDB.

use super::config::{LakeConfig, LakeKind};
use super::work::LakeDb;
use crate::config::Config;
use crate::consolidate::TableRef;
use crate::error::Result;
use crate::pipeline::target::{Boxed, Connector, Reader, Target, Warehouse, settings_of};

/// The lake of `config`, open, its flows' work tables current.
async fn opened(config: &Config) -> Result<Warehouse<LakeDb>> {
    let c = settings_of::<LakeConfig>(config)?;
    let lake = LakeDb::open(c)?;
    let naming = config.destination.naming();
    let targets: Vec<TableRef> =
        config.flows.iter().map(|f| TableRef::new(&c.schema, naming.apply(&f.object))).collect();
    lake.refresh(&targets).await?;
    Ok(Warehouse::new(lake, c.schema.clone()))
}

impl Connector for LakeKind {
    fn check<'a>(&'a self, config: &'a Config) -> Boxed<'a, String> {
        Box::pin(async move { opened(config).await?.check(config).await })
    }

    fn open<'a>(&'a self, config: &'a Config, _command: &'a str) -> Boxed<'a, Box<dyn Target>> {
        Box::pin(async move { Ok(Box::new(opened(config).await?) as Box<dyn Target>) })
    }

    fn open_read<'a>(&'a self, config: &'a Config, _command: &'a str) -> Boxed<'a, Box<dyn Reader>> {
        Box::pin(async move { Ok(Box::new(opened(config).await?) as Box<dyn Reader>) })
    }
}
