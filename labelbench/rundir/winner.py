"""``winner.json``: the best labeler cell, as the report writes it and training reads it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from labelbench.aggregate import Aggregation
from labelbench.config import CostBudget, LabelerSpec
from labelbench.rundir.base import Record, RunFile, read_file
from labelbench.rundir.names import WINNER, WINNER_SCHEMA
from labelbench.rundir.summary import Estimate


class BestOf(Record):
    """The best candidate cell on one data set and its accuracy there."""

    labeler: str
    variant: str
    alignment: float


class Versus(Record):
    """The winner against one baseline on one data set (``report.verdict.Versus``)."""

    baseline_accuracy: float | None
    baseline_n: int | None
    difference: Estimate
    beats: bool | None
    outcome: str


class MethodChoice(Record):
    """A single-labeler method's cross-fitted figures for the winner, or why it is n/a."""

    log_loss: float | None = None
    accuracy: float | None = None
    n_fit: int | None = None
    reason: str | None = None


class AggregationChoice(Record):
    """How ``aggregation`` was chosen, and each single-labeler method's cross-fitted figures."""

    criterion: str
    methods: dict[str, MethodChoice]


class WinnerFile(RunFile):
    """``winner.json``: the best labeler cell (``report.summary.choose_winner``). With no winner
    ``labeler`` and ``variant`` are None and ``reason`` says why. A file written by hand needs
    only ``labeler``, ``variant`` and ``labeler_spec``
    (``labelbench.labeling.labeler.load_winner``)."""

    version: int = Field(default=WINNER_SCHEMA, alias="schema")
    labeler: str | None = None
    variant: str | None = None
    alignment: float | None = Field(None, description="mean accuracy over its data sets")
    per_dataset: dict[str, float] | None = None
    tokens_per_pair: float | None = None
    seconds_per_pair: float | None = Field(None, description="only with a seconds budget")
    labeler_spec: LabelerSpec | None = Field(None, description="the labeler as it ran")
    seed: int | None = None
    criterion: str | None = None
    cost_budget: CostBudget | None = None
    candidates: int | None = None
    by_dataset: dict[str, BestOf] | None = None
    reason: str | None = None
    versus_baselines: dict[str, dict[str, Versus]] | None = None
    beats: dict[str, bool | None] | None = None
    flags: dict[str, list[str]] | None = None
    aggregation: Aggregation | None = None
    aggregation_choice: AggregationChoice | None = None

    @field_validator("labeler", "variant", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, str):
            raise ValueError(f"not text: {value!r}")
        return value

    @field_validator("seed", mode="before")
    @classmethod
    def _integer(cls, seed: Any) -> Any:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"must be an integer, not {seed!r}")
        return seed

    @field_validator("labeler_spec", mode="before")
    @classmethod
    def _mapping(cls, spec: Any) -> Any:
        if spec is not None and not isinstance(spec, dict | LabelerSpec):
            raise ValueError(
                "must be a mapping of labeler options (name, backend, dtype, ...), not "
                f"{type(spec).__name__}"
            )
        return spec

    def updated(self, **fields: Any) -> WinnerFile:
        """A copy with ``fields`` set (JSON values or models), validated as a file's would be."""
        return WinnerFile.model_validate({**self.to_json(), **fields})

    @field_validator("aggregation", mode="before")
    @classmethod
    def _aggregation_mapping(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, dict | Aggregation):
            raise ValueError("must be a mapping (method, weight, ...)")
        return value


def read_winner(path: str | Path) -> WinnerFile:
    """A ``winner.json`` as written (its fields checked, not whether it names a winner:
    ``labeling.labeler.load_winner``); raises InputError as ``read_file``."""
    return read_file(path, WinnerFile, WINNER, "winner file", WINNER_SCHEMA)
