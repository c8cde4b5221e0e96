"""Evaluation figures: win rate, interval and length-controlled win rate, undefined (None with a
reason) when the data cannot support them."""

from __future__ import annotations

import json

import pytest

from rlaif.evaluate import (
    judge_summary,
    length_controlled_win_rate,
    length_stats,
    summary_lines,
    win_rate,
)


def test_win_rate_with_an_interval():
    wins = [1.0, 0.0, 1.0, 0.5, 1.0, 0.0, 1.0, 1.0]
    result = win_rate(wins, seed=3)
    assert result["win_rate"] == pytest.approx(0.6875)
    assert result["ci_low"] < result["win_rate"] < result["ci_high"]
    assert "undefined" not in result


def test_no_prompts_is_undefined():
    result = win_rate([])
    assert result["win_rate"] is None and result["ci_low"] is None and result["n"] == 0
    assert result["undefined"]["win_rate"] == "no prompts"
    assert json.loads(json.dumps(result))["win_rate"] is None  # null in JSON
    assert length_controlled_win_rate([], []) == (None, "no prompts")
    assert length_stats([]) == {"mean_words": None, "median_words": None}


def test_one_prompt_has_no_interval():
    result = win_rate([1.0])
    assert result["win_rate"] == 1.0
    assert result["ci_low"] is None and result["ci_high"] is None
    assert result["undefined"]["interval"] == "one prompt: no interval"


def test_a_few_equal_outcomes_do_not_give_a_zero_width_interval():
    """Issue 25 item 7: three wins of three is not a win rate known to be exactly 1."""
    three = win_rate([1.0, 1.0, 1.0])
    assert three["win_rate"] == 1.0 and three["ci_high"] == 1.0
    assert three["ci_low"] == pytest.approx(0.4385, abs=1e-3)  # Wilson, 95%
    losses = win_rate([0.0] * 5)
    assert losses["ci_low"] == 0.0 and 0.4 < losses["ci_high"] < 0.5


def test_a_length_controlled_rate_is_never_extrapolated_to_equal_length():
    """Issue 25 item 7: every policy response longer: zero difference is outside the data."""
    value, reason = length_controlled_win_rate([1, 0, 1, 1, 0, 1], [2, 5, 9, 14, 3, 7])
    assert value is None and "equal length lies outside the data" in reason


def test_no_variation_in_length_gives_no_length_controlled_rate():
    # the old fit returned a number near the raw win rate whatever happened
    assert length_controlled_win_rate([1, 0, 1, 1], [3, 3, 3, 3]) == (
        None,
        "no variation in the length difference",
    )


def test_no_variation_in_outcome_or_length_deciding_it_is_undefined():
    assert length_controlled_win_rate([1, 1, 1], [1, 5, -2])[1] == "no variation in the outcome"
    value, reason = length_controlled_win_rate([0, 0, 1, 1], [-3, -1, 2, 4])
    assert value is None and reason == "the length difference alone decides the outcome"


def test_length_controlled_rate_when_identified():
    wins = [1, 0, 1, 0, 1, 1, 0, 1]
    diffs = [2, 1, -1, 3, 0, 4, -2, -3]
    value, reason = length_controlled_win_rate(wins, diffs)
    assert reason is None and 0.0 < value < 1.0


def test_summary_lines_show_n_a_with_the_reason():
    result = {
        "judges": {"reward_model": judge_summary([1.0], [2.0], seed=0)},
        "mean_kl_to_reference": None,
    }
    lines = summary_lines(result)
    assert lines[0] == (
        "reward_model: win rate 1.000 interval n/a (one prompt: no interval), "
        "length-controlled n/a (no variation in the length difference)"
    )
    assert lines[1] == "mean KL to reference n/a (no prompts) nats"


def test_the_win_rate_interval_is_the_benchmarks_bootstrap():
    """Issue 28: one statistics path. ``win_rate``'s interval is ``labelbench.metrics``'
    percentile bootstrap (``ClusterBootstrap`` with each prompt its own group, 2000 resamples).
    Before, evaluate called ``scipy.stats.bootstrap`` (also percentile, 2000 resamples, seeded
    the same): the same method with other random draws, so for the same seed the endpoints
    differ by Monte-Carlo error only (here under 0.01 on 200 prompts, where the interval is
    about 0.14 wide); the point estimate and the Wilson interval of equal outcomes are unchanged."""
    import numpy as np
    from scipy.stats import bootstrap

    from labelbench.metrics import ClusterBootstrap, mean_with_interval, wilson_interval

    wins = np.random.default_rng(7).choice([0.0, 0.5, 1.0], size=200, p=[0.4, 0.1, 0.5])
    result = win_rate(list(wins), seed=0)
    estimate = mean_with_interval(wins, n_boot=2000, seed=0)
    assert (result["win_rate"], result["ci_low"], result["ci_high"]) == (
        estimate.value,
        estimate.low,
        estimate.high,
    )
    # the plain bootstrap of prompts, by hand from the same resample counts
    boot = ClusterBootstrap(np.arange(200), n_boot=2000, seed=0)
    means = boot.row_weights() @ wins / 200
    assert (result["ci_low"], result["ci_high"]) == tuple(np.quantile(means, [0.025, 0.975]))
    # scipy's draws: the same interval up to Monte-Carlo error
    old = bootstrap(
        (wins,),
        np.mean,
        confidence_level=0.95,
        n_resamples=2000,
        method="percentile",
        rng=np.random.default_rng(0),
    ).confidence_interval
    assert result["win_rate"] == pytest.approx(float(wins.mean()))
    assert abs(result["ci_low"] - old.low) < 0.01 and abs(result["ci_high"] - old.high) < 0.01
    assert 0.1 < result["ci_high"] - result["ci_low"] < 0.2
    assert win_rate([1.0] * 4)["ci_low"] == wilson_interval(1.0, 4)[0]
