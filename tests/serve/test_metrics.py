"""`/metrics` read by prometheus_client's own text parser: every family is named
`sluice_*`, and its values agree with what the API and the runs say."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import Serve, churn


def families(serve: Serve) -> dict:
    resp = serve.get("/metrics")
    assert resp.headers["content-type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(resp.text)}


def value(family, **labels) -> float:
    for sample in family.samples:
        if all(sample.labels.get(k) == v for k, v in labels.items()) and not sample.name.endswith(("_bucket", "_created")):
            return sample.value
    raise AssertionError(f"no {family.name} sample with {labels}: {family.samples}")


def test_metrics_need_the_token(serve: Serve):
    assert requests.get(serve.base + "/metrics", timeout=30).status_code == 401


def test_metrics_parse_and_agree_with_the_api(serve: Serve):
    # Lead fails every run, so it is paused again after 2 (whoever resumed it before).
    serve.wait("Lead paused", lambda: serve.flows()["Lead"]["state"] == "paused")
    churn(serve)
    before = families(serve)
    inserted_before = value(before["sluice_rows"], flow="Account", operation="inserted")
    runs_before = value(before["sluice_runs"], flow="Account", status="ok")
    # A run after the churn brings its rows.
    serve.wait("a run with the churn", lambda: value(
        families(serve)["sluice_rows"], flow="Account", operation="inserted") >= inserted_before + 10)
    found = families(serve)
    assert all(name.startswith("sluice_") for name in found), sorted(found)
    assert found["sluice_rows"].type == "counter"
    assert found["sluice_run_duration_seconds"].type == "histogram"
    assert value(found["sluice_runs"], flow="Account", status="ok") > runs_before
    # The first load counted every Account row it extracted.
    assert value(found["sluice_rows"], flow="Account", operation="extracted") >= 3000
    flows = serve.flows()
    # Lead failed (twice before it was paused, and again if the dashboard test resumed it)
    # and is paused; the others are not.
    assert value(found["sluice_runs"], flow="Lead", status="failed") >= 2
    assert value(found["sluice_paused"], flow="Lead") == 1
    assert value(found["sluice_consecutive_failures"], flow="Lead") == flows["Lead"]["consecutive_failures"] > 0
    assert value(found["sluice_paused"], flow="Account") == 0
    lag = value(found["sluice_lag_seconds"], flow="Account")
    assert 0 <= lag <= flows["Account"]["lag_seconds"] + 5, (lag, flows["Account"])
    assert value(found["sluice_last_success_timestamp_seconds"], flow="Account") > 1.7e9
    used = value(found["sluice_api_calls_used"])
    limit = value(found["sluice_api_calls_limit"])
    assert 0 < used <= limit and value(found["sluice_api_calls_remaining"]) == limit - used
    durations = found["sluice_run_duration_seconds"].samples
    count = next(s.value for s in durations if s.name.endswith("_count"))
    assert count >= 3, durations
