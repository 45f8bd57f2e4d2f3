//! Knobs: the things that break replication in real orgs, settable from a TOML file
//! (`--knobs`) or at run time through the admin API (same shape, as JSON).
//!
//! ```toml
//! daily_api_limit = 15000          # then 403 REQUEST_LIMIT_EXCEEDED
//! token_lifetime_secs = 3600       # then 401 INVALID_SESSION_ID
//! error_rate = 0.1                 # share of API calls answered with a 5xx
//! rate_limit_rate = 0.05           # share answered 429 TOO_MANY_REQUESTS, Retry-After: 1
//! truncate_rate = 0.05             # share of successes whose body stops halfway
//! latency_ms = 20                  # added to every API call
//! recycle_bin_days = 15            # deleted rows are purged after this
//! query_locator_ttl_secs = 900     # then INVALID_QUERY_LOCATOR
//!
//! [churn]                          # writes per second while the org runs
//! inserts_per_sec = 5.0
//! updates_per_sec = 20.0
//! deletes_per_sec = 1.0
//! undeletes_per_sec = 0.2
//! objects = ["Account", "Contact"] # default: every object with records, User excepted
//! timestamp_ties = 200             # each second, this many extra updates share one SystemModstamp
//!
//! [late_commits]                   # writes visible only some time after their SystemModstamp
//! fraction = 0.05                  # share of churn writes that commit late
//! delay_secs = 120
//!
//! [bulk]
//! in_progress_secs = 5             # jobs stay InProgress this long
//! fail_rate = 0.0                  # share of jobs that end Failed
//! fail_above_rows = 500000         # jobs with more rows than this end Failed
//!
//! [pubsub]                         # the Pub/Sub API's change events
//! keepalive_secs = 270             # an idle subscription gets an empty FetchResponse this often
//! retention_hours = 72             # changes stay replayable this long (org clock)
//!
//! [[fields_added]]                 # a field that appears while the org runs
//! object = "Account"
//! name = "Region__c"
//! type = "picklist"
//! after_secs = 60
//! ```

use serde::{Deserialize, Serialize};

/// Every knob, with defaults that make a well-behaved org.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Knobs {
    /// API calls allowed per rolling 24 hours.
    pub daily_api_limit: u64,
    /// Access tokens expire this long after issue (`None`: never).
    pub token_lifetime_secs: Option<u64>,
    /// Share (0..1) of API calls answered with a 5xx error.
    pub error_rate: f64,
    /// Share (0..1) of API calls answered `429 Too Many Requests` with `Retry-After: 1`.
    pub rate_limit_rate: f64,
    /// Share (0..1) of successful API responses whose body is cut short: the full
    /// `Content-Length` is announced, about half the bytes are sent, then the connection
    /// ends (as a proxy dropping it would).
    pub truncate_rate: f64,
    /// Added to every API call.
    pub latency_ms: u64,
    /// Recycle-bin retention.
    pub recycle_bin_days: f64,
    /// Query locators expire this long after their query (`None`: 2 days, as Salesforce).
    pub query_locator_ttl_secs: Option<u64>,
    /// Background writes.
    pub churn: Churn,
    /// Writes that become visible after their SystemModstamp.
    pub late_commits: LateCommits,
    /// Bulk API 2.0 job behaviour.
    pub bulk: BulkKnobs,
    /// The Pub/Sub API's change events.
    pub pubsub: PubSubKnobs,
    /// Fields added while the org runs.
    pub fields_added: Vec<AddedField>,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            daily_api_limit: 1_000_000,
            token_lifetime_secs: None,
            error_rate: 0.0,
            rate_limit_rate: 0.0,
            truncate_rate: 0.0,
            latency_ms: 0,
            recycle_bin_days: 15.0,
            query_locator_ttl_secs: None,
            churn: Churn::default(),
            late_commits: LateCommits::default(),
            bulk: BulkKnobs::default(),
            pubsub: PubSubKnobs::default(),
            fields_added: Vec::new(),
        }
    }
}

/// Background writes per second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Churn {
    /// New records per second.
    pub inserts_per_sec: f64,
    /// Updates per second.
    pub updates_per_sec: f64,
    /// Deletes (to the recycle bin) per second.
    pub deletes_per_sec: f64,
    /// Undeletes per second.
    pub undeletes_per_sec: f64,
    /// Objects that churn (empty: every object with records, User excepted).
    pub objects: Vec<String>,
    /// Extra updates per second that all share one SystemModstamp.
    pub timestamp_ties: u32,
}

/// Late commits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LateCommits {
    /// Share (0..1) of churn writes that commit late.
    pub fraction: f64,
    /// How long after its SystemModstamp a late write becomes visible.
    pub delay_secs: f64,
}

/// Bulk API 2.0 query jobs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BulkKnobs {
    /// Seconds a job stays `InProgress` before its result is ready.
    pub in_progress_secs: f64,
    /// Share (0..1) of jobs that end `Failed`.
    pub fail_rate: f64,
    /// Jobs whose result has more rows than this end `Failed` (as big extracts time out).
    pub fail_above_rows: Option<u64>,
}

/// The Pub/Sub API's change events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PubSubKnobs {
    /// A subscription with nothing to deliver gets an empty `FetchResponse` (carrying the
    /// latest replay id) this often; the real service's bound is 270 s.
    pub keepalive_secs: u64,
    /// How long a change stays replayable, in hours of the org's clock (Salesforce: 72).
    pub retention_hours: f64,
}

impl Default for PubSubKnobs {
    fn default() -> Self {
        PubSubKnobs { keepalive_secs: 270, retention_hours: 72.0 }
    }
}

/// A field that appears at run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddedField {
    /// Object that gains the field.
    pub object: String,
    /// API name; custom fields end in `__c`.
    pub name: String,
    /// Describe type (`string`, `picklist`, `double`, `date`, ...).
    #[serde(rename = "type")]
    pub ty: String,
    /// Seconds after the org starts (0: at once).
    #[serde(default)]
    pub after_secs: f64,
}

impl Knobs {
    /// Reads knobs from TOML text; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, String> {
        let knobs: Knobs = toml::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
        knobs.validate().map_err(|errs| format!("{origin}: {}", errs.join("; ")))?;
        Ok(knobs)
    }

    /// Every problem with the values, or nothing.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errs = Vec::new();
        let share = |name: &str, v: f64, errs: &mut Vec<String>| {
            if !(0.0..=1.0).contains(&v) {
                errs.push(format!("{name} = {v} must be between 0 and 1"));
            }
        };
        share("error_rate", self.error_rate, &mut errs);
        share("rate_limit_rate", self.rate_limit_rate, &mut errs);
        share("truncate_rate", self.truncate_rate, &mut errs);
        share("late_commits.fraction", self.late_commits.fraction, &mut errs);
        share("bulk.fail_rate", self.bulk.fail_rate, &mut errs);
        for (name, v) in [
            ("churn.inserts_per_sec", self.churn.inserts_per_sec),
            ("churn.updates_per_sec", self.churn.updates_per_sec),
            ("churn.deletes_per_sec", self.churn.deletes_per_sec),
            ("churn.undeletes_per_sec", self.churn.undeletes_per_sec),
            ("late_commits.delay_secs", self.late_commits.delay_secs),
            ("bulk.in_progress_secs", self.bulk.in_progress_secs),
            ("recycle_bin_days", self.recycle_bin_days),
            ("pubsub.retention_hours", self.pubsub.retention_hours),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                errs.push(format!("{name} = {v} must be a number >= 0"));
            }
        }
        if self.pubsub.keepalive_secs == 0 {
            errs.push("pubsub.keepalive_secs = 0 must be at least 1".to_string());
        }
        for (i, f) in self.fields_added.iter().enumerate() {
            if crate::value::FieldType::from_api_name(&f.ty)
                .is_none_or(|t| t.is_compound() || t == crate::value::FieldType::Id)
            {
                errs.push(format!(
                    "fields_added[{i}].type = {:?} is not a field type (use string, textarea, picklist, multipicklist, email, phone, url, boolean, int, long, double, currency, percent, date, datetime, time, reference)",
                    f.ty
                ));
            }
            if !f.name.ends_with("__c") {
                errs.push(format!(
                    "fields_added[{i}].name = {:?} must end in __c (fields added to an org are custom)",
                    f.name
                ));
            }
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_example_parses() {
        let doc = include_str!("knobs.rs");
        let example: String = doc
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//!").trim_start().to_string() + "\n")
            .collect();
        let k = Knobs::from_toml(&example, "example").unwrap();
        assert_eq!(k.daily_api_limit, 15_000);
        assert_eq!(k.fields_added[0].name, "Region__c");
        assert_eq!(k.bulk.fail_above_rows, Some(500_000));
        assert_eq!((k.rate_limit_rate, k.truncate_rate), (0.05, 0.05));
    }

    #[test]
    fn errors_name_the_key_and_the_range() {
        let e = Knobs::from_toml("error_rate = 2.0\nfoo = 1", "k.toml").unwrap_err();
        assert!(e.contains("k.toml") && e.contains("foo"), "{e}");
        let e =
            Knobs::from_toml("error_rate = 2.0\n[[fields_added]]\nobject='Account'\nname='X'\ntype='blob'", "k.toml")
                .unwrap_err();
        assert!(e.contains("error_rate = 2 must be between 0 and 1"), "{e}");
        assert!(e.contains("fields_added[0].type") && e.contains("must end in __c"), "{e}");
        let e = Knobs::from_toml("rate_limit_rate = 1.5\ntruncate_rate = -0.1", "k.toml").unwrap_err();
        assert!(e.contains("rate_limit_rate = 1.5 must be between 0 and 1"), "{e}");
        assert!(e.contains("truncate_rate = -0.1 must be between 0 and 1"), "{e}");
    }
}
