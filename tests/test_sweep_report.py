"""``mfnn report``: one self-contained HTML page for a sweep and for a run; its scaling fit recovers
the known exponent of the toy (y = x^2 n: slope 2 in x); the page renders in headless chromium
(every image decoded, no console errors, a screenshot written), or the test skips with a reason."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

import sweep_toy  # noqa: F401
from mfnn.errors import ConfigError
from mfnn.experiments.runner import run_experiment
from mfnn.sweeps import SweepSpec, run_sweep
from mfnn.sweeps.report import write_report


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "sw"
    spec = SweepSpec(experiment="sweep-toy", grid={"x": [1.0, 2.0, 4.0, 8.0], "n": [1, 3]}, seeds=[0, 1, 2])
    assert run_sweep(spec, out, executor="serial", progress=False).exit_code == 0
    return out


def test_sweep_report_fit_and_self_contained(sweep_dir):
    page = write_report(sweep_dir, metric="y", field="x").read_text()
    m = re.search(r"p = ([0-9.]+), 95% CI \[([0-9.]+), ([0-9.]+)\]", page)
    assert m, "no fitted slope in the report"
    p, lo, hi = map(float, m.groups())
    assert lo <= 2.0 <= hi and abs(p - 2.0) < 0.02  # y = x^2 n + N(0, 0.01^2/n) noise
    assert page.count('src="data:image/png;base64,') >= 2
    assert not re.search(r'(src|href)="(https?:|//)', page)  # nothing fetched from the network
    with pytest.raises(ConfigError, match="^--metric"):
        write_report(sweep_dir, metric="nope")
    with pytest.raises(ConfigError, match="^--field"):
        write_report(sweep_dir, metric="y", field="seedless")


def test_run_report(tmp_path):
    path = run_experiment("sweep-toy", out=tmp_path / "run", progress=False)
    page = write_report(path).read_text()
    assert "sweep-toy" in page and page.count("<img ") == 1 and "Environment" in page and "jax" in page


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _render(browser, page, shot):
    args = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,1800"]
    r = subprocess.run(args + ["--virtual-time-budget=10000", "--enable-logging=stderr", "--v=0", "--dump-dom",
                               page.as_uri()], capture_output=True, text=True, timeout=120)
    s = subprocess.run(args + [f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=120)
    body = re.search(r"<body[^>]*>", r.stdout)
    console = [ln for ln in r.stderr.splitlines() if "CONSOLE" in ln]
    return (body.group(0) if body else ""), console, s.returncode


@pytest.mark.slow
def test_report_renders_in_headless_chromium(sweep_dir, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium found (apt-get install chromium): the browser rendering check needs one")
    page = write_report(sweep_dir, out=tmp_path / "report.html", metric="y", field="x")
    body, console, rc = _render(browser, page, tmp_path / "report.png")
    n = int(re.search(r'data-images="(\d+)"', body).group(1))
    assert n >= 2 and f'data-decoded="{n}"' in body, body   # every image decoded
    assert console == [], console                            # no console messages (errors included)
    assert rc == 0 and (tmp_path / "report.png").stat().st_size > 10000
    # the check can fail: a broken image and a script error are seen
    bad = tmp_path / "bad.html"
    bad.write_text(page.read_text().replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1)
                   .replace("</body>", "<script>undefinedFunction()</script></body>"))
    body, console, _ = _render(browser, bad, tmp_path / "bad.png")
    assert f'data-decoded="{n - 1}"' in body and any("undefinedFunction" in c for c in console)
