"""Reading one record of a data file: a value at a dotted path, text, an integer from a fixed set,
the source meta every parsed record carries, and the seeded A/B order of a chosen/rejected pair.
Every error names the file, the record and the field (``Place``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from labelbench.data.record import content_hash
from labelbench.data.sources import Place

_MISSING = object()


def field(record: Mapping[str, Any], place: Place, path: str, *, optional: bool = False) -> Any:
    """The value at a dotted path; a missing or null value is an error unless optional."""
    value: Any = record
    for key in path.split("."):
        value = value.get(key, _MISSING) if isinstance(value, Mapping) else _MISSING
        if value is _MISSING:
            if optional:
                return None
            raise place.error("missing", field=path)
    if value is None and not optional:
        raise place.error("is null", field=path)
    return value


def text(
    record: Mapping[str, Any],
    place: Place,
    path: str,
    *,
    optional: bool = False,
    allow_empty: bool = False,
    scalar_as_text: bool = False,
    name: str | None = None,
) -> str:
    """A text field. Empty text is an error unless optional or allowed: the original releases
    contain empty candidates (CNN/DM summaries, HH-RLHF replies, PandaLM responses), which are
    real comparisons and are kept, as one empty response of a mapped table is
    (``parse_columns``)."""
    value = field(record, place, path, optional=optional)
    if value is None:
        return ""
    if scalar_as_text and isinstance(value, bool | int | float):
        value = str(value)
    if not isinstance(value, str):
        raise place.error(f"expected text, found {type(value).__name__}", field=name or path)
    if not value.strip() and not (optional or allow_empty):
        raise place.error("is empty", field=name or path)
    return value


def integer(record: Mapping[str, Any], place: Place, path: str, allowed: set[int]) -> int:
    value = field(record, place, path)
    if isinstance(value, str) and value.strip().lstrip("-").isdecimal():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise place.error(f"expected an integer, found {type(value).__name__}", field=path)
    if value not in allowed:
        raise place.error(f"label {value} out of range {sorted(allowed)}", field=path)
    return value


def source_meta(place: Place) -> dict[str, Any]:
    return {"source": place.source, "line": place.line, "record": place.record}


def ordered(
    context: str, chosen: str, rejected: str
) -> tuple[str, str, float, Literal["chosen", "rejected"]]:
    """The content decides whether the chosen response is shown as A."""
    chosen_first = int(content_hash("order", context, chosen, rejected), 16) % 2 == 0
    if chosen_first:
        return chosen, rejected, 1.0, "chosen"
    return rejected, chosen, 0.0, "rejected"
