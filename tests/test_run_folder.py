"""A run folder never holds one run's results beside another run's figures."""

from __future__ import annotations

import yaml
from test_rlaif_cli import write_comparisons

from labelbench.benchmark import run as run_benchmark
from labelbench.config import parse_config

ZERO = "summarization/base-0shot"


def test_a_new_run_clears_an_earlier_runs_figures_from_its_folder(tmp_path, tiny_lm_dir):
    """Report files of an earlier run in the same folder are removed before the new results are
    written: a run stopped before its report leaves no stale figures beside them."""
    stale = tmp_path / "run"
    (stale / "plots").mkdir(parents=True)
    for name in ("summary.json", "winner.json", "timing.json", "report.md", "report.html"):
        (stale / name).write_text("{}")
    (stale / "plots" / "old.png").write_bytes(b"")
    data = write_comparisons(tmp_path / "pairs.jsonl", n_posts=2)
    config = {
        "datasets": [{"name": "pairs", "path": str(data), "format": "openai-comparisons"}],
        "labelers": [{"name": str(tiny_lm_dir), "label": "tiny", "compile": False}],
        "variants": [ZERO],
        "output_dir": str(stale),
    }
    parsed = parse_config(yaml.safe_dump(config), tmp_path / "run.yaml")
    out = run_benchmark(parsed, cache_dir=tmp_path / "cache", progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "results.parquet"]
