"""Load comparisons and prompts from any supported source, strictly or skipping invalid records."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

import labelbench.data.formats as formats
from labelbench.data.formats import ColumnMap
from labelbench.data.record import Comparison, PromptItem
from labelbench.data.sources import Place, RawRecord, read_records
from labelbench.errors import InputError, validation_problem

T = TypeVar("T", Comparison, PromptItem)


class Loaded(list[T]):
    """The records of one source, the invalid records that were skipped (never silently), and
    the column map used (given, or detected from the table's shape; None for the releases)."""

    def __init__(
        self,
        records: list[T],
        *,
        source: str,
        format: str,
        invalid: list[InputError],
        columns: ColumnMap | None = None,
    ) -> None:
        super().__init__(records)
        self.source = source
        self.format = format
        self.invalid = invalid
        self.columns = columns


def _bad_char(text: str) -> tuple[str, int] | None:
    """The first character of ``text`` that UTF-8 cannot encode (escaped) and its index."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return text[error.start].encode("unicode_escape").decode("ascii"), error.start
    return None


def _invalid_text(raw: Mapping[str, Any]) -> tuple[str, str, int] | None:
    """The first text (value or key) in a raw record that is not valid Unicode, such as a lone
    surrogate from a JSON escape ``"\\ud800"``, which no encoder accepts: (field path,
    character, index)."""
    stack: list[tuple[str, Any]] = [("", raw)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, Mapping):
            items = []
            for key, item in value.items():
                name = f"{path}.{key}" if path else str(key)
                bad = _bad_char(str(key))
                if bad is not None:
                    return (name, *bad)
                items.append((name, item))
            stack.extend(reversed(items))
        elif isinstance(value, str):
            bad = _bad_char(value)
            if bad is not None:
                return (path, *bad)
        elif isinstance(value, list | tuple):
            stack.extend((f"{path}[{k}]", item) for k, item in reversed(list(enumerate(value))))
    return None


def _parse_one(
    parse: Callable[[Mapping[str, Any], Place], T], place: Place, raw: Mapping[str, Any]
) -> T:
    bad = _invalid_text(raw)
    if bad is not None:
        path, char, index = bad
        raise place.error(f"not valid Unicode: {char} at character {index + 1}", field=path)
    try:
        return parse(raw, place)
    except ValidationError as error:
        loc, message = validation_problem(error)
        location = ".".join(str(part) for part in loc)
        raise place.error(message, field=location or None) from None


def _peek(records: Iterator[RawRecord], source: str) -> tuple[RawRecord, Iterator[RawRecord]]:
    """The first readable record (to detect the format), and all records from the start."""
    before: list[RawRecord] = []
    for item in records:
        before.append(item)
        if not isinstance(item[1], InputError):
            return item, itertools.chain(before, records)
    if before:
        raise before[0][1]  # type: ignore[misc]
    raise InputError(source, "no records")


def _resolve_format(
    fmt: str | None, columns: ColumnMap | None, first: RawRecord
) -> tuple[str, ColumnMap | None]:
    place, record = first
    assert not isinstance(record, InputError)
    if columns is not None:
        if fmt not in (None, "columns"):
            raise place.error(f"a column map is for format 'columns', not {fmt!r}", field="--map")
        try:
            columns.check()
        except ValueError as error:
            raise place.error(str(error), field="--map") from None
        return "columns", columns
    if fmt is None:
        return formats.detect_format(record, place)
    if fmt == "trl-preference":
        return fmt, formats.trl_map(record)
    if fmt == "columns":
        raise place.error("format 'columns' needs a column map (--map)", field="--map")
    if fmt not in formats.ALL_FORMATS:
        raise place.error(f"unknown format {fmt!r}; one of {', '.join(formats.ALL_FORMATS)}")
    return fmt, None


def _collect(
    records: Iterator[RawRecord],
    parse: Callable[[Mapping[str, Any], Place], T],
    *,
    source: str,
    fmt: str,
    skip_invalid: bool,
    columns: ColumnMap | None,
) -> Loaded[T]:
    kept: list[T] = []
    invalid: list[InputError] = []
    seen: dict[str, int] = {}
    for place, raw in records:
        try:
            if isinstance(raw, InputError):
                raise raw
            record = _parse_one(parse, place, raw)
        except InputError as error:
            if not skip_invalid:
                raise
            invalid.append(error)
            continue
        repeats = seen.get(record.id, 0)
        seen[record.id] = repeats + 1
        if repeats:
            record = record.model_copy(update={"id": f"{record.id}#{repeats + 1}"})
        kept.append(record)
    return Loaded(kept, source=source, format=fmt, invalid=invalid, columns=columns)


def load_records(
    source: str | Path,
    fmt: str | None = None,
    *,
    columns: ColumnMap | str | None = None,
    split: str | None = None,
    config: str | None = None,
    skip_invalid: bool = False,
) -> Loaded[Comparison] | Loaded[PromptItem]:
    """Comparisons or prompts, as the format says, from a file, a saved dataset or a hub id
    (``hf:owner/name``).

    The format is detected from the first readable record unless given; ``columns`` (a
    ``ColumnMap`` or its ``--map`` text, label map included) reads your own table. Raises
    InputError on the first bad record, or with ``skip_invalid`` keeps going and lists the bad
    ones in ``.invalid``."""
    if fmt is not None and fmt not in formats.ALL_FORMATS:  # the option, not the data, is wrong
        raise InputError(
            "--format", f"unknown format {fmt!r}; one of {', '.join(formats.ALL_FORMATS)}"
        )
    if isinstance(columns, str):
        columns = formats.parse_column_map(columns)
    first, records = _peek(read_records(source, split=split, config=config), str(source))
    name, mapping = _resolve_format(fmt, columns, first)
    parse: Callable[[Mapping[str, Any], Place], Any]
    if mapping is not None:
        parse = lambda raw, place: formats.parse_columns(raw, place, mapping)  # noqa: E731
    elif name in formats.PROMPT_FORMATS:
        parse = formats.PROMPT_FORMATS[name]
    else:
        parse = formats.COMPARISON_FORMATS[name]
    return _collect(
        records, parse, source=str(source), fmt=name, skip_invalid=skip_invalid, columns=mapping
    )


def load_comparisons(
    source: str | Path, fmt: str | None = None, **options: Any
) -> Loaded[Comparison]:
    """Pairwise comparisons with human labels; see ``load_records`` for the options."""
    loaded = load_records(source, fmt, **options)
    if loaded.format in formats.PROMPT_FORMATS:
        raise InputError(source, f"format {loaded.format!r} holds prompts, not comparisons")
    return loaded  # type: ignore[return-value]


def load_prompts(source: str | Path, fmt: str | None = None, **options: Any) -> Loaded[PromptItem]:
    """Prompt-only items for policy training and evaluation (e.g. TL;DR posts)."""
    loaded = load_records(source, fmt, **options)
    if loaded.format not in formats.PROMPT_FORMATS:
        raise InputError(
            source,
            f"format {loaded.format!r} is not a prompt set; one of "
            f"{', '.join(formats.PROMPT_FORMATS)}",
        )
    return loaded  # type: ignore[return-value]


def skipped_note(loaded: Loaded[Any]) -> str:
    """One line for stderr when ``skip_invalid`` skipped records: how many, and the first."""
    count = len(loaded.invalid)
    first = loaded.invalid[0] if loaded.invalid else "none"
    return f"{loaded.source}: {count} invalid record(s) skipped (first: {first})"


def empty_note(loaded: Loaded[Any]) -> str | None:
    """One line for stderr when comparisons have an empty response (kept: a real candidate);
    None when none has."""
    count = sum(bool(getattr(item, "meta", {}).get("empty_response")) for item in loaded)
    if not count:
        return None
    return (
        f"{loaded.source}: {count} comparison(s) with an empty response, kept as real "
        "candidates (meta empty_response; `labelbench data inspect` counts them)"
    )
