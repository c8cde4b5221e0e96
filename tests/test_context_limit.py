"""Issue 25 item 2: a labeler never runs past its model's context limit."""

from __future__ import annotations

import pytest

from labelbench.config import LabelerSpec
from labelbench.data import Comparison
from labelbench.errors import InputError, ModelError
from labelbench.labeling.labeler import open_labeler
from labelbench.prompting import prompt_token_ids
from labelbench.requests import ScoreRequest

VARIANT = "summarization/base-0shot"
LONG = "POST: " + " ".join(["the post asks about a job and a friend"] * 60) + "\n\nTL;DR:"


def _save(tmp_path, tiny_tokenizer, kind: str, limit: int):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    if kind == "learned":  # GPT-2: learned positions, an IndexError past n_positions
        config = GPT2Config(
            vocab_size=len(tiny_tokenizer), n_positions=limit, n_embd=32, n_layer=1, n_head=2
        )
        model = GPT2LMHeadModel(config)
    else:  # Llama: RoPE, runs past its trained context without complaint
        config = LlamaConfig(
            vocab_size=len(tiny_tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=limit,
        )
        model = LlamaForCausalLM(config)
    path = tmp_path / kind
    model.eval().save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


@pytest.mark.parametrize("kind", ["rope", "learned"])
def test_over_long_contexts_are_shortened_to_the_model_context_and_counted(
    tmp_path, tiny_tokenizer, kind, capsys
):
    labeler = open_labeler(LabelerSpec(name=str(_save(tmp_path, tiny_tokenizer, kind, 160))))
    assert labeler.context_length == labeler.token_limit == 160
    pair = Comparison(
        id="p", group_id="p", task="summarization", context=LONG, response_a="a", response_b="b"
    )
    planned = labeler.plan([pair], VARIANT)
    assert planned.shortened == 1
    for request in planned.requests:
        assert len(prompt_token_ids(labeler.tokenizer, request.request.text)) <= 160
    assert labeler.preferences([pair], VARIANT, cache=None)[0] is not None
    found = labeler.direct_rewards([LONG], ["a short summary"], "summarization", cache=None)
    assert found.rewards[0] is not None
    assert labeler.shortened == 3  # the plan, the preferences and the direct score
    assert "shortened to fit the context limit of 160 tokens" in capsys.readouterr().err
    # what cannot fit even without its context is refused in one line, naming the limit
    with pytest.raises(InputError, match="does not fit in 160 tokens"):
        labeler.direct_rewards(["p"], ["word " * 400], "summarization", cache=None)
    # and the backend itself never runs past the limit, whoever calls it
    with pytest.raises(ModelError, match="context limit of 160 tokens"):
        labeler.backend.score([ScoreRequest("", LONG, "", ("1", "2"))])


def test_max_tokens_below_the_model_context_is_the_budget(tmp_path, tiny_tokenizer):
    path = _save(tmp_path, tiny_tokenizer, "rope", 4096)
    labeler = open_labeler(LabelerSpec(name=str(path), max_tokens=120))
    assert labeler.token_limit == 120
