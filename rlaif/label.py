"""``rlaif label``: preference data for reward-model training, labelled by an AI labeler.

The pairs are either existing comparisons or two responses per prompt sampled from the starting
policy. The output is a ``datasets.Dataset`` in TRL's preference format (``prompt``, ``chosen``,
``rejected``) with the labeler's probability that ``chosen`` is preferred in ``soft_label``.
Human labels give the same format (``human_preference_dataset``), so one reward command trains
both the RLAIF and the RLHF reward model.
"""

from __future__ import annotations

import dataclasses
import math
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from labelbench.aggregate import Aggregation
from labelbench.config import LabelerSpec
from labelbench.data.record import Comparison, PromptItem, content_hash
from labelbench.errors import InputError
from rlaif.reward_config import SOFT_LABEL

if TYPE_CHECKING:
    from rlaif.data import DataOptions

PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected")
LABEL_SOURCE = "label_source"
"""Column saying where each training pair's label comes from: ``human`` or ``ai``."""


def choose_labeler(
    command: str,
    winner: Path | None,
    labeler: str | None,
    variant: str | None,
    *,
    seed: int = 0,
    required: bool = True,
    **overrides: Any,
) -> Any:
    """The labeler a command runs (``labelbench.labeling.labeler.Winner``: spec, variant, seed):
    from ``--winner winner.json`` (the labeler exactly as benchmarked, dtype and chat mode
    included, and the run's seed) or from ``--labeler`` and ``--variant`` (``seed``).
    ``overrides`` (e.g. ``chat``, ``max_tokens``; None values ignored) replace spec fields.
    None when nothing is named and not ``required``. InputError on a bad or mixed request.
    The winner's warning (it loses to a trivial baseline) is the caller's to print, once its
    inputs are checked (``labelbench.labeling.labeler.warn_if_weak``)."""
    from labelbench.labeling.labeler import Winner, chosen_variant, labeler_spec, load_winner
    from rlaif.data import existing

    given = {key: value for key, value in overrides.items() if value is not None}
    if winner is not None and (labeler or variant):
        raise InputError(command, "give --winner winner.json, or --labeler and --variant, not both")
    if winner is not None:
        chosen = load_winner(existing(winner, "winner file"))
        chosen = dataclasses.replace(chosen, labeler=chosen.labeler.model_copy(update=given))
    elif labeler and variant:
        chosen = Winner(labeler_spec("--labeler", name=labeler, **given), variant, seed)
    elif labeler or variant or required:
        raise InputError(
            command, "name the labeler: --winner winner.json, or --labeler and --variant"
        )
    else:
        return None
    chosen_variant(chosen.variant, winner)
    return chosen


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


def sample_pairs(
    prompts: Sequence[PromptItem],
    policy: Any,
    tokenizer: Any,
    *,
    max_new_tokens: int = 48,
    temperature: float = 0.7,
    max_prompt_tokens: int = 512,
    batch_size: int = 8,
    seed: int = 0,
) -> list[Comparison]:
    """Two sampled responses per prompt from ``policy``, as unlabelled comparisons."""
    texts = [policy_prompt(p.task, p.context, p.meta) for p in prompts]
    responses = generate(
        policy,
        tokenizer,
        [t for t in texts for _ in range(2)],
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        max_prompt_tokens=max_prompt_tokens,
        batch_size=batch_size,
        seed=seed,
    )
    pairs = []
    for index, item in enumerate(prompts):
        first, second = responses[2 * index], responses[2 * index + 1]
        if not first.strip() or not second.strip() or first.strip() == second.strip():
            continue
        pairs.append(
            Comparison(
                id=f"{item.id}-{content_hash(first, second, length=8)}",
                group_id=item.group_id,
                task=item.task,
                context=item.context,
                response_a=first.strip(),
                response_b=second.strip(),
                meta=dict(item.meta),
            )
        )
    return pairs


def generate(
    policy: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    temperature: float,
    max_prompt_tokens: int = 512,
    batch_size: int = 8,
    seed: int = 0,
    progress: bool = True,
) -> list[str]:
    """Sampled continuations (text up to EOS), seeded, batched, with a progress bar."""
    texts, _ = sample_responses(
        policy,
        tokenizer,
        prompts,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        max_prompt_tokens=max_prompt_tokens,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
    )
    return texts


def sample_responses(
    policy: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    temperature: float,
    max_prompt_tokens: int = 512,
    batch_size: int = 8,
    seed: int = 0,
    progress: bool = True,
) -> tuple[list[str], list[bool]]:
    """Continuations of ``prompts`` (text up to EOS) and, for each, whether it ended with EOS
    within ``max_new_tokens`` tokens. ``temperature`` 0 decodes greedily; otherwise sampling is
    seeded. Prompts keep their last ``max_prompt_tokens`` tokens."""
    import torch
    from rich.progress import Progress
    from transformers import GenerationConfig

    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side, tokenizer.truncation_side = "left", "left"
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=temperature > 0,
        temperature=temperature if temperature > 0 else None,
        top_k=0 if temperature > 0 else None,
        top_p=1.0 if temperature > 0 else None,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    device = next(policy.parameters()).device
    outputs: list[str] = []
    ended: list[bool] = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("sampling responses", total=len(prompts))
        for start in range(0, len(prompts), batch_size):
            chunk = list(prompts[start : start + batch_size])
            torch.manual_seed(seed * 1_000_003 + start)
            encoded = tokenizer(
                chunk,
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=max_prompt_tokens,
                add_special_tokens=False,
            ).to(device)
            with torch.no_grad():
                out = policy.generate(**encoded, generation_config=config)
            new = out[:, encoded["input_ids"].shape[1] :]
            outputs += tokenizer.batch_decode(new, skip_special_tokens=True)
            ended += (new == tokenizer.eos_token_id).any(dim=1).tolist()
            bar.update(task, advance=len(chunk))
    return outputs, ended


def ai_preferences(
    comparisons: Sequence[Comparison],
    labeler: LabelerSpec,
    variant: str,
    *,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
    aggregation: Aggregation | None = None,
) -> tuple[list[float | None], str]:
    """The labeler's P(A preferred) for each comparison (None: unscored), and its identity.

    The benchmark's labelling path (``labelbench.labeling.labeler``) through the label cache in
    ``cache_dir`` (default: ``$LABELBENCH_CACHE_DIR``): the same spec, variant and seed give the
    labels ``labelbench run`` gave the same items. ``aggregation`` (``winner.json``'s) turns
    both orders into one soft label (``labelbench.labeling.labeler.soft_labels``; None: the
    mean of the orders' P(A)).
    """
    from labelbench.labeling import LabelCache, default_cache_dir
    from labelbench.labeling.labeler import open_labeler
    from labelbench.prompting.planner import check_tasks

    check_tasks(comparisons, variant)
    opened = open_labeler(labeler)
    try:
        with LabelCache(cache_dir or default_cache_dir()) as cache:
            p_a = opened.preferences(
                comparisons,
                variant,
                cache=cache,
                seed=seed,
                progress=progress,
                aggregation=aggregation,
                require_scores=True,
            )
    finally:
        opened.close()
    return p_a, opened.identity


def label_with_ai(
    comparisons: Sequence[Comparison], labeler: LabelerSpec, variant: str, **options: Any
) -> Any:
    """The preference dataset of ``comparisons`` labelled by a labeler and prompt variant."""
    p_a, identity = ai_preferences(comparisons, labeler, variant, **options)
    dataset = ai_preference_dataset(comparisons, p_a)
    method = options.get("aggregation")
    return (
        dataset.add_column("labeler", [identity] * len(dataset))
        .add_column("variant", [variant] * len(dataset))
        .add_column("aggregation", [method.method if method else "prob-mean"] * len(dataset))
    )


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


# ------------------------------------------------------------------------- which labels to train on


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
