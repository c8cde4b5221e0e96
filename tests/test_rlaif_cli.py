"""The rlaif command line: its commands, input checks before training, tiny end-to-end runs."""

from __future__ import annotations

import json
import math
import random
import shutil

import pytest

from labelbench.cli import run_app
from rlaif.cli import app

WORDS = ["the", "post", "says", "user", "wants", "advice", "friend", "job", "summary", "short"]


def write_comparisons(path, n_posts: int = 24, seed: int = 0, prefix: str = "t3_"):
    """Synthetic comparisons in the OpenAI summarize-from-feedback format: longer is preferred.
    Post ids are ``prefix`` and the post's number."""
    rng = random.Random(seed)
    with path.open("w") as out:
        for post in range(n_posts):
            long_text = " ".join(rng.choices(WORDS, k=rng.randint(8, 12)))
            short_text = " ".join(rng.choices(WORDS, k=rng.randint(1, 3)))
            texts = [long_text, short_text] if post % 2 else [short_text, long_text]
            record = {
                "info": {
                    "id": f"{prefix}{post}",
                    "post": f"post number {post} about a job",
                    "title": "advice",
                    "subreddit": "jobs",
                },
                "summaries": [{"text": t, "policy": "synthetic"} for t in texts],
                "choice": texts.index(long_text),
                "worker": f"w{post % 3}",
                "batch": "synthetic",
                "split": "valid",
                "extra": {"confidence": 1 + post % 9},
            }
            out.write(json.dumps(record) + "\n")
    return path


def run(args: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()  # drop what earlier steps printed
    code = run_app(app, [str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err  # model-loading progress bars may come before it
    assert "Traceback" not in err and err.rstrip().endswith(lines[0]), err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_help_lists_the_commands(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    listed = {line.strip("│ ").split(" ")[0] for line in out.splitlines()}
    for command in ("sft", "label", "reward", "dpo", "ppo", "evaluate"):
        assert command in listed, out


@pytest.mark.parametrize(
    ("args", "target", "kept"),
    [
        (["reward", "train.jsonl", "--out", "o"], "rlaif.reward.train_reward_model", "nothing"),
        (["sft", "posts.jsonl", "--out", "o"], "rlaif.sft.run_sft", "no policy"),
        (["dpo", "train", "--out", "o"], "rlaif.dpo.run_dpo", "no policy"),
        (["ppo", "--prompts", "p.jsonl", "--out", "o"], "rlaif.ppo.run_ppo", "no checkpoint"),
        (
            ["ppo", "--prompts", "p.jsonl", "--out", "o", "--save-every", "5"],
            "rlaif.ppo.run_ppo",
            "checkpoints",
        ),
        (
            ["ppo", "--prompts", "p.jsonl", "--out", "o", "--resume"],
            "rlaif.ppo.run_ppo",
            "checkpoints",
        ),
    ],
)
def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys, args, target, kept):
    """The line says what the training command keeps (issue: reward and ppo spoke of labels
    kept in the label cache, which training has none of)."""
    from rlaif.cli import run as run_rlaif

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(target, interrupt)
    capsys.readouterr()
    assert run_rlaif(args) == 130
    lines = capsys.readouterr().err.strip().splitlines()
    expected = {
        "nothing": "interrupted (Ctrl-C): nothing is saved (the reward model is written only at "
        "the end); run the command again to train from the start",
        "no policy": "interrupted (Ctrl-C): nothing is saved (the policy is written only at the "
        "end); run the command again to train from the start",
        "no checkpoint": "interrupted (Ctrl-C): no checkpoint is kept (without --save-every N "
        "one is saved only at the end); start again with a new --out, adding --save-every N to "
        "be able to --resume",
        "checkpoints": "interrupted (Ctrl-C): the checkpoints saved so far are kept in --out; "
        "run the same command with --resume to continue from the last one",
    }
    assert lines == [expected[kept]]
    assert "label cache" not in lines[0]


REWARD = ["reward", "t.jsonl", "--out", "o"]
PPO = ["ppo", "--prompts", "p.jsonl", "--out", "o"]
EVALUATE = ["evaluate", "--policy", "p", "--prompts", "p.jsonl", "--out", "o.json"]


@pytest.mark.parametrize(
    ("args", "target"),
    [
        ([*REWARD, "--learning-rate", "nan"], "rlaif.reward.train_reward_model"),
        ([*REWARD, "--epochs", "inf"], "rlaif.reward.train_reward_model"),
        ([*PPO, "--kl-coef", "nan"], "rlaif.ppo.run_ppo"),
        ([*PPO, "--cliprange", "NaN"], "rlaif.ppo.run_ppo"),
        ([*EVALUATE, "--temperature", "inf"], "rlaif.evaluate.evaluate_policy"),
    ],
)
def test_options_that_are_not_finite_numbers_are_refused(monkeypatch, capsys, args, target):
    """nan and inf pass every `< 0` and `<= 0` check (issue: `--learning-rate nan` was a torch
    ValueError traceback, exit 1; `--kl-coef nan` went into training)."""

    def trained(*_, **__):
        raise AssertionError("the command ran")

    monkeypatch.setattr(target, trained)
    code, _, err = run(args, capsys)
    assert_one_line_error(code, err, args[-2], "finite")


@pytest.mark.parametrize("extra", [["--labeler", "m"], ["--variant", "v"]])
def test_label_refuses_winner_with_labeler_or_variant(tmp_path, capsys, monkeypatch, extra):
    """--winner with --labeler or --variant: which one labels? (issue: the winner's, and the
    named labeler or variant was dropped without a word)"""
    monkeypatch.setenv("LABELBENCH_CACHE_DIR", str(tmp_path / "cache"))
    winner = tmp_path / "winner.json"
    winner.write_text(json.dumps({"labeler": "smollm2-135m", "variant": "instruction/base-0shot"}))
    args = ["label", "--data", tmp_path / "d.jsonl", "--out", tmp_path / "o", "--winner", winner]
    code, _, err = run([*args, *extra], capsys)
    assert_one_line_error(code, err, "rlaif label", "--winner", "not both")


@pytest.mark.parametrize(
    ("args", "target"),
    [
        (["reward", "train.jsonl", "--out", "o"], "rlaif.reward.train_reward_model"),
        (["ppo", "--prompts", "p.jsonl", "--out", "o"], "rlaif.ppo.run_ppo"),
    ],
)
def test_a_file_that_cannot_be_written_late_is_one_line(monkeypatch, capsys, args, target):
    """A read-only file in an existing output folder, or a full disk, when the model or data
    set is saved at the end (issue: a PermissionError traceback, exit 1)."""
    import errno

    def unwritable(*_, **__):
        raise PermissionError(errno.EPERM, "Operation not permitted", "o/model.safetensors")

    monkeypatch.setattr(target, unwritable)
    code, _, err = run(args, capsys)
    assert_one_line_error(code, err, "o/model.safetensors: Operation not permitted")


def test_ctrl_c_while_torch_loads_is_one_line():
    """`rlaif` loads torch, transformers and trl for seconds before any command runs; Ctrl-C
    then (issue: a KeyboardInterrupt traceback from inside an import, exit -2)."""
    import subprocess
    import sys

    code = """
import sys
class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == "rlaif.evaluate":
            raise KeyboardInterrupt
sys.meta_path.insert(0, CtrlC())
sys.argv = ["rlaif", "ppo", "--help"]
from rlaif.cli import main
main()
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 130 and "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("interrupted (Ctrl-C)")


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["reward"], "rlaif reward: Missing argument 'train'."),
        (["ppo", "--bogus"], "rlaif ppo: No such option: --bogus"),
    ],
)
def test_usage_errors_are_one_line_and_a_hint(capsys, args, problem):
    capsys.readouterr()
    assert run_app(app, args, prog_name="rlaif") == 2
    error, hint = capsys.readouterr().err.strip().splitlines()
    assert error.startswith(f"error: {problem}")
    assert hint == f"Try '{problem.split(':')[0]} --help' for help."


def test_reward_rejects_missing_and_malformed_data(tmp_path, tiny_lm_dir, capsys):
    from datasets import Dataset

    code, _, err = run(
        ["reward", tmp_path / "nope.json", "--out", tmp_path / "rm", "--model", tiny_lm_dir], capsys
    )
    assert_one_line_error(code, err, "nope.json", "no such")

    wrong = tmp_path / "wrong"
    Dataset.from_dict({"question": ["a"], "answer": ["b"]}).save_to_disk(str(wrong))
    code, _, err = run(["reward", wrong, "--out", tmp_path / "rm", "--model", tiny_lm_dir], capsys)
    assert_one_line_error(code, err, "missing column", "prompt")
    assert not (tmp_path / "rm").exists()

    data = write_comparisons(tmp_path / "c.jsonl")
    code, _, err = run(
        ["reward", data, "--out", tmp_path / "rm", "--model", tmp_path / "no-model"], capsys
    )
    assert_one_line_error(code, err, "no-model")


def test_ppo_rejects_missing_inputs_and_a_policy_without_eos(tmp_path, tiny_lm_dir, capsys):
    from transformers import AutoTokenizer

    prompts = write_comparisons(tmp_path / "c.jsonl")
    base = ["ppo", "--out", tmp_path / "ppo", "--policy", tiny_lm_dir]
    code, _, err = run(
        [*base, "--prompts", tmp_path / "none.json", "--reward-model", tiny_lm_dir], capsys
    )
    assert_one_line_error(code, err, "none.json")
    code, _, err = run([*base, "--prompts", prompts], capsys)
    assert_one_line_error(code, err, "--reward-model")
    code, _, err = run([*base, "--prompts", prompts, "--reward-model", tmp_path / "no-rm"], capsys)
    assert_one_line_error(code, err, "no-rm")

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    tokenizer.eos_token = None
    tokenizer.save_pretrained(tiny_lm_dir)
    code, _, err = run([*base, "--prompts", prompts, "--reward-model", tiny_lm_dir], capsys)
    assert_one_line_error(code, err, "EOS")
    assert not (tmp_path / "ppo" / "log.jsonl").exists()


def test_a_causal_lm_is_not_taken_for_a_reward_model(tmp_path, tiny_lm_dir, capsys):
    """A causal LM folder given as --reward-model (issue: loaded with a freshly drawn score head,
    and PPO trained against, or evaluate judged by, that random reward without a word)."""
    from labelbench.errors import ModelError
    from rlaif.reward_scoring import load_reward_model

    with pytest.raises(ModelError, match=r"score\.weight") as caught:
        load_reward_model(tiny_lm_dir)
    assert "not a reward model" in str(caught.value) and "rlaif reward" in str(caught.value)


@pytest.mark.parametrize(
    "args",
    [
        ["label", "--data", "d.jsonl", "--out", "o", "--limit", "0"],
        ["label", "--data", "d.jsonl", "--out", "o", "--max-new-tokens", "-1"],
        ["label", "--data", "d.jsonl", "--out", "o", "--max-tokens", "-5"],
        [*PPO, "--limit", "-3"],
    ],
)
def test_counts_below_one_are_usage_errors(capsys, args):
    """--limit 0, --max-tokens -5 (issue: accepted; a negative budget failed late, a zero
    limit ran on nothing): the option's own bound refuses them before anything loads."""
    capsys.readouterr()
    assert run_app(app, args, prog_name="rlaif") == 2
    error, hint = capsys.readouterr().err.strip().splitlines()
    assert error.startswith(f"error: rlaif {args[0]}: Invalid value for '{args[-2]}'"), error
    assert hint == f"Try 'rlaif {args[0]} --help' for help."


def test_ppo_resume_refuses_changed_settings(tmp_path, capsys):
    """--resume with another learning rate, batch size, reward model or part of the prompts
    (issue: the run went on with them, and ppo_config.json was overwritten: one log, two
    set-ups, one record)."""
    out = tmp_path / "ppo"
    (out / "checkpoint-1").mkdir(parents=True)
    (out / "checkpoint-1" / "ppo_state.json").write_text("{}")
    (out / "log.jsonl").write_text("{}\n")
    saved = {"policy": "p", "reward_model": "rm", "batch_size": 4, "learning_rate": 1e-5}
    saved.update({"data_split": None, "data_test_fraction": 0.2, "limit": None})
    (out / "ppo_config.json").write_text(json.dumps(saved))
    base = ["ppo", "--prompts", tmp_path / "none.jsonl", "--out", out, "--policy", "./p"]
    base += ["--reward-model", "rm", "--resume", "--updates", "9", "--batch-size", "4"]
    for changed, key in (
        (["--learning-rate", "0.5"], "learning_rate"),
        (["--reward-model", "other-rm"], "reward_model"),
        (["--split", "train"], "data_split"),  # another part of the prompts
        (["--test-fraction", "0.5"], "data_test_fraction"),
        (["--limit", "3"], "limit"),
    ):
        code, _, err = run([*base, *changed], capsys)
        assert_one_line_error(code, err, "ppo_config.json", f"--resume: {key} is")
    assert json.loads((out / "ppo_config.json").read_text()) == saved
    code, _, err = run(base, capsys)  # the same set-up, more updates: on to the next check
    assert_one_line_error(code, err, "rm: no such reward model directory")
    # (issue: fewer updates than the run has reached rewrote its policy and config, silently)
    (out / "checkpoint-5").mkdir()
    (out / "checkpoint-5" / "ppo_state.json").write_text("{}")
    code, _, err = run([*base, "--updates", "3"], capsys)
    assert_one_line_error(code, err, "--total-updates", "reached update 5", "at least 5")
    assert json.loads((out / "ppo_config.json").read_text()) == saved


def test_ppo_resume_refuses_a_prompts_file_with_other_content(tmp_path, capsys):
    """--resume with a prompts file whose content changed (issue: refused for a changed
    learning rate, but another set of prompts was trained on without a word). The same content
    under another spelling of the path goes on."""
    from rlaif.data import content_sha256

    prompts = write_comparisons(tmp_path / "prompts.jsonl", n_posts=4)
    out = tmp_path / "ppo"
    (out / "checkpoint-1").mkdir(parents=True)
    (out / "checkpoint-1" / "ppo_state.json").write_text("{}")
    (out / "log.jsonl").write_text("{}\n")
    saved = {"prompts": str(prompts), "prompts_sha256": content_sha256(prompts), "seed": 0}
    (out / "ppo_config.json").write_text(json.dumps(saved))
    respelled = tmp_path / "ppo" / ".." / "prompts.jsonl"
    base = ["ppo", "--out", out, "--policy", "./p", "--reward-model", tmp_path / "no-rm"]
    base += ["--resume", "--updates", "9"]
    code, _, err = run([*base, "--prompts", respelled], capsys)  # same content: next check
    assert_one_line_error(code, err, "no-rm: no such reward model directory")
    write_comparisons(prompts, n_posts=5)
    code, _, err = run([*base, "--prompts", respelled], capsys)
    assert_one_line_error(code, err, "ppo_config.json", "--resume: the prompts file", "other")
    assert json.loads((out / "ppo_config.json").read_text()) == saved


def test_label_and_evaluate_reject_incomplete_requests(tmp_path, tiny_lm_dir, capsys):
    data = write_comparisons(tmp_path / "c.jsonl")
    code, _, err = run(["label", "--out", tmp_path / "l", "--data", data], capsys)
    assert_one_line_error(code, err, "--winner")
    (tmp_path / "winner.json").write_text(
        json.dumps({"labeler": None, "variant": None, "reason": "no labeler x variant qualifies"})
    )
    code, _, err = run(
        ["label", "--out", tmp_path / "l", "--data", data, "--winner", tmp_path / "winner.json"],
        capsys,
    )
    assert_one_line_error(code, err, "no labeler x variant qualifies")
    code, _, err = run(
        ["label", "--out", tmp_path / "l", "--labeler", tiny_lm_dir, "--variant", "x"], capsys
    )
    assert_one_line_error(code, err, "--data")
    code, _, err = run(
        ["evaluate", "--policy", tiny_lm_dir, "--prompts", data, "--out", tmp_path / "e.json"],
        capsys,
    )
    assert_one_line_error(code, err, "judge")


def test_reward_ppo_evaluate_end_to_end(tmp_path, tiny_lm_dir, capsys, monkeypatch):
    monkeypatch.setenv("LABELBENCH_CACHE_DIR", str(tmp_path / "cache"))
    data = write_comparisons(tmp_path / "c.jsonl", n_posts=60)
    rm = tmp_path / "rm"
    code, _, err = run(
        [
            "reward",
            data,
            "--out",
            rm,
            "--model",
            tiny_lm_dir,
            "--split",
            "train",
            "--eval",
            data,
            "--eval-split",
            "test",
            "--epochs",
            "3",
            "--learning-rate",
            "3e-3",
            "--batch-size",
            "8",
        ],
        capsys,
    )
    assert code == 0, err
    metrics = json.loads((rm / "reward_metrics.json").read_text())
    assert metrics["loss"] == "Bradley-Terry"
    groups = [name for name in metrics["accuracy"] if name != "all"]
    assert groups and all(name.startswith("confidence") for name in groups)
    assert sum(metrics["accuracy"][g]["n"] for g in groups) == metrics["accuracy"]["all"]["n"]
    assert metrics["train_pairs"] + metrics["accuracy"]["all"]["n"] == 60
    # synthetic data: the human always prefers the longer summary
    assert metrics["baselines"]["longer_wins_accuracy"] == 1.0
    assert 0.0 <= metrics["baselines"]["untrained_head_accuracy"] <= 1.0

    ppo_dir = tmp_path / "ppo"
    args = [
        "ppo",
        "--prompts",
        data,
        "--out",
        ppo_dir,
        "--policy",
        tiny_lm_dir,
        "--reward-model",
        rm,
        "--updates",
        "2",
        "--batch-size",
        "4",
        "--num-minibatches",
        "2",
        "--ppo-epochs",
        "1",
        "--response-length",
        "6",
        "--save-every",
        "1",
        "--value-from-reward-model",
        "--kl-estimator",
        "k3",
    ]
    code, _, err = run(args, capsys)
    assert code == 0, err
    assert len((ppo_dir / "log.jsonl").read_text().splitlines()) == 2
    log = json.loads((ppo_dir / "log.jsonl").read_text().splitlines()[-1])
    for key in ("score", "kl", "entropy", "clip_fraction", "value_loss", "kl_coef"):
        assert key in log
    args[args.index("--updates") + 1] = "3"
    code, _, err = run(args, capsys)
    assert_one_line_error(code, err, "--resume")
    code, _, err = run([*args, "--resume"], capsys)
    assert code == 0, err
    assert [json.loads(x)["update"] for x in (ppo_dir / "log.jsonl").read_text().splitlines()] == [
        1,
        2,
        3,
    ]

    # the judge: a reward model trained on other posts than the policy's reward model and prompts
    # (issue 24: PPO's own reward model, trained on the policy's posts, is refused as the judge)
    judge = tmp_path / "judge"
    judge_data = write_comparisons(tmp_path / "judge.jsonl", n_posts=16, prefix="judge_")
    code, _, err = run(
        ["reward", judge_data, "--out", judge, "--model", tiny_lm_dir, "--batch-size", "8"], capsys
    )
    assert code == 0, err
    evaluate = ["evaluate", "--policy", ppo_dir / "policy", "--reference", tiny_lm_dir]
    evaluate += ["--prompts", data, "--split", "test", "--out", tmp_path / "e.json"]
    code, _, err = run([*evaluate, "--reward-model", rm], capsys)
    assert_one_line_error(code, err, str(rm), "not an independent judge", "--policy")

    result_path = tmp_path / "eval.json"
    code, _, err = run(
        [
            "evaluate",
            "--policy",
            ppo_dir / "policy",
            "--reference",
            tiny_lm_dir,
            "--prompts",
            data,
            "--split",
            "test",
            "--reward-model",
            judge,
            "--labeler",
            tiny_lm_dir,
            "--variant",
            "summarization/base-0shot",
            "--out",
            result_path,
            "--response-length",
            "6",
        ],
        capsys,
    )
    assert code == 0, err
    result = json.loads(result_path.read_text())
    for judge in ("reward_model", "labeler"):
        judged = result["judges"][judge]
        assert 0.0 <= judged["ci_low"] <= judged["win_rate"] <= judged["ci_high"] <= 1.0
        controlled = judged["length_controlled_win_rate"]
        if controlled is None:  # e.g. both policies wrote equally long responses everywhere
            assert judged["undefined"]["length_controlled_win_rate"], judged
        else:
            assert 0.0 < controlled < 1.0
        assert judged["n"] == result["n_prompts"]
    assert math.isfinite(result["mean_kl_to_reference"])
    assert result["lengths"]["policy"]["mean_words"] >= 0


def test_label_pairs_and_sampled_pairs_then_soft_reward(tmp_path, tiny_lm_dir, capsys, monkeypatch):
    from datasets import load_from_disk

    monkeypatch.setenv("LABELBENCH_CACHE_DIR", str(tmp_path / "cache"))
    data = write_comparisons(tmp_path / "c.jsonl", n_posts=20)
    winner = tmp_path / "winner.json"
    winner.write_text(
        json.dumps(
            {
                "labeler": "tiny",
                "labeler_spec": {"name": str(tiny_lm_dir), "label": "tiny"},
                "variant": "summarization/base-0shot",
            }
        )
    )
    labelled = tmp_path / "labelled"
    code, _, err = run(
        ["label", "--data", data, "--winner", winner, "--split", "train", "--out", labelled], capsys
    )
    assert code == 0, err
    dataset = load_from_disk(str(labelled))
    for column in ("prompt", "chosen", "rejected", "soft_label", "human_pref_chosen", "labeler"):
        assert column in dataset.column_names
    assert all(0.5 <= p <= 1.0 for p in dataset["soft_label"])
    assert all(text.startswith("SUBREDDIT: r/jobs") for text in dataset["prompt"])

    sampled = tmp_path / "sampled"
    code, _, err = run(
        [
            "label",
            "--prompts",
            data,
            "--policy",
            tiny_lm_dir,
            "--labeler",
            tiny_lm_dir,
            "--variant",
            "summarization/base-0shot",
            "--limit",
            "4",
            "--max-new-tokens",
            "6",
            "--out",
            sampled,
        ],
        capsys,
    )
    assert code == 0, err
    assert len(load_from_disk(str(sampled))) >= 1

    rm = tmp_path / "rm"
    code, _, err = run(
        [
            "reward",
            labelled,
            "--out",
            rm,
            "--model",
            tiny_lm_dir,
            "--batch-size",
            "4",
            "--max-prompt-tokens",
            "8",
        ],
        capsys,
    )
    assert code == 0, err
    metrics = json.loads((rm / "reward_metrics.json").read_text())
    assert metrics["loss"] == "soft-label cross-entropy"
    assert metrics["train_pairs"] == len(dataset)

    human = tmp_path / "rm-human"
    code, _, err = run(
        [
            "reward",
            labelled,
            "--labels",
            "human",
            "--out",
            human,
            "--model",
            tiny_lm_dir,
            "--batch-size",
            "4",
        ],
        capsys,
    )
    assert code == 0, err
    metrics = json.loads((human / "reward_metrics.json").read_text())
    assert metrics["loss"] == "Bradley-Terry" and metrics["labels"] == "human"
    assert metrics["train_pairs"] == len(dataset)  # synthetic data: every pair has a human label


def test_human_labels_reorder_the_pairs():
    from datasets import Dataset

    from rlaif.preferences import to_human_labels

    ai = Dataset.from_dict(
        {
            "prompt": ["p", "p", "p", "p"],
            "chosen": ["a", "b", "c", "d"],
            "rejected": ["x", "y", "z", "w"],
            "soft_label": [0.9, 0.8, 0.7, 0.6],
            "human_pref_chosen": [1.0, 0.0, 0.5, None],
        }
    )
    human = to_human_labels(ai)
    assert human["chosen"] == ["a", "y"] and human["rejected"] == ["x", "b"]
    assert "soft_label" not in human.column_names


def test_direct_rlaif_ppo_with_a_labeler_score(tmp_path, tiny_lm_dir, capsys):
    data = write_comparisons(tmp_path / "c.jsonl", n_posts=8)
    code, _, err = run(
        [
            "ppo",
            "--prompts",
            data,
            "--out",
            tmp_path / "ppo",
            "--policy",
            tiny_lm_dir,
            "--labeler",
            tiny_lm_dir,
            "--variant",
            "summarization/base-0shot",
            "--updates",
            "1",
            "--batch-size",
            "4",
            "--num-minibatches",
            "2",
            "--ppo-epochs",
            "1",
            "--response-length",
            "4",
        ],
        capsys,
    )
    assert code == 0, err
    log = json.loads((tmp_path / "ppo" / "log.jsonl").read_text())
    assert (
        -1.0 - 1.0 <= log["score"] <= 1.0
    )  # direct score in [-1, 1], minus the missing-EOS penalty


def tiny_winner(path, tiny_lm_dir):
    """A winner.json naming the tiny model in bfloat16 (not its registry default)."""
    spec = {"name": str(tiny_lm_dir), "label": "tiny", "dtype": "bfloat16", "chat": False}
    path.write_text(json.dumps({"labeler": "tiny", "labeler_spec": spec, "variant": VARIANT}))
    return path


VARIANT = "summarization/base-0shot"


@pytest.mark.parametrize("command", [EVALUATE, ["ppo", "--prompts", "p.jsonl", "--out", "o"]])
def test_evaluate_and_ppo_refuse_winner_with_labeler(tmp_path, capsys, command):
    winner = tmp_path / "winner.json"
    winner.write_text(json.dumps({"labeler": "smollm2-135m", "variant": VARIANT}))
    args = [*command, "--winner", winner, "--labeler", "m", "--variant", VARIANT]
    code, _, err = run(args, capsys)
    assert_one_line_error(code, err, f"rlaif {command[0]}", "--winner", "not both")


def test_evaluate_judges_with_the_winner_as_benchmarked(tmp_path, tiny_lm_dir, capsys, monkeypatch):
    """--winner judges with winner.json's labeler spec (its dtype here), not the registry's."""
    monkeypatch.setenv("LABELBENCH_CACHE_DIR", str(tmp_path / "cache"))
    data = write_comparisons(tmp_path / "c.jsonl", n_posts=6)
    out = tmp_path / "eval.json"
    args = ["evaluate", "--policy", tiny_lm_dir, "--reference", tiny_lm_dir, "--prompts", data]
    args += ["--winner", tiny_winner(tmp_path / "w.json", tiny_lm_dir), "--out", out]
    code, printed, err = run([*args, "--response-length", "4"], capsys)
    assert code == 0, err
    judged = json.loads(out.read_text())["judges"]["labeler"]
    assert judged["labeler_spec"]["dtype"] == "bfloat16" and judged["variant"] == VARIANT
    assert judged["n"] == 6
    # the labeler is kept as a judge, marked as not independent
    assert judged["independent"] is False and "not independent" in judged["note"]
    assert "labeler (not independent): win rate" in printed


def test_direct_rlaif_ppo_with_the_winner(tmp_path, tiny_lm_dir, capsys):
    data = write_comparisons(tmp_path / "c.jsonl", n_posts=8)
    args = ["ppo", "--prompts", data, "--out", tmp_path / "ppo", "--policy", tiny_lm_dir]
    args += ["--winner", tiny_winner(tmp_path / "w.json", tiny_lm_dir), "--updates", "1"]
    args += ["--batch-size", "4", "--num-minibatches", "2", "--ppo-epochs", "1"]
    code, _, err = run([*args, "--response-length", "4"], capsys)
    assert code == 0, err
    settings = json.loads((tmp_path / "ppo" / "ppo_config.json").read_text())
    assert settings["labeler"]["dtype"] == "bfloat16" and settings["variant"] == VARIANT


def test_evaluate_refuses_a_folder_as_its_output_file_before_sampling(
    tmp_path, tiny_lm_dir, capsys, monkeypatch
):
    """(issue: a folder given as --out failed only after both policies were sampled and judged)"""
    from rlaif import evaluate

    def sampling_started(*_, **__):
        raise AssertionError("the policies were loaded")

    monkeypatch.setattr(evaluate, "load_policy", sampling_started)
    data = write_comparisons(tmp_path / "c.jsonl", n_posts=4)
    judge = tmp_path / "judge"  # looks like a reward model until loaded
    shutil.copytree(tiny_lm_dir, judge)
    config = json.loads((judge / "config.json").read_text())
    config["architectures"] = ["LlamaForSequenceClassification"]
    (judge / "config.json").write_text(json.dumps(config))
    args = ["evaluate", "--policy", tiny_lm_dir, "--prompts", data, "--out", tmp_path]
    code, _, err = run([*args, "--reward-model", judge], capsys)
    assert_one_line_error(code, err, str(tmp_path), "output file is a directory")


def test_a_weak_winners_warning_does_not_come_before_an_input_error(tmp_path, capsys, monkeypatch):
    """(issue: "warning: ... does not beat always-longer" was printed before the real error, so
    the error was not one line); the warning still comes once the work starts."""
    monkeypatch.setenv("LABELBENCH_CACHE_DIR", str(tmp_path / "cache"))
    winner = tmp_path / "winner.json"
    spec = {"name": "smollm2-135m"}
    winner.write_text(
        json.dumps(
            {
                "labeler": "smollm2-135m",
                "labeler_spec": spec,
                "variant": VARIANT,
                "beats": {"always-longer": False},
            }
        )
    )
    args = ["label", "--winner", winner, "--out", tmp_path / "l"]
    code, _, err = run([*args, "--data", tmp_path / "missing.jsonl"], capsys)
    assert_one_line_error(code, err, "missing.jsonl")
    assert len(err.strip().splitlines()) == 1, err

    from rlaif import label as rlaif_label

    data = write_comparisons(tmp_path / "c.jsonl", n_posts=2)
    monkeypatch.setattr(
        rlaif_label, "label_with_ai", lambda *_, **__: (_ for _ in ()).throw(SystemExit(3))
    )
    code, _, err = run([*args, "--data", data], capsys)
    assert code == 3 and err.strip().startswith("warning: smollm2-135m") and "always-longer" in err


def test_ppo_says_when_its_prompts_cannot_fill_a_batch(tmp_path, tiny_lm_dir, capsys):
    """(issue: --limit 1 with --batch-size 16 trained on one prompt sixteen times, silently)"""
    data = write_comparisons(tmp_path / "c.jsonl", n_posts=4)
    args = ["ppo", "--prompts", data, "--out", tmp_path / "ppo", "--policy", tiny_lm_dir]
    args += ["--winner", tiny_winner(tmp_path / "w.json", tiny_lm_dir)]
    args += ["--updates", "1", "--limit", "1"]
    args += ["--batch-size", "4", "--num-minibatches", "2", "--ppo-epochs", "1"]
    code, _, err = run([*args, "--response-length", "4", "--no-progress"], capsys)
    assert code == 0, err
    assert "note: 1 prompt(s) for a batch of 4: every batch repeats prompts" in err


def test_the_commands_list_keeps_each_sentence_whole(capsys, monkeypatch):
    """A docstring's line breaks do not break a command's help mid-sentence in the list."""
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    row = next(line for line in out.splitlines() if line.strip("│ ").startswith("reward "))
    assert "cross-entropy on AI labels, Bradley-Terry on hard (human) labels, human labels" in row
