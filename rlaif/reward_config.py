"""Settings for reward-model training: TRL's ``RewardConfig`` with defaults that run anywhere."""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import RewardConfig

SOFT_LABEL = "soft_label"
"""Column with the labeler's probability that ``chosen`` is preferred over ``rejected``."""


@dataclass
class SoftRewardConfig(RewardConfig):
    """``RewardConfig`` that trains on soft preference labels when the dataset has them.

    Defaults differ from TRL's where TRL's fail or waste time on a CPU or a small GPU: bf16 only
    when the device supports it, no gradient checkpointing, no checkpoints, no external loggers.
    """

    soft_label_column: str = field(
        default=SOFT_LABEL,
        metadata={"help": "Column with P(chosen preferred); absent means hard (Bradley-Terry)."},
    )
    use_soft_labels: bool = field(
        default=True,
        metadata={"help": "Train on the soft label column when present; False forces hard labels."},
    )
    activation_checkpointing: bool = False
    save_strategy: str = "no"
    report_to: str | list[str] = "none"
    disable_tqdm: bool = True

    def __post_init__(self) -> None:
        if self.bf16 is None and not self.fp16:
            self.bf16 = _bf16_available()
        if not _cuda_available():
            self.dataloader_pin_memory = False
        super().__post_init__()


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _bf16_available() -> bool:
    import torch

    return _cuda_available() and torch.cuda.is_bf16_supported()
