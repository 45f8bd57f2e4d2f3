//! S3 and S3-compatible servers as destinations use them (Redshift's staging, the files
//! destination's `s3://` roots): the `s3://bucket/prefix` form, parsed purely, and the
//! client, built from the usual AWS environment (`AWS_ACCESS_KEY_ID`, `AWS_REGION`, ...)
//! plus the config's `s3_region` / `s3_endpoint`, whose pure checks ([`s3_keys`]) live
//! here too.

use std::sync::Arc;

use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};

use crate::config::{DestinationKeys, quoted_url};
use crate::redact;
use crate::{Error, Result};

/// `s3_region` and `s3_endpoint` (an http:// or https:// URL without credentials in it).
pub fn s3_keys(keys: &mut DestinationKeys<'_, '_>) -> (Option<String>, Option<String>) {
    let region = keys.text("s3_region");
    let endpoint = keys.text("s3_endpoint");
    if let Some(e) = &endpoint {
        if !(e.starts_with("http://") || e.starts_with("https://")) {
            keys.err("s3_endpoint", format!("{} is not an http:// or https:// URL", quoted_url(e)));
        } else if redact::has_userinfo(e) {
            keys.err("s3_endpoint", aws_userinfo(e));
        }
    }
    (region, endpoint)
}

/// The message for credentials written into an S3 URL.
pub fn aws_userinfo(url: &str) -> String {
    format!(
        "{:?} holds credentials (before the `@`); remove them: S3 credentials come from the AWS environment \
         (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, or an instance role), never from the URL",
        redact::userinfo(url)
    )
}

/// The bucket and the key prefix (no slashes at either end) of `s3://bucket/prefix`; the
/// problem, for a config error, otherwise.
pub fn parse_url(url: &str) -> std::result::Result<(String, String), String> {
    let rest = url.strip_prefix("s3://").ok_or("expected \"s3://bucket/prefix\"")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err("names no bucket; expected \"s3://bucket/prefix\"".into());
    }
    Ok((bucket.to_owned(), prefix.trim_matches('/').to_owned()))
}

/// A client for `bucket`. `key` names the config key the bucket came from, for errors.
/// Conditional writes (`If-None-Match`, `If-Match`) are on: locks and commits rely on them.
pub fn client(bucket: &str, region: Option<&str>, endpoint: Option<&str>, key: &str) -> Result<AmazonS3> {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some(region) = region {
        builder = builder.with_region(region);
    }
    if let Some(endpoint) = endpoint {
        builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
    }
    builder.build().map_err(|e| Error::user(format!("{key}: {e}")))
}

/// Deletes every object under `prefix` (`key`: the config key, for errors).
pub async fn delete_prefix(store: &Arc<dyn ObjectStore>, prefix: &str, key: &str) -> Result<()> {
    let prefix = ObjectPath::from(prefix);
    let mut listing = store.list(Some(&prefix));
    while let Some(meta) = listing.next().await {
        let meta = meta.map_err(|e| Error::external(format!("{key}: listing {prefix}: {e}")))?;
        store
            .delete(&meta.location)
            .await
            .map_err(|e| Error::external(format!("{key}: deleting {}: {e}", meta.location)))?;
    }
    Ok(())
}

/// Why [`upload_file`] failed.
#[derive(Debug)]
pub enum UploadError {
    /// Reading the local file.
    Read(std::io::Error),
    /// Writing the object.
    Store(object_store::Error),
}

/// Sends the local file at `path` as the object `location`, in pieces of `chunk` bytes,
/// at most two in flight: memory stays at a few pieces whatever the file's size.
pub async fn upload_file(
    store: &dyn ObjectStore,
    location: &ObjectPath,
    path: &std::path::Path,
    chunk: usize,
) -> std::result::Result<(), UploadError> {
    use std::io::Read;
    let upload = store.put_multipart(location).await.map_err(UploadError::Store)?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, chunk);
    let mut file = std::fs::File::open(path).map_err(UploadError::Read)?;
    let mut buf = vec![0u8; chunk];
    loop {
        let n = file.read(&mut buf).map_err(UploadError::Read)?;
        if n == 0 {
            break;
        }
        writer.wait_for_capacity(2).await.map_err(UploadError::Store)?;
        writer.write(&buf[..n]);
    }
    writer.finish().await.map_err(UploadError::Store)?;
    Ok(())
}
