"""int8 weights for a labeler: agreement with float32 first, then speed (CPU).

    python bench/int8.py [--model smollm2-135m] [--pairs 20] [--threads 1]

Labels the first ``--pairs`` TL;DR comparisons of ``batch13.json`` (``base-0shot``, both orders)
with the labeling engine, the model loaded in each of:

- ``float32`` and ``bfloat16`` (the precisions labelbench offers);
- ``int8_torch_ao``: the decoder's linear layers through ``torch.ao.quantization.
  quantize_dynamic`` (fbgemm; int8 weights per tensor, activations quantized per tensor at run
  time). The API is deprecated in favour of torchao; it is here because it is the fast kernel;
- ``int8_torchao`` (when ``torchao`` is installed): ``torchao.quantization.quantize_`` with
  ``Int8DynamicActivationInt8WeightConfig`` (per-channel weights, per-token activations), eager;
- ``int8_int_mm``: the same scheme (int8 weights per output channel, activations quantized per
  token at run time, bfloat16 elsewhere) through ``torch._int_mm``, the oneDNN VNNI kernel
  (about 420 GOP/s on one thread on the AMD EPYC against bfloat16's 210 GFLOP/s; 276 against
  float32's 147 on the Intel Xeon), to see what the fastest int8 path a CPU has would give when
  torchao's eager path does not use it.

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

import torch
from labeling import TLDR, log, matmul_flops


def quantize_torch_ao(module: Any) -> Any:
    """int8 dynamic quantization of ``module``'s linear layers (deprecated torch.ao API)."""
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


class Int8Linear(torch.nn.Module):
    """A ``torch.nn.Linear`` as int8 weights (symmetric, one scale per output channel) whose input
    is quantized per token (symmetric) at each call; ``torch._int_mm`` multiplies, the int32
    result is scaled back and returned in the input's dtype. Shapes as ``nn.Linear``."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=1e-12) / 127
        quantized = torch.round(weight / scale[:, None]).clamp_(-127, 127)
        self.register_buffer("qweight", quantized.to(torch.int8))
        self.register_buffer("scale", scale)
        bias = linear.bias
        self.register_buffer("bias", None if bias is None else bias.detach().float())
        self.out_features = linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1]).float()
        x_scale = rows.abs().amax(dim=1, keepdim=True).clamp_(min=1e-12).div_(127)
        x_int8 = torch.round(rows / x_scale).clamp_(-127, 127).to(torch.int8)
        out = (torch._int_mm(x_int8, self.qweight.t()) * x_scale).mul_(self.scale)
        if self.bias is not None:
            out += self.bias
        return out.to(x.dtype).reshape(*x.shape[:-1], self.out_features)


def quantize_int_mm(module: Any) -> Any:
    """Every linear layer of ``module`` replaced by ``Int8Linear``, in place."""
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.Linear):
                setattr(parent, name, Int8Linear(child))
    return module


def linear_rate(hidden: int, intermediate: int, quantize: Callable[[Any], Any]) -> float:
    """FLOP/s of a quantized [intermediate, hidden] linear layer on 512 float32 tokens."""
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
    parser.add_argument(
        "--precisions",
        help="Comma-separated subset to run (float32 always runs: the reference).",
    )
    args = parser.parse_args()

    from labelbench.data import load_comparisons
    from labelbench.labeling import label
    from labelbench.labeling.answers import preference_a
    from labelbench.labeling.precision import compare
    from labelbench.labeling.transformers_backend import TransformersBackend
    from labelbench.models.registry import load_model
    from labelbench.prompting import plan

    torch.set_num_threads(args.threads)
    everything = load_comparisons(TLDR)
    items, warm = everything[: args.pairs], everything[-2:]
    quantizers: dict[str, tuple[str, Callable[[Any], Any] | None]] = {
        "float32": ("float32", None),
        "bfloat16": ("bfloat16", None),
        "int8_torch_ao": ("float32", quantize_torch_ao),
        "int8_int_mm": ("bfloat16", quantize_int_mm),
    }
    try:
        import torchao  # noqa: F401

        quantizers["int8_torchao"] = ("float32", quantize_torchao)
    except ImportError:
        log("torchao is not installed: int8_torchao skipped")

    if args.precisions:
        wanted = {"float32", *args.precisions.split(",")}
        unknown = wanted - set(quantizers)
        if unknown:
            raise SystemExit(
                f"unknown precisions {sorted(unknown)}; choose from {list(quantizers)}"
            )
        quantizers = {name: how for name, how in quantizers.items() if name in wanted}
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
            **(
                {"speedup_vs_bfloat16": round(seconds["bfloat16"] / seconds[name], 3)}
                if "bfloat16" in seconds
                else {}
            ),
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
