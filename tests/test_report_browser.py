"""The report's HTML page in a real browser: Debian's Chromium, headless, driven over the
DevTools protocol. The page must draw every chart with no console error and no network request,
opened straight from disk; a screenshot is saved in the test's tmp folder."""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from retro.insights.charts import build_charts
from retro.insights.facts import ActionFact, IncidentFacts
from retro.insights.output import write_outputs
from retro.insights.repeats import Pair
from retro.insights.report import build_report

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
    "--window-size=1400,1600",
]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _incidents() -> list[IncidentFacts]:
    base = datetime(2024, 1, 3, 9, 0, tzinfo=UTC)
    out = []
    for n in range(24):
        start = base + timedelta(days=11 * n)
        times = {
            "impact_start": start,
            "detected": start + timedelta(minutes=3 + n % 5),
            "acknowledged": start + timedelta(minutes=6 + n % 7),
            "mitigated": start + timedelta(minutes=40 + 5 * n),
            "resolved": start + timedelta(minutes=70 + 9 * n),
        }
        out.append(
            IncidentFacts(
                id=f"INC-{n}",
                title=f"incident {n}",
                origin="draft" if n % 3 else "pagerduty",
                severity=f"SEV{1 + n % 3}",
                services=[["checkout", "search", "auth"][n % 3]],
                times=times,
                origins=dict.fromkeys(times, "inferred" if n % 3 else "imported"),
                has_postmortem=n % 3 != 0,
                status="final" if n % 2 else "draft",
                reviewed_at=start + timedelta(days=4) if n % 2 else None,
                actions=[
                    ActionFact(
                        title=f"fix {n}",
                        status="done" if n % 4 == 0 else "open",
                        priority="P1",
                        owner=["sre team", "platform team"][n % 2],
                        due=start + timedelta(days=30),
                        closed=start + timedelta(days=9) if n % 4 == 0 else None,
                    )
                ],
                imported_from=[] if n % 3 else ["pagerduty"],
            )
        )
    return out


class DevTools:
    """A minimal DevTools-protocol client over one page target's websocket."""

    def __init__(self, url: str) -> None:
        from websockets.sync.client import connect

        self._session = connect(url, max_size=64 * 2**20)
        self.ws = self._session.__enter__()
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return dict(msg.get("result") or {})
            self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            self.events.append(msg)
            if msg.get("method") == method:
                return msg
        raise AssertionError(f"no {method} within {timeout}s")

    def close(self) -> None:
        self._session.__exit__(None, None, None)


def _start(binary: str, profile: Path) -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen(
        [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if port_file.is_file() and port_file.read_text().strip():
            return proc, int(port_file.read_text().splitlines()[0])
        if proc.poll() is not None:
            raise AssertionError(f"chromium exited with {proc.returncode}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("chromium did not open its DevTools port")


@pytest.mark.slow
def test_the_html_report_draws_every_chart_in_a_real_browser(tmp_path: Path) -> None:
    binary = _chromium()
    if binary is None:
        pytest.skip(
            "Chromium not found: apt-get install -y chromium (the Makefile's test set-up does)"
        )
    pytest.importorskip("websockets.sync.client", reason="websockets (a dev dependency) is missing")
    incidents = _incidents()
    report = build_report(
        incidents,
        group_by="quarter",
        pairs=[Pair("INC-7", "INC-4", 0.71, ["search"], ["fix 4"])],
        as_of=datetime(2024, 12, 31, tzinfo=UTC),
    )
    expected = len(build_charts(report))
    out = tmp_path / "report"
    write_outputs(report, out)
    page = out / "report.html"
    assert "<script src" not in page.read_text(encoding="utf-8")  # nothing fetched: all inline

    proc, port = _start(binary, tmp_path / "profile")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            targets = json.load(resp)
        target = next(t for t in targets if t.get("type") == "page")
        dev = DevTools(target["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log", "Network"):
            dev.call(f"{domain}.enable")
        dev.call("Page.navigate", url=page.resolve().as_uri())
        dev.wait_for("Page.loadEventFired")
        drawn = dev.call(
            "Runtime.evaluate",
            expression="""JSON.stringify({
              ready: window.reportChartsReady,
              charts: Object.keys(Chart.instances).length,
              canvases: Array.from(document.querySelectorAll('canvas[data-chart]')).map(c => ({
                id: c.id, w: c.width, h: c.height, chart: !!Chart.getChart(c),
                inked: (() => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                                 let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; })()
              }))
            })""",
            returnByValue=True,
        )
        state = json.loads(drawn["result"]["value"])
        shot = dev.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        png = base64.b64decode(shot["data"])
        (tmp_path / "report.png").write_bytes(png)
        dev.call("Runtime.evaluate", expression="1")  # drain late console events
        dev.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()

    errors = [
        e
        for e in dev.events
        if e.get("method") == "Runtime.exceptionThrown"
        or (
            e.get("method") == "Runtime.consoleAPICalled"
            and e["params"].get("type") in ("error", "assert")
        )
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error")
    ]
    assert errors == []
    requests = [
        e["params"]["request"]["url"]
        for e in dev.events
        if e.get("method") == "Network.requestWillBeSent"
    ]
    assert all(url.startswith(("file:", "data:", "about:")) for url in requests), requests
    assert state["ready"] == expected == state["charts"] == len(state["canvases"]) == 7
    for canvas in state["canvases"]:
        assert canvas["chart"] and canvas["w"] > 100 and canvas["h"] > 100, canvas
        assert canvas["inked"] > 500, f"{canvas['id']} drew nothing"
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert (tmp_path / "report.png").is_file()
    if os.environ.get("RETRO_REPORT_SCREENSHOT"):  # `make report-demo` keeps a copy
        Path(os.environ["RETRO_REPORT_SCREENSHOT"]).write_bytes(png)
