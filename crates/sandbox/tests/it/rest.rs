//! REST resources other than query (reference §2.1–2.3, §2.7–2.11): versions,
//! describeGlobal, describe, the sObject root, 404s for unknown objects and versions,
//! the session check, and `limits` / `recordCount`. CRUD and the replication
//! resources live in `crud.rs`.

use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::common::{
    JSON_CT, Sandbox, V, assert_date, assert_error, assert_json_ok, header, keys, limit_info, read_json,
};

const GLOBAL_KEYS: &str = "activateable associateEntityType associateParentEntity createable custom customSetting deepCloneable deletable deprecatedAndHidden feedEnabled hasSubtypes isInterface isSubtype keyPrefix label labelPlural layoutable mergeable mruEnabled name queryable replicateable retrieveable searchable triggerable undeletable updateable urls";
const TOP_KEYS: &str = "actionOverrides activateable associateEntityType associateParentEntity childRelationships compactLayoutable createable custom customSetting deepCloneable defaultImplementation deletable deprecatedAndHidden extendedBy extendsInterfaces feedEnabled fields hasSubtypes implementedBy implementsInterfaces isInterface isSubtype keyPrefix label labelPlural layoutable listviewable lookupLayoutable mergeable mruEnabled name namedLayoutInfos networkScopeFieldName queryable recordTypeInfos replicateable retrieveable searchLayoutable searchable sobjectDescribeOption supportedScopes triggerable undeletable updateable urls";
pub const FIELD_KEYS: &str = "aggregatable aiPredictionField autoNumber byteLength calculated calculatedFormula cascadeDelete caseSensitive compoundFieldName controllerName createable custom defaultValue defaultValueFormula defaultedOnCreate dependentPicklist deprecatedAndHidden digits displayLocationInDecimal encrypted externalId extraTypeInfo filterable filteredLookupInfo formulaTreatNullNumberAsZero groupable highScaleNumber htmlFormatted idLookup inlineHelpText label length mask maskType name nameField namePointing nillable permissionable picklistValues polymorphicForeignKey precision queryByDistance referenceTargetField referenceTo relationshipName relationshipOrder restrictedDelete restrictedPicklist scale searchPrefilterable soapType sortable type unique updateable writeRequiresMasterRead";

fn words(s: &str) -> Vec<&str> {
    s.split(' ').collect()
}

#[tokio::test]
async fn versions_need_no_session_and_carry_no_limit_header() {
    let sb = Sandbox::start().await;
    let (_, before, _) = sb.get_json("/limits").await;
    for path in ["/services/data", "/services/data/"] {
        let (status, headers, body) = read_json(sb.http.get(sb.url(path)).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header(&headers, "content-type"), Some(JSON_CT));
        assert!(headers.get("sforce-limit-info").is_none(), "versions must not carry Sforce-Limit-Info");
        assert_date(&headers);
        let list = body.as_array().unwrap();
        let mut last = 0.0;
        for entry in list {
            assert_eq!(keys(entry), ["label", "url", "version"]);
            let v: f64 = entry["version"].as_str().unwrap().parse().unwrap();
            assert!(v > last, "versions must be ordered oldest first");
            last = v;
            assert_eq!(entry["url"], format!("/services/data/v{}", entry["version"].as_str().unwrap()));
        }
        assert_eq!(list[0], json!({"label": "Winter '11", "url": "/services/data/v20.0", "version": "20.0"}));
        let v62 = list.iter().find(|e| e["version"] == "62.0").unwrap();
        assert_eq!(v62["label"], "Winter '25");
        assert!(list.iter().any(|e| e["version"] == "66.0" && e["label"] == "Spring '26"));
    }
    // The versions calls were not counted.
    let (_, after, _) = sb.get_json("/limits").await;
    assert_eq!(limit_info(&after).0, limit_info(&before).0 + 1);
}

#[tokio::test]
async fn every_authenticated_call_counts_once_in_the_limit_header() {
    let sb = Sandbox::start().await;
    let mut last = None;
    for path in ["", "/sobjects", "/sobjects/Account", "/limits", "/query?q=SELECT+Id+FROM+User"] {
        let resp = sb.get(path).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let headers = resp.headers().clone();
        assert_json_ok(&headers);
        let (used, max) = limit_info(&headers);
        assert_eq!(max, 1_000_000);
        if let Some(prev) = last {
            assert_eq!(used, prev + 1, "{path}");
        }
        last = Some(used);
    }
}

#[tokio::test]
async fn missing_or_bad_sessions_get_401() {
    let sb = Sandbox::start().await;
    for auth in [None, Some("Bearer nope"), Some("Basic abc")] {
        let mut r = sb.http.get(sb.data("/sobjects"));
        if let Some(a) = auth {
            r = r.header("Authorization", a);
        }
        let (status, headers, body) = read_json(r.send().await.unwrap()).await;
        let msg = assert_error(status, &headers, &body, StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID");
        assert_eq!(msg, "Session expired or invalid");
        assert!(headers.get("sforce-limit-info").is_none());
    }
    // The older `OAuth` scheme is accepted.
    let resp = sb.http.get(sb.data("/sobjects")).header("Authorization", format!("OAuth {}", sb.token())).send();
    assert_eq!(resp.await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn describe_global_lists_every_object() {
    let sb = Sandbox::start().await;
    let (status, headers, body) = sb.get_json("/sobjects").await;
    assert_eq!(status, StatusCode::OK);
    assert_json_ok(&headers);
    assert_eq!(keys(&body), ["encoding", "maxBatchSize", "sobjects"]);
    assert_eq!((body["encoding"].as_str(), body["maxBatchSize"].as_u64()), (Some("UTF-8"), Some(200)));
    let objects = body["sobjects"].as_array().unwrap();
    let names: Vec<&str> = objects.iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Account", "Case", "Contact", "Invoice__c", "Lead", "Opportunity", "User"]);
    for o in objects {
        assert_eq!(keys(o), words(GLOBAL_KEYS), "{}", o["name"]);
        let name = o["name"].as_str().unwrap();
        let urls = &o["urls"];
        let base = format!("/services/data/{V}/sobjects/{name}");
        assert_eq!(urls["sobject"], base.as_str());
        assert_eq!(urls["describe"], format!("{base}/describe"));
        assert_eq!(urls["rowTemplate"], format!("{base}/{{ID}}"));
        for k in ["compactLayouts", "approvalLayouts", "listviews", "quickActions", "layouts"] {
            assert!(urls[k].is_string(), "{name} urls.{k}");
        }
        assert_eq!((o["queryable"].as_bool(), o["retrieveable"].as_bool()), (Some(true), Some(true)));
        assert_eq!(o["replicateable"], true);
    }
    let account = &objects[0];
    assert_eq!((account["keyPrefix"].as_str(), account["label"].as_str()), (Some("001"), Some("Account")));
    assert_eq!((account["labelPlural"].as_str(), account["custom"].as_bool()), (Some("Accounts"), Some(false)));
    let invoice = &objects[3];
    assert_eq!((invoice["custom"].as_bool(), invoice["label"].as_str()), (Some(true), Some("Invoice")));
    let user = &objects[6];
    assert_eq!((user["deletable"].as_bool(), user["undeletable"].as_bool()), (Some(false), Some(false)));
}

fn field<'a>(describe: &'a Json, name: &str) -> &'a Json {
    describe["fields"].as_array().unwrap().iter().find(|f| f["name"] == name).unwrap_or_else(|| panic!("{name}"))
}

#[tokio::test]
async fn describe_has_the_real_shape() {
    let sb = Sandbox::start().await;
    for object in ["Account", "Case", "Contact", "Invoice__c", "Lead", "Opportunity", "User"] {
        let (status, headers, d) = sb.get_json(&format!("/sobjects/{object}/describe")).await;
        assert_eq!(status, StatusCode::OK);
        assert_json_ok(&headers);
        assert_eq!(keys(&d), words(TOP_KEYS), "{object}");
        assert_eq!(d["name"], object);
        for f in d["fields"].as_array().unwrap() {
            assert_eq!(keys(f), words(FIELD_KEYS), "{object}.{}", f["name"]);
        }
        for c in d["childRelationships"].as_array().unwrap() {
            let want = "cascadeDelete childSObject deprecatedAndHidden field junctionIdListNames junctionReferenceTo relationshipName restrictedDelete";
            assert_eq!(keys(c), words(want));
        }
        // Case-insensitive object names answer with the canonical name.
        let (status, _, d) = sb.get_json(&format!("/sobjects/{}/describe", object.to_lowercase())).await;
        assert_eq!((status, d["name"].as_str()), (StatusCode::OK, Some(object)));
    }
    let (_, _, a) = sb.get_json("/sobjects/Account/describe").await;
    let n = a["fields"].as_array().unwrap().len();
    assert!((40..=50).contains(&n), "Account has {n} fields");
    let row = |name: &str| {
        let f = field(&a, name);
        (
            f["type"].as_str().unwrap().to_string(),
            f["soapType"].as_str().unwrap().to_string(),
            [&f["length"], &f["byteLength"], &f["precision"], &f["scale"], &f["digits"]].map(|v| v.as_u64().unwrap()),
            f["nillable"].as_bool().unwrap(),
        )
    };
    let s = |v: &str| v.to_string();
    assert_eq!(row("Id"), (s("id"), s("tns:ID"), [18, 18, 0, 0, 0], false));
    assert_eq!(row("IsDeleted"), (s("boolean"), s("xsd:boolean"), [0, 0, 0, 0, 0], false));
    assert_eq!(row("Name"), (s("string"), s("xsd:string"), [255, 765, 0, 0, 0], false));
    assert_eq!(row("AnnualRevenue"), (s("currency"), s("xsd:double"), [0, 0, 18, 0, 0], true));
    assert_eq!(row("NumberOfEmployees"), (s("int"), s("xsd:int"), [0, 0, 0, 0, 8], true));
    assert_eq!(row("OwnerId"), (s("reference"), s("tns:ID"), [18, 18, 0, 0, 0], false));
    assert_eq!(row("BillingCity"), (s("string"), s("xsd:string"), [40, 120, 0, 0, 0], true));
    assert_eq!(row("BillingLatitude").2[2..4], [18, 15]);
    assert_eq!((row("SystemModstamp").0, row("SystemModstamp").3), (s("datetime"), false));
    assert_eq!(row("BillingAddress").1, "urn:address");
    assert!(field(&a, "Id")["defaultedOnCreate"].as_bool().unwrap());
    let owner = field(&a, "OwnerId");
    assert_eq!((&owner["referenceTo"], &owner["relationshipName"]), (&json!(["User"]), &json!("Owner")));
    let industry = field(&a, "Industry");
    let values = industry["picklistValues"].as_array().unwrap();
    assert_eq!(values.len(), 32);
    assert_eq!(
        values[0],
        json!({"active": true, "defaultValue": false, "label": "Agriculture", "validFor": null, "value": "Agriculture"})
    );
    let stamp = field(&a, "SystemModstamp");
    assert_eq!((stamp["createable"].as_bool(), stamp["updateable"].as_bool()), (Some(false), Some(false)));
    let address = field(&a, "BillingAddress");
    assert_eq!((address["createable"].as_bool(), address["updateable"].as_bool()), (Some(false), Some(false)));
    assert_eq!(field(&a, "BillingCity")["compoundFieldName"], "BillingAddress");
    assert_eq!(field(&a, "BillingLatitude")["compoundFieldName"], "BillingAddress");
    let contacts = a["childRelationships"].as_array().unwrap().iter().find(|c| c["childSObject"] == "Contact");
    assert_eq!(contacts.unwrap()["relationshipName"], "Contacts");

    // Invoice__c carries every field type, each with its soapType.
    let (_, _, inv) = sb.get_json("/sobjects/Invoice__c/describe").await;
    let soap = |ty: &str| match ty {
        "id" | "reference" => "tns:ID",
        "boolean" => "xsd:boolean",
        "int" => "xsd:int",
        "long" => "xsd:long",
        "double" | "currency" | "percent" => "xsd:double",
        "date" => "xsd:date",
        "datetime" => "xsd:dateTime",
        "time" => "xsd:time",
        "base64" => "xsd:base64Binary",
        "address" => "urn:address",
        "location" => "urn:location",
        _ => "xsd:string",
    };
    let mut types: Vec<&str> = Vec::new();
    for f in inv["fields"].as_array().unwrap() {
        let ty = f["type"].as_str().unwrap();
        assert_eq!(f["soapType"], soap(ty), "{}", f["name"]);
        if !types.contains(&ty) {
            types.push(ty);
        }
    }
    types.sort();
    let mut all = words(
        "address base64 boolean combobox currency date datetime double email encryptedstring id int location long multipicklist percent phone picklist reference string textarea time url",
    );
    all.sort();
    assert_eq!(types, all);
    let formula = field(&inv, "Days_Overdue__c");
    assert_eq!((formula["calculated"].as_bool(), formula["calculatedFormula"].is_string()), (Some(true), true));
    assert_eq!(field(&inv, "Name")["autoNumber"], true);
    assert_eq!(field(&inv, "Account__c")["relationshipName"], "Account__r");
}

#[tokio::test]
async fn sobject_root_and_resources() {
    let sb = Sandbox::start().await;
    let (status, headers, body) = sb.get_json("/sobjects/Contact").await;
    assert_eq!(status, StatusCode::OK);
    assert_json_ok(&headers);
    assert_eq!(keys(&body), ["objectDescribe", "recentItems"]);
    assert_eq!(keys(&body["objectDescribe"]), words(GLOBAL_KEYS));
    assert_eq!(body["objectDescribe"]["name"], "Contact");
    assert_eq!(body["recentItems"], json!([]));
    let (status, _, body) = sb.get_json("").await;
    assert_eq!(status, StatusCode::OK);
    for k in ["sobjects", "query", "queryAll", "limits"] {
        assert_eq!(body[k], format!("/services/data/{V}/{k}"));
    }
}

#[tokio::test]
async fn unknown_objects_versions_and_paths_are_404() {
    let sb = Sandbox::start().await;
    for path in ["/sobjects/Nope__c", "/sobjects/Nope__c/describe", "/sobjects/Nope__c/001000000000001AAA"] {
        let (status, headers, body) = sb.get_json(path).await;
        let msg = assert_error(status, &headers, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
        assert!(msg.starts_with("The requested resource does not exist"), "{msg}");
    }
    for url in [
        sb.url("/services/data/v99.0/sobjects"),
        sb.url("/services/data/v19.0/limits"),
        sb.url("/services/data/62.0/sobjects"),
        sb.url("/services/data/latest/query?q=SELECT+Id+FROM+Account"),
        sb.url("/services/nothing"),
    ] {
        let (status, headers, body) = read_json(sb.req(Method::GET, &url).send().await.unwrap()).await;
        let msg = assert_error(status, &headers, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
        assert_eq!(msg, "The requested resource does not exist", "{url}");
    }
}

#[tokio::test]
async fn limits_agree_with_the_limit_header_and_record_counts_with_the_truth() {
    let sb = Sandbox::start().await;
    let (status, headers, body) = sb.get_json("/limits").await;
    assert_eq!(status, StatusCode::OK);
    assert_json_ok(&headers);
    let (used, max) = limit_info(&headers);
    assert_eq!(body["DailyApiRequests"], json!({"Max": max, "Remaining": max - used}));
    for (name, entry) in body.as_object().unwrap() {
        assert_eq!(keys(entry), ["Max", "Remaining"], "{name}");
        assert!(entry["Remaining"].as_u64().unwrap() <= entry["Max"].as_u64().unwrap(), "{name}");
    }
    for k in ["DailyBulkV2QueryJobs", "DailyBulkV2QueryFileStorageMB", "DailyBulkApiBatches", "DataStorageMB"] {
        assert!(body.get(k).is_some(), "{k}");
    }
    // A second call uses one more.
    let (_, _, body) = sb.get_json("/limits").await;
    assert_eq!(body["DailyApiRequests"]["Remaining"].as_u64(), Some(max - used - 1));

    let (status, headers, body) = sb.get_json("/limits/recordCount?sObjects=Account,Contact").await;
    assert_eq!(status, StatusCode::OK);
    assert_json_ok(&headers);
    assert_eq!(keys(&body), ["sObjects"]);
    let counts = body["sObjects"].as_array().unwrap();
    assert_eq!(counts.len(), 2);
    for entry in counts {
        assert_eq!(keys(entry), ["count", "name"]);
        let truth = sb.truth(entry["name"].as_str().unwrap()).await;
        let live = truth.iter().filter(|r| r["IsDeleted"] == false).count();
        assert_eq!(entry["count"].as_u64(), Some(live as u64), "{}", entry["name"]);
    }
    let (_, _, all) = sb.get_json("/limits/recordCount").await;
    assert_eq!(all["sObjects"].as_array().unwrap().len(), 7);
}

#[tokio::test]
async fn unsupported_methods_get_405() {
    let sb = Sandbox::start().await;
    let id = sb.truth("Account").await[0]["Id"].as_str().unwrap().to_string();
    for (method, path) in [
        (Method::PUT, format!("/sobjects/Account/{id}")),
        (Method::POST, "/limits".to_string()),
        (Method::DELETE, "/query?q=SELECT+Id+FROM+Account".to_string()),
        (Method::PUT, "/jobs/query".to_string()),
    ] {
        let (status, headers, body) = read_json(sb.req(method.clone(), &sb.data(&path)).send().await.unwrap()).await;
        let msg = assert_error(status, &headers, &body, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
        assert!(msg.starts_with(&format!("HTTP Method '{method}' not allowed.")), "{msg}");
        assert_json_ok(&headers);
    }
}
