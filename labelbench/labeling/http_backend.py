"""Labeling through an OpenAI-compatible ``/v1/completions`` server (vLLM, llama.cpp, ...).

Answer tokens are read from the first generated position's ``top_logprobs``; an answer missing
there is unscorable, so the request is recorded as unscored. Given the served model's tokenizer,
prompts are sent as token ids (the OpenAI completions API takes a token array; vLLM and
llama.cpp do too), so the scored position is the prompt's own last token; without it the server
tokenizes the text and adds whatever special tokens its tokenizer adds. The API key is read from the
environment and only ever sent in the Authorization header: never logged, cached or reported.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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
        self.top_logprobs = top_logprobs
        self.retries = 0  # retried attempts so far (for reports and tests)
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
        """POST a completion; retry 429, 5xx, timeouts and dropped connections with backoff."""
        httpx = self._httpx
        for attempt in range(self.max_retries + 1):
            wait: float | None = None
            try:
                response = self._client.post("/completions", json=body)
            except (httpx.TimeoutException, httpx.TransportError) as error:
                failure = type(error).__name__
            else:
                if response.status_code == 200:
                    return response.json()
                failure = f"HTTP {response.status_code}"
                if response.status_code not in RETRY_STATUS:
                    raise ModelError(
                        f"{self.base_url}/completions answered {failure}: {response.text[:200]}"
                    )
                wait = _retry_after(response.headers.get("retry-after"))
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
        raise ModelError(
            f"{self.base_url}/completions failed {self.max_retries + 1} times (last: {failure})"
        )

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
        top = ((choice.get("logprobs") or {}).get("top_logprobs") or [None])[0] or {}
        logprobs = tuple(top[a] for a in answers) if all(a in top for a in answers) else None
        return Scored(logprobs, int((reply.get("usage") or {}).get("prompt_tokens", 0)))

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
        generated = int((reply.get("usage") or {}).get("completion_tokens", 0))
        if len(choices) == 1 and request.n > 1:
            # a server that ignores ``n`` (llama-cpp-python's) answers one sample a request:
            # ask for the others one by one, each with its own seed
            for index in range(1, request.n):
                extra = self._post({**body, "n": 1, "seed": (seed + index) % 2**31})
                choices.append(extra["choices"][0])
                generated += int((extra.get("usage") or {}).get("completion_tokens", 0))
        if len(choices) != request.n:
            raise ModelError(f"{self.base_url}: asked for {request.n} samples, got {len(choices)}")
        samples = []
        for choice in choices:
            scored = self._score_text(
                request.text + choice["text"] + request.score_suffix, request.answers
            )
            samples.append(
                Sample(
                    rationale=choice["text"],
                    logprobs=scored.logprobs,
                    prompt_tokens=scored.prompt_tokens,
                    generated_tokens=generated // request.n,  # the server counts per reply
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


def _retry_after(value: str | None) -> float | None:
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:
        return None
