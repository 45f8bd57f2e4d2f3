//! HTTPS: a sandbox started with `tls_ca_file` serves TLS with a certificate signed by
//! the CA it writes there; a client trusting that CA logs in and queries, a client
//! that does not is refused at the handshake.

use reqwest::{Certificate, Client, StatusCode};
use sandbox::SandboxConfig;
use serde_json::Value as Json;

use crate::common::{JSON_CT, V, config, header};

#[tokio::test]
async fn https_with_the_written_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    let running =
        sandbox::server::start(SandboxConfig { tls_ca_file: Some(ca_path.clone()), ..config() }).await.unwrap();
    assert!(running.instance_url.starts_with("https://127.0.0.1:"), "{}", running.instance_url);
    assert_eq!(running.ca_file.as_deref(), Some(ca_path.as_path()));
    let pem = std::fs::read(&ca_path).unwrap();
    assert!(String::from_utf8_lossy(&pem).starts_with("-----BEGIN CERTIFICATE-----"));

    let client = Client::builder().add_root_certificate(Certificate::from_pem(&pem).unwrap()).build().unwrap();
    let resp = client
        .post(format!("{}/services/oauth2/token", running.login_url))
        .form(&crate::common::PASSWORD_GRANT)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let token: Json = resp.json().await.unwrap();
    assert_eq!(token["instance_url"], running.instance_url.as_str());
    assert!(token["id"].as_str().unwrap().starts_with(&format!("{}/id/", running.login_url)));
    let resp = client
        .get(format!("{}/services/data/{V}/query", running.instance_url))
        .query(&[("q", "SELECT COUNT() FROM Account")])
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(resp.headers(), "content-type"), Some(JSON_CT));
    let body: Json = resp.json().await.unwrap();
    assert!(body["totalSize"].as_u64().unwrap() > 0);
    // The `localhost` name is covered too.
    let local = running.instance_url.replace("127.0.0.1", "localhost");
    assert_eq!(client.get(format!("{local}/services/data/")).send().await.unwrap().status(), StatusCode::OK);

    let stranger = Client::new();
    let err = stranger.get(format!("{}/services/data/", running.instance_url)).send().await.unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    running.shutdown().await;
}
