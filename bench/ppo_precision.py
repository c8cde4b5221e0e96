"""bfloat16 autocast against float32 in a small real PPO run: within run-to-run noise?

    OMP_NUM_THREADS=1 python bench/ppo_precision.py --reward-model RM_DIR [--policy smollm2-135m]
        [--prompts FILE] [--updates 8] [--out DIR]

Runs ``rlaif ppo`` three times on the same prompts, policy and reward model: float32 with seed 0,
float32 with seed 1 (the run-to-run noise: another data order and other samples) and bfloat16
autocast with seed 0. For each logged quantity (mean reward-model score, KL to the reference,
entropy, policy and value loss, response length) it prints the mean over updates of
|bfloat16 - float32| (same seed) and of |float32 seed 1 - float32 seed 0|, and their ratio:
at most 1 means bfloat16 moves the run less than another seed does. The unit tests
(``tests/test_rlaif_precision.py``) check the same on tiny models, with 1.5 as the bound.

Small settings so that it fits a CPU session: TL;DR posts (``--prompts``, default the shared
data's ``openai_tldr_posts/tldr_test.json``, train split) cut to 128 tokens, 24-token responses,
batch 8, 2 minibatches, 2 epochs. Progress on stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from statistics import mean

METRICS = ("score", "kl", "entropy", "policy_loss", "value_loss", "response_length")
RUNS = {
    "float32_seed0": ("float32", 0),
    "float32_seed1": ("float32", 1),
    "bfloat16_seed0": ("bfloat16", 0),
}


def curves(log: Path) -> dict[str, list[float]]:
    """``{metric: [value per update]}`` from a run's ``log.jsonl``."""
    rows = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]
    return {name: [float(row[name]) for row in rows] for name in METRICS}


def gap(one: list[float], two: list[float]) -> float:
    """Mean absolute difference of two curves over the updates both have."""
    return mean(abs(a - b) for a, b in zip(one, two, strict=False))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reward-model", type=Path, required=True)
    parser.add_argument("--policy", default="smollm2-135m")
    data = Path(os.environ.get("LABELBENCH_DATA_DIR", "../shared/data"))
    parser.add_argument(
        "--prompts", type=Path, default=data / "openai_tldr_posts" / "tldr_test.json"
    )
    parser.add_argument("--updates", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("runs/ppo-precision"))
    args = parser.parse_args()

    results: dict[str, dict[str, list[float]]] = {}
    seconds: dict[str, float] = {}
    for name, (precision, seed) in RUNS.items():
        out = args.out / name
        log = out / "log.jsonl"
        if not log.exists() or len(curves(log)["score"]) < args.updates:
            command = [sys.executable, "-m", "rlaif.cli", "ppo", "--prompts", str(args.prompts)]
            command += ["--split", "train", "--policy", args.policy]
            command += ["--reward-model", str(args.reward_model), "--out", str(out)]
            command += ["--batch-size", "8", "--num-minibatches", "2", "--ppo-epochs", "2"]
            command += ["--response-length", "24", "--max-prompt-tokens", "128"]
            command += ["--updates", str(args.updates), "--precision", precision]
            command += ["--seed", str(seed), "--no-progress"]
            if log.exists():
                command.append("--resume")
            print(f"{name}: {' '.join(command)}", file=sys.stderr)
            started = time.perf_counter()
            subprocess.run(command, check=True)
            seconds[name] = round(time.perf_counter() - started, 1)
        results[name] = curves(log)

    base = results["float32_seed0"]
    figures: dict[str, dict[str, float]] = {}
    for metric in METRICS:
        precision_gap = gap(results["bfloat16_seed0"][metric], base[metric])
        seed_gap = gap(results["float32_seed1"][metric], base[metric])
        figures[metric] = {
            "bf16_vs_fp32": round(precision_gap, 5),
            "seed1_vs_seed0": round(seed_gap, 5),
            "ratio": round(precision_gap / seed_gap, 3) if seed_gap else float("nan"),
        }
    summary = {
        "policy": args.policy,
        "updates": args.updates,
        "metrics": figures,
        "within_noise": [m for m, f in figures.items() if f["ratio"] <= 1.5],
        "first_last_score": {
            name: [round(run["score"][0], 4), round(run["score"][-1], 4)]
            for name, run in results.items()
        },
        "seconds": seconds,
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
