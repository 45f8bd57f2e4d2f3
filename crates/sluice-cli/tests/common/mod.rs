//! What the binary's tests share: an in-process sandbox and the `[source]` section that
//! logs in to it.

// Each suite uses its own subset.
#![allow(dead_code)]

use sandbox::server;
use sandbox::{Running, SandboxConfig};

/// A sandbox org generated from `seed` with `counts` records of those objects.
pub async fn start(seed: u64, counts: &[(&str, u64)]) -> Running {
    let counts = counts.iter().map(|(o, n)| ((*o).to_owned(), *n)).collect();
    server::start(SandboxConfig { seed, counts, ..SandboxConfig::default() }).await.expect("sandbox starts")
}

/// `[source]` for the sandbox at `login_url` with password auth, `api = "auto"`, no API
/// budget limit.
pub fn source_toml(login_url: &str, password: &str) -> String {
    format!("{}api = \"auto\"\napi_budget_percent = 100\n", server::source_toml(login_url, password))
}
