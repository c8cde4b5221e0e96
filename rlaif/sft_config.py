"""Settings of ``rlaif sft``: ``SFTRunConfig`` (the command's options are generated from it) and
``CPUFriendlySFTConfig``, TRL's ``SFTConfig`` with defaults that run anywhere."""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import SFTConfig

from labelbench.models.registry import training_precision
from rlaif.ppo_config import Precision
from rlaif.reward_config import cpu_defaults


@dataclass
class SFTRunConfig:
    """Every knob of one ``rlaif sft`` run. Defaults suit a small policy on one device."""

    model: str = field(
        default="smollm2-135m", metadata={"help": "Starting policy (registry name or folder)."}
    )
    epochs: float = field(default=1.0, metadata={"help": "Training epochs."})
    learning_rate: float = field(default=2e-5, metadata={"help": "AdamW learning rate."})
    batch_size: int = field(default=8, metadata={"help": "Examples per step (per process)."})
    gradient_accumulation_steps: int = field(
        default=1, metadata={"help": "Steps whose gradients add up before each optimizer step."}
    )
    max_length: int = field(
        default=1024, metadata={"help": "Prompt + summary tokens kept (the end is cut)."}
    )
    max_prompt_tokens: int | None = field(
        default=512, metadata={"help": "Keep only the last N tokens of each post's prompt."}
    )
    limit: int | None = field(
        default=None, metadata={"help": "Train on at most this many examples (seeded sample)."}
    )
    eval_limit: int | None = field(
        default=None,
        metadata={"help": "Score at most this many held-out posts (default: all of them)."},
    )
    response_length: int = field(
        default=48, metadata={"help": "Most tokens of each held-out summary (greedy decoding)."}
    )
    logging_steps: int = field(default=10, metadata={"help": "Log the loss every N steps."})
    precision: Precision = field(
        default="auto",
        metadata={
            "help": "float32, or bfloat16 autocast (weights stay float32); auto: bfloat16 where "
            "the device multiplies bfloat16 in hardware, else float32."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of shuffling and sampling."})

    def __post_init__(self) -> None:
        for name in (
            "batch_size",
            "gradient_accumulation_steps",
            "max_length",
            "response_length",
            "logging_steps",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("limit", "eval_limit", "max_prompt_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("epochs", "learning_rate"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        self.precision = training_precision(self.precision)


@dataclass
class CPUFriendlySFTConfig(SFTConfig):
    """``SFTConfig`` with defaults that do not fail or waste time on a CPU: bf16 only when asked
    on a CPU or when the accelerator supports it, no activation checkpointing, no checkpoints,
    no external loggers. The loss is on the summary only (prompt-completion data)."""

    activation_checkpointing: bool = False
    save_strategy: str = "no"
    report_to: str | list[str] = "none"
    disable_tqdm: bool = True

    def __post_init__(self) -> None:
        cpu_defaults(self)
        super().__post_init__()
