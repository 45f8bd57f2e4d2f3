//! OAuth 2.0 (`/services/oauth2/*`, reference §1): every grant's success body (key
//! order, token format, verifiable `signature`), the authorization-code flow, JWT
//! bearer with a freshly generated RSA certificate, the `{"error","error_description"}`
//! bodies with 400, revocation and the identity URL.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::{CertificateParams, KeyPair, PKCS_RSA_SHA256};
use reqwest::{Method, StatusCode};
use sandbox::oauth::JWT_BEARER_GRANT;
use sandbox::server::{
    DEFAULT_CLIENT_ID as CLIENT, DEFAULT_CLIENT_SECRET as SECRET, DEFAULT_PASSWORD, DEFAULT_USERNAME,
};
use serde_json::{Value as Json, json};
use sha2::Sha256;

use crate::common::{JSON_CT, Sandbox, config, header, keys, read_json};

const KEYS: [&str; 7] = ["access_token", "signature", "scope", "instance_url", "id", "token_type", "issued_at"];

async fn token(sb: &Sandbox, form: &[(&str, &str)]) -> (StatusCode, Json) {
    token_with(sb, form, None).await
}

async fn token_with(sb: &Sandbox, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> (StatusCode, Json) {
    let mut r = sb.http.post(sb.url("/services/oauth2/token")).form(form);
    if let Some((u, p)) = basic {
        r = r.basic_auth(u, Some(p));
    }
    let (status, headers, body) = read_json(r.send().await.unwrap()).await;
    assert_eq!(header(&headers, "content-type"), Some(JSON_CT));
    (status, body)
}

/// Checks a success body: keys, token format, id URL, signature; returns the access token.
async fn assert_success(sb: &Sandbox, body: &Json, scope: &str, with_refresh: bool) -> String {
    let mut want: Vec<&str> = KEYS.to_vec();
    if with_refresh {
        want.insert(1, "refresh_token");
    }
    assert_eq!(keys(body), want, "{body}");
    let org = sb.running.state.org.read().org_id.clone();
    let user = sb.running.state.org.read().user_id.clone();
    assert_eq!(body["id"], format!("{}/id/{org}/{user}", sb.base));
    assert_eq!(body["instance_url"], sb.base.as_str());
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], scope);
    let issued = body["issued_at"].as_str().expect("issued_at is a string");
    let issued_ms: i64 = issued.parse().expect("issued_at is epoch millis");
    let now = sb.running.state.clock.now_ms();
    assert!((now - issued_ms).abs() < 60_000, "issued_at {issued_ms} vs now {now}");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{}{issued}", body["id"].as_str().unwrap()).as_bytes());
    assert_eq!(body["signature"], STANDARD.encode(mac.finalize().into_bytes()));
    let access = body["access_token"].as_str().unwrap();
    let (prefix, rest) = access.split_once('!').unwrap();
    assert_eq!(prefix, &org[..15]);
    assert!(rest.len() > 20 && rest.chars().all(|c| c.is_ascii_alphanumeric()), "{access}");
    // The token opens the REST API.
    let resp = sb.http.get(sb.data("/limits")).bearer_auth(access).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    access.to_string()
}

fn assert_oauth_error(status: StatusCode, body: &Json, error: &str, description: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(keys(body), ["error", "error_description"], "{body}");
    assert_eq!((body["error"].as_str(), body["error_description"].as_str()), (Some(error), Some(description)));
}

#[tokio::test]
async fn password_and_client_credentials_grants() {
    let sb = Sandbox::start().await;
    let password = [
        ("grant_type", "password"),
        ("client_id", CLIENT),
        ("client_secret", SECRET),
        ("username", DEFAULT_USERNAME),
        ("password", DEFAULT_PASSWORD),
    ];
    let (status, body) = token(&sb, &password).await;
    assert_eq!(status, StatusCode::OK);
    assert_success(&sb, &body, "api", false).await;
    // Usernames compare case-insensitively.
    let upper = DEFAULT_USERNAME.to_uppercase();
    let (status, _) = token(&sb, &[password[0], password[1], password[2], ("username", &upper), password[4]]).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) =
        token(&sb, &[("grant_type", "client_credentials"), ("client_id", CLIENT), ("client_secret", SECRET)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_success(&sb, &body, "api", false).await;
    let (status, body) = token_with(&sb, &[("grant_type", "client_credentials")], Some((CLIENT, SECRET))).await;
    assert_eq!(status, StatusCode::OK);
    assert_success(&sb, &body, "api", false).await;
    let (status, body) = token_with(&sb, &[("grant_type", "client_credentials")], Some((CLIENT, "wrong"))).await;
    assert_oauth_error(status, &body, "invalid_client", "invalid client credentials");
}

#[tokio::test]
async fn grant_errors_are_oauth_error_objects() {
    let sb = Sandbox::start().await;
    // (form fields, expected error, expected description)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case] = &[
        (
            &[
                ("grant_type", "password"),
                ("client_id", CLIENT),
                ("client_secret", SECRET),
                ("username", DEFAULT_USERNAME),
                ("password", "nope"),
            ],
            "invalid_grant",
            "authentication failure",
        ),
        (
            &[
                ("grant_type", "password"),
                ("client_id", CLIENT),
                ("client_secret", SECRET),
                ("username", "x@y.z"),
                ("password", DEFAULT_PASSWORD),
            ],
            "invalid_grant",
            "authentication failure",
        ),
        (
            &[
                ("grant_type", "password"),
                ("client_id", "nope"),
                ("client_secret", SECRET),
                ("username", DEFAULT_USERNAME),
                ("password", DEFAULT_PASSWORD),
            ],
            "invalid_client_id",
            "client identifier invalid",
        ),
        (
            &[
                ("grant_type", "password"),
                ("client_id", CLIENT),
                ("client_secret", "nope"),
                ("username", DEFAULT_USERNAME),
                ("password", DEFAULT_PASSWORD),
            ],
            "invalid_client",
            "invalid client credentials",
        ),
        (&[("grant_type", "implicit")], "unsupported_grant_type", "grant type not supported"),
        (&[("client_id", CLIENT)], "unsupported_grant_type", "grant type not supported"),
        (
            &[("grant_type", "client_credentials"), ("client_id", CLIENT)],
            "invalid_client",
            "invalid client credentials",
        ),
        (
            &[("grant_type", "refresh_token"), ("client_id", CLIENT), ("refresh_token", "5Aep861bogus")],
            "invalid_grant",
            "expired access/refresh token",
        ),
        (
            &[
                ("grant_type", "authorization_code"),
                ("client_id", CLIENT),
                ("client_secret", SECRET),
                ("code", "aPrxnope"),
            ],
            "invalid_grant",
            "invalid authorization code",
        ),
        (&[("grant_type", JWT_BEARER_GRANT), ("assertion", "not.a.jwt")], "invalid_grant", "invalid assertion"),
    ];
    for (form, error, description) in cases {
        let (status, body) = token(&sb, form).await;
        assert_oauth_error(status, &body, error, description);
    }
    // A body that is not a form.
    let resp = sb.http.post(sb.url("/services/oauth2/token")).json(&json!({"grant_type": "password"})).send().await;
    let (status, headers, body) = read_json(resp.unwrap()).await;
    assert_eq!(header(&headers, "content-type"), Some(JSON_CT));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn refresh_tokens_from_the_admin_api_and_the_web_server_flow() {
    let sb = Sandbox::start().await;
    let resp = sb.http.post(sb.url("/sandbox/v1/refresh-tokens")).send().await.unwrap();
    let refresh = resp.json::<Json>().await.unwrap()["refresh_token"].as_str().unwrap().to_string();
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", CLIENT),
        ("client_secret", SECRET),
        ("refresh_token", &refresh),
    ];
    let (status, body) = token(&sb, &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_success(&sb, &body, "api refresh_token", false).await;
    // The same refresh token stays valid.
    assert_eq!(token(&sb, &form).await.0, StatusCode::OK);

    // authorize → code → tokens (with a refresh token) → refresh.
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let redirect = "http://localhost:1717/OauthRedirect";
    let resp = no_redirect
        .get(sb.url("/services/oauth2/authorize"))
        .query(&[("response_type", "code"), ("client_id", CLIENT), ("redirect_uri", redirect), ("state", "s 1")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = header(resp.headers(), "location").unwrap().to_string();
    let url = reqwest::Url::parse(&location).unwrap();
    assert_eq!(&location[..redirect.len()], redirect);
    let code = url.query_pairs().find(|(k, _)| k == "code").unwrap().1.to_string();
    assert_eq!(url.query_pairs().find(|(k, _)| k == "state").unwrap().1, "s 1");
    let exchange = [
        ("grant_type", "authorization_code"),
        ("client_id", CLIENT),
        ("client_secret", SECRET),
        ("code", &code),
        ("redirect_uri", redirect),
    ];
    let (status, body) = token(&sb, &exchange).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_success(&sb, &body, "api refresh_token", true).await;
    let refresh = body["refresh_token"].as_str().unwrap().to_string();
    let (status, body) =
        token(&sb, &[("grant_type", "refresh_token"), ("client_id", CLIENT), ("refresh_token", &refresh)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("refresh_token").is_none());
    // A code works once.
    let (status, body) = token(&sb, &exchange).await;
    assert_oauth_error(status, &body, "invalid_grant", "expired authorization code");
    // Unknown client and wrong response type at the authorize step.
    let resp = no_redirect
        .get(sb.url("/services/oauth2/authorize"))
        .query(&[("response_type", "token"), ("client_id", CLIENT), ("redirect_uri", redirect)])
        .send()
        .await
        .unwrap();
    let (status, _, body) = read_json(resp).await;
    assert_oauth_error(status, &body, "unsupported_response_type", "response type not supported");

    // Revoking the refresh token ends it.
    let resp = sb.http.post(sb.url("/services/oauth2/revoke")).form(&[("token", &refresh)]).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, body) =
        token(&sb, &[("grant_type", "refresh_token"), ("client_id", CLIENT), ("refresh_token", &refresh)]).await;
    assert_oauth_error(status, &body, "invalid_grant", "expired access/refresh token");
}

fn jwt(key: &KeyPair, claims: &Json) -> String {
    let key = EncodingKey::from_rsa_pem(key.serialize_pem().as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).unwrap()
}

#[tokio::test]
async fn jwt_bearer_checks_signature_issuer_audience_expiry_and_subject() {
    let key = KeyPair::generate_for(&PKCS_RSA_SHA256).unwrap();
    let cert = CertificateParams::new(vec!["jwt.sluice.test".to_string()]).unwrap().self_signed(&key).unwrap();
    let mut cfg = config();
    cfg.creds.jwt_cert_pem = Some(cert.pem());
    let sb = Sandbox::with(cfg).await;
    let now_s = sb.running.state.clock.now_ms() / 1000;
    let claims = |patch: Json| {
        let mut c =
            json!({"iss": CLIENT, "sub": DEFAULT_USERNAME, "aud": "https://login.salesforce.com", "exp": now_s + 180});
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let (status, body) = grant(&sb, jwt(&key, &claims(json!({})))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_success(&sb, &body, "api", false).await;
    // The sandbox's own login URL is an accepted audience too.
    let (status, _) = grant(&sb, jwt(&key, &claims(json!({"aud": sb.base})))).await;
    assert_eq!(status, StatusCode::OK);

    let other = KeyPair::generate_for(&PKCS_RSA_SHA256).unwrap();
    let cases = [
        (jwt(&other, &claims(json!({}))), "invalid_grant", "invalid assertion"),
        (jwt(&key, &claims(json!({"iss": "someone-else"}))), "invalid_client_id", "client identifier invalid"),
        (jwt(&key, &claims(json!({"aud": "https://evil.example.com"}))), "invalid_grant", "audience is invalid"),
        (jwt(&key, &claims(json!({"exp": now_s - 600}))), "invalid_grant", "expired authorization code"),
        (
            jwt(&key, &claims(json!({"sub": "stranger@example.com"}))),
            "invalid_grant",
            "user hasn't approved this consumer",
        ),
    ];
    for (assertion, error, description) in cases {
        let (status, body) = grant(&sb, assertion).await;
        assert_oauth_error(status, &body, error, description);
    }
}

async fn grant(sb: &Sandbox, assertion: String) -> (StatusCode, Json) {
    token(sb, &[("grant_type", JWT_BEARER_GRANT), ("assertion", &assertion)]).await
}

#[tokio::test]
async fn identity_url_userinfo_and_access_token_revocation() {
    let sb = Sandbox::start().await;
    let (org, user) = {
        let org = sb.running.state.org.read();
        (org.org_id.clone(), org.user_id.clone())
    };
    for path in
        [format!("/id/{org}/{user}"), format!("/id/{}/{}", &org[..15], &user[..15]), "/services/oauth2/userinfo".into()]
    {
        let resp = sb.req(Method::GET, &sb.url(&path)).send().await.unwrap();
        let (status, headers, body) = read_json(resp).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(header(&headers, "content-type"), Some(JSON_CT));
        assert_eq!(body["id"], format!("{}/id/{org}/{user}", sb.base));
        assert_eq!((body["user_id"].as_str(), body["organization_id"].as_str()), (Some(&*user), Some(&*org)));
        assert_eq!(body["username"], DEFAULT_USERNAME);
    }
    let resp = sb.http.get(sb.url(&format!("/id/{org}/{user}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(resp.text().await.unwrap(), "Bad_OAuth_Token");

    let access = sb.token();
    let resp = sb.http.post(sb.url("/services/oauth2/revoke")).form(&[("token", &access)]).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, _, body) = sb.get_json("/limits").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]));
    let resp = sb.http.post(sb.url("/services/oauth2/revoke")).form(&[("token", &access)]).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}
