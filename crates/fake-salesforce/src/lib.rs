//! A scripted, deliberately misbehaving fake Salesforce server, used only by sluice's
//! tests to prove that sluice fails safely on hostile or broken servers.
//!
//! The well-behaved, Salesforce-compatible org is `sluice-sandbox`; this crate shares no
//! code with it nor with `sluice`. A test builds a [`Script`] (the object, its records and
//! the [`Misbehave`]s it wants), [`start`]s the server on 127.0.0.1 over plain HTTP, points
//! sluice at [`Running::login_url`], and afterwards asserts on [`Running::requests`].
//!
//! ```text
//! POST   /services/oauth2/token                          any grant → ACCESS_TOKEN
//! GET    /services/data/vXX.X/sobjects/{object}/describe the script's object, else 404
//! GET    /services/data/vXX.X/{query,queryAll}?q=…       COUNT(), LIMIT 1, else every record, paged
//! GET    /services/data/vXX.X/{query,queryAll}/{locator} the next page
//! POST   /services/data/vXX.X/jobs/query                 Bulk 2.0 job (one result set: every record)
//! GET    /services/data/vXX.X/jobs/query/{id}            job info;  PATCH: abort;  DELETE: 204
//! GET    /services/data/vXX.X/jobs/query/{id}/results    CSV pages with Sforce-Locator
//! ```
//!
//! The fake does not evaluate SOQL: `WHERE` is ignored, so every listing returns every
//! record. Everything under `/services/data` needs `Authorization: Bearer` [`ACCESS_TOKEN`]
//! (else 401 `INVALID_SESSION_ID`) and answers with `Sforce-Limit-Info` and `Date`.

#![warn(missing_docs)]

mod bulk;
mod rest;
mod script;
mod server;
mod shared;

pub use script::{ACCESS_TOKEN, Endpoint, Field, Misbehave, Recorded, Script};

use std::sync::Arc;
use std::time::Duration;

/// A running fake; dropping it without [`Running::shutdown`] also stops it.
pub struct Running {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    shared: Arc<shared::Shared>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// The login URL (the same as [`Running::base_url`]).
    pub fn login_url(&self) -> String {
        self.base_url.clone()
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.log.lock().clone()
    }

    /// Stops serving: releases hung requests (they get a 503), closes connections, and
    /// gives up on stragglers after two seconds.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(2), &mut task).await.is_err() {
            task.abort();
            let _ = task.await;
        }
    }
}

/// Starts the fake on a free port of 127.0.0.1.
pub async fn start(script: Script) -> std::io::Result<Running> {
    serve(Some(script)).await
}

/// A server that only records requests, answering every one with 200 and an empty query
/// page `{"totalSize":0,"done":true,"records":[]}`: the "foreign host" a hostile
/// `nextRecordsUrl` points to, so tests can assert sluice sent it nothing (no token).
pub async fn start_recorder() -> std::io::Result<Running> {
    serve(None).await
}

async fn serve(script: Option<Script>) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let base_url = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let shared = Arc::new(shared::Shared::new(script, base_url.clone(), stopped.clone()));
    let app = server::router(shared.clone());
    let mut signal = stopped;
    let task = tokio::spawn(async move {
        let stopping = async move {
            // Also ends when the sender is dropped (the `Running` was dropped).
            let _ = signal.wait_for(|stop| *stop).await;
        };
        let _ = axum::serve(listener, app).with_graceful_shutdown(stopping).await;
    });
    Ok(Running { base_url, shared, stop, task })
}
