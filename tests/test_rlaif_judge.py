"""A judge that neither trained nor was trained on the evaluated posts: rlaif reward records the
posts it trained on, and rlaif evaluate refuses a judge whose posts meet the prompts' or the
policies' (issue 24)."""

from __future__ import annotations

import json
import shutil

import pytest
from test_rlaif_cli import assert_one_line_error, run, write_comparisons

from rlaif.groups import TRAINING_GROUPS_FILE, TrainingGroups, check_judge


def test_a_record_round_trips_and_merges(tmp_path):
    record = TrainingGroups.of("dpo", ["b", "a", "b"], ["pairs.jsonl"])
    assert record.groups == ["a", "b"] and record.complete
    merged = record.including(TrainingGroups.of("sft", ["c"]), "sft/policy")
    merged = merged.including(None, "smollm2-135m")  # a registry model: no record, no posts
    assert merged.groups == ["a", "b", "c"] and merged.complete
    assert merged.sources == ["pairs.jsonl", "sft/policy", "smollm2-135m (no record)"]
    merged.save(tmp_path)
    assert TrainingGroups.load(tmp_path) == merged
    assert not TrainingGroups.of("reward", ["a", None]).complete  # a row without a post id
    assert TrainingGroups.load(tmp_path / "elsewhere") is None


@pytest.mark.parametrize(
    ("content", "needle"),
    [("{", "cannot read"), ('{"groups": "t3_1"}', "groups"), ('{"groups": [1]}', "groups")],
)
def test_a_malformed_record_is_one_line_naming_the_file(tmp_path, capsys, content, needle):
    (tmp_path / TRAINING_GROUPS_FILE).write_text(content)
    from labelbench.errors import InputError

    with pytest.raises(InputError, match=needle) as caught:
        check_judge(tmp_path, ["t3_1"], {})
    assert TRAINING_GROUPS_FILE in str(caught.value) and "\n" not in str(caught.value)


def test_evaluate_refuses_a_judge_trained_on_overlapping_posts(
    tmp_path, tiny_lm_dir, capsys, monkeypatch
):
    monkeypatch.setenv("LABELBENCH_CACHE_DIR", str(tmp_path / "cache"))
    data = write_comparisons(tmp_path / "c.jsonl", n_posts=30)
    judge = tmp_path / "judge"
    code, _, err = run(
        ["reward", data, "--split", "train", "--out", judge, "--model", tiny_lm_dir], capsys
    )
    assert code == 0, err
    record = json.loads((judge / TRAINING_GROUPS_FILE).read_text())
    assert record["command"] == "reward" and record["complete"]
    trained = set(record["groups"])
    assert trained and all(post.startswith("t3_") for post in trained)

    base = ["evaluate", "--reward-model", judge, "--out", tmp_path / "e.json"]
    base += ["--response-length", "3"]
    # the prompts are the judge's own training posts
    code, _, err = run(
        [*base, "--policy", tiny_lm_dir, "--reference", tiny_lm_dir, "--prompts", data], capsys
    )
    assert_one_line_error(code, err, str(judge), "not an independent judge", "evaluated prompts")
    assert not (tmp_path / "e.json").exists()

    # the policy (or the reference) was trained on one of the judge's posts
    policy = tmp_path / "policy"
    shutil.copytree(tiny_lm_dir, policy)
    TrainingGroups.of("dpo", ["other_post", sorted(trained)[0]]).save(policy)
    held_out = [*base, "--prompts", data, "--split", "test"]
    code, _, err = run([*held_out, "--policy", policy, "--reference", tiny_lm_dir], capsys)
    assert_one_line_error(code, err, "not an independent judge", "--policy trained on", "1 of")
    code, _, err = run([*held_out, "--policy", tiny_lm_dir, "--reference", policy], capsys)
    assert_one_line_error(code, err, "not an independent judge", "--reference trained on")

    # disjoint posts: the judge judges, and the result says its posts were checked
    TrainingGroups.of("dpo", ["other_post"]).save(policy)
    code, _, err = run([*held_out, "--policy", policy, "--reference", tiny_lm_dir], capsys)
    assert code == 0, err
    judged = json.loads((tmp_path / "e.json").read_text())["judges"]["reward_model"]
    assert judged["training_posts"] == {
        "checked": True,
        "n": len(trained),
        "complete": True,
        "shared_with_prompts_or_policies": 0,
    }


def test_a_judge_without_a_record_is_used_with_a_note(tmp_path, tiny_lm_dir, capsys, monkeypatch):
    monkeypatch.setenv("LABELBENCH_CACHE_DIR", str(tmp_path / "cache"))
    data = write_comparisons(tmp_path / "c.jsonl", n_posts=12)
    judge = tmp_path / "judge"
    code, _, err = run(["reward", data, "--out", judge, "--model", tiny_lm_dir], capsys)
    assert code == 0, err
    (judge / TRAINING_GROUPS_FILE).unlink()  # e.g. a reward model trained before the records
    out = tmp_path / "e.json"
    args = ["evaluate", "--policy", tiny_lm_dir, "--reference", tiny_lm_dir, "--prompts", data]
    code, _, err = run([*args, "--reward-model", judge, "--out", out, "--limit", "3"], capsys)
    assert code == 0, err
    assert "note:" in err and "cannot be checked" in err
    assert (
        json.loads(out.read_text())["judges"]["reward_model"]["training_posts"]["checked"] is False
    )


@pytest.mark.parametrize("command", ["dpo", "sft", "ppo"])
def test_a_malformed_record_of_the_start_fails_before_training(
    tmp_path, tiny_lm_dir, capsys, command
):
    """The starting policy's (or reward model's) record is read before training: a broken one
    is one line naming it, and nothing is trained or saved."""
    from test_rlaif_sft import write_posts

    (tiny_lm_dir / TRAINING_GROUPS_FILE).write_text('{"groups": "t3_1"}')
    out = tmp_path / "out"
    if command == "dpo":
        data = write_comparisons(tmp_path / "c.jsonl", n_posts=4)
        args = ["dpo", data, "--out", out, "--policy", tiny_lm_dir]
    elif command == "sft":
        args = ["sft", write_posts(tmp_path / "p.jsonl", n_posts=20), "--out", out]
        args += ["--model", tiny_lm_dir]
    else:
        data = write_comparisons(tmp_path / "c.jsonl", n_posts=4)
        args = ["ppo", "--prompts", data, "--out", out, "--policy", tiny_lm_dir]
        args += ["--reward-model", tiny_lm_dir, "--updates", "1"]
    code, _, err = run(args, capsys)
    assert_one_line_error(code, err, TRAINING_GROUPS_FILE, "field 'groups'")
    assert not (out / "policy").exists()


def test_a_policy_given_as_the_judge_is_named_for_what_it_is(tmp_path, tiny_lm_dir, capsys):
    """A policy folder (here with a training record overlapping the prompts, as `rlaif dpo`'s
    OUT/policy has) is refused as not a reward model, not as a dependent judge."""
    data = write_comparisons(tmp_path / "c.jsonl", n_posts=4)
    policy = tmp_path / "policy"
    shutil.copytree(tiny_lm_dir, policy)
    TrainingGroups.of("dpo", [f"t3_{i}" for i in range(4)]).save(policy)
    args = ["evaluate", "--reward-model", policy, "--out", tmp_path / "e.json", "--prompts", data]
    code, _, err = run([*args, "--policy", tiny_lm_dir, "--reference", tiny_lm_dir], capsys)
    assert_one_line_error(code, err, str(policy), "not a reward model", "rlaif reward")
