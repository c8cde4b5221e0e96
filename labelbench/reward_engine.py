"""The rewards ``labelbench serve`` and ``labelbench.rewards`` give: a labeler under a variant,
through the label cache.

(prompt, response) → the labeler's direct 1-9 score scaled to [-1, 1] (``mode: direct``, through
``Labeler.direct_rewards``, the one direct-score reward path), or (prompt, response, reference) →
P(response preferred over reference), both orders combined by the winner's aggregation
(``mode: pairwise``; ``winner.json`` ``aggregation``; without one, the mean of the orders' P).
``open_engine`` opens one from ``winner.json`` or a labeler spec and variant.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelbench.aggregate import Aggregation
from labelbench.config import LabelerSpec, Mode
from labelbench.data.record import Comparison, content_hash
from labelbench.errors import InputError
from labelbench.labeling.cache import LabelCache, default_cache_dir
from labelbench.labeling.labeler import Labeler, soft_labels
from labelbench.labeling.runner import preferences
from labelbench.prompting import Variant


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
        found = self.labeler.direct_rewards(
            [item.prompt for item in items],
            [item.response for item in items],
            self.variant.spec.task,
            variant=self.variant,
            cache=cache,
        )
        self._count(found.result.rows)
        return found.rewards

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
        """Close the label cache (reopened by the next ``rewards``)."""
        if self._cache is not None:
            self._cache.close()
            self._cache = None


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
