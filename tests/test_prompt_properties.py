"""Property tests: any fields render; the ending is always last; budgets never cut fixed parts."""

from __future__ import annotations

from conftest import build_tiny_tokenizer
from hypothesis import event, given, settings
from hypothesis import strategies as st
from test_prompt_golden import CHAT_TEMPLATE, PAIRS

from labelbench.data.record import Comparison
from labelbench.errors import InputError
from labelbench.prompting import list_variants, load_variant, plan
from labelbench.prompting.planner import request_length
from labelbench.requests import RationaleRequest, ScoreRequest

TOKENIZER = build_tiny_tokenizer()
CHAT_TOKENIZER = build_tiny_tokenizer()
CHAT_TOKENIZER.chat_template = CHAT_TEMPLATE


def counter(text: str) -> int:
    return len(TOKENIZER(text)["input_ids"])


VARIANTS = {name: load_variant(name) for name in list_variants()}
odd_text = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.sampled_from("{}%#\n\r\t \\'\"<|>"), max_size=60),
    st.text(min_size=2000, max_size=6000),
)
meta_values = st.one_of(st.none(), st.integers(), st.text(max_size=50), st.booleans())
metas = st.dictionaries(
    st.sampled_from(["title", "subreddit", "site", "input", "other"]), meta_values
)


@st.composite
def comparisons(draw: st.DrawFn, task: str, contexts: st.SearchStrategy[str]) -> Comparison:
    return PAIRS[task].model_copy(
        update={
            "context": draw(contexts),
            "response_a": draw(odd_text),
            "response_b": draw(odd_text),
            "meta": draw(metas),
        }
    )


@st.composite
def variant_and_item(
    draw: st.DrawFn, contexts: st.SearchStrategy[str] = odd_text
) -> tuple[str, Comparison]:
    name = draw(st.sampled_from(sorted(VARIANTS)))
    return name, draw(comparisons(VARIANTS[name].spec.task, contexts))


@settings(max_examples=150, deadline=None)
@given(variant_and_item(), st.booleans())
def test_any_fields_render_and_the_ending_is_last(case: tuple[str, Comparison], chat: bool) -> None:
    name, item = case
    variant = VARIANTS[name]
    result = plan([item], variant, tokenizer=CHAT_TOKENIZER if chat else None, chat=chat)
    ending = variant.spec.templates.ending
    assert result.requests
    for planned in result.requests:
        request = planned.request
        if isinstance(request, ScoreRequest):
            assert request.text.endswith(ending)
        else:
            assert isinstance(request, RationaleRequest)
            assert request.tail.endswith(variant.spec.templates.rationale_cue)
            assert request.score_suffix.endswith(ending)
        assert request.text == request.shared + request.context + request.tail
    first, last = result.requests[0].request, result.requests[-1].request
    assert first.shared + first.context == last.shared + last.context


@settings(max_examples=80, deadline=None)
@given(variant_and_item(st.text(min_size=300, max_size=4000)), st.floats(-0.05, 1.05))
def test_budget_never_touches_candidates_or_ending(
    case: tuple[str, Comparison], fraction: float
) -> None:
    name, item = case
    variant = VARIANTS[name]
    full = plan([item], variant, tokenizer=TOKENIZER)
    longest = max(request_length(r.request, counter) for r in full.requests)
    bare = plan([item.model_copy(update={"context": ""})], variant, tokenizer=TOKENIZER)
    fixed = max(request_length(r.request, counter) for r in bare.requests)
    budget = fixed + int(fraction * (longest - fixed))
    try:
        cut = plan([item], variant, tokenizer=TOKENIZER, max_tokens=budget)
    except InputError as error:
        assert "even with its context removed" in error.message
        event("too small for the fixed parts")
        return
    event(f"shortened={cut.shortened}")
    assert cut.shortened in (0, 1)
    for before, after in zip(full.requests, cut.requests, strict=True):
        assert after.request.tail == before.request.tail
        assert after.request.shared == before.request.shared
        length = len(TOKENIZER(after.request.text)["input_ids"])
        if isinstance(after.request, RationaleRequest):
            assert after.request.score_suffix == before.request.score_suffix
            length += after.request.max_new_tokens
            length += len(TOKENIZER(after.request.score_suffix)["input_ids"])
        assert length <= budget
        if cut.shortened == 0:
            assert after.request.context == before.request.context
