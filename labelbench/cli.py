"""The ``labelbench`` command line."""

from __future__ import annotations

import sys

import click
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
    """Run a typer app; user errors become one line on stderr and exit code 2."""
    try:
        result = typer_app(args=args, standalone_mode=False)
    except LabelbenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.exceptions.Abort:
        print("aborted", file=sys.stderr)
        return 130
    return result if isinstance(result, int) else 0


def main() -> None:
    sys.exit(run_app(app))
