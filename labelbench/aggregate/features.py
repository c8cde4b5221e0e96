"""What the aggregation methods read: the method names and constants, the log-odds and length
features, group folds, and ``Features`` (one data set's items x labeler cells)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from labelbench.data.record import content_hash

Array = np.ndarray

SingleMethod = Literal["prob-mean", "logodds-mean", "calibrated", "length-controlled", "stacked"]
SINGLE_METHODS: tuple[str, ...] = (
    "prob-mean",
    "logodds-mean",
    "calibrated",
    "length-controlled",
    "stacked",
)
GROUP_METHODS: tuple[str, ...] = ("jury", "jury+length", "cascade")
REFERENCE_METHODS: tuple[str, ...] = ("length-only",)
METHODS: tuple[str, ...] = SINGLE_METHODS + GROUP_METHODS + REFERENCE_METHODS
NEEDS = {
    "prob-mean": "nothing",
    "logodds-mean": "nothing",
    **{m: "human labels" for m in METHODS if m not in ("prob-mean", "logodds-mean")},
}
FOLDS = 5
NEAR_EQUAL = 0.1
"""|x| at most this (about 10% length difference) counts as near equal length."""
NEAR_EQUAL_MIN = 10
CASCADE_THRESHOLDS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, math.inf)
LOGIT_CLIP = 30.0
"""Log-odds are clipped to +-30 (P within 1e-13 of 0 or 1), so a saturated order stays finite."""
C_SINGLE, C_JURY = 100.0, 1.0


def logit(p: Array) -> Array:
    """log(p / (1 - p)), clipped to +-``LOGIT_CLIP``; NaN stays NaN."""
    p = np.asarray(p, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.log(p) - np.log1p(-p)
    return np.clip(value, -LOGIT_CLIP, LOGIT_CLIP)


def sigmoid(z: Array) -> Array:
    z = np.asarray(z, dtype=float)
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def order_mean(ab: Array, ba: Array) -> Array:
    """The mean over the orders present (NaN where neither is): d from (l_ab, l_ba)."""
    stacked = np.column_stack([np.asarray(ab, float), np.asarray(ba, float)])
    present = ~np.isnan(stacked)
    total = np.where(present, stacked, 0.0).sum(1)
    count = present.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def length_ratio(len_a: Array, len_b: Array) -> Array:
    """x = log((len_a + 1) / (len_b + 1)) (lengths in characters; +1 keeps empty ones finite)."""
    return np.log1p(np.asarray(len_a, float)) - np.log1p(np.asarray(len_b, float))


def group_folds(groups: Sequence[Any], k: int = FOLDS, seed: int = 0) -> Array:
    """Fold index (0..k-1) of every row: whole groups to a fold, in an order hashed from the
    group ids and ``seed``, dealt round-robin (fold sizes differ by at most one group)."""
    ids = [str(g) for g in groups]
    unique = sorted(set(ids), key=lambda g: (content_hash(str(seed), "fold", g), g))
    fold_of = {g: i % k for i, g in enumerate(unique)}
    return np.array([fold_of[g] for g in ids], dtype=int)


@dataclass(frozen=True)
class Features:
    """What the methods read, for n items and m members (labeler x variant cells).

    ``d``: (n, m) order-averaged log-odds of A, NaN = unscored; ``p``: (n, m) prob-mean P(A);
    ``x``: (n,) log length ratio; ``y``: (n,) human label, 1 = A, 0 = B, NaN = tie or none;
    ``groups``: (n,) group ids; ``seconds``: (n, m) recorded compute seconds (NaN unknown);
    ``cost``: (m,) a stable cost per member that orders a cascade, cheapest first (the report
    gives tokens per pair x parameters; None: the mean recorded seconds)."""

    d: Array
    p: Array
    x: Array
    y: Array
    groups: Array
    seconds: Array
    members: tuple[tuple[str, str], ...] = ()
    cost: Array | None = None
    one_sided: Array | None = None
    """(m,) True for a member labelled (mostly) in one fixed A/B order: its log-odds carry the
    slot prior, which a fit on human labels would confuse with the data set's A/B skew."""

    def __len__(self) -> int:
        return len(self.x)

    def column(self, k: int) -> Features:
        return Features(
            self.d[:, [k]],
            self.p[:, [k]],
            self.x,
            self.y,
            self.groups,
            self.seconds[:, [k]],
            self.members[k : k + 1],
            None if self.cost is None else self.cost[[k]],
            None if self.one_sided is None else self.one_sided[[k]],
        )
