"""Figures of the soft labels: the best cell's aggregations' reliability, agreement against
coverage, and learning curves (``summary.json`` ``aggregations`` and ``learning_curve``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labelbench.report.plots_common import AGG_STYLES, SMALL, TITLE, _figure, _fit
from labelbench.rundir import AggregationRow, DatasetSummary, Summary

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _best_cell_rows(entry: DatasetSummary) -> list[AggregationRow]:
    """The aggregation rows of the best labeler cell (by prob-mean accuracy) and the group
    methods."""
    rows = entry.aggregations
    plain = [r for r in rows if r.method == "prob-mean" and r.accuracy.value is not None]
    if not plain:
        return []
    best = max(plain, key=lambda r: r.accuracy.value or 0.0)
    key = (best.labelers, best.variants)
    return [
        r
        for r in rows
        if r.accuracy.value is not None and ((r.labelers, r.variants) == key or len(r.labelers) > 1)
    ]


RELIABILITY_METHODS = ("prob-mean", "calibrated", "stacked")


def aggregation_reliability(summary: Summary) -> Figure | None:
    """Per data set, the best cell's soft labels' reliability by aggregation method."""

    def draw(axis: Any, _: str, entry: DatasetSummary) -> bool:
        rows = [
            r
            for r in _best_cell_rows(entry)
            if len(r.labelers) == 1 and r.method in RELIABILITY_METHODS
        ]
        drawn = False
        axis.plot([0, 1], [0, 1], color="gray", ls=":", lw=1)
        for line, row in enumerate(rows):
            bins = row.reliability or []
            shown = [b for b in bins if b.mean_p is not None]
            if not shown:
                continue
            color, style = AGG_STYLES[row.method]
            xs, ys = [b.mean_p for b in shown], [b.human_a for b in shown]
            axis.plot(xs, ys, marker="o", ms=3, color=color, ls=style, label=row.method)
            for b in bins:  # each bin's count, one row of numbers per method along the bottom
                axis.text(
                    (b.low + b.high) / 2,
                    0.03 + 0.06 * line,
                    str(b.n),
                    fontsize=SMALL,
                    color=color,
                    ha="center",
                    va="bottom",
                )
            drawn = True
        if drawn:
            cell = rows[0]
            axis.set_title(f"{axis.get_title()}\n{_fit(cell.labelers[0], 20)}", fontsize=TITLE)
            axis.set_xlim(0, 1)
            axis.set_ylim(0, 1)
            axis.legend(fontsize=SMALL, loc="upper left")
        return drawn

    return _figure(summary, draw, "share of humans preferring A", "soft label P(A), binned")


def agreement_vs_coverage(summary: Summary) -> Figure | None:
    """Per data set, agreement against the share of pairs kept, by aggregation method."""

    def draw(axis: Any, _: str, entry: DatasetSummary) -> bool:
        drawn = False
        for row in _best_cell_rows(entry):
            curve = row.coverage or []
            if not curve or row.method == "logodds-mean":
                continue
            color, style = AGG_STYLES[row.method]
            axis.plot(
                [c.coverage for c in curve],
                [c.accuracy for c in curve],
                color=color,
                ls=style,
                marker=".",
                label=row.method,
            )
            drawn = True
        if drawn:
            axis.axhline(0.8, color="black", ls=":", lw=1)
            axis.set_xlim(0, 1.02)
            axis.set_ylim(0, 1.02)
            axis.legend(fontsize=SMALL, loc="lower left")
        return drawn

    return _figure(summary, draw, "agreement with the human majority", "coverage (share kept)")


def learning_curve(summary: Summary) -> Figure | None:
    """Per data set, the best cell's fitted methods by human labels fitted on."""

    def draw(axis: Any, _: str, entry: DatasetSummary) -> bool:
        curve = entry.learning_curve
        if curve is None or not curve.points:
            return False
        for method in dict.fromkeys(p.method for p in curve.points):
            points = [p for p in curve.points if p.method == method]
            color, _style = AGG_STYLES[method]
            sizes = [p.n_labels for p in points]
            axis.plot(sizes, [p.accuracy for p in points], color=color, marker="o", label=method)
            axis.plot(sizes, [p.log_loss for p in points], color=color, ls="--", marker="x")
        axis.set_xscale("log")
        axis.minorticks_off()
        axis.set_xticks([25, 50, 100, 200], ["25", "50", "100", "200"])
        axis.set_title(f"{axis.get_title()}\n{_fit(curve.labeler, 20)}", fontsize=TITLE)
        axis.legend(fontsize=SMALL, loc="lower right")
        return True

    return _figure(
        summary, draw, "accuracy (solid) and log-loss (dashed)", "human labels fitted on"
    )
