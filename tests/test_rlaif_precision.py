"""bfloat16 autocast on the CPU for reward-model training and PPO: it runs, it is really bf16, and
its loss curves stay within run-to-run noise of float32.

"Run-to-run noise" is measured in each test: the same float32 run with another seed (data order
and sampling). The bf16 curve must be closer to the float32 curve of its own seed than that
other-seed float32 curve is, on average over the steps. bf16 keeps 8 bits of mantissa, so a
matmul is off by about 0.4% relative; the tiny models here then move by less than the
difference one reshuffle of the data makes.
"""

from __future__ import annotations

import tempfile

import numpy as np
import pytest
import torch

from rlaif.ppo_config import PPOConfig
from rlaif.ppo_trainer import PPOTrainer
from rlaif.reward_config import SoftRewardConfig
from rlaif.reward_trainer import SoftLabelRewardTrainer


def test_trl_reward_config_accepts_bf16_on_a_cpu(tmp_path):
    # transformers refused bf16 without use_cpu: "Your setup doesn't support bf16/gpu"
    config = SoftRewardConfig(output_dir=str(tmp_path), bf16=True)
    assert config.bf16 and config.use_cpu


def reward_losses(tiny_tokenizer, bf16: bool, seed: int) -> np.ndarray:
    from conftest import build_tiny_reward_model
    from datasets import Dataset
    from test_rlaif_reward import longer_is_better

    rows = longer_is_better(128, seed=1)
    rows["soft_label"] = [0.9] * 128
    args = SoftRewardConfig(
        output_dir=tempfile.mkdtemp(),
        bf16=bf16,
        per_device_train_batch_size=16,
        logging_steps=1,
        learning_rate=3e-3,
        num_train_epochs=1,
        seed=seed,
    )
    trainer = SoftLabelRewardTrainer(
        model=build_tiny_reward_model(tiny_tokenizer, seed=0),
        args=args,
        train_dataset=Dataset.from_dict(rows),
        processing_class=tiny_tokenizer,
    )
    trainer.train()
    return np.array([log["loss"] for log in trainer.state.log_history if "loss" in log])


def test_reward_training_in_bf16_matches_fp32_within_noise(tiny_tokenizer):
    fp32, bf16, other_seed = (
        reward_losses(tiny_tokenizer, False, 0),
        reward_losses(tiny_tokenizer, True, 0),
        reward_losses(tiny_tokenizer, False, 1),
    )
    assert len(fp32) == len(bf16) == 8
    precision_gap = np.abs(bf16 - fp32).mean()
    noise = np.abs(other_seed - fp32).mean()
    assert 0 < precision_gap < noise, (precision_gap, noise)  # > 0: autocast really ran


def ppo_curves(tiny_tokenizer, precision: str, seed: int) -> dict[str, np.ndarray]:
    from conftest import build_tiny_model
    from test_rlaif_ppo import PROMPTS, digit_share_reward

    config = PPOConfig(
        batch_size=16,
        response_length=8,
        temperature=1.0,
        kl_coef=0.02,
        missing_eos_penalty=0.0,
        learning_rate=1e-2,
        ppo_epochs=4,
        num_minibatches=2,
        total_updates=8,
        seed=seed,
        progress=False,
        precision=precision,
    )
    policy = build_tiny_model(tiny_tokenizer, seed=1)
    trainer = PPOTrainer(
        config, policy, tiny_tokenizer, digit_share_reward(tiny_tokenizer), PROMPTS
    )
    history = trainer.train()
    return {key: np.array([h[key] for h in history]) for key in ("score", "policy_loss")}


def test_ppo_in_bf16_matches_fp32_within_noise(tiny_tokenizer):
    """Sampling from bf16 logits draws other tokens from the first update on, so the bf16 run is
    another random trajectory: its distance to the float32 run should be about that of another
    seed. The training reward must be closer than another seed; the policy loss, a noisier
    quantity over 8 updates, within 1.5 times the other seed's distance (measured: 1.4)."""
    fp32 = ppo_curves(tiny_tokenizer, "float32", 0)
    bf16 = ppo_curves(tiny_tokenizer, "bfloat16", 0)
    other_seed = ppo_curves(tiny_tokenizer, "float32", 1)
    for key, factor in (("score", 1.0), ("policy_loss", 1.5)):
        precision_gap = np.abs(bf16[key] - fp32[key]).mean()
        noise = np.abs(other_seed[key] - fp32[key]).mean()
        assert 0 < precision_gap < factor * noise, (key, precision_gap, noise)
    assert bf16["score"][-3:].mean() > bf16["score"][:3].mean()  # it learns in bf16 too


def test_bf16_autocast_keeps_float32_weights_and_logprobs(tiny_tokenizer):
    from conftest import build_tiny_model

    policy = build_tiny_model(tiny_tokenizer, seed=1)
    config = PPOConfig(
        batch_size=4,
        num_minibatches=1,
        ppo_epochs=1,
        response_length=4,
        total_updates=1,
        precision="bfloat16",
        progress=False,
    )
    trainer = PPOTrainer(config, policy, tiny_tokenizer, lambda p, r: [0.0] * len(p), ["a", "b"])
    batch, _ = trainer.rollout(["The post says", "Rationale:", "Human: hello", "Which"])
    assert batch.logprobs.dtype == torch.float32 and batch.values.dtype == torch.float32
    trainer.ppo_step(batch, torch.arange(4))
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_rlaif_reward_precision_option(tmp_path, tiny_lm_dir, capsys, precision):
    import json

    from test_rlaif_cli import run, write_comparisons

    data = write_comparisons(tmp_path / "c.jsonl", n_posts=12)
    out = tmp_path / "rm"
    code, _, err = run(
        [
            "reward",
            data,
            "--out",
            out,
            "--model",
            tiny_lm_dir,
            "--batch-size",
            "4",
            "--precision",
            precision,
        ],
        capsys,
    )
    assert code == 0, err
    assert json.loads((out / "reward_metrics.json").read_text())["precision"] == precision
