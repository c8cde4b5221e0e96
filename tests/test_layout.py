"""The code base's layout (issue 28, "one owner per concern"): no module of ``labelbench`` or
``rlaif`` over ``MAX_LINES`` lines, except the few listed in ``BEING_SPLIT`` while they are split.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("labelbench", "rlaif")
MAX_LINES = 600

BEING_SPLIT: dict[str, str] = {}
"""Modules still over ``MAX_LINES``, each with why; remove a module once it is split."""


def line_counts(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, int]:
    """``{path relative to root, with /: its line count}`` for every ``.py`` file of
    ``packages``."""
    return {
        path.relative_to(root).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for package in packages
        for path in sorted((root / package).rglob("*.py"))
    }


def test_no_module_is_over_the_line_limit() -> None:
    too_long = {
        name: lines
        for name, lines in line_counts().items()
        if lines > MAX_LINES and name not in BEING_SPLIT
    }
    assert not too_long, (
        f"over {MAX_LINES} lines; split by concern (re-export from the old module where others "
        f"import it): {too_long}"
    )


def test_every_module_being_split_is_still_over_the_limit() -> None:
    counts = line_counts()
    stale = [name for name in BEING_SPLIT if counts.get(name, 0) <= MAX_LINES]
    assert not stale, f"split or gone, remove from BEING_SPLIT: {stale}"
