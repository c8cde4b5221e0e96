"""Issue 25 items 6, 8, 9: what an OpenAI-compatible server sends back that is not a completion."""

from __future__ import annotations

import email.utils
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from fake_openai_server import make_server

from labelbench.config import LabelerSpec
from labelbench.data import Comparison
from labelbench.errors import ModelError
from labelbench.labeling.http_backend import HTTPBackend, _retry_after
from labelbench.labeling.labeler import open_labeler
from labelbench.requests import ScoreRequest

VARIANT = "summarization/base-0shot"


@contextmanager
def server(**options) -> Iterator[str]:
    running = make_server(0, **options)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{running.server_address[1]}/v1"
    finally:
        running.shutdown()
        running.server_close()


@pytest.mark.parametrize(
    ("reply", "shown"),
    [
        ("empty-choices", "without choices"),
        ("html", "not JSON: '<html><body><h1>502 Bad Gateway"),
        ("error", "with an error: 'model is loading'"),
    ],
)
def test_malformed_replies_fail_in_one_line_naming_the_server(reply, shown):
    with server(reply=reply) as url:
        backend = HTTPBackend(url, "fake", timeout=5, max_retries=1, backoff=0.01)
        with pytest.raises(ModelError) as error:
            backend.score([ScoreRequest("Which is better? ", "post", " Answer=")])
    message = str(error.value)
    assert message.startswith(f"{url}/completions") and shown in message
    assert "\n" not in message
    assert backend.retries == (1 if reply == "html" else 0)  # a page that is not JSON: retried


def _pairs(count: int, marked: int = 0) -> list[Comparison]:
    return [
        Comparison(
            id=str(n),
            group_id=str(n),
            task="summarization",
            context=f"POST: post {n} {'[no-answer-2]' if n < marked else ''}",
            response_a="1",
            response_b="2",
        )
        for n in range(count)
    ]


@pytest.mark.parametrize(
    ("reply", "reason"),
    [("null-logprobs", "no log-probabilities (logprobs: null)"), ("chat-shape", "chat-comp")],
)
def test_a_server_without_logprobs_fails_when_every_label_is_unscored(reply, reason, capsys):
    with server(reply=reply) as url:
        labeler = open_labeler(LabelerSpec(name="fake", backend="http", url=url, chat=False))
        assert labeler.preferences(_pairs(3), VARIANT, cache=None) == [None] * 3  # as before
        with pytest.raises(ModelError, match=f"all 6 labels are unscored: .*{re.escape(reason)}"):
            labeler.preferences(_pairs(3), VARIANT, cache=None, require_scores=True)


def test_some_unscored_labels_are_counted_on_stderr(capsys):
    with server(missing_marker="[no-answer-2]") as url:
        labeler = open_labeler(LabelerSpec(name="fake", backend="http", url=url, chat=False))
        found = labeler.preferences(_pairs(4, marked=1), VARIANT, cache=None, require_scores=True)
    assert found[0] is None and None not in found[1:]
    assert "2 of 8 labels unscored" in capsys.readouterr().err


def test_retry_after_is_capped_and_http_dates_are_read():
    assert _retry_after("600", cap=5.0) == 5.0
    assert _retry_after("1e999", cap=5.0) == 5.0  # once an OverflowError in time.sleep
    assert _retry_after("-3", cap=5.0) == 0.0
    assert _retry_after("nan", cap=5.0) is None and _retry_after("soon", cap=5.0) is None
    later = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= _retry_after(later, cap=600.0) <= 30
    earlier = email.utils.format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    assert _retry_after(earlier, cap=600.0) == 0.0
    with server(fail_first=1, retry_after="600") as url:  # the first attempt gets 429
        backend = HTTPBackend(url, "fake", timeout=5, max_retry_after=0.1)
        started = time.monotonic()
        backend.score([ScoreRequest("Which is better? ", "post", " Answer=")])
    assert backend.retries == 1 and time.monotonic() - started < 5
    assert LabelerSpec(name="m", backend="http", url=url, max_retry_after=2).max_retry_after == 2
