"""simple-salesforce (PyPI), unmodified, against `sluice sandbox` over HTTPS.

Every test checks the data the client hands back against the sandbox's ground
truth (`GET /sandbox/v1/truth/{Object}`), not merely that a call returned.
"""

from __future__ import annotations

import csv
import math
import re

import pytest
from simple_salesforce.exceptions import SalesforceResourceNotFound

from conftest import API_VERSION

DATETIME_REST = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")
DATETIME_CSV = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000Z$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIME = re.compile(r"^\d{2}:\d{2}:\d{2}\.\d{3}Z$")
ID18 = re.compile(r"^[0-9A-Za-z]{18}$")

NUMERIC = {"int", "long", "double", "currency", "percent"}
TEXT = {
    "string", "textarea", "picklist", "multipicklist", "combobox", "email", "phone", "url", "encryptedstring",
}
# Fields Bulk API 2.0 cannot select.
NOT_IN_BULK = {"address", "location", "base64"}


def plain(value):
    """OrderedDicts (simple-salesforce's default) to dicts, recursively; drops `attributes`."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if k != "attributes"}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def field_types(sf, obj: str) -> dict[str, str]:
    return {f["name"]: f["type"] for f in getattr(sf, obj).describe()["fields"]}


def by_id(rows):
    out = {r["Id"]: r for r in rows}
    assert len(out) == len(rows), "duplicate Ids"
    return out


def assert_exercises_tricky_text(rows: list[dict], fields: list[str]):
    """The generated data carries text that breaks naive CSV/JSON handling; make sure
    the rows compared really contain some, or the comparison proves little."""
    texts = [r[f] for r in rows for f in fields if isinstance(r.get(f), str)]
    for needle in ("\n", '"', ","):
        assert any(needle in t for t in texts), f"no value with {needle!r} among the compared rows"
    assert any(not t.isascii() for t in texts), "no non-ASCII value among the compared rows"


def at_request_version(value):
    """Blob (base64) fields read as the URL of the blob, under the version of the
    request; the truth renders them under the newest version."""
    if isinstance(value, str) and value.startswith("/services/data/v66.0/sobjects/"):
        return value.replace("/v66.0/", f"/v{API_VERSION}/", 1)
    return value


def assert_records_equal_truth(records: list[dict], truth: dict[str, dict], obj: str, fields: list[str]):
    for rec in records:
        attrs = rec["attributes"]
        assert attrs["type"] == obj
        assert attrs["url"].endswith(f"/sobjects/{obj}/{rec['Id']}")
        expected = {f: at_request_version(truth[rec["Id"]][f]) for f in fields}
        got = plain(rec)
        assert list(got) == fields, "record keys are not the SELECT list in order"
        assert got == expected, f"record {rec['Id']} differs from the truth"


def test_query_all_matches_truth_over_several_pages(sf, sandbox, requests_seen):
    """query_all over REST /query with 200-row pages: every live Account, every value."""
    truth_rows = sandbox.truth("Account")
    fields = list(truth_rows[0])
    live = by_id([r for r in truth_rows if not r["IsDeleted"]])
    assert len(live) < len(truth_rows), "expected some Accounts in the recycle bin"

    requests_seen.clear()
    result = sf.query_all(
        f"SELECT {', '.join(fields)} FROM Account", headers={"Sforce-Query-Options": "batchSize=200"}
    )
    more_pages = [u for u in requests_seen if "/query/01g" in u]
    assert len(more_pages) == math.ceil(len(live) / 200) - 1, requests_seen

    records = result["records"]
    assert result["totalSize"] == len(records) == len(live)
    assert {r["Id"] for r in records} == set(live)
    assert all(r["IsDeleted"] is False for r in records)
    assert_records_equal_truth(records, live, "Account", fields)
    assert_exercises_tricky_text(list(live.values()), fields)
    # JSON number types survive: ints stay ints, currency stays a float.
    some = next(r for r in records if r["NumberOfEmployees"] is not None and r["AnnualRevenue"] is not None)
    assert type(some["NumberOfEmployees"]) is int and type(some["AnnualRevenue"]) is float


def test_query_all_iter_include_deleted_matches_truth(sf, sandbox, requests_seen):
    """query_all_iter on /queryAll (include_deleted) across 2,000-row pages: the whole
    truth, recycle bin included; /query without it leaves the recycle bin out."""
    truth_rows = sandbox.truth("Invoice__c")
    fields = list(truth_rows[0])
    truth = by_id(truth_rows)
    deleted = {i for i, r in truth.items() if r["IsDeleted"]}
    assert deleted, "expected Invoice__c rows in the recycle bin"
    soql = f"SELECT {', '.join(fields)} FROM Invoice__c"

    requests_seen.clear()
    records = list(sf.query_all_iter(soql, include_deleted=True))
    assert re.search(r"/queryAll/?\?q=", requests_seen[0]), requests_seen
    more_pages = [u for u in requests_seen if re.search(r"/query(All)?/01g", u)]
    assert len(more_pages) == math.ceil(len(truth) / 2000) - 1 >= 2, requests_seen

    assert len(records) == len(truth)
    assert {r["Id"] for r in records} == set(truth)
    assert {r["Id"] for r in records if r["IsDeleted"]} == deleted
    assert_records_equal_truth(records, truth, "Invoice__c", fields)
    assert_exercises_tricky_text(truth_rows, fields)

    live_ids = [r["Id"] for r in sf.query_all_iter("SELECT Id FROM Invoice__c")]
    assert sorted(live_ids) == sorted(set(truth) - deleted)


def csv_text(value, ftype: str) -> str:
    """The Bulk 2.0 CSV text of a truth value (REST JSON rendering)."""
    if value is None:
        return ""
    if ftype == "boolean":
        assert isinstance(value, bool)
        return "true" if value else "false"
    if ftype == "datetime":
        assert DATETIME_REST.match(value), value
        return value[: -len("+0000")] + "Z"
    return str(value)


def assert_csv_row_equals_truth(row: dict, truth_row: dict, types: dict[str, str]):
    for name, text in row.items():
        ftype, want = types[name], truth_row[name]
        if ftype in NUMERIC and want is not None:
            assert text != "" and float(text) == float(want), (truth_row["Id"], name, text, want)
            if ftype in ("int", "long"):
                assert text == str(want), (truth_row["Id"], name, text, want)
        else:
            assert text == csv_text(want, ftype), (truth_row["Id"], name, text, want)
        if ftype == "datetime" and text:
            assert DATETIME_CSV.match(text), text


def bulk_fields(truth_rows, types) -> list[str]:
    return [f for f in truth_rows[0] if types[f] not in NOT_IN_BULK]


def test_bulk2_download_matches_truth_over_several_pages(sf, sandbox, tmp_path):
    """Bulk 2.0 query (sf.bulk2.X.download) with maxRecords=1000: every page a CSV with
    its own header; all rows together equal the live truth, value by value."""
    types = field_types(sf, "Invoice__c")
    truth_rows = sandbox.truth("Invoice__c")
    fields = bulk_fields(truth_rows, types)
    live = by_id([r for r in truth_rows if not r["IsDeleted"]])

    pages = sf.bulk2.Invoice__c.download(
        f"SELECT {', '.join(fields)} FROM Invoice__c", path=str(tmp_path), max_records=1000, wait=0.2
    )
    assert len(pages) == math.ceil(len(live) / 1000) >= 3
    assert all(p["number_of_records"] == 1000 for p in pages[:-1])
    assert sum(p["number_of_records"] for p in pages) == len(live)
    assert pages[-1]["locator"] == ""  # "null" on the last page

    seen = set()
    for page in pages:
        with open(page["file"], newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            assert reader.fieldnames == fields, "each page starts with the header in SELECT order"
            rows = list(reader)
        assert len(rows) == page["number_of_records"]
        for row in rows:
            assert row["Id"] in live and row["Id"] not in seen, row["Id"]
            seen.add(row["Id"])
            assert_csv_row_equals_truth(row, live[row["Id"]], types)
    assert seen == set(live)
    assert_exercises_tricky_text(list(live.values()), fields)


def test_bulk2_query_all_includes_recycle_bin(sf, sandbox):
    """sf.bulk2.X.query_all (operation queryAll), page by page: deleted rows too."""
    types = field_types(sf, "Account")
    truth_rows = sandbox.truth("Account")
    fields = bulk_fields(truth_rows, types)
    truth = by_id(truth_rows)

    pages = list(sf.bulk2.Account.query_all(f"SELECT {', '.join(fields)} FROM Account", max_records=400, wait=0.2))
    assert len(pages) == math.ceil(len(truth) / 400) >= 3
    rows = []
    for text in pages:
        reader = csv.DictReader(text.splitlines(keepends=True))
        assert reader.fieldnames == fields
        rows.extend(reader)
    assert sorted(r["Id"] for r in rows) == sorted(truth)
    assert {r["Id"] for r in rows if r["IsDeleted"] == "true"} == {i for i, r in truth.items() if r["IsDeleted"]}
    for row in rows:
        assert_csv_row_equals_truth(row, truth[row["Id"]], types)


KNOWN_TYPES = NUMERIC | TEXT | {"id", "reference", "boolean", "date", "datetime", "time", "base64", "address",
                                "location"}


@pytest.mark.parametrize("obj", ["Account", "Contact", "Invoice__c"])
def test_describe_matches_truth(sf, sandbox, obj):
    """sf.X.describe(): the fields are exactly the truth's keys, in order, and every
    truth value fits the type describe gives its field."""
    desc = getattr(sf, obj).describe()
    assert desc["name"] == obj and desc["queryable"] is True
    fields = desc["fields"]
    truth_rows = sandbox.truth(obj)
    assert [f["name"] for f in fields] == list(truth_rows[0])

    prefixes = {s["name"]: s["keyPrefix"] for s in sf.describe()["sobjects"]}
    assert {"Account", "Contact", "Opportunity", "Lead", "Case", "User", "Invoice__c"} <= set(prefixes)
    types = {f["name"]: f for f in fields}
    assert types["Id"]["type"] == "id" and types["IsDeleted"]["type"] == "boolean"
    assert types["SystemModstamp"]["type"] == "datetime" and types["CreatedDate"]["type"] == "datetime"
    for f in fields:
        assert f["type"] in KNOWN_TYPES, f
        if f["type"] == "reference":
            assert f["referenceTo"] and all(t in prefixes for t in f["referenceTo"]), f
    for row in truth_rows:
        for name, v in row.items():
            f = types[name]
            ty = f["type"]
            if ty == "boolean":
                assert isinstance(v, bool), (name, v)
                continue
            if v is None:
                assert f["nillable"] or f["calculated"], (name, "null in a non-nillable field")
                continue
            if ty == "id":
                assert ID18.match(v) and v.startswith(desc["keyPrefix"]), v
            elif ty == "reference":
                assert ID18.match(v) and any(v.startswith(prefixes[t]) for t in f["referenceTo"]), (name, v)
            elif ty in ("int", "long"):
                assert type(v) is int, (name, v)
            elif ty in NUMERIC:
                assert isinstance(v, (int, float)) and not isinstance(v, bool), (name, v)
            elif ty == "datetime":
                assert DATETIME_REST.match(v), (name, v)
            elif ty == "date":
                assert DATE.match(v), (name, v)
            elif ty == "time":
                assert TIME.match(v), (name, v)
            elif ty in ("address", "location"):
                assert isinstance(v, dict) and {"latitude", "longitude"} <= set(v), (name, v)
            elif ty == "base64":
                assert v == f"/services/data/v66.0/sobjects/{obj}/{row['Id']}/{name}", (name, v)
            elif ty in TEXT:
                assert isinstance(v, str) and v != "", (name, v)
                if f["length"]:
                    assert len(v) <= f["length"], (name, len(v), f["length"])
                if ty == "picklist" and f["restrictedPicklist"]:
                    assert v in {p["value"] for p in f["picklistValues"]}, (name, v)


def truth_row(sandbox, obj: str, rid: str) -> dict:
    rows = [r for r in sandbox.truth(obj) if r["Id"] == rid]
    assert len(rows) == 1, f"{rid} is not exactly once in the {obj} truth"
    return rows[0]


SYSTEM = {"LastModifiedDate", "LastModifiedById", "SystemModstamp"}


def test_contact_create_update_delete_reach_the_truth(sf, sandbox):
    """sf.Contact.create / .get / .update / .delete: after each, the truth shows it."""
    account = next(r for r in sandbox.truth("Account") if not r["IsDeleted"])
    user_id = sandbox.token()["id"].rsplit("/", 1)[1]
    payload = {
        "FirstName": "Zoë",
        "LastName": 'O\'Brien, "Compat"',
        "Email": "zoe.obrien@compat.example.com",
        "Birthdate": "1990-02-28",
        "AccountId": account["Id"],
        "Description": 'First line, with a comma\nSecond "quoted" line\r\nThird line',
        "DoNotCall": True,
        "MailingLatitude": 47.60621,
    }

    created = sf.Contact.create(payload)
    assert created["success"] is True and created["errors"] == []
    cid = created["id"]
    assert ID18.match(cid) and cid.startswith("003")
    row = truth_row(sandbox, "Contact", cid)
    for k, v in payload.items():
        assert row[k] == v, (k, row[k], v)
    assert row["Name"] == 'Zoë O\'Brien, "Compat"'
    assert row["IsDeleted"] is False and row["HasOptedOutOfEmail"] is False and row["Phone"] is None
    assert row["OwnerId"] == row["CreatedById"] == row["LastModifiedById"] == user_id
    assert row["CreatedDate"] == row["LastModifiedDate"] == row["SystemModstamp"]
    assert plain(sf.Contact.get(cid)) == row

    status = sf.Contact.update(cid, {"Title": 'Head of "Compat", EMEA', "Description": None, "DoNotCall": False})
    assert status == 204
    updated = truth_row(sandbox, "Contact", cid)
    assert updated["Title"] == 'Head of "Compat", EMEA'
    assert updated["Description"] is None and updated["DoNotCall"] is False
    assert updated["SystemModstamp"] >= row["SystemModstamp"] and updated["LastModifiedById"] == user_id
    unchanged = set(row) - SYSTEM - {"Title", "Description", "DoNotCall"}
    assert {k: updated[k] for k in unchanged} == {k: row[k] for k in unchanged}
    assert plain(sf.Contact.get(cid)) == updated

    assert sf.Contact.delete(cid) == 204
    gone = truth_row(sandbox, "Contact", cid)
    assert gone["IsDeleted"] is True and gone["SystemModstamp"] >= updated["SystemModstamp"]
    assert {k: gone[k] for k in unchanged - {"IsDeleted"}} == {k: updated[k] for k in unchanged - {"IsDeleted"}}
    with pytest.raises(SalesforceResourceNotFound):
        sf.Contact.get(cid)
    soql = f"SELECT Id, IsDeleted, LastName FROM Contact WHERE Id = '{cid}'"
    assert sf.query(soql)["totalSize"] == 0
    all_rows = sf.query_all(soql, include_deleted=True)["records"]
    assert [plain(r) for r in all_rows] == [{"Id": cid, "IsDeleted": True, "LastName": payload["LastName"]}]
