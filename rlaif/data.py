"""Data for the rlaif commands: comparisons, preference datasets and prompts, read through
labelbench's loaders (any supported format, or your own table with ``--format columns --map``),
and split by group (post/context)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from labelbench.data.record import Comparison, PromptItem
from labelbench.errors import InputError


@dataclass
class DataOptions:
    """How to read the data files of a command, and which part of a split by group to use."""

    format: str | None = field(
        default=None,
        metadata={"help": "Format of the data files (see `labelbench data inspect`); detected."},
    )
    map: str | None = field(
        default=None,
        metadata={
            "help": "Columns of your own table (format 'columns'), e.g. 'context=prompt,"
            "response_a=r1,response_b=r2,label=winner' or 'context=prompt,chosen=c,rejected=r'."
        },
    )
    skip_invalid: bool = field(
        default=False,
        metadata={"help": "Skip bad records (counted and listed on stderr) instead of stopping."},
    )
    split: str | None = field(
        default=None,
        metadata={"help": "Use only this part (train/test) of a split by post/context."},
    )
    test_fraction: float = field(
        default=0.2, metadata={"help": "Share of groups in the test part of the split."}
    )
    split_seed: int = field(default=0, metadata={"help": "Seed of the split by group."})

    def __post_init__(self) -> None:
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError("test_fraction must be between 0 and 1")
        if self.split not in (None, "train", "test"):
            raise ValueError(f"split must be train or test, not {self.split!r}")


def existing(path: Path, what: str) -> Path:
    """``path`` if it exists; else InputError naming it."""
    if not Path(path).exists():
        raise InputError(path, f"no such {what}")
    return Path(path)


def content_sha256(path: Path) -> str | None:
    """A sha256 (hex) of what ``path`` holds, independent of how the path is spelled: a file's
    bytes, or a folder's files (relative names and contents, in name order); None when ``path``
    does not exist. Raises OSError when a file cannot be read."""
    from labelbench.models.registry import sha256_file

    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    if not path.is_dir():
        return None
    digest = hashlib.sha256()
    for member in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{member.relative_to(path).as_posix()}\0{sha256_file(member)}\n".encode())
    return digest.hexdigest()


def _report_skipped(loaded: Any) -> None:
    import sys

    for error in getattr(loaded, "invalid", []):
        print(f"skipped: {error}", file=sys.stderr)
    if getattr(loaded, "invalid", None):
        print(f"{len(loaded.invalid)} invalid records skipped", file=sys.stderr)


def read_records(path: Path, options: DataOptions, what: str = "data file") -> list[Any]:
    """Every record of ``path`` (comparisons or prompts) read with ``options``' format and map."""
    from labelbench.data.formats import parse_column_map
    from labelbench.data.loaders import load_records

    loaded = load_records(
        existing(path, what),
        options.format,
        columns=None if options.map is None else parse_column_map(options.map),
        skip_invalid=options.skip_invalid,
    )
    _report_skipped(loaded)
    return loaded


def split_part(items: list[Any], options: DataOptions, source: Path | str) -> list[Any]:
    """The ``options.split`` part of ``items`` (all without a split); InputError when empty."""
    from rlaif.preferences import split_items

    part = split_items(items, options.split, options.test_fraction, options.split_seed)
    if not part:
        raise InputError(source, f"no records in split {options.split!r}")
    return part


def load_comparisons(
    path: Path, options: DataOptions, *, limit: int | None = None, seed: int = 0
) -> list[Comparison]:
    """Comparisons of ``path``, the ``options.split`` part of the split by group, at most
    ``limit`` of them (a seeded sample). InputError when none is left."""
    from labelbench.data.select import sample

    if limit is not None and limit < 1:
        raise InputError("--limit", "must be at least 1")
    records = read_records(path, options, "comparisons file")
    if records and isinstance(records[0], PromptItem):
        raise InputError(path, "holds prompts, not comparisons")
    comparisons = split_part(list(records), options, path)
    return sample(comparisons, limit, seed) if limit is not None else comparisons


def is_saved_dataset(path: Path) -> bool:
    """Whether ``path`` is a folder written by ``datasets``' ``save_to_disk``."""
    names = ("dataset_info.json", "dataset_dict.json", "state.json")
    return path.is_dir() and any((path / name).exists() for name in names)


def load_preferences(path: Path, options: DataOptions) -> Any:
    """A preference dataset (``prompt``, ``chosen``, ``rejected`` [, ``soft_label``]) saved by
    ``rlaif label``, or human comparisons converted to one (ties dropped)."""
    from rlaif.preferences import check_preference_dataset, human_preference_dataset

    existing(path, "file or dataset directory")
    if is_saved_dataset(path) and options.map is None:
        from datasets import DatasetDict, load_from_disk

        # in memory: map/filter then write no cache-*.arrow files into the user's dataset folder
        dataset = load_from_disk(str(path), keep_in_memory=True)
        if isinstance(dataset, DatasetDict):
            dataset = dataset["train"] if "train" in dataset else next(iter(dataset.values()))
        check_preference_dataset(dataset, path)
        return dataset
    return human_preference_dataset(load_comparisons(path, options), str(path))


def load_prompt_items(
    path: Path, options: DataOptions, *, limit: int | None = None
) -> list[PromptItem]:
    """Prompt items from a prompts file, or the distinct contexts (one per group) of a
    comparisons file; the ``options.split`` part, at most ``limit``."""
    from labelbench.data.select import sample

    if limit is not None and limit < 1:
        raise InputError("--limit", "must be at least 1")
    items: list[PromptItem] = []
    seen: set[str] = set()
    for record in read_records(path, options, "prompts file"):
        if isinstance(record, PromptItem):
            items.append(record)
        elif record.group_id not in seen:
            seen.add(record.group_id)
            items.append(
                PromptItem(
                    id=record.group_id,
                    group_id=record.group_id,
                    task=record.task,
                    context=record.context,
                    meta=record.meta,
                )
            )
    items = split_part(items, options, path)
    return sample(items, limit) if limit is not None else items


@dataclass
class HeldOut:
    """Held-out human comparisons in preference form (``chosen`` = the humans' side), with the
    group each pair is reported in, its post/context (``group_id``, the bootstrap's cluster), its
    TL;DR confidence (None when the data has none) and how many pairs were left out because
    their post is in the training data (``dropped_shared``)."""

    prompt: list[str]
    chosen: list[str]
    rejected: list[str]
    group: list[str]
    group_id: list[str] = field(default_factory=list)
    confidence: list[int | None] = field(default_factory=list)
    dropped_shared: int = 0


def group_of(item: Comparison, group_by: str) -> str:
    """The reporting group of a comparison: its TL;DR confidence bucket, or a meta value."""
    if group_by == "confidence":
        confidence = item.annotations[0].confidence if item.annotations else None
        if confidence is None:
            return "confidence unknown"
        if confidence <= 3:
            return "confidence 1-3"
        return "confidence 4-6" if confidence <= 6 else "confidence 7-9"
    return f"{group_by}={item.meta.get(group_by)}"


def load_held_out(
    path: Path,
    options: DataOptions,
    split: str | None,
    group_by: str,
    limit: int | None = None,
    seed: int = 0,
    exclude_groups: frozenset[str] = frozenset(),
) -> HeldOut:
    """Human comparisons without ties for pairwise accuracy; comparisons on a post/context in
    ``exclude_groups`` (the training data's) are left out first and counted, so held-out
    figures never score a post the model was trained on. InputError when none is left."""
    from labelbench.data.select import sample
    from rlaif.preferences import human_preference_dataset

    part = replace(options, split=split)
    comparisons = [c for c in load_comparisons(path, part) if not c.is_tie]
    kept = [c for c in comparisons if c.group_id not in exclude_groups]
    dropped = len(comparisons) - len(kept)
    if limit is not None:
        if limit < 1:
            raise InputError("--eval-limit", "must be at least 1")
        kept = sample(kept, limit, seed)
    if not kept:
        shared = f" ({dropped} share a post with the training data)" if dropped else ""
        where = f" in split {split!r}" if split else ""
        raise InputError(path, f"no held-out comparisons (without ties){where}{shared}")
    if group_by != "confidence" and all(c.meta.get(group_by) is None for c in kept):
        keys = sorted({key for c in kept for key, value in c.meta.items() if value is not None})
        raise InputError(
            "--group-by",
            f"no held-out comparison of {path} has {group_by!r}; use confidence or one of "
            f"{', '.join(keys)}",
        )
    by_id = {c.id: c for c in kept}
    dataset = human_preference_dataset(kept, str(path))
    ids = list(dataset["id"])
    return HeldOut(
        prompt=list(dataset["prompt"]),
        chosen=list(dataset["chosen"]),
        rejected=list(dataset["rejected"]),
        group=[group_of(by_id[i], group_by) for i in ids],
        group_id=[by_id[i].group_id for i in ids],
        confidence=[
            by_id[i].annotations[0].confidence if by_id[i].annotations else None for i in ids
        ],
        dropped_shared=dropped,
    )


@contextmanager
def output_folder(out: Path) -> Iterator[Path]:
    """The output folder of a training command: when the command fails or is interrupted and
    the folder did not exist before, the empty folders it left (TRL creates ``output_dir`` when
    its trainer starts) are removed again, so a failed run leaves nothing that looks like a
    result. Anything written into it is kept."""
    created = not Path(out).exists()
    try:
        yield out
    except BaseException:
        if created and Path(out).is_dir():
            for folder, _, _ in sorted(os.walk(out), key=lambda entry: -len(entry[0])):
                with suppress(OSError):  # not empty: kept
                    os.rmdir(folder)
        raise
