"""``labelbench serve``: the winning labeler as a reward service for RL engines.

(prompt, response) → the labeler's direct 1-9 score scaled to [-1, 1] (``mode: direct``), or
(prompt, response, reference) → P(response preferred over reference), both orders combined by the
winner's aggregation (``mode: pairwise``; ``winner.json`` ``aggregation``, e.g. a calibrated
temperature; without one, the mean of the orders' P), through the benchmark's labelling path and
label cache (``labelbench.reward_engine``). Requests wait in a bounded queue; one worker takes
what is queued (up to ``max_batch`` items, waiting at most ``max_wait_ms`` for more) into one
engine pass (``labelbench.reward_service``). This module is the HTTP application.

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

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from labelbench.config import Mode, ServeSettings
from labelbench.errors import InputError, LabelbenchError, validation_problem
from labelbench.reward_engine import DIRECT_UNVALIDATED, RewardEngine, RewardItem, open_engine
from labelbench.reward_service import CHUNK_ITEMS, QueueFull, RewardService, TooLong

__all__ = [
    "CHUNK_ITEMS",
    "DIRECT_UNVALIDATED",
    "EOS_MARKERS",
    "PAD_MARKERS",
    "Mode",
    "OpenRLHFBody",
    "QueueFull",
    "RewardEngine",
    "RewardItem",
    "RewardService",
    "ScoreBody",
    "ServeSettings",
    "TooLong",
    "check_port_free",
    "create_app",
    "open_engine",
    "serve",
    "split_query",
]
"""The HTTP application is defined here; the engine (``labelbench.reward_engine``) and the
batching service (``labelbench.reward_service``) are imported from here as well."""

_TRAILING_SPECIAL = re.compile(r"(?:\s*(?:</s>|<eos>|<end_of_turn>|<\|[^|<>]{1,40}\|>))+\s*$")


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
