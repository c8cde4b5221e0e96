"""A variant's system message replaces the chat template's default one (Qwen2.5 and SmolLM2 insert
an identity line of their own when no system message is given)."""

from __future__ import annotations

import copy

import pytest
import yaml

from labelbench.errors import ModelError
from labelbench.prompting import load_variant, plan
from labelbench.prompting.planner import chat_frame

# the shape of Qwen2.5's template: a default system turn unless the messages start with one
TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}"
    "<|sys|>{{ messages[0]['content'] }}<|end|>{% set rest = messages[1:] %}"
    "{% else %}<|sys|>You are a default assistant.<|end|>{% set rest = messages %}{% endif %}"
    "{% for m in rest %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture()
def chat_tokenizer(tiny_tokenizer):
    tokenizer = copy.deepcopy(tiny_tokenizer)
    tokenizer.chat_template = TEMPLATE
    return tokenizer


def test_default_system_message_is_kept_unless_the_variant_sets_one(chat_tokenizer):
    assert "You are a default assistant." in chat_frame(chat_tokenizer).prefix
    frame = chat_frame(chat_tokenizer, "Judge summaries.")
    assert frame.prefix.startswith("<|sys|>Judge summaries.<|end|><|user|>")
    assert "default assistant" not in frame.prefix
    assert frame.suffix == "<|end|><|assistant|>"


def test_a_template_that_drops_the_system_message_is_an_error(chat_tokenizer):
    chat_tokenizer.chat_template = TEMPLATE.replace("{{ messages[0]['content'] }}", "x")
    with pytest.raises(ModelError, match="does not show the system message"):
        chat_frame(chat_tokenizer, "Judge summaries.")


def test_variant_system_message_reaches_every_request(chat_tokenizer, tmp_path):
    from conftest import REPO

    from labelbench.data import Comparison

    path = tmp_path / "judge.yaml"
    base = REPO / "prompts" / "summarization" / "plain-0shot.yaml"
    path.write_text(yaml.safe_dump({"include": str(base), "system": "Judge summaries."}))
    variant = load_variant(path)
    item = Comparison(
        id="i",
        group_id="g",
        task="summarization",
        context="A post.",
        response_a="one",
        response_b="two",
    )
    planned = plan([item], variant, tokenizer=chat_tokenizer, chat=True).requests
    assert len(planned) == 2
    for p in planned:
        assert p.request.text.startswith("<|sys|>Judge summaries.<|end|><|user|>")
