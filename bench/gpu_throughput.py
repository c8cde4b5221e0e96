"""Engine throughput on a GPU at real size: Qwen2.5 1.5B's architecture with random weights.

    python bench/gpu_throughput.py [--pairs 64] [--prompt-tokens 512] [--dtype bfloat16]

Weights cannot reach a GPU machine that has no model cache, so the model is built from its
configuration (``labelbench.models.shapes``) with random weights: the throughput is the real
one, the labels are meaningless. Prompts are random token strings of TL;DR-like length laid out
as the prompt engine lays them out (a shared preamble, one context per pair, two answer tails,
both orders). Prints one JSON object on the last line: engine tokens/s (unique tokens), pairs/s,
the plain one-prompt-at-a-time loop's pairs/s, their ratio, and the largest |ΔP(A)| between them.
Exits 0 with ``{"skipped": ...}`` when no CUDA device is present.
"""

from __future__ import annotations

import argparse
import json
import random
import time

from labelbench.requests import ScoreRequest


class _Tokens:
    """A stand-in tokenizer over the model's vocabulary: text is space-separated token ids."""

    bos_token = None
    eos_token_id = 0
    pad_token_id = 0
    name_or_path = "ids"

    def __call__(
        self, text: str, add_special_tokens: bool = True, return_tensors: str | None = None
    ):
        import torch

        ids = [int(t) if t.isdigit() else 1 + sum(map(ord, t)) for t in text.split()]
        return {"input_ids": torch.tensor([ids]) if return_tensors == "pt" else ids}

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        return " ".join(str(i) for i in ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--device", default="cuda", help="cuda, or cpu for a smoke run")
    parser.add_argument("--layers", type=int, default=None, help="fewer layers (smoke runs)")
    args = parser.parse_args()

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(json.dumps({"skipped": "no CUDA device"}))
        return
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    from transformers import AutoConfig, AutoModelForCausalLM

    from labelbench.labeling.answers import preference_a, softmax
    from labelbench.labeling.transformers_backend import TransformersBackend, naive_answer_logprobs
    from labelbench.models.shapes import qwen2_1_5b_config

    torch.manual_seed(0)
    dtype = getattr(torch, args.dtype)
    shape = qwen2_1_5b_config()
    if args.layers:
        shape["num_hidden_layers"] = args.layers
    config = AutoConfig.for_model(**shape)
    model = AutoModelForCausalLM.from_config(config, dtype=dtype).to(args.device).eval()
    tokens = _Tokens()
    rng = random.Random(0)

    def words(n: int) -> str:
        return " ".join(str(rng.randrange(100, 150_000)) for _ in range(n)) + " "

    shared = words(64)
    requests = []
    for _ in range(args.pairs):
        context = words(args.prompt_tokens - 64 - 80)
        first, second, ending = words(30), words(30), words(4)
        for order in ("AB", "BA"):
            tail = (first + second if order == "AB" else second + first) + ending
            requests.append((order, ScoreRequest(shared, context, tail.strip(), ("16", "17"))))
    engine = TransformersBackend(model, tokens, "qwen2-1.5b-random")
    engine.answer_ids = lambda answers, text: [int(a) for a in answers]  # ids, no tokenizer
    engine.score([r for _, r in requests[:4]])  # warm-up
    sync()
    started = time.perf_counter()
    scored = engine.score([r for _, r in requests])
    sync()
    engine_seconds = time.perf_counter() - started
    unique = engine.processed_tokens
    import labelbench.prompting as prompting

    prompting.answer_token_ids = lambda answers, tokenizer, after="": [int(a) for a in answers]
    started = time.perf_counter()
    plain = [
        naive_answer_logprobs(model, tokens, r.text, r.answers)
        for _, r in requests[: 2 * min(16, args.pairs)]
    ]
    sync()
    plain_seconds = (time.perf_counter() - started) / min(16, args.pairs) * args.pairs
    largest = max(
        abs(preference_a(softmax(s.logprobs), order) - preference_a(softmax(p), order))
        for (order, _), s, p in zip(requests, scored, plain, strict=False)
    )
    print(
        json.dumps(
            {
                "device": torch.cuda.get_device_name() if args.device != "cpu" else "cpu",
                "layers": config.num_hidden_layers,
                "dtype": args.dtype,
                "pairs": args.pairs,
                "prompt_tokens": args.prompt_tokens,
                "engine_tokens_processed": unique,
                "engine_tokens_per_second": unique / engine_seconds,
                "engine_pairs_per_second": args.pairs / engine_seconds,
                "plain_pairs_per_second": args.pairs / plain_seconds,
                "speedup_vs_plain": plain_seconds / engine_seconds,
                "max_abs_pref_diff_vs_plain": largest,
            }
        )
    )


if __name__ == "__main__":
    main()
