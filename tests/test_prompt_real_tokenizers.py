"""The prompt engine with the built-in labelers' real tokenizers (run `labelbench models pull`)."""

from __future__ import annotations

import pytest
from test_prompt_golden import PAIRS

from labelbench.errors import ModelError
from labelbench.prompting import answer_token_ids, direct_score_request, list_variants, plan

pytestmark = pytest.mark.slow


@pytest.fixture(
    scope="module",
    params=["smollm2-135m", "gemma3-270m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"],
)
def tokenizer(request: pytest.FixtureRequest):
    from labelbench.models.registry import is_pulled, load_tokenizer

    if request.param != "smollm2-135m" and not is_pulled(request.param):
        pytest.skip(f"{request.param} is not pulled (`labelbench models pull {request.param}`)")
    return load_tokenizer(request.param)


def test_every_variant_plans_with_single_token_answers(tokenizer) -> None:
    for name in list_variants():
        task = name.split("/")[0].split("_")[0]
        result = plan([PAIRS[task]], name, tokenizer=tokenizer, max_tokens=2048)
        assert result.requests and result.shortened == 0
    digits = answer_token_ids([str(i) for i in range(1, 10)], tokenizer, after="Rating=")
    assert len(set(digits)) == 9
    assert len(tokenizer("10", add_special_tokens=False)["input_ids"]) == 2  # why the scale is 1-9


def test_chat_or_raw(tokenizer) -> None:
    pair = PAIRS["dialogue"]
    if not tokenizer.chat_template:
        with pytest.raises(ModelError, match="no chat template"):
            plan([pair], "dialogue_helpful/base-0shot", tokenizer=tokenizer, chat=True)
        return
    request = plan([pair], "dialogue_helpful/base-0shot-cot", tokenizer=tokenizer, chat=True)
    first = request.requests[0].request
    assert first.shared.startswith("<|im_start|>")
    assert first.tail.endswith("<|im_end|>\n<|im_start|>assistant\nRationale:")
    direct = direct_score_request(
        pair.context, pair.response_a, "dialogue", tokenizer=tokenizer, chat=True
    )
    assert direct.text.endswith("assistant\nRating=")


def test_budget_in_real_tokens(tokenizer) -> None:
    pair = PAIRS["summarization"].model_copy(
        update={"context": " ".join(f"Sentence {i} of a long post." for i in range(400))}
    )
    result = plan([pair], "summarization/detailed-2shot", tokenizer=tokenizer, max_tokens=1024)
    assert result.shortened == 1
    for planned in result.requests:
        assert len(tokenizer(planned.request.text)["input_ids"]) <= 1024
        assert planned.request.text.endswith("Preferred Summary=")
