"""Errors a user can cause. Each renders as one line: where, which field, what is wrong."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer


class LabelbenchError(Exception):
    """An error the CLI reports as one line on stderr with exit code 2."""


class InputError(LabelbenchError):
    """Bad user input (data file, config, template): names the file, the place and the field."""

    def __init__(
        self,
        source: str | Path,
        message: str,
        *,
        line: int | None = None,
        record: int | None = None,
        field: str | None = None,
    ) -> None:
        self.source = str(source)
        self.line = line
        self.record = record
        self.field = field
        self.message = message
        super().__init__(self.render())

    def render(self) -> str:
        where = self.source
        if self.line is not None:
            where += f":{self.line}"
        elif self.record is not None:
            where += f" record {self.record}"
        field = f" field '{self.field}':" if self.field else ""
        return _one_line(f"{where}:{field} {self.message}")


def _one_line(text: str) -> str:
    """Line breaks, control characters and lone surrogates (from file or column names and user
    values) escaped: an error stays one printable line."""
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


class ModelError(LabelbenchError):
    """A model that is missing, broken or not allowed to load; the message says how to get it."""


def check_writable_dir(path: str | Path, what: str) -> Path:
    """Fail early, with one line naming ``path``, when the directory ``path`` (or, if it does not
    exist yet, its nearest existing parent, where it would be created) cannot be written to.

    Creates nothing: a test file is written and removed. Raises InputError."""
    path = Path(path).expanduser()
    place = path
    while not place.exists() and place != place.parent:
        place = place.parent
    if not place.is_dir():
        raise InputError(path, f"cannot create the {what}: {place} is not a directory")
    try:
        with tempfile.TemporaryFile(dir=place, prefix=".labelbench-write-check-"):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise InputError(path, f"the {what} is not writable ({reason} in {place})") from None
    return path


INTERRUPTED = 130
"""Exit code after Ctrl-C (128 + SIGINT), as shells report it."""


def interrupted_line(args: Sequence[str]) -> str:
    """The one line printed after Ctrl-C: what was kept and how to go on."""
    if "--no-cache" in args:
        return "interrupted (Ctrl-C); with --no-cache the labels computed so far are not kept"
    return (
        "interrupted (Ctrl-C): the labels computed so far are kept in the label cache; "
        "run the same command again to resume from them"
    )


def run_app(
    typer_app: typer.Typer, args: list[str] | None = None, *, prog_name: str | None = None
) -> int:
    """Run a typer app (``labelbench``, ``rlaif``) and return its exit code.

    A user error (LabelbenchError) is one line on stderr, code 2; Ctrl-C is one line saying what
    is kept, code 130 (typer turns KeyboardInterrupt into a silent exit 130). Usage errors are
    typer's own (code 2, with the usage line)."""
    argv = sys.argv[1:] if args is None else args
    try:
        typer_app(args=args, prog_name=prog_name)
    except LabelbenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # outside the command, where typer does not catch it
        print(interrupted_line(argv), file=sys.stderr)
        return INTERRUPTED
    except SystemExit as done:
        if done.code == INTERRUPTED:
            print(interrupted_line(argv), file=sys.stderr)
            return INTERRUPTED
        if done.code is None or isinstance(done.code, int):
            return done.code or 0
        print(done.code, file=sys.stderr)
        return 1
    return 0
