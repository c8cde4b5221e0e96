"""The report's figures, drawn from ``summary.json`` and ``timing.json`` with matplotlib (Agg).

Each function returns a matplotlib Figure, or None when the run has nothing to show for that
figure (e.g. no variant with self-consistency sampling); ``draw_all`` turns them into PNG bytes.
``layout_problems`` lists what a reader would miss in a figure (labels, clipped or overlapping
text).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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
}
SHOTS = r"\d+shot"
SAMPLING = r"-sc\d+(-t[\d.]+)?"
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


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _labeler_cells(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [cell for cell in entry["cells"] if cell["kind"] == "labeler"]


def _acc(cell: dict[str, Any]) -> float | None:
    return cell["alignment"]["accuracy"]["value"]


def _figure(
    summary: dict[str, Any],
    draw: Callable[[Any, str, dict[str, Any]], bool],
    ylabel: str,
    xlabel: str,
) -> Figure | None:
    """One panel per data set (at most ``PANELS_PER_ROW`` a row, so the page need not shrink
    the figure), titled by its name; ``draw`` returns whether it drew anything (a panel without
    anything says so)."""
    plt = _pyplot()
    datasets = list(summary["datasets"].items())
    if not datasets:
        return None
    columns = min(PANELS_PER_ROW, len(datasets))
    rows = -(-len(datasets) // columns)
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(PANEL_WIDTH * columns, 4.2 * rows),
        squeeze=False,
        layout="constrained",
    )
    for axis in axes.flat[len(datasets) :]:
        axis.set_visible(False)
    drawn = False
    for axis, (name, entry) in zip(axes.flat, datasets, strict=False):
        axis.set_title(name)
        axis.set_ylabel(ylabel)
        axis.set_xlabel(xlabel)
        axis.grid(alpha=0.3)
        if draw(axis, name, entry):
            drawn = True
        else:
            _nothing(axis)
    if not drawn:
        plt.close(fig)
        return None
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


def _colors(entry: dict[str, Any]) -> dict[str, Any]:
    plt = _pyplot()
    labelers = list(dict.fromkeys(cell["labeler"] for cell in _labeler_cells(entry)))
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


def _guides(axis: Any, entry: dict[str, Any]) -> None:
    """Horizontal lines: rule baselines in gray, published judges in purple, the human ceiling
    (only on at least ``CEILING_MIN_N`` pairs)."""
    for cell in entry["cells"]:
        if cell["kind"] != "baseline" or _acc(cell) is None:
            continue
        _guide_line(axis, _acc(cell), cell["variant"])
    ceiling = entry.get("human_ceiling")
    if ceiling and ceiling.get("value") is not None and ceiling["n"] >= CEILING_MIN_N:
        axis.axhline(
            ceiling["value"], color="black", lw=1, label=f"human ceiling (n={ceiling['n']})"
        )


# ---------------------------------------------------------------------------- size ladder


def _fit(name: str, width: int = 28) -> str:
    """A name for a legend or tick: long ones (a model folder's path) keep their end."""
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def _short_variant(variant: str) -> str:
    return variant.rsplit("/", 1)[-1]


def _size_text(count: float) -> str:
    return f"{count / 1e9:.2f}B" if count >= 1e9 else f"{count / 1e6:.0f}M"


def _sizes(summary: dict[str, Any], entry: dict[str, Any]) -> dict[str, float]:
    """Parameter counts of the data set's labelers where known: the summary's ``labelers``
    block, else the cells' recorded ``labeler_params``."""
    known = {name: info.get("parameters") for name, info in summary.get("labelers", {}).items()}
    sizes: dict[str, float] = {}
    for cell in _labeler_cells(entry):
        size = known.get(cell["labeler"]) or cell["properties"].get("labeler_params")
        if size:
            sizes[cell["labeler"]] = float(size)
    return sizes


def _ladder_datasets(summary: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict]]:
    """Data sets with at least two labelers of known size: (name, entry, sizes)."""
    out = []
    for name, entry in summary["datasets"].items():
        sizes = _sizes(summary, entry)
        if len(sizes) >= 2:
            out.append((name, entry, sizes))
    return out


def _unsized(summary: dict[str, Any]) -> list[str]:
    names = {c["labeler"] for e in summary["datasets"].values() for c in _labeler_cells(e)}
    sized = {n for _, e, _ in _ladder_datasets(summary) for n in _sizes(summary, e)}
    return sorted(names - sized)


def _size_axis(axis: Any, sizes: dict[str, float]) -> None:
    """Log x with one tick per labeler, labelled by its name and size; from three labelers on,
    every other label sits one step lower so that neighbours do not collide."""
    from matplotlib.ticker import NullFormatter

    names: dict[float, list[str]] = {}  # labelers of the same size share one tick
    for name in sorted(sizes, key=lambda n: (sizes[n], n)):
        names.setdefault(sizes[name], []).append(name)
    axis.set_xscale("log")
    axis.set_xticks(list(names))
    axis.set_xticklabels(
        [f"{' / '.join(map(_fit, group))}\n{_size_text(size)}" for size, group in names.items()],
        fontsize=SMALL,
    )
    axis.xaxis.set_minor_formatter(NullFormatter())
    if len(names) >= 2:
        for tick in axis.xaxis.get_major_ticks()[1::2]:
            tick.set_pad(tick.get_pad() + 2.6 * SMALL)  # below its neighbours' two lines
    low, high = min(sizes.values()), max(sizes.values())
    axis.set_xlim(low / 1.5, high * 1.5)
    axis.set_xlabel("labeler parameters (log scale)", fontsize=SMALL)


def _variant_colors(entries: list[dict[str, Any]]) -> dict[str, Any]:
    cmap = _pyplot().get_cmap("tab10")
    names = list(
        dict.fromkeys(_short_variant(c["variant"]) for e in entries for c in _labeler_cells(e))
    )
    return {name: cmap(i % 10) for i, name in enumerate(names)}


def _ladder_lines(
    axis: Any,
    entry: dict[str, Any],
    sizes: dict[str, float],
    colors: dict[str, Any],
    value: Callable[[dict[str, Any]], dict[str, Any] | None],
) -> None:
    """One line per variant through the labelers of known size, with interval bars; variants
    are nudged apart sideways (a few percent in x) so their bars stay visible."""
    by_variant: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    for cell in _labeler_cells(entry):
        estimate = value(cell)
        if cell["labeler"] in sizes and estimate and estimate.get("value") is not None:
            by_variant.setdefault(_short_variant(cell["variant"]), []).append(
                (sizes[cell["labeler"]], estimate)
            )
    count = len(by_variant)
    if not count:
        _nothing(axis)
    for k, (variant, points) in enumerate(by_variant.items()):
        points.sort(key=lambda p: p[0])
        nudge = 1.04 ** (k - (count - 1) / 2)
        xs = [x * nudge for x, _ in points]
        ys = [e["value"] for _, e in points]
        low = [
            y - (e["low"] if e.get("low") is not None else y)
            for y, (_, e) in zip(ys, points, strict=True)
        ]
        high = [
            (e["high"] if e.get("high") is not None else y) - y
            for y, (_, e) in zip(ys, points, strict=True)
        ]
        axis.errorbar(
            xs,
            ys,
            yerr=[low, high],
            marker="o",
            ms=4,
            lw=1.2,
            capsize=2,
            color=colors[variant],
            label=variant,
        )


def _baseline_lines(axis: Any, entry: dict[str, Any], metric: Callable, ceiling: bool) -> None:
    """always-longer and always-first as gray lines; the human ceiling when n >= 30."""
    for cell in entry["cells"]:
        if cell["kind"] != "baseline" or cell["variant"] not in ("always-longer", "always-first"):
            continue
        estimate = metric(cell)
        if estimate and estimate.get("value") is not None:
            _guide_line(axis, estimate["value"], cell["variant"])
    found = entry.get("human_ceiling")
    if ceiling and found and found.get("value") is not None and found["n"] >= CEILING_MIN_N:
        axis.axhline(
            found["value"],
            color="black",
            lw=1,
            label=f"human ceiling ({found['value']:.2f}, n={found['n']})",
        )


def _palm2_strip(axis: Any, column: int, title: str) -> None:
    """The RLAIF paper's PaLM 2 XS/S/L reference points, placed by name (sizes not public)."""
    xs = range(len(PALM2))
    ys = [row[column] for row in PALM2]
    axis.plot(xs, ys, color="tab:red", marker="D", ms=4, lw=1, ls=":", label=PALM2_SOURCE)
    for x, y in zip(xs, ys, strict=True):
        below = x % 2 == 1  # neighbours alternate above and below their points: no overlap
        axis.annotate(
            f"{100 * y:.0f}%",  # the caption gives the exact figures
            (x, y),
            xytext=(0, -6 if below else 5),
            textcoords="offset points",
            ha="center",
            va="top" if below else "bottom",
            fontsize=SMALL,
        )
    axis.set_xticks(list(xs))
    axis.set_xticklabels([row[0] for row in PALM2], fontsize=SMALL)
    axis.set_xlim(-0.6, len(PALM2) - 0.4)
    axis.set_xlabel("PaLM 2 size\n(not public)", fontsize=SMALL)
    axis.set_title(title, fontsize=SMALL)
    axis.tick_params(labelleft=False)
    axis.grid(alpha=0.3)


def _ladder_figure(
    summary: dict[str, Any],
    panels: list[tuple[str, str, Callable[[dict[str, Any]], dict[str, Any] | None], bool]],
    palm2_column: int,
    title: str,
) -> Figure | None:
    """Rows = data sets; per row the ``panels`` (suffix, y label, metric, human ceiling drawn),
    the first followed by the PaLM 2 strip on summarization data sets, and one legend."""
    plt = _pyplot()
    rows = _ladder_datasets(summary)
    if not rows:
        return None
    colors = _variant_colors([entry for _, entry, _ in rows])
    ratios = [4.0, 1.1] + [4.0] * (len(panels) - 1)
    fig = plt.figure(figsize=(12, 3.3 * len(rows) + 0.6), layout="constrained")
    grid = fig.add_gridspec(len(rows), len(ratios), width_ratios=ratios)
    for r, (name, entry, sizes) in enumerate(rows):
        row_axes = []
        for (suffix, ylabel, metric, ceiling), column in zip(
            panels, [0, *range(2, len(ratios))], strict=True
        ):
            axis = fig.add_subplot(grid[r, column])
            _ladder_lines(axis, entry, sizes, colors, metric)
            _baseline_lines(axis, entry, metric, ceiling)
            _size_axis(axis, sizes)
            axis.set_ylim(0, 1.05)
            axis.set_ylabel(ylabel, fontsize=SMALL)
            axis.set_title(f"{name}: {suffix}", fontsize=TITLE)
            axis.grid(alpha=0.3)
            row_axes.append(axis)
        strip = fig.add_subplot(grid[r, 1], sharey=row_axes[0])
        if _is_summarization(entry):
            _palm2_strip(strip, palm2_column, "RLAIF\nreference")
        else:
            strip.set_axis_off()
        row_axes.insert(1, strip)
        handles, labels = [], []
        for axis in row_axes:
            for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
                if label not in labels:
                    handles.append(handle)
                    labels.append(label)
        row_axes[-1].legend(
            handles,
            labels,
            fontsize=SMALL,
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            title="line: variant / baseline",
            title_fontsize=SMALL,
        )
    unsized = _unsized(summary)
    note = f"\nnot drawn, parameter count unknown: {', '.join(unsized)}" if unsized else ""
    fig.suptitle(title + note, fontsize=11)
    return fig


def _is_summarization(entry: dict[str, Any]) -> bool:
    """Whether the data set is a summarization task (where the PaLM 2 figures were measured)."""
    if entry.get("task") is not None:
        return entry["task"] == "summarization"
    cells = _labeler_cells(entry)
    return bool(cells) and all(c["variant"].startswith("summarization/") for c in cells)


def _accuracy(cell: dict[str, Any]) -> dict[str, Any] | None:
    return cell["alignment"]["accuracy"]


def _balanced(cell: dict[str, Any]) -> dict[str, Any] | None:
    return cell["length_controlled"]["balanced"]


def _same_slot(cell: dict[str, Any]) -> dict[str, Any] | None:
    return (cell.get("position_bias") or {}).get("same_slot")


def alignment_vs_size(summary: dict[str, Any]) -> Figure | None:
    """Accuracy and length-balanced accuracy vs parameter count, with PaLM 2 for reference."""
    panels = [
        ("raw alignment", "accuracy vs human majority", _accuracy, True),
        ("length-controlled", "length-balanced accuracy", _balanced, False),
    ]
    return _ladder_figure(summary, panels, 1, PLOT_TITLES["alignment_vs_size"])


def same_slot_vs_size(summary: dict[str, Any]) -> Figure | None:
    """Share of pairs with the same slot winning both orders vs parameter count."""
    panels = [("same slot in both orders", "share of pairs: same slot wins", _same_slot, False)]
    return _ladder_figure(summary, panels, 2, PLOT_TITLES["same_slot_vs_size"])


def _bars_by_variant(
    summary: dict[str, Any],
    metric: Callable[[dict[str, Any]], dict[str, Any] | None],
    ylabel: str,
    guides: bool,
) -> Figure | None:
    """Per data set, one group of bars per variant (tick: the variant's name within its family)
    and one bar per labeler (legend), with interval bars; baselines as lines when ``guides``."""

    def draw(axis: Any, _: str, entry: dict[str, Any]) -> bool:
        cells = [c for c in _labeler_cells(entry) if (metric(c) or {}).get("value") is not None]
        if not cells:
            return False
        variants = list(dict.fromkeys(c["variant"] for c in cells))
        colors = _colors(entry)
        width = 0.8 / len(colors)
        for k, labeler in enumerate(colors):
            mine = {c["variant"]: metric(c) for c in cells if c["labeler"] == labeler}
            xs = [i + k * width for i, v in enumerate(variants) if v in mine]
            est = [mine[v] for v in variants if v in mine]
            values = [e["value"] for e in est]
            errors = [
                [
                    v - (e.get("low") if e.get("low") is not None else v)
                    for v, e in zip(values, est, strict=True)
                ],
                [
                    (e.get("high") if e.get("high") is not None else v) - v
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


def alignment_by_variant(summary: dict[str, Any]) -> Figure | None:
    """Accuracy of every labeler x variant cell, with the baselines and the human ceiling."""
    return _bars_by_variant(summary, _accuracy, "accuracy vs human majority", True)


def position_bias_by_variant(summary: dict[str, Any]) -> Figure | None:
    """Same-slot rate of every labeler x variant cell that ran both orders."""
    return _bars_by_variant(summary, _same_slot, "same slot wins both orders", False)


def _line_plot(
    summary: dict[str, Any], x_key: str, series: Callable[[dict[str, Any]], str | None], xlabel: str
) -> Figure | None:
    def draw(axis: Any, _: str, entry: dict[str, Any]) -> bool:
        points: dict[str, dict[float, list[float]]] = {}
        for cell in _labeler_cells(entry):
            x, name = cell["properties"].get(x_key), series(cell)
            if x is None or name is None or _acc(cell) is None:
                continue
            points.setdefault(name, {}).setdefault(float(x), []).append(_acc(cell))
        lines = {name: by_x for name, by_x in points.items() if len(by_x) >= 2}
        if not lines:
            return False
        for name, by_x in lines.items():
            xs = sorted(by_x)
            axis.plot(
                xs, [sum(by_x[x]) / len(by_x[x]) for x in xs], marker="o", label=_fit(name, 48)
            )
        _guides(axis, entry)
        axis.legend(fontsize=SMALL, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return True

    return _figure(summary, draw, "accuracy vs human majority", xlabel)


def _style(variant: str, pattern: str, replacement: str) -> str:
    """A variant's name within its family with one setting replaced: the line it belongs to."""
    return re.sub(pattern, replacement, variant.rsplit("/", 1)[-1])


def alignment_vs_exemplars(summary: dict[str, Any]) -> Figure | None:
    """One line per labeler and prompt style, through its 0-shot, 2-shot, ... variants."""

    def series(cell: dict[str, Any]) -> str:
        return f"{cell['labeler']} {_style(cell['variant'], SHOTS, 'k-shot')}"

    return _line_plot(summary, "n_exemplars", series, "exemplars in the prompt")


def self_consistency_vs_temperature(summary: dict[str, Any]) -> Figure | None:
    """One line per labeler and chain-of-thought prompt: greedy (temperature 0), then its
    self-consistency variants at their sampling temperatures."""

    def series(cell: dict[str, Any]) -> str | None:
        if not cell["properties"].get("cot"):
            return None
        return f"{cell['labeler']} {_style(cell['variant'], SAMPLING, '')}"

    return _line_plot(summary, "temperature", series, "sampling temperature (0 = greedy)")


def reliability(summary: dict[str, Any]) -> Figure | None:
    bins = int(summary.get("settings", {}).get("calibration_bins") or 10)

    def draw(axis: Any, _: str, entry: dict[str, Any]) -> bool:
        best: dict[str, dict[str, Any]] = {}
        for cell in _labeler_cells(entry):
            current = best.get(cell["labeler"])
            if _acc(cell) is not None and (current is None or _acc(cell) > _acc(current)):
                best[cell["labeler"]] = cell
        if not best:
            return False
        colors = _colors(entry)
        axis.plot([0, 1], [0, 1], color="gray", ls=":", lw=1)
        for line, (labeler, cell) in enumerate(best.items()):
            table = [row for row in cell["calibration"]["reliability"] if row["n"] >= 5]
            ece = cell["calibration"]["ece"]["value"]
            axis.plot(
                [row["mean_p"] for row in table],
                [row["human_a"] for row in table],
                marker="o",
                color=colors[labeler],
                label=f"{_fit(labeler)} (ECE {ece:.3f})",  # its variant: in the tables
            )
            for row in cell["calibration"]["reliability"]:  # each bin's count, along the bottom
                axis.text(
                    (row["bin"] + 0.5) / bins,
                    0.03 + 0.06 * line,
                    str(row["n"]),
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


MARKERS = "osD^vPX*<>"


def alignment_vs_cost(
    summary: dict[str, Any], timing: dict[str, Any] | None = None
) -> Figure | None:
    """Accuracy vs seconds of compute per pair (``timing.json``: the seconds recorded when each
    label was computed, also for labels read from the cache): marker shape = labeler, colour =
    variant (both in the legend), baselines as lines. None without timing."""
    from matplotlib.lines import Line2D

    timing = timing or {}

    def draw(axis: Any, name: str, entry: dict[str, Any]) -> bool:
        seconds = {
            (t["labeler"], t["variant"]): t.get("seconds_per_pair") for t in timing.get(name, [])
        }
        cells = [
            c
            for c in _labeler_cells(entry)
            if seconds.get((c["labeler"], c["variant"])) and _acc(c) is not None
        ]
        if not cells:
            return False
        labelers = list(dict.fromkeys(c["labeler"] for c in cells))
        variants = list(dict.fromkeys(_short_variant(c["variant"]) for c in cells))
        cmap = _pyplot().get_cmap("tab20")
        shape = {name: MARKERS[i % len(MARKERS)] for i, name in enumerate(labelers)}
        color = {name: cmap(i % 20) for i, name in enumerate(variants)}
        costs = [float(seconds[(c["labeler"], c["variant"])]) for c in cells]
        for cell, cost in zip(cells, costs, strict=True):
            axis.scatter(
                cost,
                _acc(cell),
                marker=shape[cell["labeler"]],
                color=color[_short_variant(cell["variant"])],
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


def _best_cell_rows(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The aggregation rows of the best labeler cell (by prob-mean accuracy) and the group
    methods."""
    rows = entry.get("aggregations") or []
    plain = [r for r in rows if r["method"] == "prob-mean" and r["accuracy"]["value"] is not None]
    if not plain:
        return []
    best = max(plain, key=lambda r: r["accuracy"]["value"])
    key = (best["labelers"], best["variants"])
    return [
        r
        for r in rows
        if r["accuracy"]["value"] is not None
        and ((r["labelers"], r["variants"]) == key or len(r["labelers"]) > 1)
    ]


RELIABILITY_METHODS = ("prob-mean", "calibrated", "stacked")


def aggregation_reliability(summary: dict[str, Any]) -> Figure | None:
    def draw(axis: Any, _: str, entry: dict[str, Any]) -> bool:
        rows = [
            r
            for r in _best_cell_rows(entry)
            if len(r["labelers"]) == 1 and r["method"] in RELIABILITY_METHODS
        ]
        drawn = False
        axis.plot([0, 1], [0, 1], color="gray", ls=":", lw=1)
        for line, row in enumerate(rows):
            bins = row.get("reliability", [])
            shown = [b for b in bins if b["mean_p"] is not None]
            if not shown:
                continue
            color, style = AGG_STYLES[row["method"]]
            xs, ys = [b["mean_p"] for b in shown], [b["human_a"] for b in shown]
            axis.plot(xs, ys, marker="o", ms=3, color=color, ls=style, label=row["method"])
            for b in bins:  # each bin's count, one row of numbers per method along the bottom
                axis.text(
                    (b["low"] + b["high"]) / 2,
                    0.03 + 0.06 * line,
                    str(b["n"]),
                    fontsize=SMALL,
                    color=color,
                    ha="center",
                    va="bottom",
                )
            drawn = True
        if drawn:
            cell = rows[0]
            axis.set_title(f"{axis.get_title()}\n{_fit(cell['labelers'][0], 20)}", fontsize=TITLE)
            axis.set_xlim(0, 1)
            axis.set_ylim(0, 1)
            axis.legend(fontsize=SMALL, loc="upper left")
        return drawn

    return _figure(summary, draw, "share of humans preferring A", "soft label P(A), binned")


def agreement_vs_coverage(summary: dict[str, Any]) -> Figure | None:
    def draw(axis: Any, _: str, entry: dict[str, Any]) -> bool:
        drawn = False
        for row in _best_cell_rows(entry):
            curve = row.get("coverage") or []
            if not curve or row["method"] == "logodds-mean":
                continue
            color, style = AGG_STYLES[row["method"]]
            axis.plot(
                [c["coverage"] for c in curve],
                [c["accuracy"] for c in curve],
                color=color,
                ls=style,
                marker=".",
                label=row["method"],
            )
            drawn = True
        if drawn:
            axis.axhline(0.8, color="black", ls=":", lw=1)
            axis.set_xlim(0, 1.02)
            axis.set_ylim(0, 1.02)
            axis.legend(fontsize=SMALL, loc="lower left")
        return drawn

    return _figure(summary, draw, "agreement with the human majority", "coverage (share kept)")


def learning_curve(summary: dict[str, Any]) -> Figure | None:
    def draw(axis: Any, _: str, entry: dict[str, Any]) -> bool:
        curve = entry.get("learning_curve")
        if not curve or not curve["points"]:
            return False
        for method in dict.fromkeys(p["method"] for p in curve["points"]):
            points = [p for p in curve["points"] if p["method"] == method]
            color, _style = AGG_STYLES[method]
            sizes = [p["n_labels"] for p in points]
            axis.plot(sizes, [p["accuracy"] for p in points], color=color, marker="o", label=method)
            axis.plot(sizes, [p["log_loss"] for p in points], color=color, ls="--", marker="x")
        axis.set_xscale("log")
        axis.minorticks_off()
        axis.set_xticks([25, 50, 100, 200], ["25", "50", "100", "200"])
        axis.set_title(f"{axis.get_title()}\n{_fit(curve['labeler'], 20)}", fontsize=TITLE)
        axis.legend(fontsize=SMALL, loc="lower right")
        return True

    return _figure(
        summary, draw, "accuracy (solid) and log-loss (dashed)", "human labels fitted on"
    )


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


def draw(name: str, summary: dict[str, Any], timing: dict[str, Any] | None = None) -> Figure | None:
    """The figure ``name`` of ``PLOTS`` for a summary (and its timing), None where it does not
    apply."""
    plot = PLOTS[name]
    return plot(summary, timing) if name in TIMED else plot(summary)


def draw_all(
    summary: dict[str, Any], timing: dict[str, Any] | None = None
) -> dict[str, bytes | None]:
    """Every figure of the report as PNG bytes, None where it does not apply."""
    figures = {name: draw(name, summary, timing) for name in PLOTS}
    return {name: None if fig is None else png(fig) for name, fig in figures.items()}


# ---------------------------------------------------------------------------- layout check


def _texts(fig: Any) -> list[tuple[str, Any]]:
    """(description, artist) of every visible, non-empty text of ``fig``; legends as one box."""
    found: list[tuple[str, Any]] = []

    def add(kind: str, text: Any) -> None:
        if text is not None and text.get_visible() and text.get_text().strip():
            found.append((f"{kind} {text.get_text()!r}", text))

    add("suptitle", fig._suptitle)
    for index, axis in enumerate(fig.axes):
        if not axis.get_visible() or not axis.axison:
            continue
        where = f"axes {index} ({axis.get_title()!r})"
        add(f"{where} title", axis.title)
        add(f"{where} x label", axis.xaxis.label)
        add(f"{where} y label", axis.yaxis.label)
        for name, ax in (("x", axis.xaxis), ("y", axis.yaxis)):
            low, high = sorted(ax.get_view_interval())
            for tick in [*ax.get_major_ticks(), *ax.get_minor_ticks()]:
                if low - 1e-9 * abs(low) <= tick.get_loc() <= high + 1e-9 * abs(high):
                    add(f"{where} {name} tick", tick.label1)
        for text in axis.texts:
            add(f"{where} annotation", text)
        legend = axis.get_legend()
        if legend is not None and legend.get_visible():
            found.append((f"{where} legend", legend))
    return found


def layout_problems(fig: Any) -> list[str]:
    """What a reader would miss in ``fig``: axes (with an axis shown) without a title or an x
    label, or without a y label unless they share the y axis of one that has it; texts cut off
    at the figure's edge; texts or legends that overlap. Empty when the figure reads cleanly."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    problems = []
    for index, axis in enumerate(fig.axes):
        if not axis.get_visible() or not axis.axison:
            continue
        if not axis.get_title().strip():
            problems.append(f"axes {index} has no title")
        if not axis.get_xlabel().strip():
            problems.append(f"axes {index} ({axis.get_title()!r}) has no x label")
        siblings = axis.get_shared_y_axes().get_siblings(axis)
        if not any(other.get_ylabel().strip() for other in siblings):
            problems.append(f"axes {index} ({axis.get_title()!r}) has no y label")
    canvas = fig.bbox
    boxes = [(name, artist.get_window_extent(renderer)) for name, artist in _texts(fig)]
    for name, box in boxes:
        inside = (
            box.x0 >= canvas.x0 - 1
            and box.y0 >= canvas.y0 - 1
            and box.x1 <= canvas.x1 + 1
            and box.y1 <= canvas.y1 + 1
        )
        if not inside:
            problems.append(f"{name} is cut off at the figure's edge")
    for i, (name, box) in enumerate(boxes):
        for other, other_box in boxes[i + 1 :]:
            overlap_x = min(box.x1, other_box.x1) - max(box.x0, other_box.x0)
            overlap_y = min(box.y1, other_box.y1) - max(box.y0, other_box.y0)
            if overlap_x > 1 and overlap_y > 1:
                problems.append(f"{name} overlaps {other}")
    return problems


def smallest_text_px(fig: Any, page_px: int = PAGE_PX) -> float:
    """The height, in CSS pixels, of the smallest visible text of ``fig`` (legend entries and
    titles included) as a page ``page_px`` wide shows the figure's PNG (scaled down when wider
    than the page)."""
    width = fig.get_figwidth() * DPI
    scale = min(1.0, page_px / width)
    sizes = []
    for _, artist in _texts(fig):
        if hasattr(artist, "get_texts"):  # a legend: its entries and title
            sizes += [t.get_fontsize() for t in artist.get_texts() if t.get_text().strip()]
            title = artist.get_title()
            if title.get_text().strip():
                sizes.append(title.get_fontsize())
        else:
            sizes.append(artist.get_fontsize())
    return min(sizes) * DPI / 72 * scale if sizes else math.inf
