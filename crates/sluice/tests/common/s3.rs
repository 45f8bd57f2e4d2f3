//! The S3-compatible server `./scripts/test` starts (moto): its endpoint, clients and new
//! buckets. Shared by both crates' tests (`#[path]`).

// Each suite uses its own subset.
#![allow(dead_code)]

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3, AmazonS3Builder};

/// The server's endpoint (`SLUICE_TEST_S3_ENDPOINT`).
pub fn endpoint() -> String {
    std::env::var("SLUICE_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!("SLUICE_TEST_S3_ENDPOINT is not set: run ./scripts/test, which starts an S3-compatible server (moto)")
    })
}

/// A client for `bucket` on the server (moto accepts any credentials).
pub fn client(bucket: &str) -> AmazonS3 {
    AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region("us-east-1")
        .with_endpoint(endpoint())
        .with_allow_http(true)
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .build()
        .unwrap()
}

/// A new bucket named `name` on the server, and a store for it.
pub async fn bucket(name: &str) -> Arc<dyn ObjectStore> {
    // S3's CreateBucket: a PUT on the bucket.
    let resp = reqwest::Client::new().put(format!("{}/{name}", endpoint())).send().await.unwrap();
    assert!(resp.status().is_success(), "create bucket {name}: {}", resp.status());
    Arc::new(client(name))
}

/// A bucket no other test, or earlier run, has used (the server outlives a test run): its
/// name, starting with `stem`, and a store for it.
pub async fn fresh_bucket(stem: &str) -> (String, Arc<dyn ObjectStore>) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("{stem}-{}-{}-{n}", std::process::id(), chrono::Utc::now().timestamp_micros());
    let store = bucket(&name).await;
    (name, store)
}
