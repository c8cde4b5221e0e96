"""Agreement before speed: label the same TL;DR pairs in every precision and compare with float32.

``labelbench models check-precision NAME`` runs the one labelling path (plan → backend →
preferences, no cache) once per precision on the same pairs, in both orders, and reports per
precision: max and mean |ΔP(A)| against float32 over both orders, the share of decisions
(P(A) > ½, per order) that flip, and prompt tokens per second. The default precision of a built-in
model is bfloat16 when its figures stay within ``registry.PRECISION_BOUNDS`` (it is then used
where the device multiplies bfloat16 natively, float32 elsewhere); ``--record`` writes
it, with the figures, into ``labelbench/models/precision.json``, which the registry reads.
"""

from __future__ import annotations

import gc
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from labelbench.models import registry

DEFAULT_VARIANT = "summarization/base-0shot"


@dataclass(frozen=True)
class PrecisionFigures:
    """One precision's labels against float32's on the same requests (both orders)."""

    precision: str
    pairs: int
    orders: int
    """Scored (pair, order) labels compared."""
    max_abs_delta_p: float
    mean_abs_delta_p: float
    flips: int
    """Orders whose decision (P(A) > ½) differs from float32's."""
    flip_rate: float
    seconds: float
    prompt_tokens: int
    tokens_per_second: float
    speedup_vs_float32: float

    def within_bounds(self) -> bool:
        bounds = registry.PRECISION_BOUNDS
        return (
            self.max_abs_delta_p <= bounds["max_abs_delta_p"]
            and self.flip_rate <= bounds["flip_rate"]
        )


def _label_once(
    name: str, precision: str, items: Sequence[Any], variant: str, threads: int | None
) -> tuple[dict[tuple[str, str], float], float, int]:
    """P(A) per (item, order), seconds and prompt tokens for one precision (model freed after)."""
    import torch

    from labelbench.config import LabelerSpec
    from labelbench.labeling.answers import preference_a
    from labelbench.labeling.labeler import open_labeler

    if threads:
        torch.set_num_threads(threads)
    labeler = open_labeler(LabelerSpec(name=name, dtype=precision, device="cpu"))
    started = time.perf_counter()
    result = labeler.label(items, variant, cache=None)
    seconds = time.perf_counter() - started
    values = {
        (row.item_id, row.order): preference_a(row.distribution, row.order)
        for row in result.rows
        if row.distribution is not None
    }
    tokens = sum(row.prompt_tokens for row in result.rows)
    del labeler
    gc.collect()
    return values, seconds, tokens


def compare(
    reference: dict[tuple[str, str], float],
    other: dict[tuple[str, str], float],
) -> tuple[float, float, int, int]:
    """(max |ΔP(A)|, mean |ΔP(A)|, decision flips, labels compared) over the keys both scored.

    Raises ValueError when they share no scored label."""
    keys = sorted(reference.keys() & other.keys())
    if not keys:
        raise ValueError("no label was scored in both precisions")
    deltas = [abs(reference[k] - other[k]) for k in keys]
    flips = sum((reference[k] > 0.5) != (other[k] > 0.5) for k in keys)
    return max(deltas), sum(deltas) / len(deltas), flips, len(keys)


def check_precision(
    name: str,
    items: Sequence[Any],
    *,
    variant: str = DEFAULT_VARIANT,
    precisions: Sequence[str] = registry.PRECISIONS,
    threads: int | None = None,
) -> list[PrecisionFigures]:
    """Label ``items`` (comparisons) with model ``name`` in float32 and in each other precision;
    figures per precision, float32 first (against itself)."""
    runs = {
        precision: _label_once(name, precision, items, variant, threads)
        for precision in ("float32", *[p for p in precisions if p != "float32"])
    }
    reference, ref_seconds, _ = runs["float32"]
    figures = []
    for precision, (values, seconds, tokens) in runs.items():
        largest, mean, flips, compared = compare(reference, values)
        figures.append(
            PrecisionFigures(
                precision=precision,
                pairs=len(items),
                orders=compared,
                max_abs_delta_p=largest,
                mean_abs_delta_p=mean,
                flips=flips,
                flip_rate=flips / compared,
                seconds=round(seconds, 2),
                prompt_tokens=tokens,
                tokens_per_second=round(tokens / seconds, 1),
                speedup_vs_float32=round(ref_seconds / seconds, 3),
            )
        )
    return figures


def choose_default(figures: Sequence[PrecisionFigures]) -> str:
    """bfloat16 when its labels stay within ``registry.PRECISION_BOUNDS`` of float32, else float32.

    Agreement is the model's; speed is the machine's: bfloat16 is the faster precision wherever
    the device multiplies it natively (2.2x float32 on an AVX-512 BF16 CPU) and 0.3x where it is
    emulated, and ``registry.default_precision`` gives float32 on such devices. So the record
    keeps a choice that holds on every machine, and the speeds only as figures."""
    chosen = [f for f in figures if f.precision == "bfloat16" and f.within_bounds()]
    return "bfloat16" if chosen else "float32"


def record(
    name: str, figures: Sequence[PrecisionFigures], *, variant: str, command: str
) -> dict[str, Any]:
    """Write the model's entry (default precision and figures) into the registry's record."""
    entry = {
        "default": choose_default(figures),
        "bounds": registry.PRECISION_BOUNDS,
        "variant": variant,
        "data": "TL;DR batch13 comparisons (OpenAI summarize-from-feedback), seeded sample",
        "command": command,
        "load_average": round(os.getloadavg()[0], 2),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "figures": [asdict(f) for f in figures],
    }
    records = registry.precision_record()
    records[name] = entry
    path: Path = registry.PRECISION_RECORD
    path.write_text(json.dumps(records, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return entry
