"""A labeler as it runs: a ``LabelerSpec`` opened into a backend, with the one labelling path.

``open_labeler(spec)`` loads the backend the spec names, resolves what the spec leaves open (chat
mode, dtype) and derives the labeler's identity, the model part of every cache key. Every user of
AI labels goes through ``Labeler``: ``labelbench run`` (``benchmark``), ``labelbench serve``,
``rlaif label``/``evaluate`` and direct-RLAIF rewards, each as plan → cache → backend →
preferences (or direct scores). ``winner.json`` carries the resolved spec, so ``rlaif label``
reopens exactly the labeler the benchmark measured.

This module reads ``winner.json`` (``load_winner``) and is the import path for the rest:
``Labeler`` and its labelling path live in ``labelbench.labeling.opened``, the backend registry
and ``open_labeler`` in ``labelbench.labeling.openers``.
"""

from __future__ import annotations

import difflib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from labelbench.aggregate import Aggregation
from labelbench.config import LabelerSpec
from labelbench.errors import InputError, validation_problem
from labelbench.labeling.opened import Labeler, check_scored, soft_labels
from labelbench.labeling.openers import (
    BACKENDS,
    PromptView,
    chat_urls,
    labeler_identity,
    labeler_spec,
    open_labeler,
    prompt_view,
    register_backend,
    warn_if_emulated,
)
from labelbench.labeling.runner import Preference
from labelbench.prompting import Variant, load_variant

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


WINNER_KEYS = ("labeler", "variant", "labeler_spec", "seed", "beats", "aggregation")
"""The keys of ``winner.json`` that ``load_winner`` reads (the report writes more, as figures)."""


def load_winner(path: str | Path) -> Winner:
    """Read a ``winner.json`` written by ``labelbench report``.

    Raises InputError naming the file and field when it is not a UTF-8 JSON object, names no
    winner, has a misspelling of a key it reads (``WINNER_KEYS``), a missing, empty or non-text
    ``labeler`` or ``variant``, a labeler spec that is missing (a report run without the run's
    config.yaml: the labeler as it ran is unknown), invalid or of another labeler than
    ``labeler``, or a seed that is not an integer. The variant is checked by its user
    (``rlaif.label.choose_labeler``, ``labelbench serve``)."""
    if Path(path).is_dir():
        raise InputError(path, "is a folder; give the winner.json file in it")
    try:
        winner = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except UnicodeDecodeError:
        raise InputError(path, "not UTF-8 text; save it as UTF-8") from None
    except OSError as error:
        raise InputError(path, f"cannot read: {error.strerror or error}") from None
    except ValueError as error:
        raise InputError(path, f"not a JSON file: {error}") from None
    if not isinstance(winner, dict):
        raise InputError(path, "not a winner file (expected a JSON object)")
    for key in winner:  # a misspelt key would be read as missing (a seed as 0)
        close = difflib.get_close_matches(key, WINNER_KEYS, n=1, cutoff=0.75)
        if close and close[0] not in winner:
            raise InputError(path, f"unknown key; did you mean '{close[0]}'?", field=key)
    if not winner.get("labeler") and not winner.get("variant"):
        reason = winner.get("reason", "it names no labeler and variant")
        raise InputError(path, f"no winner to label with: {reason}", field="labeler")
    for key in ("labeler", "variant"):
        value = winner.get(key)
        if value is None:
            raise InputError(path, "missing", field=key)
        if not isinstance(value, str):
            raise InputError(path, f"not text: {value!r}", field=key)
        if not value.strip():
            raise InputError(path, "is empty", field=key)
    spec = winner.get("labeler_spec")
    if not spec:
        raise InputError(
            path,
            f"{winner['labeler']} has no recorded spec, so its precision, chat template and "
            "backend are unknown (the report ran without the run's config.yaml); rerun "
            "`labelbench report RUN_DIR` with config.yaml in the folder, or name the labeler "
            "with --labeler and --variant",
            field="labeler_spec",
        )
    if not isinstance(spec, dict):
        raise InputError(
            path,
            f"must be a mapping of labeler options (name, backend, dtype, ...), not "
            f"{type(spec).__name__}",
            field="labeler_spec",
        )
    try:
        labeler = LabelerSpec.model_validate(spec)
    except ValidationError as error:
        loc, message = validation_problem(error)
        key = ".".join(str(part) for part in loc)
        if key == "name" and error.errors()[0]["type"] == "missing":
            message = "missing (the labeler's name or path)"
        field = f"labeler_spec.{key}" if key else "labeler_spec"
        raise InputError(path, message, field=field) from None
    if labeler.display != winner["labeler"]:
        raise InputError(
            path,
            f"describes {labeler.display!r}, but labeler names {winner['labeler']!r}: the file "
            "was edited by hand or is damaged; rerun `labelbench report RUN_DIR`",
            field="labeler_spec",
        )
    seed = winner.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(path, f"must be an integer, not {seed!r}", field="seed")
    beats = winner.get("beats") if isinstance(winner.get("beats"), dict) else {}
    loses_to = tuple(
        name for name, value in beats.items() if value is False and name != "human ceiling"
    )
    return Winner(labeler, str(winner["variant"]), seed, loses_to, _aggregation(path, winner))


def _aggregation(path: str | Path, winner: dict[str, Any]) -> Aggregation | None:
    """``winner.json``'s ``aggregation`` (None when absent), checked field by field."""
    value = winner.get("aggregation")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InputError(path, "must be a mapping (method, weight, ...)", field="aggregation")
    try:
        return Aggregation.model_validate(value)
    except ValidationError as error:
        loc, message = validation_problem(error)
        key = ".".join(str(part) for part in loc)
        field = f"aggregation.{key}" if key else "aggregation"
        raise InputError(path, message, field=field) from None


__all__ = [
    "BACKENDS",
    "Labeler",
    "Preference",
    "PromptView",
    "Winner",
    "chat_urls",
    "check_scored",
    "chosen_variant",
    "labeler_identity",
    "labeler_spec",
    "load_winner",
    "open_labeler",
    "prompt_view",
    "register_backend",
    "soft_labels",
    "warn_if_emulated",
    "warn_if_weak",
]
