"""The real built-in models: what the cache holds must equal what the GGUF it came from gives.

Run after ``labelbench models pull smollm2-135m`` (the test pulls it itself if needed); every other
built-in model is checked too when it has been pulled (CI pulls all four).
"""

from __future__ import annotations

import gc

import pytest
import torch

from labelbench.models import registry
from labelbench.models.registry import load_gguf, load_model, pull, read_manifest

pytestmark = pytest.mark.slow

PROMPT = "Which of the two summaries is better? Answer 1 or 2. Preferred Summary="
TOLERANCE = 1e-5  # absolute, on float32 logits; the same float32 weights give the same logits


@pytest.fixture(params=sorted(registry.BUILTIN))
def name(request) -> str:
    if request.param == "smollm2-135m":
        pull(request.param)  # a no-op when it is cached already
    elif not registry.is_pulled(request.param):
        pytest.skip(f"{request.param} is not pulled (`labelbench models pull {request.param}`)")
    return request.param


def test_cache_gives_the_same_next_token_logits_as_the_gguf(name):
    manifest = read_manifest(name)
    gguf = registry.model_dir(name) / manifest["source"]["gguf_file"]
    assert registry.sha256_file(gguf) == manifest["source"]["gguf_sha256"]
    assert registry.weights_sha256(registry.model_dir(name)) == manifest["weights_sha256"]

    cached = load_model(name)
    ids = cached.tokenizer(PROMPT, return_tensors="pt").input_ids
    with torch.no_grad():
        from_cache = cached.model(ids).logits[0, -1]
    del cached  # one float32 copy at a time: the 1.5B is 7 GB
    gc.collect()
    fresh_model, fresh_tokenizer = load_gguf(gguf)
    assert ids.tolist() == fresh_tokenizer(PROMPT, return_tensors="pt").input_ids.tolist()
    with torch.no_grad():
        from_gguf = fresh_model(ids).logits[0, -1]
    assert from_cache.shape == (manifest["vocab_size"],)
    torch.testing.assert_close(from_cache, from_gguf, atol=TOLERANCE, rtol=0)


def test_smollm2_chat_template_and_a_greedy_answer():
    pull("smollm2-135m")
    loaded = load_model("smollm2-135m")
    assert read_manifest("smollm2-135m")["chat_template"]
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = loaded.tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        output = loaded.model.generate(**inputs, max_new_tokens=12, do_sample=False)
    answer = loaded.tokenizer.decode(output[0, inputs["input_ids"].shape[1] :])
    assert "Paris" in answer
