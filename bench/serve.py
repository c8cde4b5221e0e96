"""``labelbench serve`` under load: concurrent reward requests against a tiny model (CPU).

    python bench/serve.py [--requests 400] [--unique 100] [--model DIR] [--mode direct]

Starts ``labelbench serve`` in a subprocess (a tiny random Llama built like the tests' unless
``--model`` names one), fires all requests at once (one item each; every unique item is asked
``requests / unique`` times, shuffled), and checks that every request is answered 200, that equal
items get equal rewards, and that the server labelled each unique item once (``/health``).
Prints progress on stderr, p50/p99 latency, and one JSON object on the last line of stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
VARIANT = "summarization/base-0shot"
WORDS = ["the", "post", "asks", "about", "a", "job", "friend", "advice", "short", "long"]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def tiny_model(folder: Path) -> Path:
    """The tests' tiny random Llama (``tests/conftest.py``), saved as a model folder."""
    sys.path.insert(0, str(REPO))
    from tests.conftest import build_tiny_model, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    build_tiny_model(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def start_server(
    model: Path, cache: Path, mode: str, max_batch: int
) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable, "-m", "labelbench.cli", "serve", "--labeler", str(model),
        "--variant", VARIANT, "--port", str(port), "--cache-dir", str(cache), "--mode", mode,
        "--max-batch", str(max_batch),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"labelbench serve exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("labelbench serve did not come up within 180 s")


def items(unique: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    return [
        {
            "prompt": f"POST: {' '.join(rng.choices(WORDS, k=rng.randint(10, 60)))}\n\nTL;DR:",
            "response": " ".join(rng.choices(WORDS, k=rng.randint(3, 12))),
            "reference": " ".join(rng.choices(WORDS, k=rng.randint(3, 12))),
        }
        for _ in range(unique)
    ]


async def fire(
    url: str, requests: list[dict[str, str]]
) -> tuple[list[float], list[httpx.Response]]:
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=len(requests))
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:

        async def one(item: dict[str, str]) -> tuple[float, httpx.Response]:
            started = time.perf_counter()
            reply = await client.post("/score", json={"items": [item]})
            return time.perf_counter() - started, reply

        done = await asyncio.gather(*(one(item) for item in requests))
    return [seconds for seconds, _ in done], [reply for _, reply in done]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="concurrent requests (>= 200)")
    parser.add_argument("--unique", type=int, default=100, help="distinct items among them")
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: tiny)")
    parser.add_argument("--mode", choices=("direct", "pairwise"), default="direct")
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        folder = args.model or tiny_model(Path(scratch) / "tiny")
        unique = items(args.unique, args.seed)
        requests = [unique[i % len(unique)] for i in range(args.requests)]
        random.Random(args.seed).shuffle(requests)
        log(f"starting labelbench serve on {folder}")
        process, url = start_server(folder, Path(scratch) / "cache", args.mode, args.max_batch)
        try:
            log(f"{len(requests)} concurrent requests, {len(unique)} distinct items")
            started = time.perf_counter()
            latencies, replies = asyncio.run(fire(url, requests))
            wall = time.perf_counter() - started
            health = httpx.get(f"{url}/health").json()
        finally:
            process.terminate()
            process.wait(timeout=30)

    statuses = [reply.status_code for reply in replies]
    rewards: dict[str, set[float]] = {}
    for item, reply in zip(requests, replies, strict=True):
        if reply.status_code == 200:
            rewards.setdefault(json.dumps(item, sort_keys=True), set()).add(
                reply.json()["rewards"][0]
            )
    result = {
        "requests": len(requests),
        "distinct_items": len(unique),
        "answered_200": statuses.count(200),
        "equal_items_equal_rewards": all(len(v) == 1 for v in rewards.values()),
        "labelled": health["labelled"],
        "labelled_once_each": health["labelled"] == len(unique),
        "engine_passes": health["passes"],
        "p50_seconds": round(percentile(latencies, 0.5), 4),
        "p99_seconds": round(percentile(latencies, 0.99), 4),
        "mean_seconds": round(statistics.fmean(latencies), 4),
        "requests_per_second": round(len(requests) / wall, 1),
        "wall_seconds": round(wall, 2),
        "mode": args.mode,
    }
    print(f"p50 {result['p50_seconds'] * 1000:.0f} ms, p99 {result['p99_seconds'] * 1000:.0f} ms")
    print(json.dumps(result))
    ok = result["answered_200"] == len(requests) and result["labelled_once_each"]
    sys.exit(0 if ok and result["equal_items_equal_rewards"] else 1)


if __name__ == "__main__":
    main()
