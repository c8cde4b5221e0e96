"""bench/ppo_precision.py's pure parts: reading a run's curves and the gap between two curves."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from ppo_precision import METRICS, curves, gap


def test_curves_read_every_metric_per_update(tmp_path):
    rows = [{name: float(update) for name in METRICS} | {"update": update} for update in (1, 2)]
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert curves(log) == {name: [1.0, 2.0] for name in METRICS}


def test_gap_is_the_mean_absolute_difference_over_common_updates():
    assert gap([0.0, 1.0, 5.0], [1.0, 3.0]) == pytest.approx(1.5)
    assert gap([2.0], [2.0]) == 0.0
