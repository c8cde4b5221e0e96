"""Figures of the labeler cells: accuracy and position bias by variant, accuracy against the
variants' stored properties (exemplars, sampling temperature), reliability, and cost."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from labelbench.report.plots_common import (
    MARKERS,
    SMALL,
    _accuracy,
    _colors,
    _figure,
    _fit,
    _guides,
    _pyplot,
    _same_slot,
    _short_variant,
)
from labelbench.rundir import Cell, DatasetSummary, Estimate, Properties, Summary, Timing

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _bars_by_variant(
    summary: Summary,
    metric: Callable[[Cell], Estimate | None],
    ylabel: str,
    guides: bool,
) -> Figure | None:
    """Per data set, one group of bars per variant (tick: the variant's name within its family)
    and one bar per labeler (legend), with interval bars; baselines as lines when ``guides``."""

    def value(cell: Cell) -> float | None:
        estimate = metric(cell)
        return estimate.value if estimate is not None else None

    def draw(axis: Any, _: str, entry: DatasetSummary) -> bool:
        cells = [c for c in entry.labeler_cells() if value(c) is not None]
        if not cells:
            return False
        variants = list(dict.fromkeys(c.variant for c in cells))
        colors = _colors(entry)
        width = 0.8 / len(colors)
        for k, labeler in enumerate(colors):
            mine = {c.variant: metric(c) for c in cells if c.labeler == labeler}
            xs = [i + k * width for i, v in enumerate(variants) if v in mine]
            est = [e for v in variants if (e := mine.get(v)) is not None]
            values = [e.value or 0.0 for e in est]
            errors = [
                [v - (e.low if e.low is not None else v) for v, e in zip(values, est, strict=True)],
                [
                    (e.high if e.high is not None else v) - v
                    for v, e in zip(values, est, strict=True)
                ],
            ]
            axis.bar(
                xs,
                values,
                width,
                yerr=errors,
                color=colors[labeler],
                label=_fit(labeler),
                capsize=2,
            )
        axis.set_xticks([i + width * (len(colors) - 1) / 2 for i in range(len(variants))])
        axis.set_xticklabels([_short_variant(v) for v in variants], rotation=90, fontsize=SMALL)
        if guides:
            _guides(axis, entry)
        axis.set_ylim(0, 1)
        axis.legend(fontsize=SMALL, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return True

    return _figure(summary, draw, ylabel, "prompt variant")


def alignment_by_variant(summary: Summary) -> Figure | None:
    """Accuracy of every labeler x variant cell, with the baselines and the human ceiling."""
    return _bars_by_variant(summary, _accuracy, "accuracy vs human majority", True)


def position_bias_by_variant(summary: Summary) -> Figure | None:
    """Same-slot rate of every labeler x variant cell that ran both orders."""
    return _bars_by_variant(summary, _same_slot, "same slot wins both orders", False)


def _mean_line(axis: Any, points: dict[float, list[float]], label: str) -> None:
    """A line through the mean accuracy at each x; where several cells share an x, each one as
    a faint dot of the line's colour, so the spread the mean hides stays visible."""
    xs = sorted(points)
    (line,) = axis.plot(xs, [sum(points[x]) / len(points[x]) for x in xs], marker="o", label=label)
    shared = [(x, y) for x in xs if len(points[x]) > 1 for y in points[x]]
    if shared:
        axis.scatter(*zip(*shared, strict=True), s=12, color=line.get_color(), alpha=0.35)


def _line_plot(
    summary: Summary,
    x_of: Callable[[Properties], float | None],
    series: Callable[[Cell], str | None],
    xlabel: str,
) -> Figure | None:
    """Per data set, accuracy against a stored property (``x_of`` the cell's properties; None:
    left out), one line per ``series`` name with at least two x values; a point several cells
    share is their mean accuracy."""

    def draw(axis: Any, _: str, entry: DatasetSummary) -> bool:
        points: dict[str, dict[float, list[float]]] = {}
        for cell in entry.labeler_cells():
            x, name = x_of(cell.properties), series(cell)
            if x is None or name is None or cell.accuracy is None:
                continue
            points.setdefault(name, {}).setdefault(float(x), []).append(cell.accuracy)
        lines = {name: by_x for name, by_x in points.items() if len(by_x) >= 2}
        if not lines:
            return False
        for name, by_x in lines.items():
            _mean_line(axis, by_x, _fit(name, 48))
        _guides(axis, entry)
        axis.legend(fontsize=SMALL, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return True

    return _figure(summary, draw, "accuracy vs human majority", xlabel)


def _style(properties: Properties, *, exemplars: bool = True, sampling: bool = True) -> str:
    """A prompt style in words, from the stored properties (those not on the x axis)."""
    parts = ["chain of thought" if properties.cot else "answer only"]
    if exemplars:
        parts.append(f"{properties.n_exemplars or 0}-shot")
    if sampling and (properties.sc_n or 1) > 1:
        parts.append(f"{properties.sc_n} samples at T={properties.temperature or 0:g}")
    return ", ".join(parts)


def alignment_vs_exemplars(summary: Summary) -> Figure | None:
    """One line per labeler and prompt style (the cells' stored chain of thought and sampling),
    through its variants' stored numbers of exemplars."""

    def series(cell: Cell) -> str:
        return f"{cell.labeler}: {_style(cell.properties, exemplars=False)}"

    return _line_plot(summary, _exemplars, series, "exemplars in the prompt")


def _exemplars(properties: Properties) -> float | None:
    return properties.n_exemplars


def _temperature(properties: Properties) -> float | None:
    return properties.temperature


def self_consistency_vs_temperature(summary: Summary) -> Figure | None:
    """One line per labeler and number of exemplars through its chain-of-thought variants:
    greedy (temperature 0), then its self-consistency variants at their stored temperatures."""

    def series(cell: Cell) -> str | None:
        if not cell.properties.cot:
            return None
        return f"{cell.labeler}: {_style(cell.properties, sampling=False)}"

    return _line_plot(summary, _temperature, series, "sampling temperature (0 = greedy)")


def reliability(summary: Summary) -> Figure | None:
    """Per data set, each labeler's most accurate variant's reliability diagram."""
    bins = summary.settings.calibration_bins

    def draw(axis: Any, _: str, entry: DatasetSummary) -> bool:
        best: dict[str, Cell] = {}
        for cell in entry.labeler_cells():
            current = best.get(cell.labeler)
            accuracy = cell.accuracy
            if accuracy is not None and (current is None or accuracy > (current.accuracy or 0)):
                best[cell.labeler] = cell
        if not best:
            return False
        colors = _colors(entry)
        axis.plot([0, 1], [0, 1], color="gray", ls=":", lw=1)
        for line, (labeler, cell) in enumerate(best.items()):
            table = [row for row in cell.calibration.reliability if row.n >= 5]
            ece = cell.calibration.ece.value
            axis.plot(
                [row.mean_p for row in table],
                [row.human_a for row in table],
                marker="o",
                color=colors[labeler],
                label=f"{_fit(labeler)} (ECE {ece:.3f})",  # its variant: in the tables
            )
            for row in cell.calibration.reliability:  # each bin's count, along the bottom
                axis.text(
                    (row.bin + 0.5) / bins,
                    0.03 + 0.06 * line,
                    str(row.n),
                    fontsize=SMALL,
                    color=colors[labeler],
                    ha="center",
                    va="bottom",
                )
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        axis.legend(fontsize=SMALL, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return True

    return _figure(summary, draw, "share of humans preferring A", "AI P(A), binned")


def alignment_vs_cost(summary: Summary, timing: Timing | None = None) -> Figure | None:
    """Accuracy vs seconds of compute per pair (``timing.json``: the seconds recorded when each
    label was computed, also for labels read from the cache): marker shape = labeler, colour =
    variant (both in the legend), baselines as lines. None without timing."""
    from matplotlib.lines import Line2D

    timed = timing or Timing()

    def draw(axis: Any, name: str, entry: DatasetSummary) -> bool:
        seconds = {(t.labeler, t.variant): t.seconds_per_pair for t in timed.cells.get(name, [])}
        cells = [
            c
            for c in entry.labeler_cells()
            if seconds.get((c.labeler, c.variant)) and c.accuracy is not None
        ]
        if not cells:
            return False
        labelers = list(dict.fromkeys(c.labeler for c in cells))
        variants = list(dict.fromkeys(_short_variant(c.variant) for c in cells))
        cmap = _pyplot().get_cmap("tab20")
        shape = {name: MARKERS[i % len(MARKERS)] for i, name in enumerate(labelers)}
        color = {name: cmap(i % 20) for i, name in enumerate(variants)}
        costs = [float(seconds[(c.labeler, c.variant)] or 0.0) for c in cells]
        for cell, cost in zip(cells, costs, strict=True):
            axis.scatter(
                cost,
                cell.accuracy,
                marker=shape[cell.labeler],
                color=color[_short_variant(cell.variant)],
                edgecolors="black",
                linewidths=0.4,
                s=30,
            )
        wide = min(costs) > 0 and max(costs) / min(costs) > 10
        axis.set_xscale("log" if wide else "linear")
        if wide:  # ticks at 1, 2, 5 x 10^k, written plainly; no minor labels to collide
            from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

            axis.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            axis.xaxis.set_minor_formatter(NullFormatter())
        axis.set_xlabel("seconds of compute per pair" + (" (log)" if wide else ""))
        _guides(axis, entry)
        handles, _ = axis.get_legend_handles_labels()
        handles += [
            Line2D([], [], ls="", marker=shape[n], color="gray", label=f"labeler: {_fit(n)}")
            for n in labelers
        ]
        handles += [
            Line2D([], [], ls="", marker="o", color=color[v], label=f"variant: {v}")
            for v in variants
        ]
        axis.legend(handles=handles, fontsize=SMALL, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return True

    return _figure(summary, draw, "accuracy vs human majority", "seconds of compute per pair")
