"""Lean PPO: selective log-probabilities equal full log-softmax ones, no full-vocabulary tensor
over the batch, the k3 KL estimator, early stop on approximate KL, the value model's start."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from rlaif.ppo_config import PPOConfig
from rlaif.ppo_trainer import (
    PPOTrainer,
    ValueModel,
    kl_penalty_estimate,
    position_ids_for,
    response_logprobs,
    selective_logprobs,
    token_entropy,
)

PROMPTS = ["The post says", "Which summary is better?", "Human: hello there", "Rationale:"]


def test_selective_logprobs_equal_full_log_softmax():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 1000, generator=generator) * 4
    tokens = torch.randint(0, 1000, (3, 5), generator=generator)
    full = torch.log_softmax(logits, -1).gather(-1, tokens[..., None]).squeeze(-1)
    assert torch.allclose(selective_logprobs(logits, tokens), full, atol=1e-5)
    probs = torch.softmax(logits, -1)
    assert torch.allclose(token_entropy(logits), -(probs * probs.log()).sum(-1), atol=1e-4)
    bf16 = selective_logprobs(logits.bfloat16(), tokens)
    assert bf16.dtype == torch.float32


@pytest.mark.parametrize("chunk_size", [1, 7, 4096])
def test_chunked_response_logprobs_equal_the_models_full_log_softmax(tiny_lm, chunk_size):
    model, tokenizer = tiny_lm
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(4, len(tokenizer), (3, 12), generator=generator)
    mask = torch.ones_like(ids)
    mask[0, :3] = 0  # left padding
    context, temperature = 5, 0.7
    logits = model(input_ids=ids, attention_mask=mask, position_ids=position_ids_for(mask)).logits
    full = torch.log_softmax(logits[:, context - 1 : -1] / temperature, -1)
    expected = full.gather(-1, ids[:, context:, None]).squeeze(-1)
    entropy = -(full.exp() * full).sum(-1)
    with torch.no_grad():
        lean, lean_entropy = response_logprobs(
            model, ids, mask, context, temperature, chunk_size, with_entropy=True
        )
    assert torch.allclose(lean, expected, atol=1e-5)
    assert torch.allclose(lean_entropy, entropy, atol=1e-4)

    # gradients through the checkpointed chunks equal those of the full log-softmax
    weight = model.get_output_embeddings().weight
    expected.sum().backward()
    reference_grad = weight.grad.clone()
    weight.grad = None
    lean, _ = response_logprobs(model, ids, mask, context, temperature, chunk_size)
    lean.sum().backward()
    assert torch.allclose(weight.grad, reference_grad, atol=1e-5)
    model.zero_grad(set_to_none=True)


def test_softcapped_model_matches_its_own_logits(tiny_tokenizer):
    from conftest import build_tiny_gemma

    from rlaif.ppo_trainer import supports_hidden_state_logits

    gemma = build_tiny_gemma(tiny_tokenizer)
    gemma.config.final_logit_softcapping = 3.0
    assert supports_hidden_state_logits(gemma)
    ids = torch.randint(4, len(tiny_tokenizer), (2, 9), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        logits = gemma(input_ids=ids, attention_mask=mask).logits
        lean, _ = response_logprobs(gemma, ids, mask, 4, 1.0, 3)
    expected = torch.log_softmax(logits[:, 3:-1], -1).gather(-1, ids[:, 4:, None]).squeeze(-1)
    assert torch.allclose(lean, expected, atol=1e-5)


class LargestVocabularyTensor(TorchDispatchMode):
    """Records the most elements of any float32 tensor an operation produces whose last
    dimension is the vocabulary (logits, log-softmax, softmax and their gradients)."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.vocab, self.largest = vocab, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in out if isinstance(out, list | tuple) else [out]:
            if (
                isinstance(tensor, torch.Tensor)
                and tensor.dtype == torch.float32
                and tensor.dim() >= 2
                and tensor.shape[-1] == self.vocab
            ):
                self.largest = max(self.largest, tensor.numel() // self.vocab)
        return out


def test_no_full_vocabulary_float32_tensor_over_the_batch():
    """A large vocabulary and a tiny hidden size: the logits of the whole batch would be by far
    the largest tensors. Rows of any vocabulary-wide tensor stay within one chunk."""
    from conftest import build_tiny_tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tiny_tokenizer()
    vocab = 20_000  # ids past the tokenizer's are never sampled in the prompts, fine for sampling
    torch.manual_seed(0)
    policy = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=vocab,
            hidden_size=8,
            intermediate_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            tie_word_embeddings=False,
        )
    )
    batch, response, chunk = 8, 12, 16
    config = PPOConfig(
        batch_size=batch,
        num_minibatches=1,
        ppo_epochs=1,
        response_length=response,
        logits_chunk_size=chunk,
        total_updates=1,
        progress=False,
    )
    trainer = PPOTrainer(config, policy, tokenizer, lambda p, r: [0.0] * len(p), PROMPTS * 2)
    watch = LargestVocabularyTensor(vocab)
    with watch:
        trainer.train_step()
    # generation scores the last position of each row: batch rows; the loss, chunks of tokens
    assert 0 < watch.largest <= max(chunk, batch), watch.largest
    assert watch.largest < batch * response  # the full-batch logits would have this many rows


def test_k3_estimator_is_nonnegative_and_k1_is_the_log_ratio():
    logprobs = torch.tensor([-1.0, -2.0, -0.5])
    ref = torch.tensor([-1.5, -1.0, -0.5])
    k1 = kl_penalty_estimate(logprobs, ref, "k1")
    assert torch.allclose(k1, torch.tensor([0.5, -1.0, 0.0]))
    k3 = kl_penalty_estimate(logprobs, ref, "k3")
    ratio = torch.exp(ref - logprobs)
    assert torch.allclose(k3, ratio - 1 - torch.log(ratio))
    assert (k3 >= 0).all() and k3[2] == 0
    with pytest.raises(ValueError, match="k2"):
        kl_penalty_estimate(logprobs, ref, "k2")


def make_trainer(tiny_tokenizer, **overrides):
    from conftest import build_tiny_model

    values = dict(
        batch_size=4,
        num_minibatches=2,
        ppo_epochs=4,
        response_length=4,
        learning_rate=5e-2,
        total_updates=1,
        progress=False,
    )
    values.update(overrides)
    policy = build_tiny_model(tiny_tokenizer, seed=3)
    reward = lambda p, r: [float(len(x)) for x in r]  # noqa: E731
    return PPOTrainer(PPOConfig(**values), policy, tiny_tokenizer, reward, PROMPTS)


def test_early_stop_on_approximate_kl(tiny_tokenizer):
    stopped = make_trainer(tiny_tokenizer, early_stop_approx_kl=1e-9).train_step()
    assert stopped["ppo_epochs_run"] == 1
    full = make_trainer(tiny_tokenizer).train_step()
    assert full["ppo_epochs_run"] == 4
    assert "target_kl" in PPOConfig.__dataclass_fields__  # the controller's target, distinct


def test_k3_run_logs_a_nonnegative_kl(tiny_tokenizer):
    stats = make_trainer(tiny_tokenizer, kl_estimator="k3", total_updates=2).train_step()
    assert stats["kl"] >= 0


def test_value_model_starts_at_zero_or_from_the_reward_model(tiny_tokenizer):
    from conftest import build_tiny_model
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from labelbench.errors import ModelError

    policy = build_tiny_model(tiny_tokenizer)
    ids = torch.randint(4, len(tiny_tokenizer), (2, 6), generator=torch.Generator().manual_seed(4))
    mask = torch.ones_like(ids)
    zero = ValueModel.from_policy(policy)
    assert torch.equal(zero(ids, mask, position_ids_for(mask)), torch.zeros(2, 6))

    config = LlamaConfig(**{**policy.config.to_dict(), "num_labels": 1})
    torch.manual_seed(5)
    reward_model = LlamaForSequenceClassification(config).eval()
    from_rm = ValueModel.from_reward_model(reward_model, policy)
    with torch.no_grad():
        values = from_rm(ids, mask, position_ids_for(mask))
        scores = reward_model(input_ids=ids, attention_mask=mask).logits.squeeze(-1)
    assert torch.allclose(values[:, -1], scores, atol=1e-5)  # the score of the whole text

    other = LlamaConfig(**{**config.to_dict(), "vocab_size": config.vocab_size + 5})
    with pytest.raises(ModelError, match="vocabulary"):
        ValueModel.from_reward_model(LlamaForSequenceClassification(other), policy)
