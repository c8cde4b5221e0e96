"""Chain-of-thought cells count the rationales that came back empty (a small model may answer at
once, as SmolLM2-135M does for most TL;DR chains): in results.parquet, summary.json and the
report's bias table; a cell without rationales records none."""

from __future__ import annotations

import dataclasses

import pandas as pd
import yaml
from test_rlaif_cli import write_comparisons

from labelbench.benchmark import run as run_benchmark
from labelbench.config import parse_config
from labelbench.labeling.transformers_backend import TransformersBackend
from labelbench.report.cli import write_report
from labelbench.rundir import RESULTS, read_summary

COT, ZERO = "summarization/base-0shot-cot", "summarization/base-0shot"


def _run(tmp_path, model_dir, variants, n_posts):
    """A labelling run of the tiny model on ``n_posts`` posts' comparisons, its report written:
    (its folder, its results table)."""
    data = write_comparisons(tmp_path / "pairs.jsonl", n_posts=n_posts)
    config = {
        "datasets": [{"name": "pairs", "path": str(data), "format": "openai-comparisons"}],
        "labelers": [{"name": str(model_dir), "label": "tiny", "compile": False}],
        "variants": variants,
        "output_dir": str(tmp_path / "run"),
        "analysis": {"bootstrap": 20},
    }
    parsed = parse_config(yaml.safe_dump(config), tmp_path / "run.yaml")
    out = run_benchmark(parsed, cache_dir=tmp_path / "cache", progress=False)
    write_report(out)
    return out, pd.read_parquet(out / RESULTS)


def test_empty_rationales_are_counted_per_pair_and_per_cell(tmp_path, tiny_lm_dir, monkeypatch):
    original = TransformersBackend.rationales

    def silent_on_the_first(self, requests, seeds):  # the first request's chain comes back blank
        results = original(self, requests, seeds)
        results[0] = [dataclasses.replace(s, rationale="  \n") for s in results[0]]
        return results

    monkeypatch.setattr(TransformersBackend, "rationales", silent_on_the_first)
    out, results = _run(tmp_path, tiny_lm_dir, [ZERO, COT], n_posts=4)
    cot = results[results["variant"] == COT]
    # the tiny model writes something for every other chain; one chain per unit was blanked
    assert sorted(cot["empty_rationales"]) == [0] * (len(cot) - 1) + [1]
    assert (cot["rationales"] == 2).all()  # both orders, one sample each
    assert results[results["variant"] == ZERO]["rationales"].isna().all()
    assert results[results["variant"] == ZERO]["empty_rationales"].isna().all()
    cells = {c.variant: c for c in read_summary(out / "summary.json").datasets["pairs"].cells}
    assert cells[COT].cost.empty_rationales == 1
    assert cells[COT].cost.rationales == 2 * len(cot)  # both orders, one sample each
    assert cells[ZERO].cost.empty_rationales is None
    assert cells[ZERO].cost.rationales is None
    report = (out / "report.md").read_text()
    assert "empty rationales" in report
    assert f" 1/{2 * len(cot)} " in report or f"**1/{2 * len(cot)}**" in report
    baselines = [c for c in read_summary(out / "summary.json").datasets["pairs"].cells]
    baselines = [c for c in baselines if c.labeler == "baseline"]
    assert baselines  # the rule baselines copy item rows from a labeler's cell: nothing of it
    for cell in baselines:
        assert cell.cost.empty_rationales is None and cell.cost.rationales is None
        assert cell.properties.cot is None and cell.properties.labeler_params is None


def test_a_variant_in_one_order_counts_one_rationale_a_sample(tmp_path, tiny_lm_dir, monkeypatch):
    prompts = tmp_path / "prompts" / "custom"
    prompts.mkdir(parents=True)
    (prompts / "cot-first.yaml").write_text(f"include: {COT}\nposition: fixed\n")
    monkeypatch.setenv("LABELBENCH_PROMPTS_PATH", str(tmp_path / "prompts"))
    out, results = _run(tmp_path, tiny_lm_dir, ["custom/cot-first"], n_posts=3)
    assert results["ai_pref_a_ba"].isna().all()  # one order only
    assert (results["rationales"] == 1).all()
    (cell,) = [
        c for c in read_summary(out / "summary.json").datasets["pairs"].cells if c.labeler == "tiny"
    ]
    assert cell.cost.rationales == len(results)
