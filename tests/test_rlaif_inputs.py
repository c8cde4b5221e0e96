"""rlaif inputs checked before training: soft labels, nothing left to train on, a non-finite loss,
your own tables through --format columns --map, options written once."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import pytest
from test_rlaif_cli import assert_one_line_error, run, write_comparisons


def soft_dataset(path, labels):
    from datasets import Dataset

    n = len(labels)
    Dataset.from_dict(
        {
            "id": [f"pair-{i}" for i in range(n)],
            "prompt": ["Summary: "] * n,
            "chosen": [" the post says the user wants advice"] * n,
            "rejected": [" short"] * n,
            "soft_label": labels,
        }
    ).save_to_disk(str(path))
    return path


@pytest.mark.parametrize("bad", [math.nan, 1.7, -0.2, math.inf])
def test_soft_labels_must_be_finite_probabilities(tmp_path, tiny_lm_dir, capsys, bad):
    labels = [0.9, 0.8, bad, 0.7]
    data = soft_dataset(tmp_path / "labelled", labels)
    out = tmp_path / "rm"
    code, _, err = run(["reward", data, "--out", out, "--model", tiny_lm_dir], capsys)
    assert_one_line_error(code, err, "labelled record 2", "soft_label", "pair-2", "[0, 1]")
    assert not out.exists()


def test_a_non_finite_loss_stops_training_and_saves_nothing(tmp_path, tiny_tokenizer):
    from conftest import build_tiny_reward_model
    from datasets import Dataset
    from test_rlaif_reward import longer_is_better

    from labelbench.errors import LabelbenchError
    from rlaif.reward_config import SoftRewardConfig
    from rlaif.reward_trainer import NonFiniteLossError, SoftLabelRewardTrainer

    rows = longer_is_better(8, seed=1)
    rows["soft_label"] = [0.9, 0.8, math.nan, 0.7, 0.6, 0.9, 0.8, 0.7]  # past the CLI's check
    out = tmp_path / "rm"
    trainer = SoftLabelRewardTrainer(
        model=build_tiny_reward_model(tiny_tokenizer),
        args=SoftRewardConfig(output_dir=str(out), per_device_train_batch_size=8, seed=0),
        train_dataset=Dataset.from_dict(rows),
        processing_class=tiny_tokenizer,
    )
    with pytest.raises(NonFiniteLossError, match="step 1: the loss is nan") as raised:
        trainer.train()
    assert isinstance(raised.value, LabelbenchError)  # one line, exit 2 in the CLI
    assert not list(out.rglob("*.safetensors")) and not list(out.rglob("*.bin"))


def test_reward_with_nothing_to_train_on_fails_before_training(tmp_path, tiny_lm_dir, capsys):
    data = write_comparisons(tmp_path / "c.jsonl", n_posts=12)
    out = tmp_path / "rm"
    base = ["reward", data, "--out", out, "--model", tiny_lm_dir]
    code, _, err = run([*base, "--max-length", "8"], capsys)
    assert_one_line_error(code, err, "no pair left", "--max-length 8")
    code, _, err = run([*base, "--limit", "0"], capsys)
    assert_one_line_error(code, err, "--limit must be at least 1")
    code, _, err = run([*base, "--split", "test", "--test-fraction", "0.01"], capsys)
    assert code == 0 or "no records in split" in err
    assert not (out / "model.safetensors").exists()


def write_own_table(path, n=24):
    """A CSV of the user's own shape: query, two responses, a winner column with 1/2."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["query", "first", "second", "winner", "post"])
        writer.writeheader()
        for i in range(n):
            long_text = "the post says the user wants advice about a friend and a job " * 2
            a, b = (long_text, "short") if i % 2 else ("short", long_text)
            writer.writerow(
                {
                    "query": f"post number {i} about a job",
                    "first": a,
                    "second": b,
                    "winner": 1 if i % 2 else 2,
                    "post": f"p{i // 2}",
                }
            )
    return path


MAP = "context=query,response_a=first,response_b=second,label=winner,group_id=post"


def test_label_and_reward_read_your_own_table_with_a_map(
    tmp_path, tiny_lm_dir, capsys, monkeypatch
):
    from datasets import load_from_disk

    monkeypatch.setenv("LABELBENCH_CACHE_DIR", str(tmp_path / "cache"))
    table = write_own_table(tmp_path / "mine.csv")
    code, _, err = run(
        [
            "label",
            "--data",
            table,
            "--out",
            tmp_path / "x",
            "--labeler",
            tiny_lm_dir,
            "--variant",
            "instruction/base-0shot",
        ],
        capsys,
    )
    assert code == 2 and "--map" in err  # without a map the shape is not known
    labelled = tmp_path / "labelled"
    args = [
        "label",
        "--data",
        table,
        "--format",
        "columns",
        "--map",
        MAP,
        "--labeler",
        tiny_lm_dir,
        "--variant",
        "instruction/base-0shot",
        "--out",
        labelled,
    ]
    code, _, err = run(args, capsys)
    assert code == 0, err
    dataset = load_from_disk(str(labelled))
    assert len(dataset) == 24
    assert all(prompt.startswith("post number") for prompt in dataset["prompt"])
    assert sorted(set(dataset["human_pref_chosen"])) <= [0.0, 1.0]

    rm = tmp_path / "rm"
    args = [
        "reward",
        table,
        "--format",
        "columns",
        "--map",
        MAP,
        "--out",
        rm,
        "--model",
        tiny_lm_dir,
        "--batch-size",
        "4",
        "--split",
        "train",
        "--eval",
        table,
        "--eval-split",
        "test",
    ]
    code, _, err = run(args, capsys)
    assert code == 0, err
    metrics = json.loads((rm / "reward_metrics.json").read_text())
    assert metrics["loss"] == "Bradley-Terry"
    assert metrics["train_pairs"] + metrics["accuracy"]["all"]["n"] == 24
    # the longer response always wins in this table, in the held-out part too
    assert metrics["baselines"]["longer_wins_accuracy"] == 1.0

    code, _, err = run(
        [
            "reward",
            table,
            "--format",
            "columns",
            "--map",
            "context=query",
            "--out",
            tmp_path / "rm2",
            "--model",
            tiny_lm_dir,
        ],
        capsys,
    )
    assert_one_line_error(code, err, "--map")


def test_skip_invalid_counts_bad_rows(tmp_path, tiny_lm_dir, capsys, monkeypatch):
    monkeypatch.setenv("LABELBENCH_CACHE_DIR", str(tmp_path / "cache"))
    table = write_own_table(tmp_path / "mine.csv", n=8)
    with table.open("a") as handle:
        handle.write("post x,,,1,p9\n")  # both responses empty: nothing to compare
    args = [
        "label",
        "--data",
        table,
        "--format",
        "columns",
        "--map",
        MAP,
        "--labeler",
        tiny_lm_dir,
        "--variant",
        "instruction/base-0shot",
        "--out",
        tmp_path / "l",
    ]
    code, _, err = run(args, capsys)
    assert_one_line_error(code, err, "mine.csv:10")
    code, _, err = run([*args, "--skip-invalid"], capsys)
    assert code == 0, err
    assert "1 invalid records skipped" in err


def test_every_ppo_setting_is_an_option_written_once():
    """The ppo command's options are PPOConfig's fields; nothing else spells them."""
    import typer.main

    from rlaif.cli import app
    from rlaif.data import DataOptions
    from rlaif.ppo_config import PPOConfig

    command = typer.main.get_command(app).commands["ppo"]
    names = {param.name for param in command.params}
    fields = {f.name for f in dataclasses.fields(PPOConfig)}
    assert fields <= names
    assert "updates" not in names  # an alias of --total-updates, not a second setting
    data_fields = {f.name for f in dataclasses.fields(DataOptions)}
    own = names - fields - data_fields
    assert own == {
        "prompts",
        "out",
        "policy",
        "reward_model",
        "winner",
        "labeler",
        "variant",
        "limit",
        "resume",
    }
    source = (Path(__file__).resolve().parents[1] / "rlaif" / "cli.py").read_text()
    ppo_source = source[source.index("def ppo(") : source.index("def evaluate(")]
    for name in fields:
        assert f"{name}:" not in ppo_source, name
        assert f'"--{name.replace("_", "-")}"' not in source, name
    bench = (Path(__file__).resolve().parents[1] / "bench" / "ppo.py").read_text()
    for name in fields:
        assert f'"--{name.replace("_", "-")}"' not in bench, name


def test_bad_setting_is_one_line(tmp_path, tiny_lm_dir, capsys):
    data = write_comparisons(tmp_path / "c.jsonl")
    code, _, err = run(
        [
            "ppo",
            "--prompts",
            data,
            "--out",
            tmp_path / "p",
            "--reward-model",
            tiny_lm_dir,
            "--batch-size",
            "6",
            "--num-minibatches",
            "4",
        ],
        capsys,
    )
    assert_one_line_error(code, err, "--batch-size must be a multiple of --num-minibatches")
    code, _, err = run(
        [
            "ppo",
            "--prompts",
            data,
            "--out",
            tmp_path / "p",
            "--reward-model",
            tiny_lm_dir,
            "--kl-estimator",
            "k2",
        ],
        capsys,
    )
    assert code == 2 and "k2" in err
    code, _, err = run(
        [
            "ppo",
            "--prompts",
            data,
            "--out",
            tmp_path / "p",
            "--labeler",
            tiny_lm_dir,
            "--variant",
            "summarization/base-0shot",
            "--value-from-reward-model",
        ],
        capsys,
    )
    assert_one_line_error(code, err, "--value-from-reward-model", "needs --reward-model")


def test_option_flags_come_from_the_config_fields():
    from rlaif.options import flag
    from rlaif.ppo_config import PPOConfig

    assert flag(PPOConfig, "save_every") == "--save-every"
    with pytest.raises(KeyError):
        flag(PPOConfig, "save_evry")


def test_a_failed_setting_check_names_the_flags_not_the_fields(tmp_path, capsys):
    """(issue: "options: test_fraction must be between 0 and 1" named the config's field)"""
    data = write_comparisons(tmp_path / "c.jsonl")
    code, _, err = run(["reward", data, "--out", tmp_path / "rm", "--test-fraction", "2"], capsys)
    assert_one_line_error(code, err, "--test-fraction must be between 0 and 1")
    code, _, err = run(["reward", data, "--out", tmp_path / "rm", "--split", "nope"], capsys)
    assert_one_line_error(code, err, "--split must be train or test")


@pytest.mark.parametrize(
    "extra",
    [["--eval-split", "test"], ["--eval-limit", "5"], ["--group-by", "subreddit"]],
)
def test_held_out_options_without_eval_are_refused(tmp_path, capsys, extra):
    """(issue: --eval-split, --eval-limit and --group-by without --eval were ignored silently)"""
    data = write_comparisons(tmp_path / "c.jsonl")
    code, _, err = run(["reward", data, "--out", tmp_path / "rm", *extra], capsys)
    assert_one_line_error(code, err, extra[0], "give --eval FILE too")
    assert not (tmp_path / "rm").exists()


def test_unknown_eval_split_is_one_line_naming_the_flag(tmp_path, capsys):
    """(issue: --eval-split nope ended in a ValueError traceback from the data options)"""
    data = write_comparisons(tmp_path / "c.jsonl")
    code, _, err = run(
        ["reward", data, "--out", tmp_path / "rm", "--eval", data, "--eval-split", "nope"], capsys
    )
    assert_one_line_error(code, err, "--eval-split", "must be train or test")
    assert not (tmp_path / "rm").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--learning-rate", "0"], "--learning-rate must be positive"),
        (["--cliprange", "-0.2"], "--cliprange must be positive"),
        (["--cliprange-value", "0"], "--cliprange-value must be positive"),
        (["--max-grad-norm", "0"], "--max-grad-norm must be positive"),
        (["--vf-coef", "-1"], "--vf-coef must not be negative"),
        (["--gamma", "1.5"], "--gamma must be between 0 and 1"),
        (["--lam", "-0.1"], "--lam must be between 0 and 1"),
        (["--kl-horizon", "0"], "--kl-horizon must be at least 1"),
        (["--adaptive-kl", "--target-kl", "0"], "--target-kl must be positive with --adaptive-kl"),
    ],
)
def test_ppo_settings_out_of_range_are_refused_before_work(
    tmp_path, tiny_lm_dir, capsys, extra, message
):
    """(issue: a zero learning rate, a clip range below 0, gamma above 1 or a zero KL horizon
    started training, and the last divided by zero in the adaptive controller)"""
    data = write_comparisons(tmp_path / "c.jsonl")
    args = ["ppo", "--prompts", data, "--out", tmp_path / "p", "--reward-model", tiny_lm_dir]
    code, _, err = run([*args, *extra], capsys)
    assert_one_line_error(code, err, message)
    assert not (tmp_path / "p").exists()


def test_reward_learning_rate_message_names_only_that_flag(tmp_path, capsys):
    data = write_comparisons(tmp_path / "c.jsonl")
    code, _, err = run(["reward", data, "--out", tmp_path / "rm", "--learning-rate", "-1"], capsys)
    assert_one_line_error(code, err, "--learning-rate must be positive")
    assert "--epochs" not in err


@pytest.mark.parametrize("source", ["--data", "--prompts"])
def test_label_refuses_a_variant_of_another_task_before_loading_any_model(
    tmp_path, capsys, monkeypatch, source
):
    """(issue: the task mismatch was found only after the policy or labeler was loaded)"""
    import rlaif.evaluate
    from labelbench.labeling import labeler

    def must_not_load(*args, **kwargs):
        raise AssertionError("a model was loaded before the task check")

    monkeypatch.setattr(labeler, "open_labeler", must_not_load)
    monkeypatch.setattr(rlaif.evaluate, "load_policy", must_not_load)
    data = write_comparisons(tmp_path / "c.jsonl")
    args = ["label", source, data, "--out", tmp_path / "l", "--labeler", "smollm2-135m"]
    code, _, err = run([*args, "--variant", "dialogue_helpful/base-0shot"], capsys)
    assert_one_line_error(code, err, f"{data}:1:", "is a summarization item, but variant")


def test_ppo_refuses_a_reward_model_folder_without_a_model_before_loading_the_policy(
    tmp_path, capsys, monkeypatch
):
    """(issue: an empty --reward-model folder was found bad only after the policy loaded)"""
    import rlaif.evaluate

    def must_not_load(*args, **kwargs):
        raise AssertionError("the policy was loaded before the reward model was checked")

    monkeypatch.setattr(rlaif.evaluate, "load_policy", must_not_load)
    data = write_comparisons(tmp_path / "c.jsonl")
    (tmp_path / "rm").mkdir()
    args = ["ppo", "--prompts", data, "--out", tmp_path / "p", "--reward-model", tmp_path / "rm"]
    code, _, err = run(args, capsys)
    assert code == 2 and "no config.json" in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["ppo", "evaluate"])
def test_direct_rlaif_and_evaluate_refuse_a_variant_of_another_task_before_loading(
    tmp_path, capsys, monkeypatch, command
):
    """(issue: rlaif ppo trained with a dialogue variant on TL;DR posts; rlaif evaluate found
    the mismatch only after loading both policies and sampling)"""
    import rlaif.evaluate

    def must_not_load(*args, **kwargs):
        raise AssertionError("a model was loaded before the task check")

    monkeypatch.setattr(rlaif.evaluate, "load_policy", must_not_load)
    data = write_comparisons(tmp_path / "c.jsonl")
    out = tmp_path / ("p" if command == "ppo" else "e.json")
    args = [command, "--prompts", data, "--out", out, "--labeler", "smollm2-135m"]
    if command == "evaluate":
        args += ["--policy", "smollm2-135m"]
    else:  # fewer prompts than a batch: the refusal still comes first, alone
        args += ["--batch-size", "32"]
    code, _, err = run([*args, "--variant", "dialogue_harmless/base-0shot"], capsys)
    assert_one_line_error(code, err, f"{data}:1:", "is a summarization item", "is for dialogue")
    assert not out.exists()


def test_a_winner_with_an_unknown_variant_names_the_file_and_field(tmp_path, capsys):
    winner = tmp_path / "winner.json"
    spec = {"name": "smollm2-135m"}
    winner.write_text(
        json.dumps({"labeler": "smollm2-135m", "labeler_spec": spec, "variant": "summ/x"})
    )
    data = write_comparisons(tmp_path / "c.jsonl")
    args = ["label", "--data", data, "--out", tmp_path / "l", "--winner", winner]
    code, _, err = run(args, capsys)
    assert_one_line_error(code, err, f"{winner}: field 'variant': unknown variant 'summ/x'")


def test_a_group_by_key_no_comparison_has_is_refused(tmp_path, capsys):
    """(issue: --group-by confidance made a one-group table, 'confidance=None', silently)"""
    data = write_comparisons(tmp_path / "c.jsonl")
    args = ["reward", data, "--out", tmp_path / "rm", "--split", "train", "--eval", data]
    args += ["--eval-split", "test", "--group-by", "confidance"]
    code, _, err = run(args, capsys)
    assert_one_line_error(code, err, "--group-by", "has 'confidance'", "use confidence or one of")
    assert not (tmp_path / "rm").exists()
