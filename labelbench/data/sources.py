"""Reading raw records from files and datasets, each with the place it came from.

A place is a line number for line-oriented files (JSON lines, CSV) and a record index for
everything else, so that every error can point at it.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelbench.errors import InputError


@dataclass(frozen=True)
class Place:
    """Where a raw record came from."""

    source: str
    line: int | None = None
    record: int | None = None

    def error(self, message: str, field: str | None = None) -> InputError:
        return InputError(self.source, message, line=self.line, record=self.record, field=field)


RawRecord = tuple[Place, dict[str, Any] | InputError]
"""A record, or the error that makes it unreadable (the records after it stay readable)."""


BOM = b"\xef\xbb\xbf"
"""The UTF-8 byte-order mark that Excel ("CSV UTF-8") and some editors write first."""
HUB_PREFIX = "hf:"
"""``hf:owner/name``: a Hugging Face hub dataset, loaded through ``datasets``."""


def _decode(data: bytes, source: str) -> str:
    try:
        return data.removeprefix(BOM).decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InputError(source, f"invalid UTF-8 at byte {error.start}", line=line) from None


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise InputError(path, f"cannot read file: {error}") from None


def _json_value(text: str) -> Any:
    """``json.loads``, with nesting too deep for Python's parser as a malformed value."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None


def _json_lines(data: bytes, source: str) -> Iterator[RawRecord]:
    for number, raw_line in enumerate(data.removeprefix(BOM).split(b"\n"), start=1):
        place = Place(source, line=number)
        try:
            line = raw_line.decode("utf-8")
        except UnicodeDecodeError as error:
            yield place, place.error(f"invalid UTF-8 at column {error.start + 1}")
            continue
        if not line.strip():
            continue
        try:
            value = _json_value(line)
        except json.JSONDecodeError as error:
            yield place, place.error(f"malformed JSON ({error.msg} at column {error.colno})")
            continue
        if not isinstance(value, dict):
            yield place, place.error(f"expected a JSON object, found {type(value).__name__}")
            continue
        yield place, value


def read_json_lines(path: str | Path) -> Iterator[tuple[Place, dict[str, Any]]]:
    """The JSON objects of a JSON-lines file (``.gz`` too), each with its place; InputError
    naming the file and line at the first line that is not UTF-8, not JSON (nesting too deep
    included) or not an object."""
    for place, value in _json_lines(_read_bytes(Path(path)), str(path)):
        if isinstance(value, InputError):
            raise value
        yield place, value


def _json_array(text: str, source: str) -> Iterator[RawRecord]:
    try:
        values = _json_value(text)
    except json.JSONDecodeError as error:
        raise InputError(
            source, f"malformed JSON ({error.msg} at column {error.colno})", line=error.lineno
        ) from None
    if not isinstance(values, list):
        raise InputError(source, "expected a JSON array of records or JSON lines")
    for index, value in enumerate(values):
        place = Place(source, record=index)
        if not isinstance(value, dict):
            yield place, place.error(f"expected a JSON object, found {type(value).__name__}")
            continue
        yield place, value


class _Lines:
    """The lines of a text for ``csv.reader`` (line endings kept, as with ``newline=""``),
    remembering those of the row being read and whether the text has run out."""

    def __init__(self, text: str) -> None:
        self._lines = io.StringIO(text, newline="")
        self.row: list[str] = []
        self.ended = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._lines.readline()
        if not line:
            self.ended = True
            raise StopIteration
        self.row.append(line)
        return line

    def rest(self) -> str:
        """The lines of the row being read and every line after it."""
        return "".join(self.row) + self._lines.read()


_QUOTED = re.compile(r'"[^"]*(?:""[^"]*)*"(?!")')
_UNQUOTED = re.compile(r"[^,\r\n]*")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _unclosed_quote(text: str) -> tuple[int, int] | None:
    """Where a quoted value opens and is never closed, as (line within ``text`` counted from 1,
    column index within its row); None when every quoted value is closed. ``text`` starts at the
    beginning of a row; the reading is that of ``csv.reader``'s default dialect: a quote opens a
    value only as the value's first character, and after a closing quote the value runs on to
    the next comma or line end."""
    at, column = 0, 0
    while at < len(text):
        if text[at] == '"':
            closed = _QUOTED.match(text, at)
            if closed is None:
                return len(_LINE_BREAK.findall(text, 0, at)) + 1, column
            at = closed.end()
        at = _UNQUOTED.match(text, at).end()  # type: ignore[union-attr]  # matches empty
        if text.startswith("\r\n", at):
            at, column = at + 2, 0
        elif at < len(text):
            column = column + 1 if text[at] == "," else 0
            at += 1
    return None


def _csv(text: str, source: str) -> Iterator[RawRecord]:
    """Rows as dicts by header; each row's place is the line it starts on (a quoted value may
    span several lines). Blank lines are skipped; missing values are None. A quoted value that
    is never closed is an error at the line its opening quote is on (``csv`` would read the rest
    of the file into it)."""
    lines = _Lines(text)
    reader = csv.reader(lines)
    header: list[str] | None = None
    start = 1

    def unclosed(rest: str) -> InputError | None:
        found = _unclosed_quote(rest)
        if found is None:
            return None
        line, column = found
        name = header[column] if header is not None and column < len(header) else None
        return InputError(
            source,
            'malformed CSV: the quote (") that opens this value is never closed',
            line=start + line - 1,
            field=name,
        )

    try:
        for row in reader:
            if lines.ended and (error := unclosed("".join(lines.row))) is not None:
                raise error
            lines.row.clear()
            place = Place(source, line=start)
            start = reader.line_num + 1
            if not row:
                continue
            if header is None:
                header = row
                continue
            if len(row) > len(header):
                yield place, place.error("more values than header columns")
                continue
            yield place, dict(itertools.zip_longest(header, row))
    except csv.Error as error:
        raise unclosed(lines.rest()) or InputError(
            source, f"malformed CSV: {error}", line=start
        ) from None


def _table(rows: Iterator[dict[str, Any]], source: str) -> Iterator[RawRecord]:
    for index, row in enumerate(rows):
        yield Place(source, record=index), dict(row)


def _parquet(path: Path) -> Iterator[RawRecord]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises several unrelated types for bad files
        raise InputError(path, f"cannot read Parquet: {error}") from None
    return _table(iter(table.to_pylist()), str(path))


def is_dataset_dir(path: Path) -> bool:
    """A folder written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``."""
    names = ("dataset_info.json", "state.json", "dataset_dict.json")
    return path.is_dir() and any((path / name).exists() for name in names)


def _dataset_dir(path: Path, split: str | None) -> Iterator[RawRecord]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as error:  # datasets raises many types for a bad folder
        raise InputError(path, f"cannot load the saved dataset: {error}") from None
    if isinstance(loaded, datasets.DatasetDict):
        if split is None:
            raise InputError(path, f"a split is needed; one of {sorted(loaded)}", field="split")
        if split not in loaded:
            raise InputError(path, f"no split {split!r}; one of {sorted(loaded)}", field="split")
        loaded = loaded[split]
    return _table(iter(loaded), str(path))


def _hub(name: str, config: str | None, split: str | None) -> Iterator[RawRecord]:
    import datasets

    try:
        loaded = datasets.load_dataset(name, config, split=split or "train")
    except Exception as error:  # offline, unknown id, bad config
        raise InputError(
            name,
            f"cannot load hub dataset ({type(error).__name__}: {error}); offline, download the "
            "original files and pass their path",
        ) from None
    return _table(iter(loaded), f"{name}[{split or 'train'}]")


def read_records(
    source: str | Path, *, split: str | None = None, config: str | None = None
) -> Iterator[RawRecord]:
    """Yield raw records from a file, a saved `datasets` folder, or a hub dataset
    (``hf:owner/name``, or a bare ``owner/name`` that is not a local path)."""
    if str(source).startswith(HUB_PREFIX):
        return _hub(str(source).removeprefix(HUB_PREFIX), config, split)
    path = Path(source)
    if not path.exists():
        if "/" in str(source) and not str(source).startswith((".", "/")) and path.suffix == "":
            return _hub(str(source), config, split)
        raise InputError(source, "no such file or directory")
    if path.is_dir():
        if is_dataset_dir(path):
            return _dataset_dir(path, split)
        raise InputError(path, "a folder, but not a saved `datasets` dataset")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-1:] == [".parquet"]:
        return _parquet(path)
    data = _read_bytes(path)
    if ".csv" in suffixes:
        return _csv(_decode(data, str(path)), str(path))
    if data.removeprefix(BOM).lstrip().startswith(b"["):
        return _json_array(_decode(data, str(path)), str(path))
    return _json_lines(data, str(path))
