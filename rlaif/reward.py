"""``rlaif reward``: one reward-model run, from a preference dataset (or human comparisons) to a
saved reward model and its held-out pairwise accuracy.

Every input is checked before training: labels (soft labels finite and in [0, 1], row named),
the model, its EOS token, and that pairs are left after ``--limit`` and the length filter.
A non-finite loss stops training with an error and nothing is saved.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labelbench.errors import InputError, ModelError, check_writable_dir
from labelbench.models.registry import training_precision
from rlaif.data import DataOptions, HeldOut, load_held_out, load_preferences
from rlaif.groups import TrainingGroups
from rlaif.ppo_config import Precision
from rlaif.preferences import SOFT_LABEL
from rlaif.training_labels import (
    LabelOptions,
    choose_labels,
    label_source_shares,
    write_training_pairs,
)


@dataclass
class RewardRunConfig:
    """Settings of one reward-model run (``rlaif reward`` generates its options from these)."""

    model: str = field(
        default="smollm2-135m", metadata={"help": "Causal LM to put a reward head on."}
    )
    max_prompt_tokens: int | None = field(
        default=None, metadata={"help": "Keep only the last N tokens of each prompt."}
    )
    epochs: float = field(default=1.0, metadata={"help": "Training epochs."})
    learning_rate: float = field(default=2e-5, metadata={"help": "AdamW learning rate."})
    batch_size: int = field(default=8, metadata={"help": "Pairs per step."})
    max_length: int = field(
        default=1024, metadata={"help": "Pairs with a longer side (tokens) are dropped."}
    )
    limit: int | None = field(default=None, metadata={"help": "Train on at most this many pairs."})
    eval_limit: int | None = field(
        default=None, metadata={"help": "Evaluate on at most this many held-out pairs."}
    )
    group_by: str = field(
        default="confidence", metadata={"help": "Split accuracy by 'confidence' or a meta key."}
    )
    precision: Precision = field(
        default="auto",
        metadata={
            "help": "float32, or bfloat16 autocast (weights stay float32); auto: bfloat16 where "
            "the device multiplies bfloat16 in hardware (CPUs with AVX-512 BF16 or AMX, recent "
            "GPUs), else float32."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of shuffling and the reward head."})

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_length", "limit", "eval_limit", "max_prompt_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        for name in ("epochs", "learning_rate"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        self.precision = training_precision(self.precision)


def _tokenizer(model: str) -> Any:
    from labelbench.models.registry import load_tokenizer

    tokenizer = load_tokenizer(model)
    if tokenizer.eos_token is None:
        raise ModelError(f"{model}: the tokenizer has no EOS token to end the scored text with")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def train_reward_model(
    train: Path,
    out: Path,
    config: RewardRunConfig,
    data: DataOptions,
    eval_data: Path | None = None,
    eval_split: str | None = None,
    labels: LabelOptions | None = None,
) -> dict[str, Any]:
    """Train, save to ``out`` (weights, tokenizer, ``reward_metrics.json``, and the posts it was
    trained on in ``training_groups.json``) and return the metrics. ``labels`` chooses AI,
    human or mixed labels (``rlaif.training_labels.LabelOptions``); the metrics give each
    source's share (``label_sources``).

    Raises InputError (bad data, no pair left), ModelError (model), NonFiniteLossError."""
    from labelbench.models.registry import check_directory, resolve
    from rlaif.preferences import truncate_prompts
    from rlaif.reward_config import SoftRewardConfig
    from rlaif.reward_trainer import SoftLabelRewardTrainer

    if eval_data is None:
        given = [
            flag
            for flag, value in (("--eval-split", eval_split), ("--eval-limit", config.eval_limit))
            if value is not None
        ]
        if config.group_by != RewardRunConfig.group_by:
            given.append("--group-by")
        if given:
            raise InputError(given[0], "applies to the held-out set: give --eval FILE too")
    if eval_split not in (None, "train", "test"):
        raise InputError("--eval-split", f"must be train or test, not {eval_split!r}")
    labels = labels or LabelOptions()
    raw = load_preferences(train, data)
    mode = labels.mode(SOFT_LABEL in raw.column_names)
    dataset = choose_labels(raw, labels, train, data, seed=config.seed, limit=config.limit)
    held_out = None
    if eval_data is not None:
        trained_on = frozenset(dataset["group_id"]) if "group_id" in dataset.column_names else None
        held_out = load_held_out(
            eval_data,
            data,
            eval_split,
            config.group_by,
            config.eval_limit,
            config.seed,
            exclude_groups=trained_on or frozenset(),
        )
    check_writable_dir(out, "output directory")
    resolved = resolve(config.model)
    check_directory(resolved.path)
    tokenizer = _tokenizer(config.model)
    soft = SOFT_LABEL in dataset.column_names and not labels.hard
    if config.max_prompt_tokens is not None:
        cut = config.max_prompt_tokens
        dataset = dataset.map(
            lambda batch: {"prompt": truncate_prompts(batch["prompt"], tokenizer, cut)},
            batched=True,
        )
        if held_out is not None:
            held_out.prompt = truncate_prompts(held_out.prompt, tokenizer, cut)

    from trl.trainer.callbacks import RichProgressCallback

    args = SoftRewardConfig(
        output_dir=str(out),
        num_train_epochs=config.epochs,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.batch_size,
        max_length=config.max_length,
        seed=config.seed,
        use_soft_labels=soft,
        bf16=config.precision == "bfloat16",
        logging_steps=10,
    )
    keep = [c for c in ("prompt", "chosen", "rejected", SOFT_LABEL) if c in dataset.column_names]
    trainer = SoftLabelRewardTrainer(
        model=str(resolved.path),
        args=args,
        train_dataset=dataset.select_columns(keep),
        processing_class=tokenizer,
        callbacks=[RichProgressCallback()],
    )
    if len(trainer.train_dataset) == 0:
        raise InputError(
            train,
            f"no pair left to train on: all {len(dataset)} have a side longer than "
            f"--max-length {config.max_length} tokens",
        )

    untrained, _ = _accuracy(trainer, tokenizer, held_out, config.seed)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    groups = TrainingGroups.of(
        "reward",
        dataset["group_id"] if "group_id" in dataset.column_names else [None],
        [train],
    )
    groups.save(out)
    write_training_pairs(dataset, out)
    metrics: dict[str, Any] = {
        "train": str(train),
        "train_pairs": len(trainer.train_dataset),
        **asdict(config),
        **{key: value for key, value in asdict(labels).items() if key != "human_labels"},
        "human_labels_file": str(labels.human_labels) if labels.human_labels else None,
        "labels": mode,
        "label_sources": label_source_shares(dataset),
        "loss": "soft-label cross-entropy" if soft else "Bradley-Terry",
        "training_groups": {"n": len(groups.groups), "complete": groups.complete},
        "train_seconds": round(seconds, 1),
        "loss_history": [log["loss"] for log in trainer.state.log_history if "loss" in log],
    }
    if held_out is not None:
        accuracy, figures = _accuracy(trainer, tokenizer, held_out, config.seed)
        metrics.update(
            {
                "eval": str(eval_data),
                "eval_split": eval_split,
                "eval_dropped_shared_posts": held_out.dropped_shared,
                "accuracy": accuracy,
                "held_out": figures,
                "baselines": {
                    "untrained_head_accuracy": untrained["all"]["accuracy"],
                    "longer_wins_accuracy": figures["always_longer"]["all"]["value"],
                },
            }
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "reward_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", "utf-8")
    return metrics


LENGTH_GAP = 0.1
"""Pairs whose summaries differ in length by at most this share count as length-matched (the
benchmark's default ``length_gap``)."""


def _accuracy(trainer: Any, tokenizer: Any, held_out: HeldOut | None, seed: int) -> Any:
    """Accuracy by group (``accuracy_by_group``) and ``held_out_figures``; (None, None)
    without held-out pairs."""
    from rlaif.reward_trainer import accuracy_by_group, pairwise_credit, reward_scores

    if held_out is None:
        return None, None
    tokenizer.padding_side = "right"
    model = trainer.model.eval()
    chosen = reward_scores(
        model, tokenizer, [p + c for p, c in zip(held_out.prompt, held_out.chosen, strict=True)]
    )
    rejected = reward_scores(
        model, tokenizer, [p + r for p, r in zip(held_out.prompt, held_out.rejected, strict=True)]
    )
    accuracy = accuracy_by_group(pairwise_credit(chosen, rejected), held_out.group)
    return accuracy, held_out_figures(chosen.tolist(), rejected.tolist(), held_out, seed)


def held_out_figures(
    chosen_scores: list[float], rejected_scores: list[float], held_out: HeldOut, seed: int
) -> dict[str, Any]:
    """Pairwise accuracy of the reward model and of always-longer on the held-out pairs, with
    95% cluster-bootstrap intervals (whole posts resampled; ``labelbench.metrics``):

    ``all``; ``high_confidence`` (TL;DR confidence 1, 2, 8 or 9, as in the benchmark; None
    without confidences); ``length_matched`` (summaries within ``LENGTH_GAP`` of each other in
    characters) and ``length_balanced`` (mean of the accuracy where humans chose the longer and
    where they chose the shorter summary; always-longer scores 0.5 by construction); and
    ``versus_always_longer``, the paired difference on all pairs. A score tie counts 1/2. Each
    figure is ``Estimate.to_dict()``: value, low, high, n (and a reason when undefined).
    """
    import numpy as np

    from labelbench import metrics

    chosen, rejected = np.asarray(chosen_scores, float), np.asarray(rejected_scores, float)
    label = np.ones(len(chosen))  # "A" is the humans' side
    len_a = np.array([len(c.strip()) for c in held_out.chosen], float)
    len_b = np.array([len(r.strip()) for r in held_out.rejected], float)
    judges = {
        "reward_model": np.where(chosen > rejected, 1.0, np.where(chosen < rejected, 0.0, 0.5)),
        "always_longer": np.where(len_a > len_b, 1.0, np.where(len_a < len_b, 0.0, 0.5)),
    }
    boot = metrics.ClusterBootstrap(
        np.asarray(held_out.group_id, str), n_boot=2000, seed=metrics.seed_from("reward", seed)
    )
    confidence = np.array([c if c is not None else -1 for c in held_out.confidence])
    high = np.isin(confidence, metrics.HIGH_CONFIDENCE)
    figures: dict[str, Any] = {"length_gap": LENGTH_GAP}
    for name, p in judges.items():
        controlled = metrics.length_controlled(boot, p, label, len_a, len_b, LENGTH_GAP)
        figures[name] = {
            "all": metrics.alignment(boot, p, label)["accuracy"].to_dict(),
            "high_confidence": (
                metrics.alignment(boot, p, label, high)["accuracy"].to_dict()
                if high.any()
                else None
            ),
            "length_matched": controlled["matched"].to_dict(),
            "length_balanced": controlled["balanced"].to_dict(),
        }
    credits = {name: metrics.credit(p, label) for name, p in judges.items()}
    difference = metrics.paired_difference(boot, credits["reward_model"], credits["always_longer"])
    figures["versus_always_longer"] = difference["difference"].to_dict()
    return figures
