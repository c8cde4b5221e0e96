"""reports/rlaif-small/run.sh writes its results under OUT and leaves the committed report alone
unless asked (UPDATE_REPORT=1)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

STUB_RLAIF = r"""#!/usr/bin/env bash
# Stands in for the rlaif command: writes what each step's real command writes, nothing else.
command=$1; shift
out=""
while [ $# -gt 0 ]; do
  if [ "$1" = "--out" ]; then out=$2; fi
  shift
done
case $command in
  label) mkdir -p "$out" ;;
  reward) mkdir -p "$out"; echo '{"stub": "reward"}' >"$out/reward_metrics.json" ;;
  ppo) mkdir -p "$out"; echo '{}' >"$out/ppo_config.json"; echo '{"update": 1}' >"$out/log.jsonl" ;;
  evaluate) echo '{"stub": "evaluate"}' >"$out" ;;
esac
"""


def write_python(path: Path) -> None:
    """``python`` on the stub PATH: a script that runs this interpreter by its own path. A
    symlink to a virtual environment's ``bin/python`` would start the base interpreter, outside
    the environment (without its packages)."""
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    path.chmod(0o755)


def run_script(tmp_path: Path, **env: str) -> tuple[Path, Path]:
    """run.sh in a copy of the repository layout, with stub commands; (report file, OUT)."""
    repo = tmp_path / "repo"
    script = repo / "reports" / "rlaif-small" / "run.sh"
    script.parent.mkdir(parents=True)
    shutil.copy(REPO / "reports" / "rlaif-small" / "run.sh", script)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "rlaif").write_text(STUB_RLAIF)
    (bin_dir / "labelbench").write_text("#!/usr/bin/env bash\nexit 0\n")
    write_python(bin_dir / "python")
    for name in ("rlaif", "labelbench"):
        (bin_dir / name).chmod(0o755)
    out = tmp_path / "out"
    environment = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "OUT": str(out),
        "DATA": str(tmp_path / "data"),
        **env,
    }
    done = subprocess.run(["bash", str(script)], env=environment, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return repo / "reports" / "rlaif-small" / "results.json", out


def test_results_go_under_out_and_the_committed_report_is_kept(tmp_path):
    report, out = run_script(tmp_path, PPO_UPDATES="1")
    assert not report.exists()
    results = json.loads((out / "results.json").read_text())
    assert results["reward_model_ai_labels"] == {"stub": "reward"}
    assert results["evaluation"] == {"stub": "evaluate"}


def test_update_report_writes_the_committed_report_too(tmp_path):
    report, out = run_script(tmp_path, UPDATE_REPORT="1")
    assert json.loads(report.read_text()) == json.loads((out / "results.json").read_text())
