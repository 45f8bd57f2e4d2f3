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

/// The org's rows of `object` (recycle bin included, purged rows not): its ground truth.
pub async fn truth(sb: &Running, object: &str) -> Vec<serde_json::Value> {
    let url = format!("{}/sandbox/v1/truth/{object}", sb.instance_url);
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    text.lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}
