"""The engine's time at several attention query-block sizes, one model, interleaved in one run.

    python bench/attention_block.py [--model smollm2-135m] [--dtype bfloat16] [--pairs 12]
                                    [--blocks 32 64 128 512]

Labels the first ``--pairs`` TL;DR comparisons (``base-0shot``, both orders) with one engine per
block size, three rounds in alternating order, one thread; prints one JSON object on the last
line: seconds per block size and each size's speed relative to the first.
"""

from __future__ import annotations

import argparse
import json
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--blocks", type=int, nargs="+", default=[32, 64, 128, 512])
    args = parser.parse_args()

    import torch
    from labeling import TLDR  # bench/labeling.py: the data file and its location

    from labelbench.data import load_comparisons
    from labelbench.labeling import label
    from labelbench.labeling.transformers_backend import TransformersBackend
    from labelbench.models.registry import load_model
    from labelbench.prompting import plan

    torch.set_num_threads(1)
    lm = load_model(args.model, dtype=getattr(torch, args.dtype))
    items = load_comparisons(TLDR)[: args.pairs]
    planned = plan(items, "summarization/base-0shot", tokenizer=lm.tokenizer).requests
    engines = {
        b: TransformersBackend(lm.model, lm.tokenizer, lm.identity, causal_block=b)
        for b in args.blocks
    }
    for engine in engines.values():  # warm-up
        label(planned[:4], engine, cache=None, progress=False)
    seconds = dict.fromkeys(args.blocks, 0.0)
    for turn in range(3):
        for block in args.blocks if turn % 2 == 0 else args.blocks[::-1]:
            started = time.perf_counter()
            label(planned, engines[block], cache=None, progress=False)
            seconds[block] += time.perf_counter() - started
    first = seconds[args.blocks[0]]
    print(
        json.dumps(
            {
                "model": lm.identity,
                "dtype": args.dtype,
                "pairs": args.pairs,
                "seconds": seconds,
                "speed_vs_first": {b: first / s for b, s in seconds.items()},
                "load_average": os.getloadavg()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
