"""Errors a user can cause. Each renders as one line: where, which field, what is wrong."""

from __future__ import annotations

import tempfile
from pathlib import Path


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
