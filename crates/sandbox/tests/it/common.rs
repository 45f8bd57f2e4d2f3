//! Shared helpers: an in-process sandbox with a small org, a logged-in HTTP client,
//! the admin API (truth dumps, mutations, clock, knobs) and assertions on the parts
//! of a response every Salesforce answer shares (content type, limit header, error
//! array shape).

use std::sync::Mutex;

use reqwest::header::HeaderMap;
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use sandbox::generate::Counts;
use sandbox::knobs::Knobs;
use sandbox::server::{self, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_PASSWORD, DEFAULT_USERNAME};
use sandbox::{Running, SandboxConfig};
use serde_json::{Map, Value as Json, json};

/// The API version the tests speak.
pub const V: &str = "v62.0";
/// Salesforce's JSON content type.
pub const JSON_CT: &str = "application/json;charset=UTF-8";

/// The password grant with the sandbox's default credentials.
pub const PASSWORD_GRANT: [(&str, &str); 5] = [
    ("grant_type", "password"),
    ("client_id", DEFAULT_CLIENT_ID),
    ("client_secret", DEFAULT_CLIENT_SECRET),
    ("username", DEFAULT_USERNAME),
    ("password", DEFAULT_PASSWORD),
];

/// A few hundred records per object: enough for several query pages, fast to build.
pub fn small_counts() -> Counts {
    [
        ("Account", 300),
        ("Contact", 400),
        ("Opportunity", 250),
        ("Lead", 120),
        ("Case", 150),
        ("User", 12),
        ("Invoice__c", 300),
    ]
    .into_iter()
    .map(|(o, n)| (o.to_string(), n))
    .collect()
}

/// A config with the small counts, seed 7 and default knobs.
pub fn config() -> SandboxConfig {
    SandboxConfig { port: 0, seed: 7, counts: small_counts(), ..SandboxConfig::default() }
}

/// A running sandbox and a client logged in to it.
pub struct Sandbox {
    /// The server.
    pub running: Running,
    /// A plain HTTP client (gzip off unless asked for per request).
    pub http: Client,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    token: Mutex<String>,
}

impl Sandbox {
    /// A sandbox with the default test config.
    pub async fn start() -> Self {
        Self::with(config()).await
    }

    /// A sandbox with the given knobs.
    pub async fn with_knobs(knobs: Knobs) -> Self {
        Self::with(SandboxConfig { knobs, ..config() }).await
    }

    /// A sandbox with a config, logged in with the password grant.
    pub async fn with(cfg: SandboxConfig) -> Self {
        let running = server::start(cfg).await.expect("sandbox starts");
        let base = running.instance_url.clone();
        let http = Client::builder().no_gzip().build().unwrap();
        let sb = Sandbox { running, http, base, token: Mutex::new(String::new()) };
        let token = sb.login().await;
        sb.set_token(&token);
        sb
    }

    /// The current access token.
    pub fn token(&self) -> String {
        self.token.lock().unwrap().clone()
    }

    /// Replaces the access token used by the helpers.
    pub fn set_token(&self, token: &str) {
        *self.token.lock().unwrap() = token.to_string();
    }

    /// An absolute URL for a server path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An absolute URL under `/services/data/v62.0`.
    pub fn data(&self, path: &str) -> String {
        format!("{}/services/data/{V}{path}", self.base)
    }

    /// A password grant; returns the access token.
    pub async fn login(&self) -> String {
        let resp = self.http.post(self.url("/services/oauth2/token")).form(&PASSWORD_GRANT).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Json = resp.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }

    /// An authenticated request to a full URL.
    pub fn req(&self, method: Method, url: &str) -> RequestBuilder {
        self.http.request(method, url).bearer_auth(self.token())
    }

    /// Authenticated GET of a path under `/services/data/v62.0`.
    pub async fn get(&self, path: &str) -> Response {
        self.req(Method::GET, &self.data(path)).send().await.unwrap()
    }

    /// Authenticated GET returning status, headers and JSON body.
    pub async fn get_json(&self, path: &str) -> (StatusCode, HeaderMap, Json) {
        read_json(self.get(path).await).await
    }

    /// `GET /query` (or `/queryAll`) with properly encoded SOQL.
    pub async fn soql(&self, resource: &str, q: &str, batch: Option<u32>) -> (StatusCode, HeaderMap, Json) {
        self.soql_at(V, resource, q, batch).await
    }

    /// `GET /services/data/{version}/{resource}?q=…`.
    pub async fn soql_at(
        &self,
        version: &str,
        resource: &str,
        q: &str,
        batch: Option<u32>,
    ) -> (StatusCode, HeaderMap, Json) {
        let url = format!("{}/services/data/{version}/{resource}", self.base);
        let mut r = self.req(Method::GET, &url).query(&[("q", q)]);
        if let Some(n) = batch {
            r = r.header("Sforce-Query-Options", format!("batchSize={n}"));
        }
        read_json(r.send().await.unwrap()).await
    }

    /// A query that must succeed; returns the first page.
    pub async fn query(&self, q: &str) -> Json {
        let (status, headers, body) = self.soql("query", q, None).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        assert_json_ok(&headers);
        body
    }

    /// Every record of a query or queryAll, following `nextRecordsUrl`, with checks that
    /// hold on every page.
    pub async fn query_pages(&self, resource: &str, q: &str, batch: Option<u32>) -> (Vec<Json>, Vec<Json>) {
        self.query_pages_at(V, resource, q, batch).await
    }

    /// [`Sandbox::query_pages`] at an API version.
    pub async fn query_pages_at(
        &self,
        version: &str,
        resource: &str,
        q: &str,
        batch: Option<u32>,
    ) -> (Vec<Json>, Vec<Json>) {
        let (status, _, first) = self.soql_at(version, resource, q, batch).await;
        assert_eq!(status, StatusCode::OK, "{q}: {first}");
        let total = first["totalSize"].as_u64().unwrap();
        let mut pages = vec![first];
        loop {
            let page = pages.last().unwrap();
            assert_eq!(page["totalSize"].as_u64(), Some(total), "totalSize differs between pages");
            let done = page["done"].as_bool().unwrap();
            let Some(next) = page.get("nextRecordsUrl") else {
                assert!(done, "no nextRecordsUrl but done=false");
                break;
            };
            assert!(!done, "nextRecordsUrl present on the last page");
            let url = self.url(next.as_str().unwrap());
            let mut r = self.req(Method::GET, &url);
            if let Some(n) = batch {
                r = r.header("Sforce-Query-Options", format!("batchSize={n}"));
            }
            let (status, headers, body) = read_json(r.send().await.unwrap()).await;
            assert_eq!(status, StatusCode::OK, "{url}: {body}");
            assert_json_ok(&headers);
            pages.push(body);
        }
        let records: Vec<Json> = pages.iter().flat_map(|p| p["records"].as_array().unwrap().iter().cloned()).collect();
        assert_eq!(records.len() as u64, total, "records across pages != totalSize");
        (pages, records)
    }

    /// The admin truth dump of an object: one JSON object per row (purged rows excluded).
    pub async fn truth(&self, object: &str) -> Vec<Map<String, Json>> {
        let resp = self.http.get(self.url(&format!("/sandbox/v1/truth/{object}"))).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let text = resp.text().await.unwrap();
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| match serde_json::from_str(l).unwrap() {
                Json::Object(m) => m,
                other => panic!("truth line is not an object: {other}"),
            })
            .collect()
    }

    /// Applies admin mutations; they must succeed.
    pub async fn mutate(&self, mutations: Json) -> Json {
        let resp = self
            .http
            .post(self.url("/sandbox/v1/mutations"))
            .json(&json!({ "mutations": mutations }))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Json = resp.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// `POST /sandbox/v1/clock`.
    pub async fn clock(&self, body: Json) -> Json {
        let resp = self.http.post(self.url("/sandbox/v1/clock")).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }

    /// Freezes the clock; returns the frozen instant (REST format).
    pub async fn freeze(&self) -> String {
        self.clock(json!({"freeze": true})).await["now"].as_str().unwrap().to_string()
    }

    /// Advances the clock.
    pub async fn advance(&self, secs: f64) -> String {
        self.clock(json!({ "advance_secs": secs })).await["now"].as_str().unwrap().to_string()
    }

    /// Reads, changes and writes back the knobs.
    pub async fn set_knobs(&self, change: impl FnOnce(&mut Knobs)) {
        let resp = self.http.get(self.url("/sandbox/v1/knobs")).send().await.unwrap();
        let mut knobs: Knobs = resp.json().await.unwrap();
        change(&mut knobs);
        let resp = self.http.put(self.url("/sandbox/v1/knobs")).json(&knobs).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{}", resp.text().await.unwrap());
    }
}

/// Status, headers and the JSON body of a response.
pub async fn read_json(resp: Response) -> (StatusCode, HeaderMap, Json) {
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"));
    (status, headers, body)
}

/// The value of a header as text.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

/// Parses `Sforce-Limit-Info: api-usage=N/M`.
pub fn limit_info(headers: &HeaderMap) -> (u64, u64) {
    let v = header(headers, "sforce-limit-info").expect("Sforce-Limit-Info");
    let usage = v.strip_prefix("api-usage=").unwrap_or_else(|| panic!("bad Sforce-Limit-Info {v}"));
    let (used, max) = usage.split_once('/').unwrap();
    (used.parse().unwrap(), max.parse().unwrap())
}

/// A `Date` header in HTTP-date format.
pub fn assert_date(headers: &HeaderMap) {
    let date = header(headers, "date").expect("Date header");
    chrono::DateTime::parse_from_rfc2822(date).unwrap_or_else(|e| panic!("Date {date:?}: {e}"));
}

/// What every successful authenticated REST JSON response carries.
pub fn assert_json_ok(headers: &HeaderMap) {
    assert_eq!(header(headers, "content-type"), Some(JSON_CT));
    let (used, max) = limit_info(headers);
    assert!(used >= 1 && used <= max, "api-usage={used}/{max}");
    assert_date(headers);
}

/// Checks a REST error array of exactly one error: `[{"message","errorCode"}]`, keys in
/// that order, with the JSON content type. Returns the message.
pub fn assert_error(status: StatusCode, headers: &HeaderMap, body: &Json, want: StatusCode, code: &str) -> String {
    assert_eq!(status, want, "{body}");
    assert_eq!(header(headers, "content-type"), Some(JSON_CT));
    let errors = body.as_array().unwrap_or_else(|| panic!("error body is not an array: {body}"));
    assert_eq!(errors.len(), 1, "{body}");
    let keys: Vec<&str> = errors[0].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["message", "errorCode"], "{body}");
    assert_eq!(errors[0]["errorCode"], code, "{body}");
    errors[0]["message"].as_str().unwrap().to_string()
}

/// The keys of a JSON object, in order.
pub fn keys(v: &Json) -> Vec<&str> {
    v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().map(String::as_str).collect()
}

/// A row of a truth dump with the `attributes` of a query record removed.
pub fn strip_attributes(record: &Json) -> Map<String, Json> {
    let mut m = record.as_object().unwrap().clone();
    m.remove("attributes");
    m
}

/// Parses a REST datetime (`2024-06-11T08:30:10.000+0000`) into ms.
pub fn rest_ms(s: &str) -> i64 {
    chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.3f%z")
        .unwrap_or_else(|e| panic!("not a REST datetime {s:?}: {e}"))
        .timestamp_millis()
}

/// Formats ms as a SOQL datetime literal (`2024-06-11T08:30:10Z`).
pub fn soql_datetime(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}
