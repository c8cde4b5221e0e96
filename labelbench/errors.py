"""Errors a user can cause. Each renders as one line: where, which field, what is wrong."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer


MAX_LINE = 2000
"""An error line longer than this is cut (user values can be any length)."""


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
        line = _one_line(f"{where}:{field} {self.message}")
        if len(line) > MAX_LINE:  # a 100k-character id or name would bury the error
            line = f"{line[: MAX_LINE - 40]}… ({len(line) - MAX_LINE + 40:,} characters cut)"
        return line


def _one_line(text: str) -> str:
    """Line breaks, control characters and lone surrogates (from file or column names and user
    values) escaped: an error stays one printable line."""
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def script_main(main: Callable[[], Any]) -> None:
    """Run a script's ``main`` (the report and bench scripts) as the CLI runs a command: a
    ``LabelbenchError`` is one line on stderr and exit code 2, not a traceback."""
    try:
        main()
    except LabelbenchError as error:
        print(f"error: {_one_line(str(error))}", file=sys.stderr)
        raise SystemExit(2) from None


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


def check_writable_file(path: str | Path, what: str) -> Path:
    """Fail early, with one line naming ``path``, when the file ``path`` could not be written at
    the end of a run: it is an existing directory, an existing file that is read-only, or its
    folder cannot be created or written (``check_writable_dir``). Creates nothing. Raises
    InputError."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise InputError(path, f"the {what} is a directory; give a file path")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(path, f"the {what} exists and is read-only")
    check_writable_dir(path.parent if str(path.parent) else Path("."), f"{what}'s folder")
    return path


INTERRUPTED = 130
"""Exit code after Ctrl-C (128 + SIGINT), as shells report it."""


def validation_problem(error: Any) -> tuple[tuple[str | int, ...], str]:
    """The first problem of a pydantic ``ValidationError``: its key path and its message without
    pydantic's "Value error, " prefix; a key the model does not have is an "unknown key"."""
    first = error.errors()[0]
    if first["type"] == "extra_forbidden":
        return tuple(first["loc"]), "unknown key"
    located = getattr((first.get("ctx") or {}).get("error"), "loc", ())  # a validator's own key
    return (*first["loc"], *located), first["msg"].removeprefix("Value error, ")


def interrupted_line(args: Sequence[str]) -> str:
    """The one line printed after Ctrl-C: what was kept and how to go on."""
    if "--no-cache" in args:
        return "interrupted (Ctrl-C); with --no-cache the labels computed so far are not kept"
    return (
        "interrupted (Ctrl-C): the labels computed so far are kept in the label cache; "
        "run the same command again to resume from them"
    )


def _command_path(typer_app: typer.Typer, prog_name: str | None, argv: Sequence[str]) -> str:
    """``rlaif ppo`` from the program name and the subcommand names at the start of ``argv``
    (click leaves some usage errors, e.g. an option's missing value, without a context)."""
    import typer.main

    command: Any = typer.main.get_command(typer_app)
    path = [prog_name or command.name or "command"]
    for word in argv:
        commands = getattr(command, "commands", None)
        if not commands or word not in commands:
            break
        path.append(word)
        command = commands[word]
    return " ".join(path)


def usage_lines(error: Exception, prog_name: str | None) -> list[str]:
    """A typer/click usage error (unknown option, missing argument, bad value) as one line naming
    the command (``prog_name`` when the error has no context) and the problem, and a line
    pointing at the command's --help."""
    context = getattr(error, "ctx", None)
    command = context.command_path if context is not None else prog_name or "command"
    problem = " ".join(str(error.format_message()).split())  # type: ignore[attr-defined]
    problem = problem.replace("Value error, ", "")  # pydantic's prefix, from a typed option
    return [f"error: {command}: {problem}", f"Try '{command} --help' for help."]


def _click_errors() -> tuple[type[Exception], type[Exception]]:
    """click's UsageError and ClickException as this typer uses them (typer 0.29 carries its own
    copy of click, older typer uses click itself)."""
    import typer

    found = {cls.__name__: cls for cls in typer.BadParameter.__mro__}
    return found["UsageError"], found["ClickException"]


def _unwrapped_help(typer_app: typer.Typer) -> None:
    """Commands whose help is their docstring get it with each paragraph on one line: typer keeps
    a docstring's line breaks in the commands list, which then break mid-sentence."""
    import inspect
    import re

    for command in typer_app.registered_commands:
        if command.help is None and command.callback is not None:
            doc = inspect.getdoc(command.callback) or ""
            command.help = re.sub(r"(?<!\n)\n(?!\n)", " ", doc) or None
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _unwrapped_help(group.typer_instance)


def run_app(
    typer_app: typer.Typer,
    args: list[str] | None = None,
    *,
    prog_name: str | None = None,
    interrupted: Callable[[Sequence[str]], str] = interrupted_line,
) -> int:
    """Run a typer app (``labelbench``, ``rlaif``) and return its exit code.

    A user error (LabelbenchError) is one line on stderr, code 2; so is a usage error (unknown
    option, missing argument, bad value), with a line pointing at --help, and a file that could
    not be read or written (OSError: permissions, a full disk) that no check caught first.
    Ctrl-C is one line saying what is kept, ``interrupted(args)`` (default: the labelling
    commands' label cache), code 130."""
    import typer

    usage_error, click_error = _click_errors()
    _unwrapped_help(typer_app)
    argv = sys.argv[1:] if args is None else args
    try:
        result = typer_app(args=args, prog_name=prog_name, standalone_mode=False)
    except LabelbenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a file that cannot be written late (read-only, a full disk)
        where = f"{error.filename}: " if error.filename else ""
        print(f"error: {_one_line(where + (error.strerror or str(error)))}", file=sys.stderr)
        return 2
    except usage_error as error:
        if type(error).__name__ == "NoArgsIsHelpError":  # a bare command: its help
            shown = str(error.format_message())  # type: ignore[attr-defined]
            if shown.strip():  # with rich, typer has printed the help already
                print(shown, file=sys.stderr)
        else:
            command = _command_path(typer_app, prog_name, argv)
            print("\n".join(usage_lines(error, command)), file=sys.stderr)
        return int(error.exit_code)  # type: ignore[attr-defined]
    except click_error as error:
        print(f"error: {_one_line(error.format_message())}", file=sys.stderr)  # type: ignore[attr-defined]
        return int(error.exit_code)  # type: ignore[attr-defined]
    except (KeyboardInterrupt, typer.Abort) as error:  # older typer: Ctrl-C becomes Abort
        if isinstance(error, typer.Abort) and not isinstance(error.__cause__, KeyboardInterrupt):
            print("error: aborted", file=sys.stderr)
            return 1
        print(interrupted(argv), file=sys.stderr)
        return INTERRUPTED
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            return done.code or 0
        print(done.code, file=sys.stderr)
        return 1
    if result == INTERRUPTED:  # recent typer turns Ctrl-C into a silent exit 130
        print(interrupted(argv), file=sys.stderr)
        return INTERRUPTED
    return result if isinstance(result, int) else 0
