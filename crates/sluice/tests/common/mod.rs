//! What the library's integration tests share: the source config that logs in to an
//! in-process sandbox with its default credentials.

use sandbox::server::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_PASSWORD, DEFAULT_USERNAME};
use sluice::config::{Api, Auth, SalesforceConfig, Secret};

/// Password login to the sandbox at `url`, `api = auto`, no API budget limit.
pub fn password(url: &str) -> SalesforceConfig {
    SalesforceConfig {
        login_url: url.to_owned(),
        auth: Auth::Password {
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret: Secret::new(DEFAULT_CLIENT_SECRET),
            username: DEFAULT_USERNAME.into(),
            password: Secret::new(DEFAULT_PASSWORD),
        },
        api_version: "62.0".into(),
        api: Api::Auto,
        ca_file: None,
        api_budget_percent: 100,
        max_parallel_flows: 2,
    }
}
