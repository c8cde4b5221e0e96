"""The ``labelbench`` command line."""

from __future__ import annotations

import sys

import typer

from labelbench.data.cli import app as data_app
from labelbench.errors import LabelbenchError
from labelbench.models.cli import app as models_app
from labelbench.prompting.cli import app as prompts_app

app = typer.Typer(
    help="Benchmark AI labelers against human preferences, then train with the winner (RLAIF).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
app.add_typer(prompts_app, name="prompts")


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
