"""Settings of ``rlaif dpo``: ``DPORunConfig`` (the command's options are generated from it) and
``SoftDPOConfig``, TRL's ``DPOConfig`` with the soft-label switch and defaults that run anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from trl import DPOConfig

from labelbench.models.registry import training_precision
from rlaif.ppo_config import Precision
from rlaif.preferences import SOFT_LABEL
from rlaif.reward_config import cpu_defaults

DPOLoss = Literal["sigmoid", "robust", "ipo", "hinge"]
"""TRL loss types ``rlaif dpo`` offers: ``sigmoid`` (DPO; with soft labels, the per-row
cross-entropy of ``rlaif.dpo``), ``robust`` (rDPO: unbiased under a flip rate
``--label-smoothing``), ``ipo`` and ``hinge`` (SLiC). Only ``sigmoid`` takes soft labels."""


@dataclass
class DPORunConfig:
    """Every knob of one ``rlaif dpo`` run. Defaults suit a small policy on one device."""

    beta: float = field(
        default=0.1, metadata={"help": "DPO's beta: the strength of the implicit KL penalty."}
    )
    loss: DPOLoss = field(
        default="sigmoid",
        metadata={
            "help": "sigmoid (DPO; soft labels allowed), robust (needs --label-smoothing), ipo, "
            "hinge."
        },
    )
    label_smoothing: float = field(
        default=0.0,
        metadata={"help": "robust loss: the assumed share of flipped labels, in [0, 0.5)."},
    )
    epochs: float = field(default=1.0, metadata={"help": "Training epochs."})
    learning_rate: float = field(default=1e-6, metadata={"help": "AdamW learning rate."})
    batch_size: int = field(default=8, metadata={"help": "Pairs per step (per process)."})
    gradient_accumulation_steps: int = field(
        default=1, metadata={"help": "Steps whose gradients add up before each optimizer step."}
    )
    max_length: int = field(
        default=1024,
        metadata={"help": "Prompt + response tokens kept (the response's end is cut)."},
    )
    max_prompt_tokens: int | None = field(
        default=512, metadata={"help": "Keep only the last N tokens of each prompt."}
    )
    limit: int | None = field(default=None, metadata={"help": "Train on at most this many pairs."})
    precompute_reference: bool = field(
        default=True,
        metadata={
            "help": "Compute the reference's log-probabilities once before training, so the "
            "reference is not held in memory while the policy trains."
        },
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
        for name in ("batch_size", "gradient_accumulation_steps", "max_length", "logging_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("limit", "max_prompt_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("beta", "epochs", "learning_rate"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.loss not in ("sigmoid", "robust", "ipo", "hinge"):
            raise ValueError(f"unknown loss {self.loss!r}; use sigmoid, robust, ipo or hinge")
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ValueError("label_smoothing must be in [0, 0.5)")
        if self.label_smoothing and self.loss != "robust":
            raise ValueError("label_smoothing applies to --loss robust only")
        self.precision = training_precision(self.precision)


@dataclass
class SoftDPOConfig(DPOConfig):
    """``DPOConfig`` that trains on per-row soft labels when the dataset has them
    (``rlaif.dpo.SoftLabelDPOTrainer``).

    Defaults differ from TRL's where TRL's fail or waste time on a CPU: bf16 only when asked on
    a CPU or when the accelerator supports it, no activation checkpointing, no checkpoints, no
    external loggers.
    """

    soft_label_column: str = field(
        default=SOFT_LABEL,
        metadata={"help": "Column with P(chosen preferred); absent means hard labels."},
    )
    use_soft_labels: bool = field(
        default=True,
        metadata={"help": "Train on the soft label column when present; False: hard labels."},
    )
    activation_checkpointing: bool = False
    save_strategy: str = "no"
    report_to: str | list[str] = "none"
    disable_tqdm: bool = True

    def __post_init__(self) -> None:
        cpu_defaults(self)
        super().__post_init__()
