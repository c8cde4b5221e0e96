"""The preference dataset every preference-trained rlaif model reads, and its builders.

TRL's preference format: ``prompt`` (the text a policy continues, ``policy_prompt``), ``chosen``
and ``rejected`` (responses with one leading space, ``policy_response``), plus ``soft_label``
(the labeler's probability that ``chosen`` is preferred, 0.5-1) for AI labels and
``human_pref_chosen`` (the share of annotators preferring ``chosen``) where the comparisons had
human labels. Built from human comparisons (``human_preference_dataset``) or AI-labelled ones
(``ai_preference_dataset``), so one reward command trains both the RLAIF and the RLHF reward
model. Nothing here imports another rlaif module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelbench.data.record import Comparison
from labelbench.errors import InputError

SOFT_LABEL = "soft_label"
"""Column with the labeler's probability that ``chosen`` is preferred over ``rejected``."""

PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected")


LABEL_SOURCE = "label_source"
"""Column saying where each training pair's label comes from: ``human`` or ``ai``."""


def policy_prompt(task: str, context: str, meta: dict[str, Any] | None = None) -> str:
    """The text a policy continues (and a reward model reads before the response)."""
    meta = meta or {}
    if task == "summarization":
        header = ""
        if meta.get("subreddit"):
            header += f"SUBREDDIT: r/{meta['subreddit']}\n"
        if meta.get("title"):
            header += f"TITLE: {meta['title']}\n"
        body = f"POST: {context.strip()}" if header else context.strip()
        return f"{header}{body}\n\nTL;DR:"
    return context


def policy_response(response: str) -> str:
    """A response as it follows its prompt: one leading space."""
    return " " + response.strip()


def split_items(items: Sequence[Any], split: str | None, test_fraction: float, seed: int) -> list:
    """The ``train`` or ``test`` part of a split by group (post); all when ``split`` is None."""
    from labelbench.data.select import split_by_group

    if split is None:
        return list(items)
    if split not in ("train", "test"):
        raise InputError("--split", f"unknown split {split!r}; use train or test")
    parts = split_by_group(items, {"train": 1.0 - test_fraction, "test": test_fraction}, seed)
    return parts[split]


def human_preference_dataset(comparisons: Sequence[Comparison], source: str = "comparisons"):
    """Comparisons with a human preference (ties dropped) in TRL's format, for Bradley-Terry: no
    soft label; ``human_pref_chosen`` keeps the share of annotators preferring ``chosen``."""
    rows = []
    for item in comparisons:
        pref = item.human_pref_a
        if pref is None or item.is_tie:
            continue
        rows.append(_row(item, pref, human=pref))
    if not rows:
        raise InputError(source, "no comparison with a human preference (unlabelled or all ties)")
    return _dataset(rows).remove_columns(SOFT_LABEL)


def ai_preference_dataset(comparisons: Sequence[Comparison], p_a: Sequence[float | None]):
    """Comparisons labelled by an AI: ``chosen`` is the side the labeler prefers."""
    rows = [
        _row(item, p, human=item.human_pref_a)
        for item, p in zip(comparisons, p_a, strict=True)
        if p is not None
    ]
    if not rows:
        raise InputError("labeler", "the labeler scored none of the comparisons")
    return _dataset(rows)


def to_human_labels(dataset: Any, source: str | Path = "dataset") -> Any:
    """The same pairs labelled by the humans instead: ``chosen`` is the human-preferred side;
    pairs without a human label, or tied, are dropped; no soft label (Bradley-Terry)."""
    if "human_pref_chosen" not in dataset.column_names:
        raise InputError(source, "no human labels in this dataset", field="human_pref_chosen")

    def human_order(row: dict[str, Any]) -> dict[str, Any]:
        if row["human_pref_chosen"] < 0.5:
            row["chosen"], row["rejected"] = row["rejected"], row["chosen"]
            row["human_pref_chosen"] = 1.0 - row["human_pref_chosen"]
        return row

    labelled = dataset.filter(
        lambda row: row["human_pref_chosen"] is not None and row["human_pref_chosen"] != 0.5
    )
    if len(labelled) == 0:
        raise InputError(source, "no pair has a human preference (unlabelled or all ties)")
    labelled = labelled.map(human_order)
    return labelled.remove_columns(SOFT_LABEL) if SOFT_LABEL in labelled.column_names else labelled


def truncate_prompts(prompts: Sequence[str], tokenizer: Any, max_tokens: int | None) -> list[str]:
    """Each prompt cut to its last ``max_tokens`` tokens (its ending, e.g. "TL;DR:", is kept)."""
    if max_tokens is None:
        return list(prompts)
    cut = []
    for prompt in prompts:
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        cut.append(prompt if len(ids) <= max_tokens else tokenizer.decode(ids[-max_tokens:]))
    return cut


def _row(item: Comparison, pref_a: float, human: float | None) -> dict[str, Any]:
    a_wins = pref_a >= 0.5
    chosen, rejected = (
        (item.response_a, item.response_b) if a_wins else (item.response_b, item.response_a)
    )
    human_chosen = None if human is None else (human if a_wins else 1.0 - human)
    confidence = item.annotations[0].confidence if item.annotations else None
    return {
        "id": item.id,
        "group_id": item.group_id,
        "prompt": policy_prompt(item.task, item.context, item.meta),
        "chosen": policy_response(chosen),
        "rejected": policy_response(rejected),
        SOFT_LABEL: pref_a if a_wins else 1.0 - pref_a,
        "human_pref_chosen": human_chosen,
        "confidence": confidence,
    }


def _dataset(rows: list[dict[str, Any]]):
    from datasets import Dataset

    return Dataset.from_list(rows)


def check_preference_dataset(dataset: Any, source: str | Path) -> None:
    """Fail early on a dataset that is not in TRL's preference format."""
    missing = [c for c in PREFERENCE_COLUMNS if c not in dataset.column_names]
    if missing:
        raise InputError(
            source,
            f"not a preference dataset: missing column(s) {', '.join(missing)} "
            f"(has {', '.join(dataset.column_names)})",
        )
    if len(dataset) == 0:
        raise InputError(source, "the dataset is empty")


@dataclass(frozen=True)
class LabelQuality:
    """What ``rlaif label`` says of the soft labels it wrote: ``n`` pairs, their mean
    confidence (mean of P(chosen) = max(P(A), 1 - P(A))), and, on the ``n_human`` pairs with a
    human majority (ties left out), the share where the AI chose as the humans did and the
    log-loss -mean log P(human's choice) (P clipped to [1e-6, 1 - 1e-6]; nats)."""

    n: int
    mean_confidence: float
    n_human: int
    agreement: float | None
    log_loss: float | None

    def line(self) -> str:
        text = f"soft labels: mean confidence {self.mean_confidence:.3f} over {self.n} pairs"
        if self.n_human and self.agreement is not None and self.log_loss is not None:
            text += (
                f"; against the {self.n_human} human labels: agreement {self.agreement:.3f}, "
                f"log-loss {self.log_loss:.3f}"
            )
        else:
            text += "; no human labels to check them against"
        return text


def label_quality(dataset: Any) -> LabelQuality:
    """``LabelQuality`` of a preference dataset with ``SOFT_LABEL`` and ``human_pref_chosen``."""
    p = [float(v) for v in dataset[SOFT_LABEL]]
    human = [None if v is None else float(v) for v in dataset["human_pref_chosen"]]
    decided = [(q, h) for q, h in zip(p, human, strict=True) if h is not None and h != 0.5]
    agreement = log_loss = None
    if decided:
        hits = [(0.5 if q == 0.5 else float(h > 0.5)) for q, h in decided]
        agreement = sum(hits) / len(hits)
        terms = [-math.log(min(max(q if h > 0.5 else 1 - q, 1e-6), 1 - 1e-6)) for q, h in decided]
        log_loss = sum(terms) / len(terms)
    return LabelQuality(
        n=len(p),
        mean_confidence=sum(p) / len(p) if p else math.nan,
        n_human=len(decided),
        agreement=agreement,
        log_loss=log_loss,
    )


def check_soft_labels(dataset: Any, source: str | Path) -> None:
    """Every soft label is a finite number in [0, 1]; else InputError naming the row and id."""
    if SOFT_LABEL not in dataset.column_names:
        return
    ids = dataset["id"] if "id" in dataset.column_names else None
    for row, value in enumerate(dataset[SOFT_LABEL]):
        ok = isinstance(value, int | float) and math.isfinite(value) and 0.0 <= value <= 1.0
        if not ok:
            which = f" (id {ids[row]})" if ids is not None else ""
            raise InputError(
                source,
                f"soft label {value!r}{which}: must be a finite probability in [0, 1]",
                record=row,
                field=SOFT_LABEL,
            )
