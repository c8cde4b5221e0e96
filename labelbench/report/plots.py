"""The report's figures, drawn from ``summary.json`` and ``timing.json`` (the typed
``labelbench.rundir.Summary`` and ``Timing``) with matplotlib (Agg).

Each function returns a matplotlib Figure, or None when the run has nothing to show for that
figure (e.g. no variant with self-consistency sampling); ``draw_all`` turns them into PNG bytes.
``layout_problems`` lists what a reader would miss in a figure (labels, clipped or overlapping
text). The figures live by concern in ``plots_common`` (titles, captions, styles, panels),
``plots_ladder`` (size ladder), ``plots_cells`` (labeler cells) and ``plots_aggregations`` (soft
labels), the checks in ``plots_layout``; this module gathers them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from labelbench.report.plots_aggregations import (
    aggregation_reliability,
    agreement_vs_coverage,
    learning_curve,
)
from labelbench.report.plots_cells import (
    alignment_by_variant,
    alignment_vs_cost,
    alignment_vs_exemplars,
    position_bias_by_variant,
    reliability,
    self_consistency_vs_temperature,
)
from labelbench.report.plots_common import (
    AGG_STYLES,
    CEILING_MIN_N,
    DPI,
    GUIDE_STYLE,
    GUIDES,
    LADDER_NOTE,
    MARKERS,
    MIN_TEXT_PX,
    PAGE_PX,
    PALM2,
    PALM2_SOURCE,
    PANEL_WIDTH,
    PANELS_PER_ROW,
    PLOT_CAPTIONS,
    PLOT_TITLES,
    SMALL,
    TITLE,
    _pyplot,
    png,
)
from labelbench.report.plots_ladder import alignment_vs_size, same_slot_vs_size
from labelbench.report.plots_layout import _texts, layout_problems, smallest_text_px
from labelbench.rundir import Summary, Timing

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PLOTS: dict[str, Callable[..., Figure | None]] = {
    "alignment_vs_size": alignment_vs_size,
    "same_slot_vs_size": same_slot_vs_size,
    "alignment_by_variant": alignment_by_variant,
    "position_bias_by_variant": position_bias_by_variant,
    "alignment_vs_exemplars": alignment_vs_exemplars,
    "self_consistency_vs_temperature": self_consistency_vs_temperature,
    "reliability": reliability,
    "alignment_vs_cost": alignment_vs_cost,
    "aggregation_reliability": aggregation_reliability,
    "agreement_vs_coverage": agreement_vs_coverage,
    "learning_curve": learning_curve,
}


TIMED = ("alignment_vs_cost",)
"""Figures drawn from ``timing.json`` as well (called with ``timing=``)."""


def draw(name: str, summary: Summary, timing: Timing | None = None) -> Figure | None:
    """The figure ``name`` of ``PLOTS`` for a summary (and its timing), None where it does not
    apply."""
    plot = PLOTS[name]
    return plot(summary, timing) if name in TIMED else plot(summary)


def draw_all(summary: Summary, timing: Timing | None = None) -> dict[str, bytes | None]:
    """Every figure of the report as PNG bytes, None where it does not apply."""
    figures = {name: draw(name, summary, timing) for name in PLOTS}
    return {name: None if fig is None else png(fig) for name, fig in figures.items()}


__all__ = [
    "AGG_STYLES",
    "CEILING_MIN_N",
    "DPI",
    "GUIDES",
    "GUIDE_STYLE",
    "LADDER_NOTE",
    "MARKERS",
    "MIN_TEXT_PX",
    "PAGE_PX",
    "PALM2",
    "PALM2_SOURCE",
    "PANELS_PER_ROW",
    "PANEL_WIDTH",
    "PLOTS",
    "PLOT_CAPTIONS",
    "PLOT_TITLES",
    "SMALL",
    "TIMED",
    "TITLE",
    "_pyplot",
    "_texts",
    "aggregation_reliability",
    "agreement_vs_coverage",
    "alignment_by_variant",
    "alignment_vs_cost",
    "alignment_vs_exemplars",
    "alignment_vs_size",
    "draw",
    "draw_all",
    "layout_problems",
    "learning_curve",
    "png",
    "position_bias_by_variant",
    "reliability",
    "same_slot_vs_size",
    "self_consistency_vs_temperature",
    "smallest_text_px",
]
