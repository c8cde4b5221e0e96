"""int8 weights for a labeler: agreement with float32 first, then speed (CPU).

    python bench/int8.py [--model smollm2-135m] [--pairs 20] [--threads 1]

Labels the first ``--pairs`` TL;DR comparisons of ``batch13.json`` (``base-0shot``, both orders)
with the labeling engine, the model loaded in each of:

- ``float32`` and ``bfloat16`` (the precisions labelbench offers);
- ``int8_torch_ao``: the decoder's linear layers through ``torch.ao.quantization.
  quantize_dynamic`` (fbgemm; int8 weights per tensor, activations quantized per tensor at run
  time). The API is deprecated in favour of torchao; it is here because it is the fast kernel;
- ``int8_torchao`` (when ``torchao`` is installed): ``torchao.quantization.quantize_`` with
  ``Int8DynamicActivationInt8WeightConfig`` (per-channel weights, per-token activations), eager.

The output layer stays float32 (the engine reads answers through it). For each precision: the
engine's seconds for the pairs (after a warm-up on two other pairs; the precisions run one after
the other, so on a shared machine the times are indicative and ``load_average`` says how shared)
and, against float32, max and mean |ΔP(A)| and decisions flipped over the order-labels (the
``labelbench models check-precision`` figures: P(A) of one order, a flip when it crosses ½).
Also the one-thread ``F.linear`` rate of each on the model's MLP shape (512 tokens x hidden ->
intermediate). Progress on stderr; the last line of stdout is one JSON object.

A precision is worth offering only if it is faster than bfloat16 at labels as close to float32
(max |ΔP(A)| <= 0.03, <= 1% flips).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

from labeling import TLDR, log, matmul_flops


def quantize_torch_ao(module: Any) -> Any:
    """int8 dynamic quantization of ``module``'s linear layers (deprecated torch.ao API)."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(
            module, {torch.nn.Linear}, dtype=torch.qint8, inplace=True
        )


def quantize_torchao(module: Any) -> Any:
    """int8 dynamic activation, int8 weight (torchao), in place."""
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    quantize_(module, Int8DynamicActivationInt8WeightConfig())
    return module


def linear_rate(hidden: int, intermediate: int, quantize: Callable[[Any], Any]) -> float:
    """FLOP/s of a quantized [intermediate, hidden] linear layer on 512 float32 tokens."""
    import torch

    layer = quantize(torch.nn.Sequential(torch.nn.Linear(hidden, intermediate, bias=False)))
    x = torch.randn(512, hidden)
    with torch.inference_mode():
        layer(x)
        repeats, started = 5, time.perf_counter()
        for _ in range(repeats):
            layer(x)
    return 2 * 512 * hidden * intermediate * repeats / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from labelbench.data import load_comparisons
    from labelbench.labeling import label
    from labelbench.labeling.answers import preference_a
    from labelbench.labeling.transformers_backend import TransformersBackend
    from labelbench.models.precision import compare
    from labelbench.models.registry import load_model
    from labelbench.prompting import plan

    torch.set_num_threads(args.threads)
    everything = load_comparisons(TLDR)
    items, warm = everything[: args.pairs], everything[-2:]
    quantizers: dict[str, tuple[str, Callable[[Any], Any] | None]] = {
        "float32": ("float32", None),
        "bfloat16": ("bfloat16", None),
        "int8_torch_ao": ("float32", quantize_torch_ao),
    }
    try:
        import torchao  # noqa: F401

        quantizers["int8_torchao"] = ("float32", quantize_torchao)
    except ImportError:
        log("torchao is not installed: int8_torchao skipped")

    labels: dict[str, dict[tuple[str, str], float]] = {}
    seconds: dict[str, float] = {}
    rates: dict[str, float] = {}
    shape: tuple[int, int] = (0, 0)
    for name, (dtype, quantize) in quantizers.items():
        lm = load_model(args.model, dtype=dtype)
        config = lm.model.config.get_text_config(decoder=True)
        shape = (config.hidden_size, config.intermediate_size)
        if quantize is not None:
            quantize(lm.model.base_model.layers)
            rates[name] = linear_rate(*shape, quantize)
        else:
            rates[name] = matmul_flops(*shape, getattr(torch, dtype))
        backend = TransformersBackend(lm.model, lm.tokenizer, lm.identity)
        warm_up = plan(warm, "summarization/base-0shot", tokenizer=lm.tokenizer).requests
        label(warm_up, backend, cache=None, progress=False)
        planned = plan(items, "summarization/base-0shot", tokenizer=lm.tokenizer).requests
        started = time.perf_counter()
        rows = label(planned, backend, cache=None, progress=False).rows
        seconds[name] = time.perf_counter() - started
        labels[name] = {(r.item_id, r.order): preference_a(r.distribution, r.order) for r in rows}
        log(f"{name}: {seconds[name]:.1f} s for {len(items)} pairs")
        del lm, backend

    figures: dict[str, Any] = {"model": args.model, "pairs": len(items), "threads": args.threads}
    for name in quantizers:
        largest, mean, flips, compared = compare(labels["float32"], labels[name])
        figures[name] = {
            "seconds": round(seconds[name], 2),
            "speedup_vs_float32": round(seconds["float32"] / seconds[name], 3),
            "speedup_vs_bfloat16": round(seconds["bfloat16"] / seconds[name], 3),
            "max_abs_delta_p_vs_fp32": round(largest, 4),
            "mean_abs_delta_p_vs_fp32": round(mean, 4),
            "flips_vs_fp32": flips,
            "orders_compared": compared,
            "linear_gflops": round(rates[name] / 1e9, 1),
        }
    figures["matmul_shape"] = [512, *shape]
    figures["load_average"] = os.getloadavg()[0]
    print(json.dumps(figures))


if __name__ == "__main__":
    sys.exit(main())
