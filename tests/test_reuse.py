"""``labelbench cache import``: a finished run's labels, imported into an empty cache, make a
rerun of the same config read every scored label (same P(A) and log-odds, nothing computed), and
labels that do not match this machine's recomputation are refused."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labelbench import benchmark
from labelbench.config import load_config, parse_config
from labelbench.labeling import LabelCache
from labelbench.reuse import import_labels, print_report


def _config(root: Path, model: Path, out: str, sample: int = 5) -> object:
    text = f"""
        datasets:
          - {{name: tldr, path: openai_tldr_comparisons/batch13.json, sample: {sample},
              max_chars: 900}}
        labelers:
          - {{name: {model}, label: tiny}}
        variants: [summarization/base-0shot, summarization/base-0shot-cot]
        output_dir: {root / out}
        analysis: {{bootstrap: 20}}
    """
    return parse_config(textwrap.dedent(text), root / f"{out}.yaml")


@pytest.fixture()
def finished_run(tmp_path: Path, data_dir: Path, tiny_lm_dir: Path) -> Path:
    config = _config(tmp_path, tiny_lm_dir, "first")
    return benchmark.run(config, data_dir=data_dir, cache_dir=tmp_path / "old", progress=False)


def test_imported_labels_are_read_by_a_rerun(
    finished_run: Path, tmp_path: Path, data_dir: Path, tiny_lm_dir: Path, capsys
) -> None:
    fresh = tmp_path / "fresh"
    report = import_labels(finished_run, data_dir, cache_dir=fresh, check=2)
    said = [line for line in capsys.readouterr().err.splitlines() if "checking" in line]
    assert said == ["checking tiny: labelling 2 items a cell again here (1 cell)"]
    assert report.stored == {"tiny": 10}  # 5 items x 2 orders of the 0-shot cell
    items, worst = report.checked["tiny"]
    assert items == 4 and worst < 1e-6  # the same machine and model: the same labels
    assert any("chain-of-thought" in line for line in report.skipped)
    with LabelCache(fresh) as cache:
        assert len(cache) == 10

    config = _config(tmp_path, tiny_lm_dir, "second")
    second = benchmark.run(
        config, data_dir=data_dir, cache_dir=fresh, progress=False, command="rerun"
    )
    old = pd.read_parquet(finished_run / "results.parquet")
    new = pd.read_parquet(second / "results.parquet")
    zero = "summarization/base-0shot"
    a, b = (f[f.variant == zero].set_index("item_id").sort_index() for f in (old, new))
    for column in ("ai_pref_a", "ai_pref_a_ab", "ai_pref_a_ba"):
        np.testing.assert_allclose(b[column], a[column], rtol=0, atol=1e-12)
    for column in ("ai_logodds_a_ab", "ai_logodds_a_ba"):
        np.testing.assert_allclose(b[column], a[column], rtol=0, atol=1e-9)
    # the pair's seconds and prompt tokens are kept, split between its orders
    np.testing.assert_allclose(b["seconds"], a["seconds"], rtol=1e-9)
    assert (b["prompt_tokens"] == a["prompt_tokens"]).all()


def test_labels_that_do_not_match_are_refused(
    finished_run: Path, tmp_path: Path, data_dir: Path
) -> None:
    results = pd.read_parquet(finished_run / "results.parquet")
    results["ai_pref_a_ab"] = 0.9  # labels of another model (the tiny one gives about 0.5)
    results.to_parquet(finished_run / "results.parquet", index=False)
    fresh = tmp_path / "fresh"
    report = import_labels(finished_run, data_dir, cache_dir=fresh, check=1)
    assert "tiny" in report.refused and "differs" in report.refused["tiny"]
    assert report.stored == {}
    with LabelCache(fresh) as cache:
        assert len(cache) == 0


def test_import_without_a_run_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "labelbench.cli", "cache", "import", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "config.yaml" in lines[0], done.stderr


def test_the_check_compares_scored_items(
    finished_run: Path, tmp_path: Path, data_dir: Path
) -> None:
    """Unscored first items do not make the check compare nothing and pass: it checks scored
    items, and a labeler with no comparable order is refused."""
    config = load_config(finished_run / "config.yaml")
    (data,) = benchmark.prepare(config, data_dir)
    last = data.items[-1].id  # the only scored item: the check took the first, unscored ones
    results = pd.read_parquet(finished_run / "results.parquet")
    zero = results["variant"] == "summarization/base-0shot"
    for column in ("ai_pref_a", "ai_pref_a_ab", "ai_pref_a_ba"):
        results.loc[zero & (results["item_id"] != last), column] = np.nan
    results.loc[zero & (results["item_id"] == last), "ai_pref_a_ab"] = 0.9  # another model's
    results.to_parquet(finished_run / "results.parquet", index=False)
    fresh = tmp_path / "fresh"
    report = import_labels(finished_run, data_dir, cache_dir=fresh, check=1)
    assert "tiny" in report.refused and report.stored == {}
    assert report.checked["tiny"][0] > 0
    assert print_report(report) == 2


def test_nothing_to_import_is_said_and_exits_2(
    finished_run: Path, tmp_path: Path, data_dir: Path
) -> None:
    results = pd.read_parquet(finished_run / "results.parquet")
    results["labeler"] = "renamed"
    results.to_parquet(finished_run / "results.parquet", index=False)
    report = import_labels(finished_run, data_dir, cache_dir=tmp_path / "fresh", check=0)
    assert report.stored == {} and report.refused == {}
    lines = report.lines()
    assert any("renamed" in line and "config.yaml" in line for line in lines), lines
    assert lines[-1].startswith("nothing imported")
    assert print_report(report) == 2

    results = pd.read_parquet(finished_run / "results.parquet")
    results["labeler"] = "tiny"
    results = results.drop(columns=["ai_pref_a_ab", "ai_pref_a_ba"])  # an older results table
    results.to_parquet(finished_run / "results.parquet", index=False)
    report = import_labels(finished_run, data_dir, cache_dir=tmp_path / "fresh", check=0)
    assert report.stored == {}
    assert any("no scored order" in line for line in report.lines())


def test_labels_in_the_cache_are_kept(finished_run: Path, tmp_path: Path, data_dir: Path) -> None:
    """Importing never replaces a label the cache holds (here: the run's own, computed here)."""
    old = tmp_path / "old"  # the cache the finished run computed its labels into
    with LabelCache(old) as cache:
        keys = [key for (key,) in cache._db.execute("SELECT key FROM labels")]
        before = cache.get_many(keys)
    results = pd.read_parquet(finished_run / "results.parquet")
    results["ai_pref_a_ab"] = 0.9
    results.to_parquet(finished_run / "results.parquet", index=False)
    report = import_labels(finished_run, data_dir, cache_dir=old, check=0)
    assert report.stored == {"tiny": 0} and report.present == {"tiny": 10}
    assert "10 already in the cache" in report.lines()[0]
    with LabelCache(old) as cache:
        assert cache.get_many(keys) == before


def test_a_rerun_skips_the_labelers_it_stored(
    finished_run: Path, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an import (or one cut short by Ctrl-C after a labeler was stored), running it again
    does not check or store that labeler again: it resumes."""
    import labelbench.reuse as reuse

    fresh = tmp_path / "fresh"
    assert import_labels(finished_run, data_dir, cache_dir=fresh, check=1).stored == {"tiny": 10}

    def no_check(*args: object, **kwargs: object) -> None:
        raise AssertionError("a labeler whose labels are all stored was checked again")

    monkeypatch.setattr(reuse, "_check", no_check)
    again = import_labels(finished_run, data_dir, cache_dir=fresh, check=1)
    assert again.stored == {"tiny": 0} and again.present == {"tiny": 10}
    assert again.refused == {}
    assert again.lines()[0].endswith("nothing new to store, so not checked again")
