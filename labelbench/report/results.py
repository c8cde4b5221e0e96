"""The results table, now ``labelbench.rundir`` (``ResultRow``: written and read there); these
names stay importable from here."""

from __future__ import annotations

from labelbench.rundir import (
    OPTIONAL_FLOAT,
    REQUIRED,
    RESULT_FILES,
    baseline_columns,
    item_columns,
    normalize,
    result_path,
    write_results,
)
from labelbench.rundir import read_results as load_results

__all__ = [
    "OPTIONAL_FLOAT",
    "REQUIRED",
    "RESULT_FILES",
    "baseline_columns",
    "item_columns",
    "load_results",
    "normalize",
    "result_path",
    "write_results",
]
