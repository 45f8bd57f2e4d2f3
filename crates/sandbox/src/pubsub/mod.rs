//! The org's Pub/Sub API: Change Data Capture events over gRPC (`eventbus.v1.PubSub`), on
//! a port of its own as the real service has a host of its own
//! (`api.pubsub.salesforce.com:7443`), over TLS when the org serves HTTPS.
//!
//! - [`avro`]: each object's change-event schema and the Avro encoding of one event;
//! - `service`: `GetTopic`, `GetSchema` and `Subscribe` over the org's change log
//!   ([`crate::store::ChangeLog`]), with pull flow control and keepalives.
//!
//! Topics: `/data/ChangeEvents` (every object) and one per object
//! (`/data/AccountChangeEvent`; `/data/Invoice__ChangeEvent` for `Invoice__c`).

pub mod avro;
mod service;

pub mod proto;

use std::future::Future;
use std::sync::Arc;

pub use service::{ALL_CHANGES, MAX_REQUESTED, PubSubService, REPLAY_ID_CORRUPTED};

use crate::server::AppState;

/// TLS for the Pub/Sub port: the certificate chain and key the org's HTTPS port uses.
pub struct PubSubTls {
    /// PEM of the certificate chain.
    pub cert_chain_pem: String,
    /// PEM of the private key.
    pub key_pem: String,
}

/// Serves the Pub/Sub API of the org in `state` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    tls: Option<PubSubTls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        let identity = tonic::transport::Identity::from_pem(tls.cert_chain_pem, tls.key_pem);
        builder = builder.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))?;
    }
    // Open subscriptions end their streams when the server stops, so that it stops at once.
    let (close, closing) = tokio::sync::watch::channel(false);
    let stopping = async move {
        shutdown.await;
        let _ = close.send(true);
    };
    builder
        .add_service(proto::pub_sub_server::PubSubServer::new(PubSubService::new(state, closing)))
        .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), stopping)
        .await
}

#[cfg(test)]
mod tests;
