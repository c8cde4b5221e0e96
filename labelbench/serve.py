"""``labelbench serve``: the winning labeler as a reward service for RL engines.

(prompt, response) → the labeler's direct 1-9 score scaled to [-1, 1] (``mode: direct``), or
(prompt, response, reference) → P(response preferred over reference), both orders combined by the
winner's aggregation (``mode: pairwise``; ``winner.json`` ``aggregation``, e.g. a calibrated
temperature; without one, the mean of the orders' P), through the benchmark's labelling path and
label cache (``labelbench.labeling.labeler``). Requests wait in a bounded queue; one worker takes
what is queued (up to ``max_batch`` items, waiting at most ``max_wait_ms`` for more) into one
engine pass.

Endpoints (Starlette on uvicorn):

- ``POST /score`` ``{"items": [{"prompt": str, "response": str, "reference": str?}]}`` →
  ``{"rewards": [float | null], "labeler": str, "variant": str, "mode": str}`` (null: unscored).
- ``POST /get_reward``: OpenRLHF's remote reward model. OpenRLHF 0.11.2 posts
  ``{"query": [prompt + response as decoded], "prompts": [prompt], "labels": [label]}`` and reads
  ``rewards`` (and ``scores``, ``extra_logs``) from the reply (``openrlhf/utils/agent.py``,
  ``SingleTurnAgentExecutor._fetch_rewards_via_http``; the reply shape follows
  ``openrlhf/cli/serve_rm.py``). The response is the query after its prompt, with trailing
  special-token markers (``</s>``, ``<|...|>``, ``<eos>``, ``<end_of_turn>``) removed; the label
  is the reference in pairwise mode. The response ends at its first EOS: pad text after it (a
  batch's shorter sequences) never changes the reward (``split_query``). Unscored items get
  0.0 (OpenRLHF needs numbers).
- ``GET /health``: status, labeler identity, variant, mode, aggregation, queued items,
  labelled/cached counts.

Errors: bad JSON (nested too deeply included), bodies that are not UTF-8, missing or mistyped
fields → 400 with the reason; a body over ``max_body_bytes``, more than ``max_items`` items, or an
item over ``max_item_tokens`` tokens (default: the labeler's context limit; counted before any
forward pass) → 413 naming the limit; queue full → 503 (with ``Retry-After``); a request not
answered within ``timeout`` → 504, and its remaining items are dropped between engine calls of
``CHUNK_ITEMS`` items; an item the variant cannot render → 400; a labeler that fails (its server
down) → 502. A failing batch is retried request by request, so one bad request never fails the
others. The engine runs in a daemon thread: SIGTERM stops the server within seconds (uvicorn's
2 s graceful shutdown, then at most 2 s for the running engine call), even mid-pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import queue
import re
import sys
import threading
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Executor, Future
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from labelbench.aggregate import Aggregation
from labelbench.config import LabelerSpec, Mode, ServeSettings
from labelbench.data.record import Comparison, content_hash
from labelbench.errors import InputError, LabelbenchError, validation_problem
from labelbench.labeling.cache import LabelCache, default_cache_dir
from labelbench.labeling.labeler import Labeler, soft_labels
from labelbench.labeling.runner import direct_scores, preferences
from labelbench.prompting import Variant

_TRAILING_SPECIAL = re.compile(r"(?:\s*(?:</s>|<eos>|<end_of_turn>|<\|[^|<>]{1,40}\|>))+\s*$")


@dataclass(frozen=True)
class RewardItem:
    """One response to reward; ``reference`` is what it is compared with in pairwise mode."""

    prompt: str
    response: str
    reference: str | None = None


class RewardEngine:
    """Rewards for items, labelled by ``labeler`` under ``variant`` through the label cache.

    Not thread-safe: call it from one thread (the cache's SQLite connection is opened, lazily,
    in the thread that first calls ``rewards``).
    """

    def __init__(
        self,
        labeler: Labeler,
        variant: Variant,
        *,
        mode: Mode = "direct",
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        seed: int = 0,
        aggregation: Aggregation | None = None,
    ) -> None:
        self.labeler, self.variant, self.mode, self.seed = labeler, variant, mode, seed
        self.aggregation = aggregation  # pairwise mode: how both orders become P (soft_labels)
        self._cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self._use_cache = use_cache
        self._cache: LabelCache | None = None
        self._tokenizer: Any = None  # for item_length, outside the engine thread
        self.labelled = 0  # requests computed by the backend (cache misses)
        self.cached = 0  # requests answered from the cache
        self.passes = 0  # engine calls (batches)

    def _open_cache(self) -> LabelCache | None:
        if self._use_cache and self._cache is None:
            self._cache = LabelCache(self._cache_dir)
        return self._cache

    def rewards(self, items: Sequence[RewardItem]) -> list[float | None]:
        """One reward per item (None: unscored): direct scores in [-1, 1], or pairwise
        P(response preferred over reference) in [0, 1]. Identical items are labelled once.
        Raises InputError for an item the variant cannot render (e.g. over the token budget)."""
        cache = self._open_cache()
        unique = list(dict.fromkeys(items))
        if self.mode == "pairwise":
            values = self._pairwise(unique, cache)
        else:
            values = self._direct(unique, cache)
        self.passes += 1
        by_item = dict(zip(unique, values, strict=True))
        return [by_item[item] for item in items]

    def item_limit(self) -> int | None:
        """The most tokens (characters for a labeler without a tokenizer here) one item may
        hold: the labeler's context limit (``Labeler.token_limit``); None when unknown."""
        return self.labeler.token_limit

    def item_length(self, item: RewardItem) -> int:
        """An item's size in the unit of ``item_limit``: its prompt, response and reference
        tokenized (or counted in characters), without the variant's template."""
        text = item.prompt + item.response + (item.reference or "")
        if self.labeler.tokenizer is None:
            return len(text)
        if self._tokenizer is None:  # its own copy: the engine thread uses the labeler's
            self._tokenizer = copy.deepcopy(self.labeler.tokenizer)
        tokenizer = self._tokenizer
        if len(text.encode("utf-8")) <= (self.item_limit() or 0):
            return len(text.encode("utf-8"))  # a token holds at least one byte: short enough
        return sum(
            len(tokenizer(part, add_special_tokens=False)["input_ids"])
            for part in (item.prompt, item.response, item.reference or "")
        )

    def _count(self, rows: Sequence[Any]) -> None:
        fresh = sum(not row.cached for row in rows)
        self.labelled += fresh
        self.cached += len(rows) - fresh

    def _direct(self, items: Sequence[RewardItem], cache: LabelCache | None) -> list[float | None]:
        result = self.labeler.direct_label(
            [item.prompt for item in items],
            [item.response.strip() or "(empty)" for item in items],
            self.variant.spec.task,
            variant=self.variant,
            cache=cache,
        )
        self._count(result.rows)
        return direct_scores(result.rows)

    def _pairwise(
        self, items: Sequence[RewardItem], cache: LabelCache | None
    ) -> list[float | None]:
        pairs = []
        for item in items:
            if item.reference is None:
                raise InputError("request", "pairwise mode needs a reference", field="reference")
            key = content_hash(item.prompt, item.response, item.reference, length=16)
            pairs.append(
                Comparison(
                    id=key,
                    group_id=key,
                    task=self.variant.spec.task,
                    context=item.prompt,
                    response_a=item.response.strip() or "(empty)",
                    response_b=item.reference.strip() or "(empty)",
                )
            )
        result = self.labeler.label(pairs, self.variant, cache=cache, seed=self.seed)
        self._count(result.rows)
        return soft_labels(pairs, preferences(result.rows), self.aggregation)

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None


# ---------------------------------------------------------------------------- batching


class QueueFull(Exception):
    """The bounded queue cannot take the request (HTTP 503)."""


class TooLong(Exception):
    """An item over the per-item token limit (HTTP 413), found before any forward pass."""


CHUNK_ITEMS = 16
"""Items per engine call within a batch: between calls the worker drops the items of requests
that timed out or went away, and stops when the server shuts down."""


class _EngineThread(Executor):
    """One daemon thread that runs the engine: a pass still running at shutdown never holds
    the process (SIGTERM stops the server within seconds; the label cache is safe against a
    killed process)."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.busy = False
        threading.Thread(target=self._loop, name="labelbench-engine", daemon=True).start()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._calls.put((future, fn, args, kwargs))
        return future

    def _loop(self) -> None:
        while True:
            future, fn, args, kwargs = self._calls.get()
            if future is None:
                return
            if not future.set_running_or_notify_cancel():
                continue
            self.busy = True
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as error:
                future.set_exception(error)
            finally:
                self.busy = False

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._calls.put((None, None, None, None))


@dataclass
class _Job:
    items: list[RewardItem]
    future: asyncio.Future[list[float | None]]


@dataclass
class RewardService:
    """Batches concurrent requests into engine passes, run in one worker thread.

    Work per request is bounded before any forward pass: at most ``settings.max_items`` items,
    each within ``settings.max_item_tokens`` tokens (default: the labeler's context limit;
    ``TooLong`` otherwise), and a request that times out or whose client goes away has its
    remaining items dropped between engine calls (``CHUNK_ITEMS``)."""

    engine: RewardEngine
    settings: ServeSettings = field(default_factory=ServeSettings)

    def __post_init__(self) -> None:
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._pool = _EngineThread()
        self._stopping = False
        self.queued = 0  # items waiting or in the running pass
        self.abandoned = 0  # items dropped because their request timed out or went away

    async def start(self) -> None:
        """Start the batching worker on the running event loop (idempotent)."""
        if self._worker is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._work())

    async def stop(self, wait: float = 2.0) -> None:
        """Stop the worker; the running engine call is asked to stop at its next chunk and
        waited for at most ``wait`` seconds (the cache is closed when it finishes in time)."""
        self._stopping = True
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        closing = asyncio.get_running_loop().run_in_executor(self._pool, self.engine.close)
        with contextlib.suppress(TimeoutError):  # a pass still running: the daemon thread
            await asyncio.wait_for(asyncio.shield(closing), wait)  # ends with the process
        self._pool.shutdown(wait=False)

    def limit(self) -> int | None:
        """Tokens (characters without a tokenizer) one item may hold."""
        return self.settings.max_item_tokens or self.engine.item_limit()

    def check(self, items: Sequence[RewardItem]) -> None:
        """TooLong naming the first item over ``limit()``; run outside the engine thread."""
        limit = self.limit()
        if limit is None:
            return
        unit = "tokens" if self.engine.labeler.tokenizer is not None else "characters"
        for index, item in enumerate(items):
            size = self.engine.item_length(item)
            if size > limit:
                raise TooLong(
                    f"item {index}: {size} {unit} (prompt, response and reference), over the "
                    f"limit of {limit} {unit} per item (--max-item-tokens; default the "
                    "labeler's context limit)"
                )

    async def rewards(self, items: list[RewardItem]) -> list[float | None]:
        """Queue items and wait for their rewards; TooLong for an item over the per-item limit
        (checked before queueing), QueueFull when the queue is full, TimeoutError after
        ``settings.timeout`` seconds (the request's work is then dropped), InputError for an
        item the engine refuses."""
        await self.start()
        await asyncio.to_thread(self.check, items)
        if self.queued + len(items) > self.settings.queue_size:
            raise QueueFull(f"{self.queued} items queued (limit {self.settings.queue_size})")
        future: asyncio.Future[list[float | None]] = asyncio.get_running_loop().create_future()
        self.queued += len(items)
        assert self._queue is not None
        self._queue.put_nowait(_Job(items, future))
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.settings.timeout)
        except BaseException:  # timed out, or the client went away: nobody waits for it now
            future.cancel()
            raise

    async def _work(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            size = len(jobs[0].items)
            deadline = loop.time() + self.settings.max_wait_ms / 1000
            while size < self.settings.max_batch:
                remaining = deadline - loop.time()
                try:
                    job = (
                        self._queue.get_nowait()
                        if remaining <= 0
                        else await asyncio.wait_for(self._queue.get(), remaining)
                    )
                except (asyncio.QueueEmpty, TimeoutError):
                    break
                jobs.append(job)
                size += len(job.items)
            try:
                await self._run(jobs)
            finally:
                self.queued -= size

    async def _run(self, jobs: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        jobs = [job for job in jobs if not job.future.done()]
        owners: dict[RewardItem, list[_Job]] = {}
        for job in jobs:
            for item in job.items:
                owners.setdefault(item, []).append(job)
        unique = list(owners)
        found: dict[RewardItem, float | None] = {}
        try:
            for start in range(0, len(unique), CHUNK_ITEMS):
                if self._stopping:
                    return
                candidates = unique[start : start + CHUNK_ITEMS]
                chunk = [
                    item
                    for item in candidates
                    if any(not job.future.done() for job in owners[item])
                ]
                self.abandoned += len(candidates) - len(chunk)
                if chunk:
                    values = await loop.run_in_executor(self._pool, self.engine.rewards, chunk)
                    found.update(zip(chunk, values, strict=True))
        except Exception as error:
            if len(jobs) > 1:  # find the request at fault: each alone
                for job in jobs:
                    await self._run([job])
                return
            if jobs:
                _settle(jobs[0].future, error=error)
            return
        for job in jobs:
            if not job.future.done():
                _settle(job.future, [found[item] for item in job.items])


def _settle(
    future: asyncio.Future[list[float | None]],
    values: list[float | None] | None = None,
    error: BaseException | None = None,
) -> None:
    if future.done():  # its request timed out; the labels are cached all the same
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(values or [])


# ---------------------------------------------------------------------------- HTTP


def _no_surrogates(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            "text holds a lone surrogate (\\ud800-\\udfff): not valid Unicode"
        ) from None
    return value


class _ItemBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str
    response: str
    reference: str | None = None

    @field_validator("prompt", "response", "reference")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return value if value is None else _no_surrogates(value)


class ScoreBody(BaseModel):
    """``POST /score``."""

    model_config = ConfigDict(extra="forbid")

    items: list[_ItemBody] = Field(min_length=1)


class OpenRLHFBody(BaseModel):
    """``POST /get_reward``: OpenRLHF's remote reward-model request."""

    query: list[str] = Field(min_length=1)
    prompts: list[str] | None = None
    labels: list[str | None] | None = None

    @field_validator("query", "prompts", "labels")
    @classmethod
    def _texts(cls, values: list[str | None] | None) -> list[str | None] | None:
        if values is None:
            return None
        return [v if v is None else _no_surrogates(v) for v in values]


EOS_MARKERS = ("</s>", "<eos>", "<end_of_turn>", "<|endoftext|>", "<|im_end|>", "<|eot_id|>")
"""End-of-sequence texts of common tokenizers: a response ends at the first one."""
PAD_MARKERS = ("<pad>", "[PAD]", "<|pad|>", "<|finetune_right_pad_id|>")
"""Padding texts of common tokenizers, removed around the query."""


def split_query(query: str, prompt: str | None, tokenizer: Any = None) -> str:
    """The response inside an OpenRLHF query (prompt + response decoded with special tokens
    kept, so a batch's shorter sequences carry EOS and then pad text): what follows the prompt,
    cut at the first end-of-sequence marker (what follows an EOS is padding, never response),
    with pad and special-token markers removed from its end, as OpenRLHF's own reward server
    strips EOS and pad tokens (``openrlhf/cli/serve_rm.py``). The markers are ``EOS_MARKERS``,
    ``PAD_MARKERS`` and, given the labeler's ``tokenizer``, its EOS, pad and other special
    tokens."""
    eos = set(EOS_MARKERS)
    pads = set(PAD_MARKERS)
    if tokenizer is not None:
        eos.update(t for t in [getattr(tokenizer, "eos_token", None)] if isinstance(t, str) and t)
        named = [getattr(tokenizer, "pad_token", None)]
        named += list(getattr(tokenizer, "all_special_tokens", None) or [])
        pads.update(t for t in named if isinstance(t, str) and t)
    response = query
    if prompt:
        at = query.find(prompt)
        if at >= 0:
            response = query[at + len(prompt) :]
    ends = [at for at in (response.find(marker) for marker in eos) if at >= 0]
    if ends:
        response = response[: min(ends)]
    markers = "|".join(re.escape(m) for m in sorted(pads | eos, key=len, reverse=True))
    response = re.sub(f"(?:\\s*(?:{markers}))+\\s*$", "", response)
    return _TRAILING_SPECIAL.sub("", response)


class _HTTPError(Exception):
    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.headers = status, reason, headers or {}


async def _read_json(request: Any, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _HTTPError(413, f"body of {declared} bytes is over the limit of {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _HTTPError(413, f"body is over the limit of {limit} bytes")
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as error:
        raise _HTTPError(400, f"body is not UTF-8 (byte {error.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _HTTPError(
            400, f"invalid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except RecursionError:
        raise _HTTPError(400, "invalid JSON: nested too deeply") from None


def _validated(model: type[BaseModel], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except RecursionError:
        raise _HTTPError(400, "body nested too deeply") from None
    except ValidationError as error:
        loc, message = validation_problem(error)
        where = ".".join(str(part) for part in loc) or "body"
        raise _HTTPError(400, f"field {where}: {message}") from None


def create_app(service: RewardService) -> Any:
    """The Starlette application serving ``service``."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    settings = service.settings
    engine = service.engine

    def error(status: int, reason: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": reason}, status_code=status, headers=headers)

    async def rewards_for(items: list[RewardItem]) -> list[float | None]:
        if len(items) > settings.max_items:
            raise _HTTPError(413, f"{len(items)} items; at most {settings.max_items} per request")
        if settings.mode == "pairwise" and any(item.reference is None for item in items):
            raise _HTTPError(400, "pairwise mode: every item needs a reference")
        try:
            return await service.rewards(items)
        except TooLong as long:
            raise _HTTPError(413, str(long)) from None
        except QueueFull as full:
            raise _HTTPError(503, f"queue full: {full}", {"Retry-After": "1"}) from None
        except TimeoutError:
            raise _HTTPError(504, f"not answered within {settings.timeout:g} s") from None
        except InputError as failed:  # an item the variant cannot render
            raise _HTTPError(400, str(failed)) from None
        except LabelbenchError as failed:  # the labeler failed (e.g. its server is down)
            raise _HTTPError(502, f"labeler failed: {failed}") from None
        except Exception as failed:
            raise _HTTPError(500, f"labelling failed: {type(failed).__name__}: {failed}") from None

    async def score(request: Request) -> JSONResponse:
        try:
            body = _validated(ScoreBody, await _read_json(request, settings.max_body_bytes))
            items = [RewardItem(i.prompt, i.response, i.reference) for i in body.items]
            values = await rewards_for(items)
        except _HTTPError as failed:
            return error(failed.status, failed.reason, failed.headers)
        return JSONResponse(
            {
                "rewards": values,
                "labeler": engine.labeler.identity,
                "variant": engine.variant.name,
                "mode": settings.mode,
            }
        )

    async def get_reward(request: Request) -> JSONResponse:
        try:
            body = _validated(OpenRLHFBody, await _read_json(request, settings.max_body_bytes))
            count = len(body.query)
            prompts = [None] * count if body.prompts is None else body.prompts
            labels = [None] * count if body.labels is None else body.labels
            if len(prompts) != count or len(labels) != count:
                raise _HTTPError(400, "query, prompts and labels must have the same length")
            items = [
                RewardItem(
                    prompt or "", split_query(query, prompt, engine.labeler.tokenizer), label
                )
                for query, prompt, label in zip(body.query, prompts, labels, strict=True)
            ]
            values = await rewards_for(items)
        except _HTTPError as failed:
            return error(failed.status, failed.reason, failed.headers)
        numbers = [0.0 if v is None else v for v in values]
        unscored = sum(v is None for v in values)
        return JSONResponse(
            {"rewards": numbers, "scores": numbers, "extra_logs": {"unscored": [unscored] * count}}
        )

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "status": "ok",
                "labeler": engine.labeler.identity,
                "variant": engine.variant.name,
                "mode": settings.mode,
                "validated": settings.mode == "pairwise",
                "aggregation": (engine.aggregation.method if engine.aggregation else "prob-mean"),
                "queued": service.queued,
                "labelled": engine.labelled,
                "cached": engine.cached,
                "passes": engine.passes,
                "abandoned": service.abandoned,
                "shortened": engine.labeler.shortened,
                "max_item_tokens": service.limit(),
            }
        )

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    return Starlette(
        routes=[
            Route("/score", score, methods=["POST"]),
            Route("/get_reward", get_reward, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


DIRECT_UNVALIDATED = (
    "warning: mode direct serves the labeler's direct 1-9 score, which no benchmark cell "
    "validated (the benchmark measures pairwise preferences against human labels); "
    "--mode pairwise serves what was measured"
)


def open_engine(
    *,
    winner: str | Path | None = None,
    labeler: LabelerSpec | None = None,
    variant: str | None = None,
    mode: Mode = "direct",
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    seed: int | None = None,
) -> RewardEngine:
    """The engine for ``winner.json`` (its labeler spec, variant and seed), or for a labeler spec
    and variant; InputError unless exactly one source is given (a variant beside a winner is a
    second one), ModelError when the model cannot be opened. The variant is checked before the
    model loads. In direct mode a warning on stderr says that the direct score is unvalidated
    (``DIRECT_UNVALIDATED``)."""
    from labelbench.labeling.labeler import chosen_variant, load_winner, open_labeler, warn_if_weak

    if (winner is None) == (labeler is None):
        raise InputError("labelbench serve", "give --winner, or --labeler with --variant")
    if winner is not None and variant is not None:
        raise InputError("labelbench serve", "give --winner, or --labeler with --variant, not both")
    if winner is not None:
        chosen = load_winner(winner)
        labeler, variant, seed = (
            chosen.labeler,
            chosen.variant,
            chosen.seed if seed is None else seed,
        )
    if variant is None:
        raise InputError("labelbench serve", "--labeler needs --variant")
    loaded_variant = chosen_variant(variant, winner)
    opened = open_labeler(labeler)
    warn_if_weak(chosen if winner is not None else None, aggregation=mode == "pairwise")
    if mode == "direct":
        print(DIRECT_UNVALIDATED, file=sys.stderr)
    return RewardEngine(
        opened,
        loaded_variant,
        mode=mode,
        cache_dir=cache_dir,
        use_cache=use_cache,
        seed=seed or 0,
        aggregation=chosen.aggregation if winner is not None else None,
    )


def check_port_free(host: str, port: int) -> None:
    """InputError (one line) unless ``host:port`` can be bound now: checked before the model
    loads, so a busy port or an unknown host costs no loading time."""
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except (OSError, OverflowError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise InputError("--port", f"cannot listen on {host}:{port} ({reason})") from None


def serve(
    engine: RewardEngine, settings: ServeSettings, *, host: str = "127.0.0.1", port: int = 8000
) -> None:
    """Serve until interrupted (uvicorn)."""
    try:
        import uvicorn
    except ImportError as missing:
        raise InputError(
            "labelbench serve", "needs the serve extra: pip install 'labelbench[serve]'"
        ) from missing
    app = create_app(RewardService(engine, settings))
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)
