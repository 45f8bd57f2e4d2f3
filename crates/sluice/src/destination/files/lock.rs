//! One run at a time writes a files root ([`RunLock`]), told who holds it otherwise.
//!
//! - Local root: an exclusive lock on `<path>/.sluice.lock`, a file that also says who
//!   holds it. The operating system drops the lock when the holder dies, however it dies.
//! - S3 root: a lease, the object `<prefix>/.sluice.lock` (who, and until when), created
//!   only if absent (`If-None-Match: *`) and refreshed every [`HEARTBEAT`] only if it is
//!   still the version this run wrote (`If-Match`). A lease that has not been refreshed for
//!   [`LEASE`] belongs to a dead run and is taken over, again only if unchanged since it was
//!   read, so of two runs racing for it one wins and the other is told who holds it. A run
//!   whose lease was lost (it stalled longer than the lease) stops before it commits
//!   anything more ([`RunLock::check`]).

use std::fs::{self, File};
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};

use super::store::{S3Store, Store, io_error};
use crate::error::{Error, Result};

/// The lock's key under the root.
pub(super) const LOCK: &str = ".sluice.lock";

/// How long an S3 lease outlives its last refresh: a crashed run blocks the next for at
/// most this long.
pub const LEASE: Duration = Duration::from_secs(600);

/// How often a live run refreshes its S3 lease.
pub const HEARTBEAT: Duration = Duration::from_secs(60);

/// The run lock of a files root (see the module docs); given back by [`RunLock::release`],
/// or when dropped (a local lock at once; an S3 lease stops being refreshed and lapses).
#[derive(Debug)]
pub struct RunLock {
    held: Held,
}

#[derive(Debug)]
enum Held {
    /// Held while the file is open.
    Local {
        _file: File,
    },
    S3(Lease),
}

/// An S3 lease and its heartbeat.
#[derive(Debug)]
struct Lease {
    store: S3Store,
    /// The version this run last wrote; `None` once the lease is lost.
    version: Arc<Mutex<Option<String>>>,
    heartbeat: tokio::task::JoinHandle<()>,
}

/// The lease object's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// Who holds it, for the run that is refused.
    pub holder: String,
    /// When it lapses unless refreshed.
    pub expires_at: DateTime<Utc>,
}

/// Who is taking the lock, as a refused run is told.
fn who(command: &str) -> String {
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!(
        "`sluice {command}`, pid {} on {}, since {}",
        std::process::id(),
        if host.trim().is_empty() { "this machine" } else { host.trim() },
        Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    )
}

fn busy(root: &str, holder: &str) -> Error {
    Error::busy(format!("destination {root} is in use by another sluice run ({holder}); wait for it to finish"))
}

impl RunLock {
    /// Takes the lock of the root `store` for `command`; a busy error naming the holder
    /// when another run has it.
    pub(super) async fn take(store: &Store, command: &str) -> Result<Self> {
        match store {
            Store::Local(root) => take_local(root, &store.shown(""), command),
            Store::S3(s3) => take_lease(s3, &store.shown(""), command).await,
        }
    }

    /// An error when the lock is no longer this run's (an S3 lease that lapsed and was
    /// taken over): nothing more may be committed.
    pub fn check(&self) -> Result<()> {
        match &self.held {
            Held::S3(lease) if lease.version.lock().unwrap_or_else(|p| p.into_inner()).is_none() => {
                Err(Error::external_fatal(
                    "the run lock of the destination was lost (the run stalled longer than its lease and another run \
                     may hold it); nothing more is committed",
                ))
            }
            _ => Ok(()),
        }
    }

    /// Gives the lock back: the next run need not wait for a lease to lapse.
    pub async fn release(self) -> Result<()> {
        let Held::S3(lease) = self.held else { return Ok(()) };
        lease.heartbeat.abort();
        let ours = lease.version.lock().unwrap_or_else(|p| p.into_inner()).take();
        if ours.is_none() {
            return Ok(());
        }
        let path = lease.store.path(LOCK);
        // Only a lease that is still ours: a lapsed one may be another run's by now.
        match lease.store.client.head(&path).await {
            Ok(meta) if meta.e_tag == ours => {
                lease.store.client.delete(&path).await.map_err(|e| lease.store.error("remove", LOCK, &e))
            }
            _ => Ok(()),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

fn take_local(root: &Path, shown: &str, command: &str) -> Result<RunLock> {
    use std::io::{Read as _, Seek as _};
    fs::create_dir_all(root).map_err(|e| io_error("create", root, e))?;
    let path = root.join(LOCK);
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io_error("open", &path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(busy(shown, if holder.is_empty() { "another process" } else { holder }));
        }
        Err(fs::TryLockError::Error(e)) => return Err(io_error("lock", &path, e)),
    }
    let written = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(who(command).as_bytes()))
        .and_then(|()| file.flush());
    written.map_err(|e| io_error("write", &path, e))?;
    Ok(RunLock { held: Held::Local { _file: file } })
}

fn record(holder: &str) -> Result<PutPayload> {
    let expires_at = Utc::now() + chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::MAX);
    let bytes = serde_json::to_vec(&LeaseRecord { holder: holder.to_owned(), expires_at })
        .map_err(|e| Error::internal(format!("encoding the lease: {e}")))?;
    Ok(PutPayload::from(bytes))
}

async fn take_lease(s3: &S3Store, shown: &str, command: &str) -> Result<RunLock> {
    let holder = who(command);
    let mut version = None;
    // A lease given back between the failed create and the read is simply gone: try again.
    for _ in 0..3 {
        if let Some(taken) = try_lease(s3, shown, &holder).await? {
            version = Some(taken);
            break;
        }
    }
    let Some(version) = version else {
        return Err(busy(shown, "other runs taking and giving it back as this one tried"));
    };
    if version.is_none() {
        // Not refreshable, so not kept: the next run need not wait for it to lapse.
        let _ = s3.client.delete(&s3.path(LOCK)).await;
        return Err(Error::user(format!(
            "{shown}: the S3 server returned no ETag for the run lock, so it cannot be refreshed safely; use a server \
             that supports conditional writes"
        )));
    }
    let version = Arc::new(Mutex::new(version));
    let heartbeat = tokio::spawn(refresh(s3.clone(), holder, version.clone()));
    Ok(RunLock { held: Held::S3(Lease { store: s3.clone(), version, heartbeat }) })
}

/// One attempt at the lease: `Some(version)` when taken (created, or a lapsed one taken
/// over), `None` when it vanished between the create and the read, a busy error when held.
async fn try_lease(s3: &S3Store, shown: &str, holder: &str) -> Result<Option<Option<String>>> {
    let path = s3.path(LOCK);
    let created = s3.client.put_opts(&path, record(holder)?, PutOptions::from(PutMode::Create)).await;
    match created {
        Ok(put) => Ok(Some(put.e_tag)),
        Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
            // Held, or lapsed: read who, and until when.
            let got = match s3.client.get(&path).await {
                Ok(got) => got,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(s3.error("read", LOCK, &e)),
            };
            let e_tag = got.meta.e_tag.clone();
            let bytes = got.bytes().await.map_err(|e| s3.error("read", LOCK, &e))?;
            let current: Option<LeaseRecord> = serde_json::from_slice(&bytes).ok();
            if let Some(current) = &current
                && current.expires_at > Utc::now()
            {
                return Err(busy(shown, &current.holder));
            }
            let update = PutMode::Update(UpdateVersion { e_tag, version: None });
            match s3.client.put_opts(&path, record(holder)?, PutOptions::from(update)).await {
                Ok(put) => {
                    let was = current.map_or_else(|| "unreadable".to_owned(), |c| c.holder);
                    tracing::warn!(root = shown, previous = %was, "took over a lapsed run lock (its run died)");
                    Ok(Some(put.e_tag))
                }
                Err(object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. }) => {
                    Err(busy(shown, "another run that took over the lapsed lock just now"))
                }
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(s3.error("take the run lock", LOCK, &e)),
            }
        }
        Err(e) => Err(s3.error("take the run lock", LOCK, &e)),
    }
}

/// Refreshes the lease every [`HEARTBEAT`] while it is this run's; marks it lost (and
/// stops) when another run replaced it. A failed request is retried at the next beat.
async fn refresh(s3: S3Store, holder: String, version: Arc<Mutex<Option<String>>>) {
    let path = s3.path(LOCK);
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        let Some(e_tag) = version.lock().unwrap_or_else(|p| p.into_inner()).clone() else { return };
        let Ok(payload) = record(&holder) else { return };
        let update = PutMode::Update(UpdateVersion { e_tag: Some(e_tag), version: None });
        match s3.client.put_opts(&path, payload, PutOptions::from(update)).await {
            Ok(put) => *version.lock().unwrap_or_else(|p| p.into_inner()) = put.e_tag,
            Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => {
                tracing::error!("the run lock was taken over by another run; this run commits nothing more");
                *version.lock().unwrap_or_else(|p| p.into_inner()) = None;
                return;
            }
            Err(e) => tracing::warn!(error = %e, "could not refresh the run lock; trying again"),
        }
    }
}
