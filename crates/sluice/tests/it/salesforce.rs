//! The Salesforce source against an in-process sandbox over real HTTP: every login
//! flow, REST and Bulk extraction compared with each other and with the sandbox's
//! ground truth, windows, expired sessions, injected 5xx, failing Bulk jobs, the API
//! quota, and the errors a user sees.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use arrow::array::{
    Array, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array, StringArray,
    Time32MillisecondArray, TimestampMillisecondArray,
};
use arrow::compute::{concat_batches, sort_to_indices, take_record_batch};
use arrow::record_batch::RecordBatch;
use futures_util::StreamExt;
use sandbox::knobs::Knobs;
use sandbox::server::{self, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_PASSWORD, DEFAULT_USERNAME};
use sandbox::{Running, SandboxConfig};
use serde_json::{Map, Value as Json, json};
use sluice::config::{Api, Auth, SalesforceConfig, Secret};
use sluice::model::{SluiceType, TableSchema, Window};
use sluice::source::salesforce::describe::{Described, Selection};
use sluice::source::salesforce::{Options, SalesforceSource};
use sluice::{Error, Kind};

use crate::common;
use common::{admin, password, truth, truth_over};

const OBJECTS: [&str; 7] = ["Account", "Case", "Contact", "Invoice__c", "Lead", "Opportunity", "User"];

fn counts() -> Vec<(String, u64)> {
    [
        ("Account", 300),
        ("Contact", 350),
        ("Opportunity", 250),
        ("Lead", 120),
        ("Case", 150),
        ("User", 12),
        ("Invoice__c", 300),
    ]
    .into_iter()
    .map(|(o, n)| (o.to_owned(), n))
    .collect()
}

async fn start(knobs: Knobs) -> Running {
    start_with(SandboxConfig { seed: 11, counts: counts(), knobs, ..SandboxConfig::default() }).await
}

async fn start_with(cfg: SandboxConfig) -> Running {
    server::start(cfg).await.expect("sandbox starts")
}

fn fast() -> Options {
    common::quick_source(10)
}

async fn connect(sb: &Running, opts: Options) -> SalesforceSource {
    SalesforceSource::connect_with(&password(&sb.login_url), opts).await.expect("connects")
}

async fn describe(src: &SalesforceSource, object: &str) -> Described {
    src.describe(object, &Selection::default()).await.expect("describe")
}

/// Soft-deletes a few rows of every object that has a recycle bin, so queryAll has
/// `IsDeleted = true` rows to return.
async fn delete_some(sb: &Running) {
    for object in OBJECTS.iter().filter(|o| **o != "User") {
        let ids: Vec<String> =
            truth(sb, object).await.iter().take(5).map(|r| r["Id"].as_str().unwrap().to_owned()).collect();
        let ops: Vec<Json> = ids.iter().map(|id| json!({"op": "delete", "object": object, "id": id})).collect();
        admin(sb, reqwest::Method::POST, "/sandbox/v1/mutations", Some(json!({ "mutations": ops }))).await;
    }
}

/// One batch of all rows, sorted by Id.
fn sorted(schema: &TableSchema, batches: &[RecordBatch]) -> RecordBatch {
    let arrow = sluice::source::salesforce::decode::arrow_schema(schema);
    let all = concat_batches(&arrow, batches).unwrap();
    let id = schema.columns.iter().position(|c| c.source_name == "Id").unwrap();
    let order = sort_to_indices(all.column(id), None, None).unwrap();
    take_record_batch(&all, &order).unwrap()
}

/// A cell as the REST JSON of the truth dump writes it.
fn cell(batch: &RecordBatch, col: usize, row: usize, ty: SluiceType) -> Json {
    let a = batch.column(col);
    if a.is_null(row) {
        return Json::Null;
    }
    macro_rules! get {
        ($t:ty) => {
            a.as_any().downcast_ref::<$t>().unwrap().value(row)
        };
    }
    match ty {
        SluiceType::Id | SluiceType::Text => json!(get!(StringArray)),
        SluiceType::Boolean => json!(get!(BooleanArray)),
        SluiceType::Int => json!(get!(Int32Array)),
        SluiceType::Long => json!(get!(Int64Array)),
        SluiceType::Decimal { scale, .. } => json!(get!(Decimal128Array) as f64 / 10f64.powi(i32::from(scale))),
        SluiceType::Double => json!(get!(Float64Array)),
        SluiceType::Date => {
            json!(
                chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
                    .unwrap()
                    .checked_add_signed(chrono::TimeDelta::days(i64::from(get!(Date32Array))))
                    .unwrap()
                    .to_string()
            )
        }
        SluiceType::Timestamp => json!(
            chrono::DateTime::from_timestamp_millis(get!(TimestampMillisecondArray))
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
                .to_string()
        ),
        SluiceType::Time => {
            let ms = get!(Time32MillisecondArray);
            json!(format!("{:02}:{:02}:{:02}.{:03}Z", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000))
        }
        SluiceType::Binary => json!(get!(BinaryArray).len()),
    }
}

fn same(got: &Json, want: &Json, ty: SluiceType) -> bool {
    match (got, want, ty) {
        (Json::Null, Json::String(s), _) if s.is_empty() => true,
        (Json::Number(g), Json::Number(w), SluiceType::Decimal { scale, .. }) => {
            let (g, w) = (g.as_f64().unwrap(), w.as_f64().unwrap());
            let unit = 10f64.powi(-i32::from(scale));
            (g - w).abs() <= unit / 2.0 + w.abs() * 1e-12
        }
        (Json::Number(g), Json::Number(w), _) => g.as_f64() == w.as_f64(),
        _ => got == want,
    }
}

/// Asserts the batch holds exactly the truth rows whose cursor lies in `window` (all
/// rows when `None`), value by value.
fn assert_matches_truth(
    schema: &TableSchema,
    batch: &RecordBatch,
    truth: &[Map<String, Json>],
    window: Option<Window>,
) {
    let modstamp = |r: &Map<String, Json>| {
        let s = r[schema.cursor.field().unwrap()].as_str().unwrap();
        chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.3f%z").unwrap().with_timezone(&chrono::Utc)
    };
    let want: BTreeMap<&str, &Map<String, Json>> = truth
        .iter()
        .filter(|r| window.is_none_or(|w| w.contains(modstamp(r))))
        .map(|r| (r["Id"].as_str().unwrap(), r))
        .collect();
    let id_col = schema.columns.iter().position(|c| c.source_name == "Id").unwrap();
    let ids: BTreeSet<String> =
        (0..batch.num_rows()).map(|i| cell(batch, id_col, i, SluiceType::Id).as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), batch.num_rows(), "{}: duplicate ids", schema.object);
    let want_ids: BTreeSet<String> = want.keys().map(|s| s.to_string()).collect();
    assert_eq!(ids, want_ids, "{}: ids differ from the truth", schema.object);
    for row in 0..batch.num_rows() {
        let id = cell(batch, id_col, row, SluiceType::Id);
        let truth_row = want[id.as_str().unwrap()];
        for (c, col) in schema.columns.iter().enumerate() {
            let got = cell(batch, c, row, col.ty);
            let expected = truth_row.get(&col.source_name).unwrap_or(&Json::Null);
            if col.ty == SluiceType::Binary {
                assert_eq!(got.is_null(), expected.is_null(), "{}.{} of {id}", schema.object, col.source_name);
                continue;
            }
            assert!(
                same(&got, expected, col.ty),
                "{}.{} of {id}: got {got}, truth {expected}",
                schema.object,
                col.source_name
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_and_bulk_give_identical_batches_that_match_the_truth() {
    let sb = start(Knobs::default()).await;
    delete_some(&sb).await;
    let src = connect(&sb, fast()).await;
    let objects = src.discover().await.unwrap();
    for object in OBJECTS {
        assert!(objects.iter().any(|o| o.name == object && o.is_replicable()), "{object} in describeGlobal");
        let described = describe(&src, object).await;
        let schema = &described.schema;
        let rest = src.extract_all(&described, None, None, Api::Rest).await.unwrap();
        let bulk = src.extract_all(&described, None, None, Api::Bulk).await.unwrap();
        assert!(rest.len() > 1 || object == "User" || object == "Lead" || object == "Case", "{object}: REST pages");
        let (rest, bulk) = (sorted(schema, &rest), sorted(schema, &bulk));
        assert_eq!(rest, bulk, "{object}: REST and Bulk batches differ");
        let truth = truth(&sb, object).await;
        assert_matches_truth(schema, &rest, &truth, None);
        if let Some(flag) = &schema.deleted_flag {
            let deleted = truth.iter().filter(|r| r[flag] == json!(true)).count();
            assert!(deleted >= 5, "{object}: {deleted} deleted rows in the truth");
        }
    }
    let stats = src.stats();
    assert_eq!(stats.bulk_jobs, OBJECTS.len() as u64);
    assert_eq!(stats.bulk_failures, 0);
    assert!(src.client().api_usage().is_some_and(|(used, max)| used > 0 && max > used));
    assert!(src.client().source_now().is_some());
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_picks_bulk_above_the_threshold_and_rest_below() {
    let sb = start(Knobs::default()).await;
    let src = connect(&sb, Options { bulk_threshold: 200, ..fast() }).await;
    let big = describe(&src, "Account").await;
    let small = describe(&src, "Lead").await;
    let a = src.extract_all(&big, None, None, Api::Auto).await.unwrap();
    assert_eq!(src.stats().bulk_jobs, 1);
    let l = src.extract_all(&small, None, None, Api::Auto).await.unwrap();
    assert_eq!(src.stats().bulk_jobs, 1);
    assert_eq!(src.stats().rest_windows, 1);
    assert_matches_truth(&big.schema, &sorted(&big.schema, &a), &truth(&sb, "Account").await, None);
    assert_matches_truth(&small.schema, &sorted(&small.schema, &l), &truth(&sb, "Lead").await, None);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_extracts_exactly_its_rows() {
    let sb = start(Knobs::default()).await;
    delete_some(&sb).await;
    let src = connect(&sb, fast()).await;
    for object in ["Account", "Invoice__c"] {
        let described = describe(&src, object).await;
        let truth = truth(&sb, object).await;
        let mut stamps: Vec<chrono::DateTime<chrono::Utc>> = truth
            .iter()
            .map(|r| {
                let s = r["SystemModstamp"].as_str().unwrap();
                chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.3f%z").unwrap().to_utc()
            })
            .collect();
        stamps.sort();
        let window = Window { start: Some(stamps[stamps.len() / 4]), end: stamps[stamps.len() * 3 / 4] };
        for api in [Api::Rest, Api::Bulk] {
            let batches = src.extract_all(&described, Some(window), None, api).await.unwrap();
            let batch = sorted(&described.schema, &batches);
            assert!(batch.num_rows() > 50, "{object}: {} rows", batch.num_rows());
            assert_matches_truth(&described.schema, &batch, &truth, Some(window));
            let count = src.count(&described.schema, Some(window), None).await.unwrap();
            assert_eq!(count, batch.num_rows() as u64, "{object}: COUNT() of the window");
        }
        // A full window up to `end` holds everything older.
        let upto = Window { start: None, end: window.end };
        let batch = sorted(&described.schema, &src.extract_all(&described, Some(upto), None, Api::Rest).await.unwrap());
        assert_matches_truth(&described.schema, &batch, &truth, Some(upto));
    }
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_field_lists_are_split_and_stitched_by_id() {
    let sb = start(Knobs::default()).await;
    let src = connect(&sb, fast()).await;
    let split = connect(&sb, Options { max_url_bytes: 900, ..fast() }).await;
    let described = describe(&src, "Invoice__c").await;
    let whole = sorted(&described.schema, &src.extract_all(&described, None, None, Api::Rest).await.unwrap());
    let stitched = sorted(&described.schema, &split.extract_all(&described, None, None, Api::Rest).await.unwrap());
    assert_eq!(whole, stitched);
    assert!(split.client().api_calls() > src.client().api_calls(), "several queries ran");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base64_fields_are_read_through_rest_when_asked_for() {
    let sb = start(Knobs::default()).await;
    let src = connect(&sb, fast()).await;
    let fields = vec!["Id".to_owned(), "Name".to_owned(), "Scan__c".to_owned()];
    let selection = Selection { fields: Some(&fields), ..Selection::default() };
    let described = src.describe("Invoice__c", &selection).await.unwrap();
    assert!(!described.bulk_compatible());
    let batches = src.extract_all(&described, None, None, Api::Bulk).await.unwrap();
    assert_eq!(src.stats().bulk_jobs, 0, "Bulk cannot read base64: REST instead");
    let batch = sorted(&described.schema, &batches);
    let truth = truth(&sb, "Invoice__c").await;
    assert_matches_truth(&described.schema, &batch, &truth, None);
    let scan = described.schema.columns.iter().position(|c| c.source_name == "Scan__c").unwrap();
    assert!(batch.column(scan).null_count() < batch.num_rows(), "some scans are present");
    sb.shutdown().await;
}

/// Reads `object` through `api`, expiring every session after the first batch.
async fn extract_expiring(sb: &Running, src: &SalesforceSource, object: &str, api: Api) -> RecordBatch {
    let described = describe(src, object).await;
    let mut stream = src.extract(&described, None, None, api);
    let mut batches = vec![stream.next().await.unwrap().unwrap()];
    admin(sb, reqwest::Method::POST, "/sandbox/v1/sessions/expire", None).await;
    while let Some(b) = stream.next().await {
        batches.push(b.unwrap());
    }
    let batch = sorted(&described.schema, &batches);
    assert_matches_truth(&described.schema, &batch, &truth(sb, object).await, None);
    batch
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_mid_run_still_gives_complete_data() {
    let counts = vec![("Account".to_owned(), 1500)];
    let sb = start_with(SandboxConfig { seed: 3, counts, ..SandboxConfig::default() }).await;
    let src = connect(&sb, fast()).await;
    extract_expiring(&sb, &src, "Account", Api::Rest).await;
    assert!(src.client().relogins() >= 1, "logged in again");
    let before = src.client().relogins();
    extract_expiring(&sb, &src, "Account", Api::Bulk).await;
    assert!(src.client().relogins() > before, "logged in again during Bulk paging");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_server_errors_still_give_complete_data() {
    let knobs = Knobs { error_rate: 0.1, ..Knobs::default() };
    let sb = start(knobs).await;
    let src = connect(&sb, fast()).await;
    for object in ["Account", "Contact", "Invoice__c"] {
        let described = describe(&src, object).await;
        let truth = truth(&sb, object).await;
        for api in [Api::Rest, Api::Bulk] {
            let batch = sorted(&described.schema, &src.extract_all(&described, None, None, api).await.unwrap());
            assert_matches_truth(&described.schema, &batch, &truth, None);
        }
    }
    assert!(src.client().retries() > 0, "some calls were retried");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_bulk_job_is_retried_on_smaller_windows_then_rest() {
    let mut knobs = Knobs::default();
    knobs.bulk.fail_above_rows = Some(120);
    let sb = start(knobs).await;
    delete_some(&sb).await;
    // Halving: the full window fails, its halves or quarters succeed.
    let src = connect(&sb, fast()).await;
    let described = describe(&src, "Account").await;
    let truth = truth(&sb, "Account").await;
    let batch = sorted(&described.schema, &src.extract_all(&described, None, None, Api::Bulk).await.unwrap());
    assert_matches_truth(&described.schema, &batch, &truth, None);
    let stats = src.stats();
    assert!(stats.bulk_failures >= 1 && stats.window_splits >= 1 && stats.bulk_jobs >= 2, "{stats:?}");
    // No halving allowed: straight to REST.
    let src = connect(&sb, Options { max_split_depth: 0, ..fast() }).await;
    let batch = sorted(&described.schema, &src.extract_all(&described, None, None, Api::Bulk).await.unwrap());
    assert_matches_truth(&described.schema, &batch, &truth, None);
    let stats = src.stats();
    assert_eq!((stats.bulk_failures, stats.rest_fallbacks, stats.bulk_jobs), (1, 1, 0), "{stats:?}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_api_limit_gives_the_quota_error() {
    let knobs = Knobs { daily_api_limit: 2, ..Knobs::default() };
    let sb = start(knobs).await;
    let src = connect(&sb, fast()).await;
    let described = describe(&src, "Account").await;
    let err = src.extract_all(&described, None, None, Api::Rest).await.unwrap_err();
    assert!(err.is_quota(), "{err:?}");
    assert_eq!(err.kind, Kind::External);
    assert!(err.message.contains("REQUEST_LIMIT_EXCEEDED"), "{}", err.message);
    // The budget check stops at the flow boundary before any call.
    let calls = src.client().api_calls();
    let err = src.extract_all(&described, None, None, Api::Rest).await.unwrap_err();
    assert!(err.is_quota() && src.client().api_calls() == calls, "{err:?}");
    sb.shutdown().await;
}

fn assert_no_secret(err: &Error) {
    let text = format!("{err} {err:?}");
    for secret in [DEFAULT_PASSWORD, DEFAULT_CLIENT_SECRET, "wrong-password"] {
        assert!(!text.contains(secret), "secret in error: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_errors_are_clear_and_hold_no_secret() {
    let sb = start(Knobs::default()).await;
    // Bad password.
    let mut cfg = password(&sb.login_url);
    if let Auth::Password { password, .. } = &mut cfg.auth {
        *password = Secret::new("wrong-password");
    }
    let err = SalesforceSource::connect_with(&cfg, fast()).await.unwrap_err();
    assert_eq!(err.kind, Kind::User, "{err}");
    assert!(err.message.contains("invalid_grant"), "{}", err.message);
    assert_no_secret(&err);
    // Bad client secret.
    let mut cfg = password(&sb.login_url);
    if let Auth::Password { client_secret, .. } = &mut cfg.auth {
        *client_secret = Secret::new("wrong-password");
    }
    let err = SalesforceSource::connect_with(&cfg, fast()).await.unwrap_err();
    assert_eq!(err.kind, Kind::User, "{err}");
    assert_no_secret(&err);
    // Unknown object.
    let src = connect(&sb, fast()).await;
    let err = src.describe("Nope__c", &Selection::default()).await.unwrap_err();
    assert_eq!(err.kind, Kind::User);
    assert!(err.message.contains("Nope__c"), "{}", err.message);
    // Unknown field in a flow's selection.
    let fields = vec!["Nmae".to_owned()];
    let err = src.describe("Account", &Selection { fields: Some(&fields), ..Selection::default() }).await.unwrap_err();
    assert!(err.kind == Kind::User && err.message.contains("Nmae"), "{}", err.message);
    sb.shutdown().await;
    // Unreachable host: a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let err = SalesforceSource::connect_with(&password(&format!("http://127.0.0.1:{port}")), fast()).await.unwrap_err();
    assert_eq!(err.kind, Kind::User, "{err}");
    assert!(err.message.contains("unreachable host 127.0.0.1"), "{}", err.message);
    assert_no_secret(&err);
    let err = SalesforceSource::connect_with(&password("http://no-such-host.invalid"), fast()).await.unwrap_err();
    assert_eq!(err.kind, Kind::User, "{err}");
    assert!(err.message.contains("no-such-host.invalid"), "{}", err.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_auth_mode_logs_in() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["jwt.sluice.test".to_owned()]).unwrap().self_signed(&key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("jwt.key");
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let mut cfg = SandboxConfig { seed: 5, counts: counts(), ..SandboxConfig::default() };
    cfg.creds.jwt_cert_pem = Some(cert.pem());
    let sb = start_with(cfg).await;
    let refresh = admin(&sb, reqwest::Method::POST, "/sandbox/v1/refresh-tokens", None).await;
    let refresh: Json = serde_json::from_str(&refresh).unwrap();
    let base = password(&sb.login_url);
    let modes = [
        base.auth.clone(),
        Auth::ClientCredentials {
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret: Secret::new(DEFAULT_CLIENT_SECRET),
        },
        Auth::RefreshToken {
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret: Some(Secret::new(DEFAULT_CLIENT_SECRET)),
            refresh_token: Secret::new(refresh["refresh_token"].as_str().unwrap()),
        },
        Auth::Jwt {
            client_id: DEFAULT_CLIENT_ID.into(),
            username: DEFAULT_USERNAME.into(),
            private_key_file: key_file.clone(),
        },
    ];
    for auth in modes {
        let name = format!("{auth:?}");
        let cfg = SalesforceConfig { auth, ..base.clone() };
        let src = SalesforceSource::connect_with(&cfg, fast()).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        let described = describe(&src, "User").await;
        let batches = src.extract_all(&described, None, None, Api::Rest).await.unwrap();
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 12, "{name}");
        // A session that expires is replaced with the same grant.
        admin(&sb, reqwest::Method::POST, "/sandbox/v1/sessions/expire", None).await;
        assert!(src.discover().await.is_ok(), "{name}: re-login");
        assert_eq!(src.client().relogins(), 1, "{name}");
    }
    // A JWT signed with another key is refused as a user error.
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let other_file = dir.path().join("other.key");
    std::fs::write(&other_file, other.serialize_pem()).unwrap();
    let auth = Auth::Jwt {
        client_id: DEFAULT_CLIENT_ID.into(),
        username: DEFAULT_USERNAME.into(),
        private_key_file: other_file,
    };
    let err = SalesforceSource::connect_with(&SalesforceConfig { auth, ..base.clone() }, fast()).await.unwrap_err();
    assert_eq!(err.kind, Kind::User, "{err}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_private_ca_needs_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let cfg = SandboxConfig { seed: 9, counts: counts(), tls_ca_file: Some(ca.clone()), ..SandboxConfig::default() };
    let sb = start_with(cfg).await;
    assert!(sb.login_url.starts_with("https://"), "{}", sb.login_url);
    let err = SalesforceSource::connect_with(&password(&sb.login_url), fast()).await.unwrap_err();
    assert_eq!(err.kind, Kind::User, "{err}");
    assert!(err.message.contains("source.ca_file"), "{}", err.message);
    let trusted = SalesforceConfig { ca_file: Some(ca), ..password(&sb.login_url) };
    let src = SalesforceSource::connect_with(&trusted, fast()).await.unwrap();
    let described = describe(&src, "Lead").await;
    let batch = sorted(&described.schema, &src.extract_all(&described, None, None, Api::Bulk).await.unwrap());
    assert_matches_truth(
        &described.schema,
        &batch,
        &truth_over(&sb, "Lead", Some(dir.path().join("ca.pem"))).await,
        None,
    );
    let missing = SalesforceConfig { ca_file: Some(dir.path().join("nope.pem")), ..password(&sb.login_url) };
    let err = SalesforceSource::connect_with(&missing, fast()).await.unwrap_err();
    assert!(err.kind == Kind::User && err.message.contains("nope.pem"), "{err}");
    sb.shutdown().await;
}

/// The Bulk jobs the org still holds.
async fn jobs(src: &SalesforceSource) -> Vec<Json> {
    let client = src.client();
    let req = sluice::source::salesforce::client::Request::get(client.data_path("/jobs/query"));
    let list: Json = client.send(&req).await.unwrap().json("job list").unwrap();
    list["records"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_jobs_are_deleted_when_done_failed_or_dropped() {
    let mut knobs = Knobs::default();
    knobs.bulk.fail_above_rows = Some(280);
    let sb = start(knobs).await;
    let src = connect(&sb, fast()).await;
    // Completed (Lead) and failed-then-halved (Contact) jobs are gone afterwards.
    for object in ["Lead", "Contact"] {
        let described = describe(&src, object).await;
        src.extract_all(&described, None, None, Api::Bulk).await.unwrap();
    }
    assert!(src.stats().bulk_failures >= 1, "{:?}", src.stats());
    assert_eq!(jobs(&src).await, Vec::<Json>::new());
    // A reader that stops after the first batch leaves no job behind either.
    let described = describe(&src, "Account").await;
    let mut stream = src.extract(&described, None, None, Api::Bulk);
    assert!(stream.next().await.unwrap().unwrap().num_rows() > 0);
    drop(stream);
    let mut left = jobs(&src).await;
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        left = jobs(&src).await;
    }
    assert_eq!(left, Vec::<Json>::new());
    sb.shutdown().await;
}

// Hostile and broken servers (the fake in `crates/fake-salesforce`): sluice must fail safely,
// never take a partial read for a complete one, and never send its token elsewhere.

/// Password login to a fake server, no API budget.
fn fake_login(login_url: &str) -> SalesforceConfig {
    SalesforceConfig { login_url: login_url.to_owned(), ..password(login_url) }
}

async fn fake(script: fake_salesforce::Script) -> fake_salesforce::Running {
    fake_salesforce::start(script).await.expect("the fake starts")
}

async fn fake_extract(fake: &fake_salesforce::Running, opts: Options, api: Api) -> sluice::Result<u64> {
    let src = SalesforceSource::connect_with(&fake_login(&fake.login_url()), opts).await?;
    let described = src.describe("Widget__c", &Selection::default()).await?;
    let batches = src.extract_all(&described, None, None, api).await?;
    Ok(batches.iter().map(|b| b.num_rows() as u64).sum())
}

/// A value that once panicked the decoder (a multibyte character where a datetime's ASCII
/// was expected) is an error naming the object, the field and the record, on every read
/// path: REST pages decoded aside, split field lists stitched inline, and Bulk CSV.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_value_is_an_error_naming_object_field_and_id() {
    let mut script = fake_salesforce::Script::default();
    script.records[3].insert("SystemModstamp".into(), json!("2024-01-04T00:00:00.00\u{e9}+0000"));
    let bad = script.records[3]["Id"].as_str().unwrap().to_owned();
    let f = fake(script).await;
    let stitched = Options { max_url_bytes: 115, ..fast() };
    for (case, (opts, api)) in [(fast(), Api::Rest), (stitched, Api::Rest), (fast(), Api::Bulk)].into_iter().enumerate()
    {
        let queries = || f.requests().iter().filter(|r| r.path_and_query.contains("/queryAll?")).count();
        let before = queries();
        let err = fake_extract(&f, opts, api).await.unwrap_err();
        if case == 1 {
            assert!(queries() - before >= 2, "the field list was split into several queries");
        }
        assert!(
            err.message.contains(&format!("Widget__c.SystemModstamp of record {bad}"))
                && err.message.contains("datetime"),
            "{api:?}: {}",
            err.message
        );
        assert!(!err.is_retryable(), "{api:?}: reading it again cannot help");
    }
    f.shutdown().await;
}

/// A listing cut short (REST pages that stop before `totalSize`, a Bulk result shorter than
/// the rows its job processed, a job that does not say) never passes for the whole window:
/// Bulk falls back to REST, which is checked too; when every path is short the read fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_reads_are_caught_before_they_can_feed_deletes() {
    use fake_salesforce::{Misbehave, Script};
    let rest_short = Misbehave { truncate_rest_after: Some(3), ..Misbehave::default() };
    let f = fake(Script { misbehave: rest_short.clone(), ..Script::default() }).await;
    let err = fake_extract(&f, fast(), Api::Rest).await.unwrap_err();
    assert!(err.message.contains("held 3 rows but its totalSize is 5"), "{}", err.message);
    f.shutdown().await;

    for bulk in [
        Misbehave { truncate_bulk_after: Some(2), ..Misbehave::default() },
        Misbehave { bulk_omit_processed: true, ..Misbehave::default() },
    ] {
        let f = fake(Script { misbehave: bulk.clone(), ..Script::default() }).await;
        let src = SalesforceSource::connect_with(&fake_login(&f.login_url()), fast()).await.unwrap();
        let described = src.describe("Widget__c", &Selection::default()).await.unwrap();
        let end = src.source_now().unwrap();
        let window = Window { start: Some(end - chrono::TimeDelta::days(4000)), end };
        let rows: usize = src
            .extract_all(&described, Some(window), None, Api::Bulk)
            .await
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum();
        // Each failed job may have handed over rows before its count was checked (staging
        // keeps duplicates); the eight smallest windows are then read through REST whole.
        assert!(rows >= 5 * 8, "{rows} rows: {bulk:?}");
        let stats = src.stats();
        assert!(stats.bulk_failures > 0 && stats.rest_fallbacks > 0, "{stats:?}");
        f.shutdown().await;
        let both = Misbehave { truncate_rest_after: Some(1), ..bulk };
        let f = fake(Script { misbehave: both, ..Script::default() }).await;
        assert!(fake_extract(&f, fast(), Api::Bulk).await.is_err());
        f.shutdown().await;
    }
}

/// The access token goes only to the instance: a `nextRecordsUrl` naming another host is
/// refused before any request is sent there, and a login answering with a plain-http,
/// non-loopback instance is refused before the token is used at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_never_leaves_the_instance() {
    use fake_salesforce::{Misbehave, Script};
    let evil = fake_salesforce::start_recorder().await.unwrap();
    let misbehave = Misbehave { foreign_next_url: Some(evil.base_url.clone()), ..Misbehave::default() };
    let f = fake(Script { misbehave, ..Script::default() }).await;
    let err = fake_extract(&f, fast(), Api::Rest).await.unwrap_err();
    assert!(err.message.contains("sends the access token only to the instance"), "{}", err.message);
    assert!(!err.is_retryable());
    assert!(evil.requests().is_empty(), "{:?}", evil.requests());
    f.shutdown().await;

    let misbehave = Misbehave { instance_url: Some("http://acme.example.com".into()), ..Misbehave::default() };
    let f = fake(Script { misbehave, ..Script::default() }).await;
    let err = fake_extract(&f, fast(), Api::Rest).await.unwrap_err();
    assert!(err.message.contains("only over https"), "{}", err.message);
    let after_login: Vec<_> = f.requests().into_iter().filter(|r| !r.path_and_query.contains("oauth2")).collect();
    assert!(after_login.is_empty(), "{after_login:?}");
    f.shutdown().await;
    evil.shutdown().await;
}

/// A whole sync against a server whose listing is cut short fails the flow and commits
/// nothing: no table, no window end, and the next run reads the whole window again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_read_fails_the_flow_and_commits_nothing() {
    use fake_salesforce::{Misbehave, Script};
    let misbehave = Misbehave { truncate_rest_after: Some(3), ..Misbehave::default() };
    let f = fake(Script { misbehave, ..Script::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.duckdb");
    let text = format!(
        "{}api = \"rest\"\n[destination]\ntype = \"duckdb\"\npath = \"{}\"\n[defaults]\nreconcile_every = \"never\"\n\n[[flows]]\nobject = \"Widget__c\"\n",
        common::source_toml(&f.login_url(), ""),
        db.display()
    );
    let config = sluice::load_config(&text, "test.toml", &|_| None).expect("valid config");
    let opts = sluice::pipeline::SyncOptions { source: fast(), ..Default::default() };
    let summary = sluice::pipeline::sync(&config, &opts, &sluice::pipeline::Quiet).await.expect("the run starts");
    assert_eq!(summary.flows[0].status, sluice::pipeline::FlowStatus::Failed, "{:#?}", summary.flows[0]);
    use sluice::destination::Destination;
    let dest = sluice::destination::duckdb::DuckDb::open_read_only(&db).unwrap();
    let tables = dest
        .query("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'salesforce' AND table_name = 'widget__c'".into())
        .await
        .unwrap();
    assert_eq!(tables[0][0].as_i64(), Some(0), "no table");
    let ends = dest.query("SELECT COUNT(*) FROM _sluice.flows".into()).await.unwrap();
    assert_eq!(ends[0][0].as_i64(), Some(0), "no window end");
    f.shutdown().await;
}

/// A server that stops answering holds a run only for a bounded time: a hung login and a
/// hung query fail after the read time-out (and their few retries); a Bulk job that stays
/// `InProgress` is given up when the window's Bulk time runs out, and the window is read
/// through REST instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_holds_a_run_for_a_bounded_time() {
    use fake_salesforce::{Endpoint, Misbehave, Script};
    use std::time::Instant;
    let quick = |url: &str| SalesforceConfig {
        read_timeout: Duration::from_millis(300),
        bulk_timeout: Duration::from_secs(1),
        ..fake_login(url)
    };

    let f = fake(Script {
        misbehave: Misbehave { hang: vec![Endpoint::Login], ..Misbehave::default() },
        ..Script::default()
    })
    .await;
    let started = Instant::now();
    let err = SalesforceSource::connect_with(&quick(&f.login_url()), fast()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(err.message.contains("timed out"), "{}", err.message);
    f.shutdown().await;

    let f = fake(Script {
        misbehave: Misbehave { hang: vec![Endpoint::Query], ..Misbehave::default() },
        ..Script::default()
    })
    .await;
    let src = SalesforceSource::connect_with(&quick(&f.login_url()), fast()).await.unwrap();
    let described = src.describe("Widget__c", &Selection::default()).await.unwrap();
    let started = Instant::now();
    let err = src.extract_all(&described, None, None, Api::Rest).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(err.message.contains("timed out"), "{}", err.message);
    f.shutdown().await;

    let f =
        fake(Script { misbehave: Misbehave { bulk_stuck: true, ..Misbehave::default() }, ..Script::default() }).await;
    let src = SalesforceSource::connect_with(&quick(&f.login_url()), fast()).await.unwrap();
    let described = src.describe("Widget__c", &Selection::default()).await.unwrap();
    let started = Instant::now();
    let batches = src.extract_all(&described, None, None, Api::Bulk).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(6), "{:?}", started.elapsed());
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 5, "read through REST");
    assert!(src.stats().rest_fallbacks >= 1, "{:?}", src.stats());
    f.shutdown().await;
}
