//! The HTTP API served on a loopback port and called over HTTP: authentication, the
//! answers' shapes and status codes, and what reaches the scheduler.

use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};
use tokio::sync::mpsc;

use super::api::{ApiState, router};
use super::metrics::Metrics;
use super::scheduler::Command;
use super::view::{FlowEntry, View};
use crate::config::Config;
use crate::pipeline::RunRecord;

const TOKEN: &str = "test-token-0123456789";

fn config(serve: &str) -> Config {
    let text = format!(
        "[source]\ntype = \"salesforce\"\nlogin_url = \"https://x.my.salesforce.com\"\nauth = \"client_credentials\"\n\
         client_id = \"id\"\nclient_secret = \"s\"\n[destination]\ntype = \"duckdb\"\npath = \"w.duckdb\"\n{serve}\n\
         [[flows]]\nobject = \"Account\"\n[[flows]]\nobject = \"Contact\"\n"
    );
    crate::load_config(&text, "sluice.toml", &|_| None).unwrap()
}

struct Api {
    base: String,
    view: Arc<Mutex<View>>,
    commands: mpsc::UnboundedReceiver<Command>,
    client: reqwest::Client,
}

impl Api {
    async fn start(serve: &str) -> Api {
        let config = Arc::new(config(serve));
        let flows = config.flows.iter().map(|f| FlowEntry::new(f.clone(), f.object.to_ascii_lowercase())).collect();
        let view = Arc::new(Mutex::new(View { flows, ..View::default() }));
        let (tx, commands) = mpsc::unbounded_channel();
        let metrics = Arc::new(Metrics::new());
        let app = router(ApiState { view: Arc::clone(&view), commands: tx, config, metrics });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Api { base, view, commands, client: reqwest::Client::new() }
    }

    async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Json>) -> (StatusCode, Json) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Json::String(text)))
    }
}

#[tokio::test]
async fn the_token_is_required_on_the_api_but_not_on_healthz() {
    let api = Api::start(&format!("[serve]\ntoken = \"{TOKEN}\"")).await;
    for token in [None, Some("wrong"), Some("test-token-012345678"), Some("test-token-0123456789x")] {
        let (status, body) = api.call(Method::GET, "/api/v1/flows", token, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert!(body["error"].as_str().unwrap().contains("Bearer"), "{body}");
        assert!(!body.to_string().contains(TOKEN));
    }
    let (status, body) = api.call(Method::GET, "/api/v1/flows", Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::OK);
    let objects: Vec<&str> = body.as_array().unwrap().iter().map(|f| f["object"].as_str().unwrap()).collect();
    assert_eq!(objects, ["Account", "Contact"]);
    assert_eq!(body[0]["state"], "idle");
    assert_eq!(body[0]["freshness"], "late", "never committed: late");
    assert_eq!(body[0]["interval_seconds"], 900);
    // /healthz: 503 until the scheduler beats and the state store answered.
    assert_eq!(api.call(Method::GET, "/healthz", None, None).await.0, StatusCode::SERVICE_UNAVAILABLE);
    {
        let mut view = api.view.lock();
        view.heartbeat = Some(Instant::now());
        view.store_ok = true;
    }
    assert_eq!(api.call(Method::GET, "/healthz", None, None).await, (StatusCode::OK, json!({"status": "ok"})));
}

#[tokio::test]
async fn without_a_token_loopback_callers_need_none() {
    let api = Api::start("").await;
    assert_eq!(api.call(Method::GET, "/api/v1/runs", None, None).await, (StatusCode::OK, json!([])));
}

#[tokio::test]
async fn runs_are_asked_of_the_scheduler_and_refused_while_their_flows_run() {
    let mut api = Api::start("").await;
    let (status, body) =
        api.call(Method::POST, "/api/v1/runs", None, Some(json!({"objects": ["contact"], "full_refresh": true}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let run_id = body["run_id"].as_str().unwrap().to_owned();
    assert_eq!(body["objects"], json!(["Contact"]));
    assert_eq!(
        api.commands.try_recv().unwrap(),
        Command::Run { run_id, objects: vec!["Contact".into()], full_refresh: true }
    );
    // No objects: every flow.
    let (status, body) = api.call(Method::POST, "/api/v1/runs", None, Some(json!({}))).await;
    assert_eq!((status, &body["objects"]), (StatusCode::ACCEPTED, &json!(["Account", "Contact"])));
    api.commands.try_recv().unwrap();
    // Unknown object, unknown key, not JSON: refused, nothing asked.
    let (status, body) = api.call(Method::POST, "/api/v1/runs", None, Some(json!({"objects": ["Nope"]}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("the flows are: Account, Contact"), "{body}");
    let (status, _) = api.call(Method::POST, "/api/v1/runs", None, Some(json!({"object": ["Account"]}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // A flow in the run in progress: 409.
    api.view.lock().running = Some(("r1".into(), ["account".to_owned()].into()));
    let (status, body) = api.call(Method::POST, "/api/v1/runs", None, Some(json!({"objects": ["Account"]}))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body["error"].as_str().unwrap().contains("run r1"), "{body}");
    let (_, flows) = api.call(Method::GET, "/api/v1/flows", None, None).await;
    assert_eq!((&flows[0]["state"], &flows[1]["state"]), (&json!("running"), &json!("idle")));
    assert!(api.commands.try_recv().is_err());
    // A body beyond the limit is refused before it is parsed.
    let huge = json!({"objects": vec!["Account"; 20_000]});
    assert_eq!(api.call(Method::POST, "/api/v1/runs", None, Some(huge)).await.0, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn pause_and_resume_change_the_clock_and_ask_for_a_save() {
    let mut api = Api::start("").await;
    let (status, body) = api.call(Method::POST, "/api/v1/flows/ACCOUNT/pause", None, None).await;
    assert_eq!((status, &body["state"], &body["next_run"]), (StatusCode::OK, &json!("paused"), &Json::Null));
    assert_eq!(api.commands.try_recv().unwrap(), Command::Changed("Account".into()));
    assert!(api.view.lock().flows[0].clock.paused);
    api.view.lock().flows[0].clock.failures = 5;
    let (status, body) = api.call(Method::POST, "/api/v1/flows/Account/resume", None, None).await;
    assert_eq!((status, &body["state"], &body["consecutive_failures"]), (StatusCode::OK, &json!("idle"), &json!(0)));
    assert_eq!(api.commands.try_recv().unwrap(), Command::Changed("Account".into()));
    let (status, body) = api.call(Method::POST, "/api/v1/flows/Nope/pause", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("no flow for object \"Nope\""), "{body}");
}

#[tokio::test]
async fn runs_are_listed_newest_first_and_found_by_id() {
    let api = Api::start("").await;
    let record = |id: &str| RunRecord {
        run_id: id.into(),
        status: "ok".into(),
        started_at: None,
        finished_at: None,
        flows: Vec::new(),
    };
    api.view.lock().runs = vec![record("r3"), record("r2"), record("r1")];
    let (_, body) = api.call(Method::GET, "/api/v1/runs?limit=2", None, None).await;
    let ids: Vec<&str> = body.as_array().unwrap().iter().map(|r| r["run_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["r3", "r2"]);
    let (status, body) = api.call(Method::GET, "/api/v1/runs/r1", None, None).await;
    assert_eq!((status, &body["run_id"]), (StatusCode::OK, &json!("r1")));
    assert_eq!(api.call(Method::GET, "/api/v1/runs/r9", None, None).await.0, StatusCode::NOT_FOUND);
}
