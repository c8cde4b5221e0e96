"""From (comparisons, variant) to the exact requests a labeler must run, within a length budget."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from labelbench.data.record import Comparison, content_hash
from labelbench.errors import InputError
from labelbench.prompting.render import render
from labelbench.prompting.tokens import (
    MESSAGE_MARK,
    ROLES,
    SYSTEM_FOLD,
    ChatFrame,
    answer_token_ids,
    chat_frame,
    chat_messages,
    message_frame,
    prompt_token_ids,
    refuses_system,
    text_token_ids,
)
from labelbench.prompting.variants import Variant, load_variant
from labelbench.requests import Order, PlannedRequest, RationaleRequest, Request, ScoreRequest

TASK_FAMILY = {
    "summarization": "summarization",
    "dialogue": "dialogue_helpful",
    "instruction": "instruction",
}
SHORTENED_MARK = "[...]"
Counter = Callable[[str], int]
Made = list[tuple[Order, Request]]

__all__ = [
    "MESSAGE_MARK",
    "ROLES",
    "SYSTEM_FOLD",
    "TASK_FAMILY",
    "ChatFrame",
    "Exemplar",
    "PlanResult",
    "answer_token_ids",
    "chat_frame",
    "chat_messages",
    "check_answers",
    "check_tasks",
    "describe_plan",
    "direct_score_request",
    "draw_exemplars",
    "fitted_direct_request",
    "message_frame",
    "plan",
    "prompt_token_ids",
    "refuses_system",
    "request_length",
    "shared_prefix",
]
"""Planning is defined here; the chat frames and token ids (``labelbench.prompting.tokens``) are
imported from here as well."""


@dataclass(frozen=True)
class Exemplar:
    """A solved example shown before the item; ``answer`` names the preferred response."""

    id: str
    context: str
    response_1: str
    response_2: str
    answer: str
    rationale: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanResult:
    """The requests ``plan`` made, how many items had their context shortened, and the few-shot
    exemplars shown."""

    requests: list[PlannedRequest]
    shortened: int
    exemplar_ids: tuple[str, ...] = ()


def check_answers(variant: Variant, tokenizer: Any) -> list[int]:
    """Answer token ids for a variant; the error names the variant file that sets the answers."""
    ending = render(variant.spec.templates.ending, **_common(variant))
    try:
        return answer_token_ids(variant.spec.answers, tokenizer, after=ending)
    except InputError as error:
        raise variant.error(
            "answers", f"{error.message} (template 'ending') in {error.source}"
        ) from None


def _common(variant: Variant) -> dict[str, Any]:
    return {"task": variant.spec.task, "answers": list(variant.spec.answers)}


def _pool_exemplars(
    variant: Variant, comparisons: Sequence[Comparison], pool: Sequence[Comparison] | None
) -> list[Exemplar]:
    if pool is None:
        return [
            Exemplar(
                id=e.id,
                context=e.context,
                response_1=e.response_1,
                response_2=e.response_2,
                answer=str(e.preferred),
                rationale=e.rationale,
                meta=e.meta,
            )
            for e in variant.spec.exemplar_pool
        ]
    taken = {c.id for c in comparisons} | {c.group_id for c in comparisons}
    overlap = [p.id for p in pool if p.id in taken or p.group_id in taken]
    if overlap:
        raise InputError(
            "exemplar pool",
            f"{len(overlap)} exemplars share an id or group with the evaluated comparisons "
            f"(first: {overlap[0]}); draw exemplars from a disjoint split",
        )
    if variant.spec.rationales_in_exemplars:
        raise variant.error(
            "cot",
            "exemplars need rationales, which a pool of comparisons does not have; "
            "use the built-in pool or a variant without rationales",
        )
    first, second = variant.spec.answers
    return [
        Exemplar(
            id=p.id,
            context=p.context,
            response_1=p.response_a,
            response_2=p.response_b,
            answer=first if pref > 0.5 else second,
            meta=p.meta,
        )
        for p in pool
        if p.task == variant.spec.task and (pref := p.human_pref_a) is not None and not p.is_tie
    ]


def draw_exemplars(
    variant: Variant,
    comparisons: Sequence[Comparison] = (),
    pool: Sequence[Comparison] | None = None,
    seed: int = 0,
) -> list[Exemplar]:
    """``shots`` exemplars drawn from the pool, seeded by the variant name and ``seed``, with the
    preferred answers balanced as far as the pool allows."""
    shots = variant.spec.shots
    if shots == 0:
        return []
    candidates = sorted(_pool_exemplars(variant, comparisons, pool), key=lambda e: e.id)
    if shots > len(candidates):
        raise variant.error(
            "shots", f"shots={shots} but the exemplar pool has {len(candidates)} usable exemplars"
        )
    rng = random.Random(int(content_hash("exemplars", variant.name, str(seed)), 16))
    by_answer = [[e for e in candidates if e.answer == answer] for answer in variant.spec.answers]
    for group in by_answer:
        rng.shuffle(group)
    rng.shuffle(by_answer)
    # Alternate between preferred answers so the exemplars do not teach a position bias.
    interleaved = [e for batch in itertools.zip_longest(*by_answer) for e in batch if e is not None]
    chosen = interleaved[:shots]
    rng.shuffle(chosen)
    return chosen


def _context_block(variant: Variant, context: str, meta: dict[str, Any]) -> str:
    return render(variant.spec.templates.context, context=context, meta=meta, **_common(variant))


def _candidates_block(variant: Variant, first: str, second: str) -> str:
    return render(
        variant.spec.templates.candidates, response_1=first, response_2=second, **_common(variant)
    )


def _exemplar_text(variant: Variant, exemplar: Exemplar) -> str:
    templates, common = variant.spec.templates, _common(variant)
    values = {
        "context_block": _context_block(variant, exemplar.context, exemplar.meta),
        "candidates_block": _candidates_block(variant, exemplar.response_1, exemplar.response_2),
        "ending": render(templates.ending, **common),
        "answer": exemplar.answer,
    }
    if not variant.spec.rationales_in_exemplars:
        return render(templates.exemplar, **values, **common)
    values |= {
        "cot_request": render(templates.cot_request, **common),
        "rationale_cue": render(templates.rationale_cue, **common),
        "rationale": (exemplar.rationale or "").strip(),
    }
    return render(templates.exemplar_rationale, **values, **common)


def shared_prefix(variant: Variant, exemplars: Sequence[Exemplar], frame: ChatFrame) -> str:
    """Chat header, preamble and exemplars: the same for every item of a variant."""
    preamble = render(variant.spec.preambles[variant.spec.preamble], **_common(variant)).strip()
    shown = "".join(_exemplar_text(variant, e).rstrip("\n") + "\n\n" for e in exemplars)
    return frame.prefix + preamble + "\n\n" + shown


def _orders(variant: Variant, item: Comparison, seed: int) -> tuple[Order, ...]:
    if variant.spec.position == "both":
        return ("AB", "BA")
    if variant.spec.position == "fixed":
        return ("AB",)
    coin = int(content_hash("order", variant.name, str(seed), item.id), 16) % 2
    return ("AB",) if coin == 0 else ("BA",)


def _requests(
    variant: Variant,
    item: Comparison,
    context: str,
    orders: Sequence[Order],
    shared: str,
    frame: ChatFrame,
) -> Made:
    spec, common = variant.spec, _common(variant)
    context_block = _context_block(variant, context, item.meta)
    ending = render(spec.templates.ending, **common)
    made: Made = []
    for order in orders:
        first, second = (
            (item.response_a, item.response_b)
            if order == "AB"
            else (item.response_b, item.response_a)
        )
        user_tail = _candidates_block(variant, first, second)
        if spec.cot:
            user_tail += render(spec.templates.cot_request, **common)
        if frame.suffix:
            user_tail = user_tail.rstrip()  # the chat template closes the user message itself
        request: Request
        if not spec.cot:
            request = ScoreRequest(
                shared, context_block, user_tail + frame.suffix + ending, spec.answers
            )
        else:
            sampling = spec.self_consistency
            tail = user_tail + frame.suffix + render(spec.templates.rationale_cue, **common)
            request = RationaleRequest(
                shared,
                context_block,
                tail,
                score_suffix="\n" + ending,
                answers=spec.answers,
                n=sampling.n if sampling else 1,
                temperature=sampling.temperature if sampling else 0.0,
                top_k=sampling.top_k if sampling else None,
                max_new_tokens=spec.max_new_tokens,
            )
        made.append((order, request))
    return made


def _frame(variant: Variant, tokenizer: Any, chat: bool, messages: bool) -> ChatFrame:
    """How a variant's text is framed: chat messages for an API, the tokenizer's chat template,
    or raw text."""
    if messages:
        return message_frame(variant.spec.system)
    if chat and tokenizer is None:
        raise InputError(
            variant.name, "chat=True needs the labeler's tokenizer for its chat template"
        )
    return chat_frame(tokenizer, variant.spec.system) if chat else ChatFrame()


def _counter(tokenizer: Any) -> Counter:
    if tokenizer is None:
        return len
    return lambda text: len(prompt_token_ids(tokenizer, text))


def request_length(request: Request, count: Counter) -> int:
    """Length the request needs, a rationale's max_new_tokens and the score suffix included."""
    if isinstance(request, ScoreRequest):
        return count(request.text)
    return count(request.text) + request.max_new_tokens + count(request.score_suffix)


def _shortened(variant: Variant, context: str, tokenizer: Any) -> tuple[Callable[[int], str], int]:
    """(keep, size): keep(m) is the context cut to m of its size tokens (characters without a
    tokenizer), marked where it was cut."""
    pieces: Sequence[Any] = text_token_ids(tokenizer, context) if tokenizer is not None else context

    def join(part: Sequence[Any]) -> str:
        return tokenizer.decode(list(part)) if tokenizer is not None else "".join(part)

    def keep(m: int) -> str:
        if variant.spec.shorten == "end":
            return (join(pieces[:m]).rstrip() + " " + SHORTENED_MARK).lstrip()
        return (SHORTENED_MARK + " " + join(pieces[len(pieces) - m :]).lstrip()).rstrip()

    return keep, len(pieces)


def check_tasks(items: Sequence[Any], variant: Variant | str) -> None:
    """InputError naming the first item (anything with ``id``, ``task`` and ``meta``: comparisons,
    prompt items) whose task is not the variant's, by its file and line when its ``meta`` has
    them; called before any model is loaded."""
    variant = variant if isinstance(variant, Variant) else load_variant(variant)
    for index, item in enumerate(items):
        if item.task != variant.spec.task:
            kind = "comparison" if isinstance(item, Comparison) else "prompt"
            meta = getattr(item, "meta", None) or {}
            raise InputError(
                meta.get("source") or f"{kind} {item.id}",
                f"{kind} {item.id} is a {item.task} item, but variant {variant.name} is for "
                f"{variant.spec.task}; choose a {item.task} variant (`labelbench variants`)",
                line=meta.get("line") if meta.get("source") else None,
                record=None if meta.get("source") and meta.get("line") else index,
            )


def plan(
    comparisons: Sequence[Comparison],
    variant: str | Variant,
    *,
    tokenizer: Any = None,
    pool: Sequence[Comparison] | None = None,
    seed: int = 0,
    chat: bool = False,
    max_tokens: int | None = None,
    messages: bool = False,
) -> PlanResult:
    """The requests a labeler must run for each comparison under a variant.

    ``max_tokens`` is the labeler's context budget, in tokens when ``tokenizer`` is given and in
    characters otherwise; an item over budget has its context (never its candidates, ending or
    rationale room) shortened, and ``PlanResult.shortened`` counts those items. ``messages``:
    render for a chat-completions API (``message_frame``: the server's template applies; no
    tokenizer needed).
    """
    variant = variant if isinstance(variant, Variant) else load_variant(variant)
    check_tasks(comparisons, variant)
    if tokenizer is not None:
        check_answers(variant, tokenizer)
    frame = _frame(variant, tokenizer, chat, messages)
    exemplars = draw_exemplars(variant, comparisons, pool, seed)
    shared = shared_prefix(variant, exemplars, frame)
    count = _counter(tokenizer)

    def fits(made: list[tuple[Order, Request]]) -> bool:
        return max_tokens is None or all(request_length(r, count) <= max_tokens for _, r in made)

    planned: list[PlannedRequest] = []
    shortened = 0
    for item in comparisons:
        orders = _orders(variant, item, seed)

        def build(context: str, item: Comparison = item, orders: Sequence[Order] = orders) -> Made:
            return _requests(variant, item, context, orders, shared, frame)

        made = build(item.context)
        if not fits(made):
            made = _fit(variant, item, build, fits, tokenizer, max_tokens)
            shortened += 1
        planned += [PlannedRequest(item.id, variant.name, order, r) for order, r in made]
    return PlanResult(planned, shortened, tuple(e.id for e in exemplars))


def _fit(
    variant: Variant,
    item: Comparison,
    build: Callable[[str], Made],
    fits: Callable[[Made], bool],
    tokenizer: Any,
    max_tokens: int | None,
    what: str = "",
) -> Made:
    """The longest shortened context that fits, by bisection over how much of it to keep."""
    keep, size = _shortened(variant, item.context, tokenizer)
    best = build(keep(0))
    if not fits(best):
        unit = "tokens" if tokenizer is not None else "characters"
        raise InputError(
            what or f"comparison {item.id}",
            f"does not fit in {max_tokens} {unit} (the labeler's context limit) even with its "
            "context removed: the preamble, exemplars, candidates, ending and rationale room are "
            "never cut; raise the budget or use fewer shots or a shorter response",
            field="context",
        )
    low, high = 0, size - 1
    while low < high:
        middle = (low + high + 1) // 2
        made = build(keep(middle))
        if fits(made):
            low, best = middle, made
        else:
            high = middle - 1
    return best


def direct_score_request(
    context: str,
    response: str,
    task: str,
    *,
    meta: dict[str, Any] | None = None,
    variant: str | Variant | None = None,
    tokenizer: Any = None,
    chat: bool = False,
    max_tokens: int | None = None,
    messages: bool = False,
) -> ScoreRequest:
    """Rate one response on 1..scale (scale <= 9, default 9: every answer is one digit, one token).

    ``task`` is a task kind ("dialogue" means helpfulness) or a family ("dialogue_harmless"); the
    templates come from ``variant`` or that family's base variant. The rating is the expectation of
    the answer distribution over "1".."scale". ``max_tokens`` is the labeler's context budget
    (tokens with ``tokenizer``, else characters), applied as ``plan`` applies it: an over-long
    context is shortened by the variant's rule (``fitted_direct_request`` says whether it was);
    InputError when the request does not fit even with its context removed.
    """
    return fitted_direct_request(
        context,
        response,
        task,
        meta=meta,
        variant=variant,
        tokenizer=tokenizer,
        chat=chat,
        max_tokens=max_tokens,
        messages=messages,
    )[0]


def fitted_direct_request(
    context: str,
    response: str,
    task: str,
    *,
    meta: dict[str, Any] | None = None,
    variant: str | Variant | None = None,
    tokenizer: Any = None,
    chat: bool = False,
    max_tokens: int | None = None,
    messages: bool = False,
) -> tuple[ScoreRequest, bool]:
    """``direct_score_request`` and whether its context was shortened to fit ``max_tokens``;
    ``messages``: rendered for a chat-completions API (``message_frame``)."""
    if variant is None:
        variant = f"{TASK_FAMILY.get(task, task)}/base-0shot"
    variant = variant if isinstance(variant, Variant) else load_variant(variant)
    direct = variant.spec.direct_score
    answers = tuple(str(score) for score in range(1, direct.scale + 1))
    values = {"scale": direct.scale, **_common(variant)}
    ending = render(direct.ending, **values)
    if tokenizer is not None:
        try:
            answer_token_ids(answers, tokenizer, after=ending)
        except InputError as error:
            raise variant.error(
                "direct_score.scale", f"{error.message} in {error.source}"
            ) from None
    frame = _frame(variant, tokenizer, chat, messages)
    shared = frame.prefix + render(direct.instruction, **values)
    user_tail = render(direct.response, response=response, **values)
    if frame.suffix:
        user_tail = user_tail.rstrip()
    tail = user_tail + frame.suffix + ending

    def build(text: str) -> Made:
        return [
            ("AB", ScoreRequest(shared, _context_block(variant, text, meta or {}), tail, answers))
        ]

    made = build(context)
    count = _counter(tokenizer)

    def fits(made: Made) -> bool:
        return max_tokens is None or all(request_length(r, count) <= max_tokens for _, r in made)

    if fits(made):
        return made[0][1], False  # type: ignore[return-value]
    item = Comparison(
        id="direct", group_id="direct", task=task, context=context, response_a="", response_b=""
    )
    fitted = _fit(variant, item, build, fits, tokenizer, max_tokens, what="the request")
    return fitted[0][1], True  # type: ignore[return-value]


def describe_plan(result: PlanResult) -> str:
    """Every request as the model will see it, step by step and order by order."""
    lines: list[str] = []
    for planned in result.requests:
        request = planned.request
        where = f"{planned.variant} | item {planned.item_id} | order {planned.order}"
        sizes = (
            f"shared {len(request.shared)} + context {len(request.context)} "
            f"+ tail {len(request.tail)} chars"
        )
        answers = "/".join(request.answers)
        if isinstance(request, ScoreRequest):
            lines += [
                f"===== {where} | score answers {answers} after the text ({sizes}) =====",
                request.text,
            ]
            continue
        sampling = f"n={request.n}, temperature={request.temperature}, top_k={request.top_k}"
        lines += [
            f"===== {where} | step 1: generate a rationale ({sampling}, "
            f"max_new_tokens={request.max_new_tokens}; {sizes}) =====",
            request.text,
            f"===== {where} | step 2: score answers {answers} after the rationale =====",
            "{step 1 text}{rationale}" + request.score_suffix,
        ]
    lines.append(f"===== {len(result.requests)} requests; {result.shortened} items shortened =====")
    return "\n".join(lines) + "\n"
