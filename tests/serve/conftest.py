"""Fixtures for the `sluice serve` tests with software we did not write.

One sandbox (HTTP, loopback, free port) and one `sluice serve` over a DuckDB file serve
the session: flows Account and Contact every 2 s, and Lead with a field the org does not
have, so that it fails and is paused after 2 runs. The binary is `$SLUICE_BIN`, else the
release build in the target directory cargo reports.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from sluice_process import cargo_target_dir, start, stop  # noqa: E402
TOKEN = "dashboard-test-token-0123456789"


def sluice_bin() -> Path:
    if os.environ.get("SLUICE_BIN"):
        return Path(os.environ["SLUICE_BIN"])
    return cargo_target_dir() / "release" / "sluice"


class Serve:
    """A running `sluice serve`: its base URL and an authenticated session."""

    def __init__(self, base: str, sandbox: dict, log: Path):
        self.base = base
        self.sandbox = sandbox
        self.log = log
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.headers["Authorization"] = f"Bearer {TOKEN}"

    def get(self, path: str):
        resp = self.http.get(self.base + path, timeout=30)
        assert resp.status_code == 200, f"{path}: {resp.status_code} {resp.text}"
        return resp

    def flows(self) -> dict[str, dict]:
        return {f["object"]: f for f in self.get("/api/v1/flows").json()}

    def wait(self, what: str, check, timeout: float = 90):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.2)
        pytest.fail(f"timed out waiting for {what}; log:\n{self.log.read_text(errors='replace')[-4000:]}")


@pytest.fixture(scope="session")
def serve(tmp_path_factory) -> Serve:
    work = tmp_path_factory.mktemp("serve")
    sb_proc, line = start(
        sluice_bin(),
        ["sandbox", "--port", "0", "--json", "--records", "Account=3000,Contact=2000,Lead=100", "--seed", "11"],
        work, work / "sandbox.log", "sandbox",
    )
    sandbox = json.loads(line)
    (work / "sluice.toml").write_text(f"""
[source]
type = "salesforce"
login_url = "{sandbox['login_url']}"
auth = "password"
client_id = "{sandbox['client_id']}"
client_secret = "{sandbox['client_secret']}"
username = "{sandbox['username']}"
password = "{sandbox['password']}"

[serve]
listen = "127.0.0.1:0"
token = "{TOKEN}"

[destination]
type = "duckdb"
path = "{work / 'warehouse.duckdb'}"

[defaults]
every = "2s"
reconcile_every = "never"

[[flows]]
object = "Account"

[[flows]]
object = "Contact"

[[flows]]
object = "Lead"
fields = ["Id", "Name", "NoSuchField__c"]
pause_after_failures = 2
""")
    serve_proc, line = start(
        sluice_bin(), ["--config", str(work / "sluice.toml"), "serve"], work, work / "serve.log", "sluice serve"
    )
    match = re.search(r"http://(\S+)/api/v1", line)
    assert match, line
    running = Serve(f"http://{match.group(1)}", sandbox, work / "serve.log")
    try:
        # Both good flows committed and Lead paused: the page then shows all three badges.
        running.wait("the first loads", lambda: all(
            f["window_end"] for o, f in running.flows().items() if o != "Lead"
        ) and running.flows()["Lead"]["state"] == "paused")
        yield running
    finally:
        code = stop(serve_proc, 60)
        stop(sb_proc, 60)
        assert code == 0, f"serve exited {code} on SIGTERM; log:\n{running.log.read_text(errors='replace')[-4000:]}"


def churn(serve: Serve) -> None:
    url = serve.sandbox["instance_url"] + "/sandbox/v1/mutations"
    body = {"mutations": [{"op": "churn", "object": "Account", "inserts": 10, "updates": 20, "deletes": 3}]}
    resp = requests.post(url, json=body, timeout=30)
    assert resp.status_code == 200, resp.text
    requests.post(serve.sandbox["instance_url"] + "/sandbox/v1/clock", json={"advance_secs": 3.0}, timeout=30)
