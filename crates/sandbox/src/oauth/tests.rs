//! Tests of the OAuth grants, token store and JWT checks.

use std::sync::OnceLock;

use jsonwebtoken::{EncodingKey, Header};
use rcgen::{CertificateParams, KeyPair, PKCS_RSA_SHA256};

use super::*;

const ORG: &str = "00D5g000004ABCDEAQ";
const USER: &str = "0055g000001XYZWAAU";
const INSTANCE: &str = "https://127.0.0.1:8443";
const LOGIN: &str = "https://127.0.0.1:8443/";
const NOW: i64 = 1_700_000_000_123;
const CLIENT: &str = "3MVG9sandbox.consumer.key";
const SECRET: &str = "1955279925675241571";
const NAME: &str = "admin@sandbox.example";
const KEYS: &str = "access_token signature scope instance_url id token_type issued_at";
const KEYS_WITH_REFRESH: &str = "access_token refresh_token signature scope instance_url id token_type issued_at";

fn credentials(jwt_cert_pem: Option<String>) -> Credentials {
    Credentials {
        client_id: CLIENT.into(),
        client_secret: SECRET.into(),
        username: NAME.into(),
        password: "hunter2TOKEN".into(),
        jwt_cert_pem,
    }
}

fn identity() -> OrgIdentity {
    OrgIdentity { org_id: ORG.into(), user_id: USER.into() }
}

fn server() -> OAuthServer {
    let cert = Some(rsa_fixture().1.clone());
    OAuthServer::new(credentials(cert), identity()).unwrap()
}

/// A request from `k=v&k=v` text: `$C`/`$S` stand for the client id/secret, `$B` for a
/// Basic header carrying them, and the pseudo-field `authorization` for the header.
fn request(form: &str) -> TokenRequest {
    let basic = |id: &str, secret: &str| format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
    let form = form.replace("$B", &basic(CLIENT, SECRET)).replace("$b", &basic(CLIENT, "x"));
    let form = form.replace("$C", CLIENT).replace("$S", SECRET);
    let mut fields: Map<String, Value> =
        form.split('&').filter_map(|pair| pair.split_once('=')).map(|(k, v)| (k.to_owned(), Value::from(v))).collect();
    let authorization = fields.remove("authorization");
    let mut request: TokenRequest = serde_json::from_value(Value::Object(fields)).unwrap();
    request.authorization = authorization.and_then(|v| v.as_str().map(str::to_owned));
    request
}

fn token(server: &OAuthServer, form: &str) -> Result<Value, OAuthError> {
    server.token(&request(form), INSTANCE, LOGIN, NOW)
}

/// Checks what every success body shares; returns its keys in order.
fn assert_success(server: &OAuthServer, body: &Value, scope: &str) -> String {
    let id = format!("https://127.0.0.1:8443/id/{ORG}/{USER}");
    let expected = [("id", id.as_str()), ("instance_url", INSTANCE), ("scope", scope)];
    for (key, value) in expected.into_iter().chain([("token_type", "Bearer")]) {
        assert_eq!(body[key], value, "{key}");
    }
    assert_eq!(body["issued_at"], NOW.to_string().as_str());
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{id}{NOW}").as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(body["signature"], signature.as_str());
    let access = body["access_token"].as_str().unwrap();
    let (prefix, opaque) = access.split_once('!').unwrap();
    assert_eq!(prefix, &ORG[..15]);
    assert!(opaque.len() == 96 && opaque.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(server.store().check(access, NOW, None), Ok(()));
    let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    keys.join(" ")
}

#[test]
fn password_and_client_credentials_succeed_without_refresh_token() {
    let server = server();
    let cases = "
        grant_type=password&client_id=$C&client_secret=$S&username=ADMIN@sandbox.example&password=hunter2TOKEN
        grant_type=client_credentials&client_id=$C&client_secret=$S
        grant_type=client_credentials&authorization=$B
        grant_type=client_credentials&authorization=Bearer x&client_id=$C&client_secret=$S";
    for form in cases.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let body = token(&server, form).unwrap();
        assert_eq!(assert_success(&server, &body, "api"), KEYS, "{form}");
    }
}

#[test]
fn grant_errors_have_salesforce_codes_and_descriptions() {
    let server = server();
    let cases = "
        grant_type=password&client_id=x&client_secret=$S&username=admin@sandbox.example&password=hunter2TOKEN | invalid_client_id | client identifier invalid
        grant_type=password&client_id=$C&client_secret=x&username=admin@sandbox.example&password=hunter2TOKEN | invalid_client | invalid client credentials
        grant_type=password&client_id=$C&username=admin@sandbox.example&password=hunter2TOKEN | invalid_client | invalid client credentials
        grant_type=password&client_id=$C&client_secret=$S&username=admin@sandbox.example&password=hunter2 | invalid_grant | authentication failure
        grant_type=password&client_id=$C&client_secret=$S&username=x@y.z&password=hunter2TOKEN | invalid_grant | authentication failure
        grant_type=password&client_id=$C&client_secret=$S&username=admin@sandbox.example | invalid_grant | authentication failure
        client_id=$C | unsupported_grant_type | grant type not supported
        grant_type=implicit | unsupported_grant_type | grant type not supported
        grant_type=client_credentials&client_id=$C | invalid_client | invalid client credentials
        grant_type=client_credentials&client_secret=$S | invalid_client_id | client identifier invalid
        grant_type=client_credentials&authorization=$b | invalid_client | invalid client credentials
        grant_type=client_credentials&authorization=Basic %%% | invalid_client | invalid client credentials
        grant_type=client_credentials&authorization=Basic bm9jb2xvbg== | invalid_client | invalid client credentials
        grant_type=client_credentials&authorization=Basic eDp5 | invalid_client_id | client identifier invalid
        grant_type=refresh_token&client_id=$C&refresh_token=5Aep861x | invalid_grant | expired access/refresh token
        grant_type=refresh_token&client_id=$C | invalid_grant | expired access/refresh token
        grant_type=refresh_token&client_id=x&refresh_token=5Aep861x | invalid_client_id | client identifier invalid
        grant_type=refresh_token&client_id=$C&client_secret=x | invalid_client | invalid client credentials
        grant_type=authorization_code&client_id=$C&code=aPrxnope | invalid_client | invalid client credentials
        grant_type=authorization_code&client_id=$C&client_secret=$S&code=aPrxnope | invalid_grant | invalid authorization code
        grant_type=authorization_code&client_id=$C&client_secret=$S | invalid_grant | invalid authorization code
        grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer | invalid_grant | invalid assertion
        grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=not.a.jwt | invalid_grant | invalid assertion
        grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=e30.e30 | invalid_grant | invalid assertion";
    for case in cases.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let [form, error, description] = case.split(" | ").collect::<Vec<_>>()[..] else { panic!("bad case {case}") };
        let err = token(&server, form).unwrap_err();
        assert_eq!((err.error, err.description.as_str()), (error, description), "{form}");
        assert_eq!(err.status(), 400);
    }
}

fn query_param<'a>(location: &'a str, name: &str) -> Option<&'a str> {
    let query = location.split_once('?')?.1;
    query.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

fn exchange(server: &OAuthServer, code: &str, uri: &str, now: i64) -> Result<Value, OAuthError> {
    let form = format!("grant_type=authorization_code&client_id=$C&client_secret=$S&code={code}&redirect_uri={uri}");
    server.token(&request(&form), INSTANCE, LOGIN, now)
}

#[test]
fn web_server_flow_issues_a_refresh_token_that_refreshes() {
    let server = server();
    let redirect = "http://localhost:1717/OauthRedirect";
    let location = server.authorize(CLIENT, redirect, Some("a b&c"), NOW).unwrap();
    assert!(location.starts_with("http://localhost:1717/OauthRedirect?code=aPrx"));
    assert_eq!(query_param(&location, "state"), Some("a%20b%26c"));
    let code = query_param(&location, "code").unwrap();
    let body = exchange(&server, code, redirect, NOW).unwrap();
    assert_eq!(assert_success(&server, &body, "api refresh_token"), KEYS_WITH_REFRESH);
    let refresh = body["refresh_token"].as_str().unwrap();
    assert!(refresh.starts_with("5Aep861") && refresh.len() == 87);

    let replay = exchange(&server, code, redirect, NOW).unwrap_err();
    assert_eq!(replay, invalid_grant("expired authorization code"));

    let refresh_form = format!("grant_type=refresh_token&client_id=$C&refresh_token={refresh}");
    for form in [refresh_form.clone(), format!("{refresh_form}&client_secret=$S")] {
        let body = token(&server, &form).unwrap();
        assert_eq!(assert_success(&server, &body, "api refresh_token"), KEYS);
    }
    assert!(server.store().revoke(refresh));
    let err = token(&server, &refresh_form).unwrap_err();
    assert_eq!(err, invalid_grant("expired access/refresh token"));

    let admin_refresh = server.store().issue_refresh_token();
    let form = format!("grant_type=refresh_token&client_id=$C&refresh_token={admin_refresh}");
    assert!(token(&server, &form).is_ok());
}

#[test]
fn authorization_code_checks_redirect_uri_and_age() {
    let server = server();
    let redirect = "https://app.example/cb?x=1";
    let location = server.authorize(CLIENT, redirect, None, NOW).unwrap();
    assert!(location.starts_with("https://app.example/cb?x=1&code=aPrx"), "{location}");
    assert_eq!(query_param(&location, "state"), None);
    let code = query_param(&location, "code").unwrap();
    let err = exchange(&server, code, "https://evil.example/cb", NOW).unwrap_err();
    let mismatch = ("redirect_uri_mismatch", "redirect_uri must match configuration");
    assert_eq!((err.error, err.description.as_str()), mismatch);
    // A mismatch doesn't burn the code.
    assert!(exchange(&server, code, redirect, NOW + 1000).is_ok());

    let location = server.authorize(CLIENT, redirect, None, NOW).unwrap();
    let code = query_param(&location, "code").unwrap();
    let err = exchange(&server, code, redirect, NOW + CODE_LIFETIME_MS).unwrap_err();
    assert_eq!(err, invalid_grant("expired authorization code"));

    assert_eq!(server.authorize("x", redirect, None, NOW), Err(invalid_client_id()));
    let err = server.authorize(CLIENT, "", None, NOW).unwrap_err();
    assert_eq!(err.error, "redirect_uri_mismatch");
}

#[test]
fn token_store_checks_sessions() {
    let store = TokenStore::new(ORG);
    let token = store.issue_access_token(NOW);
    let refresh = store.issue_refresh_token();
    let lifetime = Some(7_200_000);
    assert_eq!(store.check(&token, NOW + 7_199_999, lifetime), Ok(()));
    assert_eq!(store.check(&token, NOW + 7_200_000, lifetime), Err(SessionError::Expired));
    assert_eq!(store.check(&token, NOW + 999_999_999, None), Ok(()));
    assert_eq!(store.check("00D5g000004ABCD!AQx", NOW, None), Err(SessionError::Invalid));
    assert_eq!(store.check(&refresh, NOW, None), Err(SessionError::Invalid));

    store.revoke_all_access_tokens();
    assert_eq!(store.check(&token, NOW, None), Err(SessionError::Invalid));
    assert!(store.is_refresh_token(&refresh), "refresh tokens outlive sessions");

    let other = store.issue_access_token(NOW);
    assert!(store.revoke(&other) && !store.revoke(&other));
    assert_eq!(store.check(&other, NOW, None), Err(SessionError::Invalid));
    assert_ne!(store.issue_access_token(NOW), store.issue_access_token(NOW));
}

/// An RSA key and a self-signed certificate for it, as uploaded to a connected app.
fn rsa_fixture() -> &'static (KeyPair, String) {
    static FIXTURE: OnceLock<(KeyPair, String)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = KeyPair::generate_for(&PKCS_RSA_SHA256).unwrap();
        let params = CertificateParams::new(vec!["jwt.example".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        (key, cert.pem())
    })
}

fn jwt_form(claims: &Value, key: &KeyPair, alg: Algorithm) -> String {
    let key = match alg {
        Algorithm::HS256 => EncodingKey::from_secret(rsa_fixture().1.as_bytes()),
        _ => EncodingKey::from_rsa_pem(key.serialize_pem().as_bytes()).unwrap(),
    };
    let jwt = jsonwebtoken::encode(&Header::new(alg), claims, &key).unwrap();
    format!("grant_type={JWT_BEARER_GRANT}&assertion={jwt}")
}

#[test]
fn jwt_bearer_verifies_signature_and_claims() {
    let server = server();
    let key = &rsa_fixture().0;
    let now_s = NOW / 1000;
    let claims = |field: &str, value: Value| {
        let mut claims = json!({"iss": CLIENT, "sub": NAME, "exp": now_s + 300});
        claims["aud"] = json!("https://login.salesforce.com");
        claims[field] = value;
        claims
    };
    let assert_outcome = |claims: &Value, key: &KeyPair, expected: &str| match token(
        &server,
        &jwt_form(claims, key, Algorithm::RS256),
    ) {
        Ok(body) if expected.is_empty() => {
            assert_eq!(assert_success(&server, &body, "api"), KEYS);
        }
        got => assert_eq!(got.map_err(|e| e.to_string()), Err(expected.into()), "{claims}"),
    };
    // Field replaced in a valid claim set, and the error it causes ("" = accepted).
    let cases = [
        ("aud", json!("https://login.salesforce.com"), ""),
        ("aud", json!("https://test.salesforce.com"), ""),
        ("aud", json!("https://127.0.0.1:8443"), ""),
        ("aud", json!(["x", "https://login.salesforce.com/"]), ""),
        ("sub", json!("Admin@Sandbox.example"), ""),
        ("exp", json!(now_s - 180), ""),
        ("exp", json!((now_s + 60).to_string()), ""),
        ("iss", json!("x"), "invalid_client_id: client identifier invalid"),
        ("sub", json!("x@y.z"), "invalid_grant: user hasn't approved this consumer"),
        ("aud", json!("https://x.example"), "invalid_grant: audience is invalid"),
        ("aud", Value::Null, "invalid_grant: audience is invalid"),
        ("exp", json!(now_s - 181), "invalid_grant: expired authorization code"),
        ("exp", json!("soon"), "invalid_grant: invalid assertion"),
        ("exp", Value::Null, "invalid_grant: invalid assertion"),
    ];
    for (field, value, expected) in cases {
        assert_outcome(&claims(field, value), key, expected);
    }
    let other_key = KeyPair::generate_for(&PKCS_RSA_SHA256).unwrap();
    assert_outcome(&claims("", Value::Null), &other_key, "invalid_grant: invalid assertion");

    // HMAC keyed with the public certificate: the classic algorithm-confusion attempt.
    let valid = claims("sub", json!(NAME));
    let hs = jwt_form(&valid, key, Algorithm::HS256);
    assert_eq!(token(&server, &hs).unwrap_err(), invalid_assertion());

    let form = jwt_form(&valid, key, Algorithm::RS256);
    let no_cert = OAuthServer::new(credentials(None), identity()).unwrap();
    assert_eq!(token(&no_cert, &form).unwrap_err(), invalid_assertion());
    let public_pem = Some(key.public_key_pem());
    let by_public_key = OAuthServer::new(credentials(public_pem), identity()).unwrap();
    assert!(token(&by_public_key, &form).is_ok());
    let bad = Some("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----".to_owned());
    assert!(OAuthServer::new(credentials(bad), identity()).is_err());
}

#[test]
fn bodies_and_debug_output() {
    let err = invalid_grant("authentication failure");
    let body = r#"{"error":"invalid_grant","error_description":"authentication failure"}"#;
    assert_eq!(err.body().to_string(), body);
    assert_eq!(err.to_string(), "invalid_grant: authentication failure");
    let body = r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#;
    assert_eq!(SessionError::Expired.body().to_string(), body);
    assert_eq!(SessionError::Invalid.status(), 401);
    let debug = format!("{:?}", server());
    assert!(!debug.contains(SECRET) && !debug.contains("hunter2") && debug.contains(CLIENT));
    let debug = format!("{:?}", request("client_secret=$S&password=hunter2&authorization=$B"));
    assert!(!debug.contains(SECRET) && !debug.contains("hunter2") && !debug.contains("Basic"));
}

#[test]
fn identity_document_describes_the_user() {
    let server = server();
    let doc = server.identity_document("https://127.0.0.1:8443/", LOGIN);
    let id = format!("https://127.0.0.1:8443/id/{ORG}/{USER}");
    let rest = "https://127.0.0.1:8443/services/data/v{version}/";
    let fields = [("id", id.as_str()), ("user_id", USER), ("organization_id", ORG)];
    let fields = fields.into_iter().chain([("username", NAME), ("user_type", "STANDARD")]);
    for (key, value) in fields {
        assert_eq!(doc[key], value, "{key}");
    }
    assert_eq!((&doc["active"], &doc["urls"]["rest"]), (&json!(true), &json!(rest)));
    assert!(server.is_own_identity(ORG, USER));
    assert!(server.is_own_identity(&ORG[..15], &USER[..15]));
    assert!(!server.is_own_identity(ORG, "005000000000000AAA"));
    assert!(!server.is_own_identity(&ORG[..14], USER));
}
