"""A labeler as it runs: a ``LabelerSpec`` opened into a backend, with the one labelling path.

``open_labeler(spec)`` loads the backend the spec names, resolves what the spec leaves open (chat
mode, dtype) and derives the labeler's identity, the model part of every cache key. Every user of
AI labels goes through ``Labeler``: ``labelbench run`` (``benchmark``), ``labelbench serve``,
``rlaif label``/``evaluate`` and direct-RLAIF rewards, each as plan → cache → backend →
preferences (or direct scores). ``winner.json`` carries the resolved spec, so ``rlaif label``
reopens exactly the labeler the benchmark measured.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from labelbench.aggregate import Aggregation
from labelbench.config import LabelerSpec
from labelbench.data.record import Comparison
from labelbench.errors import InputError, ModelError, validation_problem
from labelbench.labeling.backend import Backend
from labelbench.labeling.cache import LabelCache
from labelbench.labeling.runner import LabelResult, Preference, direct_scores, label, preferences
from labelbench.prompting import PlanResult, Variant, load_variant, plan
from labelbench.prompting.planner import fitted_direct_request, refuses_system
from labelbench.requests import PlannedRequest
from labelbench.rundir import read_winner

BACKENDS = ("transformers", "http", "vllm", "chat")


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
    (``labelbench.prompting.planner.refuses_system``). The device is left out: it changes
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


@dataclass
class Labeler:
    """An opened labeler: ``spec`` as it runs (chat and dtype resolved) and its backend."""

    spec: LabelerSpec
    backend: Backend
    tokenizer: Any | None  # None when the model is served elsewhere (http)
    parameters: int | None  # counted where the weights are in this process, else the spec's
    context_length: int | None = None
    """The model's own context, in tokens (its config's ``max_position_embeddings``); None when
    unknown here (a served model: set ``max_tokens``)."""
    shortened: int = 0
    """Items whose context was shortened to fit ``token_limit`` so far (a note on stderr each
    time)."""

    @property
    def identity(self) -> str:
        return self.backend.identity

    @property
    def messages(self) -> bool:
        """Requests go as chat messages to a chat-completions API (backend ``chat``)."""
        return self.spec.backend == "chat"

    @property
    def token_limit(self) -> int | None:
        """The context budget every request is planned within: the spec's ``max_tokens`` (tokens
        with a tokenizer here, else characters), never more than the model's context length."""
        limits = [v for v in (self.spec.max_tokens, self.context_length) if v is not None]
        return min(limits) if limits else None

    def _note_shortened(self, count: int, total: int) -> None:
        if count:
            self.shortened += count
            unit = "tokens" if self.tokenizer is not None else "characters"
            print(
                f"note: {self.spec.display}: {count} of {total} items had their context "
                f"shortened to fit the context limit of {self.token_limit} {unit} (the "
                "variant's shorten rule)",
                file=sys.stderr,
            )

    def plan(
        self, items: Sequence[Comparison], variant: str | Variant, seed: int = 0
    ) -> PlanResult:
        """The requests for ``items`` under ``variant``, rendered as this labeler reads them,
        each within ``token_limit`` (over-long contexts shortened and counted; InputError for an
        item that cannot fit)."""
        result = plan(
            items,
            variant,
            tokenizer=self.tokenizer,
            seed=seed,
            chat=bool(self.spec.chat),
            max_tokens=self.token_limit,
            messages=self.messages,
        )
        self._note_shortened(result.shortened, len(items))
        return result

    def label(
        self,
        items: Sequence[Comparison],
        variant: str | Variant,
        *,
        cache: LabelCache | None,
        seed: int = 0,
        progress: bool = False,
        description: str = "labeling",
        require_scores: bool = False,
    ) -> LabelResult:
        """Label every item in its orders through ``cache`` (None: compute everything).
        ``require_scores`` (commands that measure or train on the labels): unscored labels are
        counted on stderr with the backend's reason, and ModelError when every label is
        unscored (``check_scored``)."""
        planned = self.plan(items, variant, seed)
        result = label(
            planned.requests, self.backend, cache=cache, progress=progress, description=description
        )
        if require_scores:
            name = variant.name if isinstance(variant, Variant) else variant
            check_scored(result, f"{self.spec.display} / {name}", self.backend)
        return result

    def preferences(
        self,
        items: Sequence[Comparison],
        variant: str | Variant,
        *,
        cache: LabelCache | None,
        seed: int = 0,
        progress: bool = False,
        aggregation: Aggregation | None = None,
        require_scores: bool = False,
    ) -> list[float | None]:
        """P(A preferred) for each item, in order (None: unscored), through ``aggregation``
        (``soft_labels``; None: the mean of the orders' P(A), ``prob-mean``); ``require_scores``
        as in ``label``."""
        result = self.label(
            items,
            variant,
            cache=cache,
            seed=seed,
            progress=progress,
            require_scores=require_scores,
        )
        return soft_labels(items, preferences(result.rows), aggregation)

    def direct_label(
        self,
        contexts: Sequence[str],
        responses: Sequence[str],
        task: str,
        *,
        variant: str | Variant | None = None,
        cache: LabelCache | None,
    ) -> LabelResult:
        """Direct scoring requests for (context, response) pairs, labelled through ``cache``; row
        ``i`` (item id ``str(i)``) is response ``i``. ``task`` is a task kind or family; templates
        from ``variant`` or the family's base variant."""
        chosen = None if variant is None else _variant(variant)
        fitted = [
            fitted_direct_request(
                context,
                response,
                task,
                variant=chosen,
                tokenizer=self.tokenizer,
                chat=bool(self.spec.chat),
                max_tokens=self.token_limit,
                messages=self.messages,
            )
            for context, response in zip(contexts, responses, strict=True)
        ]
        self._note_shortened(sum(cut for _, cut in fitted), len(fitted))
        planned = [
            PlannedRequest(
                item_id=str(index),
                variant=chosen.name if chosen else task,
                order="AB",
                request=request,
            )
            for index, (request, _) in enumerate(fitted)
        ]
        return label(planned, self.backend, cache=cache, progress=False)

    def direct_scores(
        self,
        contexts: Sequence[str],
        responses: Sequence[str],
        task: str,
        *,
        variant: str | Variant | None = None,
        cache: LabelCache | None,
    ) -> list[float | None]:
        """Direct RLAIF: each response's expected 1..N rating from its context, scaled to
        [-1, 1] (None: unscored); see ``direct_label``."""
        result = self.direct_label(contexts, responses, task, variant=variant, cache=cache)
        return direct_scores(result.rows)

    def close(self) -> None:
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Labeler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_scored(result: LabelResult, what: str, backend: Any = None) -> None:
    """Unscored labels of ``result`` said on stderr (with ``backend.unscored_reason`` when the
    backend knows one, e.g. a server that returned no log-probabilities); ModelError, one line,
    when every label is unscored: nothing could be measured or trained on."""
    total = len(result.rows)
    unscored = sum(not row.scored for row in result.rows)
    if not unscored:
        return
    reason = getattr(backend, "unscored_reason", None) or (
        "the answer tokens were not among the scored tokens"
    )
    if unscored == total:
        raise ModelError(f"{what}: all {total} labels are unscored: {reason}")
    print(f"warning: {what}: {unscored} of {total} labels unscored: {reason}", file=sys.stderr)


def soft_labels(
    items: Sequence[Comparison],
    found: Sequence[Preference],
    aggregation: Aggregation | None = None,
) -> list[float | None]:
    """One soft label P(A) per item, in order (None: unscored): ``aggregation`` applied to the
    items' per-order preferences and log-odds (``labelbench.aggregate.Aggregation``); None is
    ``prob-mean``, the mean of the scored orders' P(A). The one place where benchmark labels
    become training labels and rewards (``rlaif label``, ``labelbench serve``,
    ``labelbench.rewards``)."""
    by_item = {p.item_id: p for p in found}
    if aggregation is None or aggregation.method == "prob-mean":
        return [getattr(by_item.get(item.id), "p_a", None) for item in items]

    def column(name: str) -> list[float]:
        values = [getattr(by_item.get(item.id), name, None) for item in items]
        return [math.nan if value is None else float(value) for value in values]

    labels = aggregation.soft_labels(
        column("p_a_ab"),
        column("p_a_ba"),
        column("logodds_ab"),
        column("logodds_ba"),
        [len(item.response_a) for item in items],
        [len(item.response_b) for item in items],
    )
    return [None if math.isnan(value) else float(value) for value in labels]


def _variant(variant: str | Variant) -> Variant:
    return variant if isinstance(variant, Variant) else load_variant(variant)


def _chat(spec: LabelerSpec, tokenizer: Any | None) -> bool:
    if spec.chat is not None:
        return spec.chat
    return bool(tokenizer is not None and getattr(tokenizer, "chat_template", None))


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


@register_backend("transformers")
def _open_transformers(spec: LabelerSpec) -> Labeler:
    """A model in this process (``TransformersBackend``), in the precision and on the device the
    spec asks for (or the machine's default)."""
    from labelbench.labeling.transformers_backend import TransformersBackend
    from labelbench.models.registry import load_model, resolve_device, resolve_precision

    device = resolve_device(spec.device)
    precision = resolve_precision(spec.name, spec.dtype, device)
    warn_if_emulated(spec.display, precision, device)
    loaded = load_model(spec.name, dtype=precision, device=device)
    chat = _chat(spec, loaded.tokenizer)
    backend = TransformersBackend(loaded.model, loaded.tokenizer, "", max_rows=spec.batch_size)
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
    chat = _chat(spec, tokenizer)
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
    chat = _chat(spec, backend.tokenizer)
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
    chat = _chat(spec, tokenizer) if tokenizer is not None else False
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


# ---------------------------------------------------------------------------- winner.json


@dataclass(frozen=True)
class Winner:
    """What ``winner.json`` hands to training: the labeler as it ran, its variant, the run seed."""

    labeler: LabelerSpec
    variant: str
    seed: int = 0
    loses_to: tuple[str, ...] = ()
    """Trivial baselines it does not beat on its benchmark (``winner.json`` ``beats``)."""
    aggregation: Aggregation | None = None
    """How its per-order labels become one soft label (``winner.json`` ``aggregation``); None:
    the mean of the orders' P(A) (``prob-mean``), as in files written before it existed."""

    def warning(self, aggregation: bool = False) -> str | None:
        """Warnings, one line each, when the benchmark's best cell does not beat a trivial
        baseline, and (``aggregation``: for commands that label through it) when its
        aggregation's labels are not the labeler's judgement (``Aggregation.caveat``)."""
        lines = []
        if self.loses_to:
            lines.append(
                f"warning: {self.labeler.display} / {self.variant} does not beat "
                f"{' or '.join(self.loses_to)} on its benchmark (winner.json): its labels may be "
                "worse than that rule's"
            )
        caveat = self.aggregation.caveat() if self.aggregation and aggregation else None
        if caveat:
            lines.append(f"warning: winner.json's aggregation: {caveat}")
        return "\n".join(lines) or None


def warn_if_weak(winner: Winner | None, aggregation: bool = False) -> None:
    """Print ``winner.warning(aggregation)`` to stderr, if any. Commands call it once every
    input is checked and the labeler is open, just before the work, so that an input error
    stays one line; ``aggregation``: the command labels through winner.json's aggregation
    (``rlaif label``, ``labelbench serve``)."""
    message = winner.warning(aggregation) if winner is not None else None
    if message:
        print(message, file=sys.stderr)


def chosen_variant(variant: str, winner: str | Path | None) -> Variant:
    """The variant a command runs, loaded; an unknown or broken one is named where it came from:
    ``winner.json``'s ``variant`` field when ``winner`` is given, else ``--variant``."""
    try:
        return load_variant(variant)
    except InputError as error:
        if winner is None:
            raise InputError("--variant", error.message) from None
        raise InputError(winner, error.message, field="variant") from None


def load_winner(path: str | Path) -> Winner:
    """The labeler to train or serve with, from a ``winner.json`` written by
    ``labelbench report`` (read by ``labelbench.rundir.read_winner``).

    Raises InputError naming the file and field when it is not a UTF-8 JSON object of the
    winner file's layout (an unknown or misspelt key, a ``labeler`` or ``variant`` that is not
    text, an invalid labeler spec or aggregation, a seed that is not an integer), names no
    winner, has a missing or empty ``labeler`` or ``variant``, or a labeler spec that is
    missing (a report run without the run's config.yaml: the labeler as it ran is unknown) or of
    another labeler than ``labeler``. The variant is checked by its user
    (``rlaif.label.choose_labeler``, ``labelbench serve``)."""
    winner = read_winner(path)
    if not winner.labeler and not winner.variant:
        reason = winner.reason or "it names no labeler and variant"
        raise InputError(path, f"no winner to label with: {reason}", field="labeler")
    for key, value in (("labeler", winner.labeler), ("variant", winner.variant)):
        if value is None:
            raise InputError(path, "missing", field=key)
        if not value.strip():
            raise InputError(path, "is empty", field=key)
    assert winner.labeler is not None and winner.variant is not None
    if winner.labeler_spec is None:
        raise InputError(
            path,
            f"{winner.labeler} has no recorded spec, so its precision, chat template and "
            "backend are unknown (the report ran without the run's config.yaml); rerun "
            "`labelbench report RUN_DIR` with config.yaml in the folder, or name the labeler "
            "with --labeler and --variant",
            field="labeler_spec",
        )
    if winner.labeler_spec.display != winner.labeler:
        raise InputError(
            path,
            f"describes {winner.labeler_spec.display!r}, but labeler names {winner.labeler!r}: "
            "the file was edited by hand or is damaged; rerun `labelbench report RUN_DIR`",
            field="labeler_spec",
        )
    beats = winner.beats or {}
    loses_to = tuple(
        name for name, value in beats.items() if value is False and name != "human ceiling"
    )
    return Winner(
        winner.labeler_spec,
        winner.variant,
        winner.seed or 0,
        loses_to,
        winner.aggregation,
    )


__all__ = [
    "Labeler",
    "Preference",
    "Winner",
    "chosen_variant",
    "labeler_identity",
    "labeler_spec",
    "load_winner",
    "open_labeler",
    "soft_labels",
    "warn_if_weak",
]
