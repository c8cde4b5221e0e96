"""What every figure of the report shares: titles, captions, sizes, colours, panels and guides.

Figures are drawn from the typed ``summary.json`` (``labelbench.rundir.Summary``) and
``timing.json``; each returns a matplotlib Figure, or None when the run has nothing to show.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from labelbench.rundir import Cell, DatasetSummary, Estimate, Summary

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PLOT_TITLES = {
    "alignment_vs_size": "Alignment vs labeler size: raw and length-controlled",
    "same_slot_vs_size": "Position bias vs labeler size",
    "alignment_by_variant": "Alignment with humans by prompt variant",
    "position_bias_by_variant": "Position bias by prompt variant",
    "alignment_vs_exemplars": "Alignment vs number of exemplars",
    "self_consistency_vs_temperature": "Self-consistency: alignment vs temperature",
    "reliability": "Reliability diagrams (best variant per labeler)",
    "alignment_vs_cost": "Alignment vs cost",
    "aggregation_reliability": "Reliability of the soft labels by aggregation (best cell)",
    "agreement_vs_coverage": "Agreement vs coverage by aggregation (abstaining when unsure)",
    "learning_curve": "How many human labels to buy: learning curves (best cell)",
}
PANELS_PER_ROW = 2
CEILING_MIN_N = 30  # the human ceiling is drawn as a line only on at least this many pairs
PALM2_SOURCE = "PaLM 2 XS/S/L (Lee et al. 2023)"
# RLAIF (Lee et al. 2023), TL;DR summarization: AI labeler alignment and the share of pairs where
# the same position is preferred in both orders, by PaLM 2 size; the sizes are not public.
PALM2 = (("XS", 0.627, 0.56), ("S", 0.738, 0.21), ("L", 0.780, 0.18))
LADDER_NOTE = (
    "One line per prompt variant through the labelers of known size (x: parameters, log "
    "scale; tick labels name the labeler), with 95% intervals. Data sets with fewer than two "
    "labelers of known size are left out. The strip beside the TL;DR (summarization) panels "
    "shows the RLAIF paper's PaLM 2 XS/S/L labelers (Lee et al. 2023) for reference: their "
    "parameter counts are not public, so they are placed by name, not by size."
)
PLOT_CAPTIONS = {
    "alignment_vs_size": LADDER_NOTE
    + " Left: accuracy against the human majority (PaLM 2: 62.7, 73.8, 78.0%); right: "
    "length-balanced accuracy (the mean of the accuracies on pairs where humans chose the "
    "longer and the shorter response; always-longer scores 0.5). Baselines: always-longer "
    "(dark gray, dashed, squares) and always-first (brown, dash-dot, triangles); black: the "
    "human ceiling, drawn only when it rests on at least 30 pairs (the tables give it with its "
    "n).",
    "same_slot_vs_size": LADDER_NOTE
    + " y: share of pairs where the same slot wins in both A/B orders (PaLM 2: 56, 21, 18%).",
    "aggregation_reliability": "The data set's best labeler cell (prob-mean accuracy) as "
    "labelled (prob-mean), calibrated and stacked, cross-fitted: x = mean P(A) in a bin of "
    "width 0.1, y = share of humans preferring A. The numbers along the bottom are each bin's "
    "item count, one row per method in its colour; bins of fewer than 5 items have no point. "
    "The diagonal is perfect calibration.",
    "reliability": "Each labeler's most accurate variant (the tables name it): x = mean P(A) "
    "in a bin of width 1/(calibration bins), y = share of humans preferring A; the diagonal is "
    "perfect calibration. The numbers along the bottom are each bin's item count, one row per "
    "labeler in its colour; bins of fewer than 5 items have no point.",
    "alignment_vs_cost": "x: seconds of compute per pair, as recorded when each label was "
    "computed (labels read from the cache keep the seconds of the run that computed them), "
    "both orders included; y: accuracy. Marker shape: labeler; colour: variant. Baselines as "
    "lines: always-longer (dark gray, dashed, squares), always-first (brown, dash-dot, "
    "triangles), published judges (purple diamonds).",
    "learning_curve": "Each fitted method of the data set's best cell, fitted on 25, 50, 100 "
    "and 200 human labels drawn from the other folds and scored on held-out groups (means over "
    "5 draws x 5 folds): accuracy (solid; higher is better) and log-loss (dashed, nats; lower is "
    "better), on one axis. Sizes larger than the labels available are left out.",
    "agreement_vs_coverage": "Keep only the most confident share of pairs (x, by max(P, 1-P) "
    "of the cross-fitted soft labels) and measure agreement with the human majority among them "
    "(y); the dotted line is 0.8. The best cell's single-labeler methods, and the jury and "
    "cascade over the data set's cells.",
    "alignment_vs_exemplars": "x: the exemplars in the prompt, as each variant stores them "
    "(n_exemplars). One line per labeler and prompt style, the variants' stored chain of "
    "thought, self-consistency samples and temperature; where several variants share a point "
    "(e.g. base and detailed rubrics), the line runs through their mean accuracy and each is a "
    "faint dot.",
    "self_consistency_vs_temperature": "Chain-of-thought variants only. x: the sampling "
    "temperature each variant stores (0 = greedy, one rationale; above 0 the self-consistency "
    "variants); one line per labeler and number of exemplars; where several variants share a "
    "point, the line runs through their mean accuracy and each is a faint dot.",
}
GUIDES = {"always-longer": "--", "random": ":", "always-first": "-."}
GUIDE_STYLE = {  # rule baselines: told apart by colour and marker as well as by dashes
    "always-longer": {"color": "#4d4d4d", "marker": "s"},
    "always-first": {"color": "#a0522d", "marker": "^"},
    "random": {"color": "#8c8c8c", "marker": "x"},
}
DPI = 90
PAGE_PX = 1136
"""The width figures get on the report page in a 1200 px window (the body's 2em margins off);
a figure no wider than this is shown at its own size."""
PANEL_WIDTH = PAGE_PX / DPI / PANELS_PER_ROW  # the panels of a row fill the page, unshrunk
SMALL = 9  # points: legends, ticks, notes; 11.25 px at 90 dpi
TITLE = 10
MIN_TEXT_PX = 11


MARKERS = "osD^vPX*<>"


AGG_STYLES = {
    "prob-mean": ("tab:gray", "-"),
    "logodds-mean": ("tab:brown", ":"),
    "calibrated": ("tab:blue", "-"),
    "length-controlled": ("tab:green", "--"),
    "stacked": ("tab:red", "-"),
    "jury": ("tab:purple", "-."),
    "jury+length": ("tab:pink", "-."),
    "cascade": ("tab:olive", "--"),
}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure(
    summary: Summary,
    draw: Callable[[Any, str, DatasetSummary], bool],
    ylabel: str,
    xlabel: str,
) -> Figure | None:
    """One panel per data set the figure applies to (at most ``PANELS_PER_ROW`` a row, so the
    page need not shrink the figure), titled by its name; ``draw`` returns whether it drew
    anything. Data sets it draws nothing for get no panel: a line under the panels names them
    ("not estimable on: ..."). None when it draws nothing at all."""
    plt = _pyplot()
    datasets = list(summary.datasets.items())
    scratch = plt.figure()
    try:  # which data sets the figure applies to: draw each once on a throwaway axis
        drawable = []
        for name, entry in datasets:
            scratch.clear()
            if draw(scratch.add_subplot(), name, entry):
                drawable.append((name, entry))
    finally:
        plt.close(scratch)
    if not drawable:
        return None
    columns = min(PANELS_PER_ROW, len(drawable))
    rows = -(-len(drawable) // columns)
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(PANEL_WIDTH * columns, 4.2 * rows),
        squeeze=False,
        layout="constrained",
    )
    for axis in axes.flat[len(drawable) :]:
        axis.set_visible(False)
    for axis, (name, entry) in zip(axes.flat, drawable, strict=False):
        axis.set_title(name)
        axis.set_ylabel(ylabel)
        axis.set_xlabel(xlabel)
        axis.grid(alpha=0.3)
        draw(axis, name, entry)
    left_out = [name for name, _ in datasets if name not in dict(drawable)]
    if left_out:
        fig.supxlabel("not estimable on: " + ", ".join(left_out), fontsize=SMALL, color="gray")
    return fig


def _nothing(axis: Any) -> None:
    axis.text(
        0.5,
        0.5,
        "not estimable on this data set",
        transform=axis.transAxes,
        ha="center",
        va="center",
        fontsize=SMALL,
        color="gray",
    )


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes (``DPI``); closes it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    _pyplot().close(fig)
    return buffer.getvalue()


def _colors(entry: DatasetSummary) -> dict[str, Any]:
    plt = _pyplot()
    labelers = list(dict.fromkeys(cell.labeler for cell in entry.labeler_cells()))
    cmap = plt.get_cmap("tab10")
    return {name: cmap(i % 10) for i, name in enumerate(labelers)}


def _guide_line(axis: Any, value: float, name: str, label: str | None = None) -> None:
    """A baseline across the panel at ``value``: its dash pattern, colour and marker (a
    published judge: purple diamonds)."""
    style = GUIDE_STYLE.get(name, {"color": "tab:purple", "marker": "D"})
    axis.plot(
        [0, 0.25, 0.5, 0.75, 1],
        [value] * 5,
        transform=axis.get_yaxis_transform(),
        scalex=False,
        ls=GUIDES.get(name, "-."),
        lw=1.2,
        markevery=[1, 2, 3],
        ms=5,
        label=label or name,
        **style,
    )


def _guides(axis: Any, entry: DatasetSummary) -> None:
    """Horizontal lines: rule baselines in gray, published judges in purple, the human ceiling
    (only on at least ``CEILING_MIN_N`` pairs)."""
    for cell in entry.baseline_cells():
        if cell.accuracy is not None:
            _guide_line(axis, cell.accuracy, cell.variant)
    ceiling = entry.human_ceiling
    if ceiling is not None and ceiling.value is not None and ceiling.n >= CEILING_MIN_N:
        axis.axhline(ceiling.value, color="black", lw=1, label=f"human ceiling (n={ceiling.n})")


def _accuracy(cell: Cell) -> Estimate | None:
    return cell.alignment.accuracy


def _balanced(cell: Cell) -> Estimate | None:
    return cell.length_controlled.balanced


def _same_slot(cell: Cell) -> Estimate | None:
    return cell.position_bias.same_slot if cell.position_bias is not None else None


def _fit(name: str, width: int = 28) -> str:
    """A name for a legend or tick: long ones (a model folder's path) keep their end."""
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def _short_variant(variant: str) -> str:
    return variant.rsplit("/", 1)[-1]


def _short_variant(variant: str) -> str:
    return variant.rsplit("/", 1)[-1]
