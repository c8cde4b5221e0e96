"""Settings of the bundled PPO trainer (``rlaif.ppo_trainer``): the one place they are written.

``rlaif ppo`` and ``bench/ppo.py`` generate their options from these fields (``rlaif.options``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from labelbench.models.registry import training_precision

Precision = Literal["auto", "float32", "bfloat16"]
"""Training precision; ``auto`` becomes bfloat16 autocast where the device multiplies bfloat16 in
hardware, else float32 (``labelbench.models.registry.training_precision``)."""


def _help(text: str, **extra: Any) -> Any:
    return {"help": text, **extra}


@dataclass
class PPOConfig:
    """Every knob of one PPO run. Defaults suit a small model on one device."""

    # rollouts
    batch_size: int = field(
        default=16, metadata=_help("Prompts per update (per process); one response each.")
    )
    response_length: int = field(default=48, metadata=_help("Most tokens sampled per response."))
    max_prompt_tokens: int = field(
        default=512, metadata=_help("Prompts longer than this keep their last tokens.")
    )
    temperature: float = field(default=0.7, metadata=_help("Sampling temperature."))
    # reward shaping
    kl_coef: float = field(
        default=0.05, metadata=_help("Weight of the per-token KL penalty in the reward.")
    )
    kl_estimator: Literal["k1", "k3"] = field(
        default="k1",
        metadata=_help(
            "Per-token KL estimate in the penalty: k1 = log pi - log pi_ref (unbiased, can be "
            "negative); k3 = r - 1 - log r with r = pi_ref / pi (unbiased, never negative)."
        ),
    )
    adaptive_kl: bool = field(
        default=False,
        metadata=_help(
            "Adapt --kl-coef towards --target-kl (proportional controller, --kl-horizon)."
        ),
    )
    target_kl: float = field(
        default=6.0, metadata=_help("Adaptive controller's target KL per response, in nats.")
    )
    kl_horizon: int = field(default=10000, metadata=_help("Adaptive controller's horizon."))
    missing_eos_penalty: float = field(
        default=1.0,
        metadata=_help("Subtracted from the score of a response without EOS; 0 turns it off."),
    )
    # optimisation
    learning_rate: float = field(default=1e-5, metadata=_help("AdamW learning rate."))
    ppo_epochs: int = field(default=4, metadata=_help("Passes over each rollout."))
    num_minibatches: int = field(default=4, metadata=_help("Minibatches per pass."))
    early_stop_approx_kl: float = field(
        default=0.0,
        metadata=_help(
            "Stop an update's passes once the mean approximate KL (nats per token) between the "
            "policy and the one that sampled exceeds this; 0 turns it off. Not the adaptive "
            "controller's --target-kl."
        ),
    )
    gamma: float = field(default=1.0, metadata=_help("Discount."))
    lam: float = field(default=0.95, metadata=_help("GAE lambda."))
    cliprange: float = field(default=0.2, metadata=_help("Policy ratio clip."))
    cliprange_value: float = field(default=0.2, metadata=_help("Value clip."))
    vf_coef: float = field(default=0.1, metadata=_help("Weight of the value loss."))
    max_grad_norm: float = field(default=1.0, metadata=_help("Gradient clipping norm."))
    whiten_advantages: bool = field(default=True, metadata=_help("Whiten advantages per batch."))
    value_from_reward_model: bool = field(
        default=False,
        metadata=_help(
            "Start the value model from the reward model (backbone and score head, as TRL "
            "does) instead of the policy's backbone with a zero head."
        ),
    )
    logits_chunk_size: int = field(
        default=256,
        metadata=_help(
            "Response tokens whose full-vocabulary logits exist at once (log-probabilities and "
            "entropy are computed chunk by chunk; the backward pass recomputes each chunk)."
        ),
    )
    precision: Precision = field(
        default="auto",
        metadata=_help(
            "float32, or bfloat16 autocast (weights and optimizer stay float32; "
            "log-probabilities are computed in float32); auto: bfloat16 where the device "
            "multiplies bfloat16 in hardware (CPUs with AVX-512 BF16 or AMX, recent GPUs), "
            "else float32."
        ),
    )
    # run
    total_updates: int = field(
        default=100,
        metadata=_help("PPO updates (rollout + minibatch epochs).", aliases=("--updates",)),
    )
    seed: int = field(default=0, metadata=_help("Seed of sampling, shuffling and initialisation."))
    save_every: int = field(
        default=0, metadata=_help("Save a resumable checkpoint every N updates (0: at the end).")
    )
    progress: bool = field(default=True, metadata=_help("Show a progress bar."))

    def __post_init__(self) -> None:
        positive = (
            "batch_size",
            "response_length",
            "max_prompt_tokens",
            "ppo_epochs",
            "num_minibatches",
            "total_updates",
            "logits_chunk_size",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.batch_size % self.num_minibatches:
            raise ValueError("batch_size must be a multiple of num_minibatches")
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")
        for name in ("kl_coef", "missing_eos_penalty", "early_stop_approx_kl", "save_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        for name in ("learning_rate", "cliprange", "cliprange_value", "max_grad_norm"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.vf_coef < 0:
            raise ValueError("vf_coef must not be negative")
        for name in ("gamma", "lam"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.kl_horizon < 1:
            raise ValueError("kl_horizon must be at least 1")
        if self.adaptive_kl and self.target_kl <= 0:
            raise ValueError("target_kl must be positive with adaptive_kl")
        if self.kl_estimator not in ("k1", "k3"):
            raise ValueError(f"kl_estimator must be k1 or k3, not {self.kl_estimator!r}")
        self.precision = training_precision(self.precision)

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
