"""The decoding head: in a lower precision, the tokens a rationale step chooses from are those of
the float32 output layer (candidates in the model's precision, their logits in float32, a bound
for the rest), and a bfloat16 batch's rationales still equal each item decoded alone."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from test_batched_rationales import _alone, _mixed_requests

from labelbench.labeling.output_head import DecodingHead, output_layer
from labelbench.labeling.transformers_backend import TransformersBackend


def _head(vocab: int = 3000, dim: int = 48, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(vocab, dim, generator=generator)
    hidden = torch.randn(64, dim, generator=generator) * 3
    return weight, hidden


@pytest.mark.parametrize("need", [1, 40])
def test_the_top_tokens_are_those_of_the_float32_layer(need: int) -> None:
    weight, hidden = _head()
    head = DecodingHead((weight, None), (weight.bfloat16(), None), softcap=None)
    ids, logits = head.top(hidden, need)
    exact = hidden @ weight.T
    values, expected = torch.topk(exact, need, dim=-1)
    assert torch.equal(ids[:, :need], expected)
    torch.testing.assert_close(logits[:, :need], values, rtol=1e-5, atol=1e-5)
    assert (logits[:, :-1] >= logits[:, 1:]).all()  # highest first


def test_rows_the_bound_cannot_decide_are_computed_in_full() -> None:
    """Near-ties among a few candidates: the bound cannot tell, the row is computed in float32
    in full, and the answer is still the float32 layer's."""
    weight, hidden = _head(vocab=500)
    weight[1:] = weight[0] + 1e-3 * weight[1:]  # every token's logit within rounding of the first
    head = DecodingHead((weight, None), (weight.bfloat16(), None), softcap=None, candidates=4)
    ids, _ = head.top(hidden, 1)
    assert head.fallbacks > 0
    assert torch.equal(ids[:, 0], torch.argmax(hidden @ weight.T, dim=-1))


def test_soft_capped_logits_keep_the_order() -> None:
    weight, hidden = _head()
    head = DecodingHead((weight, None), (weight.bfloat16(), None), softcap=50.0)
    ids, logits = head.top(hidden, 3)
    capped = torch.tanh(hidden @ weight.T / 50.0) * 50.0
    values, expected = torch.topk(capped, 3, dim=-1)
    assert torch.equal(ids[:, :3], expected)
    torch.testing.assert_close(logits[:, :3], values, rtol=1e-5, atol=1e-5)


def test_a_float32_model_reads_the_float32_layer_directly(tiny_lm) -> None:
    model, tokenizer = tiny_lm
    engine = TransformersBackend(model, tokenizer, "tiny@test")
    assert engine._decoding_head.low is None


def test_a_bfloat16_batch_equals_each_item_decoded_alone(tiny_lm) -> None:
    """In bfloat16 (candidates from the bfloat16 layer, grouped attention at one query a row) the
    batch's rationales and labels equal each request decoded alone, greedy and sampled."""
    model, tokenizer = tiny_lm
    model = copy.deepcopy(model).to(torch.bfloat16)
    requests = _mixed_requests()
    sampled = next(r for r in requests if r.temperature > 0)
    requests.append(dataclasses.replace(sampled, top_k=None))  # the whole vocabulary's draw
    seeds = [100 + 10 * i for i in range(len(requests))]
    engine = TransformersBackend(model, tokenizer, "tiny@bf16", decode_tokens=10**6)
    assert engine._decoding_head.low is not None
    batch = engine.rationales(requests, seeds)
    for together, single in zip(batch, _alone(model, tokenizer, requests, seeds), strict=True):
        assert [s.rationale for s in together] == [s.rationale for s in single]
        assert [s.generated_tokens for s in together] == [s.generated_tokens for s in single]
        for a, b in zip(together, single, strict=True):  # bfloat16 passes of other shapes
            assert a.logprobs == pytest.approx(b.logprobs, abs=1e-3)
    weight = output_layer(model)[0]
    assert weight.dtype == torch.float32


def test_the_default_decoding_budget_is_4_gib_of_keys_and_values(tiny_lm) -> None:
    from types import SimpleNamespace

    from labelbench.labeling.transformers_backend import (
        DECODE_CACHE_BYTES,
        default_decode_tokens,
        kv_bytes_per_token,
    )

    qwen15 = SimpleNamespace(  # Qwen2.5 1.5B's shape: 28 layers, 2 of 12 heads for keys/values
        num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2, hidden_size=1536
    )
    assert kv_bytes_per_token(qwen15, torch.bfloat16) == 28 * 2 * 2 * 128 * 2  # 28.7 kB
    assert default_decode_tokens(qwen15, torch.bfloat16) == DECODE_CACHE_BYTES // 28672
    assert default_decode_tokens(qwen15, torch.float32) == DECODE_CACHE_BYTES // 57344
    model, tokenizer = tiny_lm
    engine = TransformersBackend(model, tokenizer, "tiny@test")
    config = model.config.get_text_config(decoder=True)
    assert engine.decode_tokens == default_decode_tokens(config, torch.float32)


def test_a_labelers_decode_memory_sets_its_budget(tiny_lm_dir) -> None:
    from labelbench.config import LabelerSpec
    from labelbench.labeling.labeler import open_labeler
    from labelbench.labeling.transformers_backend import kv_bytes_per_token

    labeler = open_labeler(LabelerSpec(name=str(tiny_lm_dir), decode_memory_gib=0.01))
    config = labeler.backend.model.config.get_text_config(decoder=True)
    per_token = kv_bytes_per_token(config, torch.float32)
    assert labeler.backend.decode_tokens == max(4096, int(0.01 * 2**30) // per_token)
    # a budget too small for one token's keys and values is the smallest budget, not the default
    tiny = open_labeler(LabelerSpec(name=str(tiny_lm_dir), decode_memory_gib=1e-12))
    assert tiny.backend.decode_tokens == 4096
