"""The single-file leaderboard in a real browser: headless Chromium loads every figure and sorts a table
when a header is clicked. Slow (starts a browser); skipped where Chromium is not installed
(Debian: ``apt-get install chromium``)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmarks.leaderboard import generate
from benchmarks.store import ResultsStore, RunInfo
from core.records import Record

pytestmark = pytest.mark.slow

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# Run inside the page once it has loaded: are the figures decoded, and does a header click sort?
PROBE = """
<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const headers = t => [...t.tHead.rows[0].cells].map(c => c.innerText.trim());
  const table = [...document.querySelectorAll("table.sortable")].find(
      t => t.tBodies[0].rows.length >= 3 && headers(t).includes("0.0"));
  const col = headers(table).indexOf("0.0");
  const values = () => [...table.tBodies[0].rows].map(r => parseFloat(r.cells[col].innerText));
  const before = values();
  table.tHead.rows[0].cells[col].click();
  const up = values();
  table.tHead.rows[0].cells[col].click();
  const down = values();
  const out = document.createElement("pre");
  out.id = "probe-result";
  out.textContent = JSON.stringify({images: images.length, loaded: images.filter(i => i.complete && i.naturalWidth > 0).length,
                                    before, up, down});
  document.body.appendChild(out);
});
</script>
"""


def _browser() -> str:
    for name in BROWSERS:
        if found := shutil.which(name):
            return found
    pytest.skip(f"no Chromium found (tried {', '.join(BROWSERS)}); on Debian: apt-get install chromium")


def _store(tmp_path: Path) -> ResultsStore:
    store = ResultsStore(tmp_path / "store")
    for method, accs in (("drl", (0.91, 0.95)), ("ae", (0.97, 0.96)), ("vae", (0.93, 0.90))):
        for seed in (0, 1, 2):
            run = RunInfo(dataset="digits", method=method, protocol="probe", preset="quick", seed=seed,
                          config={"budget": {"iterations": 1000, "batch_size": 128}}, commit="abc123",
                          command=f"python -m benchmarks run --method {method} --protocol probe")
            store.write(run, [Record("accuracy", a + seed / 200, t=t, head="linear")
                              for t, a in zip((0.0, 1.0), accs, strict=True)])
    return store


def test_index_html_loads_its_figures_and_sorts_a_table_on_click(tmp_path):
    browser = _browser()
    out = tmp_path / "lb"
    generate(_store(tmp_path).frame(), out)
    page = out / "index.html"
    probed = out / "probed.html"  # beside index.html, so the figures' relative paths resolve the same
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
                          "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    found = re.search(r'<pre id="probe-result">(.*?)</pre>', dom, re.S)
    assert found, f"the probe script did not run; the browser printed {dom[:300]!r}"
    result = json.loads(found.group(1).replace("&quot;", '"'))
    assert result["images"] >= 1 and result["loaded"] == result["images"], result
    assert result["up"] == sorted(result["before"]) and result["down"] == sorted(result["before"], reverse=True)
    assert result["up"] != result["down"], "the column has distinct values, so sorting is visible"
