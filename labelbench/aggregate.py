"""From per-order answer log-odds to one soft label per pair: named aggregation methods.

Notation (one labeler, one pair (A, B), shown in both orders):

- ``l_ab`` is the log-odds of A when A is shown first, log P(answer "A") - log P(answer "B")
  over the two answer tokens; ``l_ba`` the log-odds of A when A is shown second. Both come
  from the answer tokens' log-probabilities (``labelbench.labeling.runner.Preference``); for
  results written before those were kept they are recovered from the per-order P(A) with the
  logit, which is exact except where a probability saturated at 0 or 1.
- If the labeler adds a slot prior ``b`` to whichever response it sees first and the content
  adds ``d``, then ``l_ab = d + b`` and ``l_ba = d - b``: their mean is ``d`` exactly. This is
  the two-option case of PriDe (Zheng et al., "Large Language Models Are Not Robust Multiple
  Choice Selectors", ICLR 2024). With one order only, ``d`` is that order's log-odds.
- ``x = log((len_a + 1) / (len_b + 1))``, the log length ratio in characters.

Methods (``METHODS``; each says what it needs in ``NEEDS``):

``prob-mean``
    mean of the two orders' P(A): the RLAIF paper's (Lee et al. 2023) and the default. Needs
    nothing.
``logodds-mean``
    sigmoid(d). Needs nothing.
``calibrated``
    sigmoid(w d), one weight (an inverse temperature) fitted on human labels. The fit has no
    intercept, which is the same as fitting on order-symmetrised data (each pair also entered
    as (B, A) with the opposite label), so a data set's A/B label skew is never learned.
    ``status``: ``anti-informative`` when w's 95% interval (cluster-robust, by group) lies
    below 0 (the labeler prefers the response humans do not: calibration flips it, and the
    report says so), ``uninformative`` when the interval holds 0, else ``informative``.
``length-controlled``
    the preference at equal length: fit sigmoid(w d + v x) on human labels, report
    sigmoid(w d) (x = 0). Undefined ("n/a") when fewer than ``NEAR_EQUAL_MIN`` labelled pairs
    (and fewer than 5%) lie within ``NEAR_EQUAL`` of equal length: x = 0 would then be
    outside the observed length differences.
``stacked``
    sigmoid(w d + v x), the same fit with its length term kept; x is clipped to the range seen
    in fitting, so it never extrapolates.
``jury`` / ``jury+length``
    a logistic combiner over several labelers and/or variants, sigmoid(sum_k w_k d_k [+ v x]),
    fitted with an L2 penalty (C = 1 on features scaled to unit root-mean-square) and no
    intercept (Verga et al. 2024, "Replacing Judges with Juries", votes; here the weights are
    learned, since votes of correlated, uncalibrated judges add little).
``length-only``
    sigmoid(v x) fitted on human labels, no labeler at all: the reference a length-aware
    method must beat (what the data set's length preference alone gives).
``cascade``
    the labelers in order of recorded compute seconds per pair, each calibrated as above; the
    cheapest decides when its calibrated |w d| reaches a threshold, else the next is asked
    (Jung et al., ICLR 2025, "Trust or Escalate"). The threshold (one for every stage) is the
    one of ``CASCADE_THRESHOLDS`` with the best log-likelihood on the fitting labels. Its cost
    is the recorded seconds of every labeler asked.

Honest fitting: every method fitted on human labels is cross-fitted (``cross_fit``): the
items are cut into ``FOLDS`` folds by group (a TL;DR post, a dialogue context), and an item is
scored by a fit on the other folds only. ``n_fit`` is the number of labelled items a fit used
(the mean over folds). The parameters a user deploys (``Aggregation``, in ``winner.json``) are
fitted once on all labels; the cross-fitted figures estimate how well they do on new groups.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


# ---------------------------------------------------------------------------- features


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


# ---------------------------------------------------------------------------- fitting


def _fit(design: Array, y: Array, c: float) -> Array:
    """Weights of sigmoid(design @ w) fitted on the order-symmetrised rows (design, y) and
    (-design, 1 - y) with scikit-learn's L2 logistic regression, no intercept, features scaled
    to unit root-mean-square first (the weights returned are on the original scale)."""
    from sklearn.linear_model import LogisticRegression

    scale = np.sqrt(np.mean(design**2, axis=0))
    scale = np.where(scale > 0, scale, 1.0)
    z = design / scale
    both = np.vstack([z, -z])
    target = np.concatenate([y, 1 - y]).astype(int)
    model = LogisticRegression(C=c, fit_intercept=False, max_iter=1000)
    model.fit(both, target, sample_weight=np.full(len(target), 0.5))
    return model.coef_[0] / scale


def weight_interval(design: Array, y: Array, weights: Array, groups: Array) -> tuple[float, float]:
    """95% Wald interval of the first weight of sigmoid(design @ weights) (design: (n, k)),
    with a cluster-robust (sandwich) covariance by group: B^-1 M B^-1, B = X' diag(p(1-p)) X,
    M = sum_g s_g s_g' with s_g = sum_{i in g} (y_i - p_i) x_i. Infinite when B is singular."""
    x = np.atleast_2d(np.asarray(design, float).T).T
    p = sigmoid(x @ np.asarray(weights, float))
    bread = (x * (p * (1 - p))[:, None]).T @ x
    _, codes = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    scores = np.column_stack([np.bincount(codes, (y - p) * x[:, j]) for j in range(x.shape[1])])
    try:
        inverse = np.linalg.inv(bread)
    except np.linalg.LinAlgError:
        return -math.inf, math.inf
    covariance = inverse @ (scores.T @ scores) @ inverse
    se = math.sqrt(max(float(covariance[0, 0]), 0.0))
    if not math.isfinite(se) or se == 0:
        return -math.inf, math.inf
    w = float(weights[0])
    return w - 1.96 * se, w + 1.96 * se


def informativeness(low: float, high: float) -> str:
    """``informative`` (interval above 0), ``anti-informative`` (below), else
    ``uninformative``."""
    if low > 0:
        return "informative"
    if high < 0:
        return "anti-informative"
    return "uninformative"


class Aggregation(BaseModel):
    """One labeler's aggregation as deployed (``winner.json`` ``aggregation``): the method and
    its parameters fitted on all human labels of ``fitted_on``. ``soft_labels`` applies it."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    method: SingleMethod = Field(description="one of labelbench.aggregate.SINGLE_METHODS")
    weight: float | None = Field(
        default=None, description="w, on the order-averaged log-odds d (fitted methods)"
    )
    length_weight: float | None = Field(
        default=None, description="v, on x = log((len_a+1)/(len_b+1)) (stacked)"
    )
    length_range: tuple[float, float] | None = Field(
        default=None, description="x is clipped to this range (seen in fitting)"
    )
    status: Literal["informative", "uninformative", "anti-informative"] | None = Field(
        default=None, description="informative, uninformative or anti-informative (fitted)"
    )
    n_fit: int = Field(default=0, ge=0, description="human labels the parameters were fitted on")
    fitted_on: list[str] = Field(default_factory=list, description="data sets of those labels")

    @field_validator("weight", "length_weight", "length_range", mode="before")
    @classmethod
    def _numbers_not_booleans(cls, value: object) -> object:
        values = value if isinstance(value, list | tuple) else [value]
        if any(isinstance(v, bool) for v in values):
            raise ValueError("must be a number, not true or false")
        return value

    @model_validator(mode="after")
    def _parameters_present(self) -> Aggregation:
        if NEEDS[self.method] != "nothing" and self.weight is None:
            raise ValueError(f"{self.method} needs its fitted weight ('weight')")
        if self.method == "stacked" and self.length_weight is None:
            raise ValueError("stacked needs its fitted length weight ('length_weight')")
        unused = {
            "weight": NEEDS[self.method] == "nothing",
            "length_weight": self.method != "stacked",
            "length_range": self.method != "stacked",
        }
        for name, refused in unused.items():
            if refused and getattr(self, name) is not None:
                raise ValueError(f"{self.method} takes no '{name}' (it would be ignored)")
        if self.length_range is not None and self.length_range[0] > self.length_range[1]:
            raise ValueError("length_range must be [low, high] with low <= high")
        return self

    def caveat(self) -> str | None:
        """One sentence when these labels are not the labeler's judgement: its fitted weight is
        below 0 (anti-informative: the labels reverse its choices) or not distinguishable from 0
        (uninformative: the labels are near 1/2, or, for ``stacked``, mostly the length rule).
        None otherwise."""
        if self.status == "anti-informative":
            return (
                f"the {self.method} labels reverse the labeler's choices (its fitted weight "
                f"{self.weight:.3g} is below 0 with 95% confidence)"
            )
        if self.status == "uninformative":
            if self.method == "stacked":
                return (
                    "the labeler's weight in the stacked labels is not distinguishable from 0: "
                    "they are mostly the length rule"
                )
            return (
                f"the labeler's {self.method} weight ({self.weight:.3g}) is not distinguishable "
                "from 0: its labels carry no measured signal"
            )
        return None

    def soft_labels(
        self,
        p_ab: Array,
        p_ba: Array,
        logodds_ab: Array | None = None,
        logodds_ba: Array | None = None,
        len_a: Array | None = None,
        len_b: Array | None = None,
    ) -> Array:
        """P(A) per item (NaN = unscored) from the per-order P(A) and log-odds of A (n,) each;
        log-odds missing (None or NaN) are recovered from the P(A) with the logit. ``stacked``
        needs the lengths (characters). Raises ValueError when it does not have them."""
        p_ab, p_ba = np.asarray(p_ab, float), np.asarray(p_ba, float)
        if self.method == "prob-mean":
            return order_mean(p_ab, p_ba)
        l_ab = _logodds(logodds_ab, p_ab)
        l_ba = _logodds(logodds_ba, p_ba)
        d = order_mean(l_ab, l_ba)
        if self.method == "logodds-mean":
            return sigmoid(d)
        if self.weight is None:
            raise ValueError(f"aggregation {self.method} has no fitted weight")
        z = self.weight * d
        if self.method == "stacked":
            if len_a is None or len_b is None or self.length_weight is None:
                raise ValueError("the stacked aggregation needs both responses' lengths")
            x = length_ratio(len_a, len_b)
            if self.length_range is not None:
                x = np.clip(x, *self.length_range)
            z = z + self.length_weight * x
        return sigmoid(z)


def _logodds(given: Array | None, p: Array) -> Array:
    recovered = logit(p)
    if given is None:
        return recovered
    given = np.asarray(given, float)
    return np.where(np.isnan(given), recovered, np.clip(given, -LOGIT_CLIP, LOGIT_CLIP))


@dataclass(frozen=True)
class Fitted:
    """A method's parameters fitted on some rows (``None`` entries: not used by the method)."""

    method: str
    weights: Array = field(default_factory=lambda: np.zeros(0))
    length_weight: float = 0.0
    length_range: tuple[float, float] = (-math.inf, math.inf)
    threshold: float = math.inf
    order: tuple[int, ...] = ()
    n_fit: int = 0
    reason: str | None = None


def scored(method: str, data: Features) -> Array:
    """Items ``method`` can score: its labeler's (a group method: any member's) is scored."""
    if method in REFERENCE_METHODS:
        return np.ones(len(data), dtype=bool)
    if method in GROUP_METHODS:
        return ~np.isnan(data.d).all(1)
    return ~np.isnan(data.d[:, 0])


def undefined_reason(method: str, data: Features, rows: Array) -> str | None:
    """Why ``method`` cannot be fitted or scored on ``rows`` of ``data`` (None: it can)."""
    labelled = rows & ~np.isnan(data.y) & scored(method, data)
    members = data.d.shape[1]
    if method == "cascade" and members < 2:
        return "needs two or more labelers on the same items"
    if method in ("jury", "jury+length") and members < 2:
        return "needs two or more labelers or variants on the same items"
    if NEEDS[method] == "nothing":
        return None
    if method not in REFERENCE_METHODS and data.one_sided is not None and data.one_sided.any():
        return (
            "labelled in one fixed A/B order: its slot prior cannot be told apart from the data "
            "set's A/B skew (label both orders, or a seeded random order)"
        )
    if labelled.sum() < 10:
        return f"only {int(labelled.sum())} human-labelled pairs to fit on (at least 10)"
    if method == "length-controlled":
        near = int((labelled & (np.abs(data.x) <= NEAR_EQUAL)).sum())
        if near < NEAR_EQUAL_MIN and near < 0.05 * labelled.sum():
            return (
                f"only {near} of {int(labelled.sum())} labelled pairs within "
                f"{NEAR_EQUAL:g} of equal log length: equal length is outside the data"
            )
    return None


def fit(method: str, data: Features, rows: Array) -> Fitted:
    """Fit ``method`` on the human-labelled, scored items among ``rows`` (a boolean mask)."""
    labelled = rows & ~np.isnan(data.y) & scored(method, data)
    if NEEDS[method] == "nothing":
        return Fitted(method)
    reason = undefined_reason(method, data, rows)
    if reason is not None:
        return Fitted(method, reason=reason)
    d = np.nan_to_num(data.d[labelled])  # a member's unscored item carries no information
    y, x = data.y[labelled], data.x[labelled]
    n = int(labelled.sum())
    x_range = (float(x.min()), float(x.max()))
    if method == "calibrated":
        return Fitted(method, _fit(d[:, :1], y, C_SINGLE), n_fit=n)
    if method in ("length-controlled", "stacked"):
        w = _fit(np.column_stack([d[:, 0], x]), y, C_SINGLE)
        return Fitted(method, w[:1], float(w[1]), x_range, n_fit=n)
    if method == "length-only":
        return Fitted(
            method, np.zeros(0), float(_fit(x[:, None], y, C_SINGLE)[0]), x_range, n_fit=n
        )
    if method == "jury":
        return Fitted(method, _fit(d, y, C_JURY), n_fit=n)
    if method == "jury+length":
        w = _fit(np.column_stack([d, x]), y, C_JURY)
        return Fitted(method, w[:-1], float(w[-1]), x_range, n_fit=n)
    if method == "cascade":
        cost = data.cost
        if cost is None:
            cost = np.nanmean(np.where(np.isnan(data.seconds), 0.0, data.seconds)[rows], axis=0)
        order = tuple(int(k) for k in np.argsort(cost, kind="stable"))
        weights = np.array([_fit(d[:, [k]], y, C_SINGLE)[0] for k in range(d.shape[1])])
        best = (-math.inf, 0.0)
        for threshold in CASCADE_THRESHOLDS:
            trial = Fitted(method, weights, threshold=threshold, order=order)
            p = np.clip(_cascade(trial, d)[0], 1e-6, 1 - 1e-6)
            loglik = float(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)))
            if loglik > best[0] + 1e-9:
                best = (loglik, threshold)
        return Fitted(method, weights, threshold=best[1], order=order, n_fit=n)
    raise ValueError(f"unknown aggregation method {method!r}")


def _cascade(fitted: Fitted, d: Array) -> tuple[Array, Array]:
    """(P(A), the number of members asked) of every row of ``d`` (n, m)."""
    n = len(d)
    p = np.full(n, np.nan)
    asked = np.zeros(n, dtype=int)
    open_rows = np.ones(n, dtype=bool)
    for stage, k in enumerate(fitted.order):
        z = fitted.weights[k] * d[:, k]
        last = stage == len(fitted.order) - 1
        decide = open_rows & (last | (np.abs(z) >= fitted.threshold))
        p[decide] = sigmoid(z[decide])
        asked[open_rows] += 1
        open_rows &= ~decide
    return p, asked


def predict(fitted: Fitted, data: Features) -> tuple[Array, Array]:
    """(P(A), seconds spent) for every item of ``data``; NaN where unscored or undefined."""
    n = len(data)
    nan = np.full(n, np.nan)
    if fitted.reason is not None:
        return nan, nan
    seconds = np.where(np.isnan(data.seconds), 0.0, data.seconds)
    unscored = ~scored(fitted.method, data)
    d = np.nan_to_num(data.d)
    cost = seconds.sum(1)
    method = fitted.method
    if method == "prob-mean":
        p = data.p[:, 0]
    elif method == "logodds-mean":
        p = sigmoid(d[:, 0])
    elif method in ("calibrated", "length-controlled"):
        p = sigmoid(fitted.weights[0] * d[:, 0])
    elif method == "stacked":
        x = np.clip(data.x, *fitted.length_range)
        p = sigmoid(fitted.weights[0] * d[:, 0] + fitted.length_weight * x)
    elif method == "length-only":
        p = sigmoid(fitted.length_weight * np.clip(data.x, *fitted.length_range))
        cost = np.zeros(n)
    elif method == "jury":
        p = sigmoid(d @ fitted.weights)
    elif method == "jury+length":
        x = np.clip(data.x, *fitted.length_range)
        p = sigmoid(d @ fitted.weights + fitted.length_weight * x)
    elif method == "cascade":
        p, asked = _cascade(fitted, d)
        ordered = seconds[:, list(fitted.order)]
        cost = np.array([ordered[i, : asked[i]].sum() for i in range(n)])
    else:
        raise ValueError(f"unknown aggregation method {method!r}")
    return np.where(unscored, np.nan, p), np.where(unscored, np.nan, cost)


@dataclass(frozen=True)
class CrossFit:
    """Cross-fitted soft labels of every item (scored by a fit on other groups only)."""

    p: Array
    seconds: Array
    n_fit: int
    folds: int
    reason: str | None = None


def cross_fit(method: str, data: Features, *, k: int = FOLDS, seed: int = 0) -> CrossFit:
    """Soft labels of ``method`` for every item; for a method that needs human labels, each
    item's from a fit on the other ``k - 1`` folds (``group_folds``), so no group is both fitted
    on and scored. ``n_fit``: labelled items per fit (mean over folds; 0 = needs nothing)."""
    every = np.ones(len(data), dtype=bool)
    reason = undefined_reason(method, data, every)
    groups = len(set(np.asarray(data.groups, dtype=str)[~np.isnan(data.y)]))
    if reason is None and NEEDS[method] != "nothing" and groups < k:
        reason = f"human labels from {groups} group(s): cross-fitting needs at least {k}"
    if reason is not None:
        nan = np.full(len(data), np.nan)
        return CrossFit(nan, nan, 0, 0, reason)
    if NEEDS[method] == "nothing":
        p, seconds = predict(fit(method, data, every), data)
        return CrossFit(p, seconds, 0, 0)
    folds = group_folds(data.groups, k, seed)
    p = np.full(len(data), np.nan)
    seconds = np.full(len(data), np.nan)
    used = []
    for fold in range(k):
        test = folds == fold
        if not test.any():
            continue
        fitted = fit(method, data, ~test)
        if fitted.reason is not None:
            nan = np.full(len(data), np.nan)
            return CrossFit(nan, nan, 0, k, f"a fold: {fitted.reason}")
        used.append(fitted.n_fit)
        fold_p, fold_seconds = predict(fitted, data)
        p[test], seconds[test] = fold_p[test], fold_seconds[test]
    return CrossFit(p, seconds, round(float(np.mean(used))), k)


def deployable(method: str, data: Features, fitted_on: list[str]) -> Aggregation | None:
    """The single-labeler ``method`` fitted on every labelled item of ``data`` (one member), as
    ``winner.json`` carries it; None when it cannot be fitted."""
    if method not in SINGLE_METHODS:
        return None
    every = np.ones(len(data), dtype=bool)
    fitted = fit(method, data, every)
    if fitted.reason is not None:
        return None
    if NEEDS[method] == "nothing":
        return Aggregation(method=method, fitted_on=fitted_on)  # type: ignore[arg-type]
    labelled = ~np.isnan(data.y) & ~np.isnan(data.d[:, 0])
    w = float(fitted.weights[0])
    design = data.d[labelled, :1]
    weights = fitted.weights[:1]
    if method in ("length-controlled", "stacked"):
        design = np.column_stack([design, data.x[labelled]])
        weights = np.array([w, fitted.length_weight])
    low, high = weight_interval(design, data.y[labelled], weights, data.groups[labelled])
    return Aggregation(
        method=method,  # type: ignore[arg-type]
        weight=w,
        length_weight=fitted.length_weight if method == "stacked" else None,
        length_range=fitted.length_range if method == "stacked" else None,
        status=informativeness(low, high),
        n_fit=fitted.n_fit,
        fitted_on=fitted_on,
    )


# ---------------------------------------------------------------------------- quality


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
