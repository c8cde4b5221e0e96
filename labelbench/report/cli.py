"""``labelbench report RUN_DIR``: metrics, tables and figures for a finished run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from labelbench.errors import InputError, check_writable_dir
from labelbench.rundir import (
    CONFIG,
    PLOTS,
    REPORT_HTML,
    REPORT_MD,
    RUN_RECORD,
    SUMMARY,
    TIMING,
    WINNER,
    read_config,
    read_results,
    read_run_record,
    read_summary,
    read_winner,
    write_file,
)


def write_report(run_dir: Path, *, progress: bool = False) -> dict[str, Path]:
    """Read ``RUN_DIR/results.*`` (and ``config.yaml`` and ``run.json`` when present); write
    summary.json, timing.json, winner.json, report.md, report.html and plots/*.png. Returns the
    paths by file name. ``progress`` shows a progress bar on stderr. Raises InputError (one line
    naming the folder or file) when there are no results, a run file cannot be read, or the
    report cannot be written."""
    from labelbench.report.aggregations import winner_aggregation
    from labelbench.report.plots import draw_all
    from labelbench.report.render import render_html, render_markdown
    from labelbench.report.summary import ReportSettings, choose_winner, count_cells, summarize
    from labelbench.report.verdict import winner_versus_baselines

    run_dir = Path(run_dir)
    results = read_results(run_dir)
    check_writable_dir(run_dir, "run directory")  # before the metrics, which take a while
    config = read_config(run_dir)
    provenance = read_run_record(run_dir / RUN_RECORD)
    settings = ReportSettings.from_config(config) if config else ReportSettings()
    with _progress(progress) as bar:
        task = bar.add_task("metrics", total=count_cells(results) + 1)
        summary, timing = summarize(
            results, settings, lambda name: bar.update(task, advance=1, description=name)
        )
        winner = choose_winner(summary, timing, settings)
        winner = winner_versus_baselines(winner, summary)
        winner = winner_aggregation(results, winner, settings)
        bar.update(task, description="figures")
        images = draw_all(summary, timing)
        bar.update(task, advance=1, description="report")
    try:
        (run_dir / PLOTS).mkdir(exist_ok=True)
        for stale in (run_dir / PLOTS).glob("*.png"):  # figures of an older report version
            if stale.stem not in images:
                stale.unlink()
        plot_files: dict[str, str | None] = {}
        for name, data in images.items():
            target = run_dir / PLOTS / f"{name}.png"
            if data:
                target.write_bytes(data)
                plot_files[name] = f"{PLOTS}/{name}.png"
            else:
                target.unlink(missing_ok=True)
                plot_files[name] = None
        title = f"labelbench report: {run_dir.resolve().name}"
        paths = {name: run_dir / name for name in (SUMMARY, TIMING, WINNER, REPORT_MD, REPORT_HTML)}
        write_file(summary, paths[SUMMARY])
        write_file(timing, paths[TIMING])
        write_file(winner, paths[WINNER])
        markdown = render_markdown(title, summary, timing, winner, plot_files, provenance)
        paths[REPORT_MD].write_text(markdown, encoding="utf-8")
        html = render_html(title, summary, timing, winner, images, provenance)
        paths[REPORT_HTML].write_text(html, encoding="utf-8")
    except OSError as error:  # a read-only folder or file, a full disk
        reason = error.strerror or type(error).__name__
        raise InputError(error.filename or run_dir, f"cannot write the report ({reason})") from None
    return paths


def verdict_lines(run_dir: Path) -> list[str]:
    """The verdict of a reported run, one line per sentence: per data set its best cell against
    the baselines (a flagged "beats" says why on its line), then the winner against them.
    Reads ``RUN_DIR/summary.json`` and ``winner.json``; InputError naming a file it cannot
    read."""
    from labelbench.report.render import winner_against_baselines
    from labelbench.report.verdict import verdicts

    run_dir = Path(run_dir)
    summary = read_summary(run_dir / SUMMARY)
    winner = read_winner(run_dir / WINNER)
    lines = [line for verdict in verdicts(summary) for line in verdict.sentences()]
    if winner.labeler:
        against = winner_against_baselines(winner)
        lines.append(f"Winner: {winner.labeler} / {winner.variant}. {against}".strip())
    return lines


def _progress(enabled: bool) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    return Progress(
        TextColumn("{task.description:<48}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=True,
    )


def report(
    run_dir: Annotated[
        Path, typer.Argument(help="A run folder holding results.parquet or results.jsonl.")
    ],
) -> None:
    """Compute every metric of a run and write summary.json, winner.json and the reports."""
    from rich.console import Console

    console = Console(stderr=True)
    paths = write_report(run_dir, progress=True)
    for path in paths.values():
        console.print(f"wrote {path}")
    typer.echo("\n".join(verdict_lines(run_dir)))
    winner = read_winner(paths[WINNER])
    if winner.labeler and not winner.labeler_spec:
        console.print(
            f"note: {paths[WINNER]} records no labeler_spec for {winner.labeler} "
            f"({Path(run_dir) / CONFIG} is missing or does not list it), so rlaif and "
            "serve cannot reopen the labeler as it ran from it",
            highlight=False,
            soft_wrap=True,
        )


app = typer.Typer(no_args_is_help=True)
app.command("report")(report)
