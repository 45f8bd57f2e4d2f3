"""Fixtures for the simple-salesforce compatibility tests.

One sandbox serves the whole pytest session: started here over HTTPS on a free
port (`sluice sandbox --tls --port 0 --json`), stopped with SIGTERM at the end.
The binary is `$SLUICE_BIN`, else `${CARGO_TARGET_DIR:-target}/debug/sluice`
under the repo root, else the target directory cargo itself reports.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import requests
from simple_salesforce import Salesforce

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))
from sluice_process import REPO, cargo_target_dir, start, stop  # noqa: E402
API_VERSION = "62.0"

# Enough rows that REST (2,000 a page, or 200 with Sforce-Query-Options) and Bulk
# (maxRecords) both need several pages.
RECORDS = "Account=1000,Contact=300,Opportunity=300,Lead=100,Case=100,User=20,Invoice__c=4500"
SEED = "7"


def sluice_bin() -> Path:
    if os.environ.get("SLUICE_BIN"):
        return Path(os.environ["SLUICE_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", "target"))
    candidate = (REPO / target / "debug" / "sluice") if not target.is_absolute() else target / "debug" / "sluice"
    if candidate.exists():
        return candidate
    return cargo_target_dir() / "debug" / "sluice"


class Sandbox:
    """A running `sluice sandbox` and an HTTPS session that trusts its CA."""

    def __init__(self, info: dict, http: requests.Session):
        self.info = info
        self.http = http
        self.instance_url = info["instance_url"]

    def token(self) -> dict:
        resp = self.http.post(
            self.info["login_url"] + "/services/oauth2/token",
            data={
                "grant_type": "password",
                "client_id": self.info["client_id"],
                "client_secret": self.info["client_secret"],
                "username": self.info["username"],
                "password": self.info["password"],
            },
            timeout=30,
        )
        resp.raise_for_status()
        return resp.json()

    def truth(self, obj: str) -> list[dict]:
        """Every row of `obj` (recycle bin included) from the admin API."""
        resp = self.http.get(f"{self.instance_url}/sandbox/v1/truth/{obj}", timeout=60)
        resp.raise_for_status()
        return [json.loads(line) for line in resp.text.splitlines() if line.strip()]

    def mutate(self, *ops: dict) -> dict:
        resp = self.http.post(f"{self.instance_url}/sandbox/v1/mutations", json={"mutations": list(ops)}, timeout=60)
        assert resp.status_code == 200, resp.text
        return resp.json()


def https_session(ca_file: str) -> requests.Session:
    s = requests.Session()
    s.verify = ca_file
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE (set on many machines) override
    # Session.verify; the sandbox is on loopback, so the environment has nothing to add.
    s.trust_env = False
    return s


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory) -> Sandbox:
    binary = sluice_bin()
    if not binary.exists():
        pytest.fail(f"sluice binary not found at {binary}: run `cargo build -p sluice-cli` or set SLUICE_BIN")
    work = tmp_path_factory.mktemp("sandbox")
    proc, line = start(
        binary,
        ["sandbox", "--tls", "--ca-file", str(work / "ca.pem"), "--port", "0", "--json",
         "--records", RECORDS, "--seed", SEED],
        work, work / "sandbox.log", "sandbox",
    )
    info = json.loads(line)
    try:
        yield Sandbox(info, https_session(info["ca_file"]))
    finally:
        stop(proc, 15)


@pytest.fixture(scope="session")
def requests_seen() -> list[str]:
    """URLs of every API response the client received (a response hook appends them)."""
    return []


@pytest.fixture(scope="session")
def sf(sandbox: Sandbox, requests_seen: list[str]) -> Salesforce:
    # A living org: some rows inserted, updated and deleted through the admin API
    # before any client reads it, so the truth is not just the generated data.
    sandbox.mutate(
        {"op": "churn", "object": "Account", "inserts": 20, "updates": 30, "deletes": 15},
        {"op": "churn", "object": "Invoice__c", "inserts": 40, "updates": 60, "deletes": 30},
    )
    tok = sandbox.token()
    session = https_session(sandbox.info["ca_file"])
    session.hooks["response"].append(lambda r, *a, **k: requests_seen.append(r.url))
    return Salesforce(
        instance_url=tok["instance_url"], session_id=tok["access_token"], session=session, version=API_VERSION
    )
