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
