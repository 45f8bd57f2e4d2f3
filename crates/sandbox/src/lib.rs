//! A Salesforce-compatible org that runs locally: the source of sluice's demo, tests
//! and benchmarks, and a product in its own right (`sluice sandbox`).
//!
//! It serves OAuth 2.0 (password, client credentials, refresh token, JWT bearer,
//! authorization code), the REST API (versions, describeGlobal, describe, query and
//! queryAll with locators, sObject CRUD, `updated` / `deleted`, `limits`) and Bulk
//! API 2.0 query jobs, with Salesforce's status codes, headers and error bodies. Data
//! is generated deterministically from a seed; knobs inject what breaks replication
//! in real orgs (churn, late commits, timestamp ties, quotas, expired sessions, 5xx,
//! latency, slow or failing Bulk jobs, fields added at run time); an admin API under
//! `/sandbox/v1/` mutates data and dumps the ground truth.
//!
//! It shares no code with sluice's own Salesforce client, so a misreading of the API
//! in one cannot hide the same misreading in the other.
//!
//! ```no_run
//! # async fn example() -> Result<(), sandbox::server::StartError> {
//! let running = sandbox::server::start(sandbox::server::SandboxConfig::default()).await?;
//! println!("instance URL: {}", running.instance_url);
//! running.shutdown().await;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]
#![recursion_limit = "256"]

pub mod clock;
pub mod generate;
pub mod ids;
pub mod knobs;
pub mod oauth;
pub mod pubsub;
pub mod schema;
pub mod server;
pub mod soql;
pub mod store;
pub mod tls;
pub mod value;
pub mod write;

pub use server::{Running, SandboxConfig, StartError, start};
