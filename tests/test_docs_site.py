"""The built documentation site, opened in headless Chromium (Debian's ``chromium`` package).

Every page of ``site/`` (built by ``make docs``) is loaded from a local HTTP server through the
Chrome DevTools Protocol and must: load with no console error, no uncaught exception and no
failed resource; have every ``<img>`` decoded (``naturalWidth > 0``); have no math left
unrendered (no ``arithmatex`` element, no ``\\(``/``\\[``/``$$`` or ``$...$`` in the visible text
outside code, every ``<math>`` element laid out with a non-zero size); and every internal link
must resolve to a file of the site (and its ``#fragment`` to an id of that page).  Screenshots of
the home page and of the PNAS tutorial are written to ``build/docs-check/``.

Skipped, with the reason, when no site was built or no chromium is installed.  ``make docs`` runs
this file right after building the site.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import pathlib
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.parse

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SITE = ROOT / "site"
SHOTS = ROOT / "build" / "docs-check"
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (SITE / "index.html").is_file(), reason="no built site: run `make docs` first"),
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (Debian: apt-get install chromium)"),
]


# --- a minimal Chrome DevTools Protocol client over a stdlib websocket ---------------------------

class CDP:
    """Just enough of RFC 6455 and CDP: masked text frames out, (fragmented) frames in."""

    def __init__(self, ws_url: str, timeout: float = 60.0):
        u = urllib.parse.urlparse(ws_url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert b" 101 " in head.split(b"\r\n")[0], head
        self.next_id, self.events = 0, []

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("devtools closed the connection")
            buf += chunk
        return buf

    def _recv_message(self) -> dict:
        data = b""
        while True:
            b0, b1 = self._recv_exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._recv_exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._recv_exact(8))[0]
            payload = self._recv_exact(n)
            if b0 & 0x0F == 0x9:  # ping
                continue
            data += payload
            if b0 & 0x80:
                return json.loads(data)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        raw = json.dumps(msg).encode()
        mask = os.urandom(4)
        n = len(raw)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n)
                                if n < 65536 else bytes([0x80 | 127]) + struct.pack(">Q", n))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(raw)))
        while True:
            reply = self._recv_message()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 60.0) -> dict:
        end = time.time() + timeout
        while time.time() < end:
            for i, ev in enumerate(self.events):
                if ev.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._recv_message())
        raise TimeoutError(method)


@pytest.fixture(scope="module")
def server():
    handler = functools.partial(QuietHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # noqa: D102 - silence the access log
        pass


@pytest.fixture(scope="module")
def browser():
    profile = tempfile.mkdtemp(prefix="mfnn-docs-chromium-")
    proc = subprocess.Popen([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--disable-dev-shm-usage", "--remote-debugging-port=0", f"--user-data-dir={profile}",
                             "--window-size=1280,900", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ws = None
    end = time.time() + 60
    while time.time() < end and ws is None:
        line = proc.stderr.readline()
        m = re.search(r"DevTools listening on (ws://\S+)", line or "")
        ws = m.group(1) if m else None
        if not line and proc.poll() is not None:
            break
    if ws is None:
        proc.kill()
        pytest.skip("chromium did not start a DevTools endpoint within 60 s")
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # drain stderr
    cdp = CDP(ws)
    target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        cdp.send(f"{domain}.enable", session=session)
    cdp.send("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 900, "deviceScaleFactor": 1,
                                                    "mobile": False}, session=session)
    yield cdp, session
    proc.kill()
    proc.wait()
    shutil.rmtree(profile, ignore_errors=True)


PAGES = sorted(p.relative_to(SITE).as_posix() for p in SITE.rglob("*.html")) if SITE.is_dir() else []

INSPECT = r"""(() => {
  const imgs = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))
                                   .map(i => (i.alt || i.src).slice(0, 80));
  const body = document.querySelector("article") || document.body;
  const clone = body.cloneNode(true);
  clone.querySelectorAll("pre, code, script, style, math").forEach(e => e.remove());
  const text = clone.innerText || clone.textContent;
  const raw = [];
  for (const re of [/\\\(/, /\\\[/, /\$\$/, /\$[^$\s][^$\n]*[^$\s\\]\$/]) { const m = text.match(re); if (m) raw.push(m[0].slice(0, 60)); }
  const arithmatex = document.querySelectorAll(".arithmatex").length;
  const flatMath = [...document.querySelectorAll("math")].filter(m => {
      const r = m.getBoundingClientRect(); return r.width === 0 || r.height === 0; })
    .filter(m => m.closest("details:not([open])") === null && m.offsetParent !== null).length;
  const links = [...document.querySelectorAll("a[href]")].map(a => a.href);
  return JSON.stringify({imgs, raw, arithmatex, flatMath, links, nmath: document.querySelectorAll("math").length});
})()"""


def _errors(events: list) -> list:
    out = []
    for ev in events:
        m, p = ev.get("method"), ev.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
        elif m == "Runtime.exceptionThrown":
            out.append("exception: " + p.get("exceptionDetails", {}).get("text", "") + " " +
                       str(p.get("exceptionDetails", {}).get("exception", {}).get("description", ""))[:200])
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            out.append("log: " + p["entry"].get("text", "") + " " + p["entry"].get("url", ""))
        elif m == "Network.loadingFailed" and not p.get("canceled"):
            out.append("network: " + p.get("errorText", ""))
    return out


def _load(cdp: CDP, session: str, url: str) -> dict:
    cdp.events.clear()
    cdp.send("Page.navigate", {"url": url}, session=session)
    cdp.wait_event("Page.loadEventFired", timeout=60)
    time.sleep(0.3)  # let late scripts (search worker) report
    result = cdp.send("Runtime.evaluate", {"expression": INSPECT, "returnByValue": True}, session=session)
    info = json.loads(result["result"]["value"])
    info["errors"] = _errors(cdp.events)
    return info


def _ids(path: pathlib.Path) -> set:
    return set(re.findall(r'\bid="([^"]+)"', path.read_text(errors="replace")))


def test_site_has_the_expected_pages():
    for page in ("index.html", "getting-started.html", "tutorials/pnas.html", "tutorials/colt.html",
                 "tutorials/nguyen-pham.html", "reference/solvers.html", "reference/cli.html", "reference/experiments.html", "results.html"):
        assert page in PAGES, page
    # executed tutorials put their figures on the page (inline PNGs)
    for page, n in (("tutorials/pnas.html", 3), ("tutorials/colt.html", 2), ("tutorials/nguyen-pham.html", 1)):
        assert (SITE / page).read_text().count("<img") >= n, page


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_clean(server, browser, page):
    cdp, session = browser
    info = _load(cdp, session, f"{server}/{page}")
    assert not info["errors"], info["errors"]
    assert not info["imgs"], f"images that did not decode: {info['imgs']}"
    assert info["arithmatex"] == 0 and not info["raw"], f"unrendered math: {info['raw']}"
    assert info["flatMath"] == 0, f"{info['flatMath']} of {info['nmath']} <math> elements have no size"
    base = urllib.parse.urlparse(server)
    for href in info["links"]:
        u = urllib.parse.urlparse(href)
        if u.scheme not in ("http", "https") or u.netloc != base.netloc:
            continue
        path = urllib.parse.unquote(u.path).lstrip("/") or "index.html"
        target = SITE / path
        if target.is_dir():
            target = target / "index.html"
        assert target.is_file(), f"{page}: broken link {href}"
        if u.fragment and target.suffix == ".html":
            assert urllib.parse.unquote(u.fragment) in _ids(target), f"{page}: no #{u.fragment} in {path}"


def test_screenshots(server, browser):
    cdp, session = browser
    SHOTS.mkdir(parents=True, exist_ok=True)
    for page, name in (("index.html", "home.png"), ("tutorials/pnas.html", "tutorial-pnas.png")):
        _load(cdp, session, f"{server}/{page}")
        shot = cdp.send("Page.captureScreenshot", {"format": "png"}, session=session)
        data = base64.b64decode(shot["data"])
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, len(data)
        (SHOTS / name).write_bytes(data)
