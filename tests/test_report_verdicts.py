"""The report that judges: size-ladder plots, verdicts against the baselines, winner.json's
baseline fields, parameter counts, and the page at 1200 px."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labelbench.config import RunConfig
from labelbench.report import browser, plots
from labelbench.report.cli import app, write_report
from labelbench.report.summary import ReportSettings, choose_winner, summarize
from labelbench.report.verdict import dataset_verdict, verdicts, winner_versus_baselines
from labelbench.rundir import (
    REPORT_HTML,
    REPORT_MD,
    SUMMARY,
    WINNER,
    LabelerInfo,
    Summary,
    Timing,
    WinnerFile,
    normalize,
    read_summary,
    read_winner,
    write_config,
    write_results,
)

LADDER = {  # name: (parameters, skill, share of pairs where the first slot wins both orders)
    "smollm2-135m": (134_515_008, 0.50, 0.90),
    "gemma3-270m": (268_098_176, 0.55, 0.70),
    "qwen2.5-coder-0.5b": (494_032_768, 0.65, 0.40),
    "qwen2.5-coder-1.5b": (1_543_714_304, 0.78, 0.15),
}
DATASETS = {  # name: (task, variant family, annotators per item)
    "tldr": ("summarization", "summarization", 1),
    "hh-harmless": ("dialogue", "dialogue_harmless", 1),
    "pandalm": ("instruction", "instruction", 3),
}
VARIANTS = ("base-0shot", "detailed-0shot")


def ladder_results(n_items: int = 60, seed: int = 0) -> pd.DataFrame:
    """A made-up size-ladder run: 4 labelers x 2 variants x 3 data sets, skill rising and
    position bias falling with size; PandaLM-like items have three annotators."""
    rng = np.random.default_rng(seed)
    rows = []
    for dataset, (task, family, annotators) in DATASETS.items():
        for i in range(n_items):
            len_a, len_b = (float(v) for v in rng.integers(20, 300, 2))
            lean = 0.75 if len_a > len_b else 0.25
            prefs = [float(rng.random() < lean) for _ in range(annotators)]
            human = sum(prefs) / len(prefs)
            for labeler, (params, skill, first_bias) in LADDER.items():
                for k, variant in enumerate(VARIANTS):
                    right = rng.random() < skill + 0.03 * k
                    says_a = right == (human > 0.5)
                    if rng.random() < first_bias:
                        p_ab, p_ba = 0.8, 0.3  # first slot wins in both orders
                    else:
                        p_ab = p_ba = 0.7 if says_a else 0.3
                    rows.append(
                        {
                            "dataset": dataset,
                            "labeler": labeler,
                            "variant": f"{family}/{variant}",
                            "item_id": f"{dataset}-{i}",
                            "group_id": f"{dataset}-g{i // 2}",
                            "task": task,
                            "ai_pref_a": 0.7 if says_a else 0.3,
                            "ai_pref_a_ab": p_ab,
                            "ai_pref_a_ba": p_ba,
                            "human_pref_a": human,
                            "annotator_prefs": prefs,
                            "len_a": len_a,
                            "len_b": len_b,
                            "prompt_tokens": 400.0,
                            "gen_tokens": 0.0,
                            "seconds": 0.1,
                            "labeler_params": params,
                        }
                    )
    return pd.DataFrame(rows)


def make_run(run_dir: Path, frame: pd.DataFrame, labelers: list[dict] | None = None) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    write_results(frame, run_dir)
    names = list(dict.fromkeys(frame["labeler"]))
    settings = {
        "datasets": [{"name": n, "path": f"{n}.json"} for n in dict.fromkeys(frame["dataset"])],
        "labelers": labelers or [{"name": n} for n in names],
        "variants": list(dict.fromkeys(frame["variant"])),
        "output_dir": str(run_dir),
        "analysis": {"bootstrap": 200},
    }
    write_config(RunConfig.model_validate(settings), run_dir)
    return run_dir


@pytest.fixture(scope="module")
def ladder_summary() -> Summary:
    summary, _ = summarize(normalize(ladder_results(), "ladder"), ReportSettings(n_boot=200))
    return summary


@pytest.fixture(scope="module")
def ladder_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = make_run(tmp_path_factory.mktemp("ladder") / "run", ladder_results())
    write_report(run_dir)
    return run_dir


# ---------------------------------------------------------------------------- plots


@pytest.mark.parametrize(
    ("figure", "baselines"),
    [
        (plots.alignment_vs_size, {"always-longer", "always-first"}),
        (plots.same_slot_vs_size, set()),  # rule baselines have no A/B orders
    ],
)
def test_ladder_plots_name_every_mark_without_overlap(
    ladder_summary: Summary, figure, baselines: set[str]
) -> None:
    fig = figure(ladder_summary)
    try:
        assert plots.layout_problems(fig) == []
        texts = [t for _, t in plots._texts(fig)]
        legends = [t for t in texts if hasattr(t, "get_texts")]
        strings = {t.get_text() for t in texts if not hasattr(t, "get_texts")}
        entries = {t.get_text() for legend in legends for t in legend.get_texts()}
        # every line is a variant or a baseline named in the legend; every x tick a labeler
        assert set(VARIANTS) | baselines | {plots.PALM2_SOURCE} <= entries
        for labeler in LADDER:
            assert any(s.startswith(labeler + "\n") for s in strings), labeler
        # three data sets, one row each; the PaLM 2 strip only beside TL;DR (summarization)
        titles = [a.get_title() for a in fig.axes if a.axison]
        assert (
            sum(t.startswith("tldr:") for t in titles)
            == sum(t.startswith("pandalm:") for t in titles)
            >= 1
        )
        assert titles.count("RLAIF\nreference") == 1
        # the human ceiling is a line only where it rests on >= 30 pairs (PandaLM's 60 items)
        ceilings = [e for e in entries if e.startswith("human ceiling")]
        assert ceilings == [] or all("n=60" in e for e in ceilings)
    finally:
        plots._pyplot().close(fig)


def test_palm2_reference_points_are_the_papers_figures(ladder_summary: Summary) -> None:
    fig = plots.alignment_vs_size(ladder_summary)
    strip = next(a for a in fig.axes if a.get_title() == "RLAIF\nreference")
    line = next(line for line in strip.get_lines() if line.get_label() == plots.PALM2_SOURCE)
    assert list(line.get_ydata()) == [0.627, 0.738, 0.780]
    assert [t.get_text() for t in strip.get_xticklabels()] == ["XS", "S", "L"]
    plots._pyplot().close(fig)
    fig = plots.same_slot_vs_size(ladder_summary)
    strip = next(a for a in fig.axes if a.get_title() == "RLAIF\nreference")
    line = next(line for line in strip.get_lines() if line.get_label() == plots.PALM2_SOURCE)
    assert list(line.get_ydata()) == [0.56, 0.21, 0.18]
    plots._pyplot().close(fig)


def test_layout_check_finds_overlaps_and_missing_labels() -> None:
    plt = plots._pyplot()
    fig, axis = plt.subplots(figsize=(3, 2))
    axis.set_title("t")
    axis.text(0.5, 0.5, "a long label", transform=axis.transAxes)
    axis.text(0.52, 0.5, "another label", transform=axis.transAxes)
    axis.text(1.3, 0.5, "off the edge", transform=axis.transAxes)
    problems = plots.layout_problems(fig)
    plt.close(fig)
    assert any("overlaps" in p for p in problems)
    assert any("cut off" in p for p in problems)
    assert any("no x label" in p for p in problems)
    assert any("no y label" in p for p in problems)


def test_ladder_plots_need_two_labelers_of_known_size(ladder_summary: Summary) -> None:
    one = normalize(ladder_results(20).query("labeler == 'gemma3-270m'"), "x")
    summary, _ = summarize(one, ReportSettings(n_boot=20))
    assert plots.alignment_vs_size(summary) is None
    assert plots.same_slot_vs_size(summary) is None
    unknown = ladder_results(20)
    unknown.loc[unknown.labeler == "smollm2-135m", "labeler_params"] = math.nan
    summary, _ = summarize(normalize(unknown, "x"), ReportSettings(n_boot=20))
    assert summary.labelers["smollm2-135m"] == LabelerInfo(parameters=None)
    fig = plots.alignment_vs_size(summary)
    assert "parameter count unknown: smollm2-135m" in fig._suptitle.get_text()
    assert plots.layout_problems(fig) == []
    plots._pyplot().close(fig)


# ---------------------------------------------------------------------------- parameters


def test_config_states_parameters_of_a_served_labeler(tmp_path: Path) -> None:
    frame = ladder_results(10).drop(columns=["labeler_params"])
    labelers = [{"name": n} for n in LADDER]
    labelers[3] = {"name": "qwen2.5-coder-1.5b", "parameters": 1_543_714_304}
    run_dir = make_run(tmp_path / "run", frame, labelers)
    write_report(run_dir)
    summary = read_summary(run_dir / SUMMARY)
    assert {name: info.parameters for name, info in summary.labelers.items()} == {
        "smollm2-135m": None,
        "gemma3-270m": None,
        "qwen2.5-coder-0.5b": None,
        "qwen2.5-coder-1.5b": 1_543_714_304,
    }
    assert "qwen2.5-coder-1.5b (1.54B parameters)" in (run_dir / "report.md").read_text()


def test_parameters_must_be_positive(tmp_path: Path) -> None:
    from labelbench.config import parse_config
    from labelbench.errors import InputError

    text = (
        "datasets: [{name: d, path: d.json}]\n"
        "labelers:\n  - {name: x, backend: http, url: 'http://h', parameters: 0}\n"
        f"variants: [v]\noutput_dir: {tmp_path}\n"
    )
    with pytest.raises(InputError) as caught:
        parse_config(text, tmp_path / "c.yaml", variants=lambda: ["v"], builtins=lambda: [])
    assert caught.value.field == "labelers[0].parameters"
    assert caught.value.line == 3


# ---------------------------------------------------------------------------- verdicts


def longer_wins_results(n_items: int = 80, seed: int = 1) -> pd.DataFrame:
    """Humans always prefer the longer response; two labelers right only 60% of the time."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_items):
        len_a, len_b = (100.0, 50.0) if rng.random() < 0.5 else (50.0, 100.0)
        human = 1.0 if len_a > len_b else 0.0
        for labeler in ("small", "large"):
            for variant in ("s/a", "s/b"):
                right = rng.random() < 0.6
                rows.append(
                    {
                        "dataset": "tldr",
                        "labeler": labeler,
                        "variant": variant,
                        "item_id": str(i),
                        "group_id": str(i // 2),
                        "ai_pref_a": 0.8 if right == (human == 1.0) else 0.2,
                        "human_pref_a": human,
                        "len_a": len_a,
                        "len_b": len_b,
                    }
                )
    return pd.DataFrame(rows)


def test_verdict_when_always_longer_beats_every_labeler(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "run", longer_wins_results())
    write_report(run_dir)
    summary = read_summary(run_dir / SUMMARY)
    verdict = dataset_verdict("tldr", summary.datasets["tldr"])
    longer = next(v for v in verdict.versus if v.baseline == "always-longer")
    assert longer.baseline_value == 1.0
    assert longer.high is not None and longer.high < 0 and longer.beats is False
    best = max(c.accuracy or 0.0 for c in summary.datasets["tldr"].labeler_cells())
    sentence = next(s for s in verdict.sentences() if s.startswith("No labeler beats"))
    assert sentence.startswith(
        f"No labeler beats always-longer on tldr: the best, {verdict.cell()}, scores "
        f"{best:.2f} against 1.00 (difference \u2212"
    )
    assert "always-longer" in verdict.unbeaten
    for name in (REPORT_MD, REPORT_HTML):
        assert "No labeler beats always-longer on tldr" in (run_dir / name).read_text()
    winner = read_winner(run_dir / WINNER)
    assert winner.beats is not None and winner.versus_baselines is not None
    assert winner.beats["always-longer"] is False
    versus = winner.versus_baselines["tldr"]["always-longer"]
    assert versus.beats is False and versus.outcome == "loses"
    assert (versus.difference.high or 0) < 0 < versus.difference.n
    # the difference is the paired one: accuracy minus always-longer's, on the same 80 items
    cell = summary.datasets["tldr"].cell(winner.labeler or "", winner.variant or "")
    assert cell is not None and cell.accuracy is not None
    assert versus.difference.value == pytest.approx(cell.accuracy - 1.0, abs=1e-6)
    assert versus.difference.n == 80


def test_verdict_when_a_labeler_beats_the_baselines(ladder_summary: Summary) -> None:
    verdict = dataset_verdict("pandalm", ladder_summary.datasets["pandalm"])
    assert verdict.labeler == "qwen2.5-coder-1.5b"
    outcomes = {v.baseline: v.outcome for v in verdict.versus}
    assert outcomes["always-first"] == "beats"
    assert not any(s.startswith("No labeler beats always-first") for s in verdict.sentences())
    # the ceiling rests on the 60 three-annotator pairs and is stated with its n
    ceiling = next(v for v in verdict.versus if v.baseline == "human ceiling")
    assert ceiling.baseline_n == ceiling.n == 60
    assert "human ceiling" in verdict.sentences()[0] and "n=60" in verdict.sentences()[0]
    # one annotator per TL;DR item: no ceiling, stated as n/a
    tldr = dataset_verdict("tldr", ladder_summary.datasets["tldr"])
    ceiling = next(v for v in tldr.versus if v.baseline == "human ceiling")
    assert ceiling.outcome == "n/a" and ceiling.beats is None
    assert tldr.sentences()[0].endswith("; human ceiling n/a, n=0: n/a.")


def test_missing_intervals_read_n_a(ladder_summary: Summary) -> None:
    """A statistic that cannot be estimated (None) shows 'n/a', and winner.json says None."""
    summary = ladder_summary.model_copy(deep=True)
    for entry in summary.datasets.values():
        for cell in entry.labeler_cells():
            assert cell.vs_baselines is not None
            block = cell.vs_baselines["always-first"].difference
            block.low = block.high = None
    found = verdicts(summary)
    assert all(
        v.outcome == "n/a" and "[n/a]" in v.interval()
        for verdict in found
        for v in verdict.versus
        if v.baseline == "always-first"
    )
    winner = WinnerFile(labeler="qwen2.5-coder-1.5b", variant="summarization/detailed-0shot")
    fields = winner_versus_baselines(winner, summary)
    assert fields.beats is not None and fields.beats["always-first"] is None
    assert list(fields.versus_baselines or {}) == ["tldr"]


# ---------------------------------------------------------------------------- the page


def test_report_command_regenerates_from_a_run_folder(ladder_run: Path) -> None:
    from labelbench.cli import run_app

    (ladder_run / "report.html").unlink()
    (ladder_run / "plots" / "alignment_vs_size.png").unlink()
    (ladder_run / "plots" / "position_bias_by_size.png").write_bytes(b"an older report's figure")
    assert run_app(app, [str(ladder_run)]) == 0
    assert not (ladder_run / "plots" / "position_bias_by_size.png").exists()
    assert (ladder_run / "report.html").stat().st_size > 0
    assert (ladder_run / "plots" / "alignment_vs_size.png").stat().st_size > 0
    assert (ladder_run / "plots" / "same_slot_vs_size.png").stat().st_size > 0
    markdown = (ladder_run / "report.md").read_text()
    assert "## Verdicts" in markdown and "PaLM 2 sizes" not in markdown  # no invented sizes
    assert "their parameter counts are not public" in markdown


def test_page_at_1200_px_fits_and_every_figure_is_titled(ladder_run: Path, tmp_path: Path) -> None:
    if browser.find_chromium() is None:
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    page = browser.check_layout(ladder_run / "report.html", tmp_path / "page.png", width=1200)
    assert page.console == []
    assert page.tables > 0 and page.too_wide == []  # no table scrolls sideways at 1200 px
    assert page.figures == 11 and page.untitled == []  # a visible title above every plot
    assert not page.page_scrolls
    # 0-shot variants only: no exemplar or temperature trend to draw, the rest are images
    # (including the three soft-label aggregation figures: both orders were scored)
    assert page.images_shown == page.images_total == 9
    assert page.font_px >= 11


def test_a_served_labeler_takes_its_parameter_count_from_the_config() -> None:
    from labelbench.config import LabelerSpec
    from labelbench.labeling.labeler import open_labeler

    spec = LabelerSpec(name="m", backend="http", url="http://127.0.0.1:9", parameters=1234)
    assert open_labeler(spec).parameters == 1234
    assert open_labeler(spec.model_copy(update={"parameters": None})).parameters is None


def test_labelers_of_one_size_share_a_tick() -> None:
    """Two precisions of one model have the same parameter count: one tick names both."""
    frame = ladder_results(20)
    twin = frame[frame.labeler == "qwen2.5-coder-1.5b"].assign(labeler="qwen-1.5b-bf16")
    summary, _ = summarize(normalize(pd.concat([frame, twin]), "x"), ReportSettings(n_boot=20))
    fig = plots.same_slot_vs_size(summary)
    ticks = {t.get_text() for _, t in plots._texts(fig) if hasattr(t, "get_text")}
    assert "qwen-1.5b-bf16 / qwen2.5-coder-1.5b\n1.54B" in ticks
    assert plots.layout_problems(fig) == []
    plots._pyplot().close(fig)


@pytest.mark.parametrize("data", ["ladder", "CoT and self-consistency", "model folders"])
def test_every_report_plot_is_labelled_without_clipped_or_overlapping_text(data: str) -> None:
    from test_report import synthetic_results

    frame = ladder_results() if data == "ladder" else synthetic_results()
    if data == "model folders":  # labelers named by long local paths
        folder = "/home/someone/experiments/checkpoints/2026-11-30/labeler-"
        frame["labeler"] = folder + frame["labeler"]
    summary, timing = summarize(normalize(frame, "x"), ReportSettings(n_boot=20))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        figures = {name: plots.draw(name, summary, timing) for name in plots.PLOTS}
        drawn = {name: fig for name, fig in figures.items() if fig is not None}
        problems = {name: plots.layout_problems(fig) for name, fig in drawn.items()}
        smallest = {name: plots.smallest_text_px(fig) for name, fig in drawn.items()}
    for fig in drawn.values():
        plots._pyplot().close(fig)
    assert {name: found for name, found in problems.items() if found} == {}
    # legends, ticks and notes at least 11 px on a page 1200 px wide (issue 27: 6-7 px)
    assert {name: px for name, px in smallest.items() if px < plots.MIN_TEXT_PX} == {}
    # + the aggregation figures: reliability and coverage everywhere, the learning curve where a
    # cell has at least 50 human-labelled pairs (the ladder's)
    assert len(drawn) == (9 if data == "ladder" else 10)
    assert not [w for w in caught if "constrained_layout not applied" in str(w.message)]


def test_a_winner_that_loses_to_a_baseline_is_flagged_where_it_is_used(tmp_path: Path) -> None:
    """The report says the best cell is not a labeler to train with, and loading its winner.json
    (``rlaif label --winner``, ``labelbench serve --winner``) warns in one line."""
    from labelbench.labeling.labeler import load_winner
    from labelbench.report.render import winner_against_baselines
    from labelbench.rundir import write_file

    winner = WinnerFile.model_validate(
        {
            "labeler": "small",
            "labeler_spec": {"name": "smollm2-135m", "label": "small"},
            "variant": "summarization/base-0shot",
            "beats": {"always-longer": False, "always-first": True, "human ceiling": False},
        }
    )
    sentence = winner_against_baselines(winner)
    assert "It does not beat always-longer: the best cell of this run" in sentence
    path = tmp_path / WINNER
    write_file(winner, path)
    loaded = load_winner(path)
    assert loaded.loses_to == ("always-longer",)
    assert loaded.warning().startswith("warning: small / summarization/base-0shot does not")
    winner = winner.updated(
        beats={"always-longer": True, "always-first": True, "human ceiling": False}
    )
    write_file(winner, path)
    assert load_winner(path).warning() is None
    assert "does not beat" not in winner_against_baselines(winner)


@pytest.mark.parametrize(("pairs", "defined"), [(4, False), (40, True)])
def test_the_human_ceiling_is_compared_only_on_30_pairs_or_more(pairs: int, defined: bool) -> None:
    import pandas as pd

    from labelbench.report.summary import ReportSettings, versus_ceiling

    keys = [f"p{i}" for i in range(pairs)]
    rows = pd.DataFrame(
        {
            "item_id": keys,
            "pair_key": keys,
            "human_pref_a": [1.0] * pairs,
            "ai_pref_a": [0.9 if i % 3 else 0.2 for i in range(pairs)],
        }
    )
    ceiling = pd.DataFrame({"pair_key": keys, "group_id": keys, "score": [1.0] * pairs})
    result = versus_ceiling(rows, ceiling, ReportSettings(n_boot=50), "l", "v")
    assert (result["difference"]["value"] is not None) == defined
    if not defined:
        assert "only 4 multiply-annotated pairs" in result["difference"]["reason"]


def test_a_tie_on_accuracy_goes_the_same_way_in_winner_json_and_the_verdicts() -> None:
    """Two cells of equal accuracy, the first in the table using more tokens per pair (issue:
    winner.json named the cheaper one, the report's Verdicts line the first of the tied)."""

    made, _ = summarize(normalize(ladder_results(6), "x"), ReportSettings(n_boot=20))
    summary = made.model_copy(update={"datasets": {"tldr": made.datasets["tldr"]}}, deep=True)
    entry = summary.datasets["tldr"]
    template = entry.labeler_cells()[0]

    def cell(labeler: str, tokens: float):
        made = template.model_copy(deep=True, update={"labeler": labeler})
        made.alignment.accuracy.value = 0.75
        made.cost.tokens_per_pair = tokens
        return made

    entry.cells = [cell("a-big", 900.0), cell("b-small", 300.0)]
    winner = choose_winner(summary, Timing(), ReportSettings())
    (verdict,) = verdicts(summary)
    assert winner.labeler == "b-small"
    assert winner.by_dataset is not None and winner.by_dataset["tldr"].labeler == "b-small"
    assert verdict.labeler == "b-small"


def test_a_column_of_dashes_only_is_left_out_of_the_report_tables() -> None:
    from labelbench.report.render import _filled

    columns, rows = _filled(
        ("labeler", "variant", "accuracy", "tie agreement"),
        [["a", "v", "0.6 [0.5, 0.7]", "–"], ["b", "v", "–", "–"]],
    )
    assert columns == ["labeler", "variant", "accuracy"]
    assert rows == [["a", "v", "0.6 [0.5, 0.7]"], ["b", "v", "–"]]
    columns, rows = _filled(("labeler", "variant", "x"), [["–", "–", "–"]])
    assert columns == ["labeler", "variant"]  # the row's names stay
