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

import sys
from dataclasses import dataclass
from pathlib import Path

from labelbench.aggregate import Aggregation
from labelbench.config import LabelerSpec
from labelbench.errors import InputError
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
from labelbench.rundir import read_winner

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
