"""The report: files written, figures that match the metrics, reproducibility, the HTML page."""

from __future__ import annotations

import base64
import json
import math
import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labelbench.config import CostBudget, RunConfig
from labelbench.errors import InputError
from labelbench.report import browser
from labelbench.report.cli import app, write_report
from labelbench.report.summary import ReportSettings, choose_winner, summarize
from labelbench.rundir import (
    CONFIG,
    REPORT_HTML,
    REPORT_MD,
    RESULTS,
    RUN_RECORD,
    SUMMARY,
    TIMING,
    WINNER,
    normalize,
    read_results,
    read_run_record,
    read_summary,
    read_timing,
    read_winner,
    write_config,
    write_results,
)

VARIANTS = [  # (name, exemplars, chain of thought, samples, temperature, skill)
    ("s/base-0shot", 0, False, 1, 0.0, 0.55),
    ("s/base-2shot", 2, False, 1, 0.0, 0.65),
    ("s/cot-sc4-t0.3", 0, True, 4, 0.3, 0.7),
    ("s/cot-sc4-t0.7", 0, True, 4, 0.7, 0.75),
]
LABELERS = {"small": 135e6, "large": 270e6}


def synthetic_results(n_items: int = 40, seed: int = 0) -> pd.DataFrame:
    """A made-up run: TL;DR-like (one annotator, confidence) and PandaLM-like (three)."""
    rng = np.random.default_rng(seed)
    rows = []
    for dataset in ("tldr", "pandalm"):
        for i in range(n_items):
            len_a, len_b = (float(v) for v in rng.integers(20, 200, 2))
            if dataset == "tldr":
                prefs = [float(rng.random() < (0.7 if len_a > len_b else 0.3))]
                confidence = float(rng.choice([1, 2, 3, 4, 6, 7, 8, 9]))
            else:
                prefs = [float(v) for v in rng.choice([0.0, 0.5, 1.0], size=3)]
                confidence = math.nan
            human = sum(prefs) / len(prefs)
            judge = float(rng.random() < 0.6)
            for labeler, params in LABELERS.items():
                for variant, shots, cot, samples, temperature, skill in VARIANTS:
                    right = rng.random() < skill + (0.05 if labeler == "large" else 0)
                    says_a = right == (human >= 0.5)
                    p_ab = 0.8 if says_a else 0.3
                    p_ba = 0.7 if (says_a or rng.random() < 0.2) else 0.2
                    p = (p_ab + p_ba) / 2 if rng.random() > 0.05 else math.nan
                    rows.append(
                        {
                            "dataset": dataset,
                            "labeler": labeler,
                            "variant": variant,
                            "item_id": f"{dataset}-{i}",
                            "group_id": f"{dataset}-post{i // 2}",
                            "pair_key": f"{dataset}-pair{i // 2 if dataset == 'tldr' else i}",
                            "pair_flipped": bool(i % 4 == 1),
                            "ai_pref_a": p,
                            "ai_pref_a_ab": p_ab,
                            "ai_pref_a_ba": p_ba,
                            "human_pref_a": human,
                            "annotator_prefs": prefs,
                            "confidence": confidence,
                            "len_a": len_a,
                            "len_b": len_b,
                            "prompt_tokens": 300 + 200 * shots + (0 if labeler == "small" else 1),
                            "gen_tokens": 60 * samples if cot else 0,
                            "seconds": float(rng.random()),
                            "n_exemplars": shots,
                            "cot": cot,
                            "sc_n": samples,
                            "temperature": temperature,
                            "labeler_params": params,
                            "baseline_judge_pref_a": judge if dataset == "pandalm" else math.nan,
                        }
                    )
    return pd.DataFrame(rows)


def make_run(run_dir: Path, frame: pd.DataFrame, **config: object) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    write_results(frame, run_dir)
    settings = {
        "datasets": [{"name": "tldr", "path": "x.json"}, {"name": "pandalm", "path": "y.json"}],
        "labelers": [{"name": name} for name in LABELERS],
        "variants": [v[0] for v in VARIANTS],
        "seed": 5,
        "output_dir": str(run_dir),
        "analysis": {"bootstrap": 200},
        **config,
    }
    write_config(RunConfig.model_validate(settings), run_dir)
    return run_dir


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = make_run(tmp_path_factory.mktemp("run") / "run", synthetic_results())
    write_report(run_dir)
    return run_dir


def test_report_writes_every_file(report_dir: Path) -> None:
    for name in (SUMMARY, TIMING, WINNER, REPORT_MD, REPORT_HTML):
        assert (report_dir / name).stat().st_size > 0
    plots = sorted(p.stem for p in (report_dir / "plots").glob("*.png"))
    assert plots == sorted(
        [
            "alignment_vs_size",
            "same_slot_vs_size",
            "alignment_by_variant",
            "position_bias_by_variant",
            "alignment_vs_exemplars",
            "self_consistency_vs_temperature",
            "reliability",
            "alignment_vs_cost",
            "aggregation_reliability",
            "agreement_vs_coverage",
        ]
    )
    markdown = (report_dir / REPORT_MD).read_text()
    for target in re.findall(r"\]\((plots/[^)]+)\)", markdown):
        assert (report_dir / target).is_file()
    # every figure applies but the learning curve: no cell here has 50 human-labelled pairs
    assert markdown.count("Not applicable") == 1
    assert "learning curves (best cell)\n\nNot applicable" in markdown


def test_html_is_self_contained(report_dir: Path) -> None:
    html = (report_dir / REPORT_HTML).read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 10  # every figure but the learning curve (too few labels here)
    for data in images:
        assert base64.b64decode(data).startswith(b"\x89PNG")
    assert not re.search(r'(src|href)="(?!data:|#)', html)  # in-page anchors only


def test_summary_figures_match_the_table(report_dir: Path) -> None:
    summary = read_summary(report_dir / SUMMARY)
    frame = read_results(report_dir)
    rows = frame[(frame.dataset == "tldr") & (frame.labeler == "large")]
    rows = rows[rows.variant == "s/base-2shot"]
    p, h = rows.ai_pref_a.to_numpy(), rows.human_pref_a.to_numpy()
    usable = ~np.isnan(p) & (h != 0.5)
    hits = np.where(p == 0.5, 0.5, ((p > 0.5) == (h > 0.5)).astype(float))  # AI tie: half
    expected = np.mean(hits[usable])
    cell = summary.datasets["tldr"].cell("large", "s/base-2shot")
    assert cell is not None and cell.vs_reference is not None
    assert cell.alignment.accuracy.value == pytest.approx(expected, abs=1e-6)
    assert cell.cost.tokens_per_pair == pytest.approx(701.0)
    assert cell.vs_reference.reference == "s/base-0shot"
    assert "seconds" not in json.dumps(summary.to_json())
    baselines = {c.variant for c in summary.datasets["pandalm"].baseline_cells()}
    assert baselines == {"always-first", "always-longer", "random", "judge"}
    ceiling = summary.datasets["pandalm"].human_ceiling
    assert ceiling is not None and ceiling.n > 0
    timing = read_timing(report_dir / TIMING)
    assert (timing.cells["tldr"][0].seconds or 0) > 0


def test_baselines_on_a_hand_made_table() -> None:
    frame = normalize(
        pd.DataFrame(
            {
                "dataset": "d",
                "labeler": "m",
                "variant": "v",
                "item_id": ["1", "2", "3", "4"],
                "group_id": ["1", "2", "3", "4"],
                "ai_pref_a": [0.9, 0.9, 0.9, 0.9],
                "human_pref_a": [1.0, 0.0, 0.0, 0.5],
                "len_a": [100, 100, 50, 10],
                "len_b": [50, 50, 100, 20],
            }
        ),
        "hand",
    )
    summary, _ = summarize(frame, ReportSettings(n_boot=50))
    cells = {c.variant: c for c in summary.datasets["d"].cells}
    # item 4 is a human tie. Labeler (always A): right on 1 only -> 1/3.
    assert cells["v"].accuracy == pytest.approx(1 / 3, abs=1e-6)
    assert cells["always-first"].accuracy == pytest.approx(1 / 3, abs=1e-6)
    # always-longer: picks A, A, B -> right on 1 and 3 -> 2/3
    assert cells["always-longer"].accuracy == pytest.approx(2 / 3, abs=1e-6)
    assert summary.datasets["d"].human_ties == 1
    assert summary.datasets["d"].human_ceiling is None


def test_same_config_twice_gives_identical_summary(tmp_path: Path, report_dir: Path) -> None:
    frame = synthetic_results()
    shuffled = frame.sample(frac=1.0, random_state=1)  # row order must not matter
    again = make_run(tmp_path / "again", shuffled.assign(seconds=shuffled.seconds * 3))
    write_report(again)
    for name in (SUMMARY, WINNER):
        assert (again / name).read_bytes() == (report_dir / name).read_bytes()
    assert (again / TIMING).read_bytes() != (report_dir / TIMING).read_bytes()


def test_winner_respects_the_cost_budget(report_dir: Path) -> None:
    summary = read_summary(report_dir / SUMMARY)
    timing = read_timing(report_dir / TIMING)
    free = choose_winner(summary, timing, ReportSettings())
    assert read_winner(report_dir / WINNER).variant == free.variant
    scores: dict[tuple[str, str], list[float]] = {}
    for entry in summary.datasets.values():
        for cell in entry.labeler_cells():
            scores.setdefault((cell.labeler, cell.variant), []).append(cell.accuracy or 0.0)
    best = max(scores, key=lambda k: sum(scores[k]) / len(scores[k]))
    assert (free.labeler, free.variant) == best
    # 0-shot without CoT reads 300 (small) / 301 (large) tokens per pair: a 300.5 budget
    # leaves only the small labeler's base-0shot
    tight = choose_winner(
        summary, timing, ReportSettings(cost_budget=CostBudget(max_tokens_per_pair=300.5))
    )
    assert (tight.labeler, tight.variant, tight.candidates) == ("small", "s/base-0shot", 1)
    none = choose_winner(
        summary, timing, ReportSettings(cost_budget=CostBudget(max_tokens_per_pair=1))
    )
    assert none.labeler is None and none.candidates == 0


def test_missing_column_and_missing_results(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        write_report(tmp_path)
    assert "no results" in caught.value.message
    frame = synthetic_results(4).drop(columns=["human_pref_a"])
    frame.to_json(tmp_path / "results.jsonl", orient="records", lines=True)
    with pytest.raises(InputError) as caught:
        read_results(tmp_path)
    assert caught.value.field == "human_pref_a"


def test_jsonl_results_and_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from labelbench.cli import run_app

    frame = synthetic_results(6)
    frame.to_json(tmp_path / "results.jsonl", orient="records", lines=True)
    assert len(read_results(tmp_path)) == len(frame)
    assert run_app(app, [str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such folder" in err[0]


def test_report_that_cannot_be_written_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A run folder where the report cannot be written (here summary.json is a folder; a
    read-only file fails the same way): one line naming the file, exit 2 (issue: a
    PermissionError or IsADirectoryError traceback, exit 1)."""
    from labelbench.cli import run_app

    run_dir = make_run(tmp_path / "run", synthetic_results(6))
    (run_dir / SUMMARY).mkdir()
    assert run_app(app, [str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert line.startswith(f"error: {run_dir / SUMMARY}: cannot write the report")


@pytest.mark.parametrize(
    ("name", "content"),
    [(CONFIG, b"\xff\xfedatasets"), (RUN_RECORD, b"{truncated"), (RUN_RECORD, b"\xff")],
)
def test_unreadable_run_files_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, name: str, content: bytes
) -> None:
    """A run folder's config.yaml saved in another encoding, or a truncated run.json: one line
    naming the file, exit 2 (issue: UnicodeDecodeError or JSONDecodeError traceback, exit 1)."""
    from labelbench.cli import run_app

    run_dir = make_run(tmp_path / "run", synthetic_results(6))
    (run_dir / name).write_bytes(content)
    assert run_app(app, [str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert re.match(rf"error: {re.escape(str(run_dir / name))}(:\d+)?: ", line), line


def test_published_judge_columns_become_baselines(data_dir: Path) -> None:
    from labelbench.data.judges import load_pandalm_judge

    gpt = load_pandalm_judge(data_dir / "pandalm" / "gpt-3.5-turbo-testset-v1.json")
    frame = synthetic_results(4)
    frame = frame[frame.dataset == "pandalm"].copy()
    frame["baseline_gpt35_pref_a"] = [gpt.get(i) for i in frame["item_id"]]
    summary, _ = summarize(normalize(frame, "x"), ReportSettings(n_boot=20))
    cells = {c.variant: c for c in summary.datasets["pandalm"].cells}
    assert {"gpt35", "judge"} <= set(cells)
    items = frame.drop_duplicates("item_id")
    hits = [
        0.5 if g == 0.5 else float((g > 0.5) == (h > 0.5))
        for g, h in zip(items.baseline_gpt35_pref_a, items.human_pref_a, strict=True)
        if g is not None and not math.isnan(g) and h != 0.5
    ]
    accuracy = cells["gpt35"].alignment.accuracy
    assert accuracy.n == len(hits)
    assert accuracy.value == pytest.approx(sum(hits) / len(hits), abs=1e-6)


def test_html_report_in_headless_chromium(report_dir: Path, tmp_path: Path) -> None:
    if browser.find_chromium() is None:
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    result = browser.check_page(report_dir / REPORT_HTML, tmp_path / "report.png")
    assert result.console == []
    assert result.images_total == 10  # of 11 figures, those that apply to this run
    assert result.images_shown == 10
    assert result.screenshot.stat().st_size > 10_000


def test_real_tldr_and_pandalm_baselines(data_dir: Path) -> None:
    """On batch13, always-longer agrees with 70.8% of the human labels (the figure quoted in the
    benchmark's issue: equal lengths count half); PandaLM's annotators agree with each other."""
    from labelbench.data.loaders import load_comparisons
    from labelbench.rundir import item_columns

    rows = []
    for name, path, fmt in [
        ("tldr", "openai_tldr_comparisons/batch13.json", "openai-comparisons"),
        ("pandalm", "pandalm/testset-v1.json", "pandalm"),
    ]:
        for comparison in load_comparisons(data_dir / path, fmt):
            rows.append(
                {"dataset": name, "labeler": "coin", "variant": "half", "ai_pref_a": 0.5}
                | item_columns(comparison)
            )
    summary, _ = summarize(normalize(pd.DataFrame(rows), "real"), ReportSettings(n_boot=20))
    tldr = {c.variant: c for c in summary.datasets["tldr"].cells}
    longer = tldr["always-longer"]
    assert longer.alignment.accuracy.n == 1097
    assert longer.accuracy == pytest.approx(0.708, abs=5e-4)
    assert longer.length_controlled.balanced.value == pytest.approx(0.5)
    assert tldr["half"].accuracy == pytest.approx(0.5)
    # repeated TL;DR pairs (several workers) give a ceiling; PandaLM's three annotators too
    tldr_ceiling = summary.datasets["tldr"].human_ceiling
    pandalm_ceiling = summary.datasets["pandalm"].human_ceiling
    assert tldr_ceiling is not None and tldr_ceiling.n > 0
    assert pandalm_ceiling is not None and (pandalm_ceiling.value or 0) > 0.8


def test_progress_hears_of_every_cell() -> None:
    from labelbench.report.summary import count_cells

    frame = normalize(synthetic_results(6), "x")
    heard: list[str] = []
    summary, _ = summarize(frame, ReportSettings(n_boot=20), heard.append)
    cells = sum(len(entry.cells) for entry in summary.datasets.values())
    # 2 data sets x 2 labelers x 4 variants + 3 rule baselines each + PandaLM's judge
    assert cells == 16 + 6 + 1
    # and one step per data set for its aggregation table
    assert count_cells(frame) == len(heard) == cells + len(summary.datasets)


def test_markdown_names_winner_and_budget(report_dir: Path) -> None:
    from labelbench.report.render import render_markdown

    summary = read_summary(report_dir / SUMMARY)
    timing = read_timing(report_dir / TIMING)
    budget = ReportSettings(cost_budget=CostBudget(max_tokens_per_pair=300.5))
    winner = choose_winner(summary, timing, budget)
    text = render_markdown("t", summary, timing, winner, dict.fromkeys(["reliability"]))
    assert "**small** with **s/base-0shot**" in text
    assert "cost budget max tokens per pair <= 300.5" in text
    assert "Not applicable to this run." in text
    nobody = choose_winner(
        summary, timing, ReportSettings(cost_budget=CostBudget(max_tokens_per_pair=1))
    )
    assert "No winner: no labeler x variant qualifies." in render_markdown(
        "t", summary, timing, nobody, {}
    )


def test_a_pipe_in_a_name_keeps_the_markdown_tables_in_shape() -> None:
    """A labeler label or data set name holding '|' (issue: it split its cell in report.md,
    shifting every figure after it into the next column)."""
    from labelbench.report.render import render_markdown

    frame = synthetic_results(6)
    frame["labeler"] = frame["labeler"].replace("small", "small | v2")
    summary, timing = summarize(normalize(frame, "x"), ReportSettings(n_boot=20))
    winner = choose_winner(summary, timing, ReportSettings())
    text = render_markdown("t", summary, timing, winner, {})
    assert "small \\| v2" in text
    for block in re.findall(r"(?:^\|.*\n?)+", text, flags=re.MULTILINE):
        widths = {len(re.split(r"(?<!\\)\|", line)) for line in block.strip().splitlines()}
        assert len(widths) == 1, block


def test_trend_plots_follow_the_shipped_variant_names() -> None:
    from labelbench.report import plots

    names = {
        "s/base-0shot": "summarization/detailed-0shot",
        "s/base-2shot": "summarization/detailed-2shot",
        "s/cot-sc4-t0.3": "summarization/detailed-0shot-cot",
        "s/cot-sc4-t0.7": "summarization/detailed-0shot-cot-sc4-t0.7",
    }
    frame = synthetic_results(6)
    frame["variant"] = frame["variant"].map(names)
    greedy = frame["variant"] == "summarization/detailed-0shot-cot"
    frame.loc[greedy, ["sc_n", "temperature"]] = [1, 0.0]
    summary, _ = summarize(normalize(frame, "x"), ReportSettings(n_boot=20))
    # detailed-0shot -> detailed-2shot is a line; greedy CoT (T=0) -> its x4 samples at T=0.7
    for draw in (plots.alignment_vs_exemplars, plots.self_consistency_vs_temperature):
        fig = draw(summary)
        assert fig is not None
        plots._pyplot().close(fig)
    no_cot = summary.model_copy(deep=True)
    for entry in no_cot.datasets.values():
        entry.cells = [c for c in entry.cells if not c.properties.cot]
    assert plots.self_consistency_vs_temperature(no_cot) is None


def test_same_run_twice_gives_identical_summary(
    data_dir: Path, tiny_lm_dir: Path, tmp_path: Path
) -> None:
    """``labelbench run`` + report, twice, with the tiny model: byte-identical summary.json,
    the second time read from the label cache."""
    from labelbench import benchmark
    from labelbench.config import parse_config

    summaries = []
    for name in ("first", "second"):
        text = f"""
            datasets:
              - {{name: tldr, path: openai_tldr_comparisons/batch13.json, sample: 4}}
            labelers:
              - name: {tiny_lm_dir}
            variants: [summarization/base-0shot]
            output_dir: {tmp_path / name}
            analysis: {{bootstrap: 50}}
        """
        config = parse_config(textwrap.dedent(text), tmp_path / "run.yaml")
        out = benchmark.run(
            config,
            command=f"labelbench run {name}.yaml",
            data_dir=data_dir,
            cache_dir=tmp_path / "cache",
            progress=False,
        )
        write_report(out)
        summaries.append((out / SUMMARY).read_bytes())
        provenance = read_run_record(out / RUN_RECORD)
        assert provenance is not None
        assert provenance.cached_share == (0.0 if name == "first" else 1.0)
        assert f"Made by `labelbench run {name}.yaml`" in (out / REPORT_MD).read_text()
    assert summaries[0] == summaries[1]
    assert read_summary(out / SUMMARY).datasets["tldr"].n_items == 4


def test_a_data_set_can_be_limited_to_some_labelers(
    data_dir: Path, tiny_lm_dir: Path, tmp_path: Path
) -> None:
    """``labelers:`` on a data set runs only those labelers on it (a big labeler on fewer data
    sets); a name that is not one of the run's labelers is a config error at its line."""
    import pandas as pd

    from labelbench import benchmark
    from labelbench.config import parse_config
    from labelbench.errors import InputError

    text = f"""
        datasets:
          - {{name: tldr, path: openai_tldr_comparisons/batch13.json, sample: 2}}
          - {{name: hh, path: anthropic_hh_rlhf/harmless-base_test.jsonl.gz, sample: 2,
              labelers: [small]}}
        labelers:
          - {{name: {tiny_lm_dir}, label: small}}
          - {{name: {tiny_lm_dir}, label: big, dtype: bfloat16}}
        variants: [summarization/base-0shot, dialogue_harmless/base-0shot]
        output_dir: {tmp_path / "run"}
    """
    config = parse_config(textwrap.dedent(text), tmp_path / "run.yaml")
    out = benchmark.run(config, data_dir=data_dir, cache_dir=tmp_path / "cache", progress=False)
    cells = pd.read_parquet(out / RESULTS).groupby(["dataset", "labeler"]).size()
    assert set(cells.index) == {("tldr", "small"), ("tldr", "big"), ("hh", "small")}
    with pytest.raises(InputError) as caught:
        parse_config(textwrap.dedent(text).replace("[small]", "[huge]"), tmp_path / "run.yaml")
    assert "datasets[1].labelers" in str(caught.value) and ":5:" in str(caught.value)


def test_a_report_without_config_yaml_records_no_labeler_spec_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """(issue: winner.json got {"name": labeler} and rlaif/serve reopened the labeler with default
    precision and chat settings, not as it ran)"""
    from labelbench.cli import app as labelbench_app
    from labelbench.cli import run_app
    from labelbench.labeling.labeler import load_winner

    run_dir = make_run(tmp_path / "run", synthetic_results(n_items=12))
    (run_dir / CONFIG).unlink()
    assert run_app(labelbench_app, ["report", str(run_dir)], prog_name="labelbench") == 0
    winner = read_winner(run_dir / WINNER)
    assert winner.labeler and winner.labeler_spec is None
    note = capsys.readouterr().err
    assert "records no labeler_spec" in note and "config.yaml" in note
    with pytest.raises(InputError) as raised:
        load_winner(run_dir / WINNER)
    line = str(raised.value)
    assert "winner.json" in line and "labeler_spec" in line and "--labeler" in line
    assert "\n" not in line


def test_winner_json_keeps_the_labeler_spec_from_config_yaml(report_dir: Path) -> None:
    from labelbench.labeling.labeler import load_winner

    winner = read_winner(report_dir / WINNER)
    assert winner.labeler_spec is not None and winner.labeler_spec.name == winner.labeler
    assert load_winner(report_dir / WINNER).labeler.name == winner.labeler


def test_report_on_a_missing_folder_says_it_is_missing(tmp_path: Path) -> None:
    """(issue: "no results in this folder" for a folder that does not exist)"""
    with pytest.raises(InputError, match="no such folder"):
        write_report(tmp_path / "typo")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        write_report(tmp_path / "file")


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"labeler_spec": "smollm2-135m"}, "labeler_spec", "not str"),
        ({"labeler_spec": ["smollm2-135m"]}, "labeler_spec", "not list"),
        ({"labeler_spec": {"backend": "transformers"}}, "labeler_spec.name", "missing"),
        ({"labeler_spec": {"name": "x", "colour": 1}}, "labeler_spec.colour", "unknown key"),
        ({"labeler_spec": {"name": "other-model"}}, "labeler_spec", "but labeler names"),
        ({"seed": "3"}, "seed", "must be an integer"),
        ({"seed": 1.5}, "seed", "must be an integer"),
    ],
)
def test_a_damaged_winner_json_is_refused_naming_the_field(
    report_dir: Path, tmp_path: Path, change: dict, field: str, words: str
) -> None:
    """(issue: a string labeler_spec, a spec of another labeler and a non-integer seed were
    accepted; the seed silently became 0)"""
    from labelbench.labeling.labeler import load_winner

    winner = json.loads((report_dir / "winner.json").read_text())
    winner.update(change)
    path = tmp_path / "winner.json"
    path.write_text(json.dumps(winner))
    with pytest.raises(InputError) as raised:
        load_winner(path)
    line = str(raised.value)
    assert f"field '{field}'" in line, line
    assert words in line and "\n" not in line and "Value error" not in line


def _without(key: str):
    return lambda w: {k: v for k, v in w.items() if k != key}


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda w: {**_without("seed")(w), "seeed": 3}, "seeed", "did you mean 'seed'?"),
        (_without("variant"), "variant", "missing"),
        (lambda w: {**w, "variant": ["summarization/base-0shot"]}, "variant", "not text"),
        (lambda w: {**w, "labeler": 5}, "labeler", "not text: 5"),
        (lambda w: {**w, "labeler": ""}, "labeler", "is empty"),
        (
            lambda w: {**w, "labeler_spec": {**w["labeler_spec"], "device": "gpu"}},
            "labeler_spec.device",
            "unknown device 'gpu'; use cpu, cuda or cuda:N",
        ),
    ],
)
def test_winner_json_fields_are_checked_by_name(
    report_dir: Path, tmp_path: Path, mutate, field: str, words: str
) -> None:
    """(issue: a misspelt seed was read as 0, a missing variant was blamed on 'labeler', an
    unknown variant or device was reported without the file, a bad device passed rlaif ppo)"""
    from labelbench.labeling.labeler import load_winner

    path = tmp_path / "winner.json"
    path.write_text(json.dumps(mutate(json.loads((report_dir / "winner.json").read_text()))))
    with pytest.raises(InputError) as raised:
        load_winner(path)
    line = str(raised.value)
    assert line.startswith(f"{path}: field '{field}':") and words in line, line


def test_winner_json_with_a_bom_or_as_a_folder(report_dir: Path, tmp_path: Path) -> None:
    from labelbench.labeling.labeler import load_winner

    path = tmp_path / "winner.json"
    path.write_bytes(b"\xef\xbb\xbf" + (report_dir / "winner.json").read_bytes())
    assert load_winner(path).labeler.name
    with pytest.raises(InputError, match=r"is a folder; give the winner\.json file in it"):
        load_winner(tmp_path)
    path.write_text((report_dir / "winner.json").read_text(), encoding="utf-16")
    with pytest.raises(InputError, match="not UTF-8 text"):
        load_winner(path)
