"""Reports that explain: one sentence per labeler cell naming its dominant failure, a "beats"
that is flagged on its own line when position or length explains it, and ``labelbench run``
ending with the verdict."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from test_report_verdicts import ladder_results

from labelbench.report.summary import ReportSettings, summarize
from labelbench.report.verdict import (
    SAME_SLOT_LIMIT,
    Caveats,
    dataset_verdict,
    failure_sentences,
    winner_versus_baselines,
)
from labelbench.rundir import (
    REPORT_HTML,
    REPORT_MD,
    SUMMARY,
    Cell,
    DatasetSummary,
    Summary,
    WinnerFile,
    normalize,
    read_summary,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def summary() -> Summary:
    made, _ = summarize(normalize(ladder_results(), "ladder"), ReportSettings(n_boot=200))
    return made


def _beats_lines(verdict) -> list[str]:
    return [line for line in verdict.sentences() if "beats it" in line]


def _best(entry: DatasetSummary, verdict) -> Cell:
    cell = entry.cell(verdict.labeler, verdict.variant)
    assert cell is not None
    return cell


def test_a_biased_cells_beats_is_flagged_on_the_same_line(summary: Summary) -> None:
    entry = summary.datasets["pandalm"].model_copy(deep=True)
    verdict = dataset_verdict("pandalm", entry)
    lines = _beats_lines(verdict)
    assert lines and not any("flagged" in line for line in lines)  # an unbiased winner
    best = _best(entry, verdict)
    assert best.position_bias is not None
    best.position_bias.same_slot.value = 0.8
    best.position_bias.slot = "first"
    flagged = dataset_verdict("pandalm", entry)
    assert _beats_lines(flagged)
    for line in _beats_lines(flagged):
        for part in line.split("; "):
            if "beats it" in part:
                assert "flagged: the first slot wins in both orders for 80% of pairs" in part
                assert f"above the {SAME_SLOT_LIMIT:.0%} limit" in part
    # a slot rate at the limit is not flagged; a length preference against the humans' is
    best.position_bias.same_slot.value = SAME_SLOT_LIMIT
    human = best.length_bias.human_prefers_longer.value or 0.0
    best.length_bias.ai_prefers_longer.value = 0.2 if human > 0.5 else 0.8
    by_length = dataset_verdict("pandalm", entry)
    assert _beats_lines(by_length)
    assert all("flagged: it prefers the" in line for line in _beats_lines(by_length))
    assert all("wins in both orders" not in line for line in _beats_lines(by_length))
    # winner.json and its sentence carry the flag too
    winner = WinnerFile(labeler=verdict.labeler, variant=verdict.variant)
    only = summary.model_copy(update={"datasets": {"pandalm": entry}})
    fields = winner_versus_baselines(winner, only)
    assert fields.flags is not None
    assert fields.flags["pandalm"] and "prefers the" in fields.flags["pandalm"][0]


def test_the_committed_ladders_llmbar_neighbor_win_is_flagged() -> None:
    """The issue's example: smollm2-135m "beat" both baselines on LLMBar Neighbor while the same
    slot won in 75% of its pairs."""
    summary = read_summary(REPO / "reports/ladder" / SUMMARY)
    verdict = dataset_verdict("llmbar-neighbor", summary.datasets["llmbar-neighbor"])
    assert verdict.labeler == "smollm2-135m"
    (line,) = _beats_lines(verdict)
    parts = [part for part in line.split("; ") if "beats it" in part]
    assert len(parts) == 2
    assert all("flagged: the first slot wins in both orders for 75% of pairs" in p for p in parts)


def test_one_sentence_per_cell_names_its_dominant_failure(summary: Summary) -> None:
    entry = summary.datasets["tldr"]
    lines = failure_sentences(entry, 10)
    labelers = entry.labeler_cells()
    assert len(lines) == len(labelers) == 8
    for cell, line in zip(labelers, lines, strict=True):
        assert line.startswith(f"{cell.labeler} / {cell.variant}: ")
        assert cell.position_bias is not None
        rate = cell.position_bias.same_slot.value or 0.0
        if rate > SAME_SLOT_LIMIT:  # position named first, with its rate
            assert line.split(": ", 1)[1].startswith(
                f"fails mainly because the {cell.position_bias.slot} slot wins in both "
                f"orders for {rate:.0%} of pairs"
            )


def test_failure_checks_each_figure() -> None:
    quiet = Caveats(0.2, "first", 0.3, 0.7, 0.7, 0.0)
    assert quiet.failures() == []
    assert "no dominant failure" in quiet.sentence("x / y")
    undecided = Caveats(0.2, "first", 0.95, 0.7, 0.7, 0.0)
    assert undecided.failures() == ["95% of its P(A) lie within 0.4-0.6"]
    against = Caveats(0.2, "first", 0.3, 0.3, 0.8, 0.0)
    assert against.failures() == [
        "it prefers the shorter response in 70% of pairs with a clear length gap, the humans "
        "the longer in 80%"
    ]
    empty = Caveats(0.9, "second", 0.95, 0.7, 0.7, 0.6)
    assert empty.failures()[0] == "60% of its pairs are unscored"
    assert empty.failures()[1].startswith("the second slot wins")


def test_the_report_pages_carry_the_sentences(tmp_path: Path) -> None:
    from test_report_verdicts import make_run

    from labelbench.report.cli import write_report

    run_dir = make_run(tmp_path / "run", ladder_results(n_items=30))
    paths = write_report(run_dir)
    for name in (REPORT_MD, REPORT_HTML):
        text = paths[name].read_text()
        assert "Why each cell fails" in text
        assert (
            "smollm2-135m / summarization/base-0shot: fails mainly because the first slot" in text
        )


def test_run_prints_the_verdict_last(data_dir: Path, tiny_lm_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from labelbench.cli import app

    config = tmp_path / "run.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            datasets:
              - {{name: tldr, path: openai_tldr_comparisons/batch13.json, sample: 6}}
            labelers:
              - {{name: {tiny_lm_dir}, label: tiny}}
            variants: [summarization/base-0shot]
            output_dir: {tmp_path / "out"}
            analysis: {{bootstrap: 20}}
            """
        )
    )
    args = ["run", str(config), "--data-dir", str(data_dir), "--cache-dir", str(tmp_path / "c")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("tldr: the best cell, tiny / summarization/base-0shot, scores ")
    assert lines[-1].startswith("Winner: tiny / summarization/base-0shot.")
    summary = read_summary(tmp_path / "out" / SUMMARY)
    expected = dataset_verdict("tldr", summary.datasets["tldr"]).sentences()
    assert lines[: len(expected)] == expected
