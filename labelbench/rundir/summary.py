"""``summary.json`` (every figure of a run) and ``timing.json`` (its wall-clock figures)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from labelbench.rundir.base import Number, Record, RunFile, read_file
from labelbench.rundir.names import SUMMARY, SUMMARY_SCHEMA, TIMING, TIMING_SCHEMA


class Estimate(Record):
    """A figure with its bootstrap interval and the rows behind it (``metrics.Estimate``); None
    where it is undefined, ``reason`` then says why (when known)."""

    value: float | None
    low: float | None
    high: float | None
    n: int
    reason: str | None = None

    @property
    def defined(self) -> bool:
        """Whether the value is defined (its interval may still not be)."""
        return self.value is not None


class Alignment(Record):
    """Agreement with the human majority (``metrics.alignment``)."""

    accuracy: Estimate
    soft_agreement: Estimate
    kappa: Estimate


class PositionBias(Record):
    """Pairs where the same slot wins in both orders (``metrics.position_bias``)."""

    same_slot: Estimate
    first_slot: Estimate
    second_slot: Estimate
    slot: str = Field(description="first, second or none: which slot it favours")
    p_value: float | None = Field(description="two-sided binomial test, first vs second slot")


class LengthBias(Record):
    """Shares of clear-length-gap pairs where the longer response is preferred."""

    ai_prefers_longer: Estimate
    human_prefers_longer: Estimate


class LengthControlled(Record):
    """Accuracy with length taken out (``metrics.length_controlled``)."""

    matched: Estimate
    balanced: Estimate
    corrected: Estimate
    slope: Estimate


class ReliabilityBin(Record):
    """One equal-width bin of P(A): its index, count, mean P(A), share of humans preferring A."""

    bin: int
    n: int
    mean_p: float | None
    human_a: float | None


class Calibration(Record):
    """Expected calibration error (equal-width bins) and the reliability table."""

    ece: Estimate
    reliability: list[ReliabilityBin]


class Cost(Record):
    """What a cell's labels cost; token counts None when the backend gives none."""

    unscored_rate: Estimate
    prompt_tokens: int | None
    gen_tokens: int | None
    tokens_per_pair: float | None
    unscored: int
    unparsed: int
    empty_rationales: int | None = Field(
        None, description="rationales with no text (chain-of-thought cells; None: not recorded)"
    )
    rationales: int | None = Field(
        None,
        description="rationales decoded (every order run, every sample), the denominator of "
        "empty_rationales; None: not recorded (no rationales, or a table from before it)",
    )
    requests_per_pair: float | None
    price_per_1k_pairs: float | None = Field(description="at the spec's price_input/_output")


class Properties(Record):
    """The variant's and labeler's stored properties (the results columns of the same names)."""

    n_exemplars: int | None
    cot: bool | None
    sc_n: int | None
    temperature: Number | None
    labeler_params: int | None
    label_kind: str | None


class Paired(Record):
    """A cell's accuracy minus a reference's, paired (``metrics.paired_difference``); the human
    ceiling has no wins, losses or p-value."""

    reference: str
    difference: Estimate
    wins: int | None = None
    losses: int | None = None
    p_value: float | None = None


class Cell(Record):
    """One labeler x variant (``kind`` labeler) or baseline (``kind`` baseline, ``labeler``
    "baseline", ``variant`` its name) on one data set."""

    kind: Literal["labeler", "baseline"]
    labeler: str
    variant: str
    n: int
    human_ties: int
    alignment: Alignment
    tie_agreement: Estimate | None
    high_confidence: Alignment | None
    by_confidence: dict[str, Estimate] = Field(description="TL;DR '1,9'..., unanimous, split")
    position_bias: PositionBias | None = Field(description="None: one order only")
    length_bias: LengthBias
    length_controlled: LengthControlled
    calibration: Calibration
    cost: Cost
    properties: Properties
    vs_reference: Paired | None = Field(None, description="absent for the reference variant")
    vs_baselines: dict[str, Paired] | None = Field(None, description="labeler cells only")

    @property
    def accuracy(self) -> float | None:
        """Accuracy against the human majority, a fraction in [0, 1]; None: undefined."""
        return self.alignment.accuracy.value


class Difference(Record):
    """A paired accuracy difference to a rule baseline, with its interval."""

    diff: float | None
    low: float | None
    high: float | None


class CoveragePoint(Record):
    """Agreement with the human majority on the most confident ``coverage`` share of pairs."""

    coverage: float
    accuracy: float
    n: int


class SoftBin(Record):
    """One bin of the soft labels: its P(A) range, count and (from 5 items on) means."""

    low: float
    high: float
    n: int
    mean_p: float | None
    human_a: float | None


class AggregationRow(Record):
    """One aggregation method on one cell or group of cells (``report.aggregations``); figures
    None and ``reason`` set where the method is undefined (then coverage and bins are absent)."""

    method: str
    needs: str
    labelers: list[str]
    variants: list[str]
    n_fit: int
    folds: int
    accuracy: Estimate
    vs_always_longer: Difference
    vs_always_first: Difference
    log_loss: float | None
    log_loss_interval: list[float | None] | None = None
    brier: float | None
    ece: float | None
    mean_confidence: float | None
    coverage: list[CoveragePoint] | None = None
    coverage_at_0_8: float | None
    reliability: list[SoftBin] | None = None
    status: str | None = None
    reason: str | None = None


class CurvePoint(Record):
    """A fitted method's held-out accuracy and log-loss (nats) when fitted on ``n_labels`` human
    labels, the means over ``fits`` fits."""

    method: str
    n_labels: int
    accuracy: float | None
    log_loss: float | None
    fits: int


class LearningCurve(Record):
    """The best cell's fitted methods at 25, 50, 100, 200 human labels."""

    labeler: str
    variant: str
    points: list[CurvePoint]


class DatasetSummary(Record):
    """One data set: its items, human ties and ceiling, every cell (labeler cells first, then the
    baselines), the aggregation table and the best cell's learning curve."""

    task: str | None
    n_items: int
    human_ties: int
    human_ceiling: Estimate | None
    cells: list[Cell]
    aggregations: list[AggregationRow]
    learning_curve: LearningCurve | None

    def labeler_cells(self) -> list[Cell]:
        """The labeler x variant cells, in the summary's order."""
        return [cell for cell in self.cells if cell.kind == "labeler"]

    def baseline_cells(self) -> list[Cell]:
        """The baselines: rule baselines, then published judges."""
        return [cell for cell in self.cells if cell.kind == "baseline"]

    def cell(self, labeler: str, variant: str) -> Cell | None:
        """The labeler cell of ``labeler`` / ``variant``, None when it did not run here."""
        key = (labeler, variant)
        return next((c for c in self.labeler_cells() if (c.labeler, c.variant) == key), None)


class SummarySettings(Record):
    """The analysis settings the figures were computed with (the run config's ``analysis``)."""

    seed: int
    bootstrap: int
    level: float
    length_gap: float
    calibration_bins: int
    reference_variant: str
    bootstrap_unit: str


class LabelerInfo(Record):
    """A labeler's parameter count: counted at load, or stated in the config; None: unknown."""

    parameters: int | None


class Summary(RunFile):
    """``summary.json``: every figure of a run, a pure function of the results and the config
    (``labelbench.report.summary``), per data set in the config's order."""

    version: int = Field(default=SUMMARY_SCHEMA, alias="schema")
    settings: SummarySettings
    labelers: dict[str, LabelerInfo]
    datasets: dict[str, DatasetSummary]


# ---------------------------------------------------------------------------- timing.json


class CellTiming(Record):
    """A labeler cell's compute seconds on a data set (recorded when each label was computed)."""

    labeler: str
    variant: str
    seconds: float | None
    seconds_per_pair: float | None
    pairs_per_second: float | None


class AggregationTiming(Record):
    """An aggregation row's recorded compute seconds per pair (every labeler it asks)."""

    method: str
    labelers: list[str]
    variants: list[str]
    seconds_per_pair: float | None


class Timing(RunFile):
    """``timing.json``: the wall-clock figures, per data set, that ``summary.json`` leaves out."""

    version: int = Field(default=TIMING_SCHEMA, alias="schema")
    cells: dict[str, list[CellTiming]] = Field(default_factory=dict)
    aggregation_seconds: dict[str, list[AggregationTiming]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _version_1(cls, data: Any) -> Any:
        """Version 1 kept each data set's cell timings at the top level."""
        if isinstance(data, dict) and data.get("schema", 1) == 1 and "cells" not in data:
            rest = {k: v for k, v in data.items() if k not in ("schema", "aggregation_seconds")}
            return {
                "schema": TIMING_SCHEMA,
                "cells": rest,
                "aggregation_seconds": data.get("aggregation_seconds", {}),
            }
        return data

    def of(self, dataset: str, labeler: str, variant: str) -> CellTiming | None:
        """The timing of ``labeler`` / ``variant`` on ``dataset``; None when it has none."""
        key = (labeler, variant)
        rows = self.cells.get(dataset, [])
        return next((row for row in rows if (row.labeler, row.variant) == key), None)


def read_summary(path: str | Path) -> Summary:
    """A ``summary.json`` (a file path); raises InputError as ``read_file``."""
    return read_file(path, Summary, SUMMARY, "summary file", SUMMARY_SCHEMA)


def read_timing(path: str | Path) -> Timing:
    """A ``timing.json`` (version 1 converted); raises InputError as ``read_file``."""
    return read_file(path, Timing, TIMING, "timing file", TIMING_SCHEMA)
