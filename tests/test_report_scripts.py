"""The report scripts under reports/ fail as the CLI does: a missing run folder is one line on
stderr and exit code 2, never a traceback; and cot_precision.py counts the decisions that differ
between a float32 and a bfloat16 cell on their common items."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = [
    ("reports/ladder/prompt_types.py", 1),
    ("reports/ladder/cot_precision.py", 2),
    ("reports/ladder/tables.py", 1),
    ("reports/ladder/soft_labels.py", 1),
    ("reports/rlaif-dpo/inputs.py", 2),
    ("reports/rlaif-dpo/results.py", 1),
    ("reports/rlaif-tldr/results.py", 1),
]


@pytest.mark.parametrize(("script", "folders"), SCRIPTS)
def test_a_missing_folder_is_one_line_and_exit_2(tmp_path, script, folders):
    missing = [str(tmp_path / f"missing{i}") for i in range(folders)]
    done = subprocess.run(
        [sys.executable, str(ROOT / script), *missing],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "missing" in lines[0]


LADDER = ["reports/ladder"]


def test_prompt_types_refuses_a_run_without_its_cells(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "reports/ladder/prompt_types.py"), *LADDER, "--dataset", "x"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: reports/ladder: field 'dataset': no cells in data sets")


def test_cot_precision_refuses_two_runs_at_one_precision():
    done = subprocess.run(
        [sys.executable, str(ROOT / "reports/ladder/cot_precision.py"), *LADDER, *LADDER],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "in bfloat16, as reports/ladder does" in done.stderr


def _cot_precision():
    path = ROOT / "reports" / "ladder" / "cot_precision.py"
    spec = importlib.util.spec_from_file_location("cot_precision", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cell(p: list[float], ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ids,
            "group_id": [f"post{i}" for i in range(len(ids))],
            "human_pref_a": [1.0] * len(ids),
            "ai_pref_a": p,
        }
    ).set_index("item_id")


def test_precision_table_counts_differing_decisions_on_common_items():
    module = _cot_precision()
    ids = ["a", "b", "c", "d"]
    low = {("m (bfloat16)", "detailed-0shot-cot"): _cell([0.6, 0.4, 0.7, 0.2], ids)}
    # item "e" is only in the float32 cell; "b" turns to A, "d" stays B
    high = {("m (float32)", "detailed-0shot-cot"): _cell([0.55, 0.6, 0.9, 0.3, 0.9], [*ids, "e"])}
    row = module.precision_table(low, high).splitlines()[-1]
    cells = [part.strip() for part in row.strip("|").split("|")]
    assert cells[0] == "detailed-0shot-cot"
    assert cells[2] == "1 / 0"  # b now agrees with the human (A); nothing got worse
    assert cells[3] == "1 of 4"
    assert cells[4] == "4"
    assert cells[1].startswith("+0.250")
