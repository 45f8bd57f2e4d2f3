//! `query` / `queryAll` and their locator pages (reference §2.4–2.6, §4): paging and
//! batch sizes, result shapes (nested relationships, compound and base64 fields,
//! explicit nulls), COUNT(), datetime literals, SOQL errors with the caret diagram,
//! locator expiry, and query results equal to the admin truth dump row by row.

use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::common::{
    Sandbox, V, assert_error, assert_json_ok, config, keys, read_json, rest_ms, soql_datetime, strip_attributes,
};
use crate::crud::create;

#[tokio::test]
async fn pages_hold_2000_rows_unless_a_batch_size_is_asked_for() {
    let mut cfg = config();
    cfg.counts.retain(|(o, _)| o != "Account");
    cfg.counts.push(("Account".into(), 4500));
    let sb = Sandbox::with(cfg).await;
    let q = "SELECT Id FROM Account";
    let live = sb.query("SELECT COUNT() FROM Account").await["totalSize"].as_u64().unwrap() as usize;
    assert!(live > 4000, "{live}");
    for (batch, size) in [(None, 2000), (Some(500), 500), (Some(100), 200), (Some(5000), 2000), (Some(1234), 1234)] {
        let (pages, records) = sb.query_pages("query", q, batch).await;
        let sizes: Vec<usize> = pages.iter().map(|p| p["records"].as_array().unwrap().len()).collect();
        let mut want = vec![size; live / size];
        if !live.is_multiple_of(size) {
            want.push(live % size);
        }
        assert_eq!(sizes, want, "batch {batch:?}");
        let mut ids: Vec<&str> = records.iter().map(|r| r["Id"].as_str().unwrap()).collect();
        ids.dedup();
        assert_eq!(ids.len(), live, "no record twice");
        for (i, p) in pages.iter().enumerate() {
            assert_eq!(keys(p)[..2], ["totalSize", "done"]);
            if let Some(next) = p.get("nextRecordsUrl") {
                assert_eq!(keys(p), ["totalSize", "done", "nextRecordsUrl", "records"]);
                let next = next.as_str().unwrap();
                let locator = next.strip_prefix(&format!("/services/data/{V}/query/")).unwrap();
                let (id, offset) = locator.split_once('-').unwrap();
                assert!(
                    id.starts_with("01g") && id.len() == 18 && id.chars().all(|c| c.is_ascii_alphanumeric()),
                    "{next}"
                );
                assert_eq!(offset, ((i + 1) * size).to_string());
            } else {
                assert_eq!(keys(p), ["totalSize", "done", "records"]);
                assert_eq!(p["done"], true);
            }
        }
    }
    // queryAll hands out /query/ locators; /queryAll/{locator} serves the same page, and
    // a page can be fetched again.
    let (_, _, first) = sb.soql("queryAll", q, Some(1000)).await;
    let next = first["nextRecordsUrl"].as_str().unwrap().to_string();
    assert!(next.starts_with(&format!("/services/data/{V}/query/01g")));
    let a = read_json(sb.req(Method::GET, &sb.url(&next)).send().await.unwrap()).await.2;
    let b =
        read_json(sb.req(Method::GET, &sb.url(&next.replace("/query/", "/queryAll/"))).send().await.unwrap()).await.2;
    let c = read_json(sb.req(Method::GET, &sb.url(&next)).send().await.unwrap()).await.2;
    assert_eq!(a["records"].as_array().unwrap().len(), 1000);
    assert_eq!((&a, &a), (&b, &c));
    assert_ne!(a["records"][0], first["records"][0]);
}

/// Every field of an object, in describe order.
async fn all_fields(sb: &Sandbox, version: &str, object: &str) -> Vec<String> {
    let url = format!("{}/services/data/{version}/sobjects/{object}/describe", sb.base);
    let d = read_json(sb.req(Method::GET, &url).send().await.unwrap()).await.2;
    d["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn query_results_equal_the_truth_row_by_row() {
    let sb = Sandbox::start().await;
    // The truth dump renders blob URLs at the newest version; query at that version.
    let version = "v66.0";
    for object in ["Account", "Case", "Contact", "Invoice__c", "Lead", "Opportunity", "User"] {
        let fields = all_fields(&sb, version, object).await;
        let q = format!("SELECT {} FROM {object}", fields.join(", "));
        let truth = sb.truth(object).await;
        let (_, all) = sb.query_pages_at(version, "queryAll", &q, Some(200)).await;
        assert_eq!(all.len(), truth.len(), "{object}");
        for (rec, row) in all.iter().zip(&truth) {
            let id = row["Id"].as_str().unwrap();
            assert_eq!(
                rec["attributes"],
                json!({"type": object, "url": format!("/services/data/{version}/sobjects/{object}/{id}")})
            );
            assert_eq!(&strip_attributes(rec), row, "{object} {id}");
            let k = keys(rec);
            assert_eq!(k[1..], fields.iter().map(String::as_str).collect::<Vec<_>>()[..], "key order follows SELECT");
        }
        // Invariants of every row: valid 18-character Ids, CreatedDate <= LastModifiedDate
        // <= SystemModstamp, whole-second stamps.
        for row in &truth {
            for (k, v) in row {
                if let Some(s) =
                    v.as_str().filter(|s| s.len() == 18 && (k == "Id" || k.ends_with("Id") || k.ends_with("__c")))
                    && s.chars().all(|c| c.is_ascii_alphanumeric())
                    && sandbox::ids::parse(s).is_some()
                {
                    assert_eq!(checksum18(&s[..15]), s, "{object}.{k}");
                }
            }
            let ms = |k: &str| rest_ms(row[k].as_str().unwrap());
            let (c, m, s) = (ms("CreatedDate"), ms("LastModifiedDate"), ms("SystemModstamp"));
            assert!(c <= m && m <= s, "{object} {}: {c} {m} {s}", row["Id"]);
            assert!([c, m, s].iter().all(|t| t % 1000 == 0));
        }
        let (_, live) = sb.query_pages_at(version, "query", &q, None).await;
        let live_truth: Vec<_> = truth.iter().filter(|r| r.get("IsDeleted").is_none_or(|d| d == false)).collect();
        assert_eq!(live.len(), live_truth.len(), "{object}");
        for (rec, row) in live.iter().zip(live_truth) {
            assert_eq!(&strip_attributes(rec), row);
        }
    }
}

#[tokio::test]
async fn count_deleted_rows_order_and_limit() {
    let sb = Sandbox::start().await;
    let id = create(&sb, "Account", json!({"Name": "Soon Gone"})).await;
    let resp = sb.req(Method::DELETE, &sb.data(&format!("/sobjects/Account/{id}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let truth = sb.truth("Account").await;
    let live = truth.iter().filter(|r| r["IsDeleted"] == false).count();
    let binned = truth.len() - live;
    let body = sb.query("SELECT COUNT() FROM Account").await;
    assert_eq!(body, json!({"totalSize": live, "done": true, "records": []}));
    assert_eq!(keys(&body), ["totalSize", "done", "records"]);
    let (_, _, body) = sb.soql("queryAll", "select count() from account", None).await;
    assert_eq!(body["totalSize"], truth.len());
    let body = sb.query("SELECT COUNT(Id) FROM Account").await;
    assert_eq!(
        body,
        json!({"totalSize": 1, "done": true, "records": [{"attributes": {"type": "AggregateResult"}, "expr0": live}]})
    );
    let body = sb.query("SELECT COUNT(Id) n FROM Account").await;
    assert_eq!(body["records"][0]["n"], live);

    let q = "SELECT Id, IsDeleted FROM Account WHERE IsDeleted = true";
    assert_eq!(sb.query(q).await["totalSize"], 0);
    let (_, all) = sb.query_pages("queryAll", q, None).await;
    assert_eq!(all.len(), binned);
    assert!(all.iter().all(|r| r["IsDeleted"] == true) && all.iter().any(|r| r["Id"] == id.as_str()));

    let body = sb.query("SELECT Id, SystemModstamp FROM Account ORDER BY SystemModstamp DESC LIMIT 7").await;
    let stamps: Vec<i64> =
        body["records"].as_array().unwrap().iter().map(|r| rest_ms(r["SystemModstamp"].as_str().unwrap())).collect();
    assert_eq!((stamps.len(), body["totalSize"].as_u64()), (7, Some(7)));
    assert!(stamps.windows(2).all(|w| w[0] >= w[1]), "{stamps:?}");
    let max =
        truth.iter().filter(|r| r["IsDeleted"] == false).map(|r| rest_ms(r["SystemModstamp"].as_str().unwrap())).max();
    assert_eq!(Some(stamps[0]), max);
    let body = sb.query("SELECT Id FROM Account ORDER BY Id LIMIT 5 OFFSET 2000").await;
    assert_eq!(body["totalSize"], 0);
}

#[tokio::test]
async fn relationships_nest_and_empty_lookups_are_null() {
    let sb = Sandbox::start().await;
    let orphan = create(&sb, "Contact", json!({"LastName": "Orphan"})).await;
    let users = sb.truth("User").await;
    let accounts = sb.truth("Account").await;
    let name_of = |rows: &[serde_json::Map<String, Json>], id: &Json| {
        rows.iter()
            .find(|r| &r["Id"] == id)
            .map(|r| (r["Name"].clone(), r.get("OwnerId").cloned().unwrap_or(Json::Null)))
    };
    let attrs = |object: &str, id: &Json| json!({"type": object, "url": format!("/services/data/{V}/sobjects/{object}/{}", id.as_str().unwrap())});
    let q = "select id, NAME, owner.name, Account.Name, account.owner.name FROM contact";
    let (_, records) = sb.query_pages("query", q, None).await;
    let truth = sb.truth("Contact").await;
    let mut nulls = 0;
    for rec in &records {
        assert_eq!(keys(rec), ["attributes", "Id", "Name", "Owner", "Account"]);
        let row = truth.iter().find(|r| r["Id"] == rec["Id"]).unwrap();
        assert_eq!(rec["Name"], row["Name"]);
        let owner =
            json!({"attributes": attrs("User", &row["OwnerId"]), "Name": name_of(&users, &row["OwnerId"]).unwrap().0});
        assert_eq!(rec["Owner"], owner);
        if row["AccountId"].is_null() {
            nulls += 1;
            assert_eq!(rec["Account"], Json::Null);
            continue;
        }
        let (name, owner_id) = name_of(&accounts, &row["AccountId"]).unwrap();
        let account = json!({
            "attributes": attrs("Account", &row["AccountId"]),
            "Name": name,
            "Owner": {"attributes": attrs("User", &owner_id), "Name": name_of(&users, &owner_id).unwrap().0},
        });
        assert_eq!(rec["Account"], account);
        assert_eq!(keys(&rec["Account"]), ["attributes", "Name", "Owner"]);
    }
    assert!(nulls >= 1 && records.iter().any(|r| r["Id"] == orphan.as_str()));
    // A filter through a relationship.
    let some = &accounts.iter().find(|a| a["IsDeleted"] == false).unwrap()["Name"];
    let q = format!("SELECT Id FROM Contact WHERE Account.Name = '{}'", some.as_str().unwrap().replace('\'', "\\'"));
    let want = truth
        .iter()
        .filter(|c| c["IsDeleted"] == false && name_of(&accounts, &c["AccountId"]).is_some_and(|a| &a.0 == some))
        .count();
    assert_eq!(sb.query(&q).await["totalSize"], want);
}

#[tokio::test]
async fn compound_and_base64_fields_and_explicit_nulls() {
    let sb = Sandbox::start().await;
    let (_, records) =
        sb.query_pages("query", "SELECT Id, BillingAddress, Phone, Fax, Description FROM Account", None).await;
    let truth = sb.truth("Account").await;
    let (mut with, mut without) = (0, 0);
    for rec in &records {
        assert_eq!(keys(rec), ["attributes", "Id", "BillingAddress", "Phone", "Fax", "Description"]);
        let row = truth.iter().find(|r| r["Id"] == rec["Id"]).unwrap();
        let addr = &rec["BillingAddress"];
        if addr.is_null() {
            without += 1;
            assert!(["BillingCity", "BillingStreet", "BillingPostalCode"].iter().all(|k| row[*k].is_null()));
            continue;
        }
        with += 1;
        assert_eq!(
            keys(addr),
            ["city", "country", "geocodeAccuracy", "latitude", "longitude", "postalCode", "state", "street"]
        );
        for (k, f) in [
            ("city", "BillingCity"),
            ("street", "BillingStreet"),
            ("postalCode", "BillingPostalCode"),
            ("state", "BillingState"),
            ("country", "BillingCountry"),
            ("latitude", "BillingLatitude"),
            ("longitude", "BillingLongitude"),
        ] {
            assert_eq!(addr[k], row[f], "{k}");
        }
    }
    assert!(with > 0 && without > 0, "{with} with an address, {without} without");
    assert!(records.iter().any(|r| r["Description"].is_null()), "nulls are explicit");

    let scan = "JVBERi0xLjQKc2x1aWNl";
    let inv = create(&sb, "Invoice__c", json!({"Account__c": truth[0]["Id"], "Scan__c": scan, "Site_Location__Latitude__s": 48.85, "Site_Location__Longitude__s": 2.35})).await;
    let body = sb
        .query(&format!("SELECT Id, Scan__c, Site_Location__c, Remit_To__c FROM Invoice__c WHERE Id = '{inv}'"))
        .await;
    let rec = &body["records"][0];
    let url = format!("/services/data/{V}/sobjects/Invoice__c/{inv}/Scan__c");
    assert_eq!(
        (&rec["Scan__c"], &rec["Site_Location__c"], &rec["Remit_To__c"]),
        (&json!(url), &json!({"latitude": 48.85, "longitude": 2.35}), &Json::Null)
    );
    let resp = sb.req(Method::GET, &sb.url(&url)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    use base64::Engine as _;
    let want = base64::engine::general_purpose::STANDARD.decode(scan).unwrap();
    assert_eq!(resp.bytes().await.unwrap().to_vec(), want);
}

/// Splits a caret-diagram message into (column, text), checking its layout against `q`.
fn caret(message: &str, q: &str) -> (usize, String) {
    let rest = message.strip_prefix('\n').unwrap_or_else(|| panic!("no leading newline: {message:?}"));
    let (line, rest) = rest.split_once('\n').unwrap();
    assert_eq!(line, q);
    let (marker, rest) = rest.split_once('\n').unwrap();
    let (position, text) = rest.split_once('\n').unwrap();
    let col: usize =
        position.strip_prefix("ERROR at Row:1:Column:").unwrap_or_else(|| panic!("{position}")).parse().unwrap();
    assert_eq!(marker, format!("{}^", " ".repeat(col - 1)));
    (col, text.to_string())
}

#[tokio::test]
async fn soql_errors_carry_the_caret_diagram() {
    let sb = Sandbox::start().await;
    let fail = |q: &'static str, code: &'static str| {
        let sb = &sb;
        async move {
            let (status, headers, body) = sb.soql("query", q, None).await;
            let msg = assert_error(status, &headers, &body, StatusCode::BAD_REQUEST, code);
            (msg, caret_of(&body, q))
        }
    };
    let (msg, _) = fail("SELECT Foo FROM Account", "INVALID_FIELD").await;
    assert_eq!(
        msg,
        "\nSELECT Foo FROM Account\n       ^\nERROR at Row:1:Column:8\nNo such column 'Foo' on entity 'Account'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
    );
    let (msg, _) = fail("select count() from XYZZY", "INVALID_TYPE").await;
    assert_eq!(
        msg,
        "\nselect count() from XYZZY\n                    ^\nERROR at Row:1:Column:21\nsObject type 'XYZZY' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."
    );
    let (_, (col, text)) = fail("SELECT Id FROM Account OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE").await;
    assert_eq!((col, text.as_str()), (31, "Maximum SOQL offset allowed is 2000"));
    let (_, (_, text)) =
        fail("SELECT Id FROM Account WHERE CreatedDate > '2024-01-01T00:00:00Z'", "INVALID_FIELD").await;
    assert_eq!(
        text,
        "value of filter criterion for field 'CreatedDate' must be of type dateTime and should not be enclosed in quotes"
    );
    let (_, (_, text)) = fail("SELECT Id FROM Account WHERE", "MALFORMED_QUERY").await;
    assert_eq!(text, "unexpected token: <EOF>");
    let (_, (col, text)) = fail("SELECT Id, FROM Account", "MALFORMED_QUERY").await;
    assert_eq!((col, text.as_str()), (12, "unexpected token: 'FROM'"));
    fail("SELECT Id FROM Account WHERE NumberOfEmployees LIKE '1%'", "INVALID_QUERY_FILTER_OPERATOR").await;
    fail("SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'", "MALFORMED_QUERY").await;
    // The same errors from queryAll.
    let (status, headers, body) = sb.soql("queryAll", "SELECT Foo FROM Account", None).await;
    assert_error(status, &headers, &body, StatusCode::BAD_REQUEST, "INVALID_FIELD");
    for url in [sb.data("/query"), sb.data("/query?q="), sb.data("/queryAll?q=%20")] {
        let (status, headers, body) = read_json(sb.req(Method::GET, &url).send().await.unwrap()).await;
        assert_error(status, &headers, &body, StatusCode::BAD_REQUEST, "MALFORMED_QUERY");
    }
}

fn caret_of(body: &Json, q: &str) -> (usize, String) {
    caret(body[0]["message"].as_str().unwrap(), q)
}

#[tokio::test]
async fn datetime_literals_in_every_form() {
    let sb = Sandbox::start().await;
    let truth = sb.truth("Contact").await;
    let stamps: Vec<i64> = truth
        .iter()
        .filter(|r| r["IsDeleted"] == false)
        .map(|r| rest_ms(r["SystemModstamp"].as_str().unwrap()))
        .collect();
    let mut sorted = stamps.clone();
    sorted.sort();
    let t = sorted[sorted.len() / 2];
    let after = stamps.iter().filter(|&&s| s > t).count();
    let from = stamps.iter().filter(|&&s| s >= t).count();
    let dt = |ms: i64, fmt: &str| chrono::DateTime::from_timestamp_millis(ms).unwrap().format(fmt).to_string();
    let forms = [
        soql_datetime(t),
        dt(t, "%Y-%m-%dT%H:%M:%S.000Z"),
        dt(t + 3_600_000, "%Y-%m-%dT%H:%M:%S+01:00"),
        dt(t - 8 * 3_600_000, "%Y-%m-%dT%H:%M:%S-08:00"),
    ];
    for lit in &forms {
        let n = |op: &str| format!("SELECT COUNT() FROM Contact WHERE SystemModstamp {op} {lit}");
        assert_eq!(sb.query(&n(">")).await["totalSize"], after, "{lit}");
        assert_eq!(sb.query(&n(">=")).await["totalSize"], from, "{lit}");
    }
    let half = format!("{}.500Z", dt(t, "%Y-%m-%dT%H:%M:%S"));
    let body = sb.query(&format!("SELECT COUNT() FROM Contact WHERE SystemModstamp >= {half}")).await;
    assert_eq!(body["totalSize"], after, "stamps are whole seconds");
    // The same offset sent with a raw `+`, which a URL decodes as a space.
    let raw = format!("{}/query?q=SELECT+Id+FROM+Contact+WHERE+SystemModstamp+>+{}", sb.data(""), forms[2]);
    let (status, headers, body) = read_json(sb.req(Method::GET, &raw).send().await.unwrap()).await;
    let msg = assert_error(status, &headers, &body, StatusCode::BAD_REQUEST, "MALFORMED_QUERY");
    assert!(msg.ends_with("no viable alternative at character ' '"), "{msg}");
    // Date literals on a date field, and a date value on a datetime field is refused.
    let body = sb.query("SELECT COUNT() FROM Contact WHERE Birthdate < 2000-01-01").await;
    let want = truth
        .iter()
        .filter(|r| r["IsDeleted"] == false && r["Birthdate"].as_str().is_some_and(|b| b < "2000-01-01"))
        .count();
    assert_eq!(body["totalSize"], want);
    let (status, headers, body) =
        sb.soql("query", "SELECT Id FROM Contact WHERE SystemModstamp > 2024-01-01", None).await;
    assert_error(status, &headers, &body, StatusCode::BAD_REQUEST, "INVALID_FIELD");
}

#[tokio::test]
async fn locators_are_checked_and_expire() {
    let sb = Sandbox::start().await;
    sb.set_knobs(|k| k.query_locator_ttl_secs = Some(60)).await;
    sb.freeze().await;
    for path in ["/query/01g000000000000AAA-200", "/query/garbage", "/queryAll/xyz-abc", "/query/01g000000000001AAA-"] {
        let (status, headers, body) = sb.get_json(path).await;
        let msg = assert_error(status, &headers, &body, StatusCode::BAD_REQUEST, "INVALID_QUERY_LOCATOR");
        assert_eq!(msg, "invalid query locator");
    }
    let (_, _, first) = sb.soql("query", "SELECT Id FROM Contact", Some(200)).await;
    let next = first["nextRecordsUrl"].as_str().unwrap().to_string();
    let beyond = format!("{}-100000", next.rsplit_once('-').unwrap().0);
    let (status, headers, body) = read_json(sb.req(Method::GET, &sb.url(&beyond)).send().await.unwrap()).await;
    assert_error(status, &headers, &body, StatusCode::BAD_REQUEST, "INVALID_QUERY_LOCATOR");
    sb.advance(30.0).await;
    let (status, headers, page) = read_json(sb.req(Method::GET, &sb.url(&next)).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_json_ok(&headers);
    assert_eq!(page["totalSize"], first["totalSize"]);
    sb.advance(31.0).await;
    let (status, headers, body) = read_json(sb.req(Method::GET, &sb.url(&next)).send().await.unwrap()).await;
    assert_error(status, &headers, &body, StatusCode::BAD_REQUEST, "INVALID_QUERY_LOCATOR");
}

#[tokio::test]
async fn every_type_has_its_json_form() {
    let sb = Sandbox::start().await;
    let (_, rows) = sb
        .query_pages(
            "query",
            "SELECT Id, Name, Is_Paid__c, Line_Count__c, Ledger_Sequence__c, Amount__c, Issued_On__c, Paid_At__c, Reminder_Time__c, Tags__c, CreatedDate FROM Invoice__c",
            None,
        )
        .await;
    let is_date = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() && s.len() == 10;
    let is_time = |s: &str| chrono::NaiveTime::parse_from_str(s, "%H:%M:%S%.3fZ").is_ok() && s.len() == 13;
    let is_datetime = |s: &str| s.len() == 28 && s.ends_with("+0000") && rest_ms(s) % 1000 == 0;
    let tags = ["Priority", "Recurring", "Disputed", "Partner", "Export", "Tax Exempt"];
    let mut seen = [0usize; 6];
    for r in &rows {
        assert!(r["Is_Paid__c"].is_boolean(), "booleans are never null");
        assert!(r["Name"].as_str().unwrap().starts_with("INV-"));
        for (i, (k, ok)) in [
            ("Line_Count__c", r["Line_Count__c"].is_i64()),
            ("Ledger_Sequence__c", r["Ledger_Sequence__c"].is_i64()),
            ("Amount__c", r["Amount__c"].is_number()),
            ("Issued_On__c", r["Issued_On__c"].as_str().is_some_and(is_date)),
            ("Paid_At__c", r["Paid_At__c"].as_str().is_some_and(is_datetime)),
            ("Reminder_Time__c", r["Reminder_Time__c"].as_str().is_some_and(is_time)),
        ]
        .into_iter()
        .enumerate()
        {
            assert!(ok || r[k].is_null(), "{k} = {}", r[k]);
            seen[i] += usize::from(ok);
        }
        assert!(is_datetime(r["CreatedDate"].as_str().unwrap()));
        if let Some(t) = r["Tags__c"].as_str() {
            assert!(t.split(';').all(|v| tags.contains(&v)), "{t}");
        }
    }
    assert!(seen.iter().all(|&n| n > 0), "every type appears with a value: {seen:?}");
}

#[tokio::test]
async fn filters_agree_with_the_truth() {
    let sb = Sandbox::start().await;
    let truth = sb.truth("Account").await;
    let live: Vec<_> = truth.iter().filter(|r| r["IsDeleted"] == false).collect();
    let count = |f: &dyn Fn(&serde_json::Map<String, Json>) -> bool| live.iter().filter(|r| f(r)).count();
    let text = |r: &serde_json::Map<String, Json>, k: &str| r[k].as_str().map(str::to_string);
    let now = rest_ms(&sb.freeze().await);
    let midnight = now - now.rem_euclid(86_400_000);
    let cases: Vec<(&str, usize)> = vec![
        (
            "Industry IN ('Banking', 'Energy')",
            count(&|r| matches!(text(r, "Industry").as_deref(), Some("Banking" | "Energy"))),
        ),
        (
            "Industry NOT IN ('Banking', 'Energy')",
            count(&|r| !matches!(text(r, "Industry").as_deref(), Some("Banking" | "Energy"))),
        ),
        ("Industry != 'Banking'", count(&|r| text(r, "Industry").as_deref() != Some("Banking"))),
        ("industry = 'BANKING'", count(&|r| text(r, "Industry").as_deref() == Some("Banking"))),
        ("Phone = null", count(&|r| r["Phone"].is_null())),
        ("Phone != null", count(&|r| !r["Phone"].is_null())),
        ("Name LIKE 'a%'", count(&|r| text(r, "Name").is_some_and(|n| n.to_lowercase().starts_with('a')))),
        (
            "(Industry = 'Banking' OR Rating = 'Hot') AND NumberOfEmployees > 100",
            count(&|r| {
                (text(r, "Industry").as_deref() == Some("Banking") || text(r, "Rating").as_deref() == Some("Hot"))
                    && r["NumberOfEmployees"].as_i64().is_some_and(|n| n > 100)
            }),
        ),
        ("NOT Rating = 'Hot'", count(&|r| text(r, "Rating").as_deref() != Some("Hot"))),
        ("CreatedDate < TODAY", count(&|r| rest_ms(r["CreatedDate"].as_str().unwrap()) < midnight)),
        (
            "LastModifiedDate = LAST_N_DAYS:30",
            count(&|r| {
                let t = rest_ms(r["LastModifiedDate"].as_str().unwrap());
                (midnight - 30 * 86_400_000..midnight + 86_400_000).contains(&t)
            }),
        ),
    ];
    for (filter, want) in cases {
        let body = sb.query(&format!("SELECT COUNT() FROM Account WHERE {filter}")).await;
        assert_eq!(body["totalSize"], want, "{filter}");
    }
    // ORDER BY puts nulls first when ascending, last when descending.
    let field = ["Fax", "Website", "Site", "TickerSymbol"]
        .into_iter()
        .find(|f| count(&|r| r[*f].is_null()) >= 3 && count(&|r| r[*f].is_string()) >= 3)
        .expect("a sortable field with nulls and values");
    let first = |q: String| {
        let sb = &sb;
        async move { sb.query(&q).await["records"].as_array().unwrap().iter().map(|r| r[field].clone()).collect::<Vec<_>>() }
    };
    assert!(first(format!("SELECT {field} FROM Account ORDER BY {field} LIMIT 3")).await.iter().all(Json::is_null));
    assert!(
        first(format!("SELECT {field} FROM Account ORDER BY {field} DESC LIMIT 3")).await.iter().all(Json::is_string)
    );
    assert!(
        first(format!("SELECT {field} FROM Account ORDER BY {field} NULLS LAST LIMIT 3"))
            .await
            .iter()
            .all(Json::is_string)
    );
    assert!(
        first(format!("SELECT {field} FROM Account ORDER BY {field} DESC NULLS FIRST LIMIT 3"))
            .await
            .iter()
            .all(Json::is_null)
    );
}

/// The 18-character form of a 15-character Id (reference §6.5).
fn checksum18(id15: &str) -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    let mut out = id15.to_string();
    for chunk in id15.as_bytes().chunks(5) {
        let bits = chunk.iter().enumerate().filter(|(_, c)| c.is_ascii_uppercase()).fold(0, |b, (j, _)| b | 1 << j);
        out.push(alphabet[bits] as char);
    }
    out
}

#[test]
fn checksum_matches_the_reference_vectors() {
    for (a, b) in [
        ("a0BA0000000L2ZC", "a0BA0000000L2ZCMA0"),
        ("0011Y00003HVMu4", "0011Y00003HVMu4QAH"),
        ("0012000001AAaa1", "0012000001AAaa1AAD"),
    ] {
        assert_eq!(checksum18(a), b);
    }
}
