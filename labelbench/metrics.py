"""Agreement of AI labels with human labels, with cluster-bootstrap intervals.

Conventions (the report restates them):

- The human label of a row is the side whose mean annotator preference is above 1/2; a mean of
  exactly 1/2 is a human tie: excluded from alignment, counted separately.
- The AI choice is the argmax of its soft label P(A); an AI tie (P(A) = 1/2) earns half credit;
  an unscored row (P(A) = NaN) is excluded from alignment and counted in the unscored rate.
- Intervals are percentile intervals of a cluster bootstrap: whole groups (``group_id``, e.g. one
  Reddit post with several comparisons) are resampled, because rows of a group are not
  independent. Every statistic here is a function of per-group sums, so one matrix of resample
  counts serves them all; the resamples are seeded from the run seed and the cell's names.
- A figure the data cannot support is undefined, never a made-up number: no rows (or all human
  ties) → no value; rows from one group only → a value without an interval, and no
  length-controlled figure (one group cannot take length out); no variation in a covariate
  (length) → no length-corrected figure. Undefined is NaN here, null in summary.json,
  and the estimate's ``reason`` says why ("n/a (reason)" in reports).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from labelbench.data.record import content_hash

HIGH_CONFIDENCE = (1, 2, 8, 9)
CONFIDENCE_BUCKETS = {"1,9": (1, 9), "2,8": (2, 8), "3,7": (3, 7), "4,6": (4, 6)}

Array = np.ndarray


@dataclass(frozen=True)
class Estimate:
    """A point estimate, its bootstrap interval and the number of rows behind it."""

    value: float
    low: float
    high: float
    n: int
    reason: str | None = None
    """Why the value or the interval is undefined (NaN), when one is."""

    @classmethod
    def undefined(cls, reason: str, n: int = 0) -> Estimate:
        return cls(math.nan, math.nan, math.nan, n, reason)

    @property
    def defined(self) -> bool:
        return math.isfinite(self.value)

    def to_dict(self) -> dict[str, float | int | str | None]:
        out: dict[str, float | int | str | None] = {
            "value": json_number(self.value),
            "low": json_number(self.low),
            "high": json_number(self.high),
            "n": self.n,
        }
        if self.reason is not None:
            out["reason"] = self.reason
        return out


def json_p_value(value: float | None) -> float | None:
    """A p-value for summary.json: 6 significant digits (tiny p-values stay visible)."""
    return None if value is None or not math.isfinite(value) else float(f"{value:.6g}")


def json_number(value: float | None) -> float | None:
    """A float for summary.json: rounded to 6 decimals; None for NaN or infinity."""
    # adding 0.0 turns a rounded -0.0 into 0.0
    return None if value is None or not math.isfinite(value) else round(float(value), 6) + 0.0


def seed_from(*parts: object) -> int:
    """A 64-bit seed from the content of ``parts``."""
    return int(content_hash(*(str(part) for part in parts)), 16)


def _ratio(totals: Array) -> Array:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(totals[..., 1] > 0, totals[..., 0] / totals[..., 1], np.nan)


class ClusterBootstrap:
    """Resample counts of groups, shared by every statistic of one table of rows."""

    def __init__(self, groups: Array, *, n_boot: int, seed: int, level: float = 0.95) -> None:
        uniques, self.codes = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
        self.n_groups = len(uniques)
        self.level = level
        rng = np.random.default_rng(seed)
        draws = rng.integers(0, max(self.n_groups, 1), size=(n_boot, self.n_groups))
        flat = draws + self.n_groups * np.arange(n_boot)[:, None]
        counts = np.bincount(flat.ravel(), minlength=n_boot * self.n_groups)
        self.counts = counts.reshape(n_boot, self.n_groups).astype(float)

    def interval(self, replicates: Array) -> tuple[float, float]:
        finite = replicates[np.isfinite(replicates)]
        if finite.size == 0:
            return math.nan, math.nan
        tail = (1 - self.level) / 2
        low, high = np.quantile(finite, [tail, 1 - tail])
        return float(low), float(high)

    def estimate(
        self,
        stats: Array,
        statistic: Callable[[Array], Array],
        n: int,
        empty: str = "no rows",
    ) -> Estimate:
        """``stats``: additive statistics per row (rows x k); ``statistic``: totals -> value.

        Undefined (NaN, with a reason) when no row counts (``empty`` says why) or the statistic
        is undefined on the data; no interval when the counted rows come from a single group."""
        if n == 0 or len(self.codes) == 0:
            return Estimate.undefined(empty)
        stats = np.asarray(stats, dtype=float).reshape(len(self.codes), -1)
        per_group = np.column_stack(
            [np.bincount(self.codes, column, minlength=self.n_groups) for column in stats.T]
        )
        value = float(statistic(per_group.sum(axis=0)))
        if not math.isfinite(value):
            return Estimate.undefined("undefined on these rows", n)
        if int((per_group != 0).any(axis=1).sum()) < 2:
            return Estimate(value, math.nan, math.nan, n, "one group: no interval")
        low, high = self.interval(statistic(self.counts @ per_group))
        return Estimate(value, low, high, n)

    def row_weights(self) -> Array:
        """Resample multiplicity of every row (resamples x rows)."""
        return self.counts[:, self.codes]


def wilson_interval(rate: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval (Wilson 1927, "Probable inference, the law of succession, and
    statistical inference") of a proportion ``rate`` in [0, 1] observed over ``n`` >= 1 trials, at
    confidence ``level``: ``(centre -/+ half)`` with ``centre = (rate + z²/2n) / (1 + z²/n)`` and
    ``half = z sqrt(rate (1 - rate)/n + z²/4n²) / (1 + z²/n)``, ``z`` the normal quantile of
    ``(1 + level)/2``; clipped to [0, 1]. Unlike a bootstrap it has width when every trial had
    the same outcome (three of three: [0.44, 1.0] at 95%). Raises ZeroDivisionError for n = 0."""
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + level / 2))
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def mean_with_interval(values: Array, *, n_boot: int, seed: int, level: float = 0.95) -> Estimate:
    """The mean of ``values`` (shape (n,), independent outcomes in [0, 1], e.g. per-prompt wins
    1, 1/2, 0) with its percentile bootstrap interval: ``n_boot`` resamples of the n values with
    replacement (``ClusterBootstrap`` with each value its own group), seeded by ``seed``. When
    every value is the same the resamples cannot vary, so the interval is ``wilson_interval`` of
    that proportion over n. Undefined (NaN, ``reason``) with no values; no interval (NaN bounds,
    ``reason``) with one."""
    values = np.asarray(values, dtype=float).reshape(-1)
    n = len(values)
    if n == 0:
        return Estimate.undefined("no values")
    value = float(values.mean())
    if n == 1:
        return Estimate(value, math.nan, math.nan, 1, "one value: no interval")
    if np.all(values == values[0]):
        low, high = wilson_interval(value, n, level)
        return Estimate(value, low, high, n)
    boot = ClusterBootstrap(np.arange(n), n_boot=n_boot, seed=seed, level=level)
    return boot.estimate(np.column_stack([values, np.ones(n)]), _ratio, n)


def mean_estimate(
    boot: ClusterBootstrap, values: Array, mask: Array, empty: str = "no rows"
) -> Estimate:
    """The mean of ``values`` over rows where ``mask`` holds (undefined without such rows)."""
    mask = np.asarray(mask, dtype=bool)
    stats = np.column_stack([np.where(mask, values, 0.0), mask.astype(float)])
    return boot.estimate(stats, _ratio, int(mask.sum()), empty)


# ---------------------------------------------------------------------------- per-row quantities


def human_label(human_pref_a: Array) -> Array:
    """1 = humans prefer A, 0 = B, NaN = tie or unlabelled."""
    h = np.asarray(human_pref_a, dtype=float)
    return np.where(np.isnan(h) | np.isclose(h, 0.5), np.nan, (h > 0.5).astype(float))


def credit(ai_pref_a: Array, label: Array) -> Array:
    """1 when the AI's argmax matches the human label, 1/2 for an AI tie, else 0 (NaN: unusable)."""
    p = np.asarray(ai_pref_a, dtype=float)
    hit = ((p > 0.5) == (label == 1)).astype(float)
    value = np.where(np.isclose(p, 0.5), 0.5, hit)
    return np.where(np.isnan(p) | np.isnan(label), np.nan, value)


def relative_gap(len_a: Array, len_b: Array) -> Array:
    """|len A - len B| / the longer length."""
    a, b = np.asarray(len_a, dtype=float), np.asarray(len_b, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(a - b) / np.maximum(a, b)


# ---------------------------------------------------------------------------- metric blocks


def kappa_from_table(totals: Array) -> Array:
    """Cohen's kappa from the counts (AI, human) = (A, A), (A, B), (B, A), (B, B)."""
    n11, n10, n01, n00 = (totals[..., i] for i in range(4))
    total = n11 + n10 + n01 + n00
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = (n11 + n00) / total
        ai_a, human_a = (n11 + n10) / total, (n11 + n01) / total
        expected = ai_a * human_a + (1 - ai_a) * (1 - human_a)
        return np.where(expected < 1, (observed - expected) / (1 - expected), np.nan)


def alignment(boot: ClusterBootstrap, p: Array, label: Array, mask: Array | None = None) -> dict:
    """Accuracy of the argmax, soft agreement and Cohen's kappa against the human label."""
    mask = np.ones(len(p), bool) if mask is None else np.asarray(mask, bool)
    c = credit(p, label)
    usable = mask & ~np.isnan(c)
    soft = np.where(label == 1, p, 1 - p)
    decided = usable & ~np.isclose(p, 0.5)
    ai_a, human_a = p > 0.5, label == 1
    table = (
        np.column_stack([ai_a & human_a, ai_a & ~human_a, ~ai_a & human_a, ~ai_a & ~human_a])
        & decided[:, None]
    )
    empty = _no_alignment_rows(p, label, mask)
    kappa = boot.estimate(table, kappa_from_table, int(decided.sum()), empty)
    if kappa.n and not kappa.defined:
        kappa = Estimate.undefined("no variation: one side only in the AI or human labels", kappa.n)
    return {
        "accuracy": mean_estimate(boot, c, usable, empty),
        "soft_agreement": mean_estimate(boot, soft, usable, empty),
        "kappa": kappa,
    }


def _no_alignment_rows(p: Array, label: Array, mask: Array) -> str:
    """Why no row counts towards alignment."""
    if not mask.any():
        return "no rows"
    if np.isnan(np.asarray(label, float)[mask]).all():
        return "all human labels are ties (or missing)"
    if np.isnan(np.asarray(p, float)[mask]).all():
        return "no row was scored"
    return "no row with both a human and an AI label"


def agreement_bucket(votes: list[float]) -> str | None:
    """'unanimous' when several annotators all chose the same side, 'split' when they did not,
    None for a single annotator."""
    if len(votes) < 2:
        return None
    same = all(math.isclose(v, votes[0]) for v in votes) and not math.isclose(votes[0], 0.5)
    return "unanimous" if same else "split"


def by_confidence(
    boot: ClusterBootstrap,
    p: Array,
    label: Array,
    confidence: Array,
    agreement: list[str | None] | None = None,
) -> dict:
    """Accuracy within each TL;DR confidence bucket ("1,9" = most confident) and, where items
    have several annotators, on unanimous and split items (see ``agreement_bucket``)."""
    conf = np.asarray(confidence, dtype=float)
    c = credit(p, label)
    masks = {name: np.isin(conf, values) for name, values in CONFIDENCE_BUCKETS.items()}
    buckets = np.asarray(agreement if agreement is not None else [None] * len(c), dtype=object)
    masks.update({name: buckets == name for name in ("unanimous", "split")})
    return {
        name: mean_estimate(boot, c, mask & ~np.isnan(c))
        for name, mask in masks.items()
        if mask.any()
    }


def position_bias(boot: ClusterBootstrap, p_ab: Array, p_ba: Array) -> dict:
    """How often the same slot wins in both orders; which slot; a binomial test of the slots.

    ``p_ab`` is P(A) with A shown first; ``p_ba`` is P(A) with A shown second, so the first slot
    wins in both orders when p_ab > 1/2 and p_ba < 1/2.
    """
    ab, ba = np.asarray(p_ab, float), np.asarray(p_ba, float)
    both = ~np.isnan(ab) & ~np.isnan(ba)
    first = both & (ab > 0.5) & (ba < 0.5)
    second = both & (ab < 0.5) & (ba > 0.5)
    n_first, n_second = int(first.sum()), int(second.sum())
    slot = "first" if n_first > n_second else "second" if n_second > n_first else "none"
    biased = n_first + n_second
    return {
        "same_slot": mean_estimate(boot, (first | second).astype(float), both),
        "first_slot": mean_estimate(boot, first.astype(float), both),
        "second_slot": mean_estimate(boot, second.astype(float), both),
        "slot": slot,
        "p_value": binomtest(n_first, biased, 0.5).pvalue if biased else math.nan,
    }


def length_bias(
    boot: ClusterBootstrap, p: Array, label: Array, len_a: Array, len_b: Array, gap: float
) -> dict:
    """P(prefers the longer response | relative length gap > ``gap``), for the AI and the humans."""
    la, lb = np.asarray(len_a, float), np.asarray(len_b, float)
    wide = relative_gap(la, lb) > gap
    longer_a = la > lb
    ai_decided = wide & ~np.isnan(p) & ~np.isclose(p, 0.5)
    human_decided = wide & ~np.isnan(label)
    return {
        "ai_prefers_longer": mean_estimate(boot, ((p > 0.5) == longer_a).astype(float), ai_decided),
        "human_prefers_longer": mean_estimate(
            boot, ((label == 1) == longer_a).astype(float), human_decided
        ),
    }


def fit_logistic(
    x: Array, y: Array, weights: Array, *, ridge: float = 1e-3, iterations: int = 100
) -> Array:
    """Weighted logistic regression y ~ sigmoid(b0 + b1 x), one fit per row of ``weights``.

    ``y`` may be fractional (1/2 for an AI tie). A small ridge on b1 keeps the slope finite when
    x separates y (an always-longer labeler). Returns (fits x 2) coefficients.
    """
    w = np.atleast_2d(np.asarray(weights, float))
    beta = np.zeros((w.shape[0], 2))
    for _ in range(iterations):
        eta = beta[:, :1] + beta[:, 1:] * x
        mu = 1 / (1 + np.exp(-eta))
        residual = w * (y - mu)
        grad = np.column_stack([residual.sum(1), (residual * x).sum(1) - ridge * beta[:, 1]])
        curve = w * mu * (1 - mu)
        h00 = curve.sum(1) + 1e-12
        h01 = (curve * x).sum(1)
        h11 = (curve * x * x).sum(1) + ridge
        det = h00 * h11 - h01 * h01
        step = np.column_stack(
            [h11 * grad[:, 0] - h01 * grad[:, 1], h00 * grad[:, 1] - h01 * grad[:, 0]]
        )
        step = np.clip(step / det[:, None], -5.0, 5.0)
        beta += step
        if np.nanmax(np.abs(step), initial=0.0) < 1e-10:
            break
    return beta


def _separated(x: Array, y: Array) -> bool:
    """Whether a threshold on x alone decides y (a logistic fit then has no finite slope)."""
    low, high = x[y <= 0.5], x[y >= 0.5]
    if low.size == 0 or high.size == 0:
        return False
    return bool(low.max() <= high.min() or high.max() <= low.min())


OUTSIDE_EQUAL_LENGTH = (
    "humans chose the {side} response in every pair: equal length lies outside the data, and "
    "a figure there would be extrapolated"
)
"""Why the length-corrected figure is undefined when the pairs do not span equal length."""

ONE_GROUP = "pairs from one group only"
"""Why a length-controlled figure is undefined when its pairs share one group."""


def _one_group(boot: ClusterBootstrap, mask: Array) -> bool:
    """Whether the rows where ``mask`` holds (at least one) all come from a single group."""
    mask = np.asarray(mask, dtype=bool)
    return bool(mask.any()) and np.unique(boot.codes[mask]).size < 2


def length_controlled(
    boot: ClusterBootstrap,
    p: Array,
    label: Array,
    len_a: Array,
    len_b: Array,
    gap: float,
    *,
    ridge: float = 1e-3,
) -> dict:
    """Alignment with length taken out, three ways.

    ``matched``: accuracy on pairs whose relative length gap is at most ``gap``.
    ``balanced``: the mean of the accuracy on pairs where humans chose the longer response and
    on pairs where they chose the shorter one (always-longer scores exactly 1/2).
    ``corrected``: fit P(agree) = sigmoid(b0 + b1 d), with d = log(length of the human-preferred
    response / length of the other), and report sigmoid(b0), the agreement predicted for a pair of
    equal lengths; ``slope`` is b1 (> 0: agrees more when humans chose the longer response).
    Undefined (None) when length alone decides agreement, as for always-longer, and when equal
    length lies outside the data (humans chose the longer response in every pair, or the shorter
    in every pair): a figure at d = 0 would then be an extrapolation (``OUTSIDE_EQUAL_LENGTH``).

    Each is undefined, with its reason, when the pairs behind it come from one group only (one
    post, one prompt): there is then no interval, and the figure would rest on one cluster.
    """
    la, lb = np.asarray(len_a, float), np.asarray(len_b, float)
    c = credit(p, label)
    usable = ~np.isnan(c) & (la > 0) & (lb > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(label == 1, np.log(la / lb), np.log(lb / la))
    chose_longer = np.column_stack([np.where(usable & (d > 0), c, 0), usable & (d > 0)])
    chose_shorter = np.column_stack([np.where(usable & (d < 0), c, 0), usable & (d < 0)])
    stats = np.hstack([chose_longer, chose_shorter]).astype(float)
    balanced = boot.estimate(
        stats, lambda t: (_ratio(t[..., :2]) + _ratio(t[..., 2:])) / 2, int(stats[:, [1, 3]].sum())
    )
    if balanced.n and not balanced.defined:
        side = "longer" if stats[:, 1].sum() == 0 else "shorter"
        balanced = Estimate.undefined(f"humans never chose the {side} response", balanced.n)
    elif _one_group(boot, usable & (d != 0)):
        balanced = Estimate.undefined(ONE_GROUP, balanced.n)
    near = usable & (relative_gap(la, lb) <= gap)
    matched = mean_estimate(boot, c, near)
    if _one_group(boot, near):
        matched = Estimate.undefined(f"length-matched {ONE_GROUP}", matched.n)
    n = int(usable.sum())
    x, y = d[usable], c[usable]
    reason = (
        "no rows"
        if n == 0
        else ONE_GROUP
        if _one_group(boot, usable)
        else "no variation in the length ratio"
        if np.ptp(x) == 0
        else OUTSIDE_EQUAL_LENGTH.format(side="longer" if x.min() > 0 else "shorter")
        if x.min() > 0 or x.max() < 0
        else "length alone decides agreement"
        if _separated(x, y)
        else None
    )
    if reason is not None:
        nan = Estimate.undefined(reason, n)
        return {"matched": matched, "balanced": balanced, "corrected": nan, "slope": nan}
    point = fit_logistic(x, y, np.ones((1, n)), ridge=ridge)[0]
    replicates = fit_logistic(x, y, boot.row_weights()[:, usable], ridge=ridge)
    corrected = 1 / (1 + np.exp(-replicates[:, 0]))
    return {
        "matched": matched,
        "balanced": balanced,
        "corrected": Estimate(float(1 / (1 + np.exp(-point[0]))), *boot.interval(corrected), n),
        "slope": Estimate(float(point[1]), *boot.interval(replicates[:, 1]), n),
    }


def calibration(boot: ClusterBootstrap, p: Array, label: Array, bins: int) -> dict:
    """Expected calibration error of P(A) against the human label, and the reliability table.

    P(A) is cut into ``bins`` equal-width bins; ECE = sum over bins of |sum P(A) - count human A|
    divided by the number of rows (the count-weighted gap between confidence and frequency).
    """
    usable = ~np.isnan(p) & ~np.isnan(label)
    index = np.clip(np.floor(np.nan_to_num(p) * bins), 0, bins - 1).astype(int)
    onehot = (index[:, None] == np.arange(bins)) & usable[:, None]
    stats = np.hstack([onehot, onehot * np.nan_to_num(p)[:, None], onehot * (label == 1)[:, None]])

    def ece(totals: Array) -> Array:
        count, sum_p, sum_y = np.split(totals, 3, axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.abs(sum_p - sum_y).sum(-1) / count.sum(-1)

    total = stats.sum(0)
    count, sum_p, sum_y = np.split(total, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_p, frequency = sum_p / count, sum_y / count
    table = [
        {
            "bin": i,
            "n": int(count[i]),
            "mean_p": json_number(mean_p[i]),
            "human_a": json_number(frequency[i]),
        }
        for i in range(bins)
        if count[i] > 0
    ]
    return {"ece": boot.estimate(stats.astype(float), ece, int(usable.sum())), "reliability": table}


def leave_one_out_agreement(votes: list[float]) -> float:
    """Mean agreement of each annotator with the majority of the others (NaN if no majority).

    An annotator's tie (1/2) against a decided majority earns half credit, as an AI tie does.
    """
    scores = []
    for i, vote in enumerate(votes):
        others = votes[:i] + votes[i + 1 :]
        majority = sum(others) / len(others)
        if math.isclose(majority, 0.5):
            continue
        scores.append(0.5 if math.isclose(vote, 0.5) else float((vote > 0.5) == (majority > 0.5)))
    return sum(scores) / len(scores) if scores else math.nan


def ceiling_scores(items: pd.DataFrame) -> pd.DataFrame:
    """Each multiply-annotated pair's leave-one-out human agreement.

    ``items``: one row per labelled comparison with ``pair_key``, ``group_id``,
    ``annotator_prefs`` and optionally ``pair_flipped`` (True when A/B are swapped relative to
    the pair's canonical order). Rows of the same pair (TL;DR repeats) are pooled. Returns one
    row per pair with at least two annotators: ``pair_key``, ``group_id``, ``score`` (NaN when
    no annotator has a majority of the others), sorted by ``pair_key``.
    """
    votes: dict[str, list[float]] = {}
    groups: dict[str, str] = {}
    flipped = items["pair_flipped"] if "pair_flipped" in items else pd.Series(False, items.index)
    for key, group, prefs, flip in zip(
        items["pair_key"], items["group_id"], items["annotator_prefs"], flipped, strict=True
    ):
        oriented = [
            1 - float(v) if flip else float(v) for v in (prefs if prefs is not None else [])
        ]
        votes.setdefault(str(key), []).extend(oriented)
        groups.setdefault(str(key), str(group))
    keys = sorted(k for k, v in votes.items() if len(v) >= 2)
    return pd.DataFrame(
        {
            "pair_key": pd.Series(keys, dtype=str),
            "group_id": pd.Series([groups[k] for k in keys], dtype=str),
            "score": pd.Series([leave_one_out_agreement(votes[k]) for k in keys], dtype=float),
        }
    )


def human_ceiling(items: pd.DataFrame, *, n_boot: int, seed: int, level: float) -> Estimate | None:
    """Human-human agreement over pairs labelled by several annotators (``ceiling_scores``)."""
    pairs = ceiling_scores(items)
    scores = pairs["score"].to_numpy(float)
    if pairs.empty or np.isnan(scores).all():
        return None
    boot = ClusterBootstrap(pairs["group_id"].to_numpy(), n_boot=n_boot, seed=seed, level=level)
    return mean_estimate(boot, np.nan_to_num(scores), ~np.isnan(scores))


def paired_difference(
    boot: ClusterBootstrap, credit_variant: Array, credit_reference: Array
) -> dict:
    """Accuracy of a variant minus the reference's on the same rows, and McNemar's exact test."""
    both = ~np.isnan(credit_variant) & ~np.isnan(credit_reference)
    diff = np.where(both, credit_variant - credit_reference, 0.0)
    wins = int((both & (credit_variant == 1) & (credit_reference == 0)).sum())
    losses = int((both & (credit_variant == 0) & (credit_reference == 1)).sum())
    return {
        "difference": mean_estimate(boot, diff, both),
        "wins": wins,
        "losses": losses,
        "p_value": binomtest(wins, wins + losses, 0.5).pvalue if wins + losses else math.nan,
    }


TIE_MARGIN = 0.1
"""How close to 1/2 a labeler's P(A) must be to count as 'unsure' on a human tie."""


def tie_agreement(
    boot: ClusterBootstrap, ai_pref_a: Array, human_pref_a: Array, margin: float = TIE_MARGIN
) -> Estimate | None:
    """Tie-aware agreement: on the pairs humans tie (mean preference exactly 1/2), the share
    where the labeler is unsure too, |P(A) - 1/2| < ``margin`` (its confidence max(P, 1 - P)
    is below 1/2 + margin). Ties are excluded from accuracy; this is the figure beside it.
    Unscored pairs are left out; None when humans tie on no scored pair."""
    p = np.asarray(ai_pref_a, dtype=float)
    ties = np.isclose(np.asarray(human_pref_a, dtype=float), 0.5) & ~np.isnan(p)
    if not ties.any():
        return None
    with np.errstate(invalid="ignore"):
        unsure = (np.abs(p - 0.5) < margin).astype(float)
    return mean_estimate(boot, unsure, ties)
