"""reports/rlaif-tldr/run.sh: every step in order, results under OUT (the committed report only
with UPDATE_REPORT=1), finished steps skipped on a rerun, an interrupted PPO run resumed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

STUB_RLAIF = r"""#!/usr/bin/env bash
# Stands in for the rlaif command: records its arguments, writes what the real step writes.
echo "$*" >>"$CALLS"
command=$1; shift
out=""; resume=0
for arg in "$@"; do
  if [ "$prev" = "--out" ]; then out=$arg; fi
  if [ "$prev" = "--policy" ]; then policy=$arg; fi
  if [ "$arg" = "--resume" ]; then resume=1; fi
  prev=$arg
done
case $command in
  label) python - "$out" <<'PY'
import sys
from datasets import Dataset
Dataset.from_dict({"prompt": ["p", "p"], "chosen": ["a", "b"], "rejected": ["c", "d"],
                   "soft_label": [0.7, 0.6], "human_pref_chosen": [1.0, 0.0],
                   "labeler": ["tiny", "tiny"], "variant": ["v", "v"]}).save_to_disk(sys.argv[1])
PY
  ;;
  reward) mkdir -p "$out"; echo '{"stub": "reward"}' >"$out/reward_metrics.json" ;;
  ppo) mkdir -p "$out/policy" "$out/checkpoint-1"; echo '{}' >"$out/ppo_config.json"
       echo '{}' >"$out/checkpoint-1/ppo_state.json"
       stats='{"update": 1, "score": 0.5, "kl": 0.1, "entropy": 1.0, "response_length": 20}'
       echo "$stats" >>"$out/log.jsonl" ;;
  evaluate) [ -d "$policy" ] || { echo "no trained policy at $policy" >&2; exit 3; }
            judged='{"win_rate": 0.6, "ci_low": 0.5, "ci_high": 0.7, "n": 3}'
            echo "{\"judges\": {\"reward_model\": $judged}}" >"$out" ;;
esac
"""


def write_python(path: Path) -> None:
    """``python`` on the stub PATH: a script that runs this interpreter by its own path. A
    symlink to a virtual environment's ``bin/python`` would start the base interpreter, outside
    the environment (without its packages)."""
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    path.chmod(0o755)


def run_script(tmp_path: Path, **env: str) -> tuple[Path, Path, Path]:
    """run.sh in a copy of the repository layout, with stub commands; (report dir, OUT, calls)."""
    repo = tmp_path / "repo"
    report = repo / "reports" / "rlaif-tldr"
    if not report.exists():
        report.mkdir(parents=True)
        for name in ("run.sh", "results.py"):
            shutil.copy(REPO / "reports" / "rlaif-tldr" / name, report / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "rlaif").write_text(STUB_RLAIF)
    (bin_dir / "labelbench").write_text("#!/usr/bin/env bash\nexit 0\n")
    if not (bin_dir / "python").exists():
        write_python(bin_dir / "python")
    for name in ("rlaif", "labelbench"):
        (bin_dir / name).chmod(0o755)
    out, calls = tmp_path / "run out", tmp_path / "calls.txt"  # a space: paths stay quoted
    environment = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "OUT": str(out),
        "DATA": str(tmp_path / "data"),
        "CALLS": str(calls),
        **env,
    }
    done = subprocess.run(
        ["bash", str(report / "run.sh")], env=environment, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return report, out, calls


def commands(calls: Path) -> list[str]:
    return [line.split()[0] for line in calls.read_text().splitlines()]


def test_every_step_runs_and_results_go_under_out(tmp_path):
    report, out, calls = run_script(tmp_path)
    steps = ["label", "reward", "reward", "ppo", "ppo", "evaluate", "evaluate", "evaluate"]
    assert commands(calls) == [*steps, "ppo", "evaluate"]
    assert "--winner" in calls.read_text().splitlines()[-2]  # direct RLAIF: the winner scores
    results = json.loads((out / "results.json").read_text())
    assert results["ai_labels"]["agreement_with_humans"] == 0.5
    assert set(results["evaluations"]) == {
        "rlaif-vs-sft",
        "rlhf-vs-sft",
        "rlaif-vs-rlhf",
        "direct-vs-sft",
    }
    assert set(results["ppo"]) == {"ai", "human", "direct"}
    assert (out / "plots" / "ppo.png").exists()
    assert not (report / "results.json").exists()


def test_a_rerun_skips_finished_steps_and_resumes_ppo(tmp_path):
    sizes = {"DIRECT": "0", "PPO_UPDATES": "1"}
    _, out, calls = run_script(tmp_path, **sizes)
    shutil.rmtree(out / "ppo-human" / "policy")  # interrupted
    calls.unlink()
    report, _, calls = run_script(tmp_path, **sizes, UPDATE_REPORT="1")
    assert calls.read_text().split()[0] == "ppo" and len(calls.read_text().splitlines()) == 1
    assert "--resume" in calls.read_text() and "ppo-human" in calls.read_text()
    assert json.loads((report / "results.json").read_text()) == json.loads(
        (out / "results.json").read_text()
    )


def test_more_updates_asked_for_continue_both_ppo_runs(tmp_path):
    _, out, calls = run_script(tmp_path, DIRECT="0", PPO_UPDATES="1")
    calls.unlink()
    _, out, calls = run_script(tmp_path, DIRECT="0", PPO_UPDATES="2")
    lines = calls.read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["ppo", "ppo"]
    assert all("--resume" in line and "--updates 2" in line for line in lines)
    assert len((out / "ppo-ai" / "log.jsonl").read_text().splitlines()) == 2


def test_the_stub_python_is_this_interpreter_and_its_environment(tmp_path):
    """Issue 25 item 12: in a virtual environment a symlink to ``bin/python`` started the base
    interpreter, without the environment's packages (3 failed where README says to run)."""
    write_python(tmp_path / "python")
    shown = subprocess.run(
        [str(tmp_path / "python"), "-c", "import sys; print(sys.prefix)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == sys.prefix
