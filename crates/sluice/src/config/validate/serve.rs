//! Checks of what `sluice serve` reads: `[serve]` ([`serve`]) and each flow's schedule
//! keys ([`schedule`], then [`schedule_no_effect`] for keys that cannot matter where they
//! are written). Problems go to the same collector as every other key's.

use std::net::SocketAddr;
use std::str::FromStr as _;

use super::problems::{Bounds, Ctx, DAY, HOUR};
use crate::config::raw::{RawConfig, RawServe, RawSettings};
use crate::config::text::is_http_url;
use crate::config::types::{Cadence, FlowConfig, MAX_LEASE_TIMEOUT, Mode, Schedule, Secret, ServeConfig, ServeTls};

const EVERY: Bounds = Bounds { min: 1, max: 365 * DAY };
const FULL_REFRESH_EVERY: Bounds = Bounds { min: HOUR, max: 3650 * DAY };
const SHUTDOWN_GRACE: Bounds = Bounds { min: 0, max: HOUR };
const LEASE_TIMEOUT: Bounds = Bounds { min: 10, max: MAX_LEASE_TIMEOUT.as_secs() };

/// `[serve]`, its defaults for what is not written. A listen address other than loopback
/// needs a token: the API can start runs and pause flows.
pub(super) fn serve(cx: &mut Ctx<'_>, raw: Option<&RawServe>) -> ServeConfig {
    let defaults = ServeConfig::default();
    let Some(raw) = raw else { return defaults };
    let listen = match cx.text("serve.listen", raw.listen.as_ref()) {
        None => defaults.listen,
        Some(text) => match SocketAddr::from_str(text.trim()) {
            Ok(addr) => addr,
            Err(_) => {
                cx.err(
                    "serve.listen",
                    format!("{text:?} is not an address and port; expected e.g. \"127.0.0.1:7870\" or \"[::1]:7870\""),
                );
                defaults.listen
            }
        },
    };
    let token = cx.secret("serve.token", raw.token.as_ref());
    if token.as_deref().is_some_and(|t| t.trim().len() < 16) {
        cx.err("serve.token", "is shorter than 16 characters; use a long random secret, e.g. \"${SLUICE_TOKEN}\"");
    }
    if token.is_none() && raw.token.is_none() && !listen.ip().is_loopback() {
        cx.err(
            "serve.token",
            format!(
                "is required because serve.listen ({listen}) is not a loopback address: anyone who reaches it could \
                 start runs and pause flows; set token = \"${{SLUICE_TOKEN}}\", or listen on 127.0.0.1"
            ),
        );
    }
    let grace = cx.duration_in("serve.shutdown_grace", raw.shutdown_grace.as_ref(), SHUTDOWN_GRACE, "");
    let lease = cx.duration_in("serve.lease_timeout", raw.lease_timeout.as_ref(), LEASE_TIMEOUT, "");
    let notify_url = cx.secret("serve.notify_url", raw.notify_url.as_ref());
    if notify_url.as_deref().is_some_and(|url| !is_http_url(url.trim())) {
        cx.err("serve.notify_url", "is not an http:// or https:// URL (its value is not shown: it may hold a key)");
    }
    ServeConfig {
        listen,
        token: token.map(Secret::new),
        shutdown_grace: grace.unwrap_or(defaults.shutdown_grace),
        lease_timeout: lease.unwrap_or(defaults.lease_timeout),
        notify_url: notify_url.map(|url| Secret::new(url.trim())),
        tls: tls(cx, raw),
    }
}

/// `serve.tls_cert` and `serve.tls_key`: both, or neither. The files are read when serve
/// starts.
fn tls(cx: &mut Ctx<'_>, raw: &RawServe) -> Option<ServeTls> {
    let cert = cx.text("serve.tls_cert", raw.tls_cert.as_ref()).filter(|c| !c.trim().is_empty());
    let key = cx.text("serve.tls_key", raw.tls_key.as_ref()).filter(|k| !k.trim().is_empty());
    match (cert, key) {
        (Some(cert), Some(key)) => Some(ServeTls { cert: cert.trim().into(), key: key.trim().into() }),
        (Some(_), None) => {
            cx.err("serve.tls_key", "is required with serve.tls_cert: the PEM file of the certificate's private key");
            None
        }
        (None, Some(_)) => {
            cx.err("serve.tls_cert", "is required with serve.tls_key: the PEM file of the certificate chain");
            None
        }
        (None, None) => None,
    }
}

/// `[defaults]`' or a flow's schedule keys on top of `base`. A table that writes `every`
/// and `cron` both is an error; one that writes either replaces what it inherits.
pub(super) fn schedule(cx: &mut Ctx<'_>, prefix: &str, raw: &RawSettings, base: &Schedule) -> Schedule {
    let key = |k: &str| format!("{prefix}.{k}");
    if raw.every.is_some() && raw.cron.is_some() {
        cx.err(&key("cron"), "set either `every` or `cron`, not both");
    }
    let timezone = match cx.text(&key("timezone"), raw.timezone.as_ref()) {
        None => None,
        Some(name) => match chrono_tz::Tz::from_str(name.trim()) {
            Ok(tz) => Some(tz),
            Err(_) => {
                cx.err(
                    &key("timezone"),
                    format!("{name:?} is not an IANA time zone; expected e.g. \"UTC\", \"Europe/Paris\""),
                );
                None
            }
        },
    };
    let every = cx.duration_in(&key("every"), raw.every.as_ref(), EVERY, ", or a `cron` pattern instead");
    let cron = cx.text(&key("cron"), raw.cron.as_ref()).and_then(|pattern| {
        let pattern = pattern.trim().to_owned();
        match croner::Cron::from_str(&pattern) {
            Ok(_) => Some(pattern),
            Err(e) => {
                cx.err(
                    &key("cron"),
                    format!("{pattern:?} is not a cron pattern ({e}); expected e.g. \"*/15 * * * *\" or \"@hourly\""),
                );
                None
            }
        }
    });
    let cadence = match (every, cron) {
        (Some(d), _) => Cadence::Every(d),
        (None, Some(pattern)) => Cadence::Cron(pattern),
        (None, None) => base.cadence.clone(),
    };
    let full_refresh_every = match raw.full_refresh_every.as_ref() {
        None => base.full_refresh_every,
        Some(written) => match cx.text(&key("full_refresh_every"), Some(written)).as_deref() {
            Some("never") => None,
            Some(_) => cx
                .duration_in(
                    &key("full_refresh_every"),
                    Some(written),
                    FULL_REFRESH_EVERY,
                    ", or \"never\" for no periodic full refresh",
                )
                .or(base.full_refresh_every),
            None => base.full_refresh_every,
        },
    };
    let pause = cx.int_in(
        &key("pause_after_failures"),
        raw.pause_after_failures,
        1..=1000,
        i64::from(base.pause_after_failures),
        " consecutive failed runs",
    );
    Schedule {
        cadence,
        timezone: timezone.unwrap_or(base.timezone),
        full_refresh_every,
        pause_after_failures: u32::try_from(pause).unwrap_or(base.pause_after_failures),
    }
}

/// Schedule keys that cannot matter where they are written: a `timezone` for a flow that
/// runs on `every` (or in `[defaults]` when no flow uses `cron`), a `full_refresh_every`
/// on a flow whose every run is full already.
pub(super) fn schedule_no_effect(cx: &mut Ctx<'_>, raw: &RawConfig, flows: &[FlowConfig]) {
    let is_cron = |f: &FlowConfig| matches!(f.schedule.cadence, Cadence::Cron(_));
    // A zone that is not one is reported as such, not also as having no effect.
    let valid_zone =
        |written: &Option<String>| written.as_deref().is_some_and(|name| chrono_tz::Tz::from_str(name.trim()).is_ok());
    for (i, (written, flow)) in raw.flows.iter().zip(flows).enumerate() {
        if valid_zone(&written.timezone) && !is_cron(flow) {
            cx.err(
                &format!("flows[{i}].timezone"),
                "has no effect: the flow runs on `every`, not on a `cron` pattern; remove it or set `cron`",
            );
        }
        if written.full_refresh_every.is_some() && flow.settings.mode == Mode::Full {
            cx.err(
                &format!("flows[{i}].full_refresh_every"),
                "has no effect with mode = \"full\": every run reads the whole object already; remove it",
            );
        }
    }
    if valid_zone(&raw.defaults.timezone) && !flows.is_empty() && !flows.iter().any(is_cron) {
        cx.err("defaults.timezone", "has no effect: no flow runs on a `cron` pattern; remove it or set `cron`");
    }
}
