//! `sluice serve`: the always-on form of the pipeline (DESIGN "Orchestration"). Each flow
//! runs on its schedule ([`schedule`], pure) through the same runs as `sluice sync`, driven
//! by the [`scheduler`] loop, which keeps a [`view`] the HTTP [`api`] serves.
//!
//! [`serve`] binds the API's address, loads the persisted schedule state from the
//! destination, serves the API on other tasks and runs the scheduler on this one until the
//! shutdown channel turns `true`.

pub mod api;
pub mod hints;
pub mod metrics;
pub mod notify;
pub mod schedule;
pub mod scheduler;
pub mod view;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::error::{Error, Result};

/// Runs `sluice serve` until `shutdown` turns `true`, then returns once the run in
/// progress has finished or its grace is over. `listening` is told the API's address
/// once the schedule state is loaded and the API answers. An `Err` means it could not
/// start: the address is taken, or the destination cannot be opened or keeps no control
/// tables.
pub async fn serve(config: Config, shutdown: watch::Receiver<bool>, listening: impl FnOnce(SocketAddr)) -> Result<()> {
    let address = config.serve.listen;
    let listener = std::net::TcpListener::bind(address)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| Error::user(format!("serve.listen: cannot listen on {address}: {e}")))?;
    let bound = listener.local_addr().map_err(|e| Error::internal(format!("the listening address: {e}")))?;
    let tls = match &config.serve.tls {
        Some(tls) => {
            Some(axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key).await.map_err(|e| {
                Error::user(format!(
                    "serve.tls_cert / serve.tls_key: cannot use {} and {} as a PEM certificate chain and its key: {e}",
                    tls.cert.display(),
                    tls.key.display()
                ))
            })?)
        }
        None => None,
    };
    let config = Arc::new(config);
    let view = Arc::new(Mutex::new(view::View::default()));
    let (commands, received) = mpsc::unbounded_channel();
    let metrics = Arc::new(metrics::Metrics::new());
    let mut scheduler = scheduler::Scheduler::new(
        Arc::clone(&config),
        Arc::clone(&view),
        received,
        shutdown.clone(),
        Arc::clone(&metrics),
    );
    scheduler.load().await?;
    let app = api::router(api::ApiState { view, commands, config, metrics });
    let handle = axum_server::Handle::new();
    let service = app.into_make_service();
    let server = match tls {
        Some(tls) => tokio::spawn(
            axum_server::from_tcp_rustls(listener, tls)
                .map_err(|e| Error::internal(format!("serving on {bound}: {e}")))?
                .handle(handle.clone())
                .serve(service),
        ),
        None => tokio::spawn(
            axum_server::from_tcp(listener)
                .map_err(|e| Error::internal(format!("serving on {bound}: {e}")))?
                .handle(handle.clone())
                .serve(service),
        ),
    };
    let mut stop = shutdown;
    let stopper = handle.clone();
    tokio::spawn(async move {
        let _ = stop.wait_for(|s| *s).await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    listening(bound);
    let result = scheduler.run().await;
    server.abort();
    result
}
