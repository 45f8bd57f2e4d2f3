//! The S3-compatible server `./scripts/test` starts (moto): its endpoint and new buckets.

// Each suite uses its own subset.
#![allow(dead_code)]

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;

/// The server's endpoint (`SLUICE_TEST_S3_ENDPOINT`).
pub fn endpoint() -> String {
    std::env::var("SLUICE_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!("SLUICE_TEST_S3_ENDPOINT is not set: run ./scripts/test, which starts an S3-compatible server (moto)")
    })
}

/// A new bucket on the server, and a store for it.
pub async fn bucket(name: &str) -> Arc<dyn ObjectStore> {
    let endpoint = endpoint();
    // S3's CreateBucket: a PUT on the bucket. moto accepts any credentials.
    let resp = reqwest::Client::new().put(format!("{endpoint}/{name}")).send().await.unwrap();
    assert!(resp.status().is_success(), "create bucket {name}: {}", resp.status());
    Arc::new(
        AmazonS3Builder::new()
            .with_bucket_name(name)
            .with_region("us-east-1")
            .with_endpoint(&endpoint)
            .with_allow_http(true)
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .build()
            .unwrap(),
    )
}
