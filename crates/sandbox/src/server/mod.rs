//! The HTTP face of the org: state shared by handlers, the router, and start-up over
//! HTTP or HTTPS.
//!
//! ```text
//! /services/oauth2/{token,authorize,revoke,userinfo}   OAuth 2.0           auth.rs
//! /id/{org}/{user}                                     identity            auth.rs
//! /services/data/                                      versions (no auth)  rest.rs
//! /services/data/vXX.X/...                             REST + Bulk 2.0     gate.rs → rest.rs, query.rs, bulk.rs, composite.rs
//! /sandbox/v1/...                                      admin API           admin.rs
//! ```
//!
//! The Pub/Sub API (gRPC) listens on a port of its own ([`crate::pubsub`]).

pub mod admin;
pub mod auth;
pub mod bulk;
pub mod churn;
pub mod composite;
mod cursors;
pub mod error;
pub mod fields;
pub mod gate;
mod jobs;
pub mod query;
pub mod render;
pub mod rest;
mod state;
mod tick;
mod version;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use parking_lot::{Mutex, RwLock};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use state::{ApiUsage, AppState};
pub use version::{VERSIONS, parse_version, version_label};

use crate::clock::Clock;
use crate::knobs::Knobs;
use crate::oauth::{Credentials, OAuthServer, OrgIdentity};
use crate::store::Org;

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Seed of the generated data.
    pub seed: u64,
    /// Records per object.
    pub counts: crate::generate::Counts,
    /// Connected app and user credentials.
    pub creds: Credentials,
    /// Knobs at start.
    pub knobs: Knobs,
    /// Address to bind.
    pub bind: std::net::IpAddr,
    /// Port (0: any free port).
    pub port: u16,
    /// Serve HTTPS with a fresh self-signed CA; its PEM goes to this file.
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// Port of the Pub/Sub API (0: any free port), on the same address.
    pub pubsub_port: u16,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            seed: 42,
            counts: crate::generate::default_counts(),
            creds: Credentials {
                client_id: DEFAULT_CLIENT_ID.into(),
                client_secret: DEFAULT_CLIENT_SECRET.into(),
                username: DEFAULT_USERNAME.into(),
                password: DEFAULT_PASSWORD.into(),
                jwt_cert_pem: None,
            },
            knobs: Knobs::default(),
            bind: std::net::IpAddr::from([127, 0, 0, 1]),
            port: 0,
            tls_ca_file: None,
            pubsub_port: 0,
        }
    }
}

/// Default connected-app consumer key.
pub const DEFAULT_CLIENT_ID: &str = "3MVG9sandbox.sluice.connected.app";
/// Default connected-app consumer secret.
pub const DEFAULT_CLIENT_SECRET: &str = "sandbox-client-secret";
/// Default integration user.
pub const DEFAULT_USERNAME: &str = "integration@sandbox.sluice.dev";
/// Default password (with security token appended, as Salesforce expects).
pub const DEFAULT_PASSWORD: &str = "sandbox-password";

/// The `[source]` lines of a sluice config that log in to the sandbox at `login_url` as the
/// default connected app and user with `password` (the demo's config and the tests' use it;
/// callers append `api` and the like).
pub fn source_toml(login_url: &str, password: &str) -> String {
    format!(
        r#"[source]
type = "salesforce"
login_url = "{login_url}"
auth = "password"
client_id = "{DEFAULT_CLIENT_ID}"
client_secret = "{DEFAULT_CLIENT_SECRET}"
username = "{DEFAULT_USERNAME}"
password = "{password}"
"#
    )
}

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address tried.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// TLS material could not be made or written.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    /// The JWT certificate is not an RSA certificate or public key.
    #[error("cannot use the JWT certificate: {0}")]
    JwtCert(String),
    /// A knob is invalid.
    #[error("invalid knobs: {0}")]
    Knobs(String),
    /// An object named in the record counts does not exist.
    #[error("unknown object `{0}` in --records (objects: Account, Case, Contact, Invoice__c, Lead, Opportunity, User)")]
    UnknownObject(String),
}

/// A running sandbox.
pub struct Running {
    /// Instance URL (API calls).
    pub instance_url: String,
    /// Login URL (OAuth).
    pub login_url: String,
    /// CA certificate file when serving HTTPS.
    pub ca_file: Option<std::path::PathBuf>,
    /// The Pub/Sub API's URL (`https://127.0.0.1:PORT`, `http://` without TLS).
    pub pubsub_url: String,
    /// Shared state, for in-process tests and the demo.
    pub state: Arc<AppState>,
    handle: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    churn: tokio::task::JoinHandle<()>,
    pubsub: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    pubsub_stop: tokio::sync::oneshot::Sender<()>,
}

impl Running {
    /// Stops serving and waits for in-flight requests (up to a few seconds).
    pub async fn shutdown(self) {
        self.churn.abort();
        let _ = self.pubsub_stop.send(());
        self.handle.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
        let _ = self.task.await;
        // A subscription streams until its client leaves: not waited for beyond a moment.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.pubsub).await;
    }
}

/// Builds the router over a state.
pub fn app(state: Arc<AppState>) -> Router {
    let data = rest::routes()
        .merge(query::routes())
        .merge(bulk::routes())
        .merge(composite::routes())
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            error::ApiError::method_not_allowed(method.as_str())
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), gate::gate));
    Router::new()
        .merge(auth::routes())
        .merge(admin::routes())
        .route("/services/data", axum::routing::get(rest::versions))
        .nest("/services/data/{version}", data)
        .fallback(|| async { error::ApiError::not_found() })
        .layer(axum::middleware::from_fn_with_state(state.clone(), org_date))
        .with_state(state)
        .layer(tower_http::compression::CompressionLayer::new().gzip(true))
        .layer(tower_http::decompression::RequestDecompressionLayer::new().gzip(true))
}

/// Stamps `Date` from the org's clock: clients take it as the source's clock (to plan
/// replication windows), so it must move when tests advance or freeze the clock.
async fn org_date(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut resp = next.run(req).await;
    let now = chrono::DateTime::from_timestamp_millis(state.clock.now_ms()).unwrap_or_default();
    if let Ok(v) = axum::http::HeaderValue::from_str(&now.format("%a, %d %b %Y %H:%M:%S GMT").to_string()) {
        resp.headers_mut().insert(axum::http::header::DATE, v);
    }
    resp
}

/// Builds the org and its state without serving (for tests and benchmarks).
pub fn build_state(cfg: &SandboxConfig, base_url: String, pubsub_url: String) -> Result<Arc<AppState>, StartError> {
    cfg.knobs.validate().map_err(|e| StartError::Knobs(e.join("; ")))?;
    let clock = Clock::new();
    let now = clock.now_ms();
    let anchor = now - now.rem_euclid(86_400_000);
    let retention = (cfg.knobs.recycle_bin_days * 86_400_000.0) as i64;
    let mut org = Org::new(crate::schema::objects::all(), retention);
    org.changes.retention_ms = (cfg.knobs.pubsub.retention_hours * 3_600_000.0) as i64;
    let mut counts = Vec::new();
    for (name, n) in &cfg.counts {
        let canonical = org.table(name).ok_or_else(|| StartError::UnknownObject(name.clone()))?.def.name.clone();
        counts.retain(|(o, _): &(String, u64)| *o != canonical);
        counts.push((canonical, *n));
    }
    for (name, n) in crate::generate::default_counts() {
        if !counts.iter().any(|(o, _)| *o == name) {
            counts.push((name, n));
        }
    }
    if let Some((_, users)) = counts.iter_mut().find(|(o, _)| o == "User") {
        *users = (*users).max(1);
    }
    crate::generate::populate(&mut org, &counts, cfg.seed, anchor, &cfg.creds.username);
    org.tick(now);
    let identity = OrgIdentity { org_id: org.org_id.clone(), user_id: org.user_id.clone() };
    let oauth = OAuthServer::new(cfg.creds.clone(), identity).map_err(|e| StartError::JwtCert(e.to_string()))?;
    Ok(Arc::new(AppState {
        org: RwLock::new(org),
        clock,
        knobs: RwLock::new(cfg.knobs.clone()),
        oauth,
        base_url,
        pubsub_url,
        api: ApiUsage::default(),
        cursors: query::Cursors::default(),
        jobs: bulk::Jobs::default(),
        rng: Mutex::new(ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5a5a)),
        seed: cfg.seed,
        anchor_ms: anchor,
        started_ms: now,
        added_fields: Mutex::new(Vec::new()),
    }))
}

/// Starts serving. Returns once the socket is bound and the org is populated.
pub async fn start(cfg: SandboxConfig) -> Result<Running, StartError> {
    let addr = SocketAddr::new(cfg.bind, cfg.port);
    let listener = std::net::TcpListener::bind(addr).map_err(|source| StartError::Bind { addr, source })?;
    listener.set_nonblocking(true).map_err(|source| StartError::Bind { addr, source })?;
    let local = listener.local_addr().map_err(|source| StartError::Bind { addr, source })?;
    let host = if local.ip().is_unspecified() || local.ip().is_loopback() {
        "127.0.0.1".to_string()
    } else {
        local.ip().to_string()
    };
    let scheme = if cfg.tls_ca_file.is_some() { "https" } else { "http" };
    let base_url = format!("{scheme}://{host}:{}", local.port());
    let pubsub_addr = SocketAddr::new(cfg.bind, cfg.pubsub_port);
    let pubsub_listener = tokio::net::TcpListener::bind(pubsub_addr)
        .await
        .map_err(|source| StartError::Bind { addr: pubsub_addr, source })?;
    let pubsub_port =
        pubsub_listener.local_addr().map_err(|source| StartError::Bind { addr: pubsub_addr, source })?.port();
    let pubsub_url = format!("{scheme}://{host}:{pubsub_port}");
    let state = {
        let cfg = cfg.clone();
        let base = base_url.clone();
        let pubsub = pubsub_url.clone();
        tokio::task::spawn_blocking(move || build_state(&cfg, base, pubsub))
            .await
            .map_err(|e| StartError::Tls(format!("org generation panicked: {e}")))??
    };
    let router = app(state.clone());
    let service = tower_http::normalize_path::NormalizePath::trim_trailing_slash(router);
    let service = axum::ServiceExt::<axum::extract::Request>::into_make_service(service);
    let handle = axum_server::Handle::new();
    let material = match &cfg.tls_ca_file {
        Some(path) => {
            let material = crate::tls::generate().map_err(|e| StartError::Tls(e.to_string()))?;
            std::fs::write(path, &material.ca_pem)
                .map_err(|e| StartError::Tls(format!("cannot write {}: {e}", path.display())))?;
            Some(material)
        }
        None => None,
    };
    let pubsub_tls = material
        .as_ref()
        .map(|m| crate::pubsub::PubSubTls { cert_chain_pem: m.cert_chain_pem.clone(), key_pem: m.key_pem.clone() });
    let (pubsub_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let pubsub = tokio::spawn(crate::pubsub::serve(pubsub_listener, state.clone(), pubsub_tls, async move {
        let _ = stopped.await;
    }));
    let task = match material {
        Some(material) => {
            let rustls = axum_server::tls_rustls::RustlsConfig::from_pem(
                material.cert_chain_pem.into_bytes(),
                material.key_pem.into_bytes(),
            )
            .await
            .map_err(|e| StartError::Tls(e.to_string()))?;
            let server = axum_server::from_tcp_rustls(listener, rustls)
                .map_err(|source| StartError::Bind { addr, source })?
                .handle(handle.clone());
            tokio::spawn(server.serve(service))
        }
        None => {
            let server = axum_server::from_tcp(listener)
                .map_err(|source| StartError::Bind { addr, source })?
                .handle(handle.clone());
            tokio::spawn(server.serve(service))
        }
    };
    let churn = tokio::spawn(churn::run(state.clone()));
    Ok(Running {
        instance_url: base_url.clone(),
        login_url: base_url,
        ca_file: cfg.tls_ca_file.clone(),
        pubsub_url,
        state,
        handle,
        task,
        churn,
        pubsub,
        pubsub_stop,
    })
}
