//! What the binary's tests share: the `[source]` section that logs in to a sandbox.

use sandbox::server::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_USERNAME};

/// `[source]` for the sandbox at `login_url` with password auth, `api = "auto"`, no API
/// budget limit.
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
api = "auto"
api_budget_percent = 100
"#
    )
}
