"""The size-ladder figures: alignment and position bias against labeler parameter count, with
the RLAIF paper's PaLM 2 labelers beside the summarization panels for reference."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from labelbench.report.plots_common import (
    CEILING_MIN_N,
    PALM2,
    PALM2_SOURCE,
    PLOT_TITLES,
    SMALL,
    TITLE,
    _accuracy,
    _balanced,
    _fit,
    _guide_line,
    _nothing,
    _pyplot,
    _same_slot,
    _short_variant,
)
from labelbench.rundir import Cell, DatasetSummary, Estimate, Summary

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _size_text(count: float) -> str:
    return f"{count / 1e9:.2f}B" if count >= 1e9 else f"{count / 1e6:.0f}M"


def _sizes(summary: Summary, entry: DatasetSummary) -> dict[str, float]:
    """Parameter counts of the data set's labelers where known: the summary's ``labelers``
    block, else the cells' recorded ``labeler_params``."""
    known = {name: info.parameters for name, info in summary.labelers.items()}
    sizes: dict[str, float] = {}
    for cell in entry.labeler_cells():
        size = known.get(cell.labeler) or cell.properties.labeler_params
        if size:
            sizes[cell.labeler] = float(size)
    return sizes


def _ladder_datasets(summary: Summary) -> list[tuple[str, DatasetSummary, dict[str, float]]]:
    """Data sets with at least two labelers of known size: (name, entry, sizes)."""
    out = []
    for name, entry in summary.datasets.items():
        sizes = _sizes(summary, entry)
        if len(sizes) >= 2:
            out.append((name, entry, sizes))
    return out


def _unsized(summary: Summary) -> list[str]:
    names = {c.labeler for e in summary.datasets.values() for c in e.labeler_cells()}
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


def _variant_colors(entries: list[DatasetSummary]) -> dict[str, Any]:
    cmap = _pyplot().get_cmap("tab10")
    names = list(
        dict.fromkeys(_short_variant(c.variant) for e in entries for c in e.labeler_cells())
    )
    return {name: cmap(i % 10) for i, name in enumerate(names)}


def _ladder_lines(
    axis: Any,
    entry: DatasetSummary,
    sizes: dict[str, float],
    colors: dict[str, Any],
    value: Callable[[Cell], Estimate | None],
) -> None:
    """One line per variant through the labelers of known size, with interval bars; variants
    are nudged apart sideways (a few percent in x) so their bars stay visible."""
    by_variant: dict[str, list[tuple[float, Estimate]]] = {}
    for cell in entry.labeler_cells():
        estimate = value(cell)
        if cell.labeler in sizes and estimate is not None and estimate.value is not None:
            by_variant.setdefault(_short_variant(cell.variant), []).append(
                (sizes[cell.labeler], estimate)
            )
    count = len(by_variant)
    if not count:
        _nothing(axis)
    for k, (variant, points) in enumerate(by_variant.items()):
        points.sort(key=lambda p: p[0])
        nudge = 1.04 ** (k - (count - 1) / 2)
        xs = [x * nudge for x, _ in points]
        ys = [e.value or 0.0 for _, e in points]
        low = [
            y - (e.low if e.low is not None else y) for y, (_, e) in zip(ys, points, strict=True)
        ]
        high = [
            (e.high if e.high is not None else y) - y for y, (_, e) in zip(ys, points, strict=True)
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


def _baseline_lines(
    axis: Any, entry: DatasetSummary, metric: Callable[[Cell], Estimate | None], ceiling: bool
) -> None:
    """always-longer and always-first as gray lines; the human ceiling when n >= 30."""
    for cell in entry.baseline_cells():
        if cell.variant not in ("always-longer", "always-first"):
            continue
        estimate = metric(cell)
        if estimate is not None and estimate.value is not None:
            _guide_line(axis, estimate.value, cell.variant)
    found = entry.human_ceiling
    if ceiling and found is not None and found.value is not None and found.n >= CEILING_MIN_N:
        axis.axhline(
            found.value,
            color="black",
            lw=1,
            label=f"human ceiling ({found.value:.2f}, n={found.n})",
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
    summary: Summary,
    panels: list[tuple[str, str, Callable[[Cell], Estimate | None], bool]],
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


def _is_summarization(entry: DatasetSummary) -> bool:
    """Whether the data set is a summarization task (where the PaLM 2 figures were measured)."""
    if entry.task is not None:
        return entry.task == "summarization"
    cells = entry.labeler_cells()
    return bool(cells) and all(c.variant.startswith("summarization/") for c in cells)


def alignment_vs_size(summary: Summary) -> Figure | None:
    """Accuracy and length-balanced accuracy vs parameter count, with PaLM 2 for reference."""
    panels = [
        ("raw alignment", "accuracy vs human majority", _accuracy, True),
        ("length-controlled", "length-balanced accuracy", _balanced, False),
    ]
    return _ladder_figure(summary, panels, 1, PLOT_TITLES["alignment_vs_size"])


def same_slot_vs_size(summary: Summary) -> Figure | None:
    """Share of pairs with the same slot winning both orders vs parameter count."""
    panels = [("same slot in both orders", "share of pairs: same slot wins", _same_slot, False)]
    return _ladder_figure(summary, panels, 2, PLOT_TITLES["same_slot_vs_size"])
