//! Table-driven tests of the classifier: one row per rule in `classify.rs`.

use super::*;

/// What a row expects, without comparing messages.
#[derive(Debug, PartialEq)]
enum Want {
    Success,
    Relogin,
    Smaller,
    UseRest,
    Restart,
    Fail(Kind, Retry),
    Quota(Duration),
}

fn want_of(d: &Disposition) -> Want {
    match d {
        Disposition::Success => Want::Success,
        Disposition::Relogin(_) => Want::Relogin,
        Disposition::SmallerWindow(_) => Want::Smaller,
        Disposition::UseRest(_) => Want::UseRest,
        Disposition::RestartQuery(_) => Want::Restart,
        Disposition::Fail(e) if e.is_quota() => match e.retry {
            Retry::After(d) => Want::Quota(d),
            other => panic!("quota without a wait: {other:?}"),
        },
        Disposition::Fail(e) => Want::Fail(e.kind, e.retry),
    }
}

fn rest(code: &str, message: &str) -> String {
    serde_json::json!([{ "message": message, "errorCode": code }]).to_string()
}

fn oauth(error: &str, description: &str) -> String {
    serde_json::json!({ "error": error, "error_description": description }).to_string()
}

fn hdrs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

const B: Retry = Retry::Backoff;
const N: Retry = Retry::Never;
const SECS_30: Duration = Duration::from_secs(30);

#[test]
fn classify_table() {
    use Kind::{External as Ext, Internal as Int, User};
    let html = "<!DOCTYPE html><html><head><title>Down for Maintenance</title></head><body>x</body></html>";
    let caret =
        "\nSELECT Foo FROM Account\n       ^\nERROR at Row:1:Column:8\nNo such column 'Foo' on entity 'Account'.";
    #[rustfmt::skip]
    type Row = (&'static str, u16, Vec<(String, String)>, String, Want);
    let rows: Vec<Row> = vec![
        ("200 ok", 200, vec![], "{}".into(), Want::Success),
        ("204 no content", 204, vec![], String::new(), Want::Success),
        ("304 not modified", 304, vec![], String::new(), Want::Success),
        ("401 expired session", 401, vec![], rest("INVALID_SESSION_ID", "Session expired or invalid"), Want::Relogin),
        ("401 empty body", 401, vec![], String::new(), Want::Relogin),
        (
            "403 daily quota",
            403,
            vec![],
            rest("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
            Want::Quota(QUOTA_RETRY_AFTER),
        ),
        (
            "403 quota honours Retry-After",
            403,
            hdrs(&[("Retry-After", "30")]),
            rest("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
            Want::Quota(SECS_30),
        ),
        (
            "403 concurrency limit is transient",
            403,
            vec![],
            rest("REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."),
            Want::Fail(Ext, B),
        ),
        (
            "403 insufficient access",
            403,
            vec![],
            rest("INSUFFICIENT_ACCESS", "insufficient access rights on object id"),
            Want::Fail(User, N),
        ),
        (
            "403 API disabled",
            403,
            vec![],
            rest("API_DISABLED_FOR_ORG", "API is not enabled for this Organization or Partner"),
            Want::Fail(User, N),
        ),
        ("403 no body", 403, vec![], String::new(), Want::Fail(User, N)),
        ("400 invalid field", 400, vec![], rest("INVALID_FIELD", caret), Want::Fail(User, N)),
        (
            "400 invalid type",
            400,
            vec![],
            rest("INVALID_TYPE", "sObject type 'XYZZY' is not supported."),
            Want::Fail(User, N),
        ),
        ("400 malformed query", 400, vec![], rest("MALFORMED_QUERY", "unexpected token: 'From'"), Want::Fail(User, N)),
        (
            "400 filter operator",
            400,
            vec![],
            rest("INVALID_QUERY_FILTER_OPERATOR", "invalid operator"),
            Want::Fail(User, N),
        ),
        ("400 expired locator", 400, vec![], rest("INVALID_QUERY_LOCATOR", "invalid query locator"), Want::Restart),
        (
            "400 query timeout",
            400,
            vec![],
            rest("QUERY_TIMEOUT", "Your query request was running for too long."),
            Want::Smaller,
        ),
        (
            "500 query timeout",
            500,
            vec![],
            rest("QUERY_TIMEOUT", "Your query request was running for too long."),
            Want::Smaller,
        ),
        ("400 too many ids", 400, vec![], rest("EXCEEDED_ID_LIMIT", "too many ids"), Want::Smaller),
        (
            "400 bulk entity",
            400,
            vec![],
            rest("INVALIDENTITY", "Foo__c is not supported by the Bulk API"),
            Want::UseRest,
        ),
        (
            "400 bulk compound",
            400,
            vec![],
            rest("API_ERROR", "Selecting compound data not supported in Bulk Query"),
            Want::UseRest,
        ),
        (
            "400 bulk daily jobs",
            400,
            vec![],
            rest("LIMIT_EXCEEDED", "Max bulk v2 query jobs (10000) per 24 hrs has been reached"),
            Want::UseRest,
        ),
        (
            "400 other API_ERROR is ours",
            400,
            vec![],
            rest("API_ERROR", "Error encountered when deleting the job because the job is not terminated"),
            Want::Fail(Int, N),
        ),
        (
            "400 offset too large is ours",
            400,
            vec![],
            rest("NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000"),
            Want::Fail(Int, N),
        ),
        (
            "404 unknown object",
            404,
            vec![],
            rest("NOT_FOUND", "The requested resource does not exist"),
            Want::Fail(User, N),
        ),
        ("404 no body", 404, vec![], String::new(), Want::Fail(User, N)),
        ("408 timeout", 408, vec![], String::new(), Want::Fail(Ext, B)),
        ("409 bulk version mismatch", 409, vec![], String::new(), Want::Fail(Int, N)),
        ("414 URI too long", 414, vec![], String::new(), Want::Fail(Int, N)),
        ("420 edge rate limit", 420, vec![], String::new(), Want::Fail(Ext, B)),
        (
            "429 with Retry-After",
            429,
            hdrs(&[("retry-after", "30")]),
            String::new(),
            Want::Fail(Ext, Retry::After(SECS_30)),
        ),
        ("429 with unusable Retry-After", 429, hdrs(&[("Retry-After", "soon")]), String::new(), Want::Fail(Ext, B)),
        (
            "500 unknown exception",
            500,
            vec![],
            rest("UNKNOWN_EXCEPTION", "An unexpected error occurred."),
            Want::Fail(Ext, B),
        ),
        ("500 HTML page", 500, vec![], html.into(), Want::Fail(Ext, B)),
        ("502 empty body", 502, vec![], String::new(), Want::Fail(Ext, B)),
        (
            "503 HTML with HTTP-date Retry-After",
            503,
            hdrs(&[("Date", "Wed, 21 Oct 2026 07:28:00 GMT"), ("Retry-After", "Wed, 21 Oct 2026 07:28:30 GMT")]),
            html.into(),
            Want::Fail(Ext, Retry::After(SECS_30)),
        ),
        ("503 server unavailable", 503, vec![], rest("SERVER_UNAVAILABLE", "Server unavailable"), Want::Fail(Ext, B)),
        ("504 plain text", 504, vec![], "upstream timed out".into(), Want::Fail(Ext, B)),
        ("400 oauth bad password", 400, vec![], oauth("invalid_grant", "authentication failure"), Want::Fail(User, N)),
        (
            "400 oauth expired refresh token",
            400,
            vec![],
            oauth("invalid_grant", "expired access/refresh token"),
            Want::Fail(User, N),
        ),
        (
            "400 oauth unknown client",
            400,
            vec![],
            oauth("invalid_client_id", "client identifier invalid"),
            Want::Fail(User, N),
        ),
        (
            "401 oauth bad secret",
            401,
            vec![],
            oauth("invalid_client", "invalid client credentials"),
            Want::Fail(User, N),
        ),
        (
            "400 oauth wrong domain",
            400,
            vec![],
            oauth("invalid_request", "request not supported on this domain"),
            Want::Fail(User, N),
        ),
        (
            "400 oauth login rate",
            400,
            vec![],
            oauth("rate_limit_exceeded", "ip/user login rate exceeded"),
            Want::Fail(Ext, B),
        ),
        ("400 unknown code", 400, vec![], rest("SOMETHING_NEW", "?"), Want::Fail(Int, N)),
        ("400 JSON without a code", 400, vec![], "[1, 2]".into(), Want::Fail(Int, N)),
        ("405 method", 405, vec![], rest("METHOD_NOT_ALLOWED", "HTTP Method 'PUT' not allowed"), Want::Fail(Int, N)),
    ];
    for (name, status, headers, body, want) in rows {
        let got = classify(status, &headers, &body);
        assert_eq!(want_of(&got), want, "{name}: {got:?}");
    }
}

#[test]
fn messages_name_what_failed() {
    let d = classify(400, &[], &rest("INVALID_FIELD", "\nSELECT Foo FROM Account\n  ^\nNo such column 'Foo'"));
    let msg = d.into_error().unwrap().message;
    // The caret diagram stays aligned under its query line.
    assert_eq!(msg, "HTTP 400 INVALID_FIELD:\nSELECT Foo FROM Account\n  ^\nNo such column 'Foo'");
    let d = classify(400, &[], &rest("MALFORMED_QUERY", "  unexpected token: 'From' "));
    assert_eq!(d.into_error().unwrap().message, "HTTP 400 MALFORMED_QUERY: unexpected token: 'From'");

    let html = "<html><head><TITLE>Maintenance</TITLE></head></html>";
    let msg = classify(503, &[], html).into_error().unwrap().message;
    assert_eq!(msg, "HTTP 503 with an HTML page \"Maintenance\"");
    assert_eq!(classify(502, &[], "  ").into_error().unwrap().message, "HTTP 502 with an empty body");

    let long = "x".repeat(5000);
    let msg = classify(500, &[], &long).into_error().unwrap().message;
    assert!(msg.chars().count() < 500, "{}", msg.len());
}

#[test]
fn oauth_errors_are_user_errors_with_a_hint_and_no_secret() {
    // The classifier never sees the request; the message is built from the server's
    // error and description alone.
    let rows = [
        ("invalid_grant", "authentication failure", "security token"),
        ("invalid_grant", "user hasn't approved this consumer", "pre-authorize"),
        ("invalid_grant", "audience is invalid", "login_url"),
        ("invalid_grant", "expired access/refresh token", "refresh token"),
        ("invalid_client", "invalid client credentials", "client_secret"),
        ("invalid_client_id", "client identifier invalid", "client_id"),
    ];
    for (error, description, hint) in rows {
        let e = classify(400, &[], &oauth(error, description)).into_error().unwrap();
        assert_eq!((e.kind, e.retry), (Kind::User, Retry::Never));
        assert!(e.message.contains(error) && e.message.contains(hint), "{}", e.message);
    }
}

#[test]
fn quota_carries_usage_from_the_header() {
    let headers = hdrs(&[("Sforce-Limit-Info", "api-usage=5000/5000")]);
    let e =
        classify(403, &headers, &rest("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")).into_error().unwrap();
    assert!(e.is_quota());
    assert_eq!(e.quota_details(), Some(&QuotaExceeded { used: Some(5000), max: Some(5000) }));
    assert!(e.message.contains("next run resumes"), "{}", e.message);
}

#[test]
fn bulk_failure_table() {
    let rows = [
        ("Retried more than 15 times", Want::Smaller),
        ("QUERY_TIMEOUT: Your query request was running for too long.", Want::Smaller),
        ("Failed to write query result.", Want::Smaller),
        ("InternalServerError", Want::Smaller),
        ("Selecting compound data not supported in Bulk Query", Want::UseRest),
        ("INVALIDENTITY: Foo__History is not supported by the Bulk API", Want::UseRest),
    ];
    for (msg, want) in rows {
        assert_eq!(want_of(&classify_bulk_failure(msg)), want, "{msg}");
    }
}

#[test]
fn transport_table() {
    use Kind::{External as Ext, User};
    let rows = [
        (Transport::Timeout, Ext, B, "timed out"),
        (Transport::ConnectionReset, Ext, B, "reset"),
        (Transport::TruncatedBody, Ext, B, "ended early"),
        (Transport::Other, Ext, B, "failed"),
        (Transport::Dns, User, N, "unreachable host h.invalid"),
        (Transport::Refused, User, N, "unreachable host h.invalid"),
        (Transport::Tls, User, N, "ca_file"),
    ];
    for (kind, want_kind, want_retry, needle) in rows {
        let e = classify_transport(kind, "h.invalid", "detail");
        assert_eq!((e.kind, e.retry), (want_kind, want_retry), "{kind:?}");
        assert!(e.message.contains(needle) && e.message.contains("h.invalid"), "{}", e.message);
    }
}

#[test]
fn limit_info_table() {
    let rows: [(&str, Option<(u64, u64)>); 11] = [
        ("api-usage=18/5000", Some((18, 5000))),
        ("api-usage=10018/100000; api-bursts=1/750", Some((10018, 100000))),
        ("api-usage=25/5000; per-app-api-usage=17/250(appName=sample-connected-app)", Some((25, 5000))),
        ("per-app-api-usage=17/250(appName=x); api-usage=25/5000", Some((25, 5000))),
        ("  API-USAGE = 7 / 10 ", Some((7, 10))),
        ("per-app-api-usage=17/250(appName=x)", None),
        ("api-usage=abc/5000", None),
        ("api-usage=5/0", None),
        ("api-usage=5", None),
        ("", None),
        ("garbage;;==//", None),
    ];
    for (value, want) in rows {
        assert_eq!(parse_limit_info(value), want, "{value:?}");
    }
    assert_eq!(api_usage(&hdrs(&[("sforce-limit-info", "api-usage=1/2")])), Some((1, 2)));
    assert_eq!(api_usage(&hdrs(&[("Other", "api-usage=1/2")])), None);
}

#[test]
fn budget_table() {
    let rows = [
        (0, 5000, 80, false),
        (3999, 5000, 80, false),
        (4000, 5000, 80, true),
        (5001, 5000, 100, true),
        (1, 1, 100, true),
        (u64::MAX, u64::MAX, 80, true),
    ];
    for (used, max, pct, want) in rows {
        assert_eq!(budget_reached(used, max, pct), want, "{used}/{max} at {pct}%");
    }
}

#[test]
fn retry_after_table() {
    let date = ("Date", "Wed, 21 Oct 2026 07:28:00 GMT");
    let rows = [
        (hdrs(&[("Retry-After", "120")]), Some(Duration::from_secs(120))),
        (hdrs(&[("Retry-After", " 0 ")]), Some(Duration::ZERO)),
        (hdrs(&[date, ("Retry-After", "Wed, 21 Oct 2026 07:29:00 GMT")]), Some(Duration::from_secs(60))),
        (hdrs(&[date, ("Retry-After", "Wed, 21 Oct 2026 07:27:00 GMT")]), Some(Duration::ZERO)),
        (hdrs(&[("Retry-After", "Wed, 21 Oct 2026 07:29:00 GMT")]), None),
        (hdrs(&[("Retry-After", "-5")]), None),
        (vec![], None),
    ];
    for (headers, want) in rows {
        assert_eq!(retry_after(&headers), want, "{headers:?}");
    }
}
