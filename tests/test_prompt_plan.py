"""The planner: requests per (pair, variant), shared prefixes, orders, exemplars, chat, budget."""

from __future__ import annotations

import copy

import pytest
from test_prompt_golden import CHAT_TEMPLATE, PAIRS, pair_for

from labelbench.data.record import Annotation
from labelbench.errors import InputError, ModelError
from labelbench.prompting import (
    answer_token_ids,
    direct_score_request,
    draw_exemplars,
    load_variant,
    plan,
)
from labelbench.requests import RationaleRequest, ScoreRequest


@pytest.fixture(scope="module")
def chat_tokenizer(tiny_tokenizer):
    tokenizer = copy.deepcopy(tiny_tokenizer)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def test_requests_share_prefixes_as_the_contract_says() -> None:
    items = [pair_for("summarization"), pair_for("summarization", "-2")]
    items[1] = items[1].model_copy(update={"context": "A different post about a bicycle."})
    result = plan(items, "summarization/detailed-2shot")
    assert [(r.item_id, r.order) for r in result.requests] == [
        ("golden-sum", "AB"),
        ("golden-sum", "BA"),
        ("golden-sum-2", "AB"),
        ("golden-sum-2", "BA"),
    ]
    requests = [r.request for r in result.requests]
    assert len({r.shared for r in requests}) == 1
    assert requests[0].context == requests[1].context != requests[2].context
    assert all(
        isinstance(r, ScoreRequest) and r.text.endswith("Preferred Summary=") for r in requests
    )
    pool_ids = {e.id for e in load_variant("summarization/detailed-2shot").spec.exemplar_pool}
    assert len(result.exemplar_ids) == 2 and set(result.exemplar_ids) <= pool_ids


def test_answer_1_is_response_a_in_order_ab_and_response_b_in_ba() -> None:
    pair = PAIRS["instruction"]
    ab, ba = (r.request for r in plan([pair], "instruction/base-0shot").requests)
    assert f"Response 1: {pair.response_a}\nResponse 2: {pair.response_b}" in ab.tail
    assert f"Response 1: {pair.response_b}\nResponse 2: {pair.response_a}" in ba.tail


def test_chain_of_thought_and_self_consistency_requests() -> None:
    pair = PAIRS["dialogue"]
    cot = plan([pair], "dialogue_helpful/base-0shot-cot").requests[0].request
    assert isinstance(cot, RationaleRequest)
    assert cot.tail.endswith("Rationale:")
    assert cot.score_suffix == "\nPreferred Response="
    assert (cot.n, cot.temperature, cot.top_k) == (1, 0.0, None)
    sc = plan([pair], "dialogue_harmless/detailed-0shot-cot-sc4-t0.7").requests[0].request
    assert isinstance(sc, RationaleRequest)
    assert (sc.n, sc.temperature, sc.top_k, sc.max_new_tokens) == (4, 0.7, 40, 128)


def test_position_modes() -> None:
    items = [pair_for("summarization", f"-{i}") for i in range(24)]
    fixed = plan(items, "summarization/detailed-0shot-fixed").requests
    assert [r.order for r in fixed] == ["AB"] * 24
    first = plan(items, "summarization/detailed-0shot-random", seed=1).requests
    again = plan(items, "summarization/detailed-0shot-random", seed=1).requests
    other = plan(items, "summarization/detailed-0shot-random", seed=2).requests
    orders = [r.order for r in first]
    assert len(orders) == 24 and set(orders) == {"AB", "BA"}
    assert orders == [r.order for r in again]
    assert orders != [r.order for r in other]


def test_exemplars_are_seeded_balanced_and_shown_in_the_shared_prefix() -> None:
    variant = load_variant("summarization/base-2shot")
    draws = {seed: draw_exemplars(variant, seed=seed) for seed in range(8)}
    assert [e.id for e in draws[3]] == [e.id for e in draw_exemplars(variant, seed=3)]
    assert len({tuple(e.id for e in d) for d in draws.values()}) > 1
    assert all(sorted(e.answer for e in d) == ["1", "2"] for d in draws.values())
    shared = plan([PAIRS["summarization"]], variant, seed=3).requests[0].request.shared
    for exemplar in draws[3]:
        assert exemplar.response_1 in shared
        assert "Rationale" not in shared


def test_cot_exemplars_show_rationales() -> None:
    variant = load_variant("summarization/detailed-2shot-cot")
    shared = plan([PAIRS["summarization"]], variant).requests[0].request.shared
    for exemplar in draw_exemplars(variant):
        assert (
            f"Rationale: {exemplar.rationale.strip()}\nPreferred Summary={exemplar.answer}"
            in shared
        )


def _pool(n: int, prefix: str = "pool"):
    base = PAIRS["summarization"]
    return [
        base.model_copy(
            update={
                "id": f"{prefix}-{i}",
                "group_id": f"{prefix}-group-{i}",
                "context": f"Pool post number {i}.",
                "annotations": (Annotation(pref_a=float(i % 2)),),
            }
        )
        for i in range(n)
    ]


def test_exemplars_from_a_user_pool() -> None:
    pool = _pool(6)
    result = plan([PAIRS["summarization"]], "summarization/base-2shot", pool=pool)
    assert set(result.exemplar_ids) <= {p.id for p in pool}
    shared = result.requests[0].request.shared
    assert shared.count("Pool post number") == 2
    assert "Preferred Summary=1" in shared and "Preferred Summary=2" in shared


def test_user_pool_must_be_disjoint_usable_and_large_enough() -> None:
    item = PAIRS["summarization"]
    overlapping = [*_pool(4), item.model_copy(update={"id": "other-id"})]
    with pytest.raises(InputError, match="share an id or group"):
        plan([item], "summarization/base-2shot", pool=overlapping)
    with pytest.raises(InputError, match="rationales"):
        plan([item], "summarization/base-2shot-cot", pool=_pool(4))
    ties = [p.model_copy(update={"annotations": (Annotation(pref_a=0.5),)}) for p in _pool(4)]
    with pytest.raises(InputError, match="0 usable exemplars"):
        plan([item], "summarization/base-2shot", pool=ties)


def test_task_mismatch_is_an_error() -> None:
    with pytest.raises(InputError, match=r"item, but variant .* is for"):
        plan([PAIRS["dialogue"]], "summarization/base-0shot")


def test_chat_wraps_the_prompt_and_keeps_the_ending_last(chat_tokenizer) -> None:
    pair = PAIRS["summarization"]
    raw = plan([pair], "summarization/base-0shot").requests[0].request
    chat = plan([pair], "summarization/base-0shot", tokenizer=chat_tokenizer, chat=True)
    request = chat.requests[0].request
    assert request.shared == "<|user|>\n" + raw.shared
    assert request.context == raw.context
    assert request.tail.endswith(
        f"{pair.response_b.strip()}<|end|>\n<|assistant|>\nPreferred Summary="
    )
    unwrapped = request.text.replace("<|user|>\n", "").replace("<|end|>\n<|assistant|>\n", "\n\n")
    assert unwrapped == raw.text
    cot = plan([pair], "summarization/base-0shot-cot", tokenizer=chat_tokenizer, chat=True)
    assert cot.requests[0].request.tail.endswith("better.<|end|>\n<|assistant|>\nRationale:")


def test_chat_needs_a_tokenizer_with_a_chat_template(tiny_tokenizer) -> None:
    with pytest.raises(InputError, match="needs the labeler's tokenizer"):
        plan([PAIRS["summarization"]], "summarization/base-0shot", chat=True)
    with pytest.raises(ModelError, match="no chat template"):
        plan(
            [PAIRS["summarization"]],
            "summarization/base-0shot",
            tokenizer=tiny_tokenizer,
            chat=True,
        )


def _long_pair(task: str, words: int = 600):
    pair = PAIRS[task]
    filler = " ".join(f"word{i}" for i in range(words))
    if task == "dialogue":
        context = (
            f"\n\nHuman: FIRST {filler}\n\nAssistant: ok\n\nHuman: LAST question?\n\nAssistant:"
        )
    else:
        context = f"FIRST {filler} LAST"
    return pair.model_copy(update={"context": context})


def test_budget_in_tokens_shortens_only_the_context(tiny_tokenizer) -> None:
    pair = _long_pair("summarization")
    full = plan([pair], "summarization/base-0shot").requests
    result = plan([pair], "summarization/base-0shot", tokenizer=tiny_tokenizer, max_tokens=300)
    assert result.shortened == 1
    for before, after in zip(full, result.requests, strict=True):
        assert len(tiny_tokenizer(after.request.text)["input_ids"]) <= 300
        assert after.request.tail == before.request.tail
        assert after.request.shared == before.request.shared
        assert "Text: FIRST" in after.request.context and "[...]" in after.request.context
        assert "LAST" not in after.request.context
    roomy = plan([pair], "summarization/base-0shot", tokenizer=tiny_tokenizer, max_tokens=100_000)
    assert roomy.shortened == 0


def test_dialogue_keeps_the_latest_turns_and_cot_reserves_rationale_room(tiny_tokenizer) -> None:
    pair = _long_pair("dialogue")
    result = plan(
        [pair], "dialogue_helpful/base-0shot-cot", tokenizer=tiny_tokenizer, max_tokens=700
    )
    assert result.shortened == 1
    request = result.requests[0].request
    assert isinstance(request, RationaleRequest)
    assert "LAST question?" in request.context and "FIRST" not in request.context
    assert request.context.startswith("Conversation:\n[...]")
    used = len(tiny_tokenizer(request.text)["input_ids"]) + request.max_new_tokens
    assert used + len(tiny_tokenizer(request.score_suffix)["input_ids"]) <= 700


def test_budget_without_tokenizer_counts_characters() -> None:
    pair = _long_pair("instruction")
    result = plan([pair], "instruction/base-0shot", max_tokens=900)
    assert result.shortened == 1
    assert all(len(r.request.text) <= 900 for r in result.requests)


def test_budget_too_small_for_the_fixed_parts_is_an_error(tiny_tokenizer) -> None:
    with pytest.raises(InputError, match="even with its context removed"):
        plan(
            [PAIRS["summarization"]],
            "summarization/detailed-2shot",
            tokenizer=tiny_tokenizer,
            max_tokens=50,
        )


def test_answer_tokens(tiny_tokenizer) -> None:
    ids = answer_token_ids(["1", "2"], tiny_tokenizer, after="Preferred Summary=")
    assert len(ids) == 2 and ids[0] != ids[1]
    assert tiny_tokenizer.convert_ids_to_tokens(ids) == ["1", "2"]


def test_direct_score_request(tiny_tokenizer, chat_tokenizer) -> None:
    pair = PAIRS["dialogue"]
    request = direct_score_request(
        pair.context, pair.response_a, "dialogue", tokenizer=tiny_tokenizer
    )
    assert request.answers == ("1", "2", "3", "4", "5", "6", "7", "8", "9")
    assert "helpful" in request.shared and request.text.endswith("Rating=")
    assert pair.response_a.strip() in request.tail
    harmless = direct_score_request(pair.context, pair.response_a, "dialogue_harmless")
    assert "harmless" in harmless.shared
    chat = direct_score_request(
        pair.context, pair.response_a, "dialogue", tokenizer=chat_tokenizer, chat=True
    )
    assert chat.shared.startswith("<|user|>\n") and chat.tail.endswith("<|assistant|>\nRating=")
