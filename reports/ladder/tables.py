"""Markdown tables for reports/ladder/README.md, read from runs' summary.json files.

    python reports/ladder/tables.py reports/ladder/summary.json \
        reports/ladder/prompt-sensitivity/summary.json

Prints, per data set of each summary: labeler x variant rows with alignment (accuracy against the
human majority, 95% cluster-bootstrap interval), the high-confidence subset where there is one,
the same-slot rate (the same slot preferred in both orders) and which slot, the share of
length-biased pairs where the labeler prefers the longer response, length-balanced accuracy, and
n; then the baselines' rows. Nothing here computes a metric: it only lays out summary.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _fmt(estimate: dict[str, Any] | None, interval: bool = True) -> str:
    if not estimate or estimate.get("value") is None:
        return "n/a"
    text = f"{estimate['value']:.2f}"
    if interval and estimate.get("low") is not None:
        text += f" [{estimate['low']:.2f}, {estimate['high']:.2f}]"
    return text


def _slot(cell: dict[str, Any]) -> str:
    bias = cell.get("position_bias") or {}
    same = bias.get("same_slot")
    if not same or same.get("value") is None:
        return "n/a"
    return f"{same['value']:.0%} ({bias.get('slot') or '-'})"


def table(name: str, dataset: dict[str, Any]) -> str:
    rows = [
        f"**{name}** ({dataset['n_items']} items, {dataset['human_ties']} human ties)",
        "",
        "| labeler | variant | alignment | high-confidence | same slot | prefers longer "
        "| length-balanced | n |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cell in dataset["cells"]:
        if cell["kind"] != "labeler":
            continue
        high = (cell.get("high_confidence") or {}).get("accuracy")
        length = (cell.get("length_bias") or {}).get("ai_prefers_longer")
        balanced = (cell.get("length_controlled") or {}).get("balanced")
        rows.append(
            f"| {cell['labeler']} | {cell['variant'].split('/')[-1]} "
            f"| {_fmt(cell['alignment']['accuracy'])} | {_fmt(high)} | {_slot(cell)} "
            f"| {_fmt(length, False)} | {_fmt(balanced, False)} | {cell['n']} |"
        )
    for cell in dataset["cells"]:
        if cell["kind"] == "baseline":
            accuracy = (cell.get("alignment") or {}).get("accuracy")
            high = (cell.get("high_confidence") or {}).get("accuracy")
            rows.append(
                f"| *{cell['variant']}* | baseline | {_fmt(accuracy)} | {_fmt(high)} "
                f"| | | | {cell['n']} |"
            )
    return "\n".join(rows) + "\n"


def main() -> None:
    for path in sys.argv[1:]:
        summary = json.loads(Path(path).read_text(encoding="utf-8"))
        print(f"<!-- from {path} -->")
        for name, dataset in summary["datasets"].items():
            print(table(name, dataset))


if __name__ == "__main__":
    main()
