"""The HTML report in a real browser (headless Chromium): hostile catalog text runs no script and the
page loads nothing from the network, not even when escaping is bypassed (the CSP holds).

Network loads are detected with a recording HTTP server on 127.0.0.1 that the hostile text points at;
a control page without the CSP proves the detector sees loads when they happen.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from report_samples import index_plan, observation, sample_run, spread

from querywarden.plan import Buffers, PlanNode
from querywarden.query import SourceLocation
from querywarden.reports.render import render_report
from querywarden.verdict import QueryResult, RunResult, Verdict

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TITLE = "querywarden report: merge blocked: 2 of 7 queries block"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def chromium_binary() -> str:
    override = os.environ.get("QUERYWARDEN_CHROMIUM")
    if override:
        if not (os.path.isfile(override) and os.access(override, os.X_OK)):
            pytest.fail(f"QUERYWARDEN_CHROMIUM={override} is not an executable file", pytrace=False)
        return override
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "headless Chromium is required for the HTML report test and none was found on PATH "
        f"(looked for {', '.join(BROWSERS)}). Install it with `apt-get update && apt-get install -y chromium` "
        "(Debian/Ubuntu), or point QUERYWARDEN_CHROMIUM at a Chromium or Chrome binary.",
        pytrace=False,
    )


class Recorder:
    """A loopback HTTP server that records every request path it gets."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                recorder.paths.append(self.path)
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    try:
        yield server
    finally:
        server.close()


def browse(page: Path, tmp_path: Path, *mode: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    command = [
        chromium_binary(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        f"--user-data-dir={profile}",
        "--window-size=1280,2000",
        "--virtual-time-budget=3000",
        *mode,
        page.resolve().as_uri(),
    ]
    env = {**os.environ, "HOME": str(tmp_path)}
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert completed.returncode == 0, f"chromium exited {completed.returncode}: {completed.stderr[-2000:]}"
    return completed


def dom_title(dom: str) -> str:
    match = re.search(r"<title>(.*?)</title>", dom, re.S)
    assert match, dom[:500]
    return match.group(1)


def hostile_run(recorder: Recorder) -> RunResult:
    """The sample run plus a blocking query whose every field carries a script and a remote image."""
    payload = (
        "<script>document.title='pwned'</script>"
        f"<img src={recorder.url('sql.png')}>"
        f'<img src="{recorder.url("quoted.png")}">'
        f"<link rel=stylesheet href={recorder.url('style.css')}>"
    )
    sql = f"SELECT count(*) FROM time_entries /* {payload} */ WHERE user_id = %s"
    plan = PlanNode(
        node_type="Seq Scan",
        relation=f"time_entries{payload}",
        total_cost=18_334.5,
        buffers=Buffers(shared=16_396),
        detail=(("Filter", payload),),
    )
    result = QueryResult(
        name=f"hostile{payload}",
        verdict=Verdict.FAIL,
        blocking=True,
        reasons=(f"reason {payload}",),
        calls_per_minute=60.0,
        before=observation("hostile", index_plan(), 0.4, sql=sql),
        after=observation("hostile", plan, 38.0, sql=sql.replace("count(*)", "count(1)"), samples=spread(38.0)),
        source=SourceLocation(f"queries/{payload}.sql", 1),
        extra_ms_per_minute=2_256.0,
    )
    return RunResult(sample_run().queries + (result,))


def test_hostile_report_runs_no_script_and_loads_nothing(tmp_path: Path, recorder: Recorder) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_report(hostile_run(recorder), "html"), encoding="utf-8")

    dom = browse(page, tmp_path, "--dump-dom").stdout
    assert dom_title(dom) == TITLE
    assert "pwned" not in dom_title(dom)
    # The payload is in the page as text, not as elements.
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom
    assert not re.search(r"<img\b", dom) and not re.search(r"<script\b", dom) and not re.search(r"<link\b", dom)

    shot = tmp_path / "report.png"
    browse(page, tmp_path, f"--screenshot={shot}")
    data = shot.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert int.from_bytes(data[16:20], "big") == 1280  # IHDR width: the page was laid out and painted
    assert len(data) > 20_000

    assert recorder.paths == [], f"the report made network requests: {recorder.paths}"


def test_csp_blocks_scripts_and_loads_even_if_escaping_failed(tmp_path: Path, recorder: Recorder) -> None:
    html = render_report(sample_run(), "html")
    injected = (
        "<script>document.title='pwned'</script>"
        f'<img src="{recorder.url("leak.png")}">'
        f'<link rel="stylesheet" href="{recorder.url("leak.css")}">'
    )
    page = tmp_path / "tampered.html"
    page.write_text(html.replace("<main>", "<main>" + injected, 1), encoding="utf-8")
    dom = browse(page, tmp_path, "--dump-dom").stdout
    assert dom_title(dom) == "querywarden report: merge blocked: 1 of 6 queries blocks"
    assert recorder.paths == [], f"the CSP let requests through: {recorder.paths}"


def test_the_detector_sees_loads_and_scripts_without_the_csp(tmp_path: Path, recorder: Recorder) -> None:
    """Control: the same payload on a page without our CSP does run and does load."""
    page = tmp_path / "control.html"
    page.write_text(
        "<!doctype html><html><head><title>control</title></head><body>"
        "<script>document.title='ran'</script>"
        f'<img src="{recorder.url("control.png")}"></body></html>',
        encoding="utf-8",
    )
    dom = browse(page, tmp_path, "--dump-dom").stdout
    assert dom_title(dom) == "ran"
    assert "/control.png" in recorder.paths
