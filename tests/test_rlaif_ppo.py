"""The bundled PPO raises a verifiable reward; a huge KL coefficient keeps it at the start."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from labelbench.errors import InputError, ModelError
from rlaif.ppo_config import PPOConfig
from rlaif.ppo_trainer import PPOTrainer, gae, masked_whiten, response_mask_and_eos

PROMPTS = ["The post says", "Which summary is better?", "Human: hello there", "Rationale:"]


DIGIT_TOKENS = 16  # tokens of the tiny vocabulary (300) whose text holds a digit
RESPONSE_LENGTH = 8


def digit_share_reward(tokenizer):
    """Verifiable reward: the share of response tokens that contain a digit."""
    digits = {i for text, i in tokenizer.get_vocab().items() if any(c.isdigit() for c in text)}
    assert len(digits) == DIGIT_TOKENS

    def reward(prompts: list[str], responses: list[str]) -> list[float]:
        shares = []
        for response in responses:
            ids = tokenizer(response, add_special_tokens=False)["input_ids"]
            shares.append(sum(i in digits for i in ids) / max(1, len(ids)))
        return shares

    return reward


def run_ppo(tiny_tokenizer, kl_coef: float, updates: int, tmp_path=None):
    from conftest import build_tiny_model

    policy = build_tiny_model(tiny_tokenizer, seed=1)
    config = PPOConfig(
        batch_size=32,
        response_length=RESPONSE_LENGTH,
        temperature=1.0,
        kl_coef=kl_coef,
        missing_eos_penalty=0.0,
        learning_rate=1e-2,
        ppo_epochs=4,
        num_minibatches=2,
        total_updates=updates,
        seed=0,
        progress=False,
    )
    trainer = PPOTrainer(
        config, policy, tiny_tokenizer, digit_share_reward(tiny_tokenizer), PROMPTS, tmp_path
    )
    return trainer, trainer.train()


def test_ppo_raises_a_verifiable_reward_with_bounded_kl(tiny_tokenizer):
    _, history = run_ppo(tiny_tokenizer, kl_coef=0.02, updates=30)
    start = sum(h["score"] for h in history[:3]) / 3
    end = sum(h["score"] for h in history[-3:]) / 3
    assert start < 0.1
    assert end > 0.8, [round(h["score"], 3) for h in history]
    # Uniform over the digit tokens is the closest policy with full reward: log(300 / 16) nats a
    # token. The penalty keeps the policy near that instead of collapsing onto one token.
    bound = RESPONSE_LENGTH * (math.log(300 / DIGIT_TOKENS) + 0.5)
    assert all(h["kl"] < bound for h in history), [round(h["kl"], 2) for h in history]
    assert all(0.0 <= h["clip_fraction"] <= 1.0 for h in history)


def test_a_policy_trained_on_a_token_reward_wins_against_its_start(tiny_tokenizer):
    """The pipeline can detect a real effect: PPO on a reward that prefers digit tokens, then
    both policies sampled on prompts never trained on (``rlaif.label.generate``, as ``rlaif
    evaluate`` samples) and judged by that reward: the trained policy wins with a 95% interval
    above 1/2 (``rlaif.evaluate``'s pairwise wins and win rate)."""
    from conftest import build_tiny_model

    from rlaif.evaluate import pairwise_wins, win_rate
    from rlaif.label import generate

    trainer, _ = run_ppo(tiny_tokenizer, kl_coef=0.02, updates=20)
    start = build_tiny_model(tiny_tokenizer, seed=1)  # the same start as run_ppo's
    held_out = [f"Summary of post {i}:" for i in range(64)]
    judge = digit_share_reward(tiny_tokenizer)
    sample = dict(max_new_tokens=RESPONSE_LENGTH, temperature=1.0, seed=0, progress=False)
    policy = trainer.accelerator.unwrap_model(trainer.model).policy
    trained = judge(held_out, generate(policy, tiny_tokenizer, held_out, **sample))
    before = judge(held_out, generate(start, tiny_tokenizer, held_out, **sample))
    result = win_rate(pairwise_wins(trained, before), seed=0)
    assert result["ci_low"] > 0.5, (result, sum(trained), sum(before))


def test_huge_kl_coefficient_keeps_the_policy_at_the_reference(tiny_tokenizer):
    _, history = run_ppo(tiny_tokenizer, kl_coef=1e4, updates=20)
    end = sum(h["score"] for h in history[-3:]) / 3
    assert end < 0.1, [round(h["score"], 3) for h in history]
    # The unconstrained run drifts past 20 nats; here sampling noise alone keeps it under one.
    assert all(abs(h["kl"]) < 1.0 for h in history), [round(h["kl"], 3) for h in history]


def test_checkpoint_and_resume(tmp_path, tiny_tokenizer):
    trainer, _ = run_ppo(tiny_tokenizer, kl_coef=0.05, updates=2, tmp_path=tmp_path)
    assert (tmp_path / "checkpoint-2" / "ppo_state.json").exists()
    assert (tmp_path / "policy" / "config.json").exists()
    resumed, _ = run_ppo(tiny_tokenizer, kl_coef=0.05, updates=1, tmp_path=None)
    resumed.config.total_updates = 3
    resumed.output_dir = tmp_path
    resumed.load_checkpoint()
    assert resumed.update == 2
    saved, loaded = trainer.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(saved[name], loaded[name]) for name in saved)
    more = resumed.train()
    assert [h["update"] for h in more] == [3]
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 3
    assert (tmp_path / "checkpoint-3" / "ppo_state.json").exists()


def test_policy_without_eos_fails_before_training(tiny_tokenizer):
    from conftest import build_tiny_model

    no_eos = copy.deepcopy(tiny_tokenizer)
    no_eos.eos_token = None
    policy = build_tiny_model(tiny_tokenizer)
    with pytest.raises(ModelError, match="EOS"):
        PPOTrainer(PPOConfig(progress=False), policy, no_eos, lambda p, r: [0.0] * len(p), PROMPTS)
    with pytest.raises(InputError, match="no prompts"):
        PPOTrainer(PPOConfig(progress=False), policy, tiny_tokenizer, lambda p, r: [], [])


def test_response_mask_gae_and_whitening():
    responses = torch.tensor([[5, 3, 9, 9], [5, 6, 7, 8]])
    mask, has_eos = response_mask_and_eos(responses, eos_token_id=3)
    assert mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    assert has_eos.tolist() == [True, False]
    rewards = torch.tensor([[0.0, 1.0, 0.0, 0.0]])
    values = torch.tensor([[0.5, 0.25, 7.0, 7.0]])
    advantages, returns = gae(rewards, values, mask[:1], gamma=1.0, lam=1.0)
    assert torch.allclose(returns, torch.tensor([[1.0, 1.0, 0.0, 0.0]]))
    assert torch.allclose(advantages, torch.tensor([[0.5, 0.75, 0.0, 0.0]]))
    whitened = masked_whiten(torch.tensor([[1.0, 3.0, 100.0]]), torch.tensor([[1.0, 1.0, 0.0]]))
    assert torch.allclose(whitened, torch.tensor([[-1.0, 1.0, 0.0]]), atol=1e-4)


def test_adaptive_kl_coefficient_moves_towards_the_target():
    from rlaif.ppo_trainer import KLController

    fixed = KLController(0.1, adaptive=False)
    fixed.update(observed_kl=100.0, n_samples=64)
    assert fixed.value == 0.1
    controller = KLController(0.1, adaptive=True, target=6.0, horizon=640)
    controller.update(observed_kl=12.0, n_samples=64)  # error clipped to +0.2
    assert controller.value == pytest.approx(0.1 * (1 + 0.2 * 64 / 640))
    controller.update(observed_kl=3.0, n_samples=64)  # error -0.5 clipped to -0.2
    assert controller.value < 0.1 * (1 + 0.2 * 64 / 640)


def test_missing_eos_is_penalised(tiny_tokenizer):
    from conftest import build_tiny_model

    config = PPOConfig(
        batch_size=4,
        response_length=4,
        num_minibatches=1,
        ppo_epochs=1,
        missing_eos_penalty=2.0,
        kl_coef=0.0,
        total_updates=1,
        progress=False,
    )
    policy = build_tiny_model(tiny_tokenizer, seed=2)
    trainer = PPOTrainer(config, policy, tiny_tokenizer, lambda p, r: [1.0] * len(p), PROMPTS)
    _, stats = trainer.rollout(PROMPTS)
    expected = 1.0 - 2.0 * (1.0 - stats["eos_fraction"])
    assert stats["score"] == pytest.approx(expected)
    assert stats["eos_fraction"] < 1.0  # a random policy rarely ends within 4 tokens
