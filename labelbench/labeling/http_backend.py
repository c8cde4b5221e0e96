"""Labeling through an OpenAI-compatible ``/v1/completions`` server (vLLM, llama.cpp, ...).

Answer tokens are read from the first generated position's ``top_logprobs``; an answer missing
there is unscorable, so the request is recorded as unscored. Given the served model's tokenizer,
prompts are sent as token ids (the OpenAI completions API takes a token array; vLLM and
llama.cpp do too), so the scored position is the prompt's own last token; without it the server
tokenizes the text and adds whatever special tokens its tokenizer adds. The API key is read from the
environment and only ever sent in the Authorization header: never logged, cached or reported.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import os
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from labelbench.errors import ModelError
from labelbench.labeling.backend import Sample, Scored
from labelbench.requests import RationaleRequest, ScoreRequest

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class HTTPBackend:
    """Scores and generates through ``{base_url}/completions`` with retries and a concurrency cap.

    ``base_url`` includes the API prefix, e.g. ``http://127.0.0.1:8000/v1``. ``identity`` should
    name the served weights (e.g. ``Qwen/Qwen2.5-7B-Instruct@<revision>``); it defaults to
    ``http:<model>``.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        identity: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 8,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 60.0,
        top_logprobs: int = 20,
        tokenizer: Any = None,
    ) -> None:
        try:
            import httpx
        except ImportError as error:
            raise ModelError(
                "the http backend needs httpx: pip install 'labelbench[server]'"
            ) from error
        self._httpx = httpx
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._identity = identity or f"http:{model}"
        self.concurrency = max(1, concurrency)
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.unscored_reason: str | None = None  # why a reply had no log-probabilities
        self.top_logprobs = top_logprobs
        self.retries = 0  # retried attempts so far (for reports and tests)
        self.answered = False  # whether any request has succeeded
        self.tokenizer = tokenizer
        key = os.environ.get(api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=self.concurrency),
        )

    @property
    def identity(self) -> str:
        return self._identity

    def close(self) -> None:
        self._client.close()

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST a completion; retry 429, 5xx, timeouts, dropped connections and replies that are
        not JSON (an HTML page from a proxy) with backoff, waiting what ``Retry-After`` asks (in
        seconds or as an HTTP date) up to ``max_retry_after`` seconds. Raises ModelError, one line
        naming the server and what came back, when retries run out or the reply is an error
        object or has no ``choices``."""
        httpx = self._httpx
        where = f"{self.base_url}/completions"
        for attempt in range(self.max_retries + 1):
            wait: float | None = None
            try:
                response = self._client.post("/completions", json=body)
            except (httpx.TimeoutException, httpx.TransportError) as error:
                failure = type(error).__name__
            else:
                if response.status_code == 200:
                    try:
                        reply = response.json()
                    except ValueError:  # an HTML error page, a truncated body
                        failure = f"HTTP 200 that is not JSON: {_snippet(response.text)}"
                    else:
                        checked = _checked_reply(where, reply)
                        self.answered = True
                        return checked
                else:
                    failure = f"HTTP {response.status_code}"
                    if response.status_code not in RETRY_STATUS:
                        raise ModelError(f"{where} answered {failure}: {_snippet(response.text)}")
                    failure += f": {_snippet(response.text)}"
                    wait = _retry_after(response.headers.get("retry-after"), self.max_retry_after)
            if attempt == self.max_retries:
                break
            delay = min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)
            self.retries += 1
            log.warning(
                "%s/completions: %s; retry %d in %.1fs",
                self.base_url,
                failure,
                attempt + 1,
                wait if wait is not None else delay,
            )
            time.sleep(wait if wait is not None else delay)
        hint = ""
        if self.tokenizer is not None and not self.answered:
            hint = (
                "; it has answered nothing: if it does not take prompts as token ids "
                "(llama-cpp-python's server does not), remove the labeler's tokenizer so prompts "
                "go as text"
            )
        raise ModelError(f"{where} failed {self.max_retries + 1} times (last: {failure}){hint}")

    def _prompt(self, text: str) -> str | list[int]:
        """The prompt as sent: token ids when the served model's tokenizer is known here (BOS
        once, nothing appended: ``prompt_token_ids``), else the text for the server to tokenize."""
        if self.tokenizer is None:
            return text
        from labelbench.prompting import prompt_token_ids

        return prompt_token_ids(self.tokenizer, text)

    def _score_text(self, text: str, answers: Sequence[str]) -> Scored:
        body = {
            "model": self.model,
            "prompt": self._prompt(text),
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": self.top_logprobs,
        }
        reply = self._post(body)
        choice = reply["choices"][0]
        top = self._top_logprobs(choice)
        logprobs = tuple(top[a] for a in answers) if all(a in top for a in answers) else None
        return Scored(logprobs, _count(reply, "prompt_tokens"), requests=1)

    def _top_logprobs(self, choice: dict[str, Any]) -> dict[str, float]:
        """The first generated position's top log-probabilities ({} when the reply has none;
        ``unscored_reason`` then says why)."""
        if "text" not in choice and "message" in choice:
            self.unscored_reason = (
                f"{self.base_url}/completions answered in the chat-completions shape "
                "(choices[].message, no log-probabilities of the next token); is it a "
                "completions endpoint?"
            )
            return {}
        logprobs = choice.get("logprobs")
        if not isinstance(logprobs, dict) or not logprobs.get("top_logprobs"):
            self.unscored_reason = (
                f"{self.base_url}/completions returned no log-probabilities (logprobs: "
                f"{json.dumps(logprobs)[:60]}); the server must support logprobs on "
                "/completions (llama.cpp: --logits_all)"
            )
            return {}
        top = logprobs["top_logprobs"][0]
        return top if isinstance(top, dict) else {}

    def _chains(self, request: RationaleRequest, seed: int) -> list[Sample]:
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": self._prompt(request.text),
            "max_tokens": request.max_new_tokens,
            "temperature": request.temperature,
            "n": request.n,
            "seed": seed,
        }
        if request.top_k:
            body["top_k"] = request.top_k
        reply = self._post(body)
        choices = sorted(reply["choices"], key=lambda choice: choice.get("index", 0))
        generated = _count(reply, "completion_tokens")
        requests = 1
        if len(choices) == 1 and request.n > 1:
            # a server that ignores ``n`` (llama-cpp-python's) answers one sample a request:
            # ask for the others one by one, each with its own seed
            for index in range(1, request.n):
                extra = self._post({**body, "n": 1, "seed": (seed + index) % 2**31})
                choices.append(extra["choices"][0])
                generated += _count(extra, "completion_tokens")
                requests += 1
        if len(choices) != request.n:
            raise ModelError(f"{self.base_url}: asked for {request.n} samples, got {len(choices)}")
        samples = []
        for index, choice in enumerate(choices):
            text = choice.get("text")
            if not isinstance(text, str):
                raise ModelError(
                    f"{self.base_url}/completions: a choice without text: "
                    f"{_snippet(json.dumps(choice))} (is it a completions endpoint?)"
                )
            scored = self._score_text(request.text + text + request.score_suffix, request.answers)
            samples.append(
                Sample(
                    rationale=text,
                    logprobs=scored.logprobs,
                    prompt_tokens=scored.prompt_tokens,
                    generated_tokens=generated // request.n,  # the server counts per reply
                    requests=scored.requests + (requests if index == 0 else 0),
                )
            )
        return samples

    def score(self, requests: Sequence[ScoreRequest]) -> list[Scored]:
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(lambda r: self._score_text(r.text, r.answers), requests))

    def rationales(
        self, requests: Sequence[RationaleRequest], seeds: Sequence[int]
    ) -> list[list[Sample]]:
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(self._chains, requests, [s % 2**31 for s in seeds]))


def _snippet(text: str, size: int = 120) -> str:
    """What a server sent, cut and on one line, for an error message."""
    flat = " ".join(text.split())
    return repr(flat[:size] + ("…" if len(flat) > size else ""))


def _checked_reply(where: str, reply: Any) -> dict[str, Any]:
    """A completions reply with at least one choice, else ModelError naming the server and what
    came back (an ``{"error": ...}`` object, an empty ``choices``)."""
    if isinstance(reply, dict) and reply.get("error") and not reply.get("choices"):
        error = reply["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise ModelError(f"{where} answered HTTP 200 with an error: {_snippet(str(message))}")
    choices = reply.get("choices") if isinstance(reply, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ModelError(
            f"{where} answered HTTP 200 without choices: {_snippet(json.dumps(reply))}"
        )
    return reply


def _count(reply: dict[str, Any], key: str) -> int:
    usage = reply.get("usage")
    value = usage.get(key, 0) if isinstance(usage, dict) else 0
    return int(value) if isinstance(value, int | float) and math.isfinite(value) else 0


def _retry_after(value: str | None, cap: float = 60.0) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delay seconds or an HTTP date), at most
    ``cap``; None when absent or unreadable."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if math.isnan(seconds):
        return None
    return min(cap, max(0.0, seconds))
