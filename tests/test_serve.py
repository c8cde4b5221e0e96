"""``labelbench serve``: batching, bounds, malformed requests, OpenRLHF's request shape, restart."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from labelbench.config import LabelerSpec
from labelbench.labeling.backend import Sample, Scored
from labelbench.labeling.labeler import Labeler, open_labeler
from labelbench.prompting import load_variant
from labelbench.serve import (
    RewardEngine,
    RewardItem,
    RewardService,
    ServeSettings,
    create_app,
    split_query,
)

VARIANT = "summarization/base-0shot"


def items(count: int, seed: int = 0) -> list[RewardItem]:
    rng = random.Random(seed)
    words = ["the", "post", "asks", "about", "a", "job", "friend", "advice", "short", "long"]
    return [
        RewardItem(
            f"POST: {' '.join(rng.choices(words, k=rng.randint(5, 20)))}\n\nTL;DR:",
            " ".join(rng.choices(words, k=rng.randint(2, 8))),
            " ".join(rng.choices(words, k=rng.randint(2, 8))),
        )
        for _ in range(count)
    ]


def body(batch: list[RewardItem]) -> dict:
    return {
        "items": [
            {"prompt": i.prompt, "response": i.response, "reference": i.reference} for i in batch
        ]
    }


async def _client_calls(service: RewardService, calls):
    transport = httpx.ASGITransport(app=create_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://serve") as client:
        try:
            return await calls(client)
        finally:
            await service.stop()


@pytest.fixture()
def tiny_labeler(tiny_lm_dir) -> Labeler:
    return open_labeler(LabelerSpec(name=str(tiny_lm_dir)))


def test_200_concurrent_requests_are_batched_and_each_item_labelled_once(tiny_labeler, tmp_path):
    unique = items(50)
    requests = [[item] for item in unique for _ in range(4)]
    random.Random(1).shuffle(requests)
    engine = RewardEngine(tiny_labeler, load_variant(VARIANT), cache_dir=tmp_path / "cache")
    service = RewardService(engine, ServeSettings(max_batch=32, max_wait_ms=20))

    async def calls(client):
        replies = await asyncio.gather(*(client.post("/score", json=body(r)) for r in requests))
        health = (await client.get("/health")).json()
        return replies, health

    replies, health = asyncio.run(_client_calls(service, calls))
    assert [r.status_code for r in replies] == [200] * len(requests)
    by_item: dict[RewardItem, set[float]] = {}
    for request, reply in zip(requests, replies, strict=True):
        (value,) = reply.json()["rewards"]
        by_item.setdefault(request[0], set()).add(value)
    assert all(len(values) == 1 for values in by_item.values())
    assert engine.labelled == len(unique)  # cached items were never labelled twice
    assert health["labelled"] == len(unique) and health["queued"] == 0
    assert engine.passes < len(requests) // 4  # concurrent requests shared engine passes
    # the same labelling path as the benchmark's direct scores
    expected = tiny_labeler.direct_rewards(
        [i.prompt for i in unique],
        [i.response for i in unique],
        "summarization",
        variant=VARIANT,
        cache=None,
    ).rewards
    assert [by_item[i].pop() for i in unique] == pytest.approx(expected, abs=1e-6)


def test_malformed_requests_get_a_4xx_with_the_reason_and_the_server_keeps_serving(
    tiny_labeler, tmp_path
):
    engine = RewardEngine(tiny_labeler, load_variant(VARIANT), cache_dir=tmp_path / "cache")
    service = RewardService(engine, ServeSettings(max_body_bytes=4096, max_items=3))
    good = body(items(1))

    async def calls(client):
        post = client.post
        headers = {"content-type": "application/json"}
        return {
            "bad json": await post("/score", content=b'{"items": [', headers=headers),
            "not utf-8": await post("/score", content=b'{"items": "\xff\xfe"}', headers=headers),
            "huge": await post("/score", content=b"x" * 10_000, headers=headers),
            "missing field": await post("/score", json={"items": [{"prompt": "p"}]}),
            "wrong type": await post("/score", json={"items": [{"prompt": 1, "response": "r"}]}),
            "no items": await post("/score", json={"items": []}),
            "too many": await post("/score", json=body(items(4))),
            "surrogate": await post(
                "/score",
                content=b'{"items": [{"prompt": "\\ud800", "response": "r"}]}',
                headers=headers,
            ),
            "openrlhf lengths": await post("/get_reward", json={"query": ["a"], "prompts": []}),
            "after": await post("/score", json=good),
        }

    replies = asyncio.run(_client_calls(service, calls))
    reasons = {name: reply.json().get("error", "") for name, reply in replies.items()}
    assert replies["bad json"].status_code == 400 and "invalid JSON" in reasons["bad json"]
    assert replies["not utf-8"].status_code == 400 and "not UTF-8" in reasons["not utf-8"]
    assert replies["huge"].status_code == 413 and "4096" in reasons["huge"]
    assert replies["missing field"].status_code == 400
    assert "items.0.response" in reasons["missing field"]
    assert replies["wrong type"].status_code == 400 and "items.0.prompt" in reasons["wrong type"]
    assert replies["no items"].status_code == 400
    assert replies["too many"].status_code == 413
    assert replies["surrogate"].status_code == 400 and "surrogate" in reasons["surrogate"]
    assert replies["openrlhf lengths"].status_code == 400
    assert replies["after"].status_code == 200 and len(replies["after"].json()["rewards"]) == 1


class SlowBackend:
    """Direct-score answers after a delay."""

    identity = "slow"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def score(self, requests):
        time.sleep(self.seconds)
        return [Scored(tuple(-float(i) for i in range(len(r.answers))), 5) for r in requests]

    def rationales(self, requests, seeds):
        return [[Sample("", None, 5, 0)] for _ in requests]


def test_full_queue_is_503_and_a_slow_answer_is_504(tmp_path):
    labeler = Labeler(LabelerSpec(name="slow", chat=False), SlowBackend(0.6), None, None)
    engine = RewardEngine(labeler, load_variant(VARIANT), use_cache=False)
    service = RewardService(engine, ServeSettings(queue_size=2, timeout=0.3, max_wait_ms=0))

    async def calls(client):
        first = asyncio.create_task(client.post("/score", json=body(items(2, seed=1))))
        while service.queued < 2:  # until the first request holds the whole queue
            await asyncio.sleep(0.005)
        full = await client.post("/score", json=body(items(1, seed=2)))
        return full, await first

    full, slow = asyncio.run(_client_calls(service, calls))
    assert full.status_code == 503 and "queue full" in full.json()["error"]
    assert full.headers["retry-after"] == "1"
    assert slow.status_code == 504 and "0.3 s" in slow.json()["error"]


class DownBackend(SlowBackend):
    def score(self, requests):
        from labelbench.errors import ModelError

        raise ModelError("http://rm:8000/v1/completions failed 9 times (last: ConnectError)")


def test_a_failing_labeler_is_502_and_an_unrenderable_item_400():
    labeler = Labeler(LabelerSpec(name="down", chat=False), DownBackend(0), None, None)
    down = RewardService(RewardEngine(labeler, load_variant(VARIANT), use_cache=False))
    slow = Labeler(LabelerSpec(name="ok", chat=False, max_tokens=50), SlowBackend(0), None, None)
    tight = RewardService(
        RewardEngine(
            slow, load_variant("summarization/base-2shot"), use_cache=False, mode="pairwise"
        ),
        ServeSettings(mode="pairwise", max_item_tokens=10_000),  # past the per-item check
    )

    async def call(service):
        return await _client_calls(
            service, lambda client: client.post("/score", json=body(items(1)))
        )

    failed = asyncio.run(call(down))
    assert failed.status_code == 502 and "ConnectError" in failed.json()["error"]
    refused = asyncio.run(call(tight))
    assert refused.status_code == 400 and "does not fit in 50" in refused.json()["error"]


def test_openrlhf_request_shape_gives_the_pairwise_preference_of_the_benchmark_path(
    tiny_labeler, tmp_path
):
    from labelbench.data import Comparison

    batch = items(3, seed=5)
    engine = RewardEngine(
        tiny_labeler, load_variant(VARIANT), mode="pairwise", cache_dir=tmp_path / "cache"
    )
    service = RewardService(engine, ServeSettings(mode="pairwise"))
    openrlhf = {  # OpenRLHF 0.11.2 sends the decoded prompt + response, special tokens kept
        "query": [f"{i.prompt} {i.response}</s>" for i in batch],
        "prompts": [i.prompt for i in batch],
        "labels": [i.reference for i in batch],
    }

    async def calls(client):
        return (
            await client.post("/get_reward", json=openrlhf),
            await client.post("/score", json=body(batch)),
        )

    remote, plain = asyncio.run(_client_calls(service, calls))
    assert remote.status_code == 200 and plain.status_code == 200
    rewards = remote.json()["rewards"]
    assert rewards == plain.json()["rewards"] == remote.json()["scores"]
    pairs = [
        Comparison(
            id=str(n),
            group_id=str(n),
            task="summarization",
            context=i.prompt,
            response_a=i.response,
            response_b=i.reference,
        )
        for n, i in enumerate(batch)
    ]
    assert rewards == pytest.approx(tiny_labeler.preferences(pairs, VARIANT, cache=None), abs=1e-6)
    assert split_query("P: x TL;DR: a b<|im_end|>\n<|endoftext|>", "P: x TL;DR:") == " a b"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(model_dir: Path, cache: Path, port: int) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "labelbench.cli",
        "serve",
        "--labeler",
        str(model_dir),
        "--variant",
        VARIANT,
        "--port",
        str(port),
        "--cache-dir",
        str(cache),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stderr.read())
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("labelbench serve did not come up")


@pytest.mark.slow  # two server processes start (torch and transformers imports): about 20 s
def test_killed_server_restarts_with_the_same_rewards_from_its_cache(tiny_lm_dir, tmp_path):
    port = _free_port()
    batch = body(items(12, seed=9))
    process = _start(tiny_lm_dir, tmp_path / "cache", port)
    try:
        first = httpx.post(f"http://127.0.0.1:{port}/score", json=batch, timeout=60).json()
        assert httpx.get(f"http://127.0.0.1:{port}/health").json()["labelled"] == 12
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    process = _start(tiny_lm_dir, tmp_path / "cache", port)
    try:
        again = httpx.post(f"http://127.0.0.1:{port}/score", json=batch, timeout=60).json()
        health = httpx.get(f"http://127.0.0.1:{port}/health").json()
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert again["rewards"] == first["rewards"]
    assert health["labelled"] == 0 and health["cached"] == 12  # all read back, none recomputed
    assert json.dumps(first["rewards"])  # plain JSON numbers


# ---------------------------------------------------------------- hostile load (issue 25, item 1)


class CountingBackend(SlowBackend):
    """SlowBackend that counts the items it scored."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.scored = 0

    def score(self, requests):
        self.scored += len(requests)
        return super().score(requests)


def test_an_over_long_item_is_413_before_any_forward_pass_and_deep_json_400(tiny_labeler, tmp_path):
    engine = RewardEngine(tiny_labeler, load_variant(VARIANT), cache_dir=tmp_path / "cache")
    service = RewardService(engine)
    long = {"items": [{"prompt": "POST: " + "the post asks " * 4000, "response": "a job"}]}
    nested = b"[" * 100_000 + b"]" * 100_000

    async def calls(client):
        headers = {"content-type": "application/json"}
        return (
            await client.post("/score", json=long),
            await client.post("/score", content=nested, headers=headers),
            await client.post("/get_reward", content=nested, headers=headers),
            await client.post("/score", json=body(items(1))),
        )

    over, deep, deep_openrlhf, after = asyncio.run(_client_calls(service, calls))
    assert over.status_code == 413
    assert "over the limit of 4096 tokens per item" in over.json()["error"]  # the model's context
    assert deep.status_code == deep_openrlhf.status_code == 400
    assert "nested too deeply" in deep.json()["error"]
    assert after.status_code == 200
    assert engine.passes == 1 and engine.labelled == 1  # the long item never reached the model


def test_a_timed_out_request_stops_its_work():
    backend = CountingBackend(0.25)
    labeler = Labeler(LabelerSpec(name="slow", chat=False), backend, None, None)
    engine = RewardEngine(labeler, load_variant(VARIANT), use_cache=False)
    service = RewardService(engine, ServeSettings(timeout=0.3, max_wait_ms=0, max_batch=64))

    async def calls(client):
        reply = await client.post("/score", json=body(items(64, seed=3)))
        await asyncio.sleep(1.0)  # the worker would go on with the rest of the request here
        return reply

    reply = asyncio.run(_client_calls(service, calls))
    assert reply.status_code == 504
    assert backend.scored <= 32  # one or two chunks of 16 ran; the other items were dropped
    assert service.abandoned >= 32 and service.queued == 0


SIGTERM_SERVER = """
import sys, time
from labelbench.config import LabelerSpec, ServeSettings
from labelbench.labeling.backend import Scored
from labelbench.labeling.labeler import Labeler
from labelbench.prompting import load_variant
from labelbench.serve import RewardEngine, serve

class Busy:
    identity = "busy"
    def score(self, requests):
        time.sleep(60)  # one forward pass that will not end soon
        return [Scored((0.0,) * len(r.answers), 5) for r in requests]

labeler = Labeler(LabelerSpec(name="busy", chat=False), Busy(), None, None)
engine = RewardEngine(labeler, load_variant("summarization/base-0shot"), use_cache=False)
serve(engine, ServeSettings(), port=int(sys.argv[1]))
"""


def test_sigterm_stops_a_busy_server_within_seconds():
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-c", SIGTERM_SERVER, str(port)])
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        import threading

        threading.Thread(
            target=lambda: httpx.post(f"{url}/score", json=body(items(1)), timeout=90),
            daemon=True,
        ).start()
        while httpx.get(f"{url}/health", timeout=5).json()["queued"] == 0:
            time.sleep(0.05)
        time.sleep(0.2)  # the engine is inside its 60 s pass
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
        assert time.monotonic() - started < 10
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_openrlhf_queries_with_pad_text_after_eos_get_one_reward(tiny_labeler, tmp_path):
    """Issue 25 item 3: decoded with special tokens, a batch's shorter queries carry EOS and
    then pad text; the response ends at its EOS."""
    engine = RewardEngine(tiny_labeler, load_variant(VARIANT), cache_dir=tmp_path / "cache")
    service = RewardService(engine)
    prompt, response = "POST: a friend asks about a job\n\nTL;DR:", " a job question"
    tails = ["</s>", "</s><pad>", "</s><pad><pad><pad>", "</s> left over text<pad>", ""]
    request = {"query": [prompt + response + tail for tail in tails], "prompts": [prompt] * 5}

    async def calls(client):
        return await client.post("/get_reward", json=request)

    reply = asyncio.run(_client_calls(service, calls))
    assert reply.status_code == 200
    assert len(set(reply.json()["rewards"])) == 1 and engine.labelled == 1
    assert split_query("P a b</s>[PAD][PAD]", "P") == " a b"
    assert split_query("<pad><pad>P a b<|im_end|>\nmore<|endoftext|>", "P") == " a b"
    assert split_query("P a b<unk>", "P", tiny_labeler.tokenizer) == " a b"  # its specials


def test_the_direct_score_is_said_to_be_unvalidated(tiny_lm_dir, capsys):
    """Issue 25 item 14: no benchmark cell measured the direct score that serve defaults to."""
    from labelbench.serve import open_engine

    spec = LabelerSpec(name=str(tiny_lm_dir))
    direct = open_engine(labeler=spec, variant=VARIANT, use_cache=False)
    assert "direct 1-9 score, which no benchmark cell validated" in capsys.readouterr().err
    open_engine(labeler=spec, variant=VARIANT, mode="pairwise", use_cache=False)
    assert "validated" not in capsys.readouterr().err

    async def calls(client):
        return (await client.get("/health")).json()

    assert asyncio.run(_client_calls(RewardService(direct), calls))["validated"] is False
