"""``labelbench serve`` under load: concurrent reward requests, plus over-long and malformed ones.

    python bench/serve.py [--requests 400] [--unique 100] [--model NAME_OR_DIR] [--mode direct]
        [--overlong 20] [--malformed 20] [--timeout 120] [--rss-bound-mb N]

Starts ``labelbench serve`` in a subprocess (a tiny random Llama built like the tests' unless
``--model`` names one: a built-in name such as ``smollm2-135m`` or a folder), fires all requests
at once (one item each; every unique item is asked ``requests / unique`` times, shuffled), mixed
with ``--overlong`` requests whose item is far over the server's per-item token limit and
``--malformed`` ones (bad JSON, wrong types, missing fields, lone surrogates, empty or oversized
item lists, a body over the byte limit). It checks that every well-formed request is answered 200
within the server's ``--timeout``, that every over-long one is answered 413 and every malformed one
4xx (never 5xx, never a hang), that equal items get equal rewards, and that the server labelled each
unique item once (``/health``). The server's resident memory (RSS, from ``/proc``) is sampled
every 50 ms; with ``--rss-bound-mb`` the run fails when its peak goes over the bound.
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
    model: Path | str, cache: Path, mode: str, max_batch: int, timeout: float
) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable, "-m", "labelbench.cli", "serve", "--labeler", str(model),
        "--variant", VARIANT, "--port", str(port), "--cache-dir", str(cache), "--mode", mode,
        "--max-batch", str(max_batch), "--timeout", str(timeout),
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


def overlong(count: int, seed: int) -> list[bytes]:
    """Bodies with one item far over any built-in labeler's context (about 40,000 words), and
    otherwise well formed in either mode (a reference is given)."""
    rng = random.Random(seed + 1)
    item = {"response": "short", "reference": "also short"}
    return [
        json.dumps({"items": [{"prompt": " ".join(rng.choices(WORDS, k=40_000)), **item}]}).encode()
        for _ in range(count)
    ]


def malformed(count: int) -> list[bytes]:
    """Bodies that must be refused with a 4xx: each kind in turn."""
    kinds = [
        b"{not json",
        b'{"items": "not a list"}',
        b'{"items": [{"prompt": 3, "response": "x"}]}',
        b'{"items": [{"response": "no prompt"}]}',
        b'{"items": [{"prompt": "\\ud800 lone surrogate \\udfff", "response": "x"}]}',
        b'{"items": []}',
        b"\xff\xfe not utf-8",
        json.dumps({"items": [{"prompt": "p", "response": "r"}] * 5000}).encode(),
        b"[" * 100_000,
        b"{" + b'"pad": "' + b"x" * 2_000_000 + b'"}',
    ]
    return [kinds[i % len(kinds)] for i in range(count)]


class RssSampler:
    """Peak resident memory of a process, sampled from ``/proc/PID/status`` every 50 ms (MiB)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_mib, self.samples = pid, 0.0, 0

    def read(self) -> float:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.peak_mib = max(self.peak_mib, self.read())
            self.samples += 1
            await asyncio.sleep(0.05)


async def fire(
    url: str, requests: list[tuple[str, bytes]], sampler: RssSampler
) -> tuple[list[float], list[httpx.Response | None]]:
    """Send every body at once; returns per-request seconds and replies (None: no reply)."""
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=len(requests))
    stop = asyncio.Event()
    watcher = asyncio.create_task(sampler.run(stop))
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:

        async def one(body: bytes) -> tuple[float, httpx.Response | None]:
            started = time.perf_counter()
            try:
                reply: httpx.Response | None = await client.post(
                    "/score", content=body, headers={"content-type": "application/json"}
                )
            except httpx.HTTPError as error:
                log(f"no reply: {type(error).__name__}: {error}")
                reply = None
            return time.perf_counter() - started, reply

        done = await asyncio.gather(*(one(body) for _, body in requests))
    stop.set()
    await watcher
    return [seconds for seconds, _ in done], [reply for _, reply in done]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="concurrent requests (>= 200)")
    parser.add_argument("--unique", type=int, default=100, help="distinct items among them")
    parser.add_argument("--model", default=None, help="built-in name or folder (default: tiny)")
    parser.add_argument("--mode", choices=("direct", "pairwise"), default="direct")
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--overlong", type=int, default=20, help="over-long requests mixed in")
    parser.add_argument("--malformed", type=int, default=20, help="malformed requests mixed in")
    parser.add_argument("--timeout", type=float, default=120.0, help="the server's --timeout (s)")
    parser.add_argument("--rss-bound-mb", type=float, default=None, help="fail above this peak")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        folder = args.model or tiny_model(Path(scratch) / "tiny")
        unique = items(args.unique, args.seed)
        good = [unique[i % len(unique)] for i in range(args.requests)]
        requests = [("good", json.dumps({"items": [item]}).encode()) for item in good]
        requests += [("overlong", body) for body in overlong(args.overlong, args.seed)]
        requests += [("malformed", body) for body in malformed(args.malformed)]
        random.Random(args.seed).shuffle(requests)
        log(f"starting labelbench serve on {folder}")
        process, url = start_server(
            folder, Path(scratch) / "cache", args.mode, args.max_batch, args.timeout
        )
        try:
            sampler = RssSampler(process.pid)
            idle_mib = sampler.read()
            log(
                f"{args.requests} concurrent requests ({len(unique)} distinct items), "
                f"{args.overlong} over-long, {args.malformed} malformed; RSS {idle_mib:.0f} MiB"
            )
            started = time.perf_counter()
            latencies, replies = asyncio.run(fire(url, requests, sampler))
            wall = time.perf_counter() - started
            health = httpx.get(f"{url}/health").json()
        finally:
            process.terminate()
            process.wait(timeout=30)

    def statuses(kind: str) -> list[int]:
        return [
            reply.status_code if reply is not None else 0
            for (k, _), reply in zip(requests, replies, strict=True)
            if k == kind
        ]

    def seconds(kind: str) -> list[float]:
        return [t for (k, _), t in zip(requests, latencies, strict=True) if k == kind]

    rewards: dict[bytes, set[float]] = {}
    for (kind, body), reply in zip(requests, replies, strict=True):
        if kind == "good" and reply is not None and reply.status_code == 200:
            rewards.setdefault(body, set()).add(reply.json()["rewards"][0])
    good_seconds = seconds("good")
    refused = statuses("overlong") + statuses("malformed")
    result = {
        "requests": args.requests,
        "distinct_items": len(unique),
        "answered_200": statuses("good").count(200),
        "overlong": args.overlong,
        "overlong_413": statuses("overlong").count(413),
        "malformed": args.malformed,
        "malformed_4xx": sum(400 <= code < 500 for code in statuses("malformed")),
        "refused_5xx_or_no_reply": sum(code == 0 or code >= 500 for code in refused),
        "refusal_max_seconds": round(max(seconds("overlong") + seconds("malformed"), default=0), 3),
        "equal_items_equal_rewards": all(len(v) == 1 for v in rewards.values()),
        "labelled": health["labelled"],
        # /health counts labelled rows: one per item in direct mode, both orders in pairwise
        "labelled_once_each": health["labelled"]
        == len(unique) * (2 if args.mode == "pairwise" else 1),
        "engine_passes": health["passes"],
        "p50_seconds": round(percentile(good_seconds, 0.5), 4),
        "p99_seconds": round(percentile(good_seconds, 0.99), 4),
        "max_seconds": round(max(good_seconds), 4),
        "server_timeout_seconds": args.timeout,
        "within_timeout": max(good_seconds) <= args.timeout,
        "mean_seconds": round(statistics.fmean(good_seconds), 4),
        "requests_per_second": round(len(requests) / wall, 1),
        "wall_seconds": round(wall, 2),
        "rss_idle_mib": round(idle_mib, 1),
        "rss_peak_mib": round(sampler.peak_mib, 1),
        "rss_bound_mib": args.rss_bound_mb,
        "rss_samples": sampler.samples,
        "model": str(args.model or "tiny random Llama"),
        "mode": args.mode,
    }
    print(f"p50 {result['p50_seconds'] * 1000:.0f} ms, p99 {result['p99_seconds'] * 1000:.0f} ms")
    print(json.dumps(result))
    ok = (
        result["answered_200"] == args.requests
        and result["labelled_once_each"]
        and result["equal_items_equal_rewards"]
        and result["overlong_413"] == args.overlong
        and result["malformed_4xx"] == args.malformed
        and result["within_timeout"]
        and (args.rss_bound_mb is None or sampler.peak_mib <= args.rss_bound_mb)
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
