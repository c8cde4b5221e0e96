"""Where models run: the one home of device choice.

``training_device`` is the device of every rlaif training and sampling step, as accelerate picks
it.
"""

from __future__ import annotations

from typing import Any


def training_device() -> Any:
    """The device of every rlaif step (a ``torch.device``), as accelerate picks it: CUDA, MPS,
    XPU, ... or the CPU. Raises nothing; accelerate falls back to the CPU."""
    from accelerate import PartialState

    return PartialState().device
