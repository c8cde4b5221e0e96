"""Readable report pages (issue 27): contents with anchors, the best cell highlighted, legible
figures, baselines told apart by colour and marker, bin counts, cost in seconds, and the
labels' compute time in the header."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from matplotlib.colors import to_hex
from test_report_verdicts import ladder_results, make_run

from labelbench.report import plots
from labelbench.report.cli import write_report
from labelbench.report.render import compute_seconds, duration, github_anchor
from labelbench.report.summary import ReportSettings, summarize
from labelbench.rundir import (
    OPTIONAL_FLOAT,
    REPORT_HTML,
    REPORT_MD,
    REQUIRED,
    RESULTS,
    SUMMARY,
    TIMING,
    Summary,
    Timing,
    normalize,
    read_summary,
    read_timing,
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = make_run(tmp_path_factory.mktemp("pages") / "run", ladder_results(n_items=40))
    write_report(out)
    return out


@pytest.fixture(scope="module")
def drawn() -> tuple[Summary, Timing]:
    return summarize(normalize(ladder_results(n_items=40), "x"), ReportSettings(n_boot=20))


def test_contents_link_to_every_section(run_dir: Path) -> None:
    html = (run_dir / REPORT_HTML).read_text()
    nav = html.split('<nav id="contents">', 1)[1].split("</nav>", 1)[0]
    targets = re.findall(r'href="#([^"]+)"', nav)
    assert {"winner", "verdicts", "figures", "notes", "dataset-tldr", "reliability"} <= set(targets)
    for target in targets:
        assert f'id="{target}"' in html, target
    markdown = (run_dir / REPORT_MD).read_text()
    headings = {github_anchor(h) for h in re.findall(r"^#+ (.+)$", markdown, flags=re.M)}
    links = re.findall(r"\]\(#([^)]+)\)", markdown.split("\n## ", 1)[0])
    assert links and set(links) <= headings


def test_the_best_cell_of_each_table_is_highlighted(run_dir: Path) -> None:
    html = (run_dir / REPORT_HTML).read_text()
    summary = read_summary(run_dir / SUMMARY)
    section = html.split('<h2 id="dataset-pandalm">', 1)[1].split("<h2", 1)[0]
    best = max(summary.datasets["pandalm"].labeler_cells(), key=lambda c: c.accuracy or 0.0)
    rows = re.findall(r'<tr class="best">\s*<td>([^<]*)</td><td>([^<]*)</td>', section)
    assert len(rows) >= 2  # the alignment and the bias tables
    assert all(
        (name, best.variant.endswith(variant)) == (best.labeler, True) for name, variant in rows[:2]
    )
    markdown = (run_dir / REPORT_MD).read_text()
    assert f"| **{best.labeler}** |" in markdown


def test_the_header_states_the_labels_compute_time(run_dir: Path) -> None:
    timing = read_timing(run_dir / TIMING)
    seconds = compute_seconds(timing)
    assert seconds and seconds > 60
    for name in (REPORT_MD, REPORT_HTML):
        text = " ".join(re.sub(r"</?b>", "", (run_dir / name).read_text()).split())
        assert f"The labels took {duration(seconds)} of compute" in text, name
    assert duration(7 * 3600 + 300) == "7.1 h" and duration(42) == "42 s"


def test_baselines_differ_in_colour_and_marker_not_only_dashes(drawn: tuple) -> None:
    summary, timing = drawn
    for name in ("alignment_vs_size", "alignment_vs_cost"):
        fig = plots.draw(name, summary, timing)
        lines = {
            line.get_label(): line
            for axis in fig.axes
            for line in axis.get_lines()
            if line.get_label() in ("always-longer", "always-first")
        }
        assert set(lines) == {"always-longer", "always-first"}, name
        longer, first = lines["always-longer"], lines["always-first"]
        assert to_hex(longer.get_color()) != to_hex(first.get_color())
        assert longer.get_marker() != first.get_marker()
        assert "None" not in (longer.get_marker(), first.get_marker())
        plots._pyplot().close(fig)


def test_reliability_diagrams_show_bin_counts(drawn: tuple) -> None:
    summary, _ = drawn
    fig = plots.reliability(summary)
    axis = fig.axes[0]
    name = axis.get_title()
    shown = [int(t.get_text()) for t in axis.texts if t.get_text().isdigit()]
    labelers = {c.labeler for c in summary.datasets[name].labeler_cells()}
    assert sum(shown) == 40 * len(labelers)  # every item of each labeler's line, once
    plots._pyplot().close(fig)


def test_cost_is_seconds_per_pair(drawn: tuple) -> None:
    summary, timing = drawn
    fig = plots.alignment_vs_cost(summary, timing)
    axis = fig.axes[0]
    assert axis.get_xlabel().startswith("seconds of compute per pair")
    name = axis.get_title()
    expected = sorted(t.seconds_per_pair or 0.0 for t in timing.cells[name])
    points = sorted(
        float(x) for collection in axis.collections for x, _ in collection.get_offsets()
    )
    assert points == pytest.approx(expected)
    plots._pyplot().close(fig)
    assert plots.alignment_vs_cost(summary) is None  # no timing, no cost figure


def test_figure_text_is_legible_at_1200_px(drawn: tuple) -> None:
    summary, timing = drawn
    for name in plots.PLOTS:
        fig = plots.draw(name, summary, timing)
        if fig is None:
            continue
        assert plots.smallest_text_px(fig) >= plots.MIN_TEXT_PX, name
        plots._pyplot().close(fig)


def test_every_results_column_is_documented() -> None:
    """docs/results.md names every column a run writes (the committed ladder's, and those
    added since)."""
    import pandas as pd

    repo = Path(__file__).resolve().parents[1]
    table = (repo / "docs" / "results.md").read_text().split("## Columns", 1)[1]
    documented = set(re.findall(r"`([a-zA-Z_]+)`", table))
    columns = set(pd.read_parquet(repo / "reports/ladder" / RESULTS).columns)
    columns |= set(REQUIRED) | set(OPTIONAL_FLOAT) | {"annotator_prefs", "task", "pair_key"}
    undocumented = {c for c in columns if c not in documented and not c.startswith("baseline_")}
    assert undocumented == set()
    assert "baseline_NAME_pref_a" in table


@pytest.mark.parametrize(
    "report", ["reports/ladder", "reports/ladder/prompt-sensitivity", "reports/benchmark"]
)
def test_committed_reports_figures_read_cleanly(report: str) -> None:
    """The committed reports' own figures (real names, counts and timings): no clipped or
    overlapping text, nothing smaller than 11 px at 1200 px."""
    folder = Path(__file__).resolve().parents[1] / report
    summary = read_summary(folder / SUMMARY)
    timing = read_timing(folder / TIMING)
    for name in plots.PLOTS:
        fig = plots.draw(name, summary, timing)
        if fig is None:
            continue
        try:
            assert plots.layout_problems(fig) == [], name
            assert plots.smallest_text_px(fig) >= plots.MIN_TEXT_PX, name
        finally:
            plots._pyplot().close(fig)


def test_a_figure_draws_panels_only_for_the_data_sets_it_applies_to() -> None:
    """The committed ladder's exemplar figure applies only to the data set where 2-shot stands
    beside 0-shot on the same items: one panel, and a line naming the others."""
    folder = Path(__file__).resolve().parents[1] / "reports/ladder"
    summary = read_summary(folder / SUMMARY)
    shots = [
        name
        for name, entry in summary.datasets.items()
        if any("2shot" in cell.variant for cell in entry.labeler_cells())
    ]
    assert len(shots) == 1 < len(summary.datasets)
    fig = plots.draw("alignment_vs_exemplars", summary, read_timing(folder / TIMING))
    try:
        titles = [axis.get_title() for axis in fig.axes if axis.get_visible()]
        assert titles == shots
        others = [name for name in summary.datasets if name not in shots]
        assert fig._supxlabel.get_text() == "not estimable on: " + ", ".join(others)
        assert plots.layout_problems(fig) == []
    finally:
        plots._pyplot().close(fig)
