"""rlaif sft: the loss falls on a tiny model, held-out figures beside the start's, a split by
post, the policy it saves feeding dpo, ppo and evaluate; bad inputs are one line."""

from __future__ import annotations

import json

import pytest
from test_rlaif_cli import assert_one_line_error, run, write_comparisons

from rlaif.sft import rouge_l

TARGET = "the user wants advice about a job"


def write_posts(path, n_posts: int = 40, prefix: str = "t3_", reference: bool = True):
    """Synthetic TL;DR posts (format tldr-posts) whose reference summary is always TARGET."""
    with path.open("w") as out:
        for post in range(n_posts):
            record = {
                "instruction_id": f"{prefix}{post}",
                "subreddit": "jobs",
                "title": "advice",
                "instruction": f"post number {post}: my friend and my job",
            }
            if reference:
                record["gold_response"] = TARGET
            out.write(json.dumps(record) + "\n")
    return path


def test_rouge_l_is_rouge_scores():
    # LCS "the cat sat" = 3 tokens: precision 3/3, recall 3/6, F1 = 2/3
    assert rouge_l(["the cat sat"], ["the cat sat on the mat"]) == pytest.approx([2 / 3])
    assert rouge_l(["dogs run"], ["a dog running"]) == pytest.approx([0.8])  # stemmed: dog, run
    assert rouge_l(["nothing alike"], ["the cat"]) == [0.0]


def test_sft_loss_falls_and_held_out_figures_stand_beside_the_start(tmp_path, tiny_lm_dir, capsys):
    posts = write_posts(tmp_path / "posts.jsonl", n_posts=40)
    out = tmp_path / "sft"
    args = ["sft", posts, "--out", out, "--model", tiny_lm_dir, "--epochs", "3"]
    args += ["--learning-rate", "3e-3", "--batch-size", "4", "--logging-steps", "1"]
    args += ["--response-length", "12", "--test-fraction", "0.25"]
    code, stdout, err = run(args, capsys)
    assert code == 0, err
    metrics = json.loads((out / "sft_metrics.json").read_text())
    start, trained = metrics["held_out"]["start"], metrics["held_out"]["trained"]
    # the held-out loss (nats per summary token) and the training loss fall
    assert trained["loss"] < 0.7 * start["loss"], (start["loss"], trained["loss"])
    history = metrics["loss_history"]
    assert len(history) >= 10 and sum(history[-3:]) < 0.7 * sum(history[:3]), history
    for figures in (start, trained):
        assert 0.0 <= figures["rouge_l"] <= 1.0 and 0.0 <= figures["eos_rate"] <= 1.0
        assert figures["n"] == metrics["held_out_posts"] and figures["mean_words"] >= 0
    assert trained["rouge_l"] > start["rouge_l"]  # a constant summary is learnt
    assert "ROUGE-L F1:" in stdout and "->" in stdout
    # split by post: the held-out posts are not trained on, and the record says so
    groups = json.loads((out / "policy" / "training_groups.json").read_text())
    assert groups["command"] == "sft" and len(groups["groups"]) == metrics["train_posts"]
    assert metrics["train_posts"] + metrics["held_out_posts"] == 40
    assert metrics["held_out_posts"] >= 5


def test_the_sft_policy_feeds_dpo_ppo_and_evaluate(tmp_path, tiny_lm_dir, capsys, monkeypatch):
    """The folder rlaif sft saves is a policy and a reference for dpo, ppo and evaluate; the
    posts each was trained on are carried along, so evaluate can check its judge."""
    monkeypatch.setenv("LABELBENCH_CACHE_DIR", str(tmp_path / "cache"))
    posts = write_posts(tmp_path / "posts.jsonl", n_posts=16)
    pairs = write_comparisons(tmp_path / "pairs.jsonl", n_posts=12, prefix="pair_")
    sft = tmp_path / "sft"
    args = ["sft", posts, "--out", sft, "--model", tiny_lm_dir, "--comparisons", pairs]
    code, _, err = run([*args, "--response-length", "4", "--batch-size", "4"], capsys)
    assert code == 0, err
    metrics = json.loads((sft / "sft_metrics.json").read_text())
    assert metrics["comparison_summaries_added"] == 12  # one preferred summary per pair's post
    policy = sft / "policy"

    dpo = tmp_path / "dpo"
    code, _, err = run(
        ["dpo", pairs, "--out", dpo, "--policy", policy, "--batch-size", "4", "--limit", "8"],
        capsys,
    )
    assert code == 0, err
    dpo_groups = json.loads((dpo / "policy" / "training_groups.json").read_text())["groups"]
    sft_groups = json.loads((policy / "training_groups.json").read_text())["groups"]
    assert set(sft_groups) <= set(dpo_groups)

    rm = tmp_path / "rm"
    code, _, err = run(["reward", pairs, "--out", rm, "--model", tiny_lm_dir], capsys)
    assert code == 0, err
    ppo = tmp_path / "ppo"
    args = ["ppo", "--prompts", posts, "--out", ppo, "--policy", policy, "--reward-model", rm]
    args += ["--updates", "1", "--batch-size", "2", "--num-minibatches", "1", "--ppo-epochs", "1"]
    code, _, err = run([*args, "--response-length", "4", "--no-progress"], capsys)
    assert code == 0, err
    ppo_groups = json.loads((ppo / "policy" / "training_groups.json").read_text())
    assert ppo_groups["command"] == "ppo" and set(sft_groups) <= set(ppo_groups["groups"])

    judge_pairs = write_comparisons(tmp_path / "judge.jsonl", n_posts=8, prefix="judge_")
    judge = tmp_path / "judge"
    code, _, err = run(["reward", judge_pairs, "--out", judge, "--model", tiny_lm_dir], capsys)
    assert code == 0, err
    result = tmp_path / "eval.json"
    args = ["evaluate", "--policy", dpo / "policy", "--reference", policy, "--prompts", posts]
    args += ["--split", "test", "--reward-model", judge, "--response-length", "4"]
    code, _, err = run([*args, "--out", result], capsys)
    assert code == 0, err
    judged = json.loads(result.read_text())["judges"]["reward_model"]
    assert judged["training_posts"]["checked"] and judged["n"] >= 1


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--split", "train"], ["--split", "splits the posts itself"]),
        (["--comparisons-split", "test"], ["--comparisons-split", "--comparisons FILE"]),
        (["--learning-rate", "0"], ["--learning-rate", "positive"]),
        (["--response-length", "0"], ["--response-length", "at least 1"]),
        (["--test-fraction", "1.5"], ["--test-fraction"]),
        (["--model", "no-such-model-folder/"], ["no-such-model-folder"]),
    ],
)
def test_bad_sft_inputs_are_one_line(tmp_path, tiny_lm_dir, capsys, extra, needles):
    posts = write_posts(tmp_path / "posts.jsonl", n_posts=20)
    out = tmp_path / "sft"
    code, _, err = run(["sft", posts, "--out", out, "--model", tiny_lm_dir, *extra], capsys)
    assert_one_line_error(code, err, *needles)
    assert not (out / "policy").exists()


def test_sft_refuses_posts_without_references_and_too_few_posts(tmp_path, tiny_lm_dir, capsys):
    base = ["--out", tmp_path / "sft", "--model", tiny_lm_dir]
    bare = write_posts(tmp_path / "bare.jsonl", n_posts=6, reference=False)
    code, _, err = run(["sft", bare, *base], capsys)
    assert_one_line_error(code, err, "bare.jsonl", "gold_response", "reference summary")
    pairs = write_comparisons(tmp_path / "pairs.jsonl", n_posts=6)
    code, _, err = run(["sft", pairs, *base], capsys)  # comparisons are not posts with summaries
    assert_one_line_error(code, err, "pairs.jsonl", "gold_response")
    one = write_posts(tmp_path / "one.jsonl", n_posts=1)
    code, _, err = run(["sft", one, *base], capsys)
    assert_one_line_error(code, err, "one.jsonl", "cannot be split")
    code, _, err = run(["sft", tmp_path / "none.jsonl", *base], capsys)
    assert_one_line_error(code, err, "none.jsonl", "no such")
    posts = write_posts(tmp_path / "posts.jsonl", n_posts=20)
    code, _, err = run(["sft", posts, *base, "--comparisons", bare], capsys)
    assert_one_line_error(code, err, "bare.jsonl")


def test_a_max_length_that_leaves_no_summary_token_is_one_line(tmp_path, tiny_lm_dir, capsys):
    """Every prompt fills --max-length: TRL would drop every example (and the held-out loss
    would be missing); the command says so in one line instead."""
    posts = write_posts(tmp_path / "posts.jsonl", n_posts=20)
    args = ["sft", posts, "--out", tmp_path / "sft", "--model", tiny_lm_dir, "--max-length", "3"]
    code, _, err = run([*args, "--response-length", "2"], capsys)
    assert_one_line_error(code, err, str(posts), "every prompt fills --max-length 3")
