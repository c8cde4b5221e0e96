"""``results.parquet``: one ``ResultRow`` per data set x labeler x variant x comparison, written
by ``labelbench run`` and read (checked and normalized) by the report and the item view."""

from __future__ import annotations

import difflib
import math
import re
import shutil
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ConfigDict, Field, model_validator

from labelbench.data.record import Comparison
from labelbench.errors import InputError
from labelbench.rundir.base import Number, Record
from labelbench.rundir.names import (
    ITEMS_HTML,
    PLOTS,
    REPORT_HTML,
    REPORT_MD,
    RESULT_FILES,
    RESULTS,
    SUMMARY,
    TIMING,
    WINNER,
)

BASELINE_COLUMN = re.compile(r"baseline_(.+)_pref_a")
"""A published judge's P(A) for the item (``baseline_NAME_pref_a``), reported as baseline NAME."""


class ResultRow(Record):
    """One row of ``results.parquet``: a data set x labeler x variant x comparison; NaN is a
    missing float. docs/results.md documents the columns for users. The only other columns are
    ``BASELINE_COLUMN``s. Fields with a default are optional when a table is read."""

    model_config = ConfigDict(extra="allow")

    dataset: str = Field(description="data set name from the run config")
    labeler: str = Field(description="the labeler's display name (its label, else its name)")
    variant: str = Field(description="prompt variant, e.g. summarization/base-0shot")
    item_id: str = Field(description="the comparison")
    group_id: str = Field(description="its cluster (a TL;DR post), resampled by the bootstrap")
    task: str | None = Field(None, description="the comparison's task (summarization, ...)")
    pair_key: str | None = Field(None, description="the same two responses to the same context")
    pair_flipped: bool = Field(False, description="A/B in the reverse of pair_key's sorted order")
    human_pref_a: float = Field(description="mean over annotators of P(A) (1, 0, 1/2 = tie)")
    annotator_prefs: list[float] = Field(default_factory=list, description="each annotator's")
    confidence: float = Field(math.nan, description="TL;DR 1-9 confidence; NaN elsewhere")
    len_a: float = Field(description="response A's length in characters")
    len_b: float = Field(description="response B's length in characters")
    ai_pref_a: float = Field(description="the labeler's P(A); NaN = unscored")
    ai_pref_a_ab: float = Field(math.nan, description="P(A) from the A-first order alone")
    ai_pref_a_ba: float = Field(math.nan, description="P(A) from the B-first order alone")
    ai_logodds_a_ab: float = Field(math.nan, description="log P(A) - log P(B), A-first order")
    ai_logodds_a_ba: float = Field(math.nan, description="the same in the B-first order")
    prompt_tokens: Number = Field(math.nan, description="tokens read (both orders)")
    gen_tokens: Number = Field(math.nan, description="tokens generated (both orders)")
    seconds: float = Field(math.nan, description="compute seconds, recorded when labelled")
    n_exemplars: int = Field(0, description="the variant's exemplars")
    cot: bool = Field(False, description="the variant asks for a rationale before the answer")
    sc_n: int = Field(1, description="self-consistency samples (1: none)")
    temperature: float = Field(0.0, description="their sampling temperature (0: greedy)")
    labeler_params: int | None = Field(None, description="the labeler's parameter count")
    label_kind: str = Field("logprobs", description="logprobs, verdict or 'verdict xN'")
    requests: float = Field(math.nan, description="HTTP requests (both orders); NaN in process")
    unparsed: int = Field(0, description="verdict replies whose answer could not be read")
    unparsed_replies: list[str] = Field(default_factory=list, description="their raw text")
    empty_rationales: Number = Field(
        math.nan,
        description="rationales (both orders, every sample) with no text: the answer came "
        "without reasoning; NaN in tables written before it was recorded",
    )
    rationales: Number = Field(
        math.nan,
        description="rationales decoded for the pair (every order run, every sample): the "
        "denominator of empty_rationales; NaN without rationales and in older tables",
    )

    @model_validator(mode="after")
    def _only_baseline_columns(self) -> ResultRow:
        extra = [key for key in self.model_extra or {} if not BASELINE_COLUMN.fullmatch(key)]
        if extra:
            raise ValueError(f"unknown results column {extra[0]!r}")
        return self


def _numeric(annotation: Any) -> bool:
    """Whether a field holds a number (int, float, or a union of them and None)."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    parts = typing.get_args(annotation) if union else (annotation,)
    return all(part in (int, float, type(None)) for part in parts)


REQUIRED = tuple(name for name, info in ResultRow.model_fields.items() if info.is_required())
"""Columns a results table must have."""
OPTIONAL_FLOAT = tuple(
    name
    for name, info in ResultRow.model_fields.items()
    if not info.is_required() and _numeric(info.annotation)
)
"""Optional numeric columns: read as float, NaN where a table lacks them."""


def item_columns(comparison: Comparison) -> dict[str, Any]:
    """The ``ResultRow`` fields that describe the comparison (not the labeler)."""
    confidences = {a.confidence for a in comparison.annotations}
    confidence = confidences.pop() if len(confidences) == 1 else None
    human = comparison.human_pref_a
    return {
        "item_id": comparison.id,
        "group_id": comparison.group_id,
        "task": str(comparison.task),
        "pair_key": comparison.pair_key,
        "pair_flipped": comparison.response_a > comparison.response_b,
        "human_pref_a": math.nan if human is None else human,
        "annotator_prefs": [a.pref_a for a in comparison.annotations],
        "confidence": math.nan if confidence is None else float(confidence),
        "len_a": float(len(comparison.response_a)),
        "len_b": float(len(comparison.response_b)),
    }


def baseline_columns(frame: pd.DataFrame) -> list[str]:
    """The table's ``baseline_NAME_pref_a`` columns, sorted."""
    return sorted(c for c in frame.columns if BASELINE_COLUMN.fullmatch(c))


def result_path(run_dir: Path) -> Path:
    """``run_dir``'s results file; InputError when the folder or the file is not there."""
    if not run_dir.is_dir():
        what = "not a folder" if run_dir.exists() else "no such folder"
        raise InputError(run_dir, f"{what} (give the output_dir of a labelbench run)")
    for name in RESULT_FILES:
        if (run_dir / name).exists():
            return run_dir / name
    raise InputError(run_dir, f"no results in this folder (expected {' or '.join(RESULT_FILES)})")


def normalize(frame: pd.DataFrame, source: str | Path) -> pd.DataFrame:
    """A results table checked and filled: the ``REQUIRED`` columns present (else InputError
    naming ``source`` and the column), optional ones filled with their defaults, numbers as
    float, no item twice in a cell (InputError), rows sorted by data set, labeler, variant and
    item, so every figure computed from it is in a stable order."""
    missing = [column for column in REQUIRED if column not in frame.columns]
    if missing:
        raise InputError(source, f"missing columns: {', '.join(missing)}", field=missing[0])
    frame = frame.copy()
    for column in ("dataset", "labeler", "variant", "item_id", "group_id"):
        frame[column] = frame[column].astype(str)
    if "pair_key" not in frame:
        frame["pair_key"] = frame["item_id"]
    frame["pair_key"] = frame["pair_key"].astype(str)
    for column in ("ai_pref_a", "human_pref_a", "len_a", "len_b", *OPTIONAL_FLOAT):
        if column not in frame:
            frame[column] = np.nan
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    if "label_kind" not in frame:
        frame["label_kind"] = "logprobs"
    frame["label_kind"] = frame["label_kind"].fillna("logprobs").astype(str)
    for column in ("cot", "pair_flipped"):
        if column not in frame:
            frame[column] = False
        frame[column] = frame[column].fillna(False).astype(bool)
    if "annotator_prefs" not in frame:
        frame["annotator_prefs"] = [[h] if np.isfinite(h) else [] for h in frame["human_pref_a"]]
    frame["annotator_prefs"] = [
        _preferences(prefs, source, record) for record, prefs in enumerate(frame["annotator_prefs"])
    ]
    for column in baseline_columns(frame):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    keys = ["dataset", "labeler", "variant", "item_id"]
    duplicated = frame.duplicated(keys)
    if duplicated.any():
        row = frame[duplicated].iloc[0]
        raise InputError(
            source,
            f"item {row['item_id']!r} appears twice for {row['labeler']} / {row['variant']}",
            record=int(np.flatnonzero(duplicated.to_numpy())[0]),
        )
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and np.isnan(value)


def _preferences(prefs: Any, source: str | Path, record: int) -> list[float]:
    """One row's ``annotator_prefs`` as floats; InputError naming the row when it is not a
    list of numbers."""
    if prefs is None or _is_nan(prefs):
        return []
    if isinstance(prefs, str | bytes) or not hasattr(prefs, "__iter__"):
        raise InputError(
            source, f"not a list of numbers: {prefs!r}", record=record, field="annotator_prefs"
        )
    try:
        return [float(v) for v in prefs]
    except (TypeError, ValueError):
        raise InputError(
            source,
            f"not a list of numbers: {list(prefs)!r}",
            record=record,
            field="annotator_prefs",
        ) from None


PROBABILITIES = ("ai_pref_a", "ai_pref_a_ab", "ai_pref_a_ba", "human_pref_a")
"""Columns holding a P(A) (and every ``BASELINE_COLUMN``): NaN or within [0, 1]."""


def _checked(frame: pd.DataFrame, path: Path) -> None:
    """Refuse, in one line naming the file, the column and the row, what ``normalize`` would
    otherwise read silently wrong from a file: a column the table does not have (a misspelt
    name would read as absent), a value that is not a number in a numeric column (it would
    read as NaN: unscored), a P(A) outside [0, 1] and a true/false column holding text."""
    known = set(ResultRow.model_fields)
    for column in frame.columns:
        if column not in known and not BASELINE_COLUMN.fullmatch(str(column)):
            close = difflib.get_close_matches(str(column), sorted(known), n=1, cutoff=0.75)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise InputError(path, f"unknown results column{hint}", field=str(column))
    numeric = ("human_pref_a", "len_a", "len_b", "ai_pref_a", *OPTIONAL_FLOAT)
    for column in [c for c in (*numeric, *baseline_columns(frame)) if c in frame]:
        values = frame[column]
        if pd.api.types.is_bool_dtype(values):
            continue
        numbers = pd.to_numeric(values, errors="coerce")
        bad = np.flatnonzero((numbers.isna() & values.notna()).to_numpy())
        if len(bad):
            raise InputError(
                path,
                f"not a number: {values.iloc[bad[0]]!r}",
                record=int(bad[0]),
                field=column,
            )
        if column in PROBABILITIES or BASELINE_COLUMN.fullmatch(column):
            outside = np.flatnonzero(((numbers < 0) | (numbers > 1)).to_numpy())
            if len(outside):
                raise InputError(
                    path,
                    f"P(A) {float(numbers.iloc[outside[0]])!r} is outside [0, 1]",
                    record=int(outside[0]),
                    field=column,
                )
    for column in [c for c in ("cot", "pair_flipped") if c in frame]:
        values = frame[column]
        if pd.api.types.is_bool_dtype(values):
            continue
        ok = values.map(
            lambda v: v is None or _is_nan(v) or isinstance(v, bool | np.bool_) or v in (0, 1)
        )
        bad = np.flatnonzero(~ok.to_numpy(bool))
        if len(bad):
            raise InputError(
                path,
                f"not true or false: {values.iloc[bad[0]]!r}",
                record=int(bad[0]),
                field=column,
            )


def read_results(run_dir: Path) -> pd.DataFrame:
    """``RUN_DIR/results.parquet`` (or ``results.jsonl``), ``normalize``d. InputError (one line
    naming the folder or file, and the column and row) when it is missing, unreadable, empty,
    lacks a required column or holds what would read silently wrong (``_checked``)."""
    path = result_path(Path(run_dir))
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_json(path, lines=True, dtype=False)
    except (OSError, ValueError) as error:
        raise InputError(path, f"cannot read results: {error}") from None
    if frame.empty:
        raise InputError(path, "no rows: the run labelled nothing")
    _checked(frame, path)
    return normalize(frame, path)


DERIVED = (SUMMARY, TIMING, WINNER, REPORT_MD, REPORT_HTML, ITEMS_HTML, PLOTS)
"""What a run folder derives from its results table (the report step writes them)."""


def clear_derived(run_dir: Path) -> None:
    """Remove the files ``DERIVED`` from an earlier run in ``run_dir``, before a run writes its
    own config and results there: a run interrupted before its report leaves no stale figures
    beside new results (``labelbench report RUN_DIR`` writes them from what is there)."""
    for name in DERIVED:
        path = Path(run_dir) / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def write_results(rows: Sequence[ResultRow] | pd.DataFrame, run_dir: Path) -> Path:
    """Write ``RUN_DIR/results.parquet``: ``ResultRow``s, columns in field order (baseline
    columns last), or a table made elsewhere as it is (``read_results`` checks it)."""
    if isinstance(rows, pd.DataFrame):
        frame = rows
    else:
        frame = pd.DataFrame([row.model_dump() for row in rows])
    path = Path(run_dir) / RESULTS
    frame.to_parquet(path, index=False)
    return path
