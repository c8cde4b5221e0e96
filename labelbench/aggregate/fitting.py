"""Fitting the methods on human labels: the penalised logistic fits, when a method is undefined,
its predictions, cross-fitting by group, and the parameters a winner deploys."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from labelbench.aggregate.deployed import Aggregation
from labelbench.aggregate.features import (
    C_JURY,
    C_SINGLE,
    CASCADE_THRESHOLDS,
    FOLDS,
    GROUP_METHODS,
    NEAR_EQUAL,
    NEAR_EQUAL_MIN,
    NEEDS,
    REFERENCE_METHODS,
    SINGLE_METHODS,
    Array,
    Features,
    group_folds,
    sigmoid,
)


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
