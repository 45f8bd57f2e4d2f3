//! Opening a files root for the pipeline's commands ([`Connector`]): a run holds the root's
//! lock and writes through [`FilesSink`]. `verify`, `status`, `history` and `serve` read a
//! warehouse's control tables, which a files root does not have: each is a user error
//! naming where its state is kept instead.

use futures_util::future::BoxFuture;

use super::sink::FilesSink;
use super::{FilesConfig, FilesDestination, FilesKind};
use crate::config::Config;
use crate::consolidate::ScheduleRow;
use crate::error::{Error, Result};
use crate::pipeline::flows;
use crate::pipeline::report::ScheduleState;
use crate::pipeline::sink::RunCx;
use crate::pipeline::summary::{Observer, RunSummary, SyncOptions};
use crate::pipeline::target::{Boxed, Connector, LocalBoxed, Reader, Target, selected_source, settings_of};
use crate::pipeline::warehouse::FlowVerify;

/// The configured root, not yet locked.
fn root(config: &Config) -> Result<FilesDestination> {
    let c = settings_of::<FilesConfig>(config)?;
    FilesDestination::open(&c.root, c.format)
}

/// What `sluice <command>` says of a files root, which has no control tables and no SQL.
fn no_control_tables(command: &str, dest: &FilesDestination) -> Error {
    Error::user(format!(
        "`sluice {command}` works on a warehouse's tables and control tables; destination.type = \"files\" writes files under {} and keeps its state in {}",
        dest.root_shown(),
        dest.state_shown()
    ))
}

/// A files root open for runs: its lock held by the sink.
struct FilesTarget {
    sink: FilesSink,
}

impl Connector for FilesKind {
    fn check<'a>(&'a self, config: &'a Config) -> Boxed<'a, String> {
        Box::pin(async move {
            let dest = root(config)?;
            dest.check().await?;
            Ok(format!("destination {} is writable", dest.root_shown()))
        })
    }

    fn open<'a>(&'a self, config: &'a Config, command: &'a str) -> Boxed<'a, Box<dyn Target>> {
        Box::pin(async move {
            let dest = root(config)?;
            // Refused before the lock is taken: there is nothing but `sync` to run here.
            if command != "sync" {
                return Err(no_control_tables(command, &dest));
            }
            Ok(Box::new(FilesTarget { sink: FilesSink::open(dest, command).await? }) as Box<dyn Target>)
        })
    }

    fn open_read<'a>(&'a self, config: &'a Config, command: &'a str) -> Boxed<'a, Box<dyn Reader>> {
        Box::pin(async move { Err(no_control_tables(command, &root(config)?)) })
    }
}

impl Target for FilesTarget {
    fn sync<'a>(
        &'a self,
        config: &'a Config,
        opts: &'a SyncOptions,
        observer: &'a dyn Observer,
    ) -> LocalBoxed<'a, RunSummary> {
        Box::pin(async move {
            let (flows, source) = selected_source(config, opts).await?;
            flows::run(&self.sink, &RunCx::new(&source, config, opts, observer), flows).await
        })
    }

    fn verify<'a>(&'a self, config: &'a Config, _opts: &'a SyncOptions, _repair: bool) -> Boxed<'a, Vec<FlowVerify>> {
        Box::pin(async move { Err(no_control_tables("verify", &root(config)?)) })
    }

    fn load_schedule<'a>(&'a self, config: &'a Config) -> Boxed<'a, ScheduleState> {
        Box::pin(async move { Err(no_control_tables("serve", &root(config)?)) })
    }

    fn save_schedule<'a>(&'a self, config: &'a Config, _rows: &'a [ScheduleRow]) -> Boxed<'a, ()> {
        Box::pin(async move { Err(no_control_tables("serve", &root(config)?)) })
    }

    fn release(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(self.sink.release())
    }
}
