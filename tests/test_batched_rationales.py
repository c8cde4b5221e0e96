"""Batched rationale decoding: a batch's rationales and labels equal those of each item decoded
alone, greedy decoding of rows of different lengths equals unpadded ``generate``, sequences
leave and join the batch, and the cache is bounded by a token budget."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_labeling_helpers import make_planned

from labelbench.labeling.transformers_backend import TransformersBackend, naive_answer_logprobs
from labelbench.requests import RationaleRequest


def _mixed_requests() -> list[RationaleRequest]:
    """Greedy and sampled requests, both orders, contexts of different lengths, different
    generation lengths."""
    greedy = [p.request for p in make_planned(3, rationale={"max_new_tokens": 9})]
    sampled = [
        p.request
        for p in make_planned(
            2, seed=4, rationale={"n": 3, "temperature": 1.0, "top_k": 40, "max_new_tokens": 6}
        )
    ]
    short = [dataclasses.replace(greedy[0], max_new_tokens=2)]
    return greedy + sampled + short


def _alone(model, tokenizer, requests, seeds):
    """Each request decoded by itself, on a fresh engine (one sequence at a time)."""
    return [
        TransformersBackend(model, tokenizer, "tiny@alone").rationales([request], [seed])[0]
        for request, seed in zip(requests, seeds, strict=True)
    ]


def _assert_same(batch, alone):
    for together, single in zip(batch, alone, strict=True):
        assert [s.rationale for s in together] == [s.rationale for s in single]
        assert [s.generated_tokens for s in together] == [s.generated_tokens for s in single]
        for a, b in zip(together, single, strict=True):
            assert a.logprobs == pytest.approx(b.logprobs, abs=1e-5)


@pytest.mark.parametrize("decode_tokens", [10**6, 160])
def test_a_batch_equals_each_item_decoded_alone_seeded(tiny_lm, decode_tokens):
    """All sequences in one batch (a large budget), or a few slots at a time that finished
    sequences leave and waiting ones join (160 tokens: fewer slots than sequences)."""
    model, tokenizer = tiny_lm
    requests = _mixed_requests()
    seeds = [100 + 10 * i for i in range(len(requests))]
    engine = TransformersBackend(model, tokenizer, "tiny@test", decode_tokens=decode_tokens)
    batch = engine.rationales(requests, seeds)
    assert [len(samples) for samples in batch] == [r.n for r in requests]
    sequences = sum(r.n for r in requests)
    if decode_tokens < 10**6:
        longest = max(len(engine.encode(r.text)) + r.max_new_tokens for r in requests)
        assert decode_tokens // longest < sequences  # the batch had to be refilled
    else:
        assert engine.decoded_rows > 5 * engine.decode_steps  # many sequences per step
    _assert_same(batch, _alone(model, tokenizer, requests, seeds))
    # the labels as the runner reads them depend only on the item and its seed
    reordered = list(reversed(requests))
    again = TransformersBackend(model, tokenizer, "tiny@test", decode_tokens=decode_tokens)
    _assert_same(list(reversed(again.rationales(reordered, list(reversed(seeds))))), batch)


def test_sampled_samples_differ_and_follow_their_seeds(tiny_lm):
    model, tokenizer = tiny_lm
    (request,) = [
        p.request
        for p in make_planned(
            1, rationale={"n": 4, "temperature": 1.0, "top_k": 40, "max_new_tokens": 8}
        )
    ][:1]
    engine = TransformersBackend(model, tokenizer, "tiny@test")
    (samples,) = engine.rationales([request], [5])
    assert len({s.rationale for s in samples}) > 1
    (shifted,) = engine.rationales([request], [6])  # sample j of seed 6 is sample j+1 of seed 5
    assert [s.rationale for s in shifted[:3]] == [s.rationale for s in samples[1:]]


@pytest.mark.parametrize("attention", ["own", "eager"])
def test_greedy_rows_of_different_lengths_equal_unpadded_generate(tiny_tokenizer, attention):
    """Prompts of different lengths decode in one batch (each row masked to its own columns, at
    its own positions); every rationale equals ``generate`` on that prompt alone, unpadded, and
    its label equals a plain forward pass over the scored text."""
    from conftest import build_tiny_model

    model = build_tiny_model(tiny_tokenizer, seed=7)
    if attention == "eager":
        model.set_attn_implementation("eager")
    engine = TransformersBackend(model, tiny_tokenizer, "tiny@test")
    assert engine._own_attention == (attention == "own")
    requests = [p.request for p in make_planned(4, seed=2, rationale={"max_new_tokens": 10})]
    lengths = {len(engine.encode(r.text)) for r in requests}
    assert len(lengths) > 2  # rows of different lengths share the batch
    results = engine.rationales(requests, list(range(len(requests))))
    assert engine.decoded_rows >= len(requests) * engine.decode_steps // 2
    for request, (sample,) in zip(requests, results, strict=True):
        ids = torch.tensor([engine.encode(request.text)])
        with torch.inference_mode():
            out = model.generate(
                ids, max_new_tokens=10, do_sample=False, pad_token_id=tiny_tokenizer.pad_token_id
            )
        assert sample.rationale == tiny_tokenizer.decode(
            out[0, ids.shape[1] :], skip_special_tokens=True
        )
        text = request.text + sample.rationale + request.score_suffix
        reference = naive_answer_logprobs(model, tiny_tokenizer, text, ("1", "2"))
        assert sample.logprobs == pytest.approx(reference, abs=1e-4)


def test_finished_sequences_leave_and_waiting_ones_join(tiny_lm):
    """Two slots; one long rationale and many short ones: the short ones pass through the other
    slot while the long one decodes, so the steps are about the long one's length (fixed waves
    would add a step per short one)."""
    model, tokenizer = tiny_lm
    base = [p.request for p in make_planned(4, rationale={"max_new_tokens": 2})]
    requests = [dataclasses.replace(base[0], max_new_tokens=24), *base[1:]]
    longest = max(len(TransformersBackend(model, tokenizer, "x").encode(r.text)) for r in base)
    budget = 2 * (longest + 24 + 20)
    engine = TransformersBackend(model, tokenizer, "tiny@test", decode_tokens=budget)
    results = engine.rationales(requests, list(range(len(requests))))
    generated = [samples[0].generated_tokens for samples in results]
    if generated[0] < 24:
        pytest.skip("the tiny model ended the long rationale early")
    assert engine.decode_steps <= 24 + 2
    assert engine.decoded_rows == sum(max(g - 1, 0) for g in generated)
    _assert_same(results, _alone(model, tokenizer, requests, list(range(len(requests)))))


def test_the_cache_is_bounded_by_the_token_budget(tiny_lm, monkeypatch):
    """Slots and the shared prefixes held beside them stay within ``decode_tokens`` (a single
    sequence runs whatever the budget)."""
    from labelbench.labeling import kv_cache

    made = []
    original_init, original_put = kv_cache.Slots.__init__, kv_cache.Slots.put

    def record(self, layers, count, capacity):
        original_init(self, layers, count, capacity)
        made.append([count, capacity, 0])

    def put(self, *args):
        original_put(self, *args)
        made[-1][2] = max(made[-1][2], self.prefix_tokens())

    monkeypatch.setattr(kv_cache.Slots, "__init__", record)
    monkeypatch.setattr(kv_cache.Slots, "put", put)
    model, tokenizer = tiny_lm
    requests = [p.request for p in make_planned(5, rationale={"n": 2, "max_new_tokens": 4})]
    for budget in (1, 300, 10**6):
        engine = TransformersBackend(model, tokenizer, "tiny@test", decode_tokens=budget)
        results = engine.rationales(requests, list(range(len(requests))))
        assert all(len(samples) == 2 for samples in results)
        count, capacity, prefixes = made[-1]
        assert count == 1 or count * capacity + prefixes <= budget
        assert prefixes > 0  # the samples of a request, and both orders, share their prompts
    assert made[0][0] == 1 and 1 < made[1][0] < 20 and made[2][0] == 20


@pytest.mark.parametrize("attention", ["own", "eager"])
def test_sliding_window_rationales_in_a_batch_match_generate(tiny_tokenizer, attention):
    """Gemma 3 past its window, rows of different lengths in one batch: the masks are built per
    layer type, by position, for this module's attention and for another one alike."""
    from conftest import build_tiny_gemma

    model = build_tiny_gemma(tiny_tokenizer, seed=1)
    if attention == "eager":
        model.set_attn_implementation("eager")
    engine = TransformersBackend(model, tiny_tokenizer, "tiny-gemma", causal_block=4)
    requests = [p.request for p in make_planned(3, seed=5, rationale={"max_new_tokens": 12})]
    assert min(len(engine.encode(r.text)) for r in requests) > 4 * model.config.sliding_window
    results = engine.rationales(requests, list(range(len(requests))))
    for request, (sample,) in zip(requests, results, strict=True):
        ids = torch.tensor([engine.encode(request.text)])
        with torch.inference_mode():
            out = model.generate(
                ids, max_new_tokens=12, do_sample=False, pad_token_id=tiny_tokenizer.pad_token_id
            )
        assert sample.rationale == tiny_tokenizer.decode(
            out[0, ids.shape[1] :], skip_special_tokens=True
        )
        text = request.text + sample.rationale + request.score_suffix
        reference = naive_answer_logprobs(model, tiny_tokenizer, text, ("1", "2"))
        assert sample.logprobs == pytest.approx(reference, abs=1e-4)
