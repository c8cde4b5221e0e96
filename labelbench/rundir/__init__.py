"""The run folder: its file names, and the typed models that both write and read its files
(``labelbench.rundir``; one module per file kind, all imported from here).

A run folder (a run config's ``output_dir``) holds, by the command that writes each file:

- ``labelbench run``: ``config.yaml`` (the config as it ran), ``results.parquet`` (``ResultRow``:
  one row per data set x labeler x variant x comparison) and ``run.json`` (``RunRecord``);
- ``labelbench report``: ``summary.json`` (``Summary``: every figure), ``timing.json``
  (``Timing``: the wall-clock figures, kept out of the summary), ``winner.json`` (``WinnerFile``:
  the best cell; ``rlaif`` and ``labelbench serve`` reopen its labeler), ``report.md``,
  ``report.html`` and ``plots/``;
- ``labelbench view``: ``items.html``.

Every JSON file carries ``schema``, the version of its layout. A file without one is version 1,
the layout before the field existed (``timing.json`` version 1 kept one key per data set at the
top level; it is read into the version-2 layout). A newer version, malformed JSON or a file that
does not match its model is refused with ``InputError``: one line naming the file and the field.

The models forbid unknown keys, so a misspelt key fails instead of reading as missing. Files are
written with ``exclude_unset``: a key the writer did not set is left out, so an optional key (an
estimate's ``reason``, ``vs_reference`` of a reference variant) is absent rather than null, as
before the models. Numbers keep their type (``Number`` where a count or a float may stand), so the
same labels give a byte-identical ``summary.json``.
"""

from __future__ import annotations

from labelbench.rundir.base import Number, Record, RunFile, read_file, write_file
from labelbench.rundir.names import (
    CONFIG,
    ITEMS_HTML,
    PLOTS,
    REPORT_HTML,
    REPORT_MD,
    RESULT_FILES,
    RESULTS,
    RESULTS_JSONL,
    RUN_RECORD,
    RUN_SCHEMA,
    SUMMARY,
    SUMMARY_SCHEMA,
    TIMING,
    TIMING_SCHEMA,
    WINNER,
    WINNER_SCHEMA,
)
from labelbench.rundir.results import (
    BASELINE_COLUMN,
    OPTIONAL_FLOAT,
    REQUIRED,
    ResultRow,
    baseline_columns,
    clear_derived,
    item_columns,
    normalize,
    read_results,
    result_path,
    write_results,
)
from labelbench.rundir.run import RunRecord, read_config, read_run_record, write_config
from labelbench.rundir.summary import (
    AggregationRow,
    AggregationTiming,
    Alignment,
    Calibration,
    Cell,
    CellTiming,
    Cost,
    CoveragePoint,
    CurvePoint,
    DatasetSummary,
    Difference,
    Estimate,
    LabelerInfo,
    LearningCurve,
    LengthBias,
    LengthControlled,
    Paired,
    PositionBias,
    Properties,
    ReliabilityBin,
    SoftBin,
    Summary,
    SummarySettings,
    Timing,
    read_summary,
    read_timing,
)
from labelbench.rundir.winner import (
    AggregationChoice,
    BestOf,
    MethodChoice,
    Versus,
    WinnerFile,
    read_winner,
)

__all__ = [
    "BASELINE_COLUMN",
    "CONFIG",
    "ITEMS_HTML",
    "OPTIONAL_FLOAT",
    "PLOTS",
    "REPORT_HTML",
    "REPORT_MD",
    "REQUIRED",
    "RESULTS",
    "RESULTS_JSONL",
    "RESULT_FILES",
    "RUN_RECORD",
    "RUN_SCHEMA",
    "SUMMARY",
    "SUMMARY_SCHEMA",
    "TIMING",
    "TIMING_SCHEMA",
    "WINNER",
    "WINNER_SCHEMA",
    "AggregationChoice",
    "AggregationRow",
    "AggregationTiming",
    "Alignment",
    "BestOf",
    "Calibration",
    "Cell",
    "CellTiming",
    "Cost",
    "CoveragePoint",
    "CurvePoint",
    "DatasetSummary",
    "Difference",
    "Estimate",
    "LabelerInfo",
    "LearningCurve",
    "LengthBias",
    "LengthControlled",
    "MethodChoice",
    "Number",
    "Paired",
    "PositionBias",
    "Properties",
    "Record",
    "ReliabilityBin",
    "ResultRow",
    "RunFile",
    "RunRecord",
    "SoftBin",
    "Summary",
    "SummarySettings",
    "Timing",
    "Versus",
    "WinnerFile",
    "baseline_columns",
    "clear_derived",
    "item_columns",
    "normalize",
    "read_config",
    "read_file",
    "read_results",
    "read_run_record",
    "read_summary",
    "read_timing",
    "read_winner",
    "result_path",
    "write_config",
    "write_file",
    "write_results",
]
