//! `[destination]`: the keys every type shares (`type`, `naming`; `mask_salt` is checked
//! with the flows that need it), then the type's own keys, checked by the
//! [`DestinationKind`] that `type` names, through [`DestinationKeys`]. Keys the type does
//! not take are errors, naming the type that takes them if one does. Every problem is
//! recorded (see [`super`]).

use std::sync::Arc;
use std::time::Duration;

use super::problems::{Bounds, Ctx, not_text};
use crate::config::destination::{DestinationConfig, DestinationSettings};
use crate::config::raw::{RawDestination, RawSecret, SECRET_KEYS, toml_type};
use crate::model::Naming;
use crate::redact;
use crate::source::salesforce::soql::is_api_name;

/// One `[destination] type`: its name, its keys, and the pure check of them.
pub trait DestinationKind: Sync {
    /// The value of `type` (`"duckdb"`).
    fn name(&self) -> &'static str;

    /// The keys this type takes besides `type`, `naming` and `mask_salt`, which every
    /// type takes. A key set that this type does not take is an error naming the type
    /// that does, if any.
    fn keys(&self) -> &'static [&'static str];

    /// What messages say this type uses (`"path and schema"`).
    fn uses(&self) -> &'static str;

    /// Checks the keys (every problem recorded through `keys`) and returns the settings,
    /// or `None` when they cannot be used.
    fn settings(&self, keys: &mut DestinationKeys<'_, '_>) -> Option<Box<dyn DestinationSettings>>;
}

/// `[destination]`, or `None` (with the problems recorded) when it cannot be used.
pub(super) fn destination(
    cx: &mut Ctx<'_>,
    raw: Option<&RawDestination>,
    kinds: &[&dyn DestinationKind],
) -> Option<DestinationConfig> {
    let Some(raw) = raw else {
        cx.err("destination", "missing [destination] table; e.g. type = \"files\", path = \"data\"");
        return None;
    };
    for (key, value) in &raw.keys.0 {
        if is_secret(key) {
            cx.remember(Some(&as_secret(value)));
        }
    }
    cx.remember(raw.mask_salt.as_ref());
    let types: Vec<String> = kinds.iter().map(|k| format!("{:?}", k.name())).collect();
    let types = types.join(", ");
    let written = cx.text("destination.type", raw.kind.as_ref());
    let naming = cx
        .choice(
            "destination.naming",
            raw.naming.as_ref(),
            &[("snake_case", Naming::SnakeCase), ("original", Naming::Original)],
        )
        .unwrap_or_default();
    let Some(written) = written else {
        if raw.kind.is_none() {
            cx.err("destination.type", format!("missing; valid: {types}"));
        }
        return None;
    };
    let Some(kind) = kinds.iter().find(|k| k.name() == written) else {
        cx.err("destination.type", format!("{written:?} is not a destination type; valid: {types}"));
        return None;
    };
    unused(cx, raw, *kind, kinds);
    let mut keys = DestinationKeys { cx, raw, naming };
    let settings = kind.settings(&mut keys)?;
    Some(DestinationConfig { kind: kind.name(), naming, settings: Arc::from(settings) })
}

/// Records every key set that `kind` does not take.
fn unused(cx: &mut Ctx<'_>, raw: &RawDestination, kind: &dyn DestinationKind, kinds: &[&dyn DestinationKind]) {
    for key in raw.keys.0.keys().filter(|k| !kind.keys().contains(&k.as_str())) {
        let known = kinds.iter().any(|k| k.keys().contains(&key.as_str()));
        let message = if known {
            format!("is not used by type = {:?} (it uses {})", kind.name(), kind.uses())
        } else {
            format!(
                "is not a [destination] key; type = {:?} takes {}, naming and mask_salt",
                kind.name(),
                kind.keys().join(", ")
            )
        };
        cx.err(&format!("destination.{key}"), message);
    }
}

/// Whether `destination.<key>` is secret.
fn is_secret(key: &str) -> bool {
    SECRET_KEYS.iter().any(|k| k.strip_prefix("destination.") == Some(key))
}

/// A value as a secret key holds it: its text, or only its type.
fn as_secret(value: &toml::Value) -> RawSecret {
    match value {
        toml::Value::String(s) => RawSecret::Text(s.clone()),
        other => RawSecret::NotText(toml_type(other)),
    }
}

/// What a [`DestinationKind`] reads its keys through: each key's value, interpolated and
/// checked, with problems recorded under `destination.<key>` and secrets never quoted.
pub struct DestinationKeys<'c, 'a> {
    cx: &'c mut Ctx<'a>,
    raw: &'c RawDestination,
    naming: Naming,
}

impl DestinationKeys<'_, '_> {
    /// `destination.naming`, checked already.
    pub fn naming(&self) -> Naming {
        self.naming
    }

    /// Records a problem with `destination.<key>`.
    pub fn err(&mut self, key: &str, message: impl Into<String>) {
        self.cx.err(&format!("destination.{key}"), message);
    }

    /// Whether `key` is written.
    pub fn is_set(&self, key: &str) -> bool {
        self.raw.keys.0.contains_key(key)
    }

    /// The key's value as written, when it is a string; a problem recorded when it is not.
    fn written(&mut self, key: &str) -> Option<String> {
        match self.raw.keys.0.get(key)? {
            toml::Value::String(s) => Some(s.clone()),
            other if is_secret(key) => {
                self.err(key, not_text(toml_type(other)));
                None
            }
            other => {
                self.err(key, format!("must be a string (got {})", toml_type(other)));
                None
            }
        }
    }

    /// The key's interpolated value, if written.
    pub fn text(&mut self, key: &str) -> Option<String> {
        let written = self.written(key)?;
        self.cx.text(&format!("destination.{key}"), Some(&written))
    }

    /// A value that must be written and not empty; `why` says what it is for.
    pub fn required(&mut self, key: &str, why: &str) -> String {
        let written = self.written(key);
        if written.is_none() && self.is_set(key) {
            return String::new(); // not a string: recorded by `written`
        }
        self.cx.required(&format!("destination.{key}"), written.as_ref(), why)
    }

    /// [`Self::required`] for a secret key: no message quotes its value.
    pub fn required_secret(&mut self, key: &str, why: &str) -> String {
        let value = self.raw.keys.0.get(key).map(as_secret);
        self.cx.required_secret(&format!("destination.{key}"), value.as_ref(), why)
    }

    /// `true` or `false`, if written; a problem recorded when it is anything else.
    pub fn flag(&mut self, key: &str) -> Option<bool> {
        match self.raw.keys.0.get(key)? {
            toml::Value::Boolean(b) => Some(*b),
            other => {
                self.err(key, format!("must be true or false (got {})", toml_type(other)));
                None
            }
        }
    }

    /// One of `options`, or `None` if absent or wrong (recorded).
    pub fn choice<T: Copy>(&mut self, key: &str, options: &[(&str, T)]) -> Option<T> {
        let written = self.written(key)?;
        self.cx.choice(&format!("destination.{key}"), Some(&written), options)
    }

    /// A duration from `min` to `max`, if written; `note` follows the range in messages.
    pub fn duration_in(&mut self, key: &str, min: Duration, max: Duration, note: &str) -> Option<Duration> {
        let written = self.written(key)?;
        let bounds = Bounds { min: min.as_secs(), max: max.as_secs() };
        self.cx.duration_in(&format!("destination.{key}"), Some(&written), bounds, note)
    }

    /// `schema` of a warehouse: `salesforce` unless set.
    pub fn warehouse_schema(&mut self) -> String {
        let schema = self.text("schema").unwrap_or_else(|| "salesforce".into());
        if !is_api_name(&schema) {
            self.err(
                "schema",
                format!(
                    "{schema:?} is not a usable schema name; use letters, digits and `_`, not starting with a digit \
                     or `_sluice`"
                ),
            );
        }
        schema
    }
}

/// A URL as an error quotes it: redacted ([`redact::userinfo`]); not at all when it holds
/// an `@` but no `://`, so that its user-info, if that is what it is, cannot be told apart.
pub fn quoted_url(url: &str) -> String {
    if url.contains('@') && !url.contains("://") {
        "the value (not shown: it holds an `@`, perhaps credentials)".to_owned()
    } else {
        format!("{:?}", redact::userinfo(url))
    }
}
