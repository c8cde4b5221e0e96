"""Open a report page in headless Chromium: console messages, images that render, a screenshot.

Used by the tests and by ``python -m labelbench.report.browser REPORT.html SHOT.png``. Needs
Debian's ``chromium`` (``apt-get install -y chromium``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)
MARKER = "labelbench-image-check"
CHECKER = f"""<script>
window.addEventListener("load", () => {{
  const images = Array.from(document.images);
  const shown = images.filter((i) => i.complete && i.naturalWidth > 0 && i.offsetHeight > 0);
  document.body.setAttribute("data-{MARKER}", shown.length + "/" + images.length);
}});
</script>"""
CONSOLE = re.compile(r":CONSOLE[^\]]*\]\s*(.*)")


@dataclass(frozen=True)
class PageCheck:
    console: list[str]
    images_shown: int
    images_total: int
    screenshot: Path


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(binary: str, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [binary, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def check_page(html: Path, screenshot: Path, *, timeout: float = 120) -> PageCheck:
    """Screenshot ``html``; collect its console messages; count images that render."""
    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("chromium is not installed (apt-get install -y chromium)")
    html = html.resolve()
    shot = _run(
        binary,
        [
            "--window-size=1400,4000",
            "--hide-scrollbars",
            f"--screenshot={screenshot}",
            html.as_uri(),
        ],
        timeout,
    )
    console = [m.group(1) for m in CONSOLE.finditer(shot.stderr)]
    with tempfile.TemporaryDirectory() as folder:
        probe = Path(folder) / "probe.html"
        probe.write_text(html.read_text(encoding="utf-8").replace("</body>", CHECKER + "</body>"))
        dom = _run(binary, ["--virtual-time-budget=5000", "--dump-dom", probe.as_uri()], timeout)
    found = re.search(rf'data-{MARKER}="(\d+)/(\d+)"', dom.stdout)
    shown, total = (int(found.group(1)), int(found.group(2))) if found else (0, -1)
    return PageCheck(console, shown, total, screenshot)


LAYOUT_PROBE = f"""<script>
window.addEventListener("load", () => {{
  const visible = (e) => e && e.offsetHeight > 0 && e.textContent.trim().length > 0
    && e.getBoundingClientRect().right <= document.documentElement.clientWidth;
  const tables = Array.from(document.querySelectorAll("table"));
  const wide = tables.filter((t) => t.getBoundingClientRect().right
    > document.documentElement.clientWidth || (t.parentElement.tagName === "DIV"
    && t.parentElement.scrollWidth > t.parentElement.clientWidth + 1));
  const figures = Array.from(document.querySelectorAll("figure"));
  const untitled = figures.filter((f) => !visible(f.querySelector("figcaption h3")));
  const images = Array.from(document.images);
  const shown = images.filter((i) => i.complete && i.naturalWidth > 0 && i.offsetHeight > 0
    && i.getBoundingClientRect().right <= document.documentElement.clientWidth);
  const cell = document.querySelector("td");
  const report = {{
    tables: tables.length,
    too_wide: wide.map((t) => (t.previousElementSibling || t.parentElement.previousElementSibling
      || {{textContent: "?"}}).textContent.slice(0, 60)),
    figures: figures.length,
    untitled: untitled.map((f) => f.id),
    images_shown: shown.length,
    images_total: images.length,
    font_px: cell ? parseFloat(getComputedStyle(cell).fontSize) : 0,
    page_scrolls: document.documentElement.scrollWidth > document.documentElement.clientWidth,
  }};
  document.body.setAttribute("data-{MARKER}", btoa(JSON.stringify(report)));
}});
</script>"""


@dataclass(frozen=True)
class LayoutCheck:
    """How a report page lays out at a given window width."""

    console: list[str]
    tables: int
    too_wide: list[str]  # tables that overflow the page (text before each)
    figures: int
    untitled: list[str]  # ids of figures whose title is missing, empty or off the page
    images_shown: int  # images rendered and inside the page width
    images_total: int
    font_px: float  # computed font size of a table cell
    page_scrolls: bool  # whether the page is wider than the window
    screenshot: Path


def check_layout(
    html: Path, screenshot: Path, *, width: int = 1200, height: int = 3000, timeout: float = 120
) -> LayoutCheck:
    """Open ``html`` in a ``width`` px wide window: screenshot it and report which tables do
    not fit the width and which figures lack a visible title. Raises FileNotFoundError when
    Chromium is missing and RuntimeError when the page's probe did not report."""
    import base64
    import json

    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("chromium is not installed (apt-get install -y chromium)")
    html = html.resolve()
    size = f"--window-size={width},{height}"
    shot = _run(
        binary, [size, "--hide-scrollbars", f"--screenshot={screenshot}", html.as_uri()], timeout
    )
    console = [m.group(1) for m in CONSOLE.finditer(shot.stderr)]
    with tempfile.TemporaryDirectory() as folder:
        probe = Path(folder) / "probe.html"
        text = html.read_text(encoding="utf-8")
        probe.write_text(text.replace("</body>", LAYOUT_PROBE + "</body>"), encoding="utf-8")
        dom = _run(
            binary, [size, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()], timeout
        )
    found = re.search(rf'data-{MARKER}="([A-Za-z0-9+/=]+)"', dom.stdout)
    if not found:
        raise RuntimeError(f"the layout probe did not report: {dom.stderr[-500:]}")
    report = json.loads(base64.b64decode(found.group(1)))
    return LayoutCheck(console=console, screenshot=screenshot, **report)


PROBE_HELPER = f"""<script>
window.labelbenchProbe = (value) => {{
  const text = JSON.stringify(value);
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  document.body.setAttribute("data-{MARKER}", btoa(binary));
}};
</script>"""


@dataclass(frozen=True)
class ProbeResult:
    """What a probe script reported from a page, and the page's console messages."""

    value: object
    console: list[str]


def probe_page(
    html: Path, script: str, *, width: int = 1200, height: int = 3000, timeout: float = 120
) -> ProbeResult:
    """Open ``html`` in headless Chromium with ``script`` (JavaScript) added at the end of its
    body; the script reports by calling ``window.labelbenchProbe(value)`` with any JSON value.
    Raises FileNotFoundError when Chromium is missing and RuntimeError when the script did not
    report."""
    import base64
    import json

    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("chromium is not installed (apt-get install -y chromium)")
    html = html.resolve()
    with tempfile.TemporaryDirectory() as folder:
        probe = Path(folder) / html.name
        text = html.read_text(encoding="utf-8")
        extra = PROBE_HELPER + "<script>\n" + script + "\n</script>"
        probe.write_text(text.replace("</body>", extra + "</body>"), encoding="utf-8")
        size = f"--window-size={width},{height}"
        dom = _run(
            binary, [size, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()], timeout
        )
    console = [m.group(1) for m in CONSOLE.finditer(dom.stderr)]
    found = re.search(rf'data-{MARKER}="([A-Za-z0-9+/=]+)"', dom.stdout)
    if not found:
        raise RuntimeError(f"the probe did not report: {dom.stderr[-500:]}")
    value = json.loads(base64.b64decode(found.group(1)).decode("utf-8"))
    return ProbeResult(value, console)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m labelbench.report.browser REPORT.html SCREENSHOT.png")
        return 2
    result = check_page(Path(argv[0]), Path(argv[1]))
    print(f"images shown: {result.images_shown}/{result.images_total}")
    for message in result.console:
        print(f"console: {message}")
    print(f"screenshot: {result.screenshot}")
    ok = not result.console and result.images_total > 0
    return 0 if ok and result.images_shown == result.images_total else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
