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


# the shape of Gemma 2's template: no system role at all
GEMMA2 = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}"
    "\n{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def test_a_template_that_refuses_a_system_message_gets_it_in_the_first_user_turn(
    chat_tokenizer, tmp_path, tiny_lm
):
    """Issue 25 item 10: Gemma 2's template raises a jinja2 TemplateError for a system turn."""
    from labelbench.config import LabelerSpec
    from labelbench.labeling.labeler import open_labeler

    chat_tokenizer.chat_template = GEMMA2
    frame = chat_frame(chat_tokenizer, "Judge summaries.")
    assert frame.prefix == "<s><start_of_turn>user\nJudge summaries.\n\n"
    assert frame.suffix == "<end_of_turn>\n<start_of_turn>model\n"
    assert chat_frame(chat_tokenizer).prefix == "<s><start_of_turn>user\n"  # no system: as is
    folder = tmp_path / "gemma2-like"
    tiny_lm[0].save_pretrained(folder)
    chat_tokenizer.save_pretrained(folder)
    labeler = open_labeler(LabelerSpec(name=str(folder), chat=True))
    assert labeler.identity.endswith("|chat=on|dtype=float32|system=folded")
    chat_tokenizer.chat_template = "{{ raise_exception('no user turns either') }}"
    with pytest.raises(ModelError, match="chat template fails on one user message") as error:
        chat_frame(chat_tokenizer, "Judge summaries.")
    assert "\n" not in str(error.value)
