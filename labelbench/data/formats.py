"""Parsers from the original release formats to the canonical records, and format detection."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping, Sequence
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

from labelbench.data.record import Annotation, Comparison, PromptItem, TaskKind, content_hash
from labelbench.data.sources import Place
from labelbench.errors import InputError, validation_problem

ASSISTANT_TURN = "\n\nAssistant:"
HUMAN_TURN = "\n\nHuman:"
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


def _source_meta(place: Place) -> dict[str, Any]:
    return {"source": place.source, "line": place.line, "record": place.record}


def parse_openai_comparison(record: Mapping[str, Any], place: Place) -> Comparison:
    """OpenAI summarize-from-feedback comparisons (TL;DR posts and CNN/DM articles)."""
    summaries = field(record, place, "summaries")
    if not isinstance(summaries, list) or len(summaries) != 2:
        raise place.error("expected a list of exactly two summaries", field="summaries")
    for index, summary in enumerate(summaries):
        if not isinstance(summary, Mapping):
            raise place.error("expected an object", field=f"summaries[{index}]")
    response_a, response_b = (
        text(summary, place, "text", allow_empty=True, name=f"summaries[{index}].text")
        for index, summary in enumerate(summaries)
    )
    choice = integer(record, place, "choice", {0, 1})
    confidence = field(record, place, "extra.confidence", optional=True)
    if confidence is not None and (isinstance(confidence, bool) or confidence not in range(1, 10)):
        raise place.error(f"confidence {confidence!r} out of range 1-9", field="extra.confidence")
    post_id = text(record, place, "info.id")
    is_article = isinstance(field(record, place, "info.article", optional=True), str)
    context = text(record, place, "info.article" if is_article else "info.post")
    worker = field(record, place, "worker", optional=True)
    info = field(record, place, "info")
    return Comparison(
        id=f"{post_id}-{content_hash(response_a, response_b, str(worker))}",
        group_id=post_id,
        task="summarization",
        context=context,
        response_a=response_a,
        response_b=response_b,
        annotations=(
            Annotation(
                pref_a=1.0 if choice == 0 else 0.0,
                annotator=None if worker is None else str(worker),
                confidence=confidence,
            ),
        ),
        meta={
            **_source_meta(place),
            "dataset": "cnndm" if is_article else "tldr",
            "title": info.get("title"),
            "subreddit": info.get("subreddit"),
            "site": info.get("site"),
            "split": record.get("split"),
            "batch": record.get("batch"),
            "policy_a": summaries[0].get("policy"),
            "policy_b": summaries[1].get("policy"),
        },
    )


def split_transcripts(chosen: str, rejected: str, place: Place) -> tuple[str, str, str]:
    """Split two transcripts into the shared context (up to the last shared Assistant turn's
    marker) and the two final replies. A reply may be empty: HH-RLHF keeps empty replies."""
    shared = 0
    for left, right in zip(chosen, rejected, strict=False):
        if left != right:
            break
        shared += 1
    if chosen == rejected:
        raise place.error("chosen and rejected are identical", field="rejected")
    cut = chosen.rfind(ASSISTANT_TURN, 0, shared)
    if cut < 0 or cut + len(ASSISTANT_TURN) > shared:
        raise place.error("chosen and rejected share no Assistant turn", field="chosen")
    cut += len(ASSISTANT_TURN)
    return chosen[:cut], chosen[cut:].strip(), rejected[cut:].strip()


def diverges_early(*replies: str) -> bool:
    """True when a "reply" split off two transcripts still holds a later Human turn: the two
    transcripts differ before their final reply, so the responses carry more than one turn."""
    return any(HUMAN_TURN in reply for reply in replies)


def _ordered(
    context: str, chosen: str, rejected: str
) -> tuple[str, str, float, Literal["chosen", "rejected"]]:
    """The content decides whether the chosen response is shown as A."""
    chosen_first = int(content_hash("order", context, chosen, rejected), 16) % 2 == 0
    if chosen_first:
        return chosen, rejected, 1.0, "chosen"
    return rejected, chosen, 0.0, "rejected"


def parse_hh_rlhf(record: Mapping[str, Any], place: Place) -> Comparison:
    """Anthropic HH-RLHF: two full transcripts sharing the context up to the last Assistant turn."""
    chosen_text = text(record, place, "chosen")
    rejected_text = text(record, place, "rejected")
    context, chosen, rejected = split_transcripts(chosen_text, rejected_text, place)
    response_a, response_b, pref_a, a_is = _ordered(context, chosen, rejected)
    group = content_hash(context)
    return Comparison(
        id=f"hh-{content_hash(context, chosen, rejected)}",
        group_id=group,
        task="dialogue",
        context=context,
        response_a=response_a,
        response_b=response_b,
        annotations=(Annotation(pref_a=pref_a),),
        order="content_hash",
        meta={
            **_source_meta(place),
            "dataset": "hh_rlhf",
            "a_is": a_is,
            "diverges_early": diverges_early(chosen, rejected),
        },
    )


PANDALM_PREF = {0: 0.5, 1: 1.0, 2: 0.0}


def parse_pandalm(record: Mapping[str, Any], place: Place) -> Comparison:
    """PandaLM test set: instruction, optional input, two responses, three annotators (0 = tie).
    The release stores a few responses as JSON booleans (the text "True"): read as their text."""
    instruction = text(record, place, "instruction", allow_empty=True)
    extra_input = text(record, place, "input", optional=True)
    context = "\n\n".join(part for part in (instruction, extra_input) if part.strip())
    if not context:
        raise place.error("is empty, and so is 'input'", field="instruction")
    annotations = tuple(
        Annotation(pref_a=PANDALM_PREF[integer(record, place, name, {0, 1, 2})], annotator=name)
        for name in ("annotator1", "annotator2", "annotator3")
    )
    idx = field(record, place, "idx")
    return Comparison(
        id=f"pandalm-{idx}",
        group_id=content_hash(context),
        task="instruction",
        context=context,
        response_a=text(record, place, "response1", allow_empty=True, scalar_as_text=True),
        response_b=text(record, place, "response2", allow_empty=True, scalar_as_text=True),
        annotations=annotations,
        meta={
            **_source_meta(place),
            "dataset": "pandalm",
            "idx": idx,
            "instruction": instruction,
            "input": extra_input,
            "cmp_key": record.get("cmp_key"),
        },
    )


def parse_llmbar(record: Mapping[str, Any], place: Place) -> Comparison:
    """LLMBar: input, output_1, output_2, label (1 or 2)."""
    context = text(record, place, "input")
    response_a = text(record, place, "output_1", allow_empty=True)
    response_b = text(record, place, "output_2", allow_empty=True)
    label = integer(record, place, "label", {1, 2})
    return Comparison(
        id=f"llmbar-{content_hash(context, response_a, response_b)}",
        group_id=content_hash(context),
        task="instruction",
        context=context,
        response_a=response_a,
        response_b=response_b,
        annotations=(Annotation(pref_a=1.0 if label == 1 else 0.0),),
        meta={**_source_meta(place), "dataset": "llmbar"},
    )


def parse_tldr_post(record: Mapping[str, Any], place: Place) -> PromptItem:
    """Reddit TL;DR posts for policy training: the post, and the author's own TL;DR if present."""
    post_id = text(record, place, "instruction_id")
    reference = text(record, place, "gold_response", optional=True)
    return PromptItem(
        id=post_id,
        group_id=post_id,
        task="summarization",
        context=text(record, place, "instruction"),
        reference=reference or None,
        meta={
            **_source_meta(place),
            "dataset": "tldr",
            "title": record.get("title"),
            "subreddit": record.get("subreddit"),
        },
    )


# ---------------------------------------------------------------------------- conversations

ROLES = {"user": "Human", "human": "Human", "assistant": "Assistant", "system": "System"}
"""Chat roles and how transcripts (HH-RLHF style) name them."""

Message = tuple[str, str]


def messages(value: Any, place: Place, name: str) -> list[Message] | None:
    """A chat message list (``[{"role": ..., "content": ...}, ...]``) as (role, text) pairs;
    None when the value is not a list (plain text)."""
    if not isinstance(value, list | tuple):
        return None
    out: list[Message] = []
    for index, message in enumerate(value):
        where = f"{name}[{index}]"
        if not isinstance(message, Mapping):
            raise place.error(f"expected a chat message, found {type(message).__name__}", where)
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise place.error(f"role {role!r} is not one of {', '.join(ROLES)}", f"{where}.role")
        content = message.get("content")
        if not isinstance(content, str):
            found = type(content).__name__
            raise place.error(f"expected text, found {found}", f"{where}.content")
        out.append((str(role), content))
    if not out:
        raise place.error("is an empty message list", field=name)
    return out


def transcript(turns: Sequence[Message]) -> str:
    """Messages as an HH-RLHF style transcript: ``\\n\\nHuman: ...\\n\\nAssistant: ...``."""
    return "".join(f"\n\n{ROLES[role]}: {content.strip()}" for role, content in turns)


def prompt_context(turns: Sequence[Message]) -> str:
    """The transcript of a prompt, ending with the Assistant turn the responses fill."""
    return transcript(turns) + ASSISTANT_TURN


def reply_text(turns: Sequence[Message], place: Place, name: str) -> str:
    """A response given as messages: the first (assistant) message's text, then any later turns
    as transcript (then the pair diverges early)."""
    if ROLES[turns[0][0]] != "Assistant":
        raise place.error(
            f"a response must start with an assistant message, not {turns[0][0]!r}",
            field=f"{name}[0].role",
        )
    return (turns[0][1].strip() + transcript(turns[1:])).strip()


def split_conversations(
    first: Sequence[Message], second: Sequence[Message], place: Place, names: tuple[str, str]
) -> tuple[str, str, str]:
    """Two full conversations → (shared context up to the last shared assistant turn, first
    reply, second reply). Replies hold later turns when the conversations diverge early."""
    shared = 0
    for left, right in zip(first, second, strict=False):
        if left != right:
            break
        shared += 1
    if list(first) == list(second):
        raise place.error("the two conversations are identical", field=names[1])
    cut = next(
        (
            k
            for k in range(min(shared, len(first), len(second)), -1, -1)
            if k < len(first)
            and k < len(second)
            and ROLES[first[k][0]] == ROLES[second[k][0]] == "Assistant"
        ),
        None,
    )
    if cut is None or cut == 0:
        raise place.error(
            "the two conversations share no prompt before an assistant turn", field=names[0]
        )
    context = prompt_context(first[:cut])
    return (
        context,
        reply_text(first[cut:], place, names[0]),
        reply_text(second[cut:], place, names[1]),
    )


# ---------------------------------------------------------------------------- label maps

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
        response_a, response_b, pref_a, a_is = _ordered(context, chosen, rejected)
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
        meta={**_source_meta(place), "dataset": "custom", **meta},
    )


# ---------------------------------------------------------------------------- MT-Bench

MT_BENCH_WINNER: dict[str, LabelTarget] = {
    "model_a": "A",
    "model_b": "B",
    "tie": "tie",
    "tie (bothbad)": "tie",
}


def parse_mt_bench(record: Mapping[str, Any], place: Place) -> Comparison:
    """MT-Bench human judgments: ``conversation_a``/``conversation_b`` (message lists),
    ``model_a``/``model_b``, ``winner`` (model_a, model_b, tie, tie (bothbad)), ``judge``,
    ``question_id``, ``turn`` (the judged turn: the conversations are cut after its reply;
    a turn-2 pair carries each model's own first reply, flagged ``diverges_early``)."""
    names = ("conversation_a", "conversation_b")
    sides = []
    for name in names:
        turns = messages(field(record, place, name), place, name)
        if turns is None:
            raise place.error("expected a list of chat messages", field=name)
        sides.append(turns)
    turn = field(record, place, "turn", optional=True)
    if turn is not None:
        if isinstance(turn, bool) or not isinstance(turn, int) or turn < 1:
            raise place.error(f"expected a turn number >= 1, found {turn!r}", field="turn")
        cut = []
        for name, turns in zip(names, sides, strict=True):
            users = [k for k, (role, _) in enumerate(turns) if ROLES[role] == "Human"]
            if len(users) < turn:
                raise place.error(f"has no user turn {turn}", field=name)
            end = users[turn] if len(users) > turn else len(turns)
            cut.append(turns[:end])
        sides = cut
    context, response_a, response_b = split_conversations(sides[0], sides[1], place, names)
    winner_map = ColumnMap(response_a="a", response_b="b", label="winner", labels=MT_BENCH_WINNER)
    pref_a = label_pref(field(record, place, "winner"), winner_map, place, "winner")
    judge = field(record, place, "judge", optional=True)
    question = field(record, place, "question_id", optional=True)
    model_a, model_b = (str(field(record, place, k)) for k in ("model_a", "model_b"))
    group = str(question) if question is not None else content_hash(context)
    return Comparison(
        id=f"mtbench-{group}-{turn or 0}-{model_a}-{model_b}-{judge}",
        group_id=group,
        task="dialogue",
        context=context,
        response_a=response_a,
        response_b=response_b,
        annotations=(Annotation(pref_a=pref_a, annotator=None if judge is None else str(judge)),),
        meta={
            **_source_meta(place),
            "dataset": "mt_bench",
            "model_a": model_a,
            "model_b": model_b,
            "turn": turn,
            "diverges_early": diverges_early(response_a, response_b),
        },
    )


# ---------------------------------------------------------------------------- formats

Parser = Callable[[Mapping[str, Any], Place], Comparison]


def parse_trl_prompt(record: Mapping[str, Any], place: Place) -> PromptItem:
    """TRL's prompt-only format (the input of GRPO, RLOO and online DPO): ``prompt`` as text
    (task ``instruction``, the text as the policy's prompt) or as chat messages (task
    ``dialogue``: their transcript, ending with the Assistant turn the policy fills); ``id`` when
    the row has one, else a hash of the prompt. Other columns (a GRPO answer key) are ignored."""
    turns = messages(field(record, place, "prompt"), place, "prompt")
    if turns is None:
        context, task = text(record, place, "prompt"), "instruction"
    elif ROLES[turns[-1][0]] == "Assistant":
        raise place.error(
            "the last message is the assistant's; a prompt ends with the message the policy "
            "answers",
            field=f"prompt[{len(turns) - 1}].role",
        )
    else:
        context, task = prompt_context(turns), "dialogue"
    given = record.get("id")
    item_id = str(given) if isinstance(given, str | int) and str(given) else content_hash(context)
    return PromptItem(
        id=item_id,
        group_id=item_id,
        task=task,
        context=context,
        meta={**_source_meta(place), "dataset": "trl-prompts"},
    )


COMPARISON_FORMATS: dict[str, Parser] = {
    "openai-comparisons": parse_openai_comparison,
    "hh-rlhf": parse_hh_rlhf,
    "pandalm": parse_pandalm,
    "llmbar": parse_llmbar,
    "mt-bench-human": parse_mt_bench,
}
PROMPT_FORMATS = {"tldr-posts": parse_tldr_post, "trl-prompts": parse_trl_prompt}
PAIR_KEYS = {"chosen", "rejected", "completion", "label"}
"""Keys that make a record with a ``prompt`` more than a prompt (preferences, SFT, KTO rows)."""
TRL_PREFERENCE = ColumnMap(context="prompt", chosen="chosen", rejected="rejected")
TRL_IMPLICIT_PROMPT = ColumnMap(chosen="chosen", rejected="rejected")
ALL_FORMATS = [*COMPARISON_FORMATS, "trl-preference", "columns", *PROMPT_FORMATS]


def trl_map(record: Mapping[str, Any]) -> ColumnMap:
    """TRL's preference format, with an explicit ``prompt`` or an implicit one (the shared start
    of two conversations)."""
    return TRL_PREFERENCE if "prompt" in record else TRL_IMPLICIT_PROMPT


_SIGNATURES: list[tuple[str, set[str]]] = [
    ("openai-comparisons", {"summaries"}),
    ("pandalm", {"annotator1"}),
    ("llmbar", {"input", "output_1", "output_2", "label"}),
    ("mt-bench-human", {"conversation_a", "conversation_b", "winner"}),
    ("tldr-posts", {"instruction_id"}),
    ("trl-preference", {"prompt", "chosen"}),
]
"""The most telling keys of each format: the parser then names whatever else is missing."""

CONTEXT_NAMES = ("context", "prompt", "instruction", "query", "question", "input", "post", "text")
LABEL_NAMES = ("label", "winner", "preference", "choice", "verdict", "judgment", "judgement")
RESPONSE_PAIRS: list[tuple[str, str, dict[str, LabelTarget]]] = [
    ("output_1", "output_2", {"1": "A", "2": "B", "1.5": "tie", "output_1": "A", "output_2": "B"}),
    ("response1", "response2", {"1": "A", "2": "B", "response1": "A", "response2": "B"}),
    ("response_1", "response_2", {"1": "A", "2": "B", "response_1": "A", "response_2": "B"}),
    ("response_a", "response_b", {"response_a": "A", "response_b": "B"}),
    ("completion_a", "completion_b", {"completion_a": "A", "completion_b": "B"}),
]
"""Response column pairs with a label column, and the label values their names make
unambiguous (a bare 0 or 1 is not: it may be an index or a tie)."""
WORD_LABELS: dict[str, LabelTarget] = {
    "a": "A",
    "b": "B",
    "model_a": "A",
    "model_b": "B",
    "model1": "A",
    "model2": "B",
    "model_1": "A",
    "model_2": "B",
    "tie": "tie",
    "draw": "tie",
    "tie (bothbad)": "tie",
}


def _first_present(keys: set[str], names: Sequence[str]) -> str | None:
    by_fold = {key.casefold(): key for key in keys}
    return next((by_fold[n] for n in names if n in by_fold), None)


def _detect_columns(record: Mapping[str, Any]) -> ColumnMap | None:
    keys = set(record)
    if "chosen" in keys and "rejected" in keys:
        return trl_map(record) if isinstance(record["chosen"], list) else None
    label = _first_present(keys, LABEL_NAMES)
    for first, second, values in RESPONSE_PAIRS:
        if {first, second} <= keys and label is not None:
            return ColumnMap(
                context=_first_present(keys - {first, second, label}, CONTEXT_NAMES),
                response_a=first,
                response_b=second,
                label=label,
                labels={**values, **WORD_LABELS},
            )
    return None


LABEL_VALUES = frozenset({*WORD_LABELS, "1", "2", "1.5", "0.5"})
"""Values that look like a pairwise label (case-insensitive): how ``suggest_map`` finds a label
column whose name says nothing (``human`` holding ``model1``/``model2``/``TIE``)."""


def _looks_like_label(value: Any) -> bool:
    return isinstance(value, str | int | float) and str(value).strip().casefold() in LABEL_VALUES


def suggest_map(record: Mapping[str, Any]) -> str:
    """A ``--map`` line for a table whose format is not detected, guessed from column names and
    their order (``<column>`` where nothing fits). The label is a column named like one
    (``LABEL_NAMES``), else the column whose value looks like a label (``LABEL_VALUES``: word
    labels first), else the last column that is not a response."""
    keys = [str(key) for key in record]
    context = _first_present(set(keys), CONTEXT_NAMES)
    label = _first_present(set(keys) - {context}, LABEL_NAMES)
    if label is None:
        candidates = [key for key in keys if key != context and _looks_like_label(record[key])]
        words = [key for key in candidates if isinstance(record[key], str)]
        words = [key for key in words if not record[key].strip().isdigit()]
        label = (words or candidates or [None])[0]
    rest = [key for key in keys if key not in (context, label)]
    texts = [key for key in rest if isinstance(record[key], str)] or rest
    twins = [
        (one, two)
        for at, one in enumerate(texts)
        for two in texts[at + 1 :]
        if len(one) == len(two) and sum(x != y for x, y in zip(one, two, strict=True)) == 1
    ]
    if twins:  # two columns named alike (out1/out2, model_a/model_b): the responses
        texts = [*twins[0], *(key for key in texts if key not in twins[0])]
        if context is None and len(texts) >= 3:
            context, texts = texts[2], texts[:2]
    if context is None and len(texts) >= 3:
        context, texts = texts[0], texts[1:]
    if label is None and len(rest) > 2:
        label = next((key for key in reversed(rest) if key not in texts[:2]), None)
    first = texts[0] if texts else "<column>"
    second = texts[1] if len(texts) > 1 else "<column>"
    return (
        f"--map 'context={context or '<column>'},response_a={first},response_b={second},"
        f"label={label or '<column>'},labels=VALUE:A;VALUE:B;VALUE:tie'"
    )


def detect_format(record: Mapping[str, Any], place: Place) -> tuple[str, ColumnMap | None]:
    """The format whose required keys the first record has, and the column map of a detected
    table shape (TRL conversational preferences, response pairs with a label column). Raises
    InputError listing the columns seen and a suggested ``--map`` line."""
    keys = set(record)
    for name, required in _SIGNATURES:
        if required <= keys:
            return name, (trl_map(record) if name == "trl-preference" else None)
    detected = _detect_columns(record)
    if detected is not None:
        return ("trl-preference" if detected.chosen else "columns"), detected
    if "chosen" in keys:
        return "hh-rlhf", None
    if "prompt" in keys and not keys & PAIR_KEYS:
        return "trl-prompts", None
    shown = ", ".join(str(key) for key in list(record)[:20])
    raise place.error(
        f"cannot detect the format; columns: {shown}. Pass --format "
        f"({', '.join(ALL_FORMATS)}), or map your columns: {suggest_map(record)}"
    )
