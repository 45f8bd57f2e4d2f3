//! What to do about a flow's last error, for the API and the dashboard: a pure lookup of
//! the error's text in a table ([`hint`]). Most of sluice's messages already say what
//! would be valid; these add the next step where the message names only what went wrong.

/// (any of these fragments, case-insensitive → the hint).
const HINTS: &[(&[&str], &str)] = &[
    (
        &["has no field"],
        "Remove the field from the flow's `fields` (or add it to `exclude`), or list the object's fields with \
         `sluice discover --object <object>`; then resume the flow.",
    ),
    (
        &["is in use by another sluice run", "is in use by another process"],
        "Another run holds the destination (a `sluice sync` by hand, or another `sluice serve`); the flow runs again \
         after a back-off.",
    ),
    (
        &["invalid_login", "invalid_grant", "invalid_client", "authentication failure"],
        "The org refused the credentials in [source]: check them with `sluice check`, then resume the flow.",
    ),
    (
        &["invalid_type", "is not supported"],
        "The integration user cannot see this object, or it does not exist: check its permissions, or its name with \
         `sluice discover`.",
    ),
    (
        &["request_limit_exceeded", "api calls", "api_budget_percent"],
        "The org's daily API allowance (or the api_budget_percent share of it) is used up; runs resume as the \
         rolling 24 hours free calls.",
    ),
    (
        &["timed out", "did not answer", "connection refused"],
        "The source or the destination did not answer in time; the flow is tried again after a back-off (see \
         source.connect_timeout and source.read_timeout).",
    ),
    (
        &["permission denied"],
        "The destination's role lacks a privilege on the schema or a table: grant it, then resume the flow.",
    ),
];

/// The next step for a flow whose last run failed with `error`, when one is known.
pub fn hint(error: &str) -> Option<&'static str> {
    let lower = error.to_ascii_lowercase();
    HINTS.iter().find(|(needles, _)| needles.iter().any(|n| lower.contains(n))).map(|(_, hint)| *hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_by_message() {
        let cases = [
            ("Lead has no field `NoSuchField__c` in fields", Some("sluice discover --object")),
            (
                "destination: schema salesforce in postgres://h/db is in use by another sluice run (pid 1)",
                Some("Another run holds"),
            ),
            ("destination.path: w.duckdb is in use by another process (IO Error)", Some("Another run holds")),
            ("login: INVALID_LOGIN: Invalid username, password, security token", Some("sluice check")),
            ("XYZZY: INVALID_TYPE: sObject type 'XYZZY' is not supported.", Some("permissions")),
            ("the request to https://x/services timed out after 60s", Some("did not answer in time")),
            ("permission denied for schema salesforce", Some("grant it")),
            ("something nobody foresaw", None),
        ];
        for (error, want) in cases {
            match (hint(error), want) {
                (Some(got), Some(fragment)) => assert!(got.contains(fragment), "{error}: {got}"),
                (got, want) => assert_eq!(got.is_some(), want.is_some(), "{error}: {got:?}"),
            }
        }
    }
}
