"""How good soft labels are: log-loss terms, agreement against coverage, reliability bins, and
learning curves (accuracy and log-loss by the number of human labels fitted on)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from labelbench.aggregate.features import FOLDS, Array, Features, group_folds
from labelbench.aggregate.fitting import fit, predict, scored, undefined_reason
from labelbench.data.record import content_hash


def log_loss_terms(p: Array, y: Array) -> Array:
    """-(y log p + (1 - y) log(1 - p)) per item, p clipped to [1e-6, 1 - 1e-6]; NaN where
    p or y is NaN."""
    q = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    with np.errstate(invalid="ignore"):
        return -(y * np.log(q) + (1 - y) * np.log(1 - q))


def coverage_curve(
    p: Array, y: Array, *, minimum: int = 20, points: int = 10
) -> tuple[list[dict[str, float]], float | None]:
    """Agreement against coverage when the labeler abstains below a confidence max(P, 1-P).

    Items (scored, human-labelled) are sorted by confidence, most confident first (ties by
    position); returns ``points`` points {coverage, accuracy, n} at coverages 1/points .. 1, and
    the largest coverage (over every prefix of at least ``minimum`` items) at which agreement is
    at least 0.8, or None when it never is."""
    usable = ~np.isnan(p) & ~np.isnan(y)
    q, t = np.asarray(p, float)[usable], np.asarray(y, float)[usable]
    n = len(q)
    if n == 0:
        return [], None
    order = np.argsort(-np.abs(q - 0.5), kind="stable")
    hit = np.where(np.isclose(q, 0.5), 0.5, ((q > 0.5) == (t == 1)).astype(float))[order]
    running = np.cumsum(hit) / np.arange(1, n + 1)
    curve = []
    for i in range(1, points + 1):
        size = max(1, round(n * i / points))
        curve.append({"coverage": size / n, "accuracy": float(running[size - 1]), "n": size})
    reach = [k + 1 for k in range(minimum - 1, n) if running[k] >= 0.8]
    return curve, (max(reach) / n if reach else None)


def reliability_bins(p: Array, y: Array, bins: int = 10, hide_below: int = 5) -> list[dict]:
    """Equal-width bins of P(A): {low, high, n, mean_p, human_a}; bins with fewer than
    ``hide_below`` items keep their count but no point (mean_p and human_a None)."""
    usable = ~np.isnan(p) & ~np.isnan(y)
    q, t = np.asarray(p, float)[usable], np.asarray(y, float)[usable]
    index = np.clip(np.floor(q * bins), 0, bins - 1).astype(int)
    table = []
    for b in range(bins):
        inside = index == b
        count = int(inside.sum())
        if count == 0:
            continue
        shown = count >= hide_below
        table.append(
            {
                "low": b / bins,
                "high": (b + 1) / bins,
                "n": count,
                "mean_p": float(q[inside].mean()) if shown else None,
                "human_a": float(t[inside].mean()) if shown else None,
            }
        )
    return table


LEARNING_SIZES = (25, 50, 100, 200)


def learning_curve(
    method: str,
    data: Features,
    *,
    sizes: Sequence[int] = LEARNING_SIZES,
    repeats: int = 5,
    k: int = FOLDS,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Accuracy and log-loss of ``method`` when fitted on only n human labels.

    For each n, each repeat and each fold: n labelled items drawn (seeded from content) from
    the other folds, the method fitted on them and scored on the held-out fold. Returns
    {n_labels, accuracy, log_loss, fits} per n with the means over every fit; a size larger
    than the labels of the other folds is left out, and a method undefined on all of ``data``
    (``undefined_reason``) has no curve."""
    if undefined_reason(method, data, np.ones(len(data), dtype=bool)) is not None:
        return []
    folds = group_folds(data.groups, k, seed)
    labelled = ~np.isnan(data.y) & scored(method, data)
    out = []
    for size in sizes:
        accuracy, losses = [], []
        for repeat in range(repeats):
            key = content_hash(str(seed), method, str(size), str(repeat))
            rng = np.random.default_rng(int(key[:12], 16))
            for fold in range(k):
                pool = np.flatnonzero(labelled & (folds != fold))
                test = labelled & (folds == fold)
                if len(pool) < size or not test.any():
                    continue
                train = np.zeros(len(data), dtype=bool)
                train[rng.choice(pool, size=size, replace=False)] = True
                fitted = fit(method, data, train)
                if fitted.reason is not None:
                    continue
                p = predict(fitted, data)[0][test]
                y = data.y[test]
                hit = np.where(np.isclose(p, 0.5), 0.5, ((p > 0.5) == (y == 1)).astype(float))
                accuracy.append(float(hit.mean()))
                losses.append(float(np.mean(log_loss_terms(p, y))))
        if accuracy:
            out.append(
                {
                    "n_labels": size,
                    "accuracy": float(np.mean(accuracy)),
                    "log_loss": float(np.mean(losses)),
                    "fits": len(accuracy),
                }
            )
    return out
