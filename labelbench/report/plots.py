"""The report's figures, drawn from ``summary.json`` and ``timing.json`` with matplotlib (Agg).

Each function returns PNG bytes, or None when the run has nothing to show for that figure
(e.g. no variant with self-consistency sampling).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

PLOT_TITLES = {
    "alignment_by_variant": "Alignment with humans by prompt variant",
    "position_bias_by_size": "Position bias by labeler size",
    "alignment_vs_exemplars": "Alignment vs number of exemplars",
    "self_consistency_vs_temperature": "Self-consistency: alignment vs temperature",
    "reliability": "Reliability diagrams (best variant per labeler)",
    "alignment_vs_cost": "Alignment vs cost",
}
SHOTS = r"\d+shot"
SAMPLING = r"-sc\d+(-t[\d.]+)?"
GUIDES = {"always-longer": "--", "random": ":", "always-first": "-."}


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
    summary: dict[str, Any], draw: Callable[[Any, str, dict[str, Any]], bool], ylabel: str
) -> bytes | None:
    """One panel per data set; ``draw`` returns whether it drew anything."""
    plt = _pyplot()
    datasets = list(summary["datasets"].items())
    if not datasets:
        return None
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.2 * len(datasets), 3.8), squeeze=False)
    drawn = False
    for axis, (name, entry) in zip(axes[0], datasets, strict=True):
        axis.set_title(name)
        axis.set_ylabel(ylabel)
        axis.grid(alpha=0.3)
        drawn = draw(axis, name, entry) or drawn
    if not drawn:
        plt.close(fig)
        return None
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def _colors(entry: dict[str, Any]) -> dict[str, Any]:
    plt = _pyplot()
    labelers = list(dict.fromkeys(cell["labeler"] for cell in _labeler_cells(entry)))
    cmap = plt.get_cmap("tab10")
    return {name: cmap(i % 10) for i, name in enumerate(labelers)}


def _guides(axis: Any, entry: dict[str, Any]) -> None:
    """Horizontal lines: rule baselines in gray, published judges in purple, the human ceiling."""
    for cell in entry["cells"]:
        if cell["kind"] != "baseline" or _acc(cell) is None:
            continue
        style = GUIDES.get(cell["variant"], "-.")
        color = "gray" if cell["variant"] in GUIDES else "tab:purple"
        axis.axhline(_acc(cell), color=color, ls=style, lw=1, label=cell["variant"])
    ceiling = entry.get("human_ceiling")
    if ceiling and ceiling["value"] is not None:
        axis.axhline(ceiling["value"], color="black", lw=1, label="human ceiling")


def alignment_by_variant(summary: dict[str, Any]) -> bytes | None:
    def draw(axis: Any, _: str, entry: dict[str, Any]) -> bool:
        cells = [c for c in _labeler_cells(entry) if _acc(c) is not None]
        if not cells:
            return False
        variants = list(dict.fromkeys(c["variant"] for c in cells))
        colors = _colors(entry)
        width = 0.8 / len(colors)
        for k, labeler in enumerate(colors):
            mine = {
                c["variant"]: c["alignment"]["accuracy"] for c in cells if c["labeler"] == labeler
            }
            xs = [i + k * width for i, v in enumerate(variants) if v in mine]
            est = [mine[v] for v in variants if v in mine]
            values = [e["value"] for e in est]
            errors = [
                [
                    v - (e["low"] if e["low"] is not None else v)
                    for v, e in zip(values, est, strict=True)
                ],
                [
                    (e["high"] if e["high"] is not None else v) - v
                    for v, e in zip(values, est, strict=True)
                ],
            ]
            axis.bar(
                xs, values, width, yerr=errors, color=colors[labeler], label=labeler, capsize=2
            )
        axis.set_xticks([i + width * (len(colors) - 1) / 2 for i in range(len(variants))])
        axis.set_xticklabels(variants, rotation=30, ha="right", fontsize=7)
        _guides(axis, entry)
        axis.set_ylim(0, 1)
        axis.legend(fontsize=6, loc="lower right")
        return True

    return _figure(summary, draw, "accuracy vs human majority")


def position_bias_by_size(summary: dict[str, Any]) -> bytes | None:
    def draw(axis: Any, _: str, entry: dict[str, Any]) -> bool:
        cells = [c for c in _labeler_cells(entry) if c.get("position_bias")]
        if not cells:
            return False
        size = {c["labeler"]: c["properties"].get("labeler_params") or 0 for c in cells}
        labelers = sorted(size, key=lambda name: (size[name], name))
        colors = _colors(entry)
        for x, labeler in enumerate(labelers):
            values = [
                c["position_bias"]["same_slot"]["value"]
                for c in cells
                if c["labeler"] == labeler and c["position_bias"]["same_slot"]["value"] is not None
            ]
            axis.scatter([x] * len(values), values, color=colors[labeler], alpha=0.7)
            if values:
                axis.hlines(sum(values) / len(values), x - 0.3, x + 0.3, color=colors[labeler])
        names = [f"{n}\n{size[n] / 1e6:.0f}M" if size[n] else n for n in labelers]
        axis.set_xticks(range(len(labelers)))
        axis.set_xticklabels(names, fontsize=7)
        axis.set_ylim(0, 1)
        return True

    return _figure(summary, draw, "share of pairs: same slot wins both orders")


def _line_plot(
    summary: dict[str, Any], x_key: str, series: Callable[[dict[str, Any]], str | None], xlabel: str
) -> bytes | None:
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
            axis.plot(xs, [sum(by_x[x]) / len(by_x[x]) for x in xs], marker="o", label=name)
        axis.set_xlabel(xlabel)
        _guides(axis, entry)
        axis.legend(fontsize=6)
        return True

    return _figure(summary, draw, "accuracy vs human majority")


def _style(variant: str, pattern: str, replacement: str) -> str:
    """A variant's name within its family with one setting replaced: the line it belongs to."""
    return re.sub(pattern, replacement, variant.rsplit("/", 1)[-1])


def alignment_vs_exemplars(summary: dict[str, Any]) -> bytes | None:
    """One line per labeler and prompt style, through its 0-shot, 2-shot, ... variants."""

    def series(cell: dict[str, Any]) -> str:
        return f"{cell['labeler']} {_style(cell['variant'], SHOTS, 'k-shot')}"

    return _line_plot(summary, "n_exemplars", series, "exemplars in the prompt")


def self_consistency_vs_temperature(summary: dict[str, Any]) -> bytes | None:
    """One line per labeler and chain-of-thought prompt: greedy (temperature 0), then its
    self-consistency variants at their sampling temperatures."""

    def series(cell: dict[str, Any]) -> str | None:
        if not cell["properties"].get("cot"):
            return None
        return f"{cell['labeler']} {_style(cell['variant'], SAMPLING, '')}"

    return _line_plot(summary, "temperature", series, "sampling temperature (0 = greedy)")


def reliability(summary: dict[str, Any]) -> bytes | None:
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
        for labeler, cell in best.items():
            table = cell["calibration"]["reliability"]
            ece = cell["calibration"]["ece"]["value"]
            axis.plot(
                [row["mean_p"] for row in table],
                [row["human_a"] for row in table],
                marker="o",
                color=colors[labeler],
                label=f"{labeler} {cell['variant']} (ECE {ece:.3f})",
            )
        axis.set_xlabel("AI P(A), binned")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        axis.legend(fontsize=6)
        return True

    return _figure(summary, draw, "share of humans preferring A")


def alignment_vs_cost(summary: dict[str, Any]) -> bytes | None:
    def draw(axis: Any, _: str, entry: dict[str, Any]) -> bool:
        colors = _colors(entry)
        drawn, costs = False, []
        for cell in _labeler_cells(entry):
            cost = cell["cost"]["tokens_per_pair"]
            if cost is None or _acc(cell) is None:
                continue
            axis.scatter(cost, _acc(cell), color=colors[cell["labeler"]])
            axis.annotate(cell["variant"], (cost, _acc(cell)), fontsize=6)
            drawn = True
            costs.append(cost)
        if drawn:
            wide = min(costs) > 0 and max(costs) / min(costs) > 10
            axis.set_xscale("log" if wide else "linear")
            axis.set_xlabel("tokens per pair" + (" (log)" if wide else ""))
            _guides(axis, entry)
            for labeler, color in colors.items():
                axis.scatter([], [], color=color, label=labeler)
            axis.legend(fontsize=6)
        return drawn

    return _figure(summary, draw, "accuracy vs human majority")


PLOTS: dict[str, Callable[[dict[str, Any]], bytes | None]] = {
    "alignment_by_variant": alignment_by_variant,
    "position_bias_by_size": position_bias_by_size,
    "alignment_vs_exemplars": alignment_vs_exemplars,
    "self_consistency_vs_temperature": self_consistency_vs_temperature,
    "reliability": reliability,
    "alignment_vs_cost": alignment_vs_cost,
}


def draw_all(summary: dict[str, Any]) -> dict[str, bytes | None]:
    return {name: plot(summary) for name, plot in PLOTS.items()}
