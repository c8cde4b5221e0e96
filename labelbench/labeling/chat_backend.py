"""Labeling through OpenAI-compatible ``/v1/chat/completions`` servers: one, or a fleet.

A request planned with ``messages=True`` (``labelbench.prompting.tokens.message_frame``) is sent
as its messages: an optional system message, the user message (preamble, exemplars, item) and the
assistant's opening (the variant's ``ending``, or its ``rationale_cue`` for chain of thought).

How the answer is asked for (``prefill``):

- ``prefill=True``: the assistant's opening is sent as a final assistant message with
  ``continue_final_message: true, add_generation_prompt: false`` (vLLM, SGLang; llama.cpp's
  server continues a final assistant message by itself), so the first generated token is the
  answer, as with the completions backends.
- ``prefill=False`` (hosted APIs): the opening is dropped and the user message ends with an
  instruction (``answer_instruction``): reply with the answer alone; after a rationale, end with
  the variant's ending line (``Preferred Summary=1``).

What a label is read from (``logprobs``):

- ``logprobs=True``: ``logprobs: true, top_logprobs: k`` (k <= 20, the OpenAI limit) and
  ``max_tokens: 1``; the answers' log-probabilities are read at the first generated position.
  Token texts are matched to answers with surrounding whitespace removed and case folded
  (``normalise_token``): ``" 1"``, ``"1"`` and ``"1 "`` all read as answer ``1``, ``"a"`` as
  ``A``; the probabilities of the tokens that read as one answer are summed. An answer that no
  listed token reads as leaves the label unscored (counted; ``unscored_reason`` says why),
  never a guessed 0.5.
- ``logprobs=False``: a verdict judge. The reply's text is parsed (``parse_verdict``); ``samples``
  replies per request give soft labels from the verdicts' shares. An unparseable reply (a
  refusal included) is kept as raw text and counted; a label with no parsed reply is unscored.

Fleets: every URL serves the same model; each request goes to the least loaded server, and a
failed one takes its server out of rotation for a back-off and is retried on another
(``labelbench.labeling.fleet``). The API key is read from the environment and only ever sent in
the Authorization header: never logged, cached or reported.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from labelbench.errors import InputError, ModelError
from labelbench.labeling.backend import Sample, Scored
from labelbench.labeling.fleet import Fleet
from labelbench.labeling.verdicts import (
    answer_instruction,
    answer_logprobs,
    normalise_token,
    parse_verdict,
)
from labelbench.prompting.tokens import chat_messages
from labelbench.requests import RationaleRequest, ScoreRequest

__all__ = [
    "ChatBackend",
    "Fleet",
    "answer_instruction",
    "answer_logprobs",
    "normalise_token",
    "parse_verdict",
]
"""The backend; the fleet (``labelbench.labeling.fleet``) and the answer readers
(``labelbench.labeling.verdicts``) are imported from here as well."""

VERDICT_TOKENS = 16
"""Generated tokens allowed for a verdict without rationale (``[[1]]`` or an ending line)."""
VERDICT_LINE_TOKENS = 24
"""Extra tokens a rationale may take for its closing verdict line."""


class ChatBackend:
    """Scores or judges through ``{url}/chat/completions`` (one URL or a fleet; see the module).

    ``identity`` should name the served weights; it defaults to ``chat:<model>``.
    """

    def __init__(
        self,
        urls: str | Sequence[str],
        model: str,
        *,
        identity: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        logprobs: bool = True,
        top_logprobs: int = 20,
        prefill: bool = False,
        samples: int = 1,
        temperature: float = 1.0,
        concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 8,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 60.0,
        client_factory: Callable[..., Any] | None = None,
    ) -> None:
        urls = [urls] if isinstance(urls, str) else list(urls)
        if not 1 <= top_logprobs <= 20:
            raise ValueError("top_logprobs must be 1..20 (the chat-completions limit)")
        self.model = model
        self.logprobs = logprobs
        self.top_logprobs = top_logprobs
        self.prefill = prefill
        self.samples = samples
        self.temperature = temperature
        self._identity = identity or f"chat:{model}"
        self.concurrency = max(1, concurrency) * len(urls)
        self.fleet = Fleet(
            urls,
            api_key=os.environ.get(api_key_env) or None,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
            max_retry_after=max_retry_after,
            client_factory=client_factory,
        )
        self.missing_answers = 0  # log-probability labels without both answer tokens
        self.no_logprobs = 0  # replies that came without log-probabilities
        self.unparsed = 0  # verdict replies the parser could not read
        self.refusals = 0  # replies that refused (``message.refusal``)
        self._count = threading.Lock()

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def answer_by(self) -> str:
        """How the answer is asked for: ``prefill`` or ``instruction``."""
        return "prefill" if self.prefill else "instruction"

    @property
    def kind(self) -> str:
        """What a label is read from: ``logprobs`` or ``verdict``."""
        return "logprobs" if self.logprobs else "verdict"

    @property
    def retries(self) -> int:
        return self.fleet.retries

    @property
    def unscored_reason(self) -> str | None:
        """Why labels were left unscored so far (None: none were)."""
        reasons = []
        if self.no_logprobs:
            reasons.append(
                f"{self.no_logprobs} replies came without log-probabilities (does the server "
                "support logprobs on chat completions? else use logprobs: false, a verdict judge)"
            )
        if self.missing_answers:
            reasons.append(
                f"{self.missing_answers} replies had an answer missing from the first generated "
                f"token's top {self.top_logprobs} log-probabilities"
            )
        if self.unparsed:
            refused = f", {self.refusals} of them refusals" if self.refusals else ""
            reasons.append(
                f"{self.unparsed} replies gave no verdict the parser could read{refused} (their "
                "text is kept in the labels)"
            )
        return "; ".join(reasons) or None

    def close(self) -> None:
        self.fleet.close()

    def _add(self, name: str, count: int = 1) -> None:
        with self._count:
            setattr(self, name, getattr(self, name) + count)

    # ------------------------------------------------------------------ messages

    def _messages(
        self, text: str, answers: Sequence[str], ending: str, *, rationale: bool, verdict: bool
    ) -> tuple[list[dict[str, str]], bool]:
        """The messages for a request text and whether the last one is an assistant prefix to
        continue. ``ending``: the text the answer follows; ``rationale``: the reply starts with
        a rationale; ``verdict``: the answer is read from the text."""
        try:
            messages = chat_messages(text)
        except ValueError:
            raise InputError(
                "backend chat",
                "the requests were not planned as chat messages (plan them through a chat "
                "labeler, e.g. `labelbench run` with backend: chat, or plan(..., messages=True))",
            ) from None
        opening = messages.pop()["content"] if messages[-1]["role"] == "assistant" else ""
        user = messages[-1]
        if verdict and rationale:
            user["content"] = (
                user["content"].rstrip()
                + "\n\n"
                + answer_instruction(answers, ending, rationale=True)
            )
        if self.prefill and opening:
            return [*messages, {"role": "assistant", "content": opening}], True
        if not rationale:
            user["content"] = (
                user["content"].rstrip()
                + "\n\n"
                + answer_instruction(answers, ending, rationale=False)
            )
        return messages, False

    def _body(
        self,
        messages: list[dict[str, str]],
        prefix: bool,
        *,
        max_tokens: int,
        temperature: float,
        n: int = 1,
        seed: int | None = None,
        logprobs: bool = False,
        top_k: int | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if n > 1:
            body["n"] = n
        if seed is not None:
            body["seed"] = seed
        if logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = self.top_logprobs
        if prefix:
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
        if top_k:
            body["top_k"] = top_k
        return body

    def _choices(self, body: dict[str, Any], n: int, seed: int) -> tuple[list[dict], int, int, int]:
        """(choices in index order, prompt tokens, generated tokens, requests): ``n`` choices, asked
        one by one of a server that ignores ``n`` (llama-cpp-python)."""
        reply = self.fleet.create(body)
        choices = sorted(reply["choices"], key=lambda c: c.get("index") or 0)
        prompt, generated, requests = (
            _usage(reply, "prompt_tokens"),
            _usage(reply, "completion_tokens"),
            1,
        )
        for index in range(len(choices), n):
            extra = self.fleet.create({**body, "n": 1, "seed": (seed + index) % 2**31})
            choices.append(extra["choices"][0])
            generated += _usage(extra, "completion_tokens")
            requests += 1
        if len(choices) < n:
            raise ModelError(f"{self.model}: asked for {n} replies, got {len(choices)}")
        return choices[:n], prompt, generated, requests

    # ------------------------------------------------------------------ labels

    def _read_logprobs(self, choice: dict[str, Any], answers: Sequence[str]) -> tuple | None:
        logprobs = choice.get("logprobs")
        content = logprobs.get("content") if isinstance(logprobs, dict) else None
        if not content:
            if _refusal(choice) is not None:
                self._add("refusals")
            self._add("no_logprobs")
            return None
        first = content[0] if isinstance(content[0], dict) else {}
        top = list(first.get("top_logprobs") or [])
        if first.get("token") is not None:
            top.append({"token": first["token"], "logprob": first.get("logprob")})
        unique = {(entry.get("token"), entry.get("logprob")): entry for entry in top}
        values = answer_logprobs(list(unique.values()), answers)
        if values is None:
            self._add("missing_answers")
        return values

    def _verdict(
        self, choice: dict[str, Any], answers: Sequence[str], ending: str, rationale: bool
    ) -> tuple[int | None, str]:
        text = _content(choice)
        refusal = _refusal(choice)
        if text is None and refusal is not None:
            self._add("refusals")
            self._add("unparsed")
            return None, refusal
        verdict = parse_verdict(text or "", answers, ending, rationale=rationale)
        if verdict is None:
            self._add("unparsed")
        return verdict, text or ""

    def _score(self, request: ScoreRequest, seed: int) -> Scored:
        ending = _opening(request.text)
        verdict = not self.logprobs
        messages, prefix = self._messages(
            request.text, request.answers, ending, rationale=False, verdict=verdict
        )
        if not verdict:
            body = self._body(messages, prefix, max_tokens=1, temperature=0.0, logprobs=True)
            choices, prompt, generated, requests = self._choices(body, 1, seed)
            values = self._read_logprobs(choices[0], request.answers)
            return Scored(values, prompt, generated, requests=requests)
        n = self.samples
        body = self._body(
            messages,
            prefix,
            max_tokens=VERDICT_TOKENS,
            temperature=self.temperature if n > 1 else 0.0,
            n=n,
            seed=seed,
        )
        choices, prompt, generated, requests = self._choices(body, n, seed)
        read = [self._verdict(c, request.answers, ending, False) for c in choices]
        return Scored(
            None,
            prompt,
            generated,
            verdicts=tuple(v for v, _ in read),
            replies=tuple(t for _, t in read),
            requests=requests,
        )

    def _chains(self, request: RationaleRequest, seed: int) -> list[Sample]:
        ending = request.score_suffix.strip()
        verdict = not self.logprobs
        messages, prefix = self._messages(
            request.text, request.answers, ending, rationale=True, verdict=verdict
        )
        body = self._body(
            messages,
            prefix,
            max_tokens=request.max_new_tokens + (VERDICT_LINE_TOKENS if verdict else 0),
            temperature=request.temperature,
            n=request.n,
            seed=seed,
            top_k=request.top_k,
        )
        choices, prompt, generated, requests = self._choices(body, request.n, seed)
        share = generated // request.n
        samples = []
        for index, choice in enumerate(choices):
            extra = requests if index == 0 else 0  # the generation's requests, counted once
            if verdict:
                answer, text = self._verdict(choice, request.answers, ending, True)
                samples.append(
                    Sample(text, None, prompt if index == 0 else 0, share, answer, True, extra)
                )
                continue
            rationale = _content(choice) or ""
            scored = self._after_rationale(request, messages, prefix, rationale, seed)
            samples.append(
                Sample(
                    rationale,
                    scored.logprobs,
                    (prompt if index == 0 else 0) + scored.prompt_tokens,
                    share + scored.generated_tokens,
                    requests=extra + scored.requests,
                )
            )
        return samples

    def _after_rationale(
        self,
        request: RationaleRequest,
        messages: list[dict[str, str]],
        prefix: bool,
        rationale: str,
        seed: int,
    ) -> Scored:
        """The answers' log-probabilities after a rationale: the assistant's text continued with
        the ending (prefill), or the rationale as the assistant's turn and a user turn asking for
        the answer alone."""
        ending = request.score_suffix.strip()
        if prefix:
            opening = messages[-1]["content"]
            turn = {"role": "assistant", "content": opening + rationale + request.score_suffix}
            scored_messages = [*messages[:-1], turn]
        else:
            ask = answer_instruction(request.answers, ending, rationale=False)
            scored_messages = [
                *messages,
                {"role": "assistant", "content": rationale},
                {"role": "user", "content": ask},
            ]
        body = self._body(scored_messages, prefix, max_tokens=1, temperature=0.0, logprobs=True)
        choices, prompt, generated, requests = self._choices(body, 1, seed)
        return Scored(
            self._read_logprobs(choices[0], request.answers), prompt, generated, requests=requests
        )

    def score(self, requests: Sequence[ScoreRequest]) -> list[Scored]:
        from labelbench.labeling.runner import request_seed

        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(lambda r: self._score(r, request_seed(r) % 2**31), requests))

    def rationales(
        self, requests: Sequence[RationaleRequest], seeds: Sequence[int]
    ) -> list[list[Sample]]:
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(self._chains, requests, [s % 2**31 for s in seeds]))


def _opening(text: str) -> str:
    """The assistant's opening of a request rendered as messages (the variant's ending); empty
    for a text that is not (``ChatBackend._messages`` says so)."""
    try:
        messages = chat_messages(text)
    except ValueError:
        return ""
    return messages[-1]["content"] if messages[-1]["role"] == "assistant" else ""


def _content(choice: dict[str, Any]) -> str | None:
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else None


def _refusal(choice: dict[str, Any]) -> str | None:
    message = choice.get("message")
    refusal = message.get("refusal") if isinstance(message, dict) else None
    return refusal if isinstance(refusal, str) and refusal else None


def _usage(reply: dict[str, Any], key: str) -> int:
    usage = reply.get("usage")
    value = usage.get(key, 0) if isinstance(usage, dict) else 0
    return int(value) if isinstance(value, int | float) and math.isfinite(value) else 0
