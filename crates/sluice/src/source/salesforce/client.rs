//! The HTTP client every Salesforce call goes through.
//!
//! [`Client::send`] is the one place a request leaves sluice. It:
//!
//! - logs in on first use ([`super::auth::login`]) and adds the bearer token;
//! - classifies every response with [`classify()`] (one classifier for the whole source);
//! - on `401 INVALID_SESSION_ID` logs in again once and repeats the request (concurrent
//!   requests that hit the same expired token share one re-login);
//! - retries retryable failures (5xx, 429, time-outs, resets, truncated bodies, a short
//!   `Retry-After`) with bounded exponential backoff and jitter (`backon`), and never a
//!   quota stop (`REQUEST_LIMIT_EXCEEDED`), which surfaces as [`Error::is_quota`];
//! - records `Sforce-Limit-Info` (API usage) and the `Date` header (the source's clock,
//!   used to plan windows), and counts API calls.
//!
//! Failures that call for a different plan rather than a retry (a smaller window, REST
//! instead of Bulk, a restarted query) come back as a [`CallError`] whose [`Action`]
//! says so. Secrets never appear in errors: tokens travel in headers, and transport
//! errors are described without the request.
//!
//! The file is over 600 lines on purpose: it is the one request path, and splitting the
//! retry, re-login and limit bookkeeping apart would make a second path easy to write.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::BackoffBuilder;
use bytes::Bytes;
use reqwest::Method;

use super::auth::{self, Session};
use super::classify::{Disposition, api_usage, budget_reached, classify, header_pairs, transport_error};
use crate::config::SalesforceConfig;
use crate::error::{Error, QUOTA_RETRY_AFTER, QuotaExceeded, Result, Retry};
use crate::model::Timestamp;

/// How failed requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: usize,
    /// First backoff delay.
    pub min_delay: Duration,
    /// Largest backoff delay.
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured in place; a longer one fails the call.
    pub max_retry_after: Duration,
    /// Per-request time-out (connect + whole response).
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 6,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
            timeout: Duration::from_secs(300),
        }
    }
}

/// Retries of a failed login (transient failures only).
const LOGIN_RETRIES: usize = 2;

/// What the caller should do with a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Give up (the error's `retry` says whether a later run may succeed).
    Fail,
    /// Read the window again as smaller windows.
    SmallerWindow,
    /// Read through REST instead of Bulk.
    UseRest,
    /// The query cursor expired: run the query again from the top.
    RestartQuery,
}

/// A failed call: the error and what to do about it.
#[derive(Debug)]
pub struct CallError {
    /// The error.
    pub error: Error,
    /// The next step.
    pub action: Action,
}

impl From<CallError> for Error {
    fn from(e: CallError) -> Self {
        e.error
    }
}

impl From<Error> for CallError {
    fn from(error: Error) -> Self {
        CallError { error, action: Action::Fail }
    }
}

/// A response that classified as a success.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The whole body (gzip already undone).
    pub body: Bytes,
}

impl Response {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::external(format!("{what}: the response is not the expected JSON ({e})")))
    }
}

/// One request, described so it can be sent again on retry.
#[derive(Debug, Clone)]
pub struct Request {
    /// HTTP method.
    pub method: Method,
    /// A path on the instance (`/services/data/...`) or an absolute URL.
    pub target: String,
    /// Query parameters.
    pub query: Vec<(String, String)>,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// A JSON body.
    pub json: Option<serde_json::Value>,
}

impl Request {
    /// A GET of `target`.
    pub fn get(target: impl Into<String>) -> Self {
        Self { method: Method::GET, target: target.into(), query: Vec::new(), headers: Vec::new(), json: None }
    }

    /// A request with another method.
    pub fn new(method: Method, target: impl Into<String>) -> Self {
        Self { method, ..Self::get(target) }
    }

    /// Adds a query parameter.
    pub fn query(mut self, key: &str, value: impl Into<String>) -> Self {
        self.query.push((key.to_owned(), value.into()));
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Sets a JSON body.
    pub fn json(mut self, body: serde_json::Value) -> Self {
        self.json = Some(body);
        self
    }
}

/// What the calls made on behalf of one flow cost: every API call (logins excluded) made
/// inside [`metered`], in its tasks and in the reading tasks it starts, is counted here.
#[derive(Debug, Default)]
pub struct Meter {
    calls: AtomicU64,
    bytes: AtomicU64,
}

impl Meter {
    /// API calls so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Response body bytes received so far (as decompressed).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn count(&self, bytes: usize) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

tokio::task_local! {
    static METER: Arc<Meter>;
}

/// Runs `work` with every API call it makes counted in `meter` (see [`Meter`]).
pub async fn metered<F: std::future::Future>(meter: Arc<Meter>, work: F) -> F::Output {
    METER.scope(meter, work).await
}

/// The meter of the calling task, to hand to a task it spawns.
pub fn current_meter() -> Option<Arc<Meter>> {
    METER.try_with(Arc::clone).ok()
}

/// Counters and last-seen values, shared by clones of a [`Client`].
#[derive(Debug, Default)]
struct Observed {
    api_calls: AtomicU64,
    relogins: AtomicU64,
    retries: AtomicU64,
    usage: Mutex<Option<(u64, u64)>>,
    clock: Mutex<Option<Timestamp>>,
}

struct Inner {
    http: reqwest::Client,
    cfg: SalesforceConfig,
    retry: RetryPolicy,
    /// The current session and its generation (bumped by every login).
    session: tokio::sync::Mutex<Option<(u64, Session)>>,
    observed: Observed,
}

/// A logged-in Salesforce API client. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("login_url", &self.inner.cfg.login_url).finish_non_exhaustive()
    }
}

impl Client {
    /// Builds the HTTP client (trusting `ca_file` too); does not log in yet. With
    /// `gzip`, responses are asked for compressed (what a remote org wants; on a
    /// loopback sandbox compression only costs CPU).
    pub fn new(cfg: &SalesforceConfig, retry: RetryPolicy, gzip: bool) -> Result<Self> {
        let mut builder = reqwest::Client::builder()
            // The bearer token goes only where `target_url` allows; a redirect would take the
            // request elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .gzip(gzip)
            // A silent server is noticed within `read_timeout`; `retry.timeout` bounds a whole
            // response that trickles.
            .timeout(retry.timeout)
            .connect_timeout(cfg.connect_timeout)
            .read_timeout(cfg.read_timeout)
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &cfg.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| Error::user(format!("source.ca_file: cannot read {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::user(format!("source.ca_file: {} is not a PEM certificate ({e})", path.display()))
            })?;
            if certs.is_empty() {
                return Err(Error::user(format!("source.ca_file: {} holds no PEM certificate", path.display())));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| Error::internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                cfg: cfg.clone(),
                retry,
                session: tokio::sync::Mutex::new(None),
                observed: Observed::default(),
            }),
        })
    }

    /// `/services/data/vXX.X` + `path`.
    pub fn data_path(&self, path: &str) -> String {
        format!("/services/data/v{}{path}", self.inner.cfg.api_version)
    }

    /// The instance URL of the current session (logs in if needed).
    pub async fn instance_url(&self) -> Result<String> {
        Ok(self.session().await?.1.instance_url)
    }

    /// API calls sent so far (logins excluded).
    pub fn api_calls(&self) -> u64 {
        self.inner.observed.api_calls.load(Ordering::Relaxed)
    }

    /// Re-logins after an expired session so far.
    pub fn relogins(&self) -> u64 {
        self.inner.observed.relogins.load(Ordering::Relaxed)
    }

    /// Retries after transient failures so far.
    pub fn retries(&self) -> u64 {
        self.inner.observed.retries.load(Ordering::Relaxed)
    }

    /// The API calls left before `api_budget_percent` of the daily limit is used, from the
    /// last `Sforce-Limit-Info` (`None` before one was seen).
    pub fn budget_left(&self) -> Option<u64> {
        let percent = u128::from(self.inner.cfg.api_budget_percent);
        self.api_usage().map(|(used, max)| {
            let allowed = (u128::from(max) * percent / 100) as u64;
            allowed.saturating_sub(used)
        })
    }

    /// The org's API calls left in its daily allowance, from the last `Sforce-Limit-Info`.
    pub fn api_remaining(&self) -> Option<u64> {
        self.api_usage().map(|(used, max)| max.saturating_sub(used))
    }

    /// The last `Sforce-Limit-Info` api usage seen: `(used, max)`.
    pub fn api_usage(&self) -> Option<(u64, u64)> {
        *lock(&self.inner.observed.usage)
    }

    /// The source's clock: the `Date` header of the latest response.
    pub fn source_now(&self) -> Option<Timestamp> {
        *lock(&self.inner.observed.clock)
    }

    /// A quota error when usage has passed `api_budget_percent` (checked at flow
    /// boundaries by the caller).
    pub fn check_budget(&self) -> Result<()> {
        let percent = self.inner.cfg.api_budget_percent;
        match self.api_usage() {
            Some((used, max)) if budget_reached(used, max, percent) => Err(Error::quota(
                format!(
                    "the API budget of {percent}% is used up ({used}/{max} requests): stopping, the next run resumes"
                ),
                QuotaExceeded { used: Some(used), max: Some(max) },
                QUOTA_RETRY_AFTER,
            )),
            _ => Ok(()),
        }
    }

    /// Logs in now (if not logged in yet), so bad credentials are reported at once.
    pub async fn login(&self) -> Result<()> {
        self.session().await.map(|_| ())
    }

    async fn session(&self) -> Result<(u64, Session)> {
        let mut guard = self.inner.session.lock().await;
        if let Some(s) = guard.as_ref() {
            return Ok(s.clone());
        }
        let session = self.login_with_retry().await?;
        *guard = Some((1, session.clone()));
        Ok((1, session))
    }

    /// Replaces the session that failed (generation `failed`), unless another request
    /// already did.
    async fn relogin(&self, failed: u64) -> Result<()> {
        let mut guard = self.inner.session.lock().await;
        if guard.as_ref().is_some_and(|(g, _)| *g != failed) {
            return Ok(());
        }
        let session = self.login_with_retry().await?;
        self.inner.observed.relogins.fetch_add(1, Ordering::Relaxed);
        *guard = Some((failed + 1, session));
        Ok(())
    }

    /// `source.api_budget_percent`.
    pub fn budget_percent(&self) -> u8 {
        self.inner.cfg.api_budget_percent
    }

    /// How long all Bulk jobs of one window may take (`source.bulk_timeout`).
    pub fn bulk_timeout(&self) -> Duration {
        self.inner.cfg.bulk_timeout
    }

    async fn login_with_retry(&self) -> Result<Session> {
        // Fewer tries than other calls: a login endpoint that does not answer would
        // otherwise hold the run for (retries + 1) × read_timeout before saying so.
        let mut delays = self.backoff().take(LOGIN_RETRIES);
        loop {
            let session = auth::login(&self.inner.http, &self.inner.cfg).await.and_then(|s| {
                check_instance_url(&self.inner.cfg.login_url, &s.instance_url).map_err(|e| e.context("login"))?;
                Ok(s)
            });
            match session {
                Ok(s) => return Ok(s),
                Err(e) => match self.next_delay(&e, &mut delays) {
                    Some(d) => tokio::time::sleep(d).await,
                    None => return Err(e),
                },
            }
        }
    }

    fn backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        let r = self.inner.retry;
        backon::ExponentialBuilder::default()
            .with_min_delay(r.min_delay)
            .with_max_delay(r.max_delay)
            .with_max_times(r.max_retries)
            .with_jitter()
            .build()
    }

    /// The wait before retrying after `e`, or `None` to give up.
    fn next_delay(&self, e: &Error, delays: &mut impl Iterator<Item = Duration>) -> Option<Duration> {
        let delay = match e.retry {
            Retry::Never => None,
            _ if e.is_quota() => None,
            Retry::Backoff => delays.next(),
            Retry::After(wait) if wait <= self.inner.retry.max_retry_after => delays.next().map(|d| d.max(wait)),
            Retry::After(_) => None,
        };
        if delay.is_some() {
            self.inner.observed.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(error = %e.message, ?delay, "retrying a Salesforce call");
        }
        delay
    }

    /// Sends a request (see the module docs). Only successes come back as `Ok`.
    pub async fn send(&self, req: &Request) -> Result<Response, CallError> {
        let mut delays = self.backoff();
        loop {
            match self.attempt(req).await {
                Ok(resp) => return Ok(resp),
                Err(ce) if ce.action != Action::Fail => return Err(ce),
                Err(ce) => match self.next_delay(&ce.error, &mut delays) {
                    Some(d) => tokio::time::sleep(d).await,
                    None => return Err(ce),
                },
            }
        }
    }

    /// One attempt, with at most one re-login in it.
    async fn attempt(&self, req: &Request) -> Result<Response, CallError> {
        let mut relogged = false;
        loop {
            let (generation, session) = self.session().await?;
            let url = target_url(&session.instance_url, &req.target)?;
            let mut builder =
                self.inner.http.request(req.method.clone(), &url).bearer_auth(session.access_token.expose());
            if !req.query.is_empty() {
                builder = builder.query(&req.query);
            }
            for (name, value) in &req.headers {
                builder = builder.header(*name, value);
            }
            if let Some(body) = &req.json {
                builder = builder.json(body);
            }
            self.inner.observed.api_calls.fetch_add(1, Ordering::Relaxed);
            let resp = builder.send().await.map_err(|e| transport_error(&e, &url))?;
            let status = resp.status().as_u16();
            let headers = header_pairs(resp.headers());
            self.observe(&headers);
            if (300..400).contains(&status) {
                // Redirects are not followed (see `Client::new`): the token must not travel on.
                return Err(Error::external_fatal(format!(
                    "{} answered HTTP {status} (a redirect); sluice does not follow redirects of authenticated \
                     API calls",
                    origin_of(&url)
                ))
                .into());
            }
            let body = resp.bytes().await.map_err(|e| transport_error(&e, &url))?;
            let _ = METER.try_with(|m| m.count(body.len()));
            let disposition = if (200..400).contains(&status) {
                Disposition::Success
            } else {
                classify(status, &headers, &String::from_utf8_lossy(&body))
            };
            let (error, action) = match disposition {
                Disposition::Success => return Ok(Response { status, headers, body }),
                Disposition::Relogin(e) if !relogged => {
                    tracing::debug!(error = %e.message, "session expired: logging in again");
                    self.relogin(generation).await?;
                    relogged = true;
                    continue;
                }
                Disposition::Relogin(e) | Disposition::Fail(e) => (e, Action::Fail),
                Disposition::SmallerWindow(e) => (e, Action::SmallerWindow),
                Disposition::UseRest(e) => (e, Action::UseRest),
                Disposition::RestartQuery(e) => (e, Action::RestartQuery),
            };
            return Err(CallError { error, action });
        }
    }

    fn observe(&self, headers: &[(String, String)]) {
        if let Some(usage) = api_usage(headers) {
            *lock(&self.inner.observed.usage) = Some(usage);
        }
        let date = headers
            .iter()
            .find(|(k, _)| k == "date")
            .and_then(|(_, v)| chrono::DateTime::parse_from_rfc2822(v.trim()).ok())
            .map(|d| d.with_timezone(&chrono::Utc));
        if let Some(date) = date {
            *lock(&self.inner.observed.clock) = Some(date);
        }
    }
}

/// The URL a request for `target` goes to: a path on the instance, or an absolute URL the
/// server named (a `nextRecordsUrl`, a blob URL), which must be on the instance's own origin
/// (scheme, host and port). The bearer token goes with every request, so a hostile or broken
/// server naming another host must not get it sent there.
pub fn target_url(instance_url: &str, target: &str) -> Result<String, CallError> {
    if !(target.starts_with("http://") || target.starts_with("https://") || target.starts_with("//")) {
        let path = if target.starts_with('/') { target.to_owned() } else { format!("/{target}") };
        return Ok(format!("{instance_url}{path}"));
    }
    let origin = |u: &str| reqwest::Url::parse(u).ok().map(|u| u.origin());
    let foreign = match (origin(instance_url), origin(target)) {
        (Some(a), Some(b)) => a != b || !b.is_tuple(),
        _ => true,
    };
    if foreign {
        return Err(Error::external_fatal(format!(
            "the server named {} for the next request, which is not the instance {}: sluice sends the access \
             token only to the instance",
            origin_of(target),
            origin_of(instance_url)
        ))
        .into());
    }
    Ok(target.to_owned())
}

/// `scheme://host[:port]` of a URL, for messages: never its path, query or user-info.
pub fn origin_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) if u.origin().is_tuple() => u.origin().ascii_serialization(),
        _ => "an unparsable URL".to_owned(),
    }
}

/// Checks the `instance_url` a login returned: the access token travels to it with every
/// call, so it must be `https`, except that plain `http` is allowed when the login URL
/// itself is loopback `http` and so is the instance (the sandbox on this machine).
pub fn check_instance_url(login_url: &str, instance_url: &str) -> Result<()> {
    let Ok(url) = reqwest::Url::parse(instance_url) else {
        return Err(Error::external_fatal("the token endpoint returned an instance_url that is not a URL"));
    };
    let local_http = |u: &str| u.starts_with("http://") && is_loopback(u);
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if local_http(login_url) && local_http(instance_url) => Ok(()),
        _ => Err(Error::external_fatal(format!(
            "the token endpoint named the instance {}: sluice sends the access token only over https (plain \
             http only to a loopback sandbox logged in to over loopback http)",
            origin_of(instance_url)
        ))),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether a URL points at this machine (`localhost`, 127.0.0.0/8, `::1`): there
/// compressing responses costs far more CPU than the bytes it saves (Bulk extraction
/// from the sandbox measured ~5x slower with gzip).
pub fn is_loopback(url: &str) -> bool {
    let host = url.split("://").nth(1).unwrap_or(url).split(['/', '?']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod loopback_tests {
    use super::{check_instance_url, is_loopback, target_url};

    #[test]
    fn the_token_goes_only_to_the_instance_origin() {
        let instance = "https://acme.my.salesforce.com";
        let ok = [
            (
                "/services/data/v62.0/query/01g-2000",
                "https://acme.my.salesforce.com/services/data/v62.0/query/01g-2000",
            ),
            ("services/x", "https://acme.my.salesforce.com/services/x"),
            ("https://acme.my.salesforce.com/services/x", "https://acme.my.salesforce.com/services/x"),
            ("https://ACME.my.salesforce.com:443/services/x", "https://ACME.my.salesforce.com:443/services/x"),
        ];
        for (target, want) in ok {
            assert_eq!(target_url(instance, target).unwrap(), want, "{target}");
        }
        for target in [
            "https://evil.example.com/services/data/v62.0/query/01g-2000",
            "http://acme.my.salesforce.com/services/x",
            "https://acme.my.salesforce.com:8443/services/x",
            "https://acme.my.salesforce.com.evil.example.com/x",
            "https://user:pw@evil.example.com/x",
            "//evil.example.com/x",
            "https://",
        ] {
            let err = target_url(instance, target).unwrap_err().error;
            assert_eq!(err.retry, crate::Retry::Never, "{target}");
            assert!(err.message.contains("sends the access token only to the instance"), "{}", err.message);
            assert!(!err.message.contains("pw@"), "{}", err.message);
        }
    }

    #[test]
    fn the_instance_must_be_https_unless_both_ends_are_a_loopback_sandbox() {
        let cases = [
            ("https://login.salesforce.com", "https://acme.my.salesforce.com", true),
            ("https://login.salesforce.com", "http://acme.my.salesforce.com", false),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080", true),
            ("http://localhost:8080", "http://127.0.0.1:9090", true),
            ("http://127.0.0.1:8080", "http://acme.example.com", false),
            ("https://127.0.0.1:8080", "http://127.0.0.1:8080", false),
            ("http://10.0.0.5", "http://10.0.0.5", false),
            ("https://login.salesforce.com", "ftp://acme.example.com", false),
            ("https://login.salesforce.com", "not a url", false),
        ];
        for (login, instance, ok) in cases {
            assert_eq!(check_instance_url(login, instance).is_ok(), ok, "{login} → {instance}");
        }
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for (url, expect) in [
            ("http://127.0.0.1:8080", true),
            ("https://localhost/services", true),
            ("http://[::1]:443/x", true),
            ("http://127.9.0.1", true),
            ("https://login.salesforce.com", false),
            ("https://acme.my.salesforce.com:443/x", false),
            ("http://10.0.0.1:80", false),
        ] {
            assert_eq!(is_loopback(url), expect, "{url}");
        }
    }
}
