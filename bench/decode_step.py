"""One rationale decoding step's parts at a model's shape, with random tensors, on this CPU.

    python bench/decode_step.py [--rows 128] [--columns 740] [--hidden 1536] [--heads 12]
                                [--kv-heads 2] [--intermediate 8960] [--layers 28]
                                [--dtype bfloat16] [--shared 360]

A decoding step (``labelbench.labeling.decoding``) runs one token of every active sequence:
per layer, the attention of one query a row over that row's cached keys and values (the
engine's grouped form: each key/value head's query heads as its queries, ``attention._blocks``;
keys and values are views of a slot buffer [rows, kv heads, capacity, head size]) and the seven
linear layers. This times each per layer (best of rounds) and scales by ``--layers``; it also
times a plain copy of the same key/value bytes, the memory-bandwidth yardstick. Defaults:
Qwen2.5-1.5B, 128 rows of TL;DR chains of thought (740 key columns).

``--shared N`` also times the attention as the decoder runs it where pairs of rows share their
first N columns (both orders of a comparison: ``attention._shared_attention``): each prefix
kept once and attended once for its two rows, each row's own columns apart, merged by their
log-sum-exps; ``speedup_shared_attention`` is the plain attention's time over it (the bytes it
reads fall by N / 2 a row).

Prints a line per part on stderr and one JSON object on the last line of stdout: milliseconds a
step per part, the key/value bytes a step reads, the attention's and the copy's GB/s, the CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from labeling import cpu_name


def best_seconds(work: Callable[[], object], rounds: int = 5, repeats: int = 5) -> float:
    """The best mean time of ``repeats`` calls over ``rounds`` rounds, after 2 untimed calls."""
    for _ in range(2):
        work()
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeats):
            work()
        best = min(best, (time.perf_counter() - started) / repeats)
    return best


def shared_attention(
    keys: torch.Tensor, values: torch.Tensor, query: torch.Tensor, columns: int, shared: int
) -> Callable[[], object]:
    """The decoder's attention where rows 2i and 2i+1 share their first ``shared`` columns
    (row 2i's, kept once apart) and read their own ``columns - shared`` from slot buffers."""
    from labelbench.labeling.attention import RowsLayout, SharedPrefixes, _shared_attention

    rows = keys.shape[0]
    own = columns - shared
    own_keys = keys[:, :, :own].clone()  # a slot buffer holding the rows' own columns
    own_values = values[:, :, :own].clone()
    prefixes = [
        [(keys[row, :, :shared].contiguous(), values[row, :, :shared].contiguous())]
        for row in range(0, rows, 2)
    ]
    layout = RowsLayout(
        shared + torch.arange(own)[None].expand(rows, own),
        torch.full((rows, 1), columns - 1),
        128,
        SharedPrefixes(
            torch.arange(rows), [(2 * i, 2 * i + 2, layers) for i, layers in enumerate(prefixes)]
        ),
    )
    return lambda: _shared_attention(query, own_keys, own_values, layout, 0, None)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=128)
    parser.add_argument("--columns", type=int, default=740)
    parser.add_argument("--hidden", type=int, default=1536)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--kv-heads", type=int, default=2)
    parser.add_argument("--intermediate", type=int, default=8960)
    parser.add_argument("--layers", type=int, default=28)
    parser.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float32"))
    parser.add_argument(
        "--shared", type=int, default=0, help="columns pairs of rows share (0: not timed)"
    )
    args = parser.parse_args()
    if min(args.rows, args.columns, args.hidden, args.heads, args.kv_heads, args.layers) < 1:
        parser.error("every size must be at least 1")
    if not 0 <= args.shared < args.columns:
        parser.error(
            f"--shared must be at least 0 and below --columns ({args.columns}), not {args.shared}"
        )
    if args.shared and args.rows % 2:
        parser.error(f"--shared pairs the rows: --rows must be even, not {args.rows}")
    if args.heads % args.kv_heads or args.hidden % args.heads:
        parser.error("--heads must divide --hidden and be a multiple of --kv-heads")
    torch.set_num_threads(1)
    dtype = getattr(torch, args.dtype)
    size = args.hidden // args.heads
    rows, kv, group = args.rows, args.kv_heads, args.heads // args.kv_heads
    capacity = args.columns + 64  # a slot buffer holds more columns than a step reads
    generator = torch.Generator().manual_seed(0)

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator).to(dtype)

    keys, values = normal(rows, kv, capacity, size), normal(rows, kv, capacity, size)
    query = normal(rows, args.heads, 1, size)
    bias = torch.zeros(rows, 1, 1, args.columns, dtype=dtype)
    k, v = keys[:, :, : args.columns], values[:, :, : args.columns]
    parts: dict[str, float] = {}
    parts["attention"] = best_seconds(
        lambda: F.scaled_dot_product_attention(
            query.reshape(rows, kv, group, size), k, v, attn_mask=bias
        )
    )
    if args.shared:
        parts["attention_shared"] = best_seconds(
            shared_attention(keys, values, query, args.columns, args.shared)
        )
    kv_bytes = 2 * k.numel() * k.element_size()
    source, target = torch.cat([k, v]).contiguous(), torch.empty(2 * k.numel(), dtype=dtype)
    copy = best_seconds(lambda: target.copy_(source.view(-1)))
    x = normal(rows, args.hidden)
    wide = normal(rows, args.intermediate)
    shapes = {
        "q_proj": (args.heads * size, args.hidden),
        "k_proj": (kv * size, args.hidden),
        "v_proj": (kv * size, args.hidden),
        "o_proj": (args.hidden, args.heads * size),
        "gate_proj": (args.intermediate, args.hidden),
        "up_proj": (args.intermediate, args.hidden),
        "down_proj": (args.hidden, args.intermediate),
    }
    for name, (out_features, in_features) in shapes.items():
        weight = normal(out_features, in_features)
        inputs = wide if name == "down_proj" else x
        parts[name] = best_seconds(lambda w=weight, i=inputs: F.linear(i, w))
    per_step = {name: seconds * args.layers * 1e3 for name, seconds in parts.items()}
    linear = sum(v for name, v in per_step.items() if not name.startswith("attention"))
    for name, ms in per_step.items():
        print(f"{name}: {ms:.0f} ms a step", file=sys.stderr)
    figures = {
        "cpu": cpu_name(),
        "threads": 1,
        "dtype": args.dtype,
        "rows": rows,
        "columns": args.columns,
        "layers": args.layers,
        "ms_per_step": {name: round(ms, 1) for name, ms in per_step.items()},
        "attention_ms_per_step": round(per_step["attention"], 1),
        "linear_ms_per_step": round(linear, 1),
        "kv_bytes_per_step": kv_bytes * args.layers,
        "attention_gb_per_s": round(kv_bytes / parts["attention"] / 1e9, 2),
        "copy_gb_per_s": round(2 * kv_bytes / copy / 1e9, 2),
        "attention_shared_ms_per_step": (
            round(per_step["attention_shared"], 1) if args.shared else None
        ),
        "speedup_shared_attention": (
            round(parts["attention"] / parts["attention_shared"], 2) if args.shared else None
        ),
        "shared_columns": args.shared,
        "note": "weights hot in cache here (one matrix timed at a time): a real step reads "
        "every layer's weights from memory",
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
