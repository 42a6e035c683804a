"""`dxtrack ui` in a real headless Chromium (Debian's chromium and chromium-driver): the page
shows the known groups and metrics, and a record written after the page opened appears without
a reload."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli_data import START, Dataset, error

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


class Dashboard:
    """`python -m dxtrack ui --port 0` in a child process, and its address."""

    def __init__(self, source: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dxtrack", "ui", "--port", "0", "--source", str(source)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # the announcement, once it listens
        assert "dxtrack dashboard: http://127.0.0.1:" in line, line + self.process.stderr.read()
        self.url = line.split()[2]

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return Dataset.generate(seed=11).write(tmp_path / "out")


@pytest.fixture
def dashboard(data_dir: Path) -> Iterator[Dashboard]:
    server = Dashboard(data_dir)
    yield server
    server.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1600",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_the_page_shows_the_groups_and_a_new_record_live(
    dashboard: Dashboard, browser: Any, data_dir: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    expected = Dataset.generate(seed=11).groups()
    browser.get(dashboard.url)
    wait = WebDriverWait(browser, 15)
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "[data-fingerprint]")))
    shown = {
        item.get_attribute("data-fingerprint"): item.find_element(By.CLASS_NAME, "count").text
        for item in browser.find_elements(By.CSS_SELECTOR, "[data-fingerprint]")
    }
    assert shown == {fp: f"{g['occurrences']:,}" for fp, g in expected.items()}
    metrics = {
        m.get_attribute("data-metric")
        for m in browser.find_elements(By.CSS_SELECTOR, "[data-metric]")
    }
    assert metrics == {"products.downloaded", "sync.seconds"}
    assert "No gaps" in browser.find_element(By.ID, "gaps").text

    # a click opens the group's latest traceback and its occurrences
    browser.find_element(By.CSS_SELECTOR, "[data-fingerprint='fp-price'] .group-head").click()
    trace = wait.until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-fingerprint='fp-price'] pre.tb"))
    )
    assert trace.text.rstrip().endswith(expected["fp-price"]["message"])
    wait.until(
        ec.presence_of_element_located(
            (By.CSS_SELECTOR, "[data-fingerprint='fp-price'] .occurrences table")
        )
    )

    # a record written after the page opened appears without a reload
    before = browser.execute_script("return performance.getEntriesByType('navigation').length")
    late = error(
        fingerprint="fp-late",
        type="RuntimeError",
        value="written after the page opened",
        timestamp=START + 30 * 86400,
        run_id="late" + "0" * 28,
        producer_id="ff" * 16,
        seq=1,
    )
    with (data_dir / "error.jsonl").open("ab") as f:
        f.write(json.dumps(late).encode() + b"\n")
    written = time.monotonic()
    item = wait.until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "[data-fingerprint='fp-late']"))
    )
    took = time.monotonic() - written
    assert "written after the page opened" in item.text
    assert (
        browser.execute_script("return performance.getEntriesByType('navigation').length") == before
    )
    assert "fp-price" in browser.find_element(
        By.CSS_SELECTOR, "[data-fingerprint='fp-price']"
    ).get_attribute("data-fingerprint")
    assert browser.find_element(By.CSS_SELECTOR, "[data-fingerprint='fp-price'] pre.tb"), (
        "still open"
    )
    print(f"the new record appeared {took:.2f} s after it was written")
    browser.save_screenshot(str(tmp_path / "dashboard.png"))
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000


def test_the_api(dashboard: Dashboard) -> None:
    """The snapshot the page draws, one group's occurrences, and nothing outside the package."""
    snapshot = dashboard.get("/api/snapshot")
    expected = Dataset.generate(seed=11).groups()
    assert {g["fingerprint"]: g["occurrences"] for g in snapshot["groups"]} == {
        fp: g["occurrences"] for fp, g in expected.items()
    }
    rows = dashboard.get("/api/errors/fp-rare")
    assert rows and {r["type"] for r in rows} == {"ZeroDivisionError"}
    assert dashboard.get("/api/errors/..%2F..%2Fetc") == []
    for path in ("/static/..%2F__init__.py", "/static/snapshot.py", "/static/../server.py"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(dashboard.url + path, timeout=10)
        assert refused.value.code == 404


def test_the_report_opens_offline_in_the_browser(
    browser: Any, data_dir: Path, tmp_path: Path
) -> None:
    """The report, opened from a file with the network off: its groups and charts are drawn."""
    from selenium.webdriver.common.by import By

    out = tmp_path / "report.html"
    subprocess.run(
        [sys.executable, "-m", "dxtrack", "report", "--source", str(data_dir), "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    browser.set_network_conditions(offline=True, latency=0, throughput=0)
    browser.get(out.as_uri())
    groups = browser.find_elements(By.CSS_SELECTOR, "[data-fingerprint]")
    assert len(groups) == len(Dataset.generate(seed=11).groups())
    bars = browser.find_elements(By.CSS_SELECTOR, "#errors-chart rect")
    assert len(bars) >= 4
    assert "per day" in browser.find_element(By.ID, "errors-chart-title").text
    lines = browser.find_elements(By.CSS_SELECTOR, "[data-metric] path")
    assert len(lines) == 4  # p50 and p95 of two metrics
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
