"""The formats by name (``ALL_FORMATS``) and format detection: which format a record is in, and
for an unknown table, the ``--map`` that would read it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from labelbench.data.columns import (
    ColumnMap,
    LabelTarget,
)
from labelbench.data.record import Comparison
from labelbench.data.releases import (
    parse_hh_rlhf,
    parse_llmbar,
    parse_mt_bench,
    parse_openai_comparison,
    parse_pandalm,
    parse_tldr_post,
)
from labelbench.data.sources import Place
from labelbench.data.trl_formats import (
    PAIR_KEYS,
    parse_trl_prompt,
    trl_map,
)

Parser = Callable[[Mapping[str, Any], Place], Comparison]


COMPARISON_FORMATS: dict[str, Parser] = {
    "openai-comparisons": parse_openai_comparison,
    "hh-rlhf": parse_hh_rlhf,
    "pandalm": parse_pandalm,
    "llmbar": parse_llmbar,
    "mt-bench-human": parse_mt_bench,
}


PROMPT_FORMATS = {"tldr-posts": parse_tldr_post, "trl-prompts": parse_trl_prompt}


ALL_FORMATS = [*COMPARISON_FORMATS, "trl-preference", "columns", *PROMPT_FORMATS]


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
