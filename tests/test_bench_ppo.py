"""bench/ppo.py's real-scale mode, its pure parts: the FLOP floor, the TL;DR prompts cut to the
token budget, the policy's shape and the seeded reward/value model both trainers read."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from ppo import (
    MODEL_DEFAULTS,
    FlopFloor,
    ModelShape,
    build_reward_model,
    flop_floor,
    headline_precision,
    median_update_seconds,
    model_shape,
    prompt_token_counts,
    rss_mib,
    state_floor_bytes,
    tldr_prompts,
    update_intervals,
)

from labelbench.errors import InputError
from rlaif.ppo_config import PPOConfig


def test_flop_floor_on_a_known_shape():
    """N = 100, E = 10, B = 2, P = 3, R = 2, 2 epochs: a forward over prompt + response is
    2 * 100 * 2 * 5 = 2000 FLOPs; generation is 2 * 2 * (100 * 4 + 10 * 2) = 1680; scoring four
    forwards; training 2 epochs * 2 models * 3 forwards."""
    shape = ModelShape(
        non_embedding_parameters=100, output_layer_parameters=10, hidden_size=4, intermediate_size=8
    )
    floor = flop_floor(shape, batch_size=2, prompt_tokens=3, response_tokens=2, ppo_epochs=2)
    assert floor == FlopFloor(generation=1680, scoring=8000, training=24000)
    assert floor.total == 33680


def test_flop_floor_at_the_issue_settings_for_smollm2_shape():
    """smollm2-135m's shape, 256 + 48 tokens, batch 16, 2 epochs: the training passes are 12 of
    the 16 forward-equivalents over the batch, generation about one more."""
    shape = ModelShape(106_203_456, 28_311_552, 576, 1536)
    floor = flop_floor(shape, 16, 256, 48, 2)
    forward = 2 * 106_203_456 * 16 * 304
    assert floor.scoring == 4 * forward
    assert floor.training == 12 * forward
    assert 1.0 < floor.generation / forward < 1.1


def test_flop_floor_refuses_an_empty_update():
    shape = ModelShape(100, 10, 4, 8)
    with pytest.raises(ValueError):
        flop_floor(shape, 16, 0, 48, 2)
    with pytest.raises(ValueError):
        flop_floor(shape, 16, 256, 48, 0)


def post(group: str, words: int) -> SimpleNamespace:
    context = " ".join(f"word{i}" for i in range(words))
    meta = {"subreddit": "advice", "title": f"title of {group}"}
    return SimpleNamespace(group_id=group, task="summarization", context=context, meta=meta)


def test_tldr_prompts_keep_long_posts_once_and_cut_them_to_the_budget(tiny_tokenizer):
    items = [post("a", 200), post("a", 200), post("short", 3), post("b", 300), post("c", 250)]
    texts = tldr_prompts(items, tiny_tokenizer, budget=128, count=3)
    assert len(texts) == 3
    assert all(text.endswith("TL;DR:") for text in texts)  # the ending is what is kept
    counts = prompt_token_counts(texts, tiny_tokenizer, 10_000)
    assert all(120 <= count <= 128 for count in counts), counts  # re-encoding may merge one
    assert "word199" in texts[0] and "word299" in texts[1] and "word249" in texts[2]


def test_tldr_prompts_without_enough_long_posts_is_an_input_error(tiny_tokenizer):
    with pytest.raises(InputError):
        tldr_prompts([post("a", 200), post("b", 2)], tiny_tokenizer, budget=128, count=2)


def test_tldr_prompts_from_the_real_posts(data_dir, tiny_tokenizer):
    from labelbench.data import load_comparisons

    comparisons = load_comparisons(data_dir / "openai_tldr_comparisons" / "batch13.json")
    texts = tldr_prompts(comparisons, tiny_tokenizer, budget=256, count=64)
    assert len(set(texts)) == 64
    counts = prompt_token_counts(texts, tiny_tokenizer, 256)
    assert min(counts) >= 250 and max(counts) == 256


def test_model_shape_counts_non_embedding_and_output_layer(tiny_lm):
    model, tokenizer = tiny_lm
    shape = model_shape(model)
    total = sum(p.numel() for p in model.parameters())
    vocab_by_hidden = len(tokenizer) * 32
    assert shape.output_layer_parameters == vocab_by_hidden
    assert shape.non_embedding_parameters == total - 2 * vocab_by_hidden  # untied in and out
    assert (shape.hidden_size, shape.intermediate_size) == (32, 64)


def test_reward_model_has_the_policy_backbone_and_a_seeded_head(tmp_path, tiny_lm_dir, tiny_lm):
    import torch
    from transformers import AutoModelForSequenceClassification

    model, tokenizer = tiny_lm
    heads = []
    for name, seed in (("one", 0), ("again", 0), ("other", 1)):
        build_reward_model(tiny_lm_dir, tokenizer, seed, tmp_path / name)
        reward = AutoModelForSequenceClassification.from_pretrained(tmp_path / name)
        assert reward.config.num_labels == 1
        heads.append(reward.score.weight.detach().clone())
    assert torch.equal(heads[0], heads[1]) and not torch.equal(heads[0], heads[2])
    assert heads[0].abs().max() > 0
    backbone = dict(reward.model.named_parameters())
    for name, weight in model.model.named_parameters():
        assert torch.equal(backbone[name], weight), name


def test_real_scale_defaults_are_the_issue_settings():
    config = PPOConfig(**MODEL_DEFAULTS)
    assert (config.response_length, config.batch_size) == (48, 16)
    assert (config.num_minibatches, config.ppo_epochs) == (4, 2)
    assert config.max_prompt_tokens == 256 and config.value_from_reward_model


def test_time_per_update_leaves_out_the_warm_up():
    """Ends of updates at 10, 12, 15 and 16 s after a start at 0: intervals 10, 2, 3, 1; the
    median after the first (warm-up) is 2; one update alone is its own figure."""
    ends = [10.0, 12.0, 15.0, 16.0]
    assert update_intervals(ends, 0.0) == [10.0, 2.0, 3.0, 1.0]
    assert median_update_seconds(ends, 0.0) == 2.0
    assert median_update_seconds([7.0], 0.0) == 7.0


def test_state_floor_counts_four_copies_of_what_trains_and_one_of_what_is_frozen():
    """A float32 Linear(3, 2) trained (8 parameters: weights, gradients, two AdamW moments) and a
    bfloat16 Linear(2, 1) frozen (3 parameters, 2 bytes each)."""
    import torch

    trained = torch.nn.Linear(3, 2)
    frozen = torch.nn.Linear(2, 1).to(torch.bfloat16)
    assert state_floor_bytes([trained], [frozen]) == 4 * 8 * 4 + 3 * 2
    assert state_floor_bytes([], []) == 0


def test_rss_grows_with_a_touched_allocation():
    import torch

    before = rss_mib()
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, written
    assert rss_mib() - before > 48
    del block


def test_headline_is_the_default_training_precision_when_both_trainers_ran_it():
    both = ["float32", "bfloat16"]
    assert headline_precision(both, both, "bfloat16") == "bfloat16"
    assert headline_precision(both, both, "float32") == "float32"
    # TRL ran only float32: the headline compares like with like
    assert headline_precision(both, ["float32"], "bfloat16") == "float32"
    assert headline_precision(["bfloat16"], ["bfloat16"], "float32") == "bfloat16"
    with pytest.raises(ValueError, match="no precision in common"):
        headline_precision(["bfloat16"], ["float32"], "bfloat16")


def test_training_precision_auto_follows_the_hardware(monkeypatch):
    import torch

    from labelbench.models import registry

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert PPOConfig().precision == "bfloat16"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert PPOConfig().precision == "float32"
    assert PPOConfig(precision="bfloat16").precision == "bfloat16"
    assert registry.training_precision("float32") == "float32"
    with pytest.raises(ValueError, match="auto, float32 or bfloat16"):
        registry.training_precision("float16")
