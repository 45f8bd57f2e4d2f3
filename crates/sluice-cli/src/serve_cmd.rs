//! `sluice serve`: the config's flows on their schedules, with the HTTP API, until SIGTERM
//! or SIGINT (then the run in progress gets `serve.shutdown_grace` and the process exits 0).

use std::path::Path;

use tokio::sync::watch;

use crate::commands::{failed, load};
use crate::failure::Failure;

/// Runs until a signal asks it to stop.
pub async fn run(path: &Path) -> Result<(), Failure> {
    let config = load(path)?;
    let (stop, shutdown) = watch::channel(false);
    tokio::spawn(async move {
        signal().await;
        tracing::warn!("stopping: no new runs; the run in progress may finish within serve.shutdown_grace");
        let _ = stop.send(true);
    });
    let flows = config.flows.len();
    let token = if config.serve.token.is_some() { "a bearer token required" } else { "no token: loopback only" };
    let scheme = if config.serve.tls.is_some() { "https" } else { "http" };
    sluice::serve::serve(config, shutdown, |address| {
        say!("sluice serve: {flows} flows; API on {scheme}://{address}/api/v1 ({token}); SIGTERM or Ctrl-C stops");
    })
    .await
    .map_err(failed)?;
    say!("sluice serve: stopped");
    Ok(())
}

/// The first of SIGTERM and SIGINT.
async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops serve");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
