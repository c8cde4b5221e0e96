"""Reward model: the soft-label loss, and learning a synthetic preference with TRL's trainer."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F
from conftest import build_tiny_reward_model

from rlaif.reward_config import SoftRewardConfig
from rlaif.reward_trainer import SoftLabelRewardTrainer, pairwise_accuracy, soft_preference_loss

WORDS = ["the", "post", "says", "user", "wants", "advice", "friend", "job", "summary", "short"]


def longer_is_better(n: int, seed: int) -> dict[str, list]:
    rng = random.Random(seed)
    rows: dict[str, list] = {"prompt": [], "chosen": [], "rejected": []}
    for _ in range(n):
        long_len = rng.randint(7, 12)
        short_len = rng.randint(1, long_len - 4)
        rows["prompt"].append("Summary: ")
        rows["chosen"].append(" ".join(rng.choices(WORDS, k=long_len)))
        rows["rejected"].append(" ".join(rng.choices(WORDS, k=short_len)))
    return rows


def config(tmp_path, **overrides) -> SoftRewardConfig:
    values = dict(
        output_dir=str(tmp_path / "rm"),
        per_device_train_batch_size=16,
        num_train_epochs=1,
        learning_rate=3e-3,
        logging_steps=1000,
        use_cpu=True,
        seed=0,
        dataloader_num_workers=0,
    )
    values.update(overrides)
    return SoftRewardConfig(**values)


def test_soft_loss_equals_bradley_terry_when_labels_are_hard():
    chosen, rejected = torch.randn(64), torch.randn(64)
    bradley_terry = -F.logsigmoid(chosen - rejected).mean()
    assert torch.allclose(soft_preference_loss(chosen, rejected, torch.ones(64)), bradley_terry)
    flipped = -F.logsigmoid(rejected - chosen).mean()
    assert torch.allclose(soft_preference_loss(chosen, rejected, torch.zeros(64)), flipped)


def test_trainer_loss_is_soft_cross_entropy_and_bt_when_hard(tmp_path, tiny_tokenizer):
    from datasets import Dataset

    rows = longer_is_better(8, seed=1)
    rows["soft_label"] = [0.9, 0.6, 1.0, 0.75, 0.5, 0.8, 1.0, 0.7]
    model = build_tiny_reward_model(tiny_tokenizer)
    trainer = SoftLabelRewardTrainer(
        model=model,
        args=config(tmp_path),
        train_dataset=Dataset.from_dict(rows),
        processing_class=tiny_tokenizer,
    )
    batch = next(iter(trainer.get_train_dataloader()))
    assert "soft_label" in batch
    labels = batch["soft_label"].clone()
    loss, outputs = trainer.compute_loss(model, dict(batch), return_outputs=True)
    chosen, rejected = torch.chunk(outputs.logits.squeeze(-1), 2)
    assert torch.allclose(loss, soft_preference_loss(chosen, rejected, labels), atol=1e-6)

    hard = dict(batch, soft_label=torch.ones_like(labels))
    hard_loss = trainer.compute_loss(model, hard)
    without_labels = {k: v for k, v in batch.items() if k != "soft_label"}
    bradley_terry = trainer.compute_loss(model, without_labels)
    assert torch.allclose(hard_loss, bradley_terry, atol=1e-6)
    assert not torch.allclose(loss, bradley_terry, atol=1e-4)


def test_reward_model_learns_longer_is_better(tmp_path, tiny_tokenizer):
    from datasets import Dataset

    train = longer_is_better(768, seed=2)
    train["soft_label"] = [0.9] * len(train["prompt"])
    model = build_tiny_reward_model(tiny_tokenizer, seed=3)
    held_out = longer_is_better(200, seed=4)
    before = pairwise_accuracy(
        model, tiny_tokenizer, held_out["prompt"], held_out["chosen"], held_out["rejected"]
    )
    trainer = SoftLabelRewardTrainer(
        model=model,
        args=config(tmp_path, num_train_epochs=2),
        train_dataset=Dataset.from_dict(train),
        processing_class=tiny_tokenizer,
    )
    trainer.train()
    groups = ["even" if i % 2 == 0 else "odd" for i in range(len(held_out["prompt"]))]
    after = pairwise_accuracy(
        model, tiny_tokenizer, held_out["prompt"], held_out["chosen"], held_out["rejected"], groups
    )
    assert after["all"]["accuracy"] > 0.9, (before, after)
    assert after["all"]["accuracy"] > before["all"]["accuracy"]
    assert after["even"]["n"] + after["odd"]["n"] == 200


@pytest.mark.parametrize("bad", ["margin"])
def test_soft_labels_and_margins_together_are_rejected(tmp_path, tiny_tokenizer, bad):
    from datasets import Dataset

    from labelbench.errors import InputError

    rows = longer_is_better(4, seed=5)
    rows["soft_label"] = [1.0] * 4
    rows[bad] = [0.5] * 4
    model = build_tiny_reward_model(tiny_tokenizer)
    trainer = SoftLabelRewardTrainer(
        model=model,
        args=config(tmp_path),
        train_dataset=Dataset.from_dict(rows),
        processing_class=tiny_tokenizer,
    )
    batch = next(iter(trainer.get_train_dataloader()))
    with pytest.raises(InputError):
        trainer.compute_loss(model, dict(batch))
