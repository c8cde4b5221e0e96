"""Your own table (format ``columns``, ``--map``): the column map naming where the context,
responses and label are, the label maps turning label values into P(A), and the parser of a row
under a column map. TRL's preference format is a fixed column map over this parser."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from labelbench.data.conversations import (
    Message,
    diverges_early,
    messages,
    prompt_context,
    reply_text,
    split_conversations,
    split_transcripts,
)
from labelbench.data.fields import field, ordered, source_meta, text
from labelbench.data.record import Annotation, Comparison, TaskKind, content_hash
from labelbench.data.sources import Place
from labelbench.errors import InputError, validation_problem

LabelTarget = Literal["A", "B", "tie"]


TARGET_PREF: dict[str, float] = {"a": 1.0, "b": 0.0, "tie": 0.5}


def label_key(value: Any) -> str | None:
    """How a label value is looked up in a label map: numbers by value (``1``, ``"1"`` and
    ``1.0`` are the same key), text trimmed and case-folded; None for anything else."""
    if isinstance(value, bool):
        return str(value).casefold()
    if isinstance(value, int | float):
        return format(float(value), "g") if math.isfinite(value) else None
    if isinstance(value, str):
        stripped = value.strip()
        try:
            number = float(stripped)
        except ValueError:
            return stripped.casefold()
        return format(number, "g") if math.isfinite(number) else stripped.casefold()
    return None


def label_target(target: Any) -> float:
    """A label map's target as P(A): ``A`` = 1, ``B`` = 0, ``tie`` = 1/2, or a number in [0, 1].
    Raises ValueError."""
    if isinstance(target, str) and target.strip().casefold() in TARGET_PREF:
        return TARGET_PREF[target.strip().casefold()]
    if isinstance(target, str):
        with contextlib.suppress(ValueError):
            target = float(target)
    is_number = isinstance(target, int | float) and not isinstance(target, bool)
    if is_number and 0.0 <= float(target) <= 1.0:
        return float(target)
    raise ValueError(f"label map target {target!r} is not A, B, tie or a probability of A")


PRESETS: dict[str, dict[str, LabelTarget]] = {
    "index": {"1": "A", "2": "B", "0": "tie"},
    "letter": {"a": "A", "b": "B", "tie": "tie"},
}
"""The label kinds that are fixed label maps (``prob`` reads a number instead)."""


LabelKind = Literal["index", "prob", "letter"]


NEEDS_CONTEXT: dict[str, bool] = {"summarization": True, "dialogue": True, "instruction": False}
"""Whether a task family needs a context: a summary needs its text and a reply its
conversation; an instruction-following pair may come without one (the responses are judged on
their own, and the templates leave the instruction block out)."""


def _split_list(value: Any, separator: str) -> Any:
    if isinstance(value, str) and separator in value:
        return [part.strip() for part in value.split(separator) if part.strip()]
    return value


class ColumnMap(BaseModel):
    """How the columns of your own table map to a comparison.

    Either ``response_a`` + ``response_b`` + ``label``, or ``chosen`` + ``rejected`` (the order
    shown is then chosen from content). ``context`` is optional where the task does not need one
    (``instruction``); without it, chosen/rejected are split as dialogue transcripts. Columns may
    hold text or chat message lists (``[{"role", "content"}]``).

    Labels: ``label`` is one column, or several (one per annotator; ``a;b;c`` on the command
    line); a column may also hold a list, one value per annotator. Values are read with
    ``labels`` (value → ``A``, ``B``, ``tie`` or a probability of A; ``v1:A;v2:B;v3:tie`` on the
    command line), else by ``label_kind``: ``index`` = 1 or 2 (0 = tie); ``letter`` = A, B or
    tie; ``prob`` = P(A) in [0, 1]. ``task``: the task family of every row (by default
    ``dialogue`` for transcripts and message lists, else ``instruction``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    context: str | None = None
    response_a: str | None = None
    response_b: str | None = None
    label: str | tuple[str, ...] | None = None
    labels: dict[str, str | float] | None = None
    label_kind: LabelKind | None = None
    chosen: str | None = None
    rejected: str | None = None
    id: str | None = None
    group: str | None = Field(default=None, validation_alias=AliasChoices("group", "group_id"))
    confidence: str | None = None
    task: TaskKind | None = None

    @field_validator("label", mode="before")
    @classmethod
    def _label_columns(cls, value: Any) -> Any:
        value = _split_list(value, ";")
        return (
            tuple(value)
            if isinstance(value, list) and len(value) > 1
            else (value[0] if isinstance(value, list) and value else value)
        )

    @field_validator("labels", mode="before")
    @classmethod
    def _label_pairs(cls, value: Any) -> Any:
        if isinstance(value, str):
            pairs: dict[str, str] = {}
            for item in _split_list(value, ";") if ";" in value else [value]:
                source, sep, target = item.rpartition(":")
                if not sep or not source.strip():
                    raise ValueError(f"expected value:A|B|tie, got {item!r}")
                if source.strip() in pairs:
                    raise ValueError(f"label value {source.strip()!r} is mapped twice")
                pairs[source.strip()] = target.strip()
            return pairs
        if isinstance(value, dict):  # YAML reads `{1: A, 2: B}` with numbers as keys
            return {
                str(key) if isinstance(key, int | float) else key: target
                for key, target in value.items()
            }
        return value

    @field_validator("labels")
    @classmethod
    def _label_targets(cls, value: dict[str, str | float] | None) -> dict[str, str | float] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("the label map is empty")
        keys: dict[str, str] = {}
        for source, target in value.items():
            label_target(target)
            key = label_key(source)
            if key in keys:
                raise ValueError(f"label values {keys[key]!r} and {source!r} are the same value")
            keys[str(key)] = source
        return value

    @model_validator(mode="after")
    def _one_label_reading(self) -> ColumnMap:
        if self.labels is not None and self.label_kind is not None:
            raise ValueError("give labels (a label map) or label_kind, not both")
        return self

    @staticmethod
    def pairs(spec: str) -> dict[str, str]:
        """The keys and values of ``key=column,key=column`` (the command-line form); raises
        ValueError."""
        pairs: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            key, sep, value = item.partition("=")
            if not sep or not value:
                raise ValueError(f"expected key=column, got {item!r}")
            pairs[key.strip()] = value.strip()
        return pairs

    @classmethod
    def parse(cls, spec: str) -> ColumnMap:
        """From the command-line form. Raises ValueError or pydantic's ValidationError."""
        return cls.model_validate(cls.pairs(spec))

    def to_spec(self) -> str:
        """The command-line form (``ColumnMap.parse(m.to_spec()) == m``)."""
        parts = []
        for key in type(self).model_fields:
            value = getattr(self, key)
            if value is None:
                continue
            if key == "label" and isinstance(value, tuple):
                value = ";".join(value)
            elif key == "labels":
                value = ";".join(f"{source}:{target}" for source, target in value.items())
            parts.append(f"{key}={value}")
        return ",".join(parts)

    def check(self) -> None:
        """Raises ValueError when the map cannot make comparisons."""
        pairwise = self.response_a and self.response_b and self.label
        preference = self.chosen and self.rejected
        if not pairwise and not preference:
            raise ValueError("map response_a, response_b and label, or chosen and rejected")
        if pairwise and preference:
            raise ValueError("map response_a/response_b/label or chosen/rejected, not both")
        if self.task and NEEDS_CONTEXT[self.task] and not self.context and not preference:
            raise ValueError(f"task {self.task!r} needs a context column (context=...)")

    @property
    def label_columns(self) -> tuple[str, ...]:
        if self.label is None:
            return ()
        return self.label if isinstance(self.label, tuple) else (self.label,)

    def label_map(self) -> dict[str, float] | None:
        """Value key (see ``label_key``) → P(A); None for ``label_kind: prob``."""
        if self.labels is not None:
            return {str(label_key(k)): label_target(v) for k, v in self.labels.items()}
        if self.label_kind == "prob":
            return None
        return {k: label_target(v) for k, v in PRESETS[self.label_kind or "index"].items()}


def parse_column_map(spec: str, source: str = "--map") -> ColumnMap:
    """A column map from its command-line text; raises InputError naming the bad key."""
    try:
        return ColumnMap.parse(spec)
    except ValidationError as error:
        loc, message = validation_problem(error)
        key = ".".join(str(part) for part in loc)
        known = ", ".join(ColumnMap.model_fields)
        raise InputError(source, f"{message} (keys: {known})", field=key or None) from None
    except ValueError as error:
        raise InputError(source, str(error)) from None


def _shown_map(columns: ColumnMap) -> str:
    if columns.labels is not None:
        return ", ".join(f"{k}={v}" for k, v in columns.labels.items())
    return ", ".join(f"{k}={v}" for k, v in PRESETS[columns.label_kind or "index"].items())


def label_pref(value: Any, columns: ColumnMap, place: Place, column: str) -> float:
    """One label value as P(A), through the map's label map. Raises InputError naming the
    value, the place and the column."""
    mapping = columns.label_map()
    if mapping is None:
        pref = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if isinstance(value, str):
            try:
                pref = float(value)
            except ValueError:
                pref = None
        if pref is None or not math.isfinite(pref):
            raise place.error(f"expected a number, found {value!r}", field=column)
        if not 0.0 <= pref <= 1.0:
            raise place.error(f"label {pref} out of range [0, 1]", field=column)
        return float(pref)
    key = label_key(value)
    if key is None or key not in mapping:
        raise place.error(
            f"label {value!r} out of range: not in the label map ({_shown_map(columns)}); map "
            "your values with labels=VALUE:A;VALUE:B;VALUE:tie",
            field=column,
        )
    return mapping[key]


def annotations(record: Mapping[str, Any], place: Place, columns: ColumnMap) -> tuple:
    """The human annotations of a row: one per label column, or per element of a list value."""
    confidence = None
    if columns.confidence:
        raw = field(record, place, columns.confidence, optional=True)
        if raw not in (None, ""):
            try:
                confidence = int(str(raw).strip())
            except ValueError:
                raise place.error(
                    f"expected an integer, found {raw!r}", field=columns.confidence
                ) from None
    several = len(columns.label_columns) > 1
    out = []
    for column in columns.label_columns:
        value = field(record, place, column)
        if isinstance(value, str) and not value.strip():
            raise place.error("is empty", field=column)
        if isinstance(value, list | tuple):
            if not value:
                raise place.error("is an empty list of labels", field=column)
            for index, item in enumerate(value):
                pref = label_pref(item, columns, place, f"{column}[{index}]")
                out.append(Annotation(pref_a=pref, confidence=confidence))
        else:
            pref = label_pref(value, columns, place, column)
            out.append(
                Annotation(
                    pref_a=pref, annotator=column if several else None, confidence=confidence
                )
            )
    return tuple(out)


def _side(record: Mapping[str, Any], place: Place, column: str) -> str | list[Message]:
    """A response or context column: text, or a chat message list."""
    value = field(record, place, column)
    turns = messages(value, place, column)
    if turns is not None:
        return turns
    return text(record, place, column, allow_empty=True, scalar_as_text=True)


def _context(record: Mapping[str, Any], place: Place, columns: ColumnMap, task: str) -> str:
    assert columns.context
    value = field(record, place, columns.context, optional=True)
    turns = messages(value, place, columns.context)
    if turns is not None:
        return prompt_context(turns)
    context = text(record, place, columns.context, allow_empty=True, scalar_as_text=True)
    if not context.strip():
        if NEEDS_CONTEXT[task]:
            raise place.error(f"is empty (task {task!r} needs a context)", field=columns.context)
        return ""
    return context


def _pair(
    record: Mapping[str, Any], place: Place, columns: ColumnMap, first: str, second: str
) -> tuple[str, str, str, bool]:
    """(context, first response, second response, transcripts used) from the two response
    columns and the context column (if mapped)."""
    one, two = _side(record, place, first), _side(record, place, second)
    is_chat = isinstance(one, list) or isinstance(two, list)
    task = columns.task or ("dialogue" if is_chat else "instruction")
    if isinstance(one, list) and isinstance(two, list) and not columns.context:
        context, one, two = split_conversations(one, two, place, (first, second))
        return context, one, two, True
    if isinstance(one, list):
        one = reply_text(one, place, first)
    if isinstance(two, list):
        two = reply_text(two, place, second)
    if columns.context:
        return _context(record, place, columns, task), one, two, is_chat
    if columns.chosen and not is_chat:
        context, one, two = split_transcripts(one, two, place)
        return context, one, two, True
    if NEEDS_CONTEXT[task]:
        raise place.error(f"task {task!r} needs a context column (context=...)", field="--map")
    return "", one, two, is_chat


def _both_empty(place: Place, *sides: tuple[str, str]) -> None:
    """An error when both responses are empty: there is nothing to compare. One empty response
    is a real candidate (a model that answered nothing), kept and flagged
    (``meta["empty_response"]``), as the original releases' empty candidates are."""
    if all(not reply.strip() for _, reply in sides):
        raise place.error("is empty, and so is the other response", field=sides[0][0])


def parse_columns(record: Mapping[str, Any], place: Place, columns: ColumnMap) -> Comparison:
    """Any table with a column map (see ``ColumnMap``). A pair with one empty response is kept
    and flagged (``meta["empty_response"]``); ``empty_note`` counts them."""
    meta: dict[str, Any] = {}
    if columns.chosen and columns.rejected:
        context, chosen, rejected, chat = _pair(
            record, place, columns, columns.chosen, columns.rejected
        )
        _both_empty(place, (columns.chosen, chosen), (columns.rejected, rejected))
        response_a, response_b, pref_a, a_is = ordered(context, chosen, rejected)
        order: Literal["source", "content_hash"] = "content_hash"
        notes: tuple[Annotation, ...] = (Annotation(pref_a=pref_a),)
        meta["a_is"] = a_is
    else:
        assert columns.response_a and columns.response_b
        context, response_a, response_b, chat = _pair(
            record, place, columns, columns.response_a, columns.response_b
        )
        _both_empty(place, (columns.response_a, response_a), (columns.response_b, response_b))
        notes = annotations(record, place, columns)
        order = "source"
    if chat:
        meta["diverges_early"] = diverges_early(response_a, response_b)
    if not response_a.strip() or not response_b.strip():
        meta["empty_response"] = True  # a real candidate, as in the original releases
    task = columns.task or ("dialogue" if chat else "instruction")
    if columns.group:
        group = str(field(record, place, columns.group))
    elif context.strip():
        group = content_hash(context)
    else:  # no context: each pair is its own group
        group = content_hash("pair", *sorted((response_a, response_b)))
    item_id = (
        str(field(record, place, columns.id))
        if columns.id
        else f"row-{content_hash(context, response_a, response_b)}"
    )
    return Comparison(
        id=item_id,
        group_id=group,
        task=task,
        context=context,
        response_a=response_a,
        response_b=response_b,
        annotations=notes,
        order=order,
        meta={**source_meta(place), "dataset": "custom", **meta},
    )
