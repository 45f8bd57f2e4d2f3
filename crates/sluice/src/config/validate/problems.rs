//! Where validation collects its problems ([`Ctx`]): each check records what is wrong
//! under its key and carries on, and [`Ctx::finish`] scrubs every secret value from the
//! messages before they leave.

use std::time::Duration;

use crate::config::raw::{RawSecret, SECRET_KEYS};
use crate::config::text::{format_duration, interpolate_as, is_valid_api_name, parse_duration};
use crate::config::types::ConfigError;
use crate::redact;

/// Seconds in a minute, an hour, a day: the units of [`Bounds`].
pub(super) const MINUTE: u64 = 60;
pub(super) const HOUR: u64 = 3_600;
pub(super) const DAY: u64 = 86_400;

/// The valid range of a duration key, in seconds.
#[derive(Clone, Copy)]
pub(super) struct Bounds {
    pub(super) min: u64,
    pub(super) max: u64,
}

/// Secret values shorter than this are not scrubbed from messages (a 1-character
/// password would garble every message); none is ever quoted in the first place.
const SCRUB_MIN_LEN: usize = 4;

pub(super) const NOT_API_NAME: &str = "is not a Salesforce API name (letters, digits and `_`, starting with a letter)";

/// A secret key's value that is not a string, named by its type only.
pub(super) fn not_text(ty: &str) -> String {
    format!("must be a string (got {ty}); quote it, e.g. \"${{ENV_VAR}}\"; its value is not shown because it is secret")
}

/// The names of `options`, quoted, for messages.
pub(super) fn names<T>(options: &[(&str, T)]) -> String {
    options.iter().map(|(n, _)| format!("{n:?}")).collect::<Vec<_>>().join(", ")
}

/// Where problems are collected while validating.
pub(super) struct Ctx<'a> {
    pub(super) file: &'a str,
    pub(super) env: &'a dyn Fn(&str) -> Option<String>,
    pub(super) errors: Vec<ConfigError>,
    /// Every secret value seen, as written and interpolated: scrubbed from every message.
    pub(super) secrets: Vec<String>,
}

impl Ctx<'_> {
    pub(super) fn err(&mut self, key: &str, message: impl Into<String>) {
        let message = redact::userinfo(&message.into()).into_owned();
        self.errors.push(ConfigError { file: self.file.to_owned(), key: key.to_owned(), message });
    }

    /// The problems, each message with every secret value (of [`SCRUB_MIN_LEN`] characters
    /// or more) replaced by `***`: no check quotes one, and this keeps it so.
    pub(super) fn finish(mut self) -> Vec<ConfigError> {
        self.secrets.retain(|s| s.chars().count() >= SCRUB_MIN_LEN);
        // Longest first, so a secret that contains another is replaced whole.
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for e in &mut self.errors {
            for secret in &self.secrets {
                if e.message.contains(secret.as_str()) {
                    e.message = e.message.replace(secret.as_str(), redact::MASK);
                }
            }
        }
        self.errors
    }

    /// The interpolated value, if given; `None` (with the problem recorded) if it fails.
    /// The problem quotes no part of a secret key's value.
    pub(super) fn text(&mut self, key: &str, value: Option<&String>) -> Option<String> {
        self.text_as(key, value, !SECRET_KEYS.contains(&key))
    }

    /// [`Ctx::text`], quoting an invalid variable reference only when `quote` (never for a
    /// secret).
    fn text_as(&mut self, key: &str, value: Option<&String>, quote: bool) -> Option<String> {
        match interpolate_as(value?, self.env, quote) {
            Ok(v) => Some(v),
            Err(m) => {
                self.err(key, m);
                None
            }
        }
    }

    /// Remembers a secret's value, to scrub it from every message: the interpolated
    /// value (a `${VAR}` reference is no secret), or the text as written when it does not
    /// interpolate.
    pub(super) fn remember(&mut self, value: Option<&RawSecret>) {
        if let Some(RawSecret::Text(text)) = value {
            self.secrets.push(interpolate_as(text, self.env, false).unwrap_or_else(|_| text.clone()));
        }
    }

    /// A secret key's interpolated value, if given; a value that is not a string is
    /// reported by its type alone.
    pub(super) fn secret(&mut self, key: &str, value: Option<&RawSecret>) -> Option<String> {
        self.remember(value);
        match value? {
            RawSecret::Text(text) => self.text_as(key, Some(text), false),
            RawSecret::NotText(ty) => {
                self.err(key, not_text(ty));
                None
            }
        }
    }

    /// [`Ctx::required`] for a secret key.
    pub(super) fn required_secret(&mut self, key: &str, value: Option<&RawSecret>, why: &str) -> String {
        self.remember(value);
        match value {
            Some(RawSecret::NotText(ty)) => {
                self.err(key, not_text(ty));
                String::new()
            }
            Some(RawSecret::Text(text)) => self.required_as(key, Some(text), why, false),
            None => self.required_as(key, None, why, false),
        }
    }

    /// A duration within `bounds`, if given; `None` (recorded) when it is not one or out
    /// of range. `note` follows the range in the message.
    pub(super) fn duration_in(
        &mut self,
        key: &str,
        value: Option<&String>,
        bounds: Bounds,
        note: &str,
    ) -> Option<Duration> {
        let v = self.text(key, value)?;
        let (min, max) = (Duration::from_secs(bounds.min), Duration::from_secs(bounds.max));
        let range = format!("expected {} to {}{note}", format_duration(min), format_duration(max));
        match parse_duration(&v) {
            Ok(d) if (min..=max).contains(&d) => Some(d),
            Ok(_) => {
                self.err(key, format!("{v:?} is out of range; {range}"));
                None
            }
            Err(m) => {
                self.err(key, format!("{v:?}: {m}; {range}"));
                None
            }
        }
    }

    /// An integer in `range`, `default` when absent or out of range (recorded); `note`
    /// follows the expected range in the message.
    pub(super) fn int_in(
        &mut self,
        key: &str,
        value: Option<i64>,
        range: std::ops::RangeInclusive<i64>,
        default: i64,
        note: &str,
    ) -> i64 {
        match value {
            None => default,
            Some(n) if range.contains(&n) => n,
            Some(n) => {
                self.err(key, format!("{n} is out of range; expected {} to {}{note}", range.start(), range.end()));
                default
            }
        }
    }

    /// A value that must be given and not empty; `why` says what it is for.
    pub(super) fn required(&mut self, key: &str, value: Option<&String>, why: &str) -> String {
        self.required_as(key, value, why, !SECRET_KEYS.contains(&key))
    }

    /// [`Ctx::required`], quoting an invalid variable reference only when `quote`.
    fn required_as(&mut self, key: &str, value: Option<&String>, why: &str, quote: bool) -> String {
        if value.is_none() {
            self.err(key, format!("missing; {why}"));
        }
        match self.text_as(key, value, quote) {
            Some(v) if v.trim().is_empty() => {
                self.err(key, format!("is empty; {why}"));
                String::new()
            }
            v => v.unwrap_or_default(),
        }
    }

    /// One of `options`, or `None` if absent or wrong (recorded).
    pub(super) fn choice<T: Copy>(&mut self, key: &str, value: Option<&String>, options: &[(&str, T)]) -> Option<T> {
        let v = self.text(key, value)?;
        let found = options.iter().find(|(n, _)| *n == v).map(|(_, t)| *t);
        if found.is_none() {
            self.err(key, format!("{v:?} is not valid; expected one of {}", names(options)));
        }
        found
    }

    /// A list of field names: valid API names, no duplicates (recorded).
    pub(super) fn names(&mut self, key: &str, list: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::with_capacity(list.len());
        for (i, raw) in list.iter().enumerate() {
            let Some(name) = self.text(&format!("{key}[{i}]"), Some(raw)) else { continue };
            if !is_valid_api_name(&name) {
                self.err(&format!("{key}[{i}]"), format!("{name:?} {NOT_API_NAME}"));
            } else if out.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
                self.err(&format!("{key}[{i}]"), format!("{name:?} is listed twice"));
            } else {
                out.push(name);
            }
        }
        out
    }
}
