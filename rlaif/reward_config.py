"""Settings for reward-model training: TRL's ``RewardConfig`` with defaults that run anywhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trl import RewardConfig

from rlaif.preferences import SOFT_LABEL


@dataclass
class SoftRewardConfig(RewardConfig):
    """``RewardConfig`` that trains on soft preference labels when the dataset has them.

    Defaults differ from TRL's where TRL's fail or waste time on a CPU or a small GPU: bf16 only
    when asked on a CPU or when the accelerator supports it, no gradient checkpointing, no
    checkpoints, no external loggers. ``bf16=True`` on a CPU trains under bfloat16 autocast.
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
        cpu_defaults(self)
        super().__post_init__()


def cpu_defaults(args: Any) -> None:
    """Adjust TRL training arguments (reward, SFT, DPO) to the device, before their own
    ``__post_init__``: transformers' TrainingArguments refuses bf16 unless a bf16 GPU is present
    or ``use_cpu`` is set ("Your setup doesn't support bf16/gpu"), even where CPU autocast works;
    on a machine whose accelerate device is the CPU, set ``use_cpu`` (bf16 then runs as CPU
    autocast) and no pinned memory. ``bf16=None`` becomes False on a CPU, else whether the
    accelerator supports it."""
    from accelerate.utils import is_bf16_available

    from labelbench.models.device import training_device

    on_cpu = training_device().type == "cpu"
    if on_cpu:
        args.use_cpu = True
        args.dataloader_pin_memory = False
    if args.bf16 is None and not args.fp16:
        args.bf16 = False if on_cpu else is_bf16_available(True)
