"""Headless Chromium for the report: render a page and read back what it drew, take
screenshots. The test of the report and ``docs/screenshots.py`` share it.

`render` loads a copy of the page with a probe script added: it records script errors and
``console.error`` calls, and once the page has settled it writes a JSON summary into the DOM
(``<pre id="hda-probe">``), read back through ``--dump-dom``: per plot its title, size, marks
drawn and any title that overlaps another text or the plot area; per section its box.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

#: Collects errors from the first moment (before plotly.js runs).
EARLY = """<script>window.__hdaErrors = [];
window.addEventListener('error', e => window.__hdaErrors.push(String(e.message)));
const __hdaConsoleError = console.error;
console.error = (...a) => { window.__hdaErrors.push(a.join(' ')); __hdaConsoleError(...a); };
</script>"""

PROBE = """<script>
function __hdaBox(e) { const r = e.getBoundingClientRect();
  return {x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height}; }
function __hdaHit(a, b) { return a.w > 0 && b.w > 0 && a.x < b.x + b.w - 1 && b.x < a.x + a.w - 1
  && a.y < b.y + b.h - 1 && b.y < a.y + a.h - 1; }
function __hdaPlot(p) {
  const title = p.querySelector('.gtitle');
  const t = title ? __hdaBox(title) : null;
  const others = [...p.querySelectorAll(
    '.g-xtitle, .g-ytitle, .annotation, .legend, .nsewdrag')];
  const texts = [...p.querySelectorAll('.gtitle, .g-xtitle, .g-ytitle, .legend')];
  const svg = __hdaBox(p.querySelector('svg.main-svg'));
  const clash = [];  /* titles and the legend against each other */
  texts.forEach((a, i) => texts.slice(i + 1).forEach(b => { if (__hdaHit(__hdaBox(a), __hdaBox(b)))
    clash.push(a.getAttribute('class') + ' / ' + b.getAttribute('class')); }));
  const marks = '.scatterlayer .point, .scatterlayer .js-line, .barlayer .point, '
    + '.heatmaplayer image';
  const hit = t ? others.filter(o => __hdaHit(t, __hdaBox(o))) : [];
  return {title: title ? title.textContent : '', width: svg.w, height: svg.h, titleBox: t, svg: svg,
    marks: p.querySelectorAll(marks).length, overlaps: hit.map(o => o.getAttribute('class')),
    clashes: clash,
    titleInside: !t || (t.x >= svg.x - 1 && t.x + t.w <= svg.x + svg.w + 1 && t.y >= svg.y - 1)};
}
window.addEventListener('load', () => setTimeout(() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const sections = [...document.querySelectorAll('section')].map(s => ({id: s.id, box: __hdaBox(s),
    plots: [...s.querySelectorAll('.js-plotly-plot')].map(__hdaPlot)}));
  const out = {errors: window.__hdaErrors, plots: plots.length, sections: sections,
    height: document.documentElement.scrollHeight, width: document.documentElement.scrollWidth};
  const pre = document.createElement('pre'); pre.id = 'hda-probe';
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
}, 1500));
</script>"""


@dataclass(frozen=True)
class Rendered:
    """What the probe saw: errors, the page's size and per section its box and plots."""

    errors: list[str]
    height: int
    width: int
    sections: list[dict[str, Any]]


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    if CHROMIUM is None:
        raise RuntimeError("chromium is not installed (apt-get install chromium)")
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-quic", f"--user-data-dir={profile}", *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)


def render(page: Path, width: int, height: int = 900) -> Rendered:
    """Load `page` in a `width` x `height` window and read the probe's summary."""
    html = page.read_text(encoding="utf-8")
    probed = html.replace("<head>", "<head>" + EARLY, 1).replace("</body>", PROBE + "</body>")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / page.name
        copy.write_text(probed, encoding="utf-8")
        dom = _chromium(
            f"--window-size={width},{height}", "--virtual-time-budget=30000", "--dump-dom",
            copy.as_uri(), profile=Path(tmp) / "profile",
        ).stdout  # fmt: skip
    start = dom.find('<pre id="hda-probe">')
    if start < 0:
        raise AssertionError("the probe never reported: the page did not finish loading")
    text = dom[start + len('<pre id="hda-probe">') : dom.index("</pre>", start)]
    data = json.loads(text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    return Rendered(data["errors"], data["height"], data["width"], data["sections"])


def screenshot(page: Path, width: int, height: int, out: Path) -> Path:
    """A PNG of `page` in a `width` x `height` window (the whole page if `height` is its
    height)."""
    with tempfile.TemporaryDirectory() as tmp:
        _chromium(
            f"--window-size={width},{height}", "--virtual-time-budget=30000",
            f"--screenshot={out}", page.as_uri(), profile=Path(tmp) / "profile",
        )  # fmt: skip
    return out
