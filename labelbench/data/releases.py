"""Parsers of the original releases: OpenAI's TL;DR comparisons and posts, Anthropic's HH-RLHF,
PandaLM, LLMBar and MT-Bench human judgments, each record into a canonical ``Comparison`` or
``PromptItem``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labelbench.data.columns import ColumnMap, LabelTarget, label_pref
from labelbench.data.conversations import (
    ROLES,
    diverges_early,
    messages,
    split_conversations,
    split_transcripts,
)
from labelbench.data.fields import field, integer, ordered, source_meta, text
from labelbench.data.record import Annotation, Comparison, PromptItem, content_hash
from labelbench.data.sources import Place


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
            **source_meta(place),
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


def parse_hh_rlhf(record: Mapping[str, Any], place: Place) -> Comparison:
    """Anthropic HH-RLHF: two full transcripts sharing the context up to the last Assistant turn."""
    chosen_text = text(record, place, "chosen")
    rejected_text = text(record, place, "rejected")
    context, chosen, rejected = split_transcripts(chosen_text, rejected_text, place)
    response_a, response_b, pref_a, a_is = ordered(context, chosen, rejected)
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
            **source_meta(place),
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
            **source_meta(place),
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
        meta={**source_meta(place), "dataset": "llmbar"},
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
            **source_meta(place),
            "dataset": "tldr",
            "title": record.get("title"),
            "subreddit": record.get("subreddit"),
        },
    )


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
            **source_meta(place),
            "dataset": "mt_bench",
            "model_a": model_a,
            "model_b": model_b,
            "turn": turn,
            "diverges_early": diverges_early(response_a, response_b),
        },
    )
