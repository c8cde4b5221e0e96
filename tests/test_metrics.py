"""Every metric against values computed by hand (in the comments) on small tables."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labelbench import metrics
from labelbench.metrics import ClusterBootstrap

NAN = math.nan


def boot_for(n: int, *, groups: list[str] | None = None, n_boot: int = 200) -> ClusterBootstrap:
    return ClusterBootstrap(np.array(groups or [f"g{i}" for i in range(n)]), n_boot=n_boot, seed=7)


def test_human_label_and_credit() -> None:
    h = np.array([1.0, 0.0, 0.5, 2 / 3, 1 / 3, NAN])
    label = metrics.human_label(h)
    np.testing.assert_array_equal(label, [1, 0, NAN, 1, 0, NAN])
    p = np.array([0.9, 0.9, 0.9, 0.5, NAN, 0.2])
    # A vs A -> 1; A vs B -> 0; human tie -> NaN; AI tie -> 1/2; unscored -> NaN; unlabelled -> NaN
    np.testing.assert_array_equal(metrics.credit(p, label), [1, 0, NAN, 0.5, NAN, NAN])


def test_alignment_small_table() -> None:
    p = np.array([0.9, 0.2, 0.5, 0.7, NAN, 0.6])
    label = metrics.human_label(np.array([1, 1, 0, 0.5, 1, 0]))
    result = metrics.alignment(boot_for(6), p, label)
    # usable rows 0, 1, 2, 5 (3: human tie, 4: unscored); credit 1, 0, 1/2, 0 -> 1.5 / 4
    assert result["accuracy"].value == pytest.approx(0.375)
    assert result["accuracy"].n == 4
    # soft agreement: 0.9, 0.2, 0.5, 1 - 0.6 = 0.4 -> 2.0 / 4
    assert result["soft_agreement"].value == pytest.approx(0.5)
    # kappa on decided rows 0, 1, 5 (2 is an AI tie): (AI, human) = (A, A), (B, A), (A, B)
    # p_o = 1/3; P(AI A) = P(human A) = 2/3; p_e = 4/9 + 1/9 = 5/9; kappa = (3/9 - 5/9) / (4/9)
    assert result["kappa"].value == pytest.approx(-0.5)
    assert result["kappa"].n == 3


def test_kappa_from_table() -> None:
    # n11=4, n10=1, n01=2, n00=3: p_o = 0.7; P(AI A) = 0.5, P(human A) = 0.6;
    # p_e = 0.5*0.6 + 0.5*0.4 = 0.5; kappa = 0.2 / 0.5 = 0.4
    assert metrics.kappa_from_table(np.array([4.0, 1, 2, 3])) == pytest.approx(0.4)
    # everyone always says A: p_e = 1, kappa undefined
    assert np.isnan(metrics.kappa_from_table(np.array([5.0, 0, 0, 0])))


def test_by_confidence_and_high_confidence_subset() -> None:
    p = np.array([0.9, 0.1, 0.8, 0.3, 0.7, 0.6])
    label = np.array([1.0, 1, 0, 0, 1, 1])
    conf = np.array([1, 9, 2, 4, 6, NAN])
    buckets = metrics.by_confidence(boot_for(6), p, label, conf)
    # "1,9": rows 0 (right) and 1 (wrong) -> 1/2; "2,8": row 2 wrong -> 0; "4,6": rows 3, 4 -> 1
    assert set(buckets) == {"1,9", "2,8", "4,6"}
    assert buckets["1,9"].value == pytest.approx(0.5)
    assert buckets["2,8"].value == pytest.approx(0.0)
    assert buckets["4,6"].value == pytest.approx(1.0)
    high = metrics.alignment(boot_for(6), p, label, np.isin(conf, metrics.HIGH_CONFIDENCE))
    # rows 0, 1, 2 -> 1 of 3
    assert high["accuracy"].value == pytest.approx(1 / 3)


def test_position_bias() -> None:
    ab = np.array([0.8, 0.9, 0.3, 0.6, 0.2, NAN])
    ba = np.array([0.3, 0.6, 0.7, 0.5, 0.1, 0.4])
    result = metrics.position_bias(boot_for(6), ab, ba)
    # row 0: first slot wins both orders; row 2: second slot both; rows 1, 4 consistent;
    # row 3 is a tie in BA; row 5 has one order only -> 2 of 5 pairs
    assert result["same_slot"].value == pytest.approx(0.4)
    assert result["same_slot"].n == 5
    assert result["first_slot"].value == pytest.approx(0.2)
    assert result["slot"] == "none"
    assert result["p_value"] == pytest.approx(1.0)  # 1 vs 1


def test_position_bias_binomial_test() -> None:
    ab = np.full(6, 0.9)
    ba = np.array([0.1, 0.1, 0.1, 0.1, 0.1, 0.9])
    result = metrics.position_bias(boot_for(6), ab, ba)
    # 5 pairs favour the first slot, 0 the second: two-sided p = 2 * (1/2)^5 = 0.0625
    assert result["slot"] == "first"
    assert result["same_slot"].value == pytest.approx(5 / 6)
    assert result["p_value"] == pytest.approx(0.0625)


def test_length_bias() -> None:
    p = np.array([0.9, 0.9, 0.8, 0.5, NAN])
    label = np.array([1.0, 1, 0, 0, NAN])
    len_a = np.array([100.0, 100, 40, 60, 30])
    len_b = np.array([50.0, 95, 80, 30, 60])
    result = metrics.length_bias(boot_for(5), p, label, len_a, len_b, gap=0.1)
    # row 1: gap 5% <= 10%, left out. AI: row 0 picks longer A, row 2 picks shorter A,
    # row 3 AI tie, row 4 unscored -> 1/2. Humans: rows 0, 2 longer, row 3 shorter -> 2/3
    assert result["ai_prefers_longer"].value == pytest.approx(0.5)
    assert result["human_prefers_longer"].value == pytest.approx(2 / 3)
    assert result["human_prefers_longer"].n == 3


def test_length_controlled_logistic_saturated() -> None:
    # 10 pairs where humans chose the response twice as long (d = ln 2): 8 agreements;
    # 10 pairs where they chose the one half as long (d = -ln 2): 5 agreements.
    # Saturated fit: b0 + b1 ln2 = logit 0.8 = ln 4, b0 - b1 ln2 = logit 0.5 = 0
    # -> b0 = ln 2, b1 = 1; corrected agreement = sigmoid(ln 2) = 2/3.
    label = np.ones(20)
    len_a = np.array([200.0] * 10 + [100.0] * 10)
    len_b = np.array([100.0] * 10 + [200.0] * 10)
    p = np.array([0.9] * 8 + [0.1] * 2 + [0.9] * 5 + [0.1] * 5)
    result = metrics.length_controlled(boot_for(20), p, label, len_a, len_b, gap=0.1, ridge=0.0)
    assert result["corrected"].value == pytest.approx(2 / 3, abs=1e-8)
    assert result["slope"].value == pytest.approx(1.0, abs=1e-8)
    # balanced: (8/10 + 5/10) / 2
    assert result["balanced"].value == pytest.approx(0.65)
    # no pair within 10% in length
    assert result["matched"].n == 0
    assert np.isnan(result["matched"].value)
    low, high = result["corrected"].low, result["corrected"].high
    assert low < 2 / 3 < high


def test_length_correction_is_not_extrapolated_to_equal_length() -> None:
    """Issue 25 item 7: on 12 pairs where humans always chose the longer response, a coin-flip
    labeler got a length-corrected accuracy of 1.000 [0.82, 1.00], read off the fit at d = 0,
    where no pair was."""
    rng = np.random.default_rng(0)
    len_b = np.full(12, 100.0)
    len_a = len_b * np.exp(rng.uniform(0.2, 1.5, 12))  # A, the human choice, always longer
    label = np.ones(12)
    p = np.where(np.arange(12) % 12 < 7, 0.9, 0.1)  # 7 of 12 agree: raw 0.583
    p[np.argsort(len_a)[:6]] = [0.9] * 6  # agreement rises as the gap narrows
    result = metrics.length_controlled(boot_for(12), p, label, len_a, len_b, gap=0.1)
    assert np.isnan(result["corrected"].value) and np.isnan(result["slope"].value)
    assert "equal length lies outside the data" in result["corrected"].reason
    assert "longer response in every pair" in result["corrected"].reason


def test_length_controlled_always_longer() -> None:
    # humans chose the longer response in 3 of 4 pairs; always-longer agrees exactly then
    label = np.array([1.0, 1, 0, 1])
    len_a = np.array([120.0, 300, 90, 50])
    len_b = np.array([100.0, 100, 45, 100])
    p = np.array([1.0, 1, 1, 0])  # always the longer one
    result = metrics.length_controlled(boot_for(4), p, label, len_a, len_b, gap=0.1)
    # balanced: longer-chosen pairs (0, 1) all agree; shorter-chosen pair (2) disagrees
    # -> (1 + 0) / 2; the logistic fit is undefined (length alone decides)
    assert result["balanced"].value == pytest.approx(0.5)
    assert np.isnan(result["corrected"].value)


def test_fit_logistic_matches_closed_form_per_weight_row() -> None:
    x = np.array([-1.0, -1, 1, 1])
    weights = np.array([[1.0, 3, 3, 1], [2.0, 2, 3, 1]])
    y = np.array([0.0, 1, 1, 0])
    beta = metrics.fit_logistic(x, y, weights, ridge=0.0)
    # row 0: P(x=-1) = 3/4, P(x=1) = 3/4 -> b0 = ln 3, b1 = 0
    assert beta[0] == pytest.approx([math.log(3), 0.0], abs=1e-8)
    # row 1: P(x=-1) = 1/2, P(x=1) = 3/4 -> b0 = ln3 / 2, b1 = ln3 / 2
    assert beta[1] == pytest.approx([math.log(3) / 2, math.log(3) / 2], abs=1e-8)


def test_calibration() -> None:
    p = np.array([0.9, 0.8, 0.3, 0.2, 0.6, NAN])
    label = np.array([1.0, 0, 0, 0, 1, 1])
    result = metrics.calibration(boot_for(6), p, label, bins=2)
    # bin [0, .5): p 0.3, 0.2 (sum 0.5), humans A 0 -> |0.5|; bin [.5, 1]: p 0.9, 0.8, 0.6
    # (sum 2.3), humans A 2 -> |0.3|; ECE = 0.8 / 5 rows
    assert result["ece"].value == pytest.approx(0.16)
    assert result["ece"].n == 5
    assert result["reliability"] == [
        {"bin": 0, "n": 2, "mean_p": 0.25, "human_a": 0.0},
        {"bin": 1, "n": 3, "mean_p": round(2.3 / 3, 6), "human_a": round(2 / 3, 6)},
    ]


@pytest.mark.parametrize(
    ("votes", "expected"),
    [
        ([1.0, 1.0, 1.0], 1.0),
        # the two 1-votes face a split (no majority); the 0 faces a majority for A -> 0
        ([1.0, 1.0, 0.0], 0.0),
        # 1 and 1 each face (1, tie) -> A, agree; the tie faces (1, 1) -> half credit
        ([1.0, 1.0, 0.5], 2.5 / 3),
        ([1.0, 0.0], 0.0),
        ([1.0, 0.5, 0.0], 0.0),
    ],
)
def test_leave_one_out_agreement(votes: list[float], expected: float) -> None:
    assert metrics.leave_one_out_agreement(votes) == pytest.approx(expected)


def test_human_ceiling_pools_repeats_in_either_order() -> None:
    import pandas as pd

    items = pd.DataFrame(
        {
            "pair_key": ["p1", "p1", "p2", "p3", "p4"],
            "group_id": ["g1", "g1", "g2", "g3", "g4"],
            # p1: two TL;DR rows, the second shows the pair swapped: its 0 means the same
            # response as the first row's 1 -> votes (1, 1) -> 1
            "annotator_prefs": [[1.0], [0.0], [1.0, 1.0, 0.5], [1.0], [1.0, 0.5, 0.0]],
            "pair_flipped": [False, True, False, False, False],
        }
    )
    ceiling = metrics.human_ceiling(items, n_boot=100, seed=1, level=0.95)
    # p1 -> 1, p2 -> 5/6, p3 single annotator (left out), p4 -> 0: mean (1 + 5/6 + 0) / 3
    assert ceiling is not None
    assert ceiling.value == pytest.approx((1 + 5 / 6) / 3)
    assert ceiling.n == 3
    unflipped = items.assign(pair_flipped=False)
    # without the swap, p1's votes (1, 0) disagree -> (0 + 5/6 + 0) / 3
    assert metrics.human_ceiling(unflipped, n_boot=100, seed=1, level=0.95).value == (
        pytest.approx((5 / 6) / 3)
    )


def test_human_ceiling_none_without_repeats() -> None:
    import pandas as pd

    items = pd.DataFrame(
        {"pair_key": ["a", "b"], "group_id": ["a", "b"], "annotator_prefs": [[1.0], [0.0]]}
    )
    assert metrics.human_ceiling(items, n_boot=50, seed=0, level=0.95) is None


def test_paired_difference_and_mcnemar() -> None:
    variant = np.array([1.0, 1, 0, 0.5, 1, NAN])
    reference = np.array([0.0, 1, 1, 1, 0, 1])
    result = metrics.paired_difference(boot_for(6), variant, reference)
    # common rows 0-4: differences 1, 0, -1, -0.5, 1 -> 0.5 / 5
    assert result["difference"].value == pytest.approx(0.1)
    # discordant hard pairs: wins rows 0, 4; loss row 2 (row 3's half credit is not counted)
    assert (result["wins"], result["losses"]) == (2, 1)
    assert result["p_value"] == pytest.approx(1.0)
    six_wins = metrics.paired_difference(boot_for(6), np.ones(6), np.zeros(6))
    assert six_wins["p_value"] == pytest.approx(2 / 64)


def test_bootstrap_resamples_whole_groups() -> None:
    groups = ["a", "a", "a", "b", "b", "b"]
    boot = boot_for(6, groups=groups, n_boot=500)
    weights = boot.row_weights()
    # rows of one group always share a multiplicity; each resample draws two groups
    assert (weights[:, 0] == weights[:, 2]).all() and (weights[:, 3] == weights[:, 5]).all()
    assert (boot.counts.sum(axis=1) == 2).all()
    values = np.array([1.0, 1, 1, 0, 0, 0])
    stats = np.column_stack([values, np.ones(6)])
    replicates = metrics._ratio(boot.counts @ np.array([[3.0, 3], [0, 3]]))
    # only whole groups move: a resample's accuracy is 0, 1/2 or 1
    assert set(np.round(replicates, 6)) <= {0.0, 0.5, 1.0}
    estimate = boot.estimate(stats, metrics._ratio, 6)
    assert estimate.value == pytest.approx(0.5)
    assert (estimate.low, estimate.high) == (0.0, 1.0)


def test_bootstrap_is_seeded_and_degenerate_intervals_are_exact() -> None:
    values = np.ones(30)
    one = metrics.mean_estimate(boot_for(30), values, np.ones(30, bool))
    assert (one.value, one.low, one.high) == (1.0, 1.0, 1.0)
    rng = np.random.default_rng(0)
    values = (rng.random(200) < 0.7).astype(float)
    mask = np.ones(200, bool)
    groups = np.array([f"g{i}" for i in range(200)])
    first = metrics.mean_estimate(ClusterBootstrap(groups, n_boot=300, seed=3), values, mask)
    again = metrics.mean_estimate(ClusterBootstrap(groups, n_boot=300, seed=3), values, mask)
    other = metrics.mean_estimate(ClusterBootstrap(groups, n_boot=300, seed=4), values, mask)
    assert first == again
    assert (first.low, first.high) != (other.low, other.high)
    # the interval is about +-1.96 sd of a proportion over 200 rows
    half_width = 1.96 * math.sqrt(first.value * (1 - first.value) / 200)
    assert first.high - first.low == pytest.approx(2 * half_width, rel=0.25)


def test_seed_from_is_stable() -> None:
    assert metrics.seed_from(0, "tldr", "lab") == metrics.seed_from(0, "tldr", "lab")
    assert metrics.seed_from(0, "tldr", "lab") != metrics.seed_from(1, "tldr", "lab")


def test_agreement_buckets() -> None:
    assert metrics.agreement_bucket([1.0]) is None
    assert metrics.agreement_bucket([1.0, 1.0, 1.0]) == "unanimous"
    assert metrics.agreement_bucket([0.5, 0.5, 0.5]) == "split"  # agreeing on a tie: no side
    assert metrics.agreement_bucket([1.0, 1.0, 0.0]) == "split"
    p = np.array([0.9, 0.9, 0.1, 0.9])
    label = np.array([1.0, 1, 1, 0])
    buckets = ["unanimous", "unanimous", "split", None]
    result = metrics.by_confidence(boot_for(4), p, label, np.full(4, NAN), buckets)
    # unanimous rows 0, 1 both right -> 1; split row 2 wrong -> 0; row 3 in no bucket
    assert set(result) == {"unanimous", "split"}
    assert (result["unanimous"].value, result["split"].value) == (1.0, 0.0)


def test_json_numbers() -> None:
    assert metrics.json_number(1 / 3) == 0.333333
    assert str(metrics.json_number(-1e-9)) == "0.0"  # no "-0.0" in summary.json
    assert metrics.json_number(math.nan) is None
    # 40 of 40 pairs on one slot: p = 2 / 2^40 stays visible
    assert metrics.json_p_value(2 / 2**40) == pytest.approx(1.81899e-12)


# ---------------------------------------------------------------------------- degenerate inputs


def test_no_rows_is_undefined_with_a_reason() -> None:
    empty = np.array([])
    result = metrics.alignment(boot_for(0), empty, empty)
    for key in ("accuracy", "soft_agreement", "kappa"):
        estimate = result[key]
        assert math.isnan(estimate.value) and estimate.n == 0 and estimate.reason == "no rows"
        assert estimate.to_dict() == {
            "value": None,
            "low": None,
            "high": None,
            "n": 0,
            "reason": "no rows",
        }
    mean = metrics.mean_estimate(boot_for(3), np.ones(3), np.zeros(3, bool))
    assert mean.reason == "no rows" and mean.to_dict()["value"] is None


def test_all_human_ties_is_undefined_not_zero() -> None:
    p = np.array([0.9, 0.2, 0.7, 0.6])
    label = metrics.human_label(np.full(4, 0.5))
    result = metrics.alignment(boot_for(4), p, label)
    assert math.isnan(result["accuracy"].value)
    assert result["accuracy"].reason == "all human labels are ties (or missing)"
    assert result["kappa"].to_dict()["value"] is None
    balanced = metrics.length_controlled(
        boot_for(4), p, label, np.array([5, 6, 7, 8]), np.array([9, 3, 2, 8]), 0.1
    )
    assert all(balanced[key].to_dict()["value"] is None for key in balanced)


def test_one_group_has_a_value_but_no_interval() -> None:
    p = np.array([0.9, 0.2, 0.8, 0.7])
    label = metrics.human_label(np.array([1.0, 1.0, 1.0, 0.0]))
    accuracy = metrics.alignment(boot_for(4, groups=["post"] * 4), p, label)["accuracy"]
    assert accuracy.value == pytest.approx(0.5)  # rows 0 and 2 agree
    assert math.isnan(accuracy.low) and math.isnan(accuracy.high)
    assert accuracy.reason == "one group: no interval"
    assert accuracy.to_dict()["low"] is None
    # two groups: an interval again
    two = metrics.alignment(boot_for(4, groups=["a", "a", "b", "b"]), p, label)["accuracy"]
    assert two.reason is None and two.low <= two.value <= two.high


def test_no_variation_in_length_gives_no_length_correction() -> None:
    p = np.array([0.9, 0.2, 0.8, 0.3, 0.6, 0.4])
    label = metrics.human_label(np.array([1.0, 1.0, 0.0, 0.0, 1.0, 0.0]))
    same = np.full(6, 10.0)
    result = metrics.length_controlled(boot_for(6), p, label, same, same, 0.1)
    assert result["corrected"].reason == "no variation in the length ratio"
    assert result["slope"].to_dict()["value"] is None
    assert result["balanced"].to_dict()["value"] is None  # nobody chose a longer response
    assert result["matched"].value == pytest.approx(
        metrics.alignment(boot_for(6), p, label)["accuracy"].value
    )


def test_kappa_without_variation_is_undefined() -> None:
    p = np.array([0.9, 0.8, 0.7])
    label = metrics.human_label(np.array([1.0, 1.0, 1.0]))
    kappa = metrics.alignment(boot_for(3), p, label)["kappa"]
    assert math.isnan(kappa.value) and "no variation" in kappa.reason


def test_length_controlled_figures_from_one_group_are_n_a_not_zero() -> None:
    from labelbench.report.render import NOTES, fmt
    from labelbench.rundir import Estimate

    # rows 0-1 (post "a") are the only length-matched pairs (gaps 0% and 5%), both wrong: their
    # accuracy would read 0.000. Rows 2-3 (post "b") have wide gaps (humans chose the longer
    # response in row 2, the shorter in row 3).
    p = np.array([0.9, 0.1, 0.9, 0.1])
    label = metrics.human_label(np.array([0.0, 1.0, 1.0, 1.0]))
    len_a, len_b = np.array([50.0, 100, 200, 100]), np.array([50.0, 95, 100, 300])
    boot = boot_for(4, groups=["a", "a", "b", "b"])
    result = metrics.length_controlled(boot, p, label, len_a, len_b, gap=0.1)
    matched = result["matched"].to_dict()
    assert matched["value"] is None and matched["n"] == 2
    assert matched["reason"] == "length-matched pairs from one group only"
    assert fmt(Estimate.model_validate(matched)) == "n/a (length-matched pairs from one group only)"
    # the same table in one group: nothing is balanced or corrected across groups either
    one = metrics.length_controlled(boot_for(4, groups=["a"] * 4), p, label, len_a, len_b, 0.1)
    for key in ("matched", "balanced", "corrected", "slope"):
        assert one[key].to_dict()["value"] is None, key
        assert "one group only" in fmt(Estimate.model_validate(one[key].to_dict()))
    assert any("n/a when its pairs come from one group only" in note for note in NOTES)
    # two groups behind the matched pairs: a value again
    two = metrics.length_controlled(
        boot_for(4, groups=["a", "c", "b", "b"]), p, label, len_a, len_b, 0.1
    )
    assert two["matched"].value == 0.0 and two["matched"].reason is None


def test_report_shows_undefined_as_n_a_with_the_reason() -> None:
    from labelbench.report.render import fmt
    from labelbench.rundir import Estimate

    def shown(estimate: metrics.Estimate) -> str:
        return fmt(Estimate.model_validate(estimate.to_dict()))

    assert shown(metrics.Estimate.undefined("no rows")) == "n/a (no rows)"
    one_group = metrics.Estimate(0.5, math.nan, math.nan, 4, "one group: no interval")
    assert shown(one_group) == "0.500 (one group: no interval)"
    assert shown(metrics.Estimate(0.5, 0.4, 0.6, 9)) == "0.500 [0.400, 0.600]"
