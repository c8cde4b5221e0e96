"""Time loading a built-in model from its GGUF (de-quantizing) against loading it from the
safetensors cache that ``labelbench models pull`` writes.

    python bench/model_load.py [NAME]        # NAME defaults to smollm2-135m; pulls it if needed

Prints both times, their ratio and the largest logit difference between the two loads on a fixed
prompt (expected 0: the cache holds the same float32 weights); the last line is one JSON object.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

import torch
import transformers

from labelbench.models import registry

PROMPT = "Which of the two summaries is better? Answer 1 or 2. Preferred Summary="


def main(name: str = "smollm2-135m") -> dict[str, object]:
    registry.pull(name)
    manifest = registry.read_manifest(name)
    gguf = registry.model_dir(name) / manifest["source"]["gguf_file"]
    torch.set_num_threads(os.cpu_count() or 1)

    start = time.perf_counter()
    fresh_model, tokenizer = registry.load_gguf(gguf)
    gguf_s = time.perf_counter() - start

    start = time.perf_counter()
    cached = registry.load_model(name)
    cached_s = time.perf_counter() - start

    ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    with torch.no_grad():
        difference = (fresh_model(ids).logits - cached.model(ids).logits).abs().max().item()

    result = {
        "model": name,
        "gguf_load_s": round(gguf_s, 2),
        "cached_load_s": round(cached_s, 2),
        "speedup": round(gguf_s / cached_s, 1),
        "max_abs_logit_diff": difference,
        "parameters": manifest["parameters"],
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cpu": platform.processor() or platform.machine(),
    }
    print(f"first load, from GGUF (de-quantizing): {gguf_s:6.2f} s")
    print(f"cached load, from safetensors:         {cached_s:6.2f} s")
    print(f"ratio: {gguf_s / cached_s:.1f}x")
    print(f"largest |logit difference| between the two on a fixed prompt: {difference:.2e}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(*sys.argv[1:2])
