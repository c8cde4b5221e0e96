"""Markdown tables for reports/ladder/README.md, read from runs' summary.json files.

    python reports/ladder/tables.py reports/ladder/summary.json \
        reports/ladder/prompt-sensitivity/summary.json

    python reports/ladder/tables.py --aggregations reports/ladder/summary.json

Prints, per data set of each summary: labeler x variant rows with alignment (accuracy against the
human majority, 95% cluster-bootstrap interval), the high-confidence subset where there is one,
the same-slot rate (the same slot preferred in both orders) and which slot, the share of
length-biased pairs where the labeler prefers the longer response, length-balanced accuracy, and
n; then the baselines' rows. With ``--aggregations``: the soft-label aggregations of each data
set's best cell and its group rows. Nothing here computes a metric: it only lays out
summary.json.
"""

from __future__ import annotations

import sys

from labelbench.errors import script_main
from labelbench.rundir import Cell, DatasetSummary, Difference, Estimate, read_summary


def _fmt(estimate: Estimate | None, interval: bool = True) -> str:
    if estimate is None or estimate.value is None:
        return "n/a"
    text = f"{estimate.value:.2f}"
    if interval and estimate.low is not None and estimate.high is not None:
        text += f" [{estimate.low:.2f}, {estimate.high:.2f}]"
    return text


def _slot(cell: Cell) -> str:
    bias = cell.position_bias
    if bias is None or bias.same_slot.value is None:
        return "n/a"
    return f"{bias.same_slot.value:.0%} ({bias.slot or '-'})"


def table(name: str, dataset: DatasetSummary) -> str:
    rows = [
        f"**{name}** ({dataset.n_items} items, {dataset.human_ties} human ties)",
        "",
        "| labeler | variant | alignment | high-confidence | same slot | prefers longer "
        "| length-balanced | n |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cell in dataset.labeler_cells():
        high = cell.high_confidence.accuracy if cell.high_confidence is not None else None
        rows.append(
            f"| {cell.labeler} | {cell.variant.split('/')[-1]} "
            f"| {_fmt(cell.alignment.accuracy)} | {_fmt(high)} | {_slot(cell)} "
            f"| {_fmt(cell.length_bias.ai_prefers_longer, False)} "
            f"| {_fmt(cell.length_controlled.balanced, False)} | {cell.n} |"
        )
    for cell in dataset.baseline_cells():
        high = cell.high_confidence.accuracy if cell.high_confidence is not None else None
        rows.append(
            f"| *{cell.variant}* | baseline | {_fmt(cell.alignment.accuracy)} | {_fmt(high)} "
            f"| | | | {cell.n} |"
        )
    return "\n".join(rows) + "\n"


def _diff(block: Difference) -> str:
    if block.diff is None:
        return "n/a"
    return f"{block.diff:+.3f} [{block.low:+.3f}, {block.high:+.3f}]"


def aggregation_table(name: str, dataset: DatasetSummary) -> str:
    """The best labeler cell (prob-mean accuracy) under every single-labeler aggregation, then
    the jury, cascade and length-only rows (summary.json ``aggregations``)."""
    rows = dataset.aggregations
    plain = [r for r in rows if r.method == "prob-mean" and r.accuracy.value is not None]
    if not plain:
        return ""
    best = max(plain, key=lambda r: r.accuracy.value or 0.0)
    key = (best.labelers, best.variants)
    out = [
        f"**{name}**: best cell {best.labelers[0]} / {best.variants[0]}",
        "",
        "| method | human labels per fit | accuracy | vs always-longer | vs always-first "
        "| log-loss | ECE | mean confidence | coverage at 0.8 | labeler weight |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if (row.labelers, row.variants) != key and len(row.labelers) == 1:
            continue
        method = row.method
        if len(row.labelers) > 1:
            method += f" ({len(row.labelers)} cells)"
        if row.accuracy.value is None:
            out.append(f"| {method} | | n/a: {row.reason} | | | | | | | |")
            continue
        reach = row.coverage_at_0_8
        out.append(
            f"| {method} | {row.n_fit or '–'} | {_fmt(row.accuracy)} "
            f"| {_diff(row.vs_always_longer)} | {_diff(row.vs_always_first)} "
            f"| {row.log_loss:.3f} | {row.ece:.3f} | {row.mean_confidence:.3f} "
            f"| {'never' if reach is None else f'{reach:.2f}'} | {row.status or '–'} |"
        )
    return "\n".join(out) + "\n"


def main() -> None:
    aggregations = "--aggregations" in sys.argv[1:]
    for path in [a for a in sys.argv[1:] if a != "--aggregations"]:
        summary = read_summary(path)
        print(f"<!-- from {path} -->")
        for name, dataset in summary.datasets.items():
            print(aggregation_table(name, dataset) if aggregations else table(name, dataset))


if __name__ == "__main__":
    script_main(main)
