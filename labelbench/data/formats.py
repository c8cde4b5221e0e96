"""Parsers from the original release formats to the canonical records, and format detection."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from labelbench.data.record import Annotation, Comparison, PromptItem, TaskKind, content_hash
from labelbench.data.sources import Place

ASSISTANT_TURN = "\n\nAssistant:"
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
    real comparisons and are kept; in a user's own table an empty response is an error."""
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
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
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
        meta={**_source_meta(place), "dataset": "hh_rlhf", "a_is": a_is},
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


LabelKind = Literal["index", "prob", "letter"]


class ColumnMap(BaseModel):
    """How the columns of an arbitrary table map to a comparison.

    Either ``response_a`` + ``response_b`` + ``label``, or ``chosen`` + ``rejected`` (the order
    shown is then chosen from content). Without ``context``, chosen/rejected are split as
    dialogue transcripts. ``label_kind``: ``index`` = 1 or 2 (0 = tie); ``prob`` = P(A) in
    [0, 1]; ``letter`` = A, B or tie.
    """

    model_config = ConfigDict(extra="forbid")

    context: str | None = None
    response_a: str | None = None
    response_b: str | None = None
    label: str | None = None
    label_kind: LabelKind = "index"
    chosen: str | None = None
    rejected: str | None = None
    id: str | None = None
    group_id: str | None = None
    task: TaskKind = "instruction"

    @classmethod
    def parse(cls, spec: str) -> ColumnMap:
        """From ``key=column,key=column`` (the command-line form)."""
        pairs: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            key, sep, value = item.partition("=")
            if not sep or not value:
                raise ValueError(f"expected key=column, got {item!r}")
            pairs[key.strip()] = value.strip()
        return cls.model_validate(pairs)

    def check(self) -> None:
        pairwise = self.response_a and self.response_b and self.label
        preference = self.chosen and self.rejected
        if not pairwise and not preference:
            raise ValueError("map response_a, response_b and label, or chosen and rejected")


def _label_pref(value: Any, kind: LabelKind, place: Place, column: str) -> float:
    if kind == "letter":
        letters = {"a": 1.0, "b": 0.0, "tie": 0.5}
        key = str(value).strip().lower()
        if key not in letters:
            raise place.error(f"label {value!r} out of range [A, B, tie]", field=column)
        return letters[key]
    if kind == "prob":
        try:
            pref = float(value)
        except (TypeError, ValueError):
            raise place.error(f"expected a number, found {value!r}", field=column) from None
        if not 0.0 <= pref <= 1.0:
            raise place.error(f"label {pref} out of range [0, 1]", field=column)
        return pref
    return PANDALM_PREF[integer({column: value}, place, column, {0, 1, 2})]


def parse_columns(record: Mapping[str, Any], place: Place, columns: ColumnMap) -> Comparison:
    """Any table with a column mapping."""
    if columns.chosen and columns.rejected:
        chosen = text(record, place, columns.chosen)
        rejected = text(record, place, columns.rejected)
        if columns.context:
            context = text(record, place, columns.context)
        else:
            context, chosen, rejected = split_transcripts(chosen, rejected, place)
        response_a, response_b, pref_a, a_is = _ordered(context, chosen, rejected)
        order: Literal["source", "content_hash"] = "content_hash"
        meta: dict[str, Any] = {"a_is": a_is}
    else:
        assert columns.response_a and columns.response_b and columns.label
        context = text(record, place, columns.context) if columns.context else ""
        response_a = text(record, place, columns.response_a)
        response_b = text(record, place, columns.response_b)
        pref_a = _label_pref(
            field(record, place, columns.label), columns.label_kind, place, columns.label
        )
        order, meta = "source", {}
    group = (
        str(field(record, place, columns.group_id)) if columns.group_id else content_hash(context)
    )
    item_id = (
        str(field(record, place, columns.id))
        if columns.id
        else f"row-{content_hash(context, response_a, response_b)}"
    )
    return Comparison(
        id=item_id,
        group_id=group,
        task=columns.task,
        context=context,
        response_a=response_a,
        response_b=response_b,
        annotations=(Annotation(pref_a=pref_a),),
        order=order,
        meta={**_source_meta(place), "dataset": "custom", **meta},
    )


Parser = Callable[[Mapping[str, Any], Place], Comparison]

COMPARISON_FORMATS: dict[str, Parser] = {
    "openai-comparisons": parse_openai_comparison,
    "hh-rlhf": parse_hh_rlhf,
    "pandalm": parse_pandalm,
    "llmbar": parse_llmbar,
}
PROMPT_FORMATS = {"tldr-posts": parse_tldr_post}
TRL_PREFERENCE = ColumnMap(context="prompt", chosen="chosen", rejected="rejected")
ALL_FORMATS = [*COMPARISON_FORMATS, "trl-preference", "columns", *PROMPT_FORMATS]

_SIGNATURES: list[tuple[str, set[str]]] = [
    ("openai-comparisons", {"summaries"}),
    ("pandalm", {"annotator1"}),
    ("llmbar", {"output_1"}),
    ("tldr-posts", {"instruction_id"}),
    ("trl-preference", {"prompt", "chosen"}),
    ("hh-rlhf", {"chosen"}),
]
"""The most telling keys of each format: the parser then names whatever else is missing."""


def detect_format(record: Mapping[str, Any], place: Place) -> str:
    """The format whose required keys the first record has."""
    keys = set(record)
    for name, required in _SIGNATURES:
        if required <= keys:
            return name
    raise place.error(
        f"unknown format (keys: {', '.join(sorted(keys)[:8])}); pass --format "
        f"({', '.join(ALL_FORMATS)}), and --map for 'columns'"
    )
