//! Configuration: TOML → [`RawConfig`] (serde, unknown keys refused) → [`validate`] →
//! [`Config`].
//!
//! Validation is pure: the environment comes in as a function, nothing is read from disk
//! or the network, and it reports every problem at once, each naming the file, the key
//! path (`flows[2].lookback`) and what would be valid. Values are interpolated with
//! `${ENV_VAR}` (`$${` is a literal `${`); a missing variable is an error naming the
//! variable.
//!
//! Secrets never show. The secret keys ([`SECRET_KEYS`]) are read as [`RawSecret`], which
//! accepts any TOML value, so a value of the wrong type is reported by its type alone
//! (serde would quote it: "invalid type: integer `12345`"); validated, they are held as
//! [`Secret`], which prints as `***`. No message quotes a secret key's value, not even
//! part of it: interpolation errors of secret keys name no invalid variable, and as a
//! last line of defence every message has each secret value (of 4 characters or more)
//! replaced by `***` and the user-info of every URL in it redacted ([`crate::redact`]).
//!
//! Durations and sizes are bounded: each key has a valid range, named in its error.
//! Keys that would have no effect where they are written are errors too (the files
//! destination's merge settings, `lookback` and `reconcile_every` of `mode = "full"`,
//! a `mask_salt` nothing is masked with), and so are two flows whose tables would collide.
//!
//! Enumerations (`auth`, `api`, `mode`, ...) are strings in [`RawConfig`] and checked in
//! [`validate`], so that a wrong value is reported together with every other problem
//! instead of stopping the parse at the first one.

use crate::error::Error;

mod destination;
mod raw;
mod text;
mod types;
mod validate;

pub use destination::{Consolidation, DestinationConfig, DestinationSettings, NameRules, SameAs};
pub use raw::{RawConfig, RawDestination, RawFlow, RawKeys, RawSecret, RawServe, RawSettings, RawSource, SECRET_KEYS};
pub use text::{MAX_DURATION, check_where, format_duration, interpolate, is_valid_api_name, parse_duration};
pub use types::{
    Api, Auth, Cadence, Config, ConfigError, DEFAULT_API_VERSION, DEFAULT_BULK_TIMEOUT, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_EVERY, DEFAULT_FULL_REFRESH_EVERY, DEFAULT_LEASE_TIMEOUT, DEFAULT_LISTEN, DEFAULT_PAUSE_AFTER_FAILURES,
    DEFAULT_READ_TIMEOUT, DEFAULT_SHUTDOWN_GRACE, Deletes, FlowConfig, FlowSettings, Mode, SalesforceConfig, Schedule,
    Secret, ServeConfig, ServeTls, WriteMode,
};
pub use validate::{DestinationKeys, DestinationKind, quoted_url, validate};

/// The commented sample configuration that `sluice init` writes.
pub const SAMPLE: &str = include_str!("sample.toml");

/// Parses TOML text. A syntax error, an unknown key or a value of the wrong TOML type
/// stops here, with the line and column; every other check is [`validate`]'s.
pub fn parse(text: &str, origin: &str) -> Result<RawConfig, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let at = e.span().map(|s| line_col(text, s.start));
        let key = at.map_or_else(|| "-".to_owned(), |(l, c)| format!("line {l}, column {c}"));
        // toml quotes no string value in its messages, and every secret key takes any
        // value; redacting URL user-info is the last line of defence.
        let message = crate::redact::userinfo(e.message().trim()).into_owned();
        ConfigError { file: origin.to_owned(), key, message }
    })
}

/// [`parse`] then [`validate`], with `kinds` the destination types `type` may name
/// (`sluice::load_config` passes every type sluice has).
pub fn load(
    text: &str,
    origin: &str,
    env: &dyn Fn(&str) -> Option<String>,
    kinds: &[&dyn DestinationKind],
) -> Result<Config, Vec<ConfigError>> {
    validate(parse(text, origin).map_err(|e| vec![e])?, origin, env, kinds)
}

/// All problems as one user error, one per line (for callers that need an [`Error`]).
pub fn into_error(errors: &[ConfigError]) -> Error {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    Error::user(lines.join("\n"))
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(before.len(), |i| before.len() - i - 1) + 1;
    (line, col)
}

#[cfg(test)]
mod serve_tests;
#[cfg(test)]
mod tests;
