"""An opened labeler (``Labeler``) and the one labelling path every user of AI labels goes
through: plan → cache → backend → preferences, soft labels or direct scores (``labelbench
run``, ``labelbench serve``, ``rlaif label``/``evaluate`` and direct-RLAIF rewards).
``labelbench.labeling.openers`` opens a ``LabelerSpec`` into one.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from labelbench.aggregate import Aggregation
from labelbench.config import LabelerSpec
from labelbench.data.record import Comparison
from labelbench.errors import ModelError
from labelbench.labeling.backend import Backend
from labelbench.labeling.cache import LabelCache
from labelbench.labeling.runner import LabelResult, Preference, direct_scores, label, preferences
from labelbench.prompting import PlanResult, Variant, load_variant, plan
from labelbench.prompting.planner import fitted_direct_request
from labelbench.requests import PlannedRequest

EMPTY_RESPONSE = "(empty)"
"""What a direct score rates in place of a blank response (``Labeler.direct_rewards``)."""


@dataclass(frozen=True)
class DirectRewards:
    """Direct-score rewards (``Labeler.direct_rewards``) and the labelling they came from."""

    rewards: list[float | None]
    """One per response, in [-1, 1]; None: unscored."""
    result: LabelResult
    """The labels, one row per response (``row.cached``: read from the label cache)."""


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
        """The backend's identity: the model part of every cache key (``labeler_identity``)."""
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

    def direct_rewards(
        self,
        contexts: Sequence[str],
        responses: Sequence[str],
        task: str,
        *,
        variant: str | Variant | None = None,
        cache: LabelCache | None,
    ) -> DirectRewards:
        """The one direct-score reward path, for every user of a labeler's direct score as a
        reward: ``labelbench serve`` and ``labelbench.rewards`` in direct mode
        (``RewardEngine``) and direct RLAIF in ``rlaif ppo`` (``DirectLabelerScorer``).

        Each response is rated with surrounding whitespace removed (a blank one as
        ``(empty)``: ``EMPTY_RESPONSE``) from its context, through ``direct_label``; its reward
        is the expected 1..N rating rescaled to [-1, 1] (``labelbench.labeling.runner
        .direct_scores``), None when unscored. Raises InputError for a request that cannot fit
        the labeler's context even with its context removed."""
        texts = [response.strip() or EMPTY_RESPONSE for response in responses]
        result = self.direct_label(contexts, texts, task, variant=variant, cache=cache)
        return DirectRewards(direct_scores(result.rows), result)

    def close(self) -> None:
        """Close the backend (its server connections), where it has anything to close."""
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
