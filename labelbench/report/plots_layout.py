"""Checks of a drawn figure: what a reader would miss (labels, clipped or overlapping text) and
the smallest text as the report page shows it."""

from __future__ import annotations

import math
from typing import Any

from labelbench.report.plots_common import DPI, PAGE_PX


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
