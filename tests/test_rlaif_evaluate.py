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
