"""The results table a benchmark run writes, and reading it back.

One row per data set x labeler x prompt variant x comparison, in ``RUN_DIR/results.parquet``
(or ``results.jsonl``); docs/results.md documents the columns for users:

===================== ===========================================================================
column                meaning
===================== ===========================================================================
dataset, labeler,     names from the run config (labeler = its display name)
variant
item_id, group_id     the comparison and its cluster (a TL;DR post), for the cluster bootstrap
pair_key              the same two responses to the same context, in either order
pair_flipped          optional: True when A/B are shown in the reverse of pair_key's sorted order
ai_pref_a             the labeler's P(A), NaN = unscored
ai_pref_a_ab,         P(A) from the A-first order alone and the B-first order alone; NaN when
ai_pref_a_ba          that order was not run
ai_logodds_a_ab,      optional: the log-odds of A in each order, log P(answer A) - log P(answer
ai_logodds_a_ba       B) from the answer tokens' log-probabilities (exact where P saturates);
                      when absent (results written before them) the aggregations recover them
                      from ai_pref_a_ab / ai_pref_a_ba with the logit
human_pref_a          mean over annotators of P(A) (1, 0, 1/2 = tie)
annotator_prefs       list of each annotator's P(A)
confidence            TL;DR 1-9 confidence (1 = strongly the first summary), null elsewhere
task                  optional: the comparison's task (``summarization``, ``instruction``, ...)
len_a, len_b          response lengths in characters
prompt_tokens,        tokens read and generated for the row (both orders); seconds spent on it
gen_tokens, seconds
n_exemplars, cot,     the variant's properties, for the plots
sc_n, temperature
labeler_params        optional: the labeler's parameter count (orders the position-bias plot)
baseline_NAME_pref_a  optional: a published judge's P(A) for the item (PandaLM's GPT-3.5 and
                      PandaLM-7B); reported as baseline ``NAME``
label_kind            optional: what the labels are read from: ``logprobs`` (answer tokens'
                      log-probabilities), ``verdict`` (the answer parsed from one reply: hard
                      labels) or ``verdict xN`` (N replies: the verdicts' shares)
requests              optional: HTTP requests sent for the row (both orders); NaN in process
unparsed              optional: verdict replies (or rationales) whose answer could not be read
unparsed_replies      optional: their raw text, for the item view
===================== ===========================================================================
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labelbench.data.record import Comparison
from labelbench.errors import InputError

REQUIRED = (
    "dataset",
    "labeler",
    "variant",
    "item_id",
    "group_id",
    "ai_pref_a",
    "human_pref_a",
    "len_a",
    "len_b",
)
OPTIONAL_FLOAT = (
    "ai_pref_a_ab",
    "ai_pref_a_ba",
    "ai_logodds_a_ab",
    "ai_logodds_a_ba",
    "confidence",
    "prompt_tokens",
    "gen_tokens",
    "seconds",
    "n_exemplars",
    "sc_n",
    "temperature",
    "labeler_params",
    "requests",
    "unparsed",
)
RESULT_FILES = ("results.parquet", "results.jsonl")


def item_columns(comparison: Comparison) -> dict[str, Any]:
    """The columns of a results row that describe the comparison (not the labeler)."""
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
    """Check the columns, fill optional ones, and sort rows into a stable order."""
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
    if "cot" not in frame:
        frame["cot"] = False
    frame["cot"] = frame["cot"].fillna(False).astype(bool)
    if "pair_flipped" not in frame:
        frame["pair_flipped"] = False
    frame["pair_flipped"] = frame["pair_flipped"].fillna(False).astype(bool)
    if "annotator_prefs" not in frame:
        frame["annotator_prefs"] = [[h] if np.isfinite(h) else [] for h in frame["human_pref_a"]]
    frame["annotator_prefs"] = [
        [float(v) for v in prefs] if prefs is not None and not _is_missing(prefs) else []
        for prefs in frame["annotator_prefs"]
    ]
    for column in baseline_columns(frame):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    duplicated = frame.duplicated(["dataset", "labeler", "variant", "item_id"])
    if duplicated.any():
        row = frame[duplicated].iloc[0]
        raise InputError(
            source,
            f"item {row['item_id']!r} appears twice for {row['labeler']} / {row['variant']}",
            record=int(np.flatnonzero(duplicated.to_numpy())[0]),
        )
    keys = ["dataset", "labeler", "variant", "item_id"]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def _is_missing(value: object) -> bool:
    return isinstance(value, float) and np.isnan(value)


def baseline_columns(frame: pd.DataFrame) -> list[str]:
    """Columns holding a published judge's labels: ``baseline_NAME_pref_a``."""
    return sorted(c for c in frame.columns if c.startswith("baseline_") and c.endswith("_pref_a"))


def load_results(run_dir: Path) -> pd.DataFrame:
    path = result_path(run_dir)
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_json(path, lines=True, dtype=False)
    except (OSError, ValueError) as error:
        raise InputError(path, f"cannot read results: {error}") from None
    return normalize(frame, path)


def write_results(frame: pd.DataFrame, run_dir: Path) -> Path:
    """Write a results table (Parquet) where ``report`` expects it."""
    path = run_dir / "results.parquet"
    frame.to_parquet(path, index=False)
    return path
