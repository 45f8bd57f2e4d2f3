//! The configuration file as written ([`RawConfig`]): serde's view of DESIGN "Config",
//! unknown keys refused, every value still unchecked. [`super::validate`] turns it into a
//! [`super::Config`]. The keys of `[destination]` that depend on its type are kept as
//! written ([`RawKeys`]) for that type to read and refuse ([`super::DestinationKind`]).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// The keys whose values are secret: read as [`RawSecret`], held as [`Secret`], never
/// quoted in a message.
pub const SECRET_KEYS: [&str; 7] = [
    "source.client_secret",
    "source.password",
    "source.refresh_token",
    "destination.url",
    "destination.mask_salt",
    "serve.token",
    "serve.notify_url",
];

/// The file as written: the shape of DESIGN "Config". Unknown keys are errors.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[source]`.
    pub source: Option<RawSource>,
    /// `[destination]`.
    pub destination: Option<RawDestination>,
    /// `[serve]`: the always-on service (`sluice serve`).
    pub serve: Option<RawServe>,
    /// `[defaults]`: settings every flow inherits.
    #[serde(default)]
    pub defaults: RawSettings,
    /// `[[flows]]`.
    #[serde(default)]
    pub flows: Vec<RawFlow>,
}

/// `[source]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // the keys are documented in DESIGN "Config" and sample.toml
pub struct RawSource {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub login_url: Option<String>,
    pub auth: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<RawSecret>,
    pub username: Option<String>,
    pub password: Option<RawSecret>,
    pub refresh_token: Option<RawSecret>,
    pub private_key_file: Option<String>,
    pub api_version: Option<String>,
    pub api: Option<String>,
    pub ca_file: Option<String>,
    pub api_budget_percent: Option<i64>,
    pub max_parallel_flows: Option<i64>,
    pub connect_timeout: Option<String>,
    pub read_timeout: Option<String>,
    pub bulk_timeout: Option<String>,
}

/// `[serve]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // the keys are documented in DESIGN "Config" and sample.toml
pub struct RawServe {
    pub listen: Option<String>,
    pub token: Option<RawSecret>,
    pub shutdown_grace: Option<String>,
    pub lease_timeout: Option<String>,
    pub notify_url: Option<RawSecret>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
}

/// `[destination]` as written: the keys every type takes, typed, and the rest as
/// [`RawKeys`], which the destination type named by `type` reads (and any it does not
/// take are errors; see [`super::DestinationKind`]).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawDestination {
    /// `type`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `naming`.
    pub naming: Option<String>,
    /// `mask_salt` (secret).
    pub mask_salt: Option<RawSecret>,
    /// Every other key.
    #[serde(flatten)]
    pub keys: RawKeys,
}

/// The type-specific keys of `[destination]` as written. Its `Debug` shows each key with
/// its value's TOML type only, so that a secret among them (`url`) never prints.
#[derive(Clone, Default, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct RawKeys(pub BTreeMap<String, toml::Value>);

impl fmt::Debug for RawKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter().map(|(k, v)| (k, toml_type(v)))).finish()
    }
}

/// A TOML value's type as messages name it: "a string", "an integer", ...
pub fn toml_type(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date-time",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

/// The value of a secret key as written: its text, or, for a value that is not a string,
/// only the name of its TOML type, so that no message can quote it. Its `Debug` prints
/// `***` (or the type).
#[derive(Clone, PartialEq, Eq)]
pub enum RawSecret {
    /// A string, before `${VAR}` interpolation.
    Text(String),
    /// Another TOML value, known only by its type: "an integer", "a table", ...
    NotText(&'static str),
}

impl fmt::Debug for RawSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawSecret::Text(_) => f.write_str("***"),
            RawSecret::NotText(ty) => write!(f, "<{ty}>"),
        }
    }
}

impl From<&str> for RawSecret {
    fn from(text: &str) -> Self {
        RawSecret::Text(text.to_owned())
    }
}

impl<'de> Deserialize<'de> for RawSecret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawSecretVisitor)
    }
}

/// Takes any value; keeps the text of a string and only the type of anything else.
struct RawSecretVisitor;

impl<'de> serde::de::Visitor<'de> for RawSecretVisitor {
    type Value = RawSecret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawSecret, E> {
        Ok(RawSecret::Text(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<RawSecret, E> {
        Ok(RawSecret::Text(v))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<RawSecret, E> {
        Ok(RawSecret::NotText("a boolean"))
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<RawSecret, E> {
        Ok(RawSecret::NotText("an integer"))
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<RawSecret, E> {
        Ok(RawSecret::NotText("an integer"))
    }

    fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<RawSecret, E> {
        Ok(RawSecret::NotText("an integer"))
    }

    fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<RawSecret, E> {
        Ok(RawSecret::NotText("an integer"))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<RawSecret, E> {
        Ok(RawSecret::NotText("a float"))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<RawSecret, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(RawSecret::NotText("an array"))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<RawSecret, A::Error> {
        // The toml crate hands a date-time over as a map with one private key.
        let mut ty = "a table";
        while let Some(key) = map.next_key::<String>()? {
            if key.starts_with("$__toml_private") {
                ty = "a date-time";
            }
            map.next_value::<serde::de::IgnoredAny>()?;
        }
        Ok(RawSecret::NotText(ty))
    }
}

/// `[defaults]` as written; also the overridable part of a flow.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawSettings {
    pub mode: Option<String>,
    pub deletes: Option<String>,
    pub history: Option<bool>,
    pub lookback: Option<String>,
    pub lag: Option<String>,
    pub reconcile_every: Option<String>,
    pub formula_refresh_every: Option<String>,
    pub slice: Option<String>,
    pub max_delete_ratio: Option<f64>,
    pub write: Option<String>,
    pub every: Option<String>,
    pub cron: Option<String>,
    pub timezone: Option<String>,
    pub full_refresh_every: Option<String>,
    pub pause_after_failures: Option<i64>,
}

/// One `[[flows]]` entry as written. The settings keys repeat [`RawSettings`] because
/// serde cannot combine `flatten` with `deny_unknown_fields`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawFlow {
    pub object: Option<String>,
    pub fields: Option<Vec<String>>,
    pub exclude: Option<Vec<String>>,
    #[serde(rename = "where")]
    pub filter: Option<String>,
    pub mask: Option<Vec<String>>,
    pub rename: Option<std::collections::BTreeMap<String, String>>,
    pub api: Option<String>,
    pub mode: Option<String>,
    pub deletes: Option<String>,
    pub history: Option<bool>,
    pub lookback: Option<String>,
    pub lag: Option<String>,
    pub reconcile_every: Option<String>,
    pub formula_refresh_every: Option<String>,
    pub slice: Option<String>,
    pub max_delete_ratio: Option<f64>,
    pub write: Option<String>,
    pub every: Option<String>,
    pub cron: Option<String>,
    pub timezone: Option<String>,
    pub full_refresh_every: Option<String>,
    pub pause_after_failures: Option<i64>,
}

impl RawFlow {
    /// The flow's overrides of `[defaults]`.
    pub fn settings(&self) -> RawSettings {
        RawSettings {
            mode: self.mode.clone(),
            deletes: self.deletes.clone(),
            history: self.history,
            lookback: self.lookback.clone(),
            lag: self.lag.clone(),
            reconcile_every: self.reconcile_every.clone(),
            formula_refresh_every: self.formula_refresh_every.clone(),
            slice: self.slice.clone(),
            max_delete_ratio: self.max_delete_ratio,
            write: self.write.clone(),
            every: self.every.clone(),
            cron: self.cron.clone(),
            timezone: self.timezone.clone(),
            full_refresh_every: self.full_refresh_every.clone(),
            pause_after_failures: self.pause_after_failures,
        }
    }
}
