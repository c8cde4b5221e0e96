"""Which labels a preference-trained model (``rlaif reward``, ``rlaif dpo``) learns from: the AI
labels of ``rlaif label``, the same pairs' human labels, or a mix, each trained row's source in
``label_source``; and the ``training_pairs.jsonl`` record of the pairs trained on."""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from labelbench.errors import InputError
from rlaif.preferences import LABEL_SOURCE, SOFT_LABEL, check_soft_labels, to_human_labels

if TYPE_CHECKING:
    from rlaif.data import DataOptions


@dataclass
class LabelOptions:
    """Which labels a preference-trained model (``rlaif reward``, ``rlaif dpo``) learns from.

    A dataset written by ``rlaif label`` holds the AI label of each pair (``soft_label``, the
    labeler's probability of its own choice, 0.5-1) and, where the comparisons had one, the
    human label (``human_pref_chosen``). Every trained row records its label's source in
    ``label_source``."""

    labels: Literal["auto", "ai", "human", "mixed"] = field(
        default="auto",
        metadata={
            "help": "auto (AI labels where the data has them, else human; mixed with "
            "--human-labels), ai, human (the same pairs' human labels), mixed (human where a "
            "pair has one, AI elsewhere)."
        },
    )
    hard: bool = field(
        default=False,
        metadata={"help": "Hard labels (chosen beats rejected) even when soft ones exist."},
    )
    min_confidence: float | None = field(
        default=None,
        metadata={
            "help": "Keep only AI-labelled pairs whose label is at least this sure (soft label "
            "0.5-1); human-labelled pairs are kept."
        },
    )
    human_labels: Path | None = field(
        default=None,
        metadata={
            "help": "Human comparisons (or a dataset with human labels) for some of the pairs: "
            "they label those pairs, the AI the rest (pairs match on prompt and both responses)."
        },
    )
    human_limit: int | None = field(
        default=None,
        metadata={"help": "Mixed labels: at most this many pairs take a human label (seeded)."},
    )

    def __post_init__(self) -> None:
        if self.labels not in ("auto", "ai", "human", "mixed"):
            raise ValueError(f"unknown labels {self.labels!r}; use auto, ai, human or mixed")
        if self.min_confidence is not None and not 0.5 <= self.min_confidence <= 1.0:
            raise ValueError("min_confidence must be between 0.5 and 1")
        if self.human_limit is not None and self.human_limit < 0:
            raise ValueError("human_limit must not be negative")
        if self.human_labels is not None and self.labels in ("ai", "human"):
            raise ValueError(
                f"human_labels mixes human and AI labels: use --labels mixed or auto, "
                f"not {self.labels}"
            )

    def mode(self, has_ai_labels: bool) -> str:
        """The labels trained on: ``ai``, ``human`` or ``mixed``."""
        if self.labels != "auto":
            return self.labels
        if self.human_labels is not None:
            return "mixed"
        return "ai" if has_ai_labels else "human"


def _pair_key(prompt: str, first: str, second: str) -> tuple[str, frozenset[str]]:
    return prompt.strip(), frozenset((first.strip(), second.strip()))


def attach_human_labels(
    dataset: Any, human: Any, source: str | Path, human_source: str | Path
) -> Any:
    """``dataset`` with ``human_pref_chosen`` taken from ``human`` (a human preference dataset:
    ``chosen`` is the humans' side, ``human_pref_chosen`` the share preferring it): a pair of
    ``dataset`` gets the human label of the same prompt and responses (either order), and no
    human label when ``human`` has none. InputError when no pair matches."""
    from datasets import Dataset

    labels: dict[tuple[str, frozenset[str]], tuple[str, float]] = {}
    for row in human:
        key = _pair_key(row["prompt"], row["chosen"], row["rejected"])
        labels[key] = (row["chosen"].strip(), float(row["human_pref_chosen"] or 1.0))
    rows = dataset.to_list()
    matched = 0
    for row in rows:
        found = labels.get(_pair_key(row["prompt"], row["chosen"], row["rejected"]))
        if found is None:
            row["human_pref_chosen"] = None
            continue
        matched += 1
        chosen, pref = found
        row["human_pref_chosen"] = pref if row["chosen"].strip() == chosen else 1.0 - pref
    if not matched:
        raise InputError(
            human_source,
            f"none of its {len(labels)} human-labelled pairs is among the {len(rows)} training "
            f"pairs of {source} (pairs match on prompt and both responses)",
        )
    return Dataset.from_list(rows)


def mix_labels(dataset: Any, human_limit: int | None = None, seed: int = 0) -> Any:
    """Human labels where a pair has one (``human_pref_chosen`` set and not a tie; at most
    ``human_limit`` of them, a seeded sample), AI labels elsewhere. A human-labelled pair is
    ordered with the humans' side as ``chosen`` and its ``soft_label`` becomes the share of
    annotators preferring it (1.0 for one annotator, so the soft-label loss is exactly
    Bradley-Terry or DPO there). Adds ``label_source`` (``human``/``ai``)."""
    from datasets import Dataset

    rows = dataset.to_list()
    human = [
        i
        for i, row in enumerate(rows)
        if row.get("human_pref_chosen") is not None and row["human_pref_chosen"] != 0.5
    ]
    if human_limit is not None and len(human) > human_limit:
        human = sorted(random.Random(seed).sample(human, human_limit))
    chosen_rows = set(human)
    for index, row in enumerate(rows):
        if index not in chosen_rows:
            row[LABEL_SOURCE] = "ai"
            continue
        pref = float(row["human_pref_chosen"])
        if pref < 0.5:
            row["chosen"], row["rejected"] = row["rejected"], row["chosen"]
            pref = 1.0 - pref
        row["human_pref_chosen"] = pref
        row[SOFT_LABEL] = pref
        row[LABEL_SOURCE] = "human"
    return Dataset.from_list(rows)


def choose_labels(
    dataset: Any,
    options: LabelOptions,
    source: str | Path,
    data: DataOptions,
    *,
    seed: int = 0,
    limit: int | None = None,
) -> Any:
    """The training pairs with the labels ``options`` ask for, each row's source in
    ``label_source``; ``limit`` pairs at most (a seeded sample, taken last).

    InputError (one line, naming the file and row or option) for: AI or mixed labels asked of a
    dataset without AI labels; human labels asked of pairs without any; a soft label that is not
    a probability; ``--human-labels`` that match no pair; ``--human-limit`` without mixed
    labels; no pair left after ``--min-confidence``."""
    from dataclasses import replace

    from rlaif.data import load_preferences

    has_ai = SOFT_LABEL in dataset.column_names
    mode = options.mode(has_ai)
    if options.labels == "auto" and mode == "human":  # never trains human labels unannounced
        print(
            f"note: {source} holds no AI labels (no {SOFT_LABEL} column): training on its "
            "human labels (--labels human says so; make AI labels with rlaif label)",
            file=sys.stderr,
        )
    if mode in ("ai", "mixed") and not has_ai:
        raise InputError(source, f"--labels {mode}: no AI labels here (make them with rlaif label)")
    if options.human_limit is not None and mode != "mixed":
        raise InputError(
            "--human-limit", "applies to mixed labels (--labels mixed, or --human-labels FILE)"
        )
    check_soft_labels(dataset, source)
    if options.human_labels is not None:
        human = load_preferences(options.human_labels, replace(data, split=None))
        if SOFT_LABEL in human.column_names:
            human = to_human_labels(human, options.human_labels)
        dataset = attach_human_labels(dataset, human, source, options.human_labels)
    if mode == "ai":
        dataset = dataset.add_column(LABEL_SOURCE, ["ai"] * len(dataset))
    elif mode == "human":
        if has_ai:
            dataset = to_human_labels(dataset, source)
        dataset = dataset.add_column(LABEL_SOURCE, ["human"] * len(dataset))
    else:
        if "human_pref_chosen" not in dataset.column_names:
            raise InputError(
                source,
                "--labels mixed: no human labels here (give --human-labels FILE)",
                field="human_pref_chosen",
            )
        dataset = mix_labels(dataset, options.human_limit, seed)
        if options.human_limit != 0 and "human" not in dataset[LABEL_SOURCE]:
            raise InputError(
                source,
                "--labels mixed: no pair here has a human label (give --human-labels FILE, or "
                "use --labels ai)",
                field="human_pref_chosen",
            )
    if options.min_confidence is not None:
        if SOFT_LABEL not in dataset.column_names:
            raise InputError(
                source,
                "--min-confidence applies to AI labels; these pairs have none (make them with "
                "rlaif label)",
                field=SOFT_LABEL,
            )
        before = len(dataset)
        sure = options.min_confidence
        dataset = dataset.filter(
            lambda row: row[LABEL_SOURCE] == "human" or row[SOFT_LABEL] >= sure
        )
        if len(dataset) == 0:
            raise InputError(
                source,
                f"--min-confidence {sure}: none of the {before} pairs has an AI label that sure",
            )
    if limit is not None:
        dataset = dataset.shuffle(seed=seed).select(range(min(limit, len(dataset))))
    return dataset


def label_source_shares(dataset: Any) -> dict[str, Any]:
    """How many training pairs carry each label source, and their shares:
    ``{"counts": {"human": n, "ai": n}, "shares": {"human": x, "ai": y}}``."""
    sources = list(dataset[LABEL_SOURCE]) if LABEL_SOURCE in dataset.column_names else []
    counts = {name: sources.count(name) for name in ("human", "ai")}
    total = sum(counts.values())
    shares = {name: (count / total if total else None) for name, count in counts.items()}
    return {"counts": counts, "shares": shares}


TRAINING_PAIRS_FILE = "training_pairs.jsonl"
"""The file, beside a preference-trained model's metrics, with one line per training pair."""


def write_training_pairs(dataset: Any, folder: Path) -> Path:
    """``folder/training_pairs.jsonl``: per training pair its ``id`` (the row number when the
    data has none), ``group_id``, ``label_source`` (human/ai), ``soft_label`` (P(chosen), None
    for hard labels), ``chosen`` and ``rejected``, in training-set order. Returns the path."""
    import json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / TRAINING_PAIRS_FILE
    columns = dataset.column_names
    with path.open("w", encoding="utf-8") as out:
        for index, row in enumerate(dataset):
            record = {
                "id": row["id"] if "id" in columns else index,
                "group_id": row.get("group_id"),
                "label_source": row.get(LABEL_SOURCE),
                "soft_label": row.get(SOFT_LABEL),
                "chosen": row["chosen"],
                "rejected": row["rejected"],
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path
