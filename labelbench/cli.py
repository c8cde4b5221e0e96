"""The ``labelbench`` command line."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from labelbench.data.cli import app as data_app
from labelbench.errors import LabelbenchError
from labelbench.labeling.cli import label as label_command
from labelbench.models.cli import app as models_app
from labelbench.prompting.cli import app as prompts_app
from labelbench.report.cli import report

app = typer.Typer(
    help="Benchmark AI labelers against human preferences, then train with the winner (RLAIF).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
app.add_typer(prompts_app, name="prompts")
app.command("report")(report)
app.command("label")(label_command)


@app.command("run")
def run_command(
    config: Annotated[Path, typer.Argument(help="Run config (YAML); see configs/.")],
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder with local copies of the original data files (also LABELBENCH_DATA_DIR).",
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            help="Label cache folder (default: $LABELBENCH_CACHE_DIR or ~/.cache/labelbench)."
        ),
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Neither read nor write the label cache.")
    ] = False,
    with_report: Annotated[
        bool, typer.Option("--report/--no-report", help="Write the report after labelling.")
    ] = True,
) -> None:
    """Label data sets x labelers x variants, then write the report with every metric."""
    from rich.console import Console

    from labelbench.config import load_config, resolve_data_dir
    from labelbench.report.cli import write_report
    from labelbench.sweep import run

    loaded = load_config(config)
    out = run(
        loaded,
        command=shlex.join(["labelbench", *sys.argv[1:]]),
        data_dir=resolve_data_dir(data_dir, loaded),
        cache_dir=cache_dir,
        use_cache=not no_cache,
    )
    console = Console(stderr=True)
    if with_report:
        paths = write_report(out, progress=True)
        console.print(f"report: {paths['report.md']} and {paths['report.html']}")
    console.print(f"results: {out}")


def run_app(typer_app: typer.Typer, args: list[str] | None = None) -> int:
    """Run a typer app and return its exit code; user errors become one line on stderr, code 2.

    Usage errors are typer's own (code 2, with the usage line)."""
    try:
        typer_app(args=args)
    except LabelbenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            return done.code or 0
        print(done.code, file=sys.stderr)
        return 1
    return 0


def main() -> None:
    sys.exit(run_app(app))
