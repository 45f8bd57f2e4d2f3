//! OAuth 2.0 login against the token endpoint (reference §1): the password,
//! client-credentials, refresh-token and JWT-bearer grants.
//!
//! One function, [`login`], turns a [`SalesforceConfig`] into a [`Session`] (an access
//! token and the instance URL every later call goes to). Secrets stay in
//! [`Secret`]s: they are exposed only to build the form body, and never reach a log line
//! or an error message. Errors of the token endpoint go through the one classifier
//! ([`classify`]), which keys off the OAuth `error` string rather than the status.
//!
//! The JWT assertion is RS256-signed with the PEM key of `private_key_file`, with
//! `iss` = client id, `sub` = username, `aud` = the login URL and `exp` = now + 3 minutes
//! (the clock skew Salesforce tolerates).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::classify::{Disposition, classify, header_pairs, transport_error};
use crate::config::{Auth, SalesforceConfig, Secret};
use crate::error::{Error, Result};

/// The token endpoint's path under the login URL.
pub const TOKEN_PATH: &str = "/services/oauth2/token";

/// The `grant_type` of the JWT bearer flow.
pub const JWT_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// How long a JWT assertion is valid (Salesforce allows about 3 minutes of skew).
pub const JWT_LIFETIME_SECS: i64 = 180;

/// A logged-in session.
#[derive(Clone)]
pub struct Session {
    /// The bearer token.
    pub access_token: Secret,
    /// Base URL of the org's API (`https://na1.salesforce.com`), without trailing `/`.
    pub instance_url: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("access_token", &self.access_token)
            .field("instance_url", &self.instance_url)
            .finish()
    }
}

/// The success body of the token endpoint (unknown fields ignored).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    instance_url: String,
}

#[derive(Serialize)]
struct JwtClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
}

/// The form fields of a token request for the configured grant. Values of secret
/// fields are exposed here and only here.
pub fn token_form(cfg: &SalesforceConfig, now_secs: i64) -> Result<Vec<(&'static str, String)>> {
    Ok(match &cfg.auth {
        Auth::Password { client_id, client_secret, username, password } => vec![
            ("grant_type", "password".to_owned()),
            ("client_id", client_id.clone()),
            ("client_secret", client_secret.expose().to_owned()),
            ("username", username.clone()),
            ("password", password.expose().to_owned()),
        ],
        Auth::ClientCredentials { client_id, client_secret } => vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", client_id.clone()),
            ("client_secret", client_secret.expose().to_owned()),
        ],
        Auth::RefreshToken { client_id, client_secret, refresh_token } => {
            let mut form = vec![
                ("grant_type", "refresh_token".to_owned()),
                ("client_id", client_id.clone()),
                ("refresh_token", refresh_token.expose().to_owned()),
            ];
            if let Some(secret) = client_secret {
                form.push(("client_secret", secret.expose().to_owned()));
            }
            form
        }
        Auth::Jwt { client_id, username, private_key_file } => {
            let assertion = jwt_assertion(client_id, username, &cfg.login_url, private_key_file, now_secs)?;
            vec![("grant_type", JWT_GRANT.to_owned()), ("assertion", assertion)]
        }
    })
}

/// An RS256-signed JWT bearer assertion.
pub fn jwt_assertion(client_id: &str, username: &str, aud: &str, key_file: &Path, now_secs: i64) -> Result<String> {
    let pem = std::fs::read(key_file)
        .map_err(|e| Error::user(format!("source.private_key_file: cannot read {}: {e}", key_file.display())))?;
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).map_err(|e| {
        Error::user(format!("source.private_key_file: {} is not a PEM RSA private key ({e})", key_file.display()))
    })?;
    let claims = JwtClaims { iss: client_id, sub: username, aud, exp: now_secs + JWT_LIFETIME_SECS };
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    jsonwebtoken::encode(&header, &claims, &key)
        .map_err(|e| Error::internal(format!("cannot sign the JWT assertion: {e}")))
}

/// The parsed reply of the token endpoint, or its error through the classifier.
pub fn parse_token_response(status: u16, headers: &[(String, String)], body: &str) -> Result<Session> {
    match classify(status, headers, body) {
        Disposition::Success => {}
        other => {
            let err = other.into_error().unwrap_or_else(|| Error::internal("login failed"));
            return Err(err);
        }
    }
    let token: TokenResponse = serde_json::from_str(body).map_err(|e| {
        Error::external_fatal(format!("the token endpoint answered HTTP {status} without a usable token ({e})"))
    })?;
    Ok(Session {
        access_token: Secret::new(token.access_token),
        instance_url: token.instance_url.trim_end_matches('/').to_owned(),
    })
}

/// The token endpoint URL of a login URL.
pub fn token_url(login_url: &str) -> String {
    format!("{}{TOKEN_PATH}", login_url.trim_end_matches('/'))
}

/// Logs in once (no retry; the client's request loop retries transient failures).
pub async fn login(http: &reqwest::Client, cfg: &SalesforceConfig) -> Result<Session> {
    let form = token_form(cfg, chrono::Utc::now().timestamp())?;
    let url = token_url(&cfg.login_url);
    let resp = http
        .post(&url)
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&form)
        .send()
        .await
        .map_err(|e| transport_error(&e, &url))?;
    let status = resp.status().as_u16();
    let headers = header_pairs(resp.headers());
    let body = resp.text().await.map_err(|e| transport_error(&e, &url))?;
    parse_token_response(status, &headers, &body).map_err(|e| e.context("login"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Api;

    fn cfg(auth: Auth) -> SalesforceConfig {
        SalesforceConfig {
            login_url: "https://login.example.com".into(),
            auth,
            api_version: "62.0".into(),
            api: Api::Auto,
            ca_file: None,
            api_budget_percent: 80,
            max_parallel_flows: 2,
            connect_timeout: crate::config::DEFAULT_CONNECT_TIMEOUT,
            read_timeout: crate::config::DEFAULT_READ_TIMEOUT,
            bulk_timeout: crate::config::DEFAULT_BULK_TIMEOUT,
        }
    }

    #[test]
    fn forms_per_grant() {
        let c = cfg(Auth::ClientCredentials { client_id: "cid".into(), client_secret: Secret::new("s3cr3t") });
        let form = token_form(&c, 0).unwrap();
        assert_eq!(form[0], ("grant_type", "client_credentials".into()));
        assert!(form.contains(&("client_secret", "s3cr3t".into())));
        let c =
            cfg(Auth::RefreshToken { client_id: "cid".into(), client_secret: None, refresh_token: Secret::new("r") });
        let form = token_form(&c, 0).unwrap();
        assert_eq!(form.len(), 3);
        assert!(format!("{c:?}").contains("***") && !format!("{c:?}").contains("\"r\""));
    }

    #[test]
    fn missing_key_file_is_a_user_error() {
        let c = cfg(Auth::Jwt {
            client_id: "cid".into(),
            username: "u".into(),
            private_key_file: "/nonexistent.pem".into(),
        });
        let err = token_form(&c, 0).unwrap_err();
        assert_eq!(err.kind, crate::Kind::User);
        assert!(err.message.contains("private_key_file"), "{}", err.message);
    }

    #[test]
    fn token_errors_are_classified() {
        let body = r#"{"error":"invalid_grant","error_description":"authentication failure"}"#;
        let err = parse_token_response(400, &[], body).unwrap_err();
        assert_eq!(err.kind, crate::Kind::User);
        let ok = r#"{"access_token":"00D!x","instance_url":"https://i.example.com/","id":"x"}"#;
        let s = parse_token_response(200, &[], ok).unwrap();
        assert_eq!(s.instance_url, "https://i.example.com");
        assert!(!format!("{s:?}").contains("00D!x"));
    }
}
