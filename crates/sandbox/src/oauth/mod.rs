//! OAuth 2.0 as a Salesforce org speaks it: the grants of `POST /services/oauth2/token`,
//! the auto-approving `GET /services/oauth2/authorize` step, the session store that
//! backs `Authorization: Bearer`, and the identity document of `GET /id/<org>/<user>`.
//! Nothing here knows about HTTP; the server module maps results onto responses.

use std::collections::{HashMap, HashSet};
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac as _};
use jsonwebtoken::{Algorithm, DecodingKey};
use parking_lot::Mutex;
use rand::Rng as _;
use rand::distr::Alphanumeric;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::Sha256;

use crate::tls::{KeyError, rsa_public_key_der};

/// The `grant_type` of the JWT bearer flow.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Audiences Salesforce accepts in a JWT assertion besides the server's own login URL.
pub const PUBLIC_AUDIENCES: [&str; 2] = ["https://login.salesforce.com", "https://test.salesforce.com"];
/// Salesforce documents a three-minute clock skew allowance for `exp`.
const JWT_SKEW_SECONDS: i64 = 180;
/// Salesforce authorization codes are valid for 15 minutes.
const CODE_LIFETIME_MS: i64 = 15 * 60 * 1000;
const WEB_SERVER_SCOPE: &str = "api refresh_token";
const DEFAULT_SCOPE: &str = "api";

/// What the "connected app" and its user are configured with.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Consumer key of the connected app.
    pub client_id: String,
    /// Consumer secret; also the HMAC key of the `signature` field.
    pub client_secret: String,
    /// The one user of the org (compared case-insensitively, as Salesforce does).
    pub username: String,
    /// Password, including any security token suffix the client is expected to append.
    pub password: String,
    /// X.509 certificate PEM uploaded to the connected app (a `PUBLIC KEY` or
    /// `RSA PUBLIC KEY` PEM is accepted too); its RSA key verifies JWT bearer assertions.
    pub jwt_cert_pem: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("jwt_cert_pem", &self.jwt_cert_pem.as_ref().map(|_| "<pem>"))
            .finish()
    }
}

/// The org and user every successful grant authenticates as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgIdentity {
    /// 18-character org id (`00D…`).
    pub org_id: String,
    /// 18-character user id (`005…`).
    pub user_id: String,
}

/// The form fields of a token request, plus the raw `Authorization` header.
///
/// Deserializes from the `application/x-www-form-urlencoded` body; unknown fields are ignored.
#[derive(Clone, Default, Deserialize)]
pub struct TokenRequest {
    /// `grant_type`.
    pub grant_type: Option<String>,
    /// `client_id` (consumer key).
    pub client_id: Option<String>,
    /// `client_secret` (consumer secret).
    pub client_secret: Option<String>,
    /// `username` (password grant).
    pub username: Option<String>,
    /// `password` (password grant).
    pub password: Option<String>,
    /// `refresh_token` (refresh grant).
    pub refresh_token: Option<String>,
    /// `code` (authorization code grant).
    pub code: Option<String>,
    /// `redirect_uri` (authorization code grant).
    pub redirect_uri: Option<String>,
    /// `assertion` (JWT bearer grant).
    pub assertion: Option<String>,
    /// Raw value of the `Authorization` request header; set by the caller, never by the form.
    #[serde(skip)]
    pub authorization: Option<String>,
}

impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let present = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("TokenRequest")
            .field("grant_type", &self.grant_type)
            .field("client_id", &self.client_id)
            .field("client_secret", &present(&self.client_secret))
            .field("username", &self.username)
            .field("password", &present(&self.password))
            .field("refresh_token", &present(&self.refresh_token))
            .field("code", &present(&self.code))
            .field("redirect_uri", &self.redirect_uri)
            .field("assertion", &present(&self.assertion))
            .field("authorization", &present(&self.authorization))
            .finish()
    }
}

/// A token-endpoint failure, rendered as `{"error":…,"error_description":…}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {description}")]
pub struct OAuthError {
    /// The OAuth `error` code, e.g. `invalid_grant`.
    pub error: &'static str,
    /// The `error_description` text, worded as Salesforce words it.
    pub description: String,
}

impl OAuthError {
    /// An error with the given code and description.
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self { error, description: description.into() }
    }

    /// `unsupported_response_type`, for an authorize request whose `response_type` isn't `code`.
    pub fn unsupported_response_type() -> Self {
        Self::new("unsupported_response_type", "response type not supported")
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        json!({ "error": self.error, "error_description": self.description })
    }

    /// The HTTP status. Salesforce answers some `invalid_client` cases with 401, but clients
    /// key off `error`, so one status keeps the emulator predictable.
    pub fn status(&self) -> u16 {
        400
    }
}

fn invalid_client_id() -> OAuthError {
    OAuthError::new("invalid_client_id", "client identifier invalid")
}
fn invalid_client() -> OAuthError {
    OAuthError::new("invalid_client", "invalid client credentials")
}
fn invalid_grant(description: &str) -> OAuthError {
    OAuthError::new("invalid_grant", description)
}
fn invalid_assertion() -> OAuthError {
    invalid_grant("invalid assertion")
}

/// Why a bearer token was refused. Every variant maps to the same 401 response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Never issued, revoked, or missing.
    #[error("session id is unknown or revoked")]
    Invalid,
    /// Older than the configured session lifetime.
    #[error("session expired")]
    Expired,
}

impl SessionError {
    /// The REST error body:
    /// `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`.
    pub fn body(&self) -> Value {
        json!([{ "message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID" }])
    }

    /// The HTTP status (401).
    pub fn status(&self) -> u16 {
        401
    }
}

struct Code {
    redirect_uri: String,
    issued_ms: i64,
    used: bool,
}

#[derive(Default)]
struct StoreInner {
    access: HashMap<String, i64>,
    refresh: HashSet<String>,
    codes: HashMap<String, Code>,
}

/// Issued access tokens, refresh tokens and authorization codes. Thread-safe.
pub struct TokenStore {
    org_prefix: String,
    inner: Mutex<StoreInner>,
}

impl fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("TokenStore")
            .field("org_prefix", &self.org_prefix)
            .field("access_tokens", &inner.access.len())
            .field("refresh_tokens", &inner.refresh.len())
            .finish_non_exhaustive()
    }
}

fn random_alphanumeric(len: usize) -> String {
    rand::rng().sample_iter(Alphanumeric).take(len).map(char::from).collect()
}

impl TokenStore {
    /// A store whose access tokens start with the first 15 characters of `org_id`.
    pub fn new(org_id: &str) -> Self {
        Self { org_prefix: org_id.chars().take(15).collect(), inner: Mutex::default() }
    }

    /// Issues an access token `<15-char org id>!AQ<94 random base62 chars>` at `now_ms`.
    pub fn issue_access_token(&self, now_ms: i64) -> String {
        // Real session ids after the `!` start with "AQ"/"AR"; mimic that for realism.
        let token = format!("{}!AQ{}", self.org_prefix, random_alphanumeric(94));
        self.inner.lock().access.insert(token.clone(), now_ms);
        token
    }

    /// Issues a refresh token (real ones start with `5Aep861`).
    pub fn issue_refresh_token(&self) -> String {
        let token = format!("5Aep861{}", random_alphanumeric(80));
        self.inner.lock().refresh.insert(token.clone());
        token
    }

    /// Accepts `token` if it was issued, not revoked, and (with a lifetime) younger than it.
    pub fn check(&self, token: &str, now_ms: i64, lifetime_ms: Option<i64>) -> Result<(), SessionError> {
        let issued = *self.inner.lock().access.get(token).ok_or(SessionError::Invalid)?;
        match lifetime_ms {
            Some(lifetime) if now_ms.saturating_sub(issued) >= lifetime => Err(SessionError::Expired),
            _ => Ok(()),
        }
    }

    /// Whether `token` is a live refresh token.
    pub fn is_refresh_token(&self, token: &str) -> bool {
        self.inner.lock().refresh.contains(token)
    }

    /// Revokes one access or refresh token (`/services/oauth2/revoke`); false if unknown.
    pub fn revoke(&self, token: &str) -> bool {
        let mut inner = self.inner.lock();
        inner.access.remove(token).is_some() || inner.refresh.remove(token)
    }

    /// Revokes every access token while refresh tokens stay valid, as when sessions time out.
    pub fn revoke_all_access_tokens(&self) {
        self.inner.lock().access.clear();
    }

    fn issue_code(&self, redirect_uri: &str, now_ms: i64) -> String {
        let code = format!("aPrx{}", random_alphanumeric(60));
        let entry = Code { redirect_uri: redirect_uri.to_owned(), issued_ms: now_ms, used: false };
        self.inner.lock().codes.insert(code.clone(), entry);
        code
    }

    /// Consumes a code. Used codes are kept so that a replay reads "expired", as on Salesforce.
    fn redeem_code(&self, code: &str, redirect_uri: Option<&str>, now_ms: i64) -> Result<(), OAuthError> {
        let mut inner = self.inner.lock();
        let entry = inner.codes.get_mut(code).ok_or_else(|| invalid_grant("invalid authorization code"))?;
        if entry.used || now_ms.saturating_sub(entry.issued_ms) >= CODE_LIFETIME_MS {
            return Err(invalid_grant("expired authorization code"));
        }
        if redirect_uri != Some(entry.redirect_uri.as_str()) {
            return Err(OAuthError::new("redirect_uri_mismatch", "redirect_uri must match configuration"));
        }
        entry.used = true;
        Ok(())
    }
}

/// The org's OAuth authority: configured credentials, identity and token store.
pub struct OAuthServer {
    credentials: Credentials,
    identity: OrgIdentity,
    jwt_key: Option<DecodingKey>,
    store: TokenStore,
}

impl fmt::Debug for OAuthServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthServer")
            .field("credentials", &self.credentials)
            .field("identity", &self.identity)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// What a grant decided before the common success body is built.
struct Grant {
    scope: &'static str,
    refresh_token: Option<String>,
}

impl OAuthServer {
    /// Builds the authority; fails if `jwt_cert_pem` is set but holds no usable RSA key.
    pub fn new(credentials: Credentials, identity: OrgIdentity) -> Result<Self, KeyError> {
        let jwt_key = match credentials.jwt_cert_pem.as_deref() {
            Some(pem) => Some(DecodingKey::from_rsa_der(&rsa_public_key_der(pem)?)),
            None => None,
        };
        let store = TokenStore::new(&identity.org_id);
        Ok(Self { credentials, identity, jwt_key, store })
    }

    /// The configured credentials.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The org and user every grant authenticates as.
    pub fn identity(&self) -> &OrgIdentity {
        &self.identity
    }

    /// The token store, for bearer checks and the admin API.
    pub fn store(&self) -> &TokenStore {
        &self.store
    }

    /// The `id` URL of token responses: `<login_url>/id/<org id>/<user id>`.
    pub fn identity_url(&self, login_url: &str) -> String {
        let login = login_url.trim_end_matches('/');
        format!("{login}/id/{}/{}", self.identity.org_id, self.identity.user_id)
    }

    /// Whether `/id/<org_id>/<user_id>` names this org's user (15- or 18-char ids).
    pub fn is_own_identity(&self, org_id: &str, user_id: &str) -> bool {
        fn same(given: &str, ours: &str) -> bool {
            given == ours || (given.len() == 15 && ours.get(..15) == Some(given))
        }
        same(org_id, &self.identity.org_id) && same(user_id, &self.identity.user_id)
    }

    /// Auto-approves `GET /services/oauth2/authorize?response_type=code&…` as the configured
    /// user and returns the redirect `Location`: `redirect_uri` plus `code` and `state`.
    /// Checking `response_type` is the caller's (see [`OAuthError::unsupported_response_type`]).
    pub fn authorize(
        &self,
        client_id: &str,
        redirect_uri: &str,
        state: Option<&str>,
        now_ms: i64,
    ) -> Result<String, OAuthError> {
        if client_id != self.credentials.client_id {
            return Err(invalid_client_id());
        }
        if redirect_uri.is_empty() {
            return Err(OAuthError::new("redirect_uri_mismatch", "redirect_uri must match configuration"));
        }
        let code = self.store.issue_code(redirect_uri, now_ms);
        let separator = if redirect_uri.contains('?') { '&' } else { '?' };
        let mut location = format!("{redirect_uri}{separator}code={}", percent_encode(&code));
        if let Some(state) = state {
            location.push_str("&state=");
            location.push_str(&percent_encode(state));
        }
        Ok(location)
    }

    /// Handles `POST /services/oauth2/token` and returns the success body, in Salesforce's
    /// key order: `access_token, [refresh_token,] signature, scope, instance_url, id,
    /// token_type, issued_at`.
    pub fn token(
        &self,
        request: &TokenRequest,
        instance_url: &str,
        login_url: &str,
        now_ms: i64,
    ) -> Result<Value, OAuthError> {
        let grant = match request.grant_type.as_deref() {
            Some("password") => self.password_grant(request)?,
            Some("client_credentials") => self.client_credentials_grant(request)?,
            Some("refresh_token") => self.refresh_grant(request)?,
            Some("authorization_code") => self.code_grant(request, now_ms)?,
            Some(JWT_BEARER_GRANT) => self.jwt_grant(request, login_url, now_ms)?,
            _ => {
                return Err(OAuthError::new("unsupported_grant_type", "grant type not supported"));
            }
        };
        let access_token = self.store.issue_access_token(now_ms);
        let id = self.identity_url(login_url);
        let issued_at = now_ms.to_string();
        let signature = sign(&self.credentials.client_secret, &format!("{id}{issued_at}"));
        let mut body = Map::new();
        body.insert("access_token".into(), access_token.into());
        if let Some(refresh_token) = grant.refresh_token {
            body.insert("refresh_token".into(), refresh_token.into());
        }
        body.insert("signature".into(), signature.into());
        body.insert("scope".into(), grant.scope.into());
        body.insert("instance_url".into(), instance_url.trim_end_matches('/').into());
        body.insert("id".into(), id.into());
        body.insert("token_type".into(), "Bearer".into());
        body.insert("issued_at".into(), issued_at.into());
        Ok(Value::Object(body))
    }

    /// The identity document served at `GET /id/<org>/<user>`; `{version}` stays literal
    /// in `urls`, as Salesforce leaves it for the client to fill.
    pub fn identity_document(&self, instance_url: &str, login_url: &str) -> Value {
        let instance = instance_url.trim_end_matches('/');
        let OrgIdentity { org_id, user_id } = &self.identity;
        let org15 = org_id.get(..15).unwrap_or(org_id);
        let user15 = user_id.get(..15).unwrap_or(user_id);
        let username = &self.credentials.username;
        let nick_name = username.split('@').next().unwrap_or(username);
        let data = format!("{instance}/services/data/v{{version}}");
        json!({
            "id": self.identity_url(login_url),
            "asserted_user": true,
            "user_id": user_id,
            "organization_id": org_id,
            "username": username,
            "nick_name": nick_name,
            "display_name": "Sandbox User",
            "email": username,
            "email_verified": true,
            "first_name": "Sandbox",
            "last_name": "User",
            "timezone": "GMT",
            "active": true,
            "user_type": "STANDARD",
            "language": "en_US",
            "locale": "en_US",
            "utcOffset": 0,
            "urls": {
                "enterprise": format!("{instance}/services/Soap/c/{{version}}/{org15}"),
                "metadata": format!("{instance}/services/Soap/m/{{version}}/{org15}"),
                "partner": format!("{instance}/services/Soap/u/{{version}}/{org15}"),
                "rest": format!("{data}/"),
                "sobjects": format!("{data}/sobjects/"),
                "search": format!("{data}/search/"),
                "query": format!("{data}/query/"),
                "recent": format!("{data}/recent/"),
                "tooling_rest": format!("{data}/tooling/"),
                "profile": format!("{instance}/{user15}"),
                "custom_domain": instance,
            },
            "is_app_installed": true,
        })
    }

    /// Checks the consumer key, then the secret (an absent secret passes unless required).
    fn check_client(&self, id: Option<&str>, secret: Option<&str>, secret_required: bool) -> Result<(), OAuthError> {
        if id != Some(self.credentials.client_id.as_str()) {
            return Err(invalid_client_id());
        }
        match secret {
            Some(secret) if secret == self.credentials.client_secret => Ok(()),
            None if !secret_required => Ok(()),
            _ => Err(invalid_client()),
        }
    }

    fn is_our_user(&self, username: &str) -> bool {
        username.eq_ignore_ascii_case(&self.credentials.username)
    }

    fn password_grant(&self, req: &TokenRequest) -> Result<Grant, OAuthError> {
        self.check_client(req.client_id.as_deref(), req.client_secret.as_deref(), true)?;
        let user_ok = req.username.as_deref().is_some_and(|u| self.is_our_user(u));
        if !user_ok || req.password.as_deref() != Some(self.credentials.password.as_str()) {
            return Err(invalid_grant("authentication failure"));
        }
        Ok(Grant { scope: DEFAULT_SCOPE, refresh_token: None })
    }

    fn client_credentials_grant(&self, req: &TokenRequest) -> Result<Grant, OAuthError> {
        let basic = req.authorization.as_deref().and_then(|h| {
            let (scheme, rest) = h.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
        });
        let (id, secret) = match basic {
            Some(encoded) => {
                let decoded = STANDARD.decode(encoded).ok().and_then(|b| String::from_utf8(b).ok());
                let (id, secret) = decoded.as_deref().and_then(|d| d.split_once(':')).ok_or_else(invalid_client)?;
                (Some(id.to_owned()), Some(secret.to_owned()))
            }
            None => (req.client_id.clone(), req.client_secret.clone()),
        };
        self.check_client(id.as_deref(), secret.as_deref(), true)?;
        Ok(Grant { scope: DEFAULT_SCOPE, refresh_token: None })
    }

    fn refresh_grant(&self, req: &TokenRequest) -> Result<Grant, OAuthError> {
        self.check_client(req.client_id.as_deref(), req.client_secret.as_deref(), false)?;
        if !req.refresh_token.as_deref().is_some_and(|t| self.store.is_refresh_token(t)) {
            return Err(invalid_grant("expired access/refresh token"));
        }
        // The new session carries the scopes the refresh token was granted with.
        Ok(Grant { scope: WEB_SERVER_SCOPE, refresh_token: None })
    }

    fn code_grant(&self, req: &TokenRequest, now_ms: i64) -> Result<Grant, OAuthError> {
        self.check_client(req.client_id.as_deref(), req.client_secret.as_deref(), true)?;
        let code = req.code.as_deref().ok_or_else(|| invalid_grant("invalid authorization code"))?;
        self.store.redeem_code(code, req.redirect_uri.as_deref(), now_ms)?;
        let refresh_token = Some(self.store.issue_refresh_token());
        Ok(Grant { scope: WEB_SERVER_SCOPE, refresh_token })
    }

    fn jwt_grant(&self, req: &TokenRequest, login_url: &str, now_ms: i64) -> Result<Grant, OAuthError> {
        let assertion = req.assertion.as_deref().ok_or_else(invalid_assertion)?;
        let (message, signature) = assertion.rsplit_once('.').ok_or_else(invalid_assertion)?;
        let (header, claims) = message.split_once('.').ok_or_else(invalid_assertion)?;
        let (header, claims) = (decode_segment(header)?, decode_segment(claims)?);
        if header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err(invalid_assertion());
        }
        // The consumer key names the app whose certificate verifies the signature,
        // so an unknown issuer is reported before the signature is looked at.
        if claims.get("iss").and_then(Value::as_str) != Some(self.credentials.client_id.as_str()) {
            return Err(invalid_client_id());
        }
        let key = self.jwt_key.as_ref().ok_or_else(invalid_assertion)?;
        let verified = jsonwebtoken::crypto::verify(signature, message.as_bytes(), key, Algorithm::RS256);
        if !matches!(verified, Ok(true)) {
            return Err(invalid_assertion());
        }
        let login = login_url.trim_end_matches('/');
        let audience_ok = |aud: &Value| {
            aud.as_str().map(|a| a.trim_end_matches('/')).is_some_and(|a| a == login || PUBLIC_AUDIENCES.contains(&a))
        };
        let aud_ok = match claims.get("aud") {
            Some(Value::Array(items)) => items.iter().any(audience_ok),
            Some(aud) => audience_ok(aud),
            None => false,
        };
        if !aud_ok {
            return Err(invalid_grant("audience is invalid"));
        }
        // Some clients (older simple-salesforce) send `exp` as a numeric string.
        let exp = match claims.get("exp") {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        let exp = exp.ok_or_else(invalid_assertion)?;
        if now_ms.div_euclid(1000) > exp.saturating_add(JWT_SKEW_SECONDS) {
            return Err(invalid_grant("expired authorization code"));
        }
        if !claims.get("sub").and_then(Value::as_str).is_some_and(|s| self.is_our_user(s)) {
            return Err(invalid_grant("user hasn't approved this consumer"));
        }
        Ok(Grant { scope: DEFAULT_SCOPE, refresh_token: None })
    }
}

fn decode_segment(segment: &str) -> Result<Value, OAuthError> {
    let bytes = URL_SAFE_NO_PAD.decode(segment.trim_end_matches('=')).map_err(|_| invalid_assertion())?;
    match serde_json::from_slice(&bytes) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(invalid_assertion()),
    }
}

/// `base64(HMAC-SHA256(key, data))`, the `signature` of token responses.
fn sign(key: &str, data: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(data.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
