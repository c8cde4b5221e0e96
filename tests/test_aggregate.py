"""Aggregations of per-order log-odds (labelbench.aggregate) and their report table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from labelbench import aggregate as ag
from labelbench.labeling.runner import LabelRow, logodds_a, preferences
from labelbench.report.aggregations import dataset_aggregations, features
from labelbench.report.summary import ReportSettings, baseline_rows
from labelbench.rundir import WinnerFile


def _features(d, y, x=None, groups=None, seconds=None) -> ag.Features:
    d = np.atleast_2d(np.asarray(d, float).T).T
    n = len(d)
    return ag.Features(
        d=d,
        p=ag.sigmoid(d),
        x=np.zeros(n) if x is None else np.asarray(x, float),
        y=np.asarray(y, float),
        groups=np.asarray(groups if groups is not None else [f"g{i // 2}" for i in range(n)]),
        seconds=np.ones_like(d) if seconds is None else np.asarray(seconds, float),
        members=tuple(("m", str(k)) for k in range(d.shape[1])),
    )


def test_logodds_mean_recovers_content_under_an_additive_slot_prior():
    rng = np.random.default_rng(0)
    d = rng.normal(0, 2, 200)
    for b in (-3.0, 0.0, 0.7, 5.0):
        l_ab, l_ba = d + b, d - b
        assert np.allclose(ag.order_mean(l_ab, l_ba), d, atol=1e-12)
        # through probabilities and back (what older result tables hold): still d
        p_ab, p_ba = ag.sigmoid(l_ab), ag.sigmoid(l_ba)
        agg = ag.Aggregation(method="logodds-mean")
        assert np.allclose(ag.logit(agg.soft_labels(p_ab, p_ba)), d, atol=1e-6)
        # prob-mean does not recover it when the prior is strong
    prob = ag.Aggregation(method="prob-mean").soft_labels(ag.sigmoid(d + 5), ag.sigmoid(d - 5))
    assert np.max(np.abs(ag.logit(prob) - d)) > 1.0


def test_runner_keeps_exact_logodds_where_probabilities_saturate():
    def row(order, logprobs):
        dist = tuple(np.exp(np.array(logprobs) - np.logaddexp(*logprobs)))
        return LabelRow(
            "i", "v", order, "lab", ("1", "2"), dist, tuple(logprobs), (), 1, 0, 0, False
        )

    # A first: log-odds of A = 60 - 0; B first: answer 2 (= A) at -40 vs 0: log-odds of A = -40
    pref = preferences([row("AB", (0.0, -60.0)), row("BA", (0.0, -40.0))])[0]
    assert pref.logodds_ab == 30.0  # clipped at +-30, still finite and signed
    assert pref.logodds_ba == -30.0
    pref = preferences([row("AB", (-1.0, -3.5)), row("BA", (-0.2, -1.7))])[0]
    assert pref.logodds_ab == pytest.approx(2.5)
    assert pref.logodds_ba == pytest.approx(-1.5)
    assert logodds_a(row("AB", (-1.0, -3.5))) == pytest.approx(2.5)


def test_group_folds_never_share_a_group():
    groups = [f"post{i % 37}" for i in range(400)]
    folds = ag.group_folds(groups, 5, seed=3)
    by_group: dict[str, set[int]] = {}
    for group, fold in zip(groups, folds, strict=True):
        by_group.setdefault(group, set()).add(int(fold))
    assert all(len(f) == 1 for f in by_group.values())
    assert set(folds) == set(range(5))


def test_cross_fit_scores_each_group_with_a_fit_that_never_saw_it(monkeypatch):
    from labelbench.aggregate import fitting

    rng = np.random.default_rng(1)
    n = 120
    groups = np.array([f"g{i // 3}" for i in range(n)])
    data = _features(rng.normal(size=n), rng.integers(0, 2, n), groups=groups)
    seen: list[set[str]] = []
    real_fit = ag.fit

    def spying_fit(method, data, rows):
        seen.append(set(data.groups[rows & ~np.isnan(data.y)]))
        return real_fit(method, data, rows)

    monkeypatch.setattr(fitting, "fit", spying_fit)  # cross_fit's own module
    folds = ag.group_folds(groups, ag.FOLDS, seed=0)
    result = ag.cross_fit("calibrated", data, seed=0)
    assert len(seen) == ag.FOLDS and result.folds == ag.FOLDS
    for fold, fitted_groups in enumerate(seen):
        scored_groups = set(groups[folds == fold])
        assert not fitted_groups & scored_groups
    assert result.n_fit == round(np.mean([n - (folds == k).sum() for k in range(ag.FOLDS)]))


def test_noise_with_a_slot_prior_beats_no_trivial_baseline():
    """Pure-noise log-odds plus a slot prior: no fitted method may look better than the best
    trivial baseline beyond its interval (cross-fitting must not leak labels)."""
    rng = np.random.default_rng(7)
    n = 400
    items = pd.DataFrame(
        {
            "item_id": [f"i{k:03d}" for k in range(n)],
            "group_id": [f"post{k // 2}" for k in range(n)],
            "len_a": rng.integers(50, 400, n).astype(float),
            "len_b": rng.integers(50, 400, n).astype(float),
        }
    )
    # humans prefer the longer response 70% of the time, A/B otherwise balanced
    longer_a = items["len_a"] > items["len_b"]
    follows = rng.random(n) < 0.7
    items["human_pref_a"] = np.where(follows == longer_a, 1.0, 0.0)
    items["pair_key"] = items["item_id"]
    items["annotator_prefs"] = [[h] for h in items["human_pref_a"]]
    rows = []
    for labeler, prior in (("noisy-a", 1.5), ("noisy-b", -0.8)):
        noise = rng.normal(0, 1, n)
        rows.append(
            items.assign(
                labeler=labeler,
                variant="v",
                dataset="d",
                ai_pref_a_ab=ag.sigmoid(noise + prior),
                ai_pref_a_ba=ag.sigmoid(noise - prior),
                ai_pref_a=(ag.sigmoid(noise + prior) + ag.sigmoid(noise - prior)) / 2,
                seconds=1.0 if labeler == "noisy-a" else 3.0,
            )
        )
    data = pd.concat(rows, ignore_index=True)
    settings = ReportSettings(n_boot=300)
    baselines = baseline_rows(items.assign(confidence=np.nan), settings.seed)
    cells = [("noisy-a", "v"), ("noisy-b", "v")]
    table, _, _ = dataset_aggregations(data, items, baselines, cells, settings, "d")
    assert {row["method"] for row in table} == set(ag.METHODS)
    for row in table:
        if row["needs"] == "nothing" or row.get("reason"):
            continue
        # the best trivial baseline here is always-longer: nothing fitted beats it beyond noise
        assert row["vs_always_longer"]["low"] <= 0.0, row
        assert row["n_fit"] > 0


def test_calibration_recovers_a_known_temperature_and_flags_an_anti_informative_labeler():
    rng = np.random.default_rng(3)
    n = 2000
    d = rng.normal(0, 1, n)
    y = (rng.random(n) < ag.sigmoid(3.0 * d)).astype(float)
    groups = np.array([f"g{i}" for i in range(n)])
    deployed = ag.deployable("calibrated", _features(d, y, groups=groups), ["d"])
    assert deployed is not None and deployed.status == "informative"
    assert deployed.weight == pytest.approx(3.0, rel=0.15)
    flipped = ag.deployable("calibrated", _features(-d, y, groups=groups), ["d"])
    assert flipped is not None and flipped.status == "anti-informative" and flipped.weight < 0
    noise = ag.deployable("calibrated", _features(rng.normal(size=n), y, groups=groups), ["d"])
    assert noise is not None and noise.status == "uninformative"


def test_length_controlled_is_undefined_without_pairs_near_equal_length():
    rng = np.random.default_rng(4)
    n = 200
    x = np.where(rng.random(n) < 0.5, 1.0, -1.0) * rng.uniform(0.5, 1.5, n)
    data = _features(rng.normal(size=n), rng.integers(0, 2, n), x=x)
    result = ag.cross_fit("length-controlled", data)
    assert result.reason is not None and "equal length" in result.reason
    assert np.isnan(result.p).all()
    assert ag.cross_fit("stacked", data).reason is None


def test_stacked_never_extrapolates_the_length_term():
    agg = ag.Aggregation(method="stacked", weight=1.0, length_weight=2.0, length_range=(-0.5, 0.5))
    far = agg.soft_labels([0.5], [0.5], len_a=[10_000], len_b=[10])
    assert far[0] == pytest.approx(ag.sigmoid(2.0 * 0.5))


def test_cascade_escalates_only_unsure_items_and_counts_their_cost():
    rng = np.random.default_rng(5)
    n = 600
    y = rng.integers(0, 2, n).astype(float)
    truth = np.where(y == 1, 1.0, -1.0)
    cheap = np.where(rng.random(n) < 0.5, 4 * truth, 0.01 * rng.normal(size=n))  # sure or blind
    dear = 2.0 * truth + rng.normal(0, 0.5, n)
    seconds = np.column_stack([np.full(n, 1.0), np.full(n, 10.0)])
    data = _features(np.column_stack([cheap, dear]), y, seconds=seconds)
    result = ag.cross_fit("cascade", data)
    hit = ((result.p > 0.5) == (y == 1)).mean()
    assert hit > 0.95
    # half the items are decided by the cheap labeler (1 s), half escalated (1 + 10 s)
    assert np.mean(result.seconds) == pytest.approx(6.0, abs=1.0)


def test_coverage_curve_and_reliability_bins():
    p = np.array([0.95, 0.9, 0.85, 0.6, 0.55, 0.45, 0.4, 0.2, 0.1, 0.05] * 3)
    y = np.array([1, 1, 1, 0, 1, 1, 0, 0, 0, 0] * 3, float)
    curve, reach = ag.coverage_curve(p, y, minimum=5)
    assert curve[-1]["coverage"] == 1.0 and curve[-1]["accuracy"] == pytest.approx(0.8)
    assert reach == 1.0
    _, never = ag.coverage_curve(np.full(30, 0.9), np.zeros(30))
    assert never is None
    bins = ag.reliability_bins(np.array([0.05] * 4 + [0.95] * 6), np.array([0.0] * 4 + [1.0] * 6))
    assert [b["n"] for b in bins] == [4, 6]
    assert bins[0]["mean_p"] is None and bins[1]["mean_p"] == pytest.approx(0.95)


def test_learning_curve_sizes_and_fit_counts():
    rng = np.random.default_rng(6)
    n = 400
    d = rng.normal(size=n)
    y = (rng.random(n) < ag.sigmoid(2 * d)).astype(float)
    curve = ag.learning_curve("calibrated", _features(d, y), repeats=2)
    assert [p["n_labels"] for p in curve] == list(ag.LEARNING_SIZES)
    assert all(p["fits"] == 2 * ag.FOLDS for p in curve)
    assert curve[-1]["log_loss"] <= curve[0]["log_loss"] + 0.02


def test_features_fall_back_to_the_logit_of_the_orders():
    items = pd.DataFrame(
        {
            "item_id": ["a", "b"],
            "group_id": ["g", "h"],
            "len_a": [10.0, 20.0],
            "len_b": [20.0, 10.0],
            "human_pref_a": [1.0, 0.0],
        }
    )
    rows = items.assign(
        labeler="l",
        variant="v",
        ai_pref_a_ab=[0.8, np.nan],
        ai_pref_a_ba=[0.6, np.nan],
        ai_pref_a=[0.7, 0.3],
        ai_logodds_a_ab=[np.nan, np.nan],
        ai_logodds_a_ba=[0.5, np.nan],
        seconds=[1.0, 1.0],
    )
    data = features(rows, items, [("l", "v")])
    assert data.d[0, 0] == pytest.approx((math.log(4) + 0.5) / 2)
    assert data.d[1, 0] == pytest.approx(math.log(0.3 / 0.7))


def test_a_labeler_seen_in_one_fixed_order_is_not_calibrated():
    """Noise plus a slot prior, A-first order only, humans choosing A 70% of the time: a fit
    would learn the slot prior as signal (the data set's A/B skew). It is refused instead."""
    rng = np.random.default_rng(8)
    n = 300
    items = pd.DataFrame(
        {
            "item_id": [f"i{k:03d}" for k in range(n)],
            "group_id": [f"post{k // 2}" for k in range(n)],
            "len_a": rng.integers(50, 400, n).astype(float),
            "len_b": rng.integers(50, 400, n).astype(float),
            "human_pref_a": (rng.random(n) < 0.7).astype(float),
        }
    )
    noise = rng.normal(0, 1, n)
    rows = items.assign(
        labeler="fixed",
        variant="v-fixed",
        ai_pref_a_ab=ag.sigmoid(noise + 2.0),
        ai_pref_a_ba=np.nan,
        ai_pref_a=ag.sigmoid(noise + 2.0),
        seconds=1.0,
    )
    data = features(rows, items, [("fixed", "v-fixed")])
    assert data.one_sided.tolist() == [True]
    for method in ("calibrated", "length-controlled", "stacked"):
        result = ag.cross_fit(method, data)
        assert result.reason is not None and "one fixed A/B order" in result.reason
        assert ag.deployable(method, data, ["d"]) is None
    # a seeded random order (each item in one order, both orders used) is fitted as usual
    flip = rng.random(n) < 0.5
    random_order = rows.assign(
        ai_pref_a_ab=np.where(flip, np.nan, ag.sigmoid(noise + 2.0)),
        ai_pref_a_ba=np.where(flip, ag.sigmoid(noise - 2.0), np.nan),
    )
    shuffled = features(random_order, items, [("fixed", "v-fixed")])
    assert shuffled.one_sided.tolist() == [False]
    fitted = ag.deployable("calibrated", shuffled, ["d"])
    assert fitted is not None and fitted.status == "uninformative"


def test_cross_fitting_needs_five_groups():
    data = _features(np.linspace(-1, 1, 40), [1.0, 0.0] * 20, groups=["a", "b", "c"] * 13 + ["a"])
    result = ag.cross_fit("calibrated", data)
    assert result.reason == "human labels from 3 group(s): cross-fitting needs at least 5"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"method": "calibrated", "weight": True}, "not true or false"),
        ({"method": "prob-mean", "weight": 2.0}, "takes no 'weight'"),
        ({"method": "calibrated", "weight": 1.0, "length_weight": 1.0}, "takes no"),
        (
            {"method": "stacked", "weight": 1.0, "length_weight": 1.0, "length_range": [1, -1]},
            "low <= high",
        ),
        ({"method": "calibrated", "weight": 1.0, "status": "great"}, "status"),
        ({"method": "calibrated", "weight": float("nan")}, "finite"),
    ],
)
def test_aggregation_refuses_parameters_it_would_misuse(fields, message):
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as error:
        ag.Aggregation.model_validate(fields)
    assert message in str(error.value)


def test_caveats_name_reversed_and_length_only_labels():
    reversed_ = ag.Aggregation(method="calibrated", weight=-2.0, status="anti-informative")
    assert "reverse" in reversed_.caveat()
    length = ag.Aggregation(method="stacked", weight=0.1, length_weight=2.0, status="uninformative")
    assert "length rule" in length.caveat()
    assert ag.Aggregation(method="calibrated", weight=3.0, status="informative").caveat() is None


def _winner_frame(seed: int, n: int, groups_of: int = 1) -> pd.DataFrame:
    """One labeler cell of ``n`` comparisons with informative labels, never of equal length;
    ``groups_of`` comparisons per post."""
    rng = np.random.default_rng(seed)
    d = rng.normal(size=n)
    return pd.DataFrame(
        {
            "dataset": "d",
            "labeler": "l",
            "variant": "v",
            "item_id": [f"i{k}" for k in range(n)],
            "group_id": [f"g{k // groups_of}" for k in range(n)],
            "pair_key": [f"p{k}" for k in range(n)],
            "len_a": np.where(np.arange(n) % 2, 100.0, 300.0),  # never near equal length
            "len_b": np.where(np.arange(n) % 2, 300.0, 100.0),
            "human_pref_a": (rng.random(n) < ag.sigmoid(2 * d)).astype(float),
            "ai_pref_a_ab": ag.sigmoid(d + 0.3),
            "ai_pref_a_ba": ag.sigmoid(d - 0.3),
            "ai_pref_a": (ag.sigmoid(d + 0.3) + ag.sigmoid(d - 0.3)) / 2,
            "seconds": 1.0,
        }
    )


def test_a_forced_winner_method_that_is_na_falls_back_to_prob_mean():
    from labelbench.report.aggregations import winner_aggregation

    frame = _winner_frame(9, 60)
    settings = ReportSettings(winner_aggregation="length-controlled")
    winner = WinnerFile(labeler="l", variant="v")
    out = winner_aggregation(frame, winner, settings)
    assert out.aggregation is not None and out.aggregation_choice is not None
    assert out.aggregation.method == "prob-mean"
    assert "length-controlled is n/a here" in out.aggregation_choice.criterion
    auto = winner_aggregation(frame, winner, ReportSettings())
    assert auto.aggregation is not None and auto.aggregation_choice is not None
    assert auto.aggregation.method in ag.SINGLE_METHODS
    assert "lowest cross-fitted log-loss" in auto.aggregation_choice.criterion


def test_the_same_comparisons_in_two_data_sets_are_fitted_once():
    """A sample and its prefix (tldr 400 and tldr-prompts 200 of one file) hold the same
    human labels: the winner's aggregation is fitted on each comparison once, as on one set."""
    from labelbench.report.aggregations import winner_aggregation

    n = 80
    frame = _winner_frame(3, n, groups_of=2).assign(dataset="tldr")
    winner = WinnerFile(labeler="l", variant="v")
    alone = winner_aggregation(frame, winner, ReportSettings())
    prefix = frame.iloc[: n // 2].assign(dataset="tldr-prompts")
    pooled = winner_aggregation(pd.concat([frame, prefix]), winner, ReportSettings())
    assert alone.aggregation is not None and pooled.aggregation is not None
    assert pooled.aggregation.n_fit == alone.aggregation.n_fit == n
    assert pooled.aggregation.weight == pytest.approx(alone.aggregation.weight)
    # (the cross-fitted figures differ a little: folds are drawn from data-set-prefixed groups)
    for method, figures in pooled.aggregation_choice.methods.items():
        assert figures.n_fit == alone.aggregation_choice.methods[method].n_fit, method
