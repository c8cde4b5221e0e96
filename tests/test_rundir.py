"""The run folder's typed files (``labelbench.rundir``): the committed reports read and write back
unchanged, old and damaged files are read or refused in one line, no reader outside the models
reads run-file data by string key, and ``configs/quick.yaml`` gives the committed golden summary.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
from pathlib import Path

import pytest
from pydantic import BaseModel

from labelbench import rundir
from labelbench.errors import InputError
from labelbench.yamlio import field_types

REPO = Path(__file__).resolve().parents[1]
REPORTS = ("reports/ladder", "reports/ladder/prompt-sensitivity", "reports/benchmark")
SOURCES = ("labelbench", "rlaif", "reports", "bench")
"""The source tree the string-key check reads (tests build damaged files on purpose)."""


# ---------------------------------------------------------------------------- committed files


@pytest.mark.parametrize("report", REPORTS)
def test_committed_run_files_read_and_write_back_unchanged(report: str, tmp_path: Path) -> None:
    folder = REPO / report
    summary = rundir.read_summary(folder / rundir.SUMMARY)
    assert rundir.write_file(summary, tmp_path / "s.json").read_bytes() == (
        (folder / rundir.SUMMARY).read_bytes()
    )
    winner = rundir.read_winner(folder / rundir.WINNER)
    written = json.loads(rundir.write_file(winner, tmp_path / "w.json").read_text())
    assert written == {**json.loads((folder / rundir.WINNER).read_text()), "schema": 1}
    record = rundir.read_run_record(folder / rundir.RUN_RECORD)
    assert record is not None and record.command.startswith("labelbench run")


@pytest.mark.parametrize("report", REPORTS)
def test_a_version_1_timing_file_is_read_into_the_current_layout(
    report: str, tmp_path: Path
) -> None:
    """timing.json before ``schema`` (version 1) kept one key per data set at the top level, as
    the committed reports had it until they were regenerated."""
    timing = rundir.read_timing(REPO / report / rundir.TIMING)
    flat = {
        **{name: [row.model_dump() for row in rows] for name, rows in timing.cells.items()},
        "aggregation_seconds": {
            name: [row.model_dump() for row in rows]
            for name, rows in timing.aggregation_seconds.items()
        },
    }
    path = tmp_path / rundir.TIMING
    path.write_text(json.dumps(flat))
    old = rundir.read_timing(path)
    assert old == timing and old.version == rundir.TIMING_SCHEMA == 2
    again = old.to_json()
    assert again["schema"] == 2 and set(again) == {"schema", "cells", "aggregation_seconds"}
    assert list(again["cells"]) == [name for name in flat if name != "aggregation_seconds"]


def test_a_summary_without_schema_is_version_1(tmp_path: Path) -> None:
    data = json.loads((REPO / "tests/golden/quick_summary.json").read_text())
    del data["schema"]
    path = tmp_path / rundir.SUMMARY
    path.write_text(json.dumps(data))
    summary = rundir.read_summary(path)
    assert summary.version == 1 and summary.to_json()["schema"] == 1


# ---------------------------------------------------------------------------- refusals


def _refused(path: Path, read) -> str:
    with pytest.raises(InputError) as raised:
        read(path)
    line = str(raised.value)
    assert "\n" not in line and line.startswith(str(path)), line
    return line


@pytest.mark.parametrize(
    ("name", "read"),
    [
        (rundir.SUMMARY, rundir.read_summary),
        (rundir.TIMING, rundir.read_timing),
        (rundir.WINNER, rundir.read_winner),
        (rundir.RUN_RECORD, rundir.read_run_record),
    ],
)
def test_newer_broken_or_misspelt_files_are_refused_in_one_line(
    tmp_path: Path, name: str, read
) -> None:
    path = tmp_path / name
    original = json.loads((REPO / "reports/ladder" / name).read_text())
    path.write_text(json.dumps({**original, "schema": 99}))
    assert "field 'schema': layout version 99 is newer" in _refused(path, read)
    path.write_text(json.dumps({**original, "schema": "one"}))
    assert "field 'schema'" in _refused(path, read)
    path.write_text('{"truncated": ')
    assert "not a JSON file" in _refused(path, read)
    path.write_text("[1, 2]")
    assert "expected a JSON object" in _refused(path, read)
    path.write_bytes(b"\xff\xfe{}")
    assert "not UTF-8" in _refused(path, read)


def test_a_misspelt_key_is_named_with_the_key_it_resembles(tmp_path: Path) -> None:
    path = tmp_path / rundir.SUMMARY
    data = json.loads((REPO / "reports/ladder" / rundir.SUMMARY).read_text())
    cell = data["datasets"]["tldr"]["cells"][0]
    cell["vs_baselnes"] = cell.pop("vs_baselines")
    path.write_text(json.dumps(data))
    line = _refused(path, rundir.read_summary)
    assert "field 'datasets.tldr.cells[0].vs_baselnes': unknown key" in line
    assert "did you mean 'vs_baselines'?" in line
    del cell["vs_baselnes"], cell["alignment"]
    path.write_text(json.dumps(data))
    assert "field 'datasets.tldr.cells[0].alignment': missing" in _refused(
        path, rundir.read_summary
    )


def test_a_misspelt_required_key_is_named_not_reported_missing(tmp_path: Path) -> None:
    """A required key misspelt fails both as missing and as unknown: the line names the key in
    the file, with the one it resembles."""
    path = tmp_path / rundir.RUN_RECORD
    data = json.loads((REPO / "reports/ladder" / rundir.RUN_RECORD).read_text())
    data["cached_shar"] = data.pop("cached_share")
    path.write_text(json.dumps(data))
    line = _refused(path, rundir.read_run_record)
    assert "field 'cached_shar': unknown key; did you mean 'cached_share'?" in line, line
    path = tmp_path / rundir.WINNER
    data = json.loads((REPO / "reports/ladder" / rundir.WINNER).read_text())
    data["by_dataset"]["tldr"]["alignmnt"] = data["by_dataset"]["tldr"].pop("alignment")
    path.write_text(json.dumps(data))
    line = _refused(path, rundir.read_winner)
    assert "field 'by_dataset.tldr.alignmnt': unknown key; did you mean 'alignment'?" in line


def test_a_run_record_out_of_range_or_newer_is_refused_with_the_right_advice(
    tmp_path: Path,
) -> None:
    """A cached share of 7 (read as "700% of the labels read from the cache") or a negative
    wall time is refused; a newer run.json is not one `labelbench report` could rewrite."""
    path = tmp_path / rundir.RUN_RECORD
    data = json.loads((REPO / "reports/ladder" / rundir.RUN_RECORD).read_text())
    for key, value in (("cached_share", 7), ("cached_share", -0.5), ("wall_seconds", -1)):
        path.write_text(json.dumps({**data, key: value}))
        assert f"field '{key}'" in _refused(path, rundir.read_run_record)
    path.write_text(json.dumps({**data, "schema": 2}))
    line = _refused(path, rundir.read_run_record)
    assert line.endswith("update labelbench") and "labelbench report" not in line, line


def _damaged(frame, how: str):
    frame = frame.copy()
    if how == "misspelt column":
        return frame.rename(columns={"ai_pref_a_ab": "ai_pref_ab"}), "ai_pref_ab", "unknown"
    if how == "text in a number column":
        frame["ai_pref_a"] = frame["ai_pref_a"].astype(str)  # a column of text, as edited
        frame.loc[2, "ai_pref_a"] = "high"
        return frame, "ai_pref_a", "not a number: 'high'"
    if how == "P(A) above 1":
        frame.loc[1, "ai_pref_a_ba"] = 1.5
        return frame, "ai_pref_a_ba", "outside [0, 1]"
    if how == "text in a true/false column":
        frame["cot"] = "no"
        return frame, "cot", "not true or false"
    if how == "annotator_prefs of text":
        frame["annotator_prefs"] = [["x"]] * len(frame)
        return frame, "annotator_prefs", "not a list of numbers"
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    [
        "misspelt column",
        "text in a number column",
        "P(A) above 1",
        "text in a true/false column",
        "annotator_prefs of text",
    ],
)
def test_a_damaged_results_file_is_refused_in_one_line(tmp_path: Path, how: str) -> None:
    """What would read silently wrong (a misspelt column as absent, text as unscored, a P(A)
    of 1.5, "no" as true) or fail with a traceback is one line naming the column."""
    import pandas as pd

    frame = pd.read_parquet(REPO / "reports/benchmark" / rundir.RESULTS).head(8)
    damaged, column, message = _damaged(frame, how)
    damaged.to_parquet(tmp_path / rundir.RESULTS, index=False)
    line = _refused(tmp_path / rundir.RESULTS, lambda _: rundir.read_results(tmp_path))
    assert f"field '{column}'" in line and message in line, line
    frame.head(0).to_parquet(tmp_path / rundir.RESULTS, index=False)
    assert "no rows" in _refused(tmp_path / rundir.RESULTS, lambda _: rundir.read_results(tmp_path))


def test_a_results_row_takes_only_known_and_baseline_columns() -> None:
    row = {
        "dataset": "d",
        "labeler": "l",
        "variant": "v",
        "item_id": "1",
        "group_id": "1",
        "human_pref_a": 1.0,
        "len_a": 3.0,
        "len_b": 4.0,
        "ai_pref_a": 0.7,
    }
    assert rundir.ResultRow.model_validate({**row, "baseline_gpt_pref_a": 0.2}).model_extra
    with pytest.raises(ValueError, match="unknown results column 'ai_pref_b'"):
        rundir.ResultRow.model_validate({**row, "ai_pref_b": 0.3})
    assert set(rundir.REQUIRED) == set(row)


# ---------------------------------------------------------------------------- string-key reads

GENERIC = {
    # results.parquet columns: tables are read by column name (``rows["labeler"]``)
    *rundir.ResultRow.model_fields,
    # everyday keys of other JSON and metric dicts (rlaif's results, reward metrics, the reports'
    # results.json, metrics.alignment's Estimates, request records), too common to be a sign of
    # summary data on their own; the run files' own blocks are named by the keys that are not
    "accuracy",
    "aggregation",
    "balanced",
    "command",
    "difference",
    "ece",
    "high",
    "high_confidence",
    "kind",
    "labelers",
    "log_loss",
    "low",
    "matched",
    "method",
    "n",
    "parameters",
    "points",
    "reason",
    "reference",
    "seconds_per_pair",
    "seed",
    "tokens_per_pair",
    "value",
    "variants",
    # the dicts of labelbench.metrics (position_bias, paired_difference) that scripts read
    # directly; the summary's blocks built from them are caught by their own keys
    # (position_bias, vs_baselines, vs_reference)
    "same_slot",
    "wins",
    "losses",
    "p_value",
}
"""Field names of the run files that are not taken as a sign of run-file data."""

MUST_CATCH = {
    "datasets",
    "cells",
    "settings",
    "alignment",
    "vs_baselines",
    "human_ceiling",
    "aggregations",
    "learning_curve",
    "position_bias",
    "per_dataset",
    "by_dataset",
    "versus_baselines",
    "labeler_spec",
    "aggregation_choice",
    "aggregation_seconds",
    "beats",
}


def _field_names(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    """Every key of ``model``'s files: its fields (by their name in the file) and its parts'."""
    if model in seen:
        return set()
    seen.add(model)
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(info.alias or name)
        for kind in field_types(info.annotation):
            if isinstance(kind, type) and issubclass(kind, rundir.Record):
                names |= _field_names(kind, seen)
    return names


RUN_FILE_KEYS = frozenset(
    set().union(
        *(
            _field_names(model, set())
            for model in (rundir.Summary, rundir.Timing, rundir.WinnerFile, rundir.RunRecord)
        )
    )
    - GENERIC
)


def string_key_reads(source: str, keys: frozenset[str] = RUN_FILE_KEYS) -> list[tuple[int, str]]:
    """(line, key) of each read of a run-file key by string: ``x["key"]`` (not an assignment),
    ``x.get("key")`` / ``.pop`` / ``.setdefault``, and ``"key" in x``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        key = None
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            key = node.slice.value if isinstance(node.slice, ast.Constant) else None
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("get", "pop", "setdefault") and node.args:
                first = node.args[0]
                key = first.value if isinstance(first, ast.Constant) else None
        elif (
            isinstance(node, ast.Compare)
            and isinstance(node.left, ast.Constant)
            and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops)
        ):
            key = node.left.value
        if isinstance(key, str) and key in keys:
            found.append((node.lineno, key))
    return found


def test_the_string_key_check_knows_the_run_files_keys_and_finds_reads() -> None:
    assert MUST_CATCH <= RUN_FILE_KEYS, MUST_CATCH - RUN_FILE_KEYS
    assert len(RUN_FILE_KEYS) > 60
    code = (
        "summary['datasets']\n"
        "entry.get('cells', [])\n"
        "if 'vs_baselines' in cell: pass\n"
        "winner.pop('labeler_spec')\n"
        "data['cells'] = []\n"  # an assignment: writing, not reading
        "frame['labeler']\n"  # a results column
        "metrics['accuracy']\n"  # a generic key
    )
    assert string_key_reads(code) == [
        (1, "datasets"),
        (2, "cells"),
        (3, "vs_baselines"),
        (4, "labeler_spec"),
    ]


def test_no_run_file_data_is_read_by_string_key_outside_rundir() -> None:
    """Readers use ``labelbench.rundir``'s models (``summary.datasets``, ``cell.vs_baselines``),
    not ``summary["datasets"]``; only the models' own module reads the files' keys."""
    found = []
    checked = 0
    for package in SOURCES:
        for path in sorted((REPO / package).rglob("*.py")):
            if (REPO / "labelbench" / "rundir") in path.parents:
                continue
            checked += 1
            for line, key in string_key_reads(path.read_text(encoding="utf-8")):
                found.append(f"{path.relative_to(REPO)}:{line}: [{key!r}]")
    assert checked > 100
    assert not found, "run-file data read by string key (use labelbench.rundir):\n" + "\n".join(
        found
    )


# ---------------------------------------------------------------------------- golden summary

GOLDEN = REPO / "tests" / "golden" / "quick_summary.json"
UNCOMPARED = ("schema",)
"""Keys left out of the golden comparison: the layout version, which may rise while the figures
stay. summary.json holds no wall-clock figure (those are in timing.json and run.json, which the
comparison does not read), so nothing else is left out."""


def test_the_golden_summary_holds_figures_and_ids_only() -> None:
    """No data text: every string of the golden copy is an id, a name or a fixed phrase."""
    golden = json.loads(GOLDEN.read_text())
    strings: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            strings.extend(str(k) for k in value)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            strings.append(value)

    walk(golden)
    assert max(len(text) for text in strings) < 120
    assert rundir.read_summary(GOLDEN).datasets["tldr"].n_items == 30


@pytest.mark.slow
def test_quick_config_gives_the_golden_summary(tmp_path: Path, data_dir: Path) -> None:
    """``labelbench run configs/quick.yaml`` (SmolLM2-135M, 30 TL;DR pairs, two variants; about a
    minute on 2 CPU cores) into a fresh folder and a fresh label cache: summary.json equals the
    committed golden copy, ``UNCOMPARED`` aside."""
    from labelbench.cli import app, run_app

    config = tmp_path / "quick.yaml"
    shutil.copy(REPO / "configs" / "quick.yaml", config)
    cwd = Path.cwd()
    os.chdir(tmp_path)  # output_dir runs/quick is relative to the current folder
    try:
        args = ["run", str(config), "--data-dir", str(data_dir), "--cache-dir", "cache"]
        assert run_app(app, args, prog_name="labelbench") == 0
    finally:
        os.chdir(cwd)
    made = json.loads((tmp_path / "runs" / "quick" / rundir.SUMMARY).read_text())
    golden = json.loads(GOLDEN.read_text())
    for key in UNCOMPARED:
        made.pop(key, None)
        golden.pop(key, None)
    assert made == golden
