"""``labelbench report RUN_DIR``: metrics, tables and figures for a finished run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from labelbench.errors import InputError, check_writable_dir

SUMMARY, TIMING, WINNER = "summary.json", "timing.json", "winner.json"
PROVENANCE = "run.json"  # written by `labelbench run`: its command line and wall time
MARKDOWN, HTML, PLOTS = "report.md", "report.html", "plots"


def _dump(data: Any, path: Path) -> None:
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def _read_provenance(path: Path) -> dict[str, Any] | None:
    """``run.json`` (the command line and wall time of the run), None when there is none.
    Raises InputError naming the file when it is not a JSON object."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # ValueError: malformed JSON or not UTF-8
        raise InputError(path, f"cannot read the run record: {error}") from None
    if not isinstance(data, dict):
        raise InputError(path, "cannot read the run record: expected a JSON object")
    return data


def write_report(run_dir: Path, *, progress: bool = False) -> dict[str, Path]:
    """Read ``RUN_DIR/results.*`` (and ``config.yaml`` when present); write summary.json,
    timing.json, winner.json, report.md, report.html and plots/*.png. Returns the paths.
    ``progress`` shows a progress bar on stderr. Raises InputError (one line naming the folder
    or file) when there are no results or the report cannot be written."""
    from labelbench.config import load_run_config
    from labelbench.report.aggregations import winner_aggregation
    from labelbench.report.plots import draw_all
    from labelbench.report.render import render_html, render_markdown
    from labelbench.report.results import load_results
    from labelbench.report.summary import ReportSettings, choose_winner, count_cells, summarize
    from labelbench.report.verdict import winner_versus_baselines

    run_dir = Path(run_dir)
    results = load_results(run_dir)
    check_writable_dir(run_dir, "run directory")  # before the metrics, which take a while
    config = load_run_config(run_dir)
    provenance = _read_provenance(run_dir / PROVENANCE)
    settings = ReportSettings.from_config(config) if config else ReportSettings()
    with _progress(progress) as bar:
        task = bar.add_task("metrics", total=count_cells(results) + 1)
        summary, timing = summarize(
            results, settings, lambda name: bar.update(task, advance=1, description=name)
        )
        winner = choose_winner(summary, timing, settings)
        winner.update(winner_versus_baselines(winner, summary))
        winner.update(winner_aggregation(results, winner, settings))
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
        paths = {name: run_dir / name for name in (SUMMARY, TIMING, WINNER, MARKDOWN, HTML)}
        _dump(summary, paths[SUMMARY])
        _dump(timing, paths[TIMING])
        _dump(winner, paths[WINNER])
        markdown = render_markdown(title, summary, timing, winner, plot_files, provenance)
        paths[MARKDOWN].write_text(markdown, encoding="utf-8")
        html = render_html(title, summary, timing, winner, images, provenance)
        paths[HTML].write_text(html, encoding="utf-8")
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
    loaded = {}
    for name in (SUMMARY, WINNER):
        try:
            loaded[name] = json.loads((run_dir / name).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise InputError(run_dir / name, f"cannot read it: {error}") from None
    lines = [line for verdict in verdicts(loaded[SUMMARY]) for line in verdict.sentences()]
    winner = loaded[WINNER]
    if winner.get("labeler"):
        against = winner_against_baselines(winner)
        lines.append(f"Winner: {winner['labeler']} / {winner['variant']}. {against}".strip())
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
    winner = json.loads(paths[WINNER].read_text(encoding="utf-8"))
    if winner.get("labeler") and not winner.get("labeler_spec"):
        console.print(
            f"note: {paths[WINNER]} records no labeler_spec for {winner['labeler']} "
            f"({Path(run_dir) / 'config.yaml'} is missing or does not list it), so rlaif and "
            "serve cannot reopen the labeler as it ran from it",
            highlight=False,
            soft_wrap=True,
        )


app = typer.Typer(no_args_is_help=True)
app.command("report")(report)
