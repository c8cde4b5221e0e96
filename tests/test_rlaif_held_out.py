"""Held-out reward-model figures: posts the reward model trained on are left out of its
held-out accuracy, and the accuracy comes with intervals on all, high-confidence and
length-controlled pairs, beside always-longer on the same pairs."""

from __future__ import annotations

import json
import math

import pytest

from labelbench.errors import InputError
from rlaif.data import DataOptions, HeldOut, load_held_out
from rlaif.reward import held_out_figures


def write(path, records):
    with path.open("w") as out:
        for post, texts, choice, confidence in records:
            out.write(
                json.dumps(
                    {
                        "info": {
                            "id": post,
                            "post": f"text of {post}",
                            "title": "t",
                            "subreddit": "s",
                        },
                        "summaries": [{"text": t, "policy": "p"} for t in texts],
                        "choice": choice,
                        "worker": "w",
                        "batch": "b",
                        "split": "valid",
                        "extra": {"confidence": confidence},
                    }
                )
                + "\n"
            )
    return path


def test_held_out_pairs_on_a_training_post_are_left_out_and_counted(tmp_path):
    path = write(
        tmp_path / "c.json",
        [
            ("t3_a", ["one two", "one"], 0, 9),
            ("t3_a", ["three", "three four"], 1, 8),
            ("t3_b", ["five six", "five"], 0, 1),
            ("t3_c", ["seven", "seven eight"], 0, 5),
        ],
    )
    held_out = load_held_out(path, DataOptions(), None, "confidence", exclude_groups={"t3_a"})
    assert held_out.dropped_shared == 2
    assert sorted(held_out.group_id) == ["t3_b", "t3_c"]
    assert sorted(held_out.confidence) == [1, 5]
    with pytest.raises(
        InputError,
        match=r"no held-out comparisons \(without ties\) \(4 share a post with the training data\)",
    ):
        load_held_out(
            path, DataOptions(), None, "confidence", exclude_groups={"t3_a", "t3_b", "t3_c"}
        )


def held_out(n_posts: int = 40) -> HeldOut:
    """Humans chose the longer summary on even posts, the shorter one on odd posts; posts
    0-9 have confidence 9, the rest 5; posts divisible by 4 have equal-length summaries."""
    chosen, rejected, confidence = [], [], []
    for post in range(n_posts):
        long, short = "a much longer summary here", "short one"
        if post % 4 == 0:
            long, short = "same length A", "same length B"
        pair = (long, short) if post % 2 == 0 else (short, long)
        chosen.append(pair[0])
        rejected.append(pair[1])
        confidence.append(9 if post < 10 else 5)
    return HeldOut(
        prompt=["p"] * n_posts,
        chosen=chosen,
        rejected=rejected,
        group=["g"] * n_posts,
        group_id=[f"post{i}" for i in range(n_posts)],
        confidence=confidence,
    )


def test_always_longer_and_a_perfect_reward_model_score_what_they_should():
    data = held_out()
    perfect = held_out_figures([1.0] * 40, [0.0] * 40, data, seed=0)
    model, longer = perfect["reward_model"], perfect["always_longer"]
    assert model["all"]["value"] == 1.0 and model["all"]["n"] == 40
    assert model["high_confidence"]["n"] == 10
    assert model["length_matched"]["value"] == 1.0 and model["length_matched"]["n"] == 10
    # Longer was chosen on even posts with unequal lengths (10 of 40), shorter on the odd 20;
    # equal lengths (10) are ties worth 1/2: (10 + 5) / 40.
    assert longer["all"]["value"] == pytest.approx(15 / 40)
    assert longer["length_balanced"]["value"] == pytest.approx(0.5)
    difference = perfect["versus_always_longer"]
    assert difference["value"] == pytest.approx(1 - 15 / 40)
    assert difference["low"] <= difference["value"] <= difference["high"]
    assert perfect["length_gap"] == 0.1


def test_a_reward_model_that_follows_length_matches_always_longer():
    data = held_out()
    by_length = [float(len(c)) for c in data.chosen], [float(len(r)) for r in data.rejected]
    figures = held_out_figures(*by_length, data, seed=0)
    assert figures["reward_model"]["all"] == figures["always_longer"]["all"]
    assert figures["versus_always_longer"]["value"] == 0.0


def test_no_confidence_gives_no_high_confidence_figure():
    data = held_out()
    data.confidence = [None] * len(data.chosen)
    figures = held_out_figures([1.0] * 40, [0.0] * 40, data, seed=0)
    assert figures["reward_model"]["high_confidence"] is None
    assert not math.isnan(figures["reward_model"]["all"]["value"])


def test_a_score_tie_earns_half_in_the_per_group_accuracy_as_in_the_held_out_figures():
    import torch

    from rlaif.reward_trainer import accuracy_by_group, pairwise_credit

    chosen = torch.tensor([1.0, 0.5, 0.2, 0.7])
    rejected = torch.tensor([0.0, 0.5, 0.9, 0.7])
    credit = pairwise_credit(chosen, rejected)
    assert credit == [1.0, 0.5, 0.0, 0.5]
    figures = accuracy_by_group(credit, ["a", "a", "b", "b"])
    assert figures["all"] == {"accuracy": 0.5, "n": 4.0}
    assert figures["a"]["accuracy"] == 0.75 and figures["b"]["accuracy"] == 0.25
