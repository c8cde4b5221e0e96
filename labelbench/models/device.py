"""Where and in which precision models run: the one home of device choice.

``resolve_device`` checks a labeler's or policy's device (``cpu``, ``cuda``, ``cuda:N``; CUDA
when available by default); ``training_device`` is the device of every rlaif training and
sampling step, as accelerate picks it. The precision a labeler runs in by default comes from the
agreement with float32 recorded in ``models/precision.json``, used only where the device
multiplies bfloat16 natively.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labelbench.errors import ModelError
from labelbench.models.manifests import BUILTIN


def training_device() -> Any:
    """The device of every rlaif step (a ``torch.device``), as accelerate picks it: CUDA, MPS,
    XPU, ... or the CPU. Raises nothing; accelerate falls back to the CPU."""
    from accelerate import PartialState

    return PartialState().device


PRECISIONS = ("float32", "bfloat16")
"""Precisions a labeler can run in. bfloat16 runs the matrix multiplies of CPUs with AVX-512 BF16
or AMX and of recent GPUs faster than float32 (2.2x on the AVX-512 BF16 CPU of README's figures);
fp16 is slow on CPUs, so it is not offered."""


PRECISION_BOUNDS = {"max_abs_delta_p": 0.03, "flip_rate": 0.01}
"""A precision may be a built-in's default only within these bounds against float32, measured
by ``labelbench models check-precision`` (max |ΔP(A)| over both orders; share of decisions
flipped)."""


PRECISION_RECORD = Path(__file__).with_name("precision.json")
"""Measured agreement of each precision with float32, per built-in model (written by
``labelbench models check-precision NAME --record``)."""


def precision_record() -> dict[str, Any]:
    """``{model: {"default": precision, "measured": {...}}}`` as recorded; {} when none."""
    try:
        return json.loads(PRECISION_RECORD.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def default_precision(spec: str | Path, device: str | None = None) -> str:
    """The precision a labeler runs in when none is given: the built-in's recorded default
    (bfloat16 when within ``PRECISION_BOUNDS`` of float32) where ``device`` multiplies it
    natively (``native_bfloat16``; emulated bfloat16 is slower than float32), else float32;
    float32 for every other model (agreement unmeasured)."""
    text = str(spec)
    if text not in BUILTIN:
        return "float32"
    recorded = precision_record().get(text, {}).get("default", "float32")
    if recorded == "bfloat16" and not native_bfloat16(device):
        return "float32"
    return recorded


def resolve_precision(spec: str | Path, precision: str | None, device: str | None = None) -> str:
    """``precision`` checked against ``PRECISIONS``, or the model's default on ``device`` when
    None (``default_precision``).

    Raises ModelError naming the allowed values."""
    if precision is None:
        return default_precision(spec, device)
    if precision not in PRECISIONS:
        raise ModelError(
            f"unknown precision {precision!r} for {spec}; choose one of {', '.join(PRECISIONS)}"
        )
    return precision


def native_bfloat16(device: str | None = None) -> bool:
    """Whether ``device`` (``resolve_device``'s default when None) multiplies bfloat16 matrices in
    hardware: a CUDA device that supports bfloat16 (Ampere or newer), or a CPU with AVX-512 BF16 or
    AMX. Elsewhere bfloat16 is emulated through float32 and slower than float32 itself."""
    import torch

    if resolve_device(device).startswith("cuda"):
        return bool(torch.cuda.is_bf16_supported())
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def training_precision(precision: str, device: str | None = None) -> str:
    """The precision reward-model training and PPO run in: ``auto`` is bfloat16 autocast where
    ``device`` multiplies bfloat16 natively (``native_bfloat16``), else float32; ``float32`` and
    ``bfloat16`` stay as given. Raises ValueError for anything else."""
    if precision == "auto":
        return "bfloat16" if native_bfloat16(device) else "float32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be auto, float32 or bfloat16, not {precision!r}")
    return precision


def resolve_device(device: str | None) -> str:
    """``device`` checked (``cpu``, ``cuda``, ``cuda:N``), or CUDA when available, else the CPU.

    Raises ModelError when the device does not exist here."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ModelError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelError(f"device {device!r}: no CUDA device is available on this machine")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ModelError(
                f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    elif parsed.type != "cpu":
        raise ModelError(f"device {device!r}: labelbench runs on cpu or cuda")
    return str(parsed)
