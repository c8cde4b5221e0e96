"""Rationale decoding keeps a prefix that several sequences share (an item's context, both orders,
all samples) once, and attends to it apart (``decoding.shared_prefixes``, ``kv_cache.Slots``,
``attention._shared_attention``): the same rationales and labels as each sequence with its own
copy, fewer key/value columns per row."""

from __future__ import annotations

import pytest
import torch
from test_batched_rationales import _assert_same, _mixed_requests
from test_labeling_helpers import make_planned

from labelbench.labeling import decoding, kv_cache
from labelbench.labeling.decoding import MIN_SHARED, shared_prefixes
from labelbench.labeling.kv_cache import PromptSource, Slots
from labelbench.labeling.transformers_backend import TransformersBackend

CONTEXT = list(range(100, 100 + MIN_SHARED + 20))


def test_an_items_orders_and_samples_form_one_group_in_token_order():
    # item 1's orders (requests 0 and 3, apart in request order), item 2's (1 and 2), a request
    # alone with samples, and one alone without: the orders diverge after the context
    first = [*CONTEXT, 1, 2, 3]
    ids = [first, [7, *CONTEXT, 5], [7, *CONTEXT, 6, 6], [*CONTEXT, 3, 2, 1], [9] * 90, [8] * 90]
    groups, shared = shared_prefixes(ids, [1, 1, 1, 1, 3, 1])
    assert groups[0] == groups[3] is not None and shared[0] == shared[3] == len(CONTEXT)
    assert groups[1] == groups[2] is not None and shared[1] == len(CONTEXT) + 1
    assert groups[1] != groups[0]
    assert shared[4] == 89 and groups[4] not in (None, groups[0], groups[1])  # one token its own
    assert groups[5] is None and shared[5] == 0


def test_short_or_costly_sharing_is_not_kept():
    short = list(range(MIN_SHARED - 1))
    assert shared_prefixes([[*short, 1], [*short, 2]], [1, 1]) == ([None, None], [0, 0])
    # four samples sharing a long prompt would lose by sharing only its first tokens with a
    # request alone: the long prompt's samples keep their own group
    long = [*CONTEXT, *range(500, 900)]
    groups, shared = shared_prefixes([long, [*CONTEXT, 1]], [4, 1])
    assert shared[0] == len(long) - 1 and groups[1] is None


def _kv(columns: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    shape = (1, 2, columns, 4)
    return [
        (torch.randn(shape, generator=generator), torch.randn(shape, generator=generator))
        for _ in range(2)
    ]


def test_slots_hold_a_prefix_once_and_give_it_back():
    kv = _kv(12, 0)
    slots = Slots(2, 3, 16)
    slots.put(0, kv, PromptSource(0, list(range(10))), group=5, shared=6)
    slots.put(1, kv, PromptSource(0, [*range(6), 10, 11]), group=5, shared=6)
    assert slots.prefix_tokens() == 6 and slots.own(0) == 4 and slots.own(1) == 2
    keys = kv[1][0][0]
    assert torch.equal(slots.prefixes[5][1][0], keys[:, :6])
    assert torch.equal(slots.keys[1][1, :, :2], keys[:, 10:12])
    slots.swap(0, 1)
    assert slots.lengths[:2] == [8, 10] and torch.equal(slots.keys[1][0, :, :2], keys[:, 10:12])
    slots.unshare(0)  # its own copy again: column = position
    assert slots.offsets[0] == 0 and slots.own(0) == 8
    assert torch.equal(slots.keys[1][0, :, :8], keys[:, [*range(6), 10, 11]])
    assert slots.prefix_tokens() == 6  # slot 1 still uses it
    slots.release(1)
    assert slots.prefixes == {} and slots.lengths[1] == 0


def test_sharing_changes_no_rationale_or_label(tiny_lm, monkeypatch):
    """The same requests with sharing on and off (every sequence its own copy): the same
    rationales, labels within float rounding; with it on, prefixes were held."""
    model, tokenizer = tiny_lm
    requests = _mixed_requests()
    seeds = [3 * i for i in range(len(requests))]
    held = []
    put = Slots.put

    def spy(self, *args):
        put(self, *args)
        held.append(self.prefix_tokens())

    monkeypatch.setattr(Slots, "put", spy)
    shared = TransformersBackend(model, tokenizer, "tiny@a").rationales(requests, seeds)
    assert max(held) > 0
    monkeypatch.setattr(decoding, "shares", lambda backend: False)
    held.clear()
    apart = TransformersBackend(model, tokenizer, "tiny@b").rationales(requests, seeds)
    assert max(held) == 0
    _assert_same(shared, apart)


def test_a_text_that_retokenises_inside_the_prefix_is_scored_on_its_own_copy(tiny_lm, monkeypatch):
    """Scoring re-runs a sequence from where its scored text's tokens part from its own; where
    that lies inside its shared prefix, the slot takes its own copy first (``Slots.unshare``)."""
    model, tokenizer = tiny_lm
    requests = [p.request for p in make_planned(3, seed=5, rationale={"max_new_tokens": 5})]
    expected = TransformersBackend(model, tokenizer, "tiny@a").rationales(requests, [0, 1, 2])
    unshared = []
    original = kv_cache.Slots.unshare

    def spy(self, slot):
        unshared.append(self.offsets[slot])
        original(self, slot)

    monkeypatch.setattr(kv_cache.Slots, "unshare", spy)
    init = decoding.Decoder.__init__

    def start(self, *args):  # groups as usual; then every scored text parts at token 3
        init(self, *args)
        monkeypatch.setattr(decoding, "common_prefix_length", lambda sequences: 3)

    monkeypatch.setattr(decoding.Decoder, "__init__", start)
    again = TransformersBackend(model, tokenizer, "tiny@b").rationales(requests, [0, 1, 2])
    assert unshared and min(unshared) > 3
    _assert_same(again, expected)


@pytest.mark.parametrize("backend_kind", ["window", "eager"])
def test_no_sharing_where_the_attention_cannot_take_it(tiny_tokenizer, backend_kind):
    from conftest import build_tiny_model

    model = build_tiny_model(tiny_tokenizer, seed=1)
    if backend_kind == "eager":
        model.set_attn_implementation("eager")
    engine = TransformersBackend(model, tiny_tokenizer, "tiny@t")
    if backend_kind == "window":
        engine._window = 16
    assert not decoding.shares(engine)
