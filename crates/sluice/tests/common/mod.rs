//! What the library's integration tests share: the source config that logs in to an
//! in-process sandbox with its default credentials, and the sandbox's admin API (ground
//! truth, mutations, clock).

// Each suite uses its own subset.
#![allow(dead_code)]

use sandbox::Running;
use serde_json::{Map, Value as Json};

use sandbox::server::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_PASSWORD, DEFAULT_USERNAME};
use sluice::config::{Api, Auth, SalesforceConfig, Secret};

/// Password login to the sandbox at `url`, `api = auto`, no API budget limit.
pub fn password(url: &str) -> SalesforceConfig {
    SalesforceConfig {
        login_url: url.to_owned(),
        auth: Auth::Password {
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret: Secret::new(DEFAULT_CLIENT_SECRET),
            username: DEFAULT_USERNAME.into(),
            password: Secret::new(DEFAULT_PASSWORD),
        },
        api_version: "62.0".into(),
        api: Api::Auto,
        ca_file: None,
        api_budget_percent: 100,
        max_parallel_flows: 2,
        connect_timeout: sluice::config::DEFAULT_CONNECT_TIMEOUT,
        read_timeout: sluice::config::DEFAULT_READ_TIMEOUT,
        bulk_timeout: sluice::config::DEFAULT_BULK_TIMEOUT,
    }
}

/// `[source]` as TOML for the sandbox at `login_url`: password login, no API budget limit,
/// `extra` lines (each ending in a newline) added.
pub fn source_toml(login_url: &str, extra: &str) -> String {
    format!("{}{extra}api_budget_percent = 100\n", sandbox::server::source_toml(login_url, DEFAULT_PASSWORD))
}

/// Calls the sandbox's admin API; panics unless it succeeds. Returns the body.
pub async fn admin(sb: &Running, method: reqwest::Method, path: &str, body: Option<Json>) -> String {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", sb.instance_url));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    text
}

/// POSTs `body` to the admin API and returns the JSON answer.
pub async fn post(sb: &Running, path: &str, body: Json) -> Json {
    serde_json::from_str(&admin(sb, reqwest::Method::POST, path, Some(body)).await).unwrap()
}

/// Applies mutations (`[{"op": ...}, ...]`); returns the Ids they report.
pub async fn mutate(sb: &Running, ops: Json) -> Vec<String> {
    let done = post(sb, "/sandbox/v1/mutations", serde_json::json!({ "mutations": ops })).await;
    done["results"].as_array().unwrap().iter().filter_map(|r| r["id"].as_str().map(str::to_owned)).collect()
}

/// Moves the org's clock forward.
pub async fn advance(sb: &Running, secs: f64) {
    post(sb, "/sandbox/v1/clock", serde_json::json!({ "advance_secs": secs })).await;
}

/// The org's rows of `object` (recycle bin included, purged rows not), in its order.
pub async fn truth(sb: &Running, object: &str) -> Vec<Map<String, Json>> {
    truth_over(sb, object, None).await
}

/// [`truth`], over HTTPS when given the sandbox's CA file.
pub async fn truth_over(sb: &Running, object: &str, ca: Option<std::path::PathBuf>) -> Vec<Map<String, Json>> {
    let mut builder = reqwest::Client::builder();
    if let Some(ca) = ca {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap());
    }
    let http = builder.build().unwrap();
    let resp = http.get(format!("{}/sandbox/v1/truth/{object}", sb.instance_url)).send().await.unwrap();
    let text = resp.text().await.unwrap();
    text.lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Flow retries as the run loop does them, but milliseconds apart: tests that fail flows
/// on purpose (the fault suite) would otherwise spend seconds waiting between attempts.
pub fn quick_flow_retry() -> sluice::pipeline::FlowRetry {
    use std::time::Duration;
    sluice::pipeline::FlowRetry {
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(100),
        ..Default::default()
    }
}

/// Source options for quick tests: short backoff (`max_retries` retries), short Bulk polls,
/// small pages (so REST listings have several pages and Bulk results several), Bulk from
/// 100 rows in a window.
pub fn quick_source(max_retries: usize) -> sluice::source::salesforce::Options {
    use std::time::Duration;

    use sluice::source::salesforce::Options;
    use sluice::source::salesforce::bulk::BulkOptions;
    use sluice::source::salesforce::client::RetryPolicy;
    Options {
        retry: RetryPolicy {
            max_retries,
            min_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
        },
        bulk: BulkOptions {
            poll_min: Duration::from_millis(10),
            poll_max: Duration::from_millis(100),
            timeout: Duration::from_secs(30),
            max_records: Some(97),
        },
        bulk_threshold: 100,
        rest_batch_size: Some(200),
        buffered_batches: 1,
        ..Options::default()
    }
}
