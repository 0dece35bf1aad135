"""Fixtures for the website checks: a local HTTP server and a headless Chromium driven over CDP.

The site tests run against an already built ``_build/html`` (``make book`` builds it; ``make test``
builds it before running them). Without a build they are skipped with a message.

Chromium is driven through the Chrome DevTools Protocol (CDP) with ``websocket-client``. Every
request a page makes, including requests from workers and iframes (auto-attached), is recorded from
``Network.requestWillBeSent``, so "no request leaves 127.0.0.1" is checked on what the browser
really asked for, after all scripts ran. As a second line of defence, ``--host-resolver-rules``
makes every host name other than 127.0.0.1 unresolvable, so a stray request fails fast instead of
hanging (it is still recorded, and the test still fails).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SITE = REPO / "_build" / "html"

# Page-level JavaScript errors that are known and harmless (see NOTES-book.md): sphinx-thebe
# declares this constant twice. Thebe itself is never activated (checked by the tests).
KNOWN_JS_ERRORS = (re.compile(r"THEBE_JS_URL.*already been declared"),)


def pytest_collection_modifyitems(config, items):
    if (SITE / "index.html").is_file():
        return
    skip = pytest.mark.skip(
        reason=f"{SITE / 'index.html'} does not exist: build the site first with `make book` "
        "(`make test` builds it before running these tests)"
    )
    for item in items:
        if Path(item.path).is_relative_to(Path(__file__).parent):
            item.add_marker(skip)


def html_pages() -> list[Path]:
    """Every page of the built site (not the theme's template fragments under _static/)."""
    return sorted(
        p
        for p in SITE.rglob("*.html")
        if not p.relative_to(SITE).parts[0] in {"_static", "_sources", "_images"}
    )


@pytest.fixture(scope="session")
def site() -> Path:
    return SITE


# ----------------------------------------------------------------------------- HTTP server


@pytest.fixture(scope="session")
def server():
    """``python -m http.server`` on 127.0.0.1, on a free port chosen by the OS; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", str(SITE)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
        match = re.search(r"port (\d+)", line)
        if not match:
            raise RuntimeError(f"http.server did not start: {line!r}")
        yield f"http://127.0.0.1:{match.group(1)}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ----------------------------------------------------------------------------- Chromium over CDP


def find_chromium() -> str:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    pytest.fail(
        "Chromium is required for the site tests but was not found on PATH. Install it with "
        "`apt-get update && apt-get install -y chromium` (`make venv` does this), or set CHROMIUM "
        "to the browser's path."
    )


class CDPError(RuntimeError):
    pass


class CDP:
    """A minimal synchronous Chrome DevTools Protocol client over one browser websocket (flat sessions)."""

    def __init__(self, ws_url: str):
        import websocket  # websocket-client, installed with jupyter

        self._websocket = websocket
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.ids = itertools.count(1)
        self.events: list[dict] = []

    def close(self):
        self.ws.close()

    def _post(self, method, params=None, session=None) -> int:
        mid = next(self.ids)
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        return mid

    def _recv(self, deadline: float) -> dict | None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        self.ws.settimeout(remaining)
        try:
            msg = json.loads(self.ws.recv())
        except self._websocket.WebSocketTimeoutException:
            return None
        if "method" in msg:
            self._on_event(msg)
        return msg

    def _on_event(self, msg: dict):
        self.events.append(msg)
        if msg["method"] == "Target.attachedToTarget":
            # A worker or out-of-process iframe of the page: record its requests too, then let it run.
            child = msg["params"]["sessionId"]
            self._post("Network.enable", session=child)
            self._post("Target.setAutoAttach",
                       {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True}, child)
            self._post("Runtime.runIfWaitingForDebugger", session=child)

    def send(self, method, params=None, session=None, timeout=30.0) -> dict:
        mid = self._post(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._recv(deadline)
            if msg is None:
                raise CDPError(f"timed out after {timeout}s waiting for {method}")
            if msg.get("id") == mid:
                if "error" in msg:
                    raise CDPError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def wait_for(self, method: str, since: int, timeout: float) -> bool:
        """Wait until an event named ``method`` has arrived at index >= ``since``."""
        deadline = time.monotonic() + timeout
        while True:
            if any(e["method"] == method for e in self.events[since:]):
                return True
            if self._recv(deadline) is None:
                return False

    def drain(self, quiet: float = 0.5, timeout: float = 5.0):
        """Read events until no network request has started for ``quiet`` seconds."""
        end = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() < end:
            msg = self._recv(min(end, last + quiet))
            if msg is None:
                if time.monotonic() >= last + quiet:
                    return
                continue
            if msg.get("method") == "Network.requestWillBeSent":
                last = time.monotonic()


@dataclass
class PageReport:
    path: str  # relative to _build/html
    url: str
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "url: reason" for loopback requests that failed
    js_errors: list[str] = field(default_factory=list)
    dom: dict = field(default_factory=dict)


# Runs in the page after "load": waits for MathJax's first typeset and for every Mermaid diagram
# (opening dropdowns and scrolling lazily rendered diagrams into view), then reports what it sees.
SETTLE_JS = r"""
(async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const until = async (cond, ms) => { const t0 = Date.now();
    while (!cond() && Date.now() - t0 < ms) await sleep(50); return cond(); };
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    try { await MathJax.startup.promise; } catch (e) {}
  }
  document.querySelectorAll('details').forEach((d) => { d.open = true; });
  document.querySelectorAll('button.toggle-button.toggle-button-hidden').forEach((b) => b.click());
  const diagrams = () => [...document.querySelectorAll('.mermaid')]
      .filter((el) => !el.closest('.mermaid-fullscreen-modal'));
  // mermaid sets data-processed before it renders; a diagram is done when its <svg> is in place
  // (an unparsable diagram becomes an <svg aria-roledescription="error">) or rendering failed.
  const settled = (el) => !!el.querySelector('svg[aria-roledescription]')
      || el.hasAttribute('data-mermaid-render-failed');
  await until(() => diagrams().every((el) => settled(el) || el.hasAttribute('data-mermaid-deferred')), 15000);
  for (const el of diagrams().filter((el) => !settled(el))) {
    el.scrollIntoView();
    await until(() => settled(el), 5000);
  }
  const all = diagrams();
  const svgs = all.map((el) => el.querySelector('svg[aria-roledescription]'));
  const clone = document.body.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, mjx-container, .mermaid, textarea')
       .forEach((el) => el.remove());
  const text = clone.textContent;
  const rawTex = ['$$', '\\[', '\\]', '\\(', '\\)', '\\begin{'].filter((s) => text.includes(s));
  return {
    title: document.title,
    mermaid_blocks: all.length,
    mermaid_svgs: svgs.filter((s) => s && s.getAttribute('aria-roledescription') !== 'error').length,
    mermaid_errors: svgs.filter((s) => s && s.getAttribute('aria-roledescription') === 'error').length
        + all.filter((el) => el.hasAttribute('data-mermaid-render-failed')).length,
    mermaid_kinds: svgs.filter((s) => s).map((s) => s.getAttribute('aria-roledescription')),
    // each diagram box must hold exactly its own drawing (clock-based ids once drew two in one box)
    mermaid_svg_ids: svgs.filter((s) => s).map((s) => s.id),
    mermaid_boxes_not_one_svg: all.filter((el) => el.querySelectorAll('svg[aria-roledescription]').length !== 1).length,
    mathjax_loaded: !!(window.MathJax && window.MathJax.version),
    mjx_containers: document.querySelectorAll('mjx-container').length,
    mjx_errors: document.querySelectorAll('mjx-merror').length,
    raw_tex: rawTex,
    thebe_buttons: document.querySelectorAll('.thebe-launch-button, [class*="thebe-launch"]').length,
  };
})()
"""


def _is_loopback(url: str, base: str) -> bool:
    return url == base or url.startswith(base + "/")


@pytest.fixture(scope="session")
def crawl(server, site):
    """Load every page in headless Chromium once; returns {relative path: PageReport}."""
    chromium = find_chromium()
    profile = tempfile.mkdtemp(prefix="recrl-site-chromium-")
    args = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-dev-shm-usage",
        "--disable-features=Translate,OptimizationHints,MediaRouter,InterestFeedContentSuggestions",
        "--mute-audio",
        "--window-size=1280,1024",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "about:blank",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    cdp = None
    try:
        port_file = Path(profile, "DevToolsActivePort")
        deadline = time.monotonic() + 30
        while not (port_file.is_file() and len(port_file.read_text().split()) >= 2):
            if proc.poll() is not None:
                pytest.fail(f"Chromium exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("Chromium did not open its DevTools port within 30 s")
            time.sleep(0.05)
        port, path = port_file.read_text().split()[:2]
        cdp = CDP(f"ws://127.0.0.1:{port}{path}")

        target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for method in ("Page.enable", "Network.enable", "Runtime.enable"):
            cdp.send(method, session=session)
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True}, session)
        cdp.send("Target.setAutoAttach",
                 {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True}, session)

        reports = {}
        for page in html_pages():
            rel = page.relative_to(site).as_posix()
            url = f"{server}/{rel}"
            report = PageReport(path=rel, url=url)
            start = len(cdp.events)
            cdp.send("Page.navigate", {"url": url}, session)
            if not cdp.wait_for("Page.loadEventFired", start, timeout=30):
                report.js_errors.append("page did not fire 'load' within 30 s")
            if rel == "index.html":  # a meta-refresh redirect to the preface
                cdp.wait_for("Page.frameNavigated", start, timeout=5)
                cdp.drain(quiet=1.0)
            result = cdp.send(
                "Runtime.evaluate",
                {"expression": SETTLE_JS, "awaitPromise": True, "returnByValue": True},
                session,
                timeout=60,
            )
            if "exceptionDetails" in result:
                report.js_errors.append(f"settle script failed: {result['exceptionDetails']}")
            else:
                report.dom = result["result"]["value"]
            cdp.drain()

            status = {}
            for ev in cdp.events[start:]:
                method, params = ev["method"], ev.get("params", {})
                if method == "Network.requestWillBeSent":
                    req_url = params["request"]["url"]
                    report.requests.append(req_url)
                    status[params["requestId"]] = req_url
                elif method == "Network.webSocketCreated":
                    report.requests.append(params["url"])
                elif method == "Network.responseReceived":
                    code = params["response"]["status"]
                    req_url = params["response"]["url"]
                    if code >= 400 and _is_loopback(req_url, server) and not req_url.endswith("/favicon.ico"):
                        report.failed.append(f"{req_url}: HTTP {code}")
                elif method == "Network.loadingFailed":
                    req_url = status.get(params["requestId"], "?")
                    if _is_loopback(req_url, server) and not params.get("canceled"):
                        report.failed.append(f"{req_url}: {params.get('errorText')}")
                elif method == "Runtime.exceptionThrown":
                    details = params["exceptionDetails"]
                    text = details.get("exception", {}).get("description") or details.get("text", "")
                    if not any(p.search(text) for p in KNOWN_JS_ERRORS):
                        report.js_errors.append(text.splitlines()[0] if text else repr(details))
            reports[rel] = report
        return reports
    finally:
        if cdp is not None:
            try:
                cdp.send("Browser.close", timeout=5)
            except Exception:
                pass
            cdp.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
