"""Filters, group-wise splits and seeded samples, each derived from content and a seed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from labelbench.data.record import Comparison, PromptItem, content_hash

HIGH_CONFIDENCE = (1, 2, 8, 9)
"""TL;DR's 9-point scale ends: the subset on which the RLAIF paper measured alignment."""

Item = TypeVar("Item", Comparison, PromptItem)


class Filters(BaseModel):
    """Which comparisons to keep."""

    model_config = ConfigDict(extra="forbid")

    confidence: list[int] | None = Field(
        default=None, description="keep items whose every annotation has one of these confidences"
    )
    drop_ties: bool = False
    max_chars: int | None = Field(default=None, gt=0, description="context + both responses")
    drop_diverging: bool = Field(
        default=False,
        description="drop pairs whose conversations differ before the final reply "
        "(meta 'diverges_early': the responses carry later turns)",
    )


def apply_filters(
    items: Sequence[Comparison], filters: Filters
) -> tuple[list[Comparison], Counter[str]]:
    """The kept comparisons and, for the rest, how many each filter removed."""
    kept: list[Comparison] = []
    removed: Counter[str] = Counter()
    allowed = set(filters.confidence) if filters.confidence is not None else None
    for item in items:
        if allowed is not None and not (
            item.annotations and all(a.confidence in allowed for a in item.annotations)
        ):
            removed["confidence"] += 1
        elif filters.drop_ties and item.is_tie:
            removed["tie"] += 1
        elif filters.drop_diverging and item.meta.get("diverges_early"):
            removed["diverging"] += 1
        elif filters.max_chars is not None and (
            len(item.context) + len(item.response_a) + len(item.response_b) > filters.max_chars
        ):
            removed["max_chars"] += 1
        else:
            kept.append(item)
    return kept, removed


def _unit(seed: int, key: str) -> float:
    return int(content_hash(str(seed), key), 16) / 16**16


def split_by_group(
    items: Sequence[Item], fractions: dict[str, float], seed: int = 0
) -> dict[str, list[Item]]:
    """Split so that all items of a group (a post, a dialogue context) land in the same split."""
    total = sum(fractions.values())
    if not fractions or total <= 0 or any(f < 0 for f in fractions.values()):
        raise ValueError(f"split fractions must be non-negative with a positive sum: {fractions}")
    bounds: list[tuple[float, str]] = []
    running = 0.0
    for name, fraction in fractions.items():
        running += fraction / total
        bounds.append((running, name))
    splits: dict[str, list[Item]] = {name: [] for name in fractions}
    for item in items:
        position = _unit(seed, item.group_id)
        name = next((n for bound, n in bounds if position < bound), bounds[-1][1])
        splits[name].append(item)
    return splits


def sample(items: Sequence[Item], n: int | None, seed: int = 0) -> list[Item]:
    """A seeded sample of n items, in a content-derived order (all of them when n is None)."""
    ordered = sorted(items, key=lambda item: _unit(seed, item.id))
    return ordered if n is None else ordered[:n]
