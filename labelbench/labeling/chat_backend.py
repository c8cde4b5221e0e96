"""Labeling through OpenAI-compatible ``/v1/chat/completions`` servers: one, or a fleet.

A request planned with ``messages=True`` (``labelbench.prompting.planner.message_frame``) is sent
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

Fleets: every URL serves the same model. Each request goes to the server with the fewest
requests in flight (then the fewest sent); a failed request (timeout, dropped connection, 408,
409, 425, 429, 5xx, a reply that is not a chat completion) takes its server out of rotation for a
back-off (its ``Retry-After``, at most ``max_retry_after`` seconds, when it sends one) and is
retried on another. The ``openai`` client does the transport, timeouts and reply parsing; its own
retries are off because they would retry on the same server. The API key is read from the
environment and only ever sent in the Authorization header: never logged, cached or reported.
"""

from __future__ import annotations

import logging
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from labelbench.errors import InputError, ModelError
from labelbench.labeling.backend import Sample, Scored
from labelbench.labeling.http_backend import RETRY_STATUS, _retry_after, _snippet
from labelbench.prompting.planner import chat_messages
from labelbench.requests import RationaleRequest, ScoreRequest

log = logging.getLogger(__name__)

VERDICT_TOKENS = 16
"""Generated tokens allowed for a verdict without rationale (``[[1]]`` or an ending line)."""
VERDICT_LINE_TOKENS = 24
"""Extra tokens a rationale may take for its closing verdict line."""


def normalise_token(text: str) -> str:
    """A token's text as matched against an answer: surrounding whitespace removed (the
    SentencePiece and byte-level space markers ``▁`` and ``Ġ`` count as whitespace), case
    folded."""
    return text.replace("▁", " ").replace("Ġ", " ").strip().casefold()


def answer_logprobs(
    top: Sequence[dict[str, Any]], answers: Sequence[str]
) -> tuple[float, ...] | None:
    """Each answer's log-probability at one position from its ``top_logprobs`` entries
    (``{"token": str, "logprob": float}``): the log of the summed probabilities of the tokens
    that read as the answer (``normalise_token``). None when an answer is not among them."""
    found: dict[str, list[float]] = {}
    for entry in top:
        token, value = entry.get("token"), entry.get("logprob")
        if isinstance(token, str) and isinstance(value, int | float) and math.isfinite(value):
            found.setdefault(normalise_token(token), []).append(float(value))
    values = []
    for answer in answers:
        matches = found.get(normalise_token(answer))
        if not matches:
            return None
        high = max(matches)
        values.append(high + math.log(sum(math.exp(v - high) for v in matches)))
    return tuple(values)


def _verdict_pattern(
    answers: Sequence[str], ending: str
) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(alone, line): an answer alone or bracketed (``1``, ``[1]``, ``[[1]]``, an optional final
    period), and the variant's ending line with its answer (``Preferred Summary=1``, the
    answer optionally bracketed), whitespace around the ending's last character allowed."""
    choice = "|".join(re.escape(a.strip()) for a in sorted(answers, key=len, reverse=True))
    answer = rf"(?:\[\[\s*(?P<a1>{choice})\s*\]\]|\[\s*(?P<a2>{choice})\s*\]|(?P<a3>{choice}))"
    alone = re.compile(rf"^\s*{answer}\s*\.?\s*$", re.IGNORECASE)
    head = ending.strip()
    label = re.escape(head[:-1]) + r"\s*" + re.escape(head[-1]) if head else ""
    line = re.compile(rf"^\s*\**\s*{label}\s*{answer}\s*\**\s*\.?\s*$", re.IGNORECASE)
    return alone, line


def parse_verdict(text: str, answers: Sequence[str], ending: str, *, rationale: bool) -> int | None:
    """The index in ``answers`` of the answer a reply gives, or None when it cannot be read.

    Without a rationale the whole reply must be the answer: alone, bracketed (``[1]``,
    ``[[1]]``) or as the variant's ending line (``Preferred Summary=1``). After a rationale the
    last non-empty line must be the ending line or the bracketed answer. Answers match with case
    folded; anything else (two answers, a sentence) is unparseable: never a guess."""
    alone, line = _verdict_pattern(answers, ending)
    lines = [part for part in text.strip().splitlines() if part.strip()]
    if not lines:
        return None
    if rationale:
        last = lines[-1]
        match = line.match(last) if ending.strip() else None
        if match is None:
            bracketed = alone.match(last)
            match = bracketed if bracketed and not bracketed.group("a3") else None
    else:
        whole = " ".join(lines)
        match = alone.match(whole) or (line.match(whole) if ending.strip() else None)
    if match is None:
        return None
    given = next(g for g in match.group("a1", "a2", "a3") if g is not None).casefold()
    folded = [a.strip().casefold() for a in answers]
    return folded.index(given) if given in folded else None


def answer_instruction(answers: Sequence[str], ending: str, *, rationale: bool) -> str:
    """What the user message ends with when the server cannot continue an assistant prefix:
    answer with the answer alone, or (after a rationale) end with the ending line."""
    options = (
        " or ".join(f'"{a}"' for a in answers)
        if len(answers) <= 3
        else ("one of " + ", ".join(answers))
    )
    head = ending.strip()
    if rationale:
        lines = " or ".join(f'"{head}{a}"' for a in answers[:3])
        more = ", ..." if len(answers) > 3 else ""
        return f"End your reply with one last line that gives your answer: {lines}{more}."
    question = head.rstrip("=:").strip()
    about = f' to "{question}"' if question else ""
    return f"Reply with the answer{about} alone, nothing else: {options}."


@dataclass
class _Server:
    url: str
    client: Any
    in_flight: int = 0
    sent: int = 0
    failures: int = 0
    down_until: float = 0.0


class Fleet:
    """OpenAI clients for one or more servers of the same model, each request sent to the least
    loaded server in rotation; failures drain a server for a back-off and retry elsewhere."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        api_key: str | None,
        timeout: float,
        max_retries: int,
        backoff: float,
        max_backoff: float,
        max_retry_after: float,
        client_factory: Callable[..., Any] | None = None,
    ) -> None:
        if client_factory is None:
            try:
                from openai import OpenAI
            except ImportError as error:
                raise ModelError(
                    "the chat backend needs the openai package: pip install 'labelbench[server]'"
                ) from error
            client_factory = OpenAI
        self.servers = [
            _Server(
                url.rstrip("/"),
                client_factory(
                    base_url=url.rstrip("/"),
                    api_key=api_key or "none",  # a local server without a key: any text
                    timeout=timeout,
                    max_retries=0,  # retried here, on another server
                ),
            )
            for url in urls
        ]
        self._key = api_key
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.retries = 0
        self._lock = threading.Condition()

    def close(self) -> None:
        for server in self.servers:
            close = getattr(server.client, "close", None)
            if close is not None:
                close()

    def _acquire(self) -> _Server:
        with self._lock:
            while True:
                now = time.monotonic()
                up = [s for s in self.servers if s.down_until <= now]
                if up:
                    server = min(up, key=lambda s: (s.in_flight, s.sent))
                    server.in_flight += 1
                    server.sent += 1
                    return server
                self._lock.wait(max(0.0, min(s.down_until for s in self.servers) - now))

    def _release(self, server: _Server, failure: str | None, wait: float | None) -> float:
        with self._lock:
            server.in_flight -= 1
            if failure is None:
                server.failures = 0
                self._lock.notify_all()
                return 0.0
            server.failures += 1
            if wait is None:
                wait = min(self.max_backoff, self.backoff * 2 ** (server.failures - 1))
                wait *= random.uniform(0.5, 1.0)
            server.down_until = max(server.down_until, time.monotonic() + wait)
            self._lock.notify_all()
            return wait

    def _clean(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """One chat completion as a dict, from the first server that answers. Raises ModelError,
        one line naming the server, for a reply that retrying cannot fix (401, 400, 404, an
        error object) or when ``max_retries`` retries fail."""
        import openai

        extra = {
            k: v
            for k, v in body.items()
            if k in ("continue_final_message", "add_generation_prompt", "top_k")
        }
        standard = {k: v for k, v in body.items() if k not in extra}
        failure = "no attempt"
        for attempt in range(self.max_retries + 1):
            server = self._acquire()
            where = f"{server.url}/chat/completions"
            wait: float | None = None
            failure = ""
            try:
                reply = server.client.chat.completions.create(
                    **standard, **({"extra_body": extra} if extra else {})
                )
            except (openai.APITimeoutError, openai.APIConnectionError) as error:
                failure = type(error).__name__
            except openai.APIStatusError as error:
                status = error.status_code
                message = _snippet(self._clean(str(getattr(error, "message", error))))
                if status not in RETRY_STATUS:
                    self._release(server, None, None)
                    raise ModelError(f"{where} answered HTTP {status}: {message}") from None
                failure = f"HTTP {status}"
                headers = error.response.headers if error.response is not None else {}
                wait = _retry_after(headers.get("retry-after"), self.max_retry_after)
            else:
                value = reply.model_dump() if hasattr(reply, "model_dump") else reply
                if isinstance(value, dict) and value.get("error") and not value.get("choices"):
                    self._release(server, None, None)
                    error_value = value["error"]
                    text = (
                        error_value.get("message", error_value)
                        if isinstance(error_value, dict)
                        else error_value
                    )
                    raise ModelError(
                        f"{where} answered HTTP 200 with an error: "
                        f"{_snippet(self._clean(str(text)))}"
                    )
                choices = value.get("choices") if isinstance(value, dict) else None
                if isinstance(choices, list) and choices and isinstance(choices[0], dict):
                    self._release(server, None, None)
                    return value
                failure = f"a reply that is not a chat completion: {_snippet(str(value))}"
            waited = self._release(server, failure, wait)
            if attempt == self.max_retries:
                break
            self.retries += 1
            others = len(self.servers) > 1
            log.warning(
                "%s: %s; %s (retry %d), this server rests %.1fs",
                where,
                self._clean(failure),
                "retried on another server" if others else "retried",
                attempt + 1,
                waited,
            )
        urls = ", ".join(s.url for s in self.servers)
        raise ModelError(
            f"{urls}: a chat completion failed {self.max_retries + 1} times (last: "
            f"{self._clean(failure)})"
        )


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
