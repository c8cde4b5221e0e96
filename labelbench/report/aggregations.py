"""The aggregation table of a data set: every method of ``labelbench.aggregate`` on every
labeler cell (and the group methods over the data set's cells), scored against the human labels.

Per method and cell (``summary.json`` ``datasets.<name>.aggregations``, one object each):

- ``method``, ``needs`` ("nothing" or "human labels"), ``labelers``, ``variants``;
- ``n_fit``: human labels one fit used (mean over the ``folds`` cross-fitting folds; 0 when the
  method needs nothing);
- ``accuracy`` {value, low, high, n}: the cross-fitted soft labels' argmax against the human
  majority (ties excluded), with a cluster-bootstrap interval over groups;
- ``vs_always_longer``, ``vs_always_first`` {diff, low, high}: paired accuracy difference on the
  same items, resampling groups;
- ``log_loss`` and ``brier`` (with intervals in ``log_loss_interval``), ``ece`` (equal-width
  bins, ``labelbench.metrics.calibration``), ``mean_confidence`` (mean of max(P, 1 - P) over
  scored items);
- ``coverage``: agreement when abstaining below a confidence, ten points, and
  ``coverage_at_0_8``: the largest coverage at which agreement is at least 0.8 (None: never);
- ``reliability``: bins with their counts, points hidden under 5 items;
- compute seconds are not in ``summary.json`` (it is a pure function of the labels): each
  row's recorded seconds per pair (of every labeler asked, for a cascade) go to
  ``timing.json`` ``aggregation_seconds.<data set>``;
- ``status`` (fitted single-labeler methods): informative / uninformative / anti-informative
  from the weight fitted on all labels (``labelbench.aggregate.informativeness``);
- ``reason`` when the method is undefined on the data set ("n/a (reason)" in the report).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd

from labelbench import aggregate as ag
from labelbench import metrics
from labelbench.metrics import ClusterBootstrap, Estimate
from labelbench.rundir import AggregationRow, WinnerFile

VERSUS = ("always-longer", "always-first")


def _logodds(rows: pd.DataFrame, order: str) -> np.ndarray:
    """The log-odds of A in one order: the recorded column, else the logit of that order's P(A),
    else (neither order recorded) the logit of ``ai_pref_a``."""
    recovered = ag.logit(rows[f"ai_pref_a_{order}"].to_numpy(float))
    column = f"ai_logodds_a_{order}"
    if column in rows:
        given = rows[column].to_numpy(float)
        recovered = np.where(np.isnan(given), recovered, given)
    return recovered


def features(data: pd.DataFrame, items: pd.DataFrame, cells: list[tuple[str, str]]) -> ag.Features:
    """``labelbench.aggregate.Features`` of ``cells`` (labeler, variant) on the data set's
    ``items`` (one row per item, in order); an item a cell did not label is unscored there."""
    ids = items["item_id"].to_numpy()
    d, p, seconds, cost, one_sided = [], [], [], [], []
    for labeler, variant in cells:
        rows = data[(data["labeler"] == labeler) & (data["variant"] == variant)]
        tokens = sum(rows[c].fillna(0) for c in ("prompt_tokens", "gen_tokens") if c in rows)
        tokens = float(np.mean(tokens)) if len(rows) and not np.isscalar(tokens) else 0.0
        size = rows["labeler_params"].dropna() if "labeler_params" in rows else pd.Series()
        cost.append(tokens * (float(size.iloc[0]) if not size.empty else 1.0))
        rows = rows.set_index("item_id").reindex(ids)
        ab, ba = rows["ai_pref_a_ab"].notna(), rows["ai_pref_a_ba"].notna()
        single = int((ab & ~ba).sum()) - int((ba & ~ab).sum())
        one_sided.append(abs(single) > 0.5 * max(int((ab | ba).sum()), 1))
        l_ab, l_ba = _logodds(rows, "ab"), _logodds(rows, "ba")
        mean = ag.order_mean(l_ab, l_ba)
        d.append(np.where(np.isnan(mean), ag.logit(rows["ai_pref_a"].to_numpy(float)), mean))
        p.append(rows["ai_pref_a"].to_numpy(float))
        seconds.append(rows["seconds"].to_numpy(float))
    return ag.Features(
        d=np.column_stack(d),
        p=np.column_stack(p),
        x=ag.length_ratio(items["len_a"].to_numpy(float), items["len_b"].to_numpy(float)),
        y=metrics.human_label(items["human_pref_a"].to_numpy(float)),
        groups=items["group_id"].to_numpy(str),
        seconds=np.column_stack(seconds),
        members=tuple(cells),
        cost=np.nan_to_num(np.array(cost, dtype=float)),
        one_sided=np.array(one_sided, dtype=bool),
    )


def _difference(boot: ClusterBootstrap, p: np.ndarray, reference: np.ndarray, y: np.ndarray):
    result = metrics.paired_difference(boot, metrics.credit(p, y), metrics.credit(reference, y))[
        "difference"
    ]
    return {
        "diff": metrics.json_number(result.value),
        "low": metrics.json_number(result.low),
        "high": metrics.json_number(result.high),
    }


def quality(
    p: np.ndarray,
    data: ag.Features,
    baselines: dict[str, np.ndarray],
    *,
    n_boot: int,
    seed: int,
    level: float,
    bins: int,
) -> dict[str, Any]:
    """Every figure of one aggregation's soft labels ``p`` (n,) against ``data.y``."""
    y = data.y
    boot = ClusterBootstrap(data.groups, n_boot=n_boot, seed=seed, level=level)
    usable = ~np.isnan(p) & ~np.isnan(y)
    loss = np.nan_to_num(ag.log_loss_terms(p, y))
    brier = np.nan_to_num((p - y) ** 2)
    log_loss = metrics.mean_estimate(boot, loss, usable)
    scored = ~np.isnan(p)
    curve, reach = ag.coverage_curve(p, y)
    return {
        "accuracy": metrics.alignment(boot, p, y)["accuracy"].to_dict(),
        **{
            f"vs_{name.replace('-', '_')}": _difference(boot, p, baselines[name], y)
            for name in VERSUS
        },
        "log_loss": metrics.json_number(log_loss.value),
        "log_loss_interval": [
            metrics.json_number(log_loss.low),
            metrics.json_number(log_loss.high),
        ],
        "brier": metrics.json_number(metrics.mean_estimate(boot, brier, usable).value),
        "ece": metrics.json_number(metrics.calibration(boot, p, y, bins)["ece"].value),
        "mean_confidence": (
            metrics.json_number(float(np.mean(np.maximum(p[scored], 1 - p[scored]))))
            if scored.any()
            else None
        ),
        "coverage": [
            {k: metrics.json_number(v) if k != "n" else v for k, v in point.items()}
            for point in curve
        ],
        "coverage_at_0_8": metrics.json_number(reach),
        "reliability": [
            {k: metrics.json_number(v) if isinstance(v, float) else v for k, v in row.items()}
            for row in ag.reliability_bins(p, y, bins)
        ],
    }


def _undefined(reason: str) -> dict[str, Any]:
    return {
        "accuracy": Estimate.undefined(reason).to_dict(),
        **{f"vs_{n.replace('-', '_')}": {"diff": None, "low": None, "high": None} for n in VERSUS},
        "log_loss": None,
        "brier": None,
        "ece": None,
        "mean_confidence": None,
        "coverage_at_0_8": None,
        "reason": reason,
    }


def _status(method: str, data: ag.Features) -> str | None:
    """The fitted weight's informativeness on all labels (single-labeler fitted methods)."""
    if method not in ("calibrated", "length-controlled", "stacked"):
        return None
    deployed = ag.deployable(method, data, [])
    return deployed.status if deployed else None


def _row(
    method: str,
    data: ag.Features,
    baselines: dict[str, np.ndarray],
    settings: Any,
    *names: str,
) -> tuple[dict[str, Any], float | None]:
    """(the method's row, its recorded seconds per pair or None)."""
    fitted = ag.cross_fit(method, data, seed=settings.seed)
    row: dict[str, Any] = {
        "method": method,
        "needs": ag.NEEDS[method],
        "labelers": [labeler for labeler, _ in data.members],
        "variants": [variant for _, variant in data.members],
        "n_fit": fitted.n_fit,
        "folds": fitted.folds,
    }
    if fitted.reason is not None:
        row.update(_undefined(fitted.reason))
        return row, None
    row.update(
        quality(
            fitted.p,
            data,
            baselines,
            n_boot=settings.n_boot,
            seed=metrics.seed_from(settings.seed, *names, method),
            level=settings.level,
            bins=settings.calibration_bins,
        )
    )
    status = _status(method, data)
    if status is not None:
        row["status"] = status
    seconds = fitted.seconds[np.isfinite(fitted.seconds)]
    return row, (float(seconds.mean()) if seconds.size else None)


def _cascade_cells(cells: list[tuple[str, str]], reference: str | None) -> list[tuple[str, str]]:
    """One cell per labeler: its ``reference`` variant where it has it, else its first."""
    chosen: dict[str, str] = {}
    for labeler, variant in cells:
        if labeler not in chosen or variant == reference:
            chosen[labeler] = variant
    return list(chosen.items())


def dataset_aggregations(
    data: pd.DataFrame,
    items: pd.DataFrame,
    baselines: dict[str, pd.DataFrame],
    cells: list[tuple[str, str]],
    settings: Any,
    dataset: str,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None, list[dict[str, Any]]]:
    """(the aggregation rows, the learning curve, the rows' seconds per pair) of one data set.

    ``items``: one row per item (``summarize``'s); ``baselines``: its rule-baseline rows (same
    order); ``cells``: the labeler cells (labeler, variant) in report order; ``settings``: a
    ``ReportSettings``. Rows: each single-labeler method on each cell, then ``jury`` and
    ``jury+length`` over every cell, ``cascade`` over one cell per labeler (its reference
    variant), and ``length-only`` (no labeler: the length preference alone, fitted). The
    learning curve is the best cell's (highest prob-mean accuracy), for each method that needs
    human labels, at ``labelbench.aggregate.LEARNING_SIZES`` labels."""
    rules = {name: baselines[name]["ai_pref_a"].to_numpy(float) for name in VERSUS}
    rows: list[dict[str, Any]] = []
    timing: list[dict[str, Any]] = []

    def add(row: dict[str, Any], seconds: float | None) -> None:
        rows.append(row)
        timing.append(
            {
                "method": row["method"],
                "labelers": row["labelers"],
                "variants": row["variants"],
                "seconds_per_pair": metrics.json_number(seconds),
            }
        )

    best: tuple[float, ag.Features] | None = None
    both_orders = []  # a cell labelled in one fixed order cannot be fitted (aggregate.Features)
    for labeler, variant in cells:
        single = features(data, items, [(labeler, variant)])
        if not single.one_sided.any():
            both_orders.append((labeler, variant))
        for method in ag.SINGLE_METHODS:
            row, seconds = _row(method, single, rules, settings, dataset, labeler, variant)
            add(row, seconds)
            accuracy = row["accuracy"]["value"]
            better = best is None or (accuracy is not None and accuracy > best[0])
            if method == "prob-mean" and accuracy is not None and better:
                best = (accuracy, single)
    if cells:
        jury = features(data, items, both_orders or cells)
        for method in ("jury", "jury+length"):
            add(*_row(method, jury, rules, settings, dataset, method))
        ladder = features(
            data, items, _cascade_cells(both_orders or cells, settings.reference_variant)
        )
        add(*_row("cascade", ladder, rules, settings, dataset, "cascade"))
        length = dataclasses.replace(jury, members=(), one_sided=None)
        add(*_row("length-only", length, rules, settings, dataset, "length-only"))
    curve = None
    if best is not None and np.sum(~np.isnan(best[1].y)) >= 2 * ag.LEARNING_SIZES[0]:
        chosen = best[1]
        curve = {
            "labeler": chosen.members[0][0],
            "variant": chosen.members[0][1],
            "points": [
                {"method": method, **point}
                for method in ("calibrated", "length-controlled", "stacked")
                for point in ag.learning_curve(method, chosen, seed=settings.seed)
            ],
        }
        for point in curve["points"]:
            for key in ("accuracy", "log_loss"):
                point[key] = metrics.json_number(point[key])
    return rows, curve, timing


def best_aggregation(rows: list[AggregationRow]) -> AggregationRow | None:
    """The row with the highest accuracy (ties: lower log-loss, then needing nothing), among the
    rows scored on the most items (accuracies on different item sets are not compared)."""
    scored = [r for r in rows if r.accuracy.value is not None]
    if not scored:
        return None
    most = max(r.accuracy.n for r in scored)
    scored = [r for r in scored if r.accuracy.n == most]
    return min(
        scored,
        key=lambda r: (
            -(r.accuracy.value or 0.0),
            r.log_loss if r.log_loss is not None else math.inf,
            r.needs != "nothing",
        ),
    )


def winner_aggregation(results: pd.DataFrame, winner: WinnerFile, settings: Any) -> WinnerFile:
    """``winner`` with ``aggregation``: for the winning labeler and variant, on the data sets
    it ran on (pooled), the single-labeler method with the lowest cross-fitted log-loss
    against the human labels (``prob-mean`` when there are none), with its parameters fitted on
    all of them; and ``aggregation_choice``: each method's cross-fitted log-loss and accuracy
    there. Unchanged when there is no winner."""
    labeler, variant = winner.labeler, winner.variant
    if not labeler or not variant:
        return winner
    mine = results[(results["labeler"] == labeler) & (results["variant"] == variant)].copy()
    datasets = sorted(set(mine["dataset"]))
    # the same comparison in several data sets (cuts of one file: a sample and its prefix) is
    # one human label, fitted once: counted twice it would weigh double and, its copies
    # landing in different folds, leak into the cross-fitted log-loss
    mine = mine.drop_duplicates([c for c in ("group_id", "item_id", "pair_key") if c in mine])
    if len(datasets) > 1:  # other groups and items never span data sets
        mine["group_id"] = mine["dataset"] + "/" + mine["group_id"]
        mine["item_id"] = mine["dataset"] + "/" + mine["item_id"]
    items = mine.drop_duplicates("item_id").reset_index(drop=True)
    data = features(mine, items, [(labeler, variant)])
    choice = {}
    for method in ag.SINGLE_METHODS:
        fitted = ag.cross_fit(method, data, seed=settings.seed)
        usable = ~np.isnan(fitted.p) & ~np.isnan(data.y)
        if fitted.reason is not None or not usable.any():
            choice[method] = {"reason": fitted.reason or "no human labels"}
            continue
        hit = metrics.credit(fitted.p, data.y)[usable]
        choice[method] = {
            "log_loss": metrics.json_number(
                float(np.mean(ag.log_loss_terms(fitted.p, data.y)[usable]))
            ),
            "accuracy": metrics.json_number(float(np.mean(hit))),
            "n_fit": fitted.n_fit,
        }
    ranked = sorted(
        (c["log_loss"], i, m) for i, (m, c) in enumerate(choice.items()) if "log_loss" in c
    )
    criterion = (
        "lowest cross-fitted log-loss against the human labels "
        f"({ag.FOLDS} folds by group) among single-labeler methods"
    )
    method = ranked[0][2] if ranked else "prob-mean"
    forced = getattr(settings, "winner_aggregation", "auto")
    if forced != "auto":
        method, criterion = forced, f"set in the run config (analysis.winner_aggregation: {forced})"
    crossed = choice.get(method, {})
    deployed = None if "reason" in crossed else ag.deployable(method, data, datasets)
    if deployed is None:
        reason = crossed.get("reason", "cannot be fitted")
        criterion += f"; {method} is n/a here ({reason}), so prob-mean"
        deployed = ag.Aggregation(method="prob-mean", fitted_on=datasets)
    return winner.updated(
        aggregation=deployed.model_dump(mode="json"),
        aggregation_choice={"criterion": criterion, "methods": choice},
    )
