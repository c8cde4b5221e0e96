"""The HTTP backend against a real server process on 127.0.0.1 that injects 429, 500 and stalls."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_labeling_helpers import make_planned

from labelbench.errors import ModelError
from labelbench.labeling import LabelCache, label, preferences
from labelbench.labeling.http_backend import HTTPBackend
from labelbench.labeling.jsonl import write_planned
from labelbench.requests import PlannedRequest, ScoreRequest

SERVER = Path(__file__).with_name("fake_openai_server.py")
SECRET = "sk-labelbench-test-0123456789"
KEY_ENV = "LABELBENCH_TEST_API_KEY"
MISSING = "[no-answer-2]"


@contextmanager
def serve(*flags: str) -> Iterator[str]:
    process = subprocess.Popen(
        [
            sys.executable,
            str(SERVER),
            "--port",
            "0",
            "--api-key",
            SECRET,
            "--missing-marker",
            MISSING,
            *flags,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("PORT "), line
        yield f"http://127.0.0.1:{int(line.split()[1])}/v1"
    finally:
        process.kill()
        process.wait()


def planned_requests() -> list[PlannedRequest]:
    planned = make_planned(6) + make_planned(
        2, variant="cot", rationale={"n": 2, "temperature": 0.7}
    )
    marked = ScoreRequest("Which summary is better?\n", f"Post: {MISSING}\n", "Preferred Summary=")
    planned.append(PlannedRequest("marked", "v0", "AB", marked))
    return planned


def stable(rows) -> list[tuple]:
    return [
        (r.item_id, r.variant, r.order, r.distribution, r.samples, r.prompt_tokens) for r in rows
    ]


def test_faults_are_retried_and_labels_equal_a_clean_run(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(KEY_ENV, SECRET)
    planned = planned_requests()
    with serve() as url:
        clean_backend = HTTPBackend(url, "fake", api_key_env=KEY_ENV, timeout=30)
        clean = label(planned, clean_backend, progress=False)
    assert clean_backend.retries == 0

    caplog.set_level(logging.DEBUG)
    with serve("--fail-first", "3", "--stall-seconds", "2") as url:
        backend = HTTPBackend(
            url, "fake", api_key_env=KEY_ENV, timeout=0.5, backoff=0.01, concurrency=4
        )
        with LabelCache(tmp_path / "cache") as cache:
            faulty = label(planned, backend, cache=cache, progress=False)
    distinct_prompts = 6 * 2 + 2 * 2 * (1 + 2) + 1  # scores; chains: one generation + two scorings
    # each prompt sees 429, 500 and a stall past the timeout (more if the machine is slow)
    assert backend.retries >= 3 * distinct_prompts
    assert stable(faulty.rows) == stable(clean.rows)

    (marked,) = [p for p in preferences(faulty.rows) if p.item_id == "marked"]
    assert not marked.scored  # "2" missing from the top logprobs: unscored, not a wrong answer
    assert all(p.scored for p in preferences(faulty.rows) if p.item_id != "marked")

    assert any("retry" in record.getMessage() for record in caplog.records)
    assert not any(SECRET in record.getMessage() for record in caplog.records)
    for path in (tmp_path / "cache").iterdir():
        assert SECRET.encode() not in path.read_bytes()
    assert SECRET not in json.dumps(faulty.records())
    assert SECRET not in backend.identity


def test_cli_run_through_faults_and_no_key_in_outputs(tmp_path):
    requests, out = tmp_path / "planned.jsonl", tmp_path / "labels.jsonl"
    write_planned(requests, make_planned(3))
    env = {**os.environ, KEY_ENV: SECRET}
    with serve("--fail-first", "2") as url:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "labelbench.labeling",
                "--requests",
                str(requests),
                "--out",
                str(out),
                "--model",
                "fake",
                "--backend",
                "http",
                "--base-url",
                url,
                "--api-key-env",
                KEY_ENV,
                "--cache-dir",
                str(tmp_path / "cache"),
                "--no-progress",
            ],
            capture_output=True,
            text=True,
            env=env,
        )
    assert result.returncode == 0, result.stderr
    assert "HTTP 429" in result.stderr and SECRET not in result.stderr + result.stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6 and all(r["distribution"] is not None for r in rows)
    for path in [out, out.with_suffix(".accounting.json"), *(tmp_path / "cache").iterdir()]:
        assert SECRET.encode() not in path.read_bytes()


def test_wrong_key_fails_fast_without_showing_it(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-wrong-key-987")
    with serve() as url:
        backend = HTTPBackend(url, "fake", api_key_env=KEY_ENV, timeout=5)
        with pytest.raises(ModelError, match="HTTP 401") as error:
            backend.score([ScoreRequest("a", "b", "c")])
    assert "sk-wrong-key-987" not in str(error.value)
    assert backend.retries == 0


def test_unreachable_server_gives_up_with_a_model_error():
    backend = HTTPBackend("http://127.0.0.1:9/v1", "fake", timeout=0.5, max_retries=2, backoff=0.01)
    with pytest.raises(ModelError, match="failed 3 times"):
        backend.score([ScoreRequest("a", "b", "c")])


def test_a_server_refusing_token_ids_is_named_with_the_fix(tiny_tokenizer, monkeypatch):
    """llama-cpp-python's server answers token-id prompts with HTTP 500: after the retries, one
    line with its reply and what to change."""
    monkeypatch.setenv(KEY_ENV, SECRET)
    options = {"api_key_env": KEY_ENV, "max_retries": 1, "backoff": 0.01}
    with serve("--refuse-token-ids") as url:
        backend = HTTPBackend(url, "fake", tokenizer=tiny_tokenizer, **options)
        with pytest.raises(ModelError) as error:
            backend.score([ScoreRequest("a b", "1", "2")])
        assert str(error.value) == (
            f"{url}/completions failed 2 times (last: HTTP 500: "
            """'{"error": {"message": "prompt must be a string"}}'); """
            "it has answered nothing: if it does not take prompts as token ids "
            "(llama-cpp-python's server does not), remove the labeler's tokenizer so prompts go "
            "as text"
        )
        text = HTTPBackend(url, "fake", **options)
        assert text.score([ScoreRequest("a b", "1", "2")])[0].logprobs is not None


def test_servers_that_ignore_n_give_every_sample(monkeypatch):
    """llama-cpp-python's server drops ``n`` and answers one choice: the backend asks again."""
    monkeypatch.setenv(KEY_ENV, SECRET)
    chains = make_planned(2, variant="cot", rationale={"n": 3, "temperature": 0.7})
    with serve("--ignore-n") as url:
        backend = HTTPBackend(url, "fake", api_key_env=KEY_ENV, timeout=30)
        first = label(chains, backend, progress=False)
        again = label(chains, backend, progress=False)
    assert all(len(row.samples) == 3 for row in first.rows)
    assert all(len({s.rationale for s in row.samples}) > 1 for row in first.rows)
    assert stable(first.rows) == stable(again.rows)  # seeded: the same samples every time
