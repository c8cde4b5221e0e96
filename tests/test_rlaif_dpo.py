"""rlaif dpo: the soft-label DPO loss against hand computations, TRL's loss kept for hard labels,
mixed human + AI labels with each row's source recorded, and its bad inputs."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from test_rlaif_cli import assert_one_line_error, run, write_comparisons

from rlaif.dpo import SoftLabelDPOTrainer, soft_dpo_loss
from rlaif.dpo_config import SoftDPOConfig

PROMPTS = ["Summary: the post", "Summary: a job", "Summary: friend", "Summary: advice"]
CHOSEN = [" short job", " friend advice", " the user", " job"]
REJECTED = [" a much longer one", " hello", " the post says", " advice friend job"]
SOFT = [0.9, 0.6, 1.0, 0.75]


def test_soft_dpo_loss_equals_a_hand_computed_example():
    # beta 0.5; row 1: delta 2, p 0.8 -> x = 1: -(0.8 log s(1) + 0.2 log s(-1))
    #   log s(1) = -log(1 + e^-1) = -0.3132617, log s(-1) = -1.3132617
    #   -> 0.8 * 0.3132617 + 0.2 * 1.3132617 = 0.5132617
    # row 2: delta -1, p 1 -> x = -0.5: -log s(-0.5) = log(1 + e^0.5) = 0.9740770
    loss = soft_dpo_loss(torch.tensor([2.0, -1.0]), torch.tensor([0.8, 1.0]), beta=0.5)
    assert loss.tolist() == pytest.approx([0.5132617, 0.9740770], abs=1e-6)
    # p = 1 is DPO's -log sigmoid(beta * delta); p = 0.5 is log 2 + |x|/2-free: symmetric in x
    delta = torch.tensor([0.3, -2.0, 5.0])
    assert torch.allclose(
        soft_dpo_loss(delta, torch.ones(3), 0.1), -torch.nn.functional.logsigmoid(0.1 * delta)
    )
    half = soft_dpo_loss(delta, torch.full((3,), 0.5), 1.0)
    assert torch.allclose(half, soft_dpo_loss(-delta, torch.full((3,), 0.5), 1.0))


def dataset(soft: bool = True):
    from datasets import Dataset

    rows = {"prompt": PROMPTS, "chosen": CHOSEN, "rejected": REJECTED}
    if soft:
        rows["soft_label"] = SOFT
    return Dataset.from_dict(rows)


def trainer(tmp_path, tokenizer, model, *, precompute, ref_model=None, soft=True, beta=0.5):
    args = SoftDPOConfig(
        output_dir=str(tmp_path / "dpo"),
        per_device_train_batch_size=4,
        precompute_ref_log_probs=precompute,
        use_cpu=True,
        beta=beta,
        seed=0,
        logging_steps=1000,
    )
    return SoftLabelDPOTrainer(
        model=model,
        ref_model=ref_model,
        args=args,
        train_dataset=dataset(soft),
        processing_class=tokenizer,
    )


def summed_logps(model, tokenizer, prompt: str, response: str) -> torch.Tensor:
    """log p(response + EOS | prompt), summed over the response tokens, from plain logits."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    full = tokenizer(prompt + response + tokenizer.eos_token)["input_ids"]
    assert full[: len(prompt_ids)] == prompt_ids
    ids = torch.tensor([full])
    with torch.no_grad():
        logits = model(input_ids=ids).logits.float()
    logps = torch.log_softmax(logits[0, :-1], dim=-1)
    targets = ids[0, 1:]
    picked = logps.gather(-1, targets[:, None])[:, 0]
    return picked[len(prompt_ids) - 1 :].sum()


@pytest.mark.parametrize("precompute", [True, False])
def test_trainer_soft_loss_equals_the_hand_computed_loss(tmp_path, tiny_tokenizer, precompute):
    """The trainer's loss on a batch is the mean of -[p log s(bD) + (1-p) log s(-bD)], with D
    computed here from the models' own logits (reference: a frozen copy of the start, read from
    precomputed log-probabilities, or a separate reference model)."""
    from conftest import build_tiny_model

    model = build_tiny_model(tiny_tokenizer, seed=0)
    reference = copy.deepcopy(model) if not precompute else None
    start = copy.deepcopy(model)
    dpo = trainer(tmp_path, tiny_tokenizer, model, precompute=precompute, ref_model=reference)
    with torch.no_grad():  # move the policy away from its reference, so that D is not 0
        generator = torch.Generator().manual_seed(1)
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    batch = next(iter(dpo.get_train_dataloader()))
    labels = batch["soft_label"].clone()
    # the loader may shuffle: find each row by its (distinct) soft label
    order = [min(range(4), key=lambda j: abs(SOFT[j] - p)) for p in labels.tolist()]
    model.train()
    loss = dpo.compute_loss(model, dict(batch))
    model.eval()
    deltas = []
    for i in order:
        chosen = summed_logps(model, tiny_tokenizer, PROMPTS[i], CHOSEN[i]) - summed_logps(
            start, tiny_tokenizer, PROMPTS[i], CHOSEN[i]
        )
        rejected = summed_logps(model, tiny_tokenizer, PROMPTS[i], REJECTED[i]) - summed_logps(
            start, tiny_tokenizer, PROMPTS[i], REJECTED[i]
        )
        deltas.append((chosen - rejected).item())
    assert max(abs(d) for d in deltas) > 0.05  # the example is not the trivial D = 0
    by_hand = 0.0
    for delta, p in zip(deltas, labels.tolist(), strict=True):
        x = 0.5 * delta
        by_hand += -(
            p * math.log(1 / (1 + math.exp(-x))) + (1 - p) * math.log(1 / (1 + math.exp(x)))
        )
    by_hand /= len(deltas)
    assert loss.item() == pytest.approx(by_hand, abs=1e-4)
    # the same batch as hard labels is TRL's own DPO loss, which differs
    hard = {k: v for k, v in batch.items() if k != "soft_label"}
    hard_loss = dpo.compute_loss(model, hard).item()
    dpo_by_hand = sum(-math.log(1 / (1 + math.exp(-0.5 * d))) for d in deltas) / len(deltas)
    assert hard_loss == pytest.approx(dpo_by_hand, abs=1e-4)
    assert abs(hard_loss - loss.item()) > 1e-3
    ones = dict(batch, soft_label=torch.ones_like(labels))
    assert dpo.compute_loss(model, ones).item() == pytest.approx(hard_loss, abs=1e-6)


def test_soft_labels_with_another_loss_are_refused(tmp_path, tiny_tokenizer):
    from conftest import build_tiny_model

    args = SoftDPOConfig(
        output_dir=str(tmp_path / "dpo"),
        use_cpu=True,
        loss_type=["ipo"],
        precompute_ref_log_probs=True,
        logging_steps=1000,
    )
    with pytest.raises(ValueError, match="soft labels need the sigmoid DPO loss"):
        SoftLabelDPOTrainer(
            model=build_tiny_model(tiny_tokenizer),
            args=args,
            train_dataset=dataset(soft=True),
            processing_class=tiny_tokenizer,
        )


def mixed_dataset(path):
    """Six AI-labelled pairs; four have a human label, two of which disagree with the AI."""
    from datasets import Dataset

    rows = {
        "id": [f"pair-{i}" for i in range(6)],
        "group_id": [f"post-{i}" for i in range(6)],
        "prompt": [f"Summary of post {i}:" for i in range(6)],
        "chosen": [" the user wants advice about a job", " friend", " short", " job", " a", " b"],
        "rejected": [" short", " the post says", " the user wants advice", " summary", " c", " d"],
        "soft_label": [0.9, 0.8, 0.7, 0.95, 0.55, 0.6],
        "human_pref_chosen": [1.0, 0.0, 0.0, None, 1.0, None],
    }
    Dataset.from_dict(rows).save_to_disk(str(path))
    return path, rows


@pytest.mark.parametrize("command", ["dpo", "reward"])
def test_mixed_labels_train_with_each_rows_source_recorded(tmp_path, tiny_lm_dir, capsys, command):
    """Human labels where a pair has one (the humans' side becomes chosen, soft label 1), AI
    labels elsewhere; the share of each source in the metrics, each row's source in
    training_pairs.jsonl; --human-limit keeps that many human labels."""
    data, rows = mixed_dataset(tmp_path / "mixed")
    out = tmp_path / command
    model = ["--policy", tiny_lm_dir] if command == "dpo" else ["--model", tiny_lm_dir]
    args = [command, data, "--out", out, *model, "--labels", "mixed", "--batch-size", "2"]
    code, _, err = run(args, capsys)
    assert code == 0, err
    metrics = json.loads((out / f"{command}_metrics.json").read_text())
    assert metrics["labels"] == "mixed"
    assert metrics["label_sources"]["counts"] == {"human": 4, "ai": 2}
    assert metrics["label_sources"]["shares"]["human"] == pytest.approx(4 / 6)
    pairs = {
        row["id"]: row
        for row in map(json.loads, (out / "training_pairs.jsonl").read_text().splitlines())
    }
    assert {i: r["label_source"] for i, r in pairs.items()} == {
        "pair-0": "human",
        "pair-1": "human",
        "pair-2": "human",
        "pair-3": "ai",
        "pair-4": "human",
        "pair-5": "ai",
    }
    # humans preferred the AI's rejected side of pair-1 and pair-2: it is now chosen, p = 1
    assert pairs["pair-1"]["chosen"] == rows["rejected"][1] and pairs["pair-1"]["soft_label"] == 1
    assert pairs["pair-0"]["chosen"] == rows["chosen"][0]
    assert pairs["pair-3"]["soft_label"] == pytest.approx(0.95)  # the AI's label is kept
    groups = json.loads(
        ((out / "policy") if command == "dpo" else out).joinpath("training_groups.json").read_text()
    )
    assert groups["groups"] == [f"post-{i}" for i in range(6)] and groups["command"] == command

    limited = tmp_path / f"{command}-limited"
    code, _, err = run([*args[:3], limited, *args[4:], "--human-limit", "1"], capsys)
    assert code == 0, err
    metrics = json.loads((limited / f"{command}_metrics.json").read_text())
    assert metrics["label_sources"]["counts"] == {"human": 1, "ai": 5}


def test_human_labels_file_labels_the_pairs_it_has(tmp_path, tiny_lm_dir, capsys):
    """--human-labels FILE: comparisons (any format) label the pairs they share with the AI
    dataset; the others keep their AI label."""
    from rlaif.data import DataOptions, load_comparisons
    from rlaif.preferences import ai_preference_dataset

    comparisons = load_comparisons(
        write_comparisons(tmp_path / "all.jsonl", n_posts=8), DataOptions()
    )
    ai = ai_preference_dataset(comparisons, [0.2 if i % 2 else 0.7 for i in range(8)])
    ai.remove_columns("human_pref_chosen").save_to_disk(str(tmp_path / "ai"))
    human = write_comparisons(tmp_path / "human.jsonl", n_posts=3)  # the first 3 posts
    out = tmp_path / "dpo"
    args = ["dpo", tmp_path / "ai", "--out", out, "--policy", tiny_lm_dir, "--batch-size", "4"]
    code, _, err = run([*args, "--human-labels", human], capsys)
    assert code == 0, err
    metrics = json.loads((out / "dpo_metrics.json").read_text())
    assert metrics["labels"] == "mixed" and metrics["label_sources"]["counts"] == {
        "human": 3,
        "ai": 5,
    }
    sources = [json.loads(x) for x in (out / "training_pairs.jsonl").read_text().splitlines()]
    by_post = {row["group_id"]: row["label_source"] for row in sources}
    assert by_post == {f"t3_{i}": "human" if i < 3 else "ai" for i in range(8)}

    # a human file that shares no pair with the dataset
    other = write_comparisons(tmp_path / "other.jsonl", n_posts=3, seed=9)
    code, _, err = run([*args[:3], tmp_path / "dpo2", *args[4:], "--human-labels", other], capsys)
    assert_one_line_error(code, err, "other.jsonl", "none of its", "training pairs")


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--loss", "robust", "--label-smoothing", "0.1"], ["--loss", "soft ones", "--hard"]),
        (["--label-smoothing", "0.1"], ["--label-smoothing", "--loss robust"]),
        (["--min-confidence", "0.3"], ["--min-confidence", "0.5"]),
        (["--min-confidence", "0.99"], ["--min-confidence 0.99", "none of the"]),
        (["--labels", "ai", "--human-limit", "2"], ["--human-limit", "mixed"]),
        (["--labels", "human", "--human-labels", "x.jsonl"], ["--human-labels", "mixed"]),
        (["--beta", "0"], ["--beta", "positive"]),
        (["--reference", "no-such-model-folder/"], ["no-such-model-folder"]),
    ],
)
def test_bad_dpo_inputs_are_one_line(tmp_path, tiny_lm_dir, capsys, extra, needles):
    data, _ = mixed_dataset(tmp_path / "mixed")
    out = tmp_path / "dpo"
    code, _, err = run(["dpo", data, "--out", out, "--policy", tiny_lm_dir, *extra], capsys)
    assert_one_line_error(code, err, *needles)
    assert not (out / "policy").exists()


def test_mixed_labels_without_any_human_label_are_refused(tmp_path, tiny_lm_dir, capsys):
    from datasets import load_from_disk

    data, _ = mixed_dataset(tmp_path / "mixed")
    unlabelled = load_from_disk(str(data)).map(lambda row: {"human_pref_chosen": None})
    unlabelled.save_to_disk(str(tmp_path / "ai-only"))
    args = ["dpo", tmp_path / "ai-only", "--out", tmp_path / "o", "--policy", tiny_lm_dir]
    code, _, err = run([*args, "--labels", "mixed"], capsys)
    assert_one_line_error(code, err, "ai-only", "human_pref_chosen", "no pair here has a human")


def test_dpo_refuses_ai_labels_that_human_comparisons_lack(tmp_path, tiny_lm_dir, capsys):
    data = write_comparisons(tmp_path / "c.jsonl", n_posts=4)
    for labels in ("ai", "mixed"):
        args = ["dpo", data, "--out", tmp_path / "o", "--policy", tiny_lm_dir, "--labels", labels]
        code, _, err = run(args, capsys)
        assert_one_line_error(code, err, "c.jsonl", f"--labels {labels}", "no AI labels")
    code, _, err = run(["dpo", tmp_path / "none", "--out", tmp_path / "o"], capsys)
    assert_one_line_error(code, err, "none", "no such")


def test_dpo_learns_a_preference_that_holds_on_new_prompts(tmp_path, tiny_lm_dir, capsys):
    """Pairs whose chosen side starts with " job": the loss falls, and on prompts it never saw
    the trained policy's margin log p(chosen) - log p(rejected) grows over the start's."""
    import random

    from datasets import Dataset

    from rlaif.evaluate import load_policy

    words = ["the", "post", "says", "user", "wants", "advice", "friend", "summary", "short"]
    rng = random.Random(0)

    def pairs(numbers):
        rows = {"id": [], "group_id": [], "prompt": [], "chosen": [], "rejected": []}
        for i in numbers:
            picked = rng.choices(words, k=4)
            rows["id"].append(f"p{i}")
            rows["group_id"].append(f"post{i}")
            rows["prompt"].append(f"Summary of post {i}:")
            rows["chosen"].append(" job " + " ".join(picked))
            rows["rejected"].append(" " + " ".join(picked[1:] + picked[:1]))
        return rows

    Dataset.from_dict(pairs(range(96))).save_to_disk(str(tmp_path / "pairs"))
    out = tmp_path / "dpo"
    args = ["dpo", tmp_path / "pairs", "--out", out, "--policy", tiny_lm_dir, "--epochs", "2"]
    args += ["--learning-rate", "3e-3", "--batch-size", "8", "--logging-steps", "4"]
    code, _, err = run(args, capsys)
    assert code == 0, err
    losses = json.loads((out / "dpo_metrics.json").read_text())["loss_history"]
    assert losses[-1] < 0.5 * losses[0], losses

    held_out = pairs(range(500, 516))
    margins = {}
    for name, path in (("start", tiny_lm_dir), ("trained", out / "policy")):
        loaded = load_policy(path)
        margins[name] = [
            (
                summed_logps(loaded.model, loaded.tokenizer, p, c)
                - summed_logps(loaded.model, loaded.tokenizer, p, r)
            ).item()
            for p, c, r in zip(
                *(held_out[k] for k in ("prompt", "chosen", "rejected")), strict=True
            )
        ]
    gains = [t - s for t, s in zip(margins["trained"], margins["start"], strict=True)]
    assert all(gain > 0 for gain in gains), gains


@pytest.mark.parametrize("precompute", ["--precompute-reference", "--no-precompute-reference"])
def test_dpo_against_another_reference(tmp_path, tiny_lm_dir, capsys, precompute):
    """--reference: another policy folder (e.g. the SFT policy) is the reference, with its
    log-probabilities precomputed or computed as training goes."""
    data, _ = mixed_dataset(tmp_path / "mixed")
    out = tmp_path / "dpo"
    args = ["dpo", data, "--out", out, "--policy", tiny_lm_dir, "--reference", tiny_lm_dir]
    code, _, err = run([*args, precompute, "--batch-size", "2"], capsys)
    assert code == 0, err
    metrics = json.loads((out / "dpo_metrics.json").read_text())
    assert metrics["reference"] == str(tiny_lm_dir) and metrics["train_pairs"] == 6


@pytest.mark.parametrize("precompute", ["--precompute-reference", "--no-precompute-reference"])
def test_a_max_length_that_leaves_no_response_is_one_line(
    tmp_path, tiny_lm_dir, capsys, precompute
):
    """Every prompt fills --max-length: refused in one line before TRL precomputes anything."""
    data, _ = mixed_dataset(tmp_path / "mixed")
    args = ["dpo", data, "--out", tmp_path / "dpo", "--policy", tiny_lm_dir, "--max-length", "2"]
    code, _, err = run([*args, precompute], capsys)
    assert_one_line_error(code, err, "no pair left to train on", "--max-length 2")
    assert not (tmp_path / "dpo").exists()  # no empty folder that looks like a result


def test_a_failed_command_removes_only_the_empty_folders_it_created(tmp_path):
    from rlaif.data import output_folder

    out = tmp_path / "new"
    with pytest.raises(KeyboardInterrupt), output_folder(out):
        (out / "runs" / "empty").mkdir(parents=True)  # as TRL's trainer does on start
        raise KeyboardInterrupt
    assert not out.exists()
    with pytest.raises(RuntimeError), output_folder(out):
        (out / "checkpoint-1").mkdir(parents=True)
        (out / "checkpoint-1" / "weights").write_text("kept")
        raise RuntimeError("failed after a checkpoint")
    assert (out / "checkpoint-1" / "weights").read_text() == "kept"
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(RuntimeError), output_folder(existing):
        raise RuntimeError
    assert existing.is_dir()  # the user's folder is never removed


def test_human_comparisons_under_auto_labels_say_they_train_human_labels(
    tmp_path, tiny_lm_dir, capsys
):
    data = write_comparisons(tmp_path / "c.jsonl", n_posts=4)
    out = tmp_path / "dpo"
    code, _, err = run(["dpo", data, "--out", out, "--policy", tiny_lm_dir], capsys)
    assert code == 0, err
    assert "c.jsonl holds no AI labels" in err and "training on its human labels" in err
    assert json.loads((out / "dpo_metrics.json").read_text())["labels"] == "human"
    code, _, err = run(["dpo", data, "--out", tmp_path / "o", "--min-confidence", "0.6"], capsys)
    assert_one_line_error(code, err, "c.jsonl", "soft_label", "--min-confidence applies")


def test_training_writes_no_cache_files_into_the_users_dataset(tmp_path, tiny_lm_dir, capsys):
    data, _ = mixed_dataset(tmp_path / "mixed")
    before = sorted(p.name for p in data.iterdir())
    args = ["dpo", data, "--out", tmp_path / "dpo", "--policy", tiny_lm_dir]
    code, _, err = run([*args, "--min-confidence", "0.6", "--labels", "mixed"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in data.iterdir()) == before  # no cache-*.arrow beside the data
