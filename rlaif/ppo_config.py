"""Settings of the bundled PPO trainer (``rlaif.ppo_trainer``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class PPOConfig:
    """Every knob of one PPO run. Defaults suit a small model on one device."""

    # rollouts
    batch_size: int = 16
    """Prompts per update (per process); each gets one sampled response."""
    response_length: int = 48
    """Most tokens sampled per response."""
    max_prompt_tokens: int = 512
    """Prompts longer than this keep their last tokens."""
    temperature: float = 0.7
    # reward shaping
    kl_coef: float = 0.05
    """Weight of the per-token KL penalty ``log pi(y) - log pi_ref(y)`` in the reward."""
    adaptive_kl: bool = False
    """Adapt ``kl_coef`` towards ``target_kl`` (proportional controller, horizon ``kl_horizon``)."""
    target_kl: float = 6.0
    """Target KL per response, in nats, for the adaptive controller."""
    kl_horizon: int = 10000
    missing_eos_penalty: float | None = 1.0
    """Subtracted from the score of a response that reaches ``response_length`` without EOS."""
    # optimisation
    learning_rate: float = 1e-5
    ppo_epochs: int = 4
    num_minibatches: int = 4
    gamma: float = 1.0
    lam: float = 0.95
    cliprange: float = 0.2
    cliprange_value: float = 0.2
    vf_coef: float = 0.1
    max_grad_norm: float = 1.0
    whiten_advantages: bool = True
    # run
    total_updates: int = 100
    seed: int = 0
    save_every: int = 0
    """Save a resumable checkpoint every this many updates (0: only at the end)."""
    progress: bool = True

    def __post_init__(self) -> None:
        positive = (
            "batch_size",
            "response_length",
            "ppo_epochs",
            "num_minibatches",
            "total_updates",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.batch_size % self.num_minibatches:
            raise ValueError("batch_size must be a multiple of num_minibatches")
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")
        if self.kl_coef < 0:
            raise ValueError("kl_coef must not be negative")

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
