"""Opening a ``LabelerSpec`` into a ``Labeler``: backends register themselves by name
(``register_backend``, ``BACKENDS``), ``open_labeler`` looks the spec's up, resolves what the
spec leaves open (chat mode, dtype) and derives the labeler's identity, the model part of every
cache key (``labeler_identity``); ``prompt_view`` derives the same without loading weights.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from labelbench.config import LabelerSpec
from labelbench.data.record import Comparison
from labelbench.errors import InputError, ModelError, validation_problem
from labelbench.labeling.opened import Labeler
from labelbench.prompting import Variant, plan
from labelbench.prompting.tokens import refuses_system
from labelbench.requests import PlannedRequest

BACKENDS: dict[str, Callable[[LabelerSpec], Labeler]] = {}
"""Backend name (a labeler spec's ``backend``) -> the function that opens a labeler of it; filled
by ``register_backend``."""


def register_backend(
    name: str,
) -> Callable[[Callable[[LabelerSpec], Labeler]], Callable[[LabelerSpec], Labeler]]:
    """Register the function that opens labelers of backend ``name`` (a decorator)."""

    def register(opener: Callable[[LabelerSpec], Labeler]) -> Callable[[LabelerSpec], Labeler]:
        BACKENDS[name] = opener
        return opener

    return register


def open_labeler(spec: LabelerSpec) -> Labeler:
    """Load the backend ``spec`` names (``BACKENDS``); raises ModelError (missing model, missing
    extra) or InputError (unusable spec, unknown backend)."""
    opener = BACKENDS.get(spec.backend)
    if opener is None:
        raise InputError(
            "backend", f"unknown backend {spec.backend!r} (known: {', '.join(sorted(BACKENDS))})"
        )
    return opener(spec)


def labeler_spec(source: str, **fields: Any) -> LabelerSpec:
    """A ``LabelerSpec`` from command-line options (None values dropped); InputError naming
    ``source`` and the option when one is not valid."""
    given = {key: value for key, value in fields.items() if value is not None}
    if given.get("backend", "transformers") not in BACKENDS:
        raise InputError(
            "--backend",
            f"unknown backend {given['backend']!r}; choose one of {', '.join(BACKENDS)}",
        )
    if given.get("backend") in ("http", "chat") and not given.get("url"):
        backend = given["backend"]
        raise InputError("--base-url", f"the {backend} backend needs the server's base URL")
    try:
        return LabelerSpec(**given)
    except ValidationError as error:
        loc, message = validation_problem(error)
        where = "-".join(str(part) for part in loc).replace("_", "-")
        option = {"": source, "name": source, "url": "--base-url"}.get(where, f"--{where}")
        raise InputError(option, message) from None


def labeler_identity(
    spec: LabelerSpec, *, weights: str, chat: bool, dtype: str | None, folded: bool = False
) -> str:
    """The labeler's identity: everything that changes its output, as one string.

    ``backend:WEIGHTS|chat=on|off[|dtype=D][|system=folded]``, and for ``chat``
    ``|answer=prefill|instruction|logprobs`` or ``|verdict[|n=N|t=T]``; ``WEIGHTS`` is
    ``spec.identity`` when set, else the derived ``weights`` (a weights hash or hub commit; for
    ``http`` and ``chat`` the endpoints and the served model name, so a fleet is one labeler
    only when ``identity`` names the served weights); ``system=folded``: with chat on, its
    template refuses a system message, so a variant's system text opens the first user turn
    (``labelbench.prompting.tokens.refuses_system``). The device is left out: it changes
    results only within float noise.
    """
    parts = [f"{spec.backend}:{spec.identity or weights}", f"chat={'on' if chat else 'off'}"]
    if dtype:
        parts.append(f"dtype={dtype}")
    if folded:
        parts.append("system=folded")
    if spec.backend == "chat":  # how the answer is asked for and read: changes every label
        parts.append(f"answer={'prefill' if spec.prefill else 'instruction'}")
        if spec.logprobs is False:
            samples = spec.samples or 1
            temperature = spec.temperature if spec.temperature is not None else 1.0
            parts.append("verdict" + (f"|n={samples}|t={temperature:g}" if samples > 1 else ""))
        else:
            parts.append("logprobs")
    return "|".join(parts)


def chat_mode(spec: LabelerSpec, tokenizer: Any | None) -> bool:
    """Whether a labeler renders prompts with its chat template: ``spec.chat`` when set, else
    (auto) when its tokenizer has a template."""
    if spec.chat is not None:
        return spec.chat
    return bool(tokenizer is not None and getattr(tokenizer, "chat_template", None))


@register_backend("transformers")
def _open_transformers(spec: LabelerSpec) -> Labeler:
    """A model in this process (``TransformersBackend``), in the precision and on the device the
    spec asks for (or the machine's default)."""
    from labelbench.labeling.compiled import compile_layers, want_compiled, warn_eager
    from labelbench.labeling.transformers_backend import TransformersBackend
    from labelbench.models.registry import load_model, resolve_device, resolve_precision

    device = resolve_device(spec.device)
    precision = resolve_precision(spec.name, spec.dtype, device)
    warn_if_emulated(spec.display, precision, device)
    loaded = load_model(spec.name, dtype=precision, device=device)
    chat = chat_mode(spec, loaded.tokenizer)
    gib = spec.decode_memory_gib  # a tiny budget stays tiny (at least one byte), never the default
    decode_bytes = None if gib is None else max(1, int(gib * 2**30))
    if want_compiled(spec.compile, loaded.model):
        reason = compile_layers(loaded.model)
        if reason is not None:
            warn_eager(spec.display, reason)
    backend = TransformersBackend(
        loaded.model, loaded.tokenizer, "", max_rows=spec.batch_size, decode_bytes=decode_bytes
    )
    dtype = backend.precision  # what the weights were loaded in
    folded = chat and refuses_system(loaded.tokenizer)
    backend.set_identity(
        labeler_identity(spec, weights=loaded.identity, chat=chat, dtype=dtype, folded=folded)
    )
    resolved = spec.model_copy(update={"chat": chat, "dtype": dtype})
    parameters = sum(p.numel() for p in loaded.model.parameters())
    return Labeler(resolved, backend, loaded.tokenizer, parameters, backend.context_length)


@register_backend("http")
def _open_http(spec: LabelerSpec) -> Labeler:
    """A server's ``/v1/completions`` (``HTTPBackend``): prompts as text, or as token ids with
    ``tokenizer``."""
    from labelbench.labeling.http_backend import HTTPBackend

    tokenizer = None
    weights = f"{_endpoint(spec.url)}|model={spec.name}"
    if spec.tokenizer:
        from labelbench.models.registry import load_tokenizer

        tokenizer = load_tokenizer(spec.tokenizer)
        weights += "|token-ids"  # sent as ids: the server's special tokens are not added
    chat = chat_mode(spec, tokenizer)
    folded = chat and refuses_system(tokenizer)
    identity = labeler_identity(spec, weights=weights, chat=chat, dtype=None, folded=folded)
    backend = HTTPBackend(
        spec.url,
        spec.name,
        identity=identity,
        api_key_env=spec.api_key_env,
        concurrency=spec.concurrency,
        timeout=spec.timeout,
        max_retry_after=spec.max_retry_after,
        tokenizer=tokenizer,
    )
    # a served model: the parameter count the config states (for the size plots)
    return Labeler(spec.model_copy(update={"chat": chat}), backend, tokenizer, spec.parameters)


@register_backend("vllm")
def _open_vllm(spec: LabelerSpec) -> Labeler:
    """vLLM in this process (``VLLMBackend``)."""
    from labelbench.labeling.vllm_backend import VLLMBackend

    options = {"dtype": spec.dtype} if spec.dtype else {}
    backend = VLLMBackend(spec.name, **options)
    dtype = spec.dtype or str(getattr(backend, "dtype", "auto"))
    chat = chat_mode(spec, backend.tokenizer)
    folded = chat and refuses_system(backend.tokenizer)
    weights = _vllm_weights(spec.name)
    backend.set_identity(
        labeler_identity(spec, weights=weights, chat=chat, dtype=dtype, folded=folded)
    )
    known = dtype if dtype in ("float32", "bfloat16") else spec.dtype  # LabelerSpec's values
    resolved = spec.model_copy(update={"chat": chat, "dtype": known})
    context = getattr(backend, "context_length", None)
    return Labeler(resolved, backend, backend.tokenizer, spec.parameters, context)


@dataclass(frozen=True)
class PromptView:
    """How a labeler's prompts are rendered without loading its weights (the item view): its
    tokenizer, chat mode and token budget as ``open_labeler`` resolves them, and its identity
    (the model part of every cache key) where it can be derived here."""

    tokenizer: Any | None
    chat: bool
    max_tokens: int | None
    identity: str | None
    note: str | None = None
    """Why the prompts shown may differ from those sent (a tokenizer that cannot be loaded);
    None when they are rendered as the labeler renders them."""

    def plan(
        self, items: Sequence[Comparison], variant: Variant, seed: int
    ) -> list[PlannedRequest]:
        """The requests for ``items`` under ``variant`` as the labeler planned them (its
        tokenizer, chat mode and token budget), in the planner's order."""
        return plan(
            items,
            variant,
            tokenizer=self.tokenizer,
            seed=seed,
            chat=self.chat,
            max_tokens=self.max_tokens,
        ).requests


def prompt_view(spec: LabelerSpec) -> PromptView:
    """The tokenizer, chat mode, token budget and identity of ``spec`` (a labeler as it ran:
    ``config.yaml`` of a run records its chat mode and dtype), loading only the tokenizer. When
    the tokenizer cannot be loaded the prompts are raw text, and ``note`` says so."""
    from labelbench.models.registry import declared_context_length, load_tokenizer

    source = spec.tokenizer if spec.backend == "http" else spec.name
    tokenizer, context, note = None, None, None
    if source is not None:
        try:
            tokenizer = load_tokenizer(source)
            if spec.backend != "http":
                context = declared_context_length(source)
        except ModelError as error:
            note = (
                f"the tokenizer of {spec.display} could not be loaded here ({error}); its "
                "prompts are shown as raw text, without chat template or token budget"
            )
    chat = chat_mode(spec, tokenizer) if tokenizer is not None else False
    if spec.chat and tokenizer is None and note is None:
        note = f"{spec.display} ran with its chat template, which is not available here"
    limits = [v for v in (spec.max_tokens, context) if v is not None]
    max_tokens = min(limits) if limits else None
    folded = chat and refuses_system(tokenizer)
    identity = None
    if note is None:
        if spec.backend == "http":
            weights = f"{_endpoint(str(spec.url))}|model={spec.name}"
            weights += "|token-ids" if spec.tokenizer else ""
            identity = labeler_identity(spec, weights=weights, chat=chat, dtype=None, folded=folded)
        else:
            identity = labeler_identity(
                spec, weights=_vllm_weights(spec.name), chat=chat, dtype=spec.dtype, folded=folded
            )
    return PromptView(tokenizer, chat, max_tokens, identity, note)


def chat_urls(spec: LabelerSpec) -> list[str]:
    """The servers of a ``chat`` labeler: its ``url``, one or a list."""
    return [spec.url] if isinstance(spec.url, str) else list(spec.url or [])


@register_backend("chat")
def _open_chat(spec: LabelerSpec) -> Labeler:
    """A ``chat`` labeler: the spec resolved (chat on, logprobs, prefill and samples set), its
    identity and a ``ChatBackend`` over its servers; the cost of ``samples`` said on stderr."""
    from labelbench.labeling.chat_backend import ChatBackend

    logprobs = spec.logprobs is not False
    samples = 1 if logprobs else (spec.samples or 1)
    temperature = spec.temperature if spec.temperature is not None else 1.0
    resolved = spec.model_copy(
        update={
            "chat": True,
            "logprobs": logprobs,
            "prefill": bool(spec.prefill),
            "samples": None if logprobs else samples,
            "temperature": temperature if samples > 1 else None,
        }
    )
    urls = chat_urls(spec)
    weights = ",".join(sorted(_endpoint(url) for url in urls)) + f"|model={spec.name}"
    identity = labeler_identity(resolved, weights=weights, chat=True, dtype=None)
    backend = ChatBackend(
        urls,
        spec.name,
        identity=identity,
        api_key_env=spec.api_key_env,
        logprobs=logprobs,
        top_logprobs=spec.top_logprobs,
        prefill=bool(spec.prefill),
        samples=samples,
        temperature=temperature,
        concurrency=spec.concurrency,
        timeout=spec.timeout,
        max_retries=spec.max_retries,
        max_retry_after=spec.max_retry_after,
    )
    if samples > 1:
        print(
            f"note: {spec.display}: {samples} replies per request (samples: {samples}): soft "
            f"labels from the verdicts' shares, at {samples} times the generated tokens of one "
            "reply",
            file=sys.stderr,
        )
    return Labeler(resolved, backend, None, spec.parameters)


def warn_if_emulated(name: str, precision: str, device: str) -> None:
    """A warning on stderr, before any work, when ``precision`` is bfloat16 on a device that only
    emulates it (a CPU without AVX-512 BF16 or AMX: ``labelbench.models.registry
    .native_bfloat16``), where it runs several times slower than float32 (13.6 against 1.6 s per
    pair measured on such a Xeon) for no gain in agreement."""
    from labelbench.models import registry

    emulated = device.startswith("cpu") and not registry.native_bfloat16(device)
    if precision == "bfloat16" and emulated:
        print(
            f"warning: {name}: dtype bfloat16 on a CPU without native bfloat16 (no AVX-512 BF16 "
            "or AMX) is emulated through float32 and runs several times slower than float32 "
            "here (about 8x measured); set dtype: float32 (or leave dtype unset: the model's "
            "fastest precision within bounds)",
            file=sys.stderr,
        )


def _endpoint(url: str) -> str:
    """The server's address for the identity: no user name, password or query (never stored)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def _vllm_weights(name: str) -> str:
    from labelbench.errors import ModelError
    from labelbench.models.registry import model_identity

    try:
        return model_identity(name)
    except ModelError:
        return name
