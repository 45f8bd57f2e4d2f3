//! Where a files root's objects are kept ([`Store`]): a local directory or an S3 prefix,
//! behind the handful of operations the files destination needs. Keys are relative,
//! `/`-separated (`account/run=r1/manifest.json`).
//!
//! What each operation guarantees, on both:
//! - [`Store::write`] is atomic: readers see the old object or the whole new one (locally a
//!   synced temporary file renamed into place, the directory synced too; on S3 a PUT).
//! - a part is written locally first ([`Store::part_path`]): in place on a local root, in a
//!   spool file for S3, which [`Store::upload`] sends (multipart, in 8 MiB pieces, so memory
//!   stays bounded) and removes. On a local root the part is synced before it counts.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::config::{FilesRoot, S3Root};
use crate::destination::s3::{UploadError, upload_file};
use crate::error::{Error, Result};

/// The bytes an upload sends per request.
const CHUNK: usize = 8 << 20;

/// A files root's storage.
#[derive(Debug, Clone)]
pub(super) enum Store {
    /// A local directory.
    Local(PathBuf),
    /// An S3 prefix.
    S3(S3Store),
}

/// An S3 prefix and its client.
#[derive(Debug, Clone)]
pub(super) struct S3Store {
    pub(super) client: Arc<dyn ObjectStore>,
    bucket: String,
    prefix: String,
    /// Where parts are written before they are uploaded.
    spool: PathBuf,
}

/// What an I/O error says about the local root, with a hint where one helps.
pub(super) fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    let hint = match e.kind() {
        std::io::ErrorKind::PermissionDenied => " (permission denied: choose a writable `destination.path`)",
        std::io::ErrorKind::StorageFull => " (the disk is full)",
        std::io::ErrorKind::ReadOnlyFilesystem => " (the file system is read-only)",
        _ => "",
    };
    Error::user(format!("cannot {what} {}: {e}{hint}", path.display()))
}

impl Store {
    /// The storage of `root`: for S3, a client from the environment's credentials.
    pub(super) fn open(root: &FilesRoot) -> Result<Self> {
        match root {
            FilesRoot::Local(path) => Ok(Store::Local(path.clone())),
            FilesRoot::S3(S3Root { bucket, prefix, region, endpoint }) => {
                let client =
                    crate::destination::s3::client(bucket, region.as_deref(), endpoint.as_deref(), "destination.path")?;
                let spool = std::env::temp_dir().join(format!("sluice-spool-{}-{}", std::process::id(), unique()));
                Ok(Store::S3(S3Store {
                    client: Arc::new(client),
                    bucket: bucket.clone(),
                    prefix: prefix.clone(),
                    spool,
                }))
            }
        }
    }

    /// The full name of `key`, for messages: a path, or `s3://bucket/prefix/key`.
    pub(super) fn shown(&self, key: &str) -> String {
        match self {
            Store::Local(root) => root.join(key).display().to_string(),
            Store::S3(s3) => format!("s3://{}/{}", s3.bucket, s3.object(key)),
        }
    }

    /// The local path of `key` (local roots only).
    pub(super) fn local(&self, key: &str) -> Option<PathBuf> {
        match self {
            Store::Local(root) => Some(root.join(key)),
            Store::S3(_) => None,
        }
    }

    /// Makes `dir` ready to hold objects (a local directory; nothing on S3).
    pub(super) fn ensure_dir(&self, dir: &str) -> Result<()> {
        match self {
            Store::Local(root) => {
                let path = root.join(dir);
                fs::create_dir_all(&path).map_err(|e| io_error("create", &path, e))
            }
            Store::S3(_) => Ok(()),
        }
    }

    /// The object `key`, or `None` when there is none.
    pub(super) async fn read(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Store::Local(root) => {
                let path = root.join(key);
                match fs::read(&path) {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(io_error("read", &path, e)),
                }
            }
            Store::S3(s3) => match s3.client.get(&s3.path(key)).await {
                Ok(got) => {
                    let bytes = got.bytes().await.map_err(|e| s3.error("read", key, &e))?;
                    Ok(Some(bytes.to_vec()))
                }
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(s3.error("read", key, &e)),
            },
        }
    }

    /// Whether the object `key` exists (its content is not read).
    pub(super) async fn exists(&self, key: &str) -> Result<bool> {
        match self {
            Store::Local(root) => Ok(root.join(key).is_file()),
            Store::S3(s3) => match s3.client.head(&s3.path(key)).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(s3.error("read", key, &e)),
            },
        }
    }

    /// Writes `key` atomically (see the module docs).
    pub(super) async fn write(&self, key: &str, bytes: &[u8]) -> Result<()> {
        match self {
            Store::Local(root) => write_atomically(&root.join(key), bytes),
            Store::S3(s3) => {
                let payload = PutPayload::from(bytes::Bytes::copy_from_slice(bytes));
                s3.client.put(&s3.path(key), payload).await.map_err(|e| s3.error("write", key, &e))?;
                Ok(())
            }
        }
    }

    /// The names of `dir`'s children: files and subdirectories (S3: objects and common
    /// prefixes one level down). Empty when `dir` does not exist.
    pub(super) async fn children(&self, dir: &str) -> Result<Vec<String>> {
        match self {
            Store::Local(root) => {
                let path = root.join(dir);
                let entries = match fs::read_dir(&path) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(e) => return Err(io_error("list", &path, e)),
                };
                let mut out = Vec::new();
                for entry in entries {
                    let entry = entry.map_err(|e| io_error("list", &path, e))?;
                    out.push(entry.file_name().to_string_lossy().into_owned());
                }
                Ok(out)
            }
            Store::S3(s3) => {
                let listed =
                    s3.client.list_with_delimiter(Some(&s3.path(dir))).await.map_err(|e| s3.error("list", dir, &e))?;
                let names = listed.common_prefixes.iter().chain(listed.objects.iter().map(|o| &o.location));
                Ok(names.filter_map(|p| p.filename().map(str::to_owned)).collect())
            }
        }
    }

    /// Removes `dir` and everything under it.
    pub(super) async fn remove_dir(&self, dir: &str) -> Result<()> {
        match self {
            Store::Local(root) => {
                let path = root.join(dir);
                match fs::remove_dir_all(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error("remove", &path, e)),
                    _ => Ok(()),
                }
            }
            Store::S3(s3) => {
                crate::destination::s3::delete_prefix(&s3.client, &s3.object(&format!("{dir}/")), "destination.path")
                    .await
            }
        }
    }

    /// Removes the object `key` (nothing when there is none).
    pub(super) async fn remove(&self, key: &str) -> Result<()> {
        match self {
            Store::Local(root) => {
                let path = root.join(key);
                match fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error("remove", &path, e)),
                    _ => Ok(()),
                }
            }
            Store::S3(s3) => match s3.client.delete(&s3.path(key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(s3.error("remove", key, &e)),
            },
        }
    }

    /// Where the part `key` is written: in place on a local root, a spool file for S3.
    pub(super) fn part_path(&self, key: &str) -> Result<PathBuf> {
        match self {
            Store::Local(root) => Ok(root.join(key)),
            Store::S3(s3) => {
                fs::create_dir_all(&s3.spool).map_err(|e| io_error("create", &s3.spool, e))?;
                Ok(s3.spool.join(key.replace('/', "__")))
            }
        }
    }

    /// Makes the part written at `path` (from [`Store::part_path`]) the object `key`: synced
    /// in place, or uploaded and its spool file removed. Returns its size in bytes.
    pub(super) async fn commit_part(&self, key: &str, path: &Path, file: File) -> Result<u64> {
        // The manifest may only point at bytes that are stored.
        file.sync_all().map_err(|e| io_error("sync", path, e))?;
        let bytes = file.metadata().map_err(|e| io_error("stat", path, e))?.len();
        let Store::S3(s3) = self else { return Ok(bytes) };
        drop(file);
        let uploaded = s3.upload(key, path).await;
        let _ = fs::remove_file(path);
        // Gone once no other part is spooled.
        let _ = fs::remove_dir(&s3.spool);
        uploaded.map(|()| bytes)
    }

    /// Removes a part's spool file, if this store spools (an aborted run).
    pub(super) fn discard_spool(&self, path: &Path) {
        if matches!(self, Store::S3(_)) {
            let _ = fs::remove_file(path);
        }
    }
}

impl S3Store {
    /// The object name of `key` under the prefix.
    fn object(&self, key: &str) -> String {
        if self.prefix.is_empty() { key.to_owned() } else { format!("{}/{key}", self.prefix) }
    }

    pub(super) fn path(&self, key: &str) -> ObjectPath {
        ObjectPath::from(self.object(key))
    }

    pub(super) fn error(&self, what: &str, key: &str, e: &object_store::Error) -> Error {
        let at = format!("s3://{}/{}", self.bucket, self.object(key));
        match e {
            object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
                Error::user(format!("cannot {what} {at}: {e} (check the AWS credentials and the bucket's policy)"))
            }
            _ => Error::external(format!("cannot {what} {at}: {e}")),
        }
    }

    /// Sends the file at `path` as the object `key`, in pieces of [`CHUNK`] bytes.
    async fn upload(&self, key: &str, path: &Path) -> Result<()> {
        match upload_file(self.client.as_ref(), &self.path(key), path, CHUNK).await {
            Ok(()) => Ok(()),
            Err(UploadError::Read(e)) => Err(io_error("read", path, e)),
            Err(UploadError::Store(e)) => Err(self.error("write", key, &e)),
        }
    }
}

/// A number no other spool directory of this process uses.
fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Writes `bytes` to `path` so that readers see the old file or the whole new one:
/// a temporary file in the same directory, synced, then renamed over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut file = File::create(&tmp).map_err(|e| io_error("create", &tmp, e))?;
    file.write_all(bytes).map_err(|e| io_error("write", &tmp, e))?;
    file.sync_all().map_err(|e| io_error("sync", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io_error("rename into", path, e))?;
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        // Make the rename itself durable.
        let _ = d.sync_all();
    }
    Ok(())
}
