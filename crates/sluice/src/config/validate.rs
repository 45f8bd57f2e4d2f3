//! [`validate`]: [`RawConfig`] → [`Config`], pure, every problem at once.
//!
//! Each check records its problem and carries on with a placeholder value, so one run
//! finds everything; any recorded problem makes the result `Err`. Secret keys are never
//! quoted, only named, and every message is scrubbed of secret values and URL user-info
//! before it is returned (see the [`super`] docs).
//!
//! `[destination]` is checked in [`destination`], its type's keys by that type. Beyond each key's own
//! value, the config as a whole is checked: keys that would have no effect where they are
//! written ([`no_effect`]) and flows whose tables would collide ([`collisions`]).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::PathBuf;
use std::time::Duration;

use super::raw::{RawConfig, RawSecret, RawSettings, RawSource};
use super::text::{check_where, is_http_url, is_valid_api_name};
use super::types::{
    Api, Auth, Config, ConfigError, DEFAULT_API_VERSION, DEFAULT_BULK_TIMEOUT, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT, Deletes, FlowConfig, FlowSettings, Mode, SalesforceConfig, Secret, WriteMode,
};
use crate::redact;

mod destination;
mod problems;
mod serve;
mod whole;
use destination::destination;
pub use destination::{DestinationKeys, DestinationKind, quoted_url};
use problems::{Bounds, Ctx, DAY, HOUR, MINUTE, NOT_API_NAME, names};
use whole::{collisions, no_effect};

use super::types::Schedule;

const LAG: Bounds = Bounds { min: 0, max: DAY };
const LOOKBACK: Bounds = Bounds { min: 0, max: 7 * DAY };
const RECONCILE_EVERY: Bounds = Bounds { min: MINUTE, max: 365 * DAY };
const FORMULA_REFRESH_EVERY: Bounds = Bounds { min: 1, max: 365 * DAY };
const SLICE: Bounds = Bounds { min: MINUTE, max: 3650 * DAY };
const CONNECT_TIMEOUT: Bounds = Bounds { min: 1, max: 5 * MINUTE };
const READ_TIMEOUT: Bounds = Bounds { min: 1, max: HOUR };
const BULK_TIMEOUT: Bounds = Bounds { min: MINUTE, max: DAY };

/// Checks `raw` (read from `origin`) and builds the [`Config`], or returns every problem.
/// `env` resolves `${VAR}`; pass `&|k| std::env::var(k).ok()` in the binary and a map in
/// tests. `kinds` are the destination types `[destination] type` may name (the
/// pipeline's list: `sluice::pipeline::connect::DESTINATIONS`).
pub fn validate(
    raw: RawConfig,
    origin: &str,
    env: &dyn Fn(&str) -> Option<String>,
    kinds: &[&dyn DestinationKind],
) -> Result<Config, Vec<ConfigError>> {
    let mut cx = Ctx { file: origin, env, errors: Vec::new(), secrets: Vec::new() };
    let source = source(&mut cx, raw.source.as_ref());
    let destination = destination(&mut cx, raw.destination.as_ref(), kinds);
    let serve = serve::serve(&mut cx, raw.serve.as_ref());
    let base = settings(&mut cx, "defaults", &raw.defaults, &FlowSettings::default());
    let base_schedule = serve::schedule(&mut cx, "defaults", &raw.defaults, &Schedule::default());
    let default_api = source.as_ref().map_or(Api::Auto, |s| s.api);
    if raw.flows.is_empty() {
        cx.err("flows", "no [[flows]]: add one per object, e.g. [[flows]] object = \"Account\"");
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut flows = Vec::with_capacity(raw.flows.len());
    // Which flows name a valid object of their own (the ones whose tables are compared).
    let mut named = Vec::with_capacity(raw.flows.len());
    for (i, f) in raw.flows.iter().enumerate() {
        let key = format!("flows[{i}]");
        let object = cx.required(&format!("{key}.object"), f.object.as_ref(), "the Salesforce object to replicate");
        let mut own = false;
        if !object.is_empty() {
            if !is_valid_api_name(&object) {
                cx.err(&format!("{key}.object"), format!("{object:?} {NOT_API_NAME}"));
            } else {
                match seen.entry(object.to_ascii_lowercase()) {
                    Entry::Occupied(first) => cx.err(
                        &format!("{key}.object"),
                        format!("{object:?} already has a flow (flows[{}]); one flow per object", first.get()),
                    ),
                    Entry::Vacant(slot) => {
                        slot.insert(i);
                        own = true;
                    }
                }
            }
        }
        named.push(own);
        let fields = f.fields.as_ref().map(|l| cx.names(&format!("{key}.fields"), l));
        if f.fields.as_ref().is_some_and(Vec::is_empty) {
            cx.err(&format!("{key}.fields"), "an empty list selects nothing; leave `fields` out to read every field");
        }
        let exclude = f.exclude.as_ref().map(|l| cx.names(&format!("{key}.exclude"), l)).unwrap_or_default();
        if fields.is_some() && f.exclude.is_some() {
            cx.err(&format!("{key}.exclude"), "use either `fields` or `exclude`, not both");
        }
        let mask = f.mask.as_ref().map(|l| cx.names(&format!("{key}.mask"), l)).unwrap_or_default();
        for (list, what) in [(&exclude, "exclude"), (&mask, "mask")] {
            if list.iter().any(|n| n.eq_ignore_ascii_case("Id")) {
                cx.err(&format!("{key}.{what}"), "cannot include Id: it is the record key every table is merged on");
            }
        }
        let rename = renames(&mut cx, &key, f.rename.as_ref());
        let filter = cx.text(&format!("{key}.where"), f.filter.as_ref()).map(|w| w.trim().to_owned());
        if let Some(w) = &filter {
            if w.is_empty() {
                cx.err(&format!("{key}.where"), "is empty; leave it out to read every row");
            } else if let Err(m) = check_where(w) {
                cx.err(&format!("{key}.where"), m);
            }
        }
        let api = cx.choice(&format!("{key}.api"), f.api.as_ref(), APIS).unwrap_or(default_api);
        let own_settings = f.settings();
        let settings = settings(&mut cx, &key, &own_settings, &base);
        let schedule = serve::schedule(&mut cx, &key, &own_settings, &base_schedule);
        flows.push(FlowConfig { object, fields, exclude, filter, mask, rename, api, settings, schedule });
    }
    let written_salt = raw.destination.as_ref().and_then(|d| d.mask_salt.as_ref());
    let mask_salt = cx.secret("destination.mask_salt", written_salt);
    if mask_salt.as_deref().is_some_and(str::is_empty) {
        cx.err("destination.mask_salt", "is empty; use a long random secret, e.g. \"${SLUICE_MASK_SALT}\"");
    }
    // As written: a `mask` whose names are all invalid (reported) still wants a salt.
    let masking = raw.flows.iter().position(|f| f.mask.as_ref().is_some_and(|m| !m.is_empty()));
    match (written_salt, masking) {
        (None, Some(i)) => cx.err(
            "destination.mask_salt",
            format!("is required because flows[{i}] masks fields; set it to a secret, e.g. \"${{SLUICE_MASK_SALT}}\""),
        ),
        (Some(_), None) if !flows.is_empty() => cx.err(
            "destination.mask_salt",
            "has no effect: no flow masks a field; remove it, or list fields to store as salted hashes in a flow's \
             `mask`",
        ),
        _ => {}
    }
    if let Some(destination) = &destination {
        no_effect(&mut cx, &raw, &flows, destination);
        collisions(&mut cx, &flows, &named, destination);
    }
    serve::schedule_no_effect(&mut cx, &raw, &flows);
    match (source, destination) {
        (Some(source), Some(destination)) if cx.errors.is_empty() => Ok(Config {
            origin: origin.to_owned(),
            source,
            destination,
            flows,
            mask_salt: mask_salt.map(Secret::new),
            serve,
        }),
        _ => Err(cx.finish()),
    }
}

const APIS: &[(&str, Api)] = &[("rest", Api::Rest), ("bulk", Api::Bulk), ("auto", Api::Auto)];

/// The auth flows and the credential keys each needs (`client_secret` is optional for
/// `refresh_token`, whose connected app may not require it).
#[derive(Clone, Copy, PartialEq)]
enum AuthKind {
    Password,
    ClientCredentials,
    RefreshToken,
    Jwt,
}

const AUTHS: &[(&str, AuthKind)] = &[
    ("password", AuthKind::Password),
    ("client_credentials", AuthKind::ClientCredentials),
    ("refresh_token", AuthKind::RefreshToken),
    ("jwt", AuthKind::Jwt),
];

impl AuthKind {
    fn needs(self) -> &'static [&'static str] {
        match self {
            AuthKind::Password => &["client_id", "client_secret", "username", "password"],
            AuthKind::ClientCredentials => &["client_id", "client_secret"],
            AuthKind::RefreshToken => &["client_id", "refresh_token"],
            AuthKind::Jwt => &["client_id", "username", "private_key_file"],
        }
    }

    fn allows(self, key: &str) -> bool {
        self.needs().contains(&key) || (self == AuthKind::RefreshToken && key == "client_secret")
    }

    fn name(self) -> &'static str {
        AUTHS.iter().find(|(_, k)| *k == self).map_or("?", |(n, _)| n)
    }
}

fn source(cx: &mut Ctx<'_>, raw: Option<&RawSource>) -> Option<SalesforceConfig> {
    let Some(raw) = raw else {
        cx.err("source", "missing [source] table; see `sluice init` for a sample");
        return None;
    };
    if raw.kind.is_none() {
        cx.err("source.type", "missing; expected \"salesforce\"");
    }
    cx.choice("source.type", raw.kind.as_ref(), &[("salesforce", ())]);
    let login_url = cx.required("source.login_url", raw.login_url.as_ref(), "e.g. \"https://login.salesforce.com\"");
    let login_url = login_url.trim_end_matches('/').to_owned();
    if !login_url.is_empty() && !is_http_url(&login_url) {
        cx.err("source.login_url", format!("{} is not an http:// or https:// URL with a host", quoted_url(&login_url)));
    } else if redact::has_userinfo(&login_url) {
        cx.err(
            "source.login_url",
            format!(
                "{:?} holds credentials (before the `@`); remove them: they belong in source.username and \
                 source.password (or client_id and client_secret), never in the URL",
                redact::userinfo(&login_url)
            ),
        );
    }
    if raw.auth.is_none() {
        cx.err("source.auth", format!("missing; expected one of {}", names(AUTHS)));
    }
    let kind = cx.choice("source.auth", raw.auth.as_ref(), AUTHS);
    // Scrubbed from every message, whether the auth uses them or not.
    for value in [&raw.client_secret, &raw.password, &raw.refresh_token] {
        cx.remember(value.as_ref());
    }
    let credentials = [
        ("client_id", raw.client_id.is_some()),
        ("client_secret", raw.client_secret.is_some()),
        ("username", raw.username.is_some()),
        ("password", raw.password.is_some()),
        ("refresh_token", raw.refresh_token.is_some()),
        ("private_key_file", raw.private_key_file.is_some()),
    ];
    if let Some(kind) = kind {
        for (key, set) in credentials {
            if set && !kind.allows(key) {
                cx.err(
                    &format!("source.{key}"),
                    format!("is not used by auth = {:?} (it needs {})", kind.name(), kind.needs().join(", ")),
                );
            }
        }
    }
    let why = format!("auth = {:?} needs it", kind.map_or("?", AuthKind::name));
    let plain = |cx: &mut Ctx<'_>, key: &str, value: &Option<String>| {
        cx.required(&format!("source.{key}"), value.as_ref(), &why)
    };
    let secret = |cx: &mut Ctx<'_>, key: &str, value: &Option<RawSecret>| {
        Secret::new(cx.required_secret(&format!("source.{key}"), value.as_ref(), &why))
    };
    let auth = kind.map(|kind| match kind {
        AuthKind::Password => Auth::Password {
            client_id: plain(cx, "client_id", &raw.client_id),
            client_secret: secret(cx, "client_secret", &raw.client_secret),
            username: plain(cx, "username", &raw.username),
            password: secret(cx, "password", &raw.password),
        },
        AuthKind::ClientCredentials => Auth::ClientCredentials {
            client_id: plain(cx, "client_id", &raw.client_id),
            client_secret: secret(cx, "client_secret", &raw.client_secret),
        },
        AuthKind::RefreshToken => Auth::RefreshToken {
            client_id: plain(cx, "client_id", &raw.client_id),
            client_secret: raw.client_secret.as_ref().map(|_| secret(cx, "client_secret", &raw.client_secret)),
            refresh_token: secret(cx, "refresh_token", &raw.refresh_token),
        },
        AuthKind::Jwt => Auth::Jwt {
            client_id: plain(cx, "client_id", &raw.client_id),
            username: plain(cx, "username", &raw.username),
            private_key_file: PathBuf::from(plain(cx, "private_key_file", &raw.private_key_file)),
        },
    });

    let api_version =
        cx.text("source.api_version", raw.api_version.as_ref()).unwrap_or_else(|| DEFAULT_API_VERSION.into());
    if !is_api_version(&api_version) {
        cx.err("source.api_version", format!("{api_version:?} is not an API version; expected like \"62.0\""));
    }
    let api = cx.choice("source.api", raw.api.as_ref(), APIS).unwrap_or(Api::Auto);
    let ca_file = cx.text("source.ca_file", raw.ca_file.as_ref()).map(PathBuf::from);
    let api_budget_percent = cx.int_in(
        "source.api_budget_percent",
        raw.api_budget_percent,
        1..=100,
        80,
        " (percent of the daily API limit)",
    ) as u8;
    let max_parallel_flows = cx.int_in("source.max_parallel_flows", raw.max_parallel_flows, 1..=16, 2, "") as usize;
    let connect_timeout = cx
        .duration_in("source.connect_timeout", raw.connect_timeout.as_ref(), CONNECT_TIMEOUT, "")
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let read_timeout = cx
        .duration_in("source.read_timeout", raw.read_timeout.as_ref(), READ_TIMEOUT, "")
        .unwrap_or(DEFAULT_READ_TIMEOUT);
    let bulk_timeout = cx
        .duration_in("source.bulk_timeout", raw.bulk_timeout.as_ref(), BULK_TIMEOUT, "")
        .unwrap_or(DEFAULT_BULK_TIMEOUT);
    Some(SalesforceConfig {
        login_url,
        auth: auth?,
        api_version,
        api,
        ca_file,
        api_budget_percent,
        max_parallel_flows,
        connect_timeout,
        read_timeout,
        bulk_timeout,
    })
}

/// `[defaults]` or a flow's overrides on top of `base`.
fn settings(cx: &mut Ctx<'_>, prefix: &str, raw: &RawSettings, base: &FlowSettings) -> FlowSettings {
    let key = |k: &str| format!("{prefix}.{k}");
    let mode = cx.choice(&key("mode"), raw.mode.as_ref(), &[("incremental", Mode::Incremental), ("full", Mode::Full)]);
    let deletes = cx.choice(&key("deletes"), raw.deletes.as_ref(), &[("soft", Deletes::Soft), ("hard", Deletes::Hard)]);
    let write =
        cx.choice(&key("write"), raw.write.as_ref(), &[("merge", WriteMode::Merge), ("append", WriteMode::Append)]);
    let lookback = cx.duration_in(&key("lookback"), raw.lookback.as_ref(), LOOKBACK, "");
    let lag = cx.duration_in(&key("lag"), raw.lag.as_ref(), LAG, "");
    let reconcile_every = every_or_never(
        cx,
        &key("reconcile_every"),
        raw.reconcile_every.as_ref(),
        base.reconcile_every,
        RECONCILE_EVERY,
        "reconciliation",
    );
    let formula_refresh_every = every_or_never(
        cx,
        &key("formula_refresh_every"),
        raw.formula_refresh_every.as_ref(),
        base.formula_refresh_every,
        FORMULA_REFRESH_EVERY,
        "formula refresh",
    );
    let slice = match raw.slice.as_ref() {
        None => base.slice,
        Some(written) => {
            cx.duration_in(&key("slice"), Some(written), SLICE, " (leave it out to not slice windows)").or(base.slice)
        }
    };
    let max_delete_ratio = match raw.max_delete_ratio {
        Some(r) if r > 0.0 && r <= 1.0 => r,
        Some(r) => {
            cx.err(&key("max_delete_ratio"), format!("{r} is out of range; expected more than 0 and at most 1"));
            base.max_delete_ratio
        }
        None => base.max_delete_ratio,
    };
    FlowSettings {
        mode: mode.unwrap_or(base.mode),
        deletes: deletes.unwrap_or(base.deletes),
        history: raw.history.unwrap_or(base.history),
        lookback: lookback.unwrap_or(base.lookback),
        lag: lag.unwrap_or(base.lag),
        reconcile_every,
        formula_refresh_every,
        slice,
        max_delete_ratio,
        write: write.unwrap_or(base.write),
    }
}

/// A period key that also takes `"never"` (`None`): `base` where it is not written.
fn every_or_never(
    cx: &mut Ctx<'_>,
    key: &str,
    written: Option<&String>,
    base: Option<Duration>,
    bounds: Bounds,
    what: &str,
) -> Option<Duration> {
    let Some(written) = written else { return base };
    match cx.text(key, Some(written)).as_deref() {
        Some("never") => None,
        Some(_) => cx.duration_in(key, Some(written), bounds, &format!(", or \"never\" to turn {what} off")),
        None => None,
    }
}

fn is_api_version(v: &str) -> bool {
    v.split_once('.').is_some_and(|(major, minor)| {
        !major.is_empty()
            && !minor.is_empty()
            && major.bytes().all(|b| b.is_ascii_digit())
            && minor.bytes().all(|b| b.is_ascii_digit())
    })
}

/// The longest column name `rename` accepts: PostgreSQL keeps 63 bytes of an identifier
/// and silently cuts the rest.
const MAX_COLUMN_BYTES: usize = 63;

/// A flow's `rename` table: API names to column names. Keys must be API names (Id, the
/// record key, keeps its column); values must be usable column names, not sluice's own
/// (`_sluice…`), and each used once. Whether the fields exist is known only once the object
/// is described.
fn renames(
    cx: &mut Ctx<'_>,
    key: &str,
    raw: Option<&std::collections::BTreeMap<String, String>>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (field, column) in raw.into_iter().flatten() {
        let at = format!("{key}.rename.{field}");
        if !is_valid_api_name(field) {
            cx.err(&at, format!("{field:?} {NOT_API_NAME}"));
            continue;
        }
        if field.eq_ignore_ascii_case("Id") {
            cx.err(&at, "cannot rename Id: it is the record key every table is merged on");
            continue;
        }
        let Some(column) = cx.text(&at, Some(column)) else { continue };
        let problem = if column.trim().is_empty() {
            Some("is empty; give the column a name, or leave the field out of `rename`".to_owned())
        } else if column.len() > MAX_COLUMN_BYTES {
            Some(format!("{column:?} is {} bytes; a column name has at most {MAX_COLUMN_BYTES}", column.len()))
        } else if column.chars().any(char::is_control) {
            Some(format!("{column:?} holds a control character; use letters, digits and `_`"))
        } else if column.to_ascii_lowercase().starts_with("_sluice") {
            Some(format!("{column:?} starts with `_sluice`, which sluice's own columns use; choose another name"))
        } else if let Some((other, _)) = out.iter().find(|(_, c)| c.eq_ignore_ascii_case(&column)) {
            Some(format!("{column:?} is also the column of `{other}`; each field needs a column of its own"))
        } else if out.iter().any(|(f, _)| f.eq_ignore_ascii_case(field)) {
            Some(format!("`{field}` is renamed twice"))
        } else {
            None
        };
        match problem {
            Some(m) => cx.err(&at, m),
            None => out.push((field.clone(), column)),
        }
    }
    out
}
