"""The dashboard in a real browser: Debian's chromium, driven by Playwright for Python.
It asks for the token once, its badges match the API, "Run now" starts a run that shows up
in the list, and "Resume" resumes a paused flow. The screenshot goes to the test's temporary
directory, and to $SLUICE_SCREENSHOT_DIR when set (`SLUICE_SCREENSHOT_DIR=docs scripts/compat`
refreshes docs/dashboard.png, which the README shows)."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from conftest import TOKEN, Serve, churn

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As root, and on a machine with no outside network: no sandbox, no background calls home.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def page(serve: Serve):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(serve.base + "/")
        yield page
        browser.close()


def test_it_asks_for_the_token_then_shows_every_flow(serve: Serve, page):
    expect(page.locator("#login")).to_be_visible()
    page.fill("#token", TOKEN)
    page.click("#login-form button")
    expect(page.locator("#login")).to_be_hidden()
    expect(page.locator("#flows tbody tr")).to_have_count(3)
    flows = serve.flows()
    for name, flow in flows.items():
        badge = page.locator(f'#flows tr[data-flow="{name}"] .badge')
        expect(badge).to_have_attribute("data-freshness", flow["freshness"])
    expect(page.locator('#flows tr[data-flow="Lead"] .badge')).to_have_attribute("data-freshness", "error")
    expect(page.locator('#flows tr[data-flow="Lead"] .err')).to_contain_text("NoSuchField__c")
    expect(page.locator('#flows tr[data-flow="Lead"] .hint')).to_contain_text("sluice discover --object")
    expect(page.locator('#flows tr[data-flow="Account"] .badge')).to_have_attribute("data-freshness", "on_time")
    expect(page.locator("#budget")).to_contain_text("API calls")
    expect(page.locator("#chart rect").first).to_be_attached()


def test_run_now_starts_a_run_that_appears_in_the_list(serve: Serve, page, tmp_path):
    # A scheduled run of Contact may be under way (every 2 s): the page then says so (409)
    # and the user clicks again once it has ended.
    message = page.locator("#message")
    deadline = time.monotonic() + 60
    while True:
        page.evaluate("document.getElementById('message').textContent = ''")
        page.click('#flows tr[data-flow="Contact"] button.run')
        expect(message).to_contain_text(re.compile("started run |is running in run "))
        if "started run " in message.inner_text():
            break
        assert time.monotonic() < deadline, message.inner_text()
        page.wait_for_timeout(300)
    run_id = message.inner_text().split("started run ")[1].strip()
    row = page.locator(f'#runs tr[data-run="{run_id}"]')
    expect(row).to_be_visible(timeout=60_000)
    expect(row.locator(".status")).to_have_text("ok", timeout=60_000)
    assert serve.get(f"/api/v1/runs/{run_id}").json()["flows"][0]["flow"] == "Contact"
    # With a few changes and runs behind it, the page as a user sees it.
    churn(serve)
    serve.wait("the churn's run", lambda: (serve.flows()["Account"]["last_run"] or {}).get("rows_inserted", 0) > 0)
    page.wait_for_timeout(2500)
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("SLUICE_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["SLUICE_SCREENSHOT_DIR"]) / "dashboard.png")


def test_pause_and_resume_from_the_page(serve: Serve, page):
    # A healthy flow: paused and resumed by hand, the API agrees each time.
    page.click('#flows tr[data-flow="Account"] button.pause')
    serve.wait("Account paused", lambda: serve.flows()["Account"]["state"] == "paused")
    expect(page.locator('#flows tr[data-flow="Account"] .state')).to_have_text("paused", timeout=10_000)
    page.click('#flows tr[data-flow="Account"] button.resume')
    serve.wait("Account resumed", lambda: serve.flows()["Account"]["state"] != "paused")
    # The paused, failing flow: resumed, it runs again at once (and fails again).
    before = serve.flows()["Lead"]["last_run"]["run_id"]
    page.click('#flows tr[data-flow="Lead"] button.resume')
    serve.wait("Lead to run after resuming", lambda: serve.flows()["Lead"]["last_run"]["run_id"] != before)
    assert serve.flows()["Lead"]["last_run"]["phase"] == "failed"
