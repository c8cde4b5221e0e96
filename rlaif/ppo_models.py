"""The models PPO trains and reads: response-token log-probabilities without a [batch,
response, vocabulary] tensor, the value model, and the policy and value model as one module."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from labelbench.errors import ModelError
from rlaif.ppo_math import position_ids_for, selective_logprobs, token_entropy


def disable_dropout(model: nn.Module) -> None:
    """Set every dropout of ``model`` to p = 0 (PPO's log-probability ratios need it)."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0


# ---------------------------------------------------------------------------------------------
# Log-probabilities of response tokens without a [batch, response, vocab] tensor.
#
# The policy's decoder gives hidden states [B, R, H]; the output layer maps ``logits_chunk_size``
# of them at a time to logits, which are reduced at once to the token's log-probability (and,
# without gradients, the entropy). With gradients each chunk runs under activation checkpointing,
# so no chunk's logits are kept for the backward pass: it recomputes them one chunk at a time.


def _softcap(policy: nn.Module) -> float | None:
    config = policy.config.get_text_config()
    return getattr(config, "final_logit_softcapping", None)


def _head_logits(policy: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    logits = policy.get_output_embeddings()(hidden)
    cap = _softcap(policy)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


def _decoder_hidden(policy: nn.Module, input_ids, attention_mask, position_ids) -> torch.Tensor:
    return policy.get_decoder()(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        use_cache=False,
    ).last_hidden_state


@torch.no_grad()
def supports_hidden_state_logits(policy: nn.Module) -> bool:
    """Whether decoder hidden states through the output layer (and soft-capping) reproduce the
    policy's own logits; checked once per model on a few tokens. Models with other final steps
    fall back to the model's logits (still reduced chunk by chunk)."""
    cached = getattr(policy, "_labelbench_hidden_logits", None)
    if cached is not None:
        return cached
    try:
        device = next(policy.parameters()).device
        vocab = policy.config.get_text_config().vocab_size
        ids = torch.arange(1, 6, device=device).remainder(vocab)
        ids, mask = ids[None], torch.ones(1, 5, dtype=torch.long, device=device)
        positions = position_ids_for(mask)
        was_training = policy.training
        policy.eval()
        with torch.autocast(device_type=device.type, enabled=False):
            full = policy(input_ids=ids, attention_mask=mask, position_ids=positions).logits
            lean = _head_logits(policy, _decoder_hidden(policy, ids, mask, positions))
        policy.train(was_training)
        ok = bool(torch.allclose(full.float(), lean.float(), atol=1e-4, rtol=1e-4))
    except (AttributeError, NotImplementedError, TypeError, ValueError):
        ok = False
    policy._labelbench_hidden_logits = ok
    return ok


def response_logprobs(
    policy: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    context_length: int,
    temperature: float = 1.0,
    chunk_size: int = 256,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probabilities (float32 [B, T - context_length]) of the tokens after ``context_length``
    in ``input_ids`` [B, T] under ``policy`` at ``temperature``, and their entropies when asked.

    At most ``chunk_size`` positions' full-vocabulary logits exist at any time. Entropies are
    computed only without gradients (a statistic of the rollout); otherwise None."""
    from torch.utils.checkpoint import checkpoint

    position_ids = position_ids_for(attention_mask)
    tokens = input_ids[:, context_length:]
    batch, length = tokens.shape
    if supports_hidden_state_logits(policy):
        hidden = _decoder_hidden(policy, input_ids, attention_mask, position_ids)
        hidden = hidden[:, context_length - 1 : -1]

        def chunk_logits(rows: torch.Tensor) -> torch.Tensor:
            return _head_logits(policy, rows)
    else:  # the model's own logits, still reduced one chunk at a time
        hidden = policy(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=False,
        ).logits[:, context_length - 1 : -1]

        def chunk_logits(rows: torch.Tensor) -> torch.Tensor:
            return rows

    def reduce(rows: torch.Tensor, chunk_tokens: torch.Tensor) -> torch.Tensor:
        return selective_logprobs(chunk_logits(rows).float() / temperature, chunk_tokens)

    flat_hidden = hidden.reshape(batch * length, -1)
    flat_tokens = tokens.reshape(-1)
    grad = torch.is_grad_enabled() and flat_hidden.requires_grad
    logprobs, entropies = [], []
    for start in range(0, batch * length, chunk_size):
        rows = flat_hidden[start : start + chunk_size]
        chunk_tokens = flat_tokens[start : start + chunk_size]
        if grad:
            logprobs.append(checkpoint(reduce, rows, chunk_tokens, use_reentrant=False))
            continue
        logits = chunk_logits(rows).float() / temperature
        logprobs.append(selective_logprobs(logits, chunk_tokens))
        if with_entropy:
            entropies.append(token_entropy(logits))
        del logits
    entropy = torch.cat(entropies).reshape(batch, length) if entropies else None
    return torch.cat(logprobs).reshape(batch, length), entropy


# ---------------------------------------------------------------------------------------------
# Models: the policy and the value model are trained together as one module.


class ValueModel(nn.Module):
    """A transformer backbone with a scalar head on every position.

    Initialisation (``from_policy``, the default): a copy of the policy's backbone and a head of
    zeros, so every value starts at 0 and the first advantages are the whitened returns.
    ``from_reward_model`` (``value_from_reward_model``, as TRL does): the reward model's backbone
    and score head, so values start at the reward model's score of each prefix.
    """

    def __init__(self, backbone: nn.Module, head: nn.Linear) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    @classmethod
    def from_policy(cls, policy: nn.Module) -> ValueModel:
        """A copy of the policy's backbone and a zero head: every value starts at 0."""
        hidden_size = policy.config.get_text_config().hidden_size
        head = nn.Linear(hidden_size, 1)
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)
        return cls(copy.deepcopy(policy.base_model), head)

    @classmethod
    def from_reward_model(cls, reward_model: nn.Module, policy: nn.Module) -> ValueModel:
        """The reward model's backbone and score head (copied); it must share the policy's
        vocabulary, since it reads the policy's tokens."""
        vocab = policy.config.get_text_config().vocab_size
        rm_vocab = reward_model.config.get_text_config().vocab_size
        if rm_vocab != vocab:
            raise ModelError(
                f"the reward model's vocabulary ({rm_vocab}) is not the policy's ({vocab}): "
                "it cannot initialise the value model"
            )
        head = getattr(reward_model, "score", None)
        if not isinstance(head, nn.Linear) or head.out_features != 1:
            raise ModelError("the reward model has no one-output 'score' head to start values from")
        return cls(copy.deepcopy(reward_model.base_model), copy.deepcopy(head).float())

    def forward(self, input_ids, attention_mask, position_ids) -> torch.Tensor:
        """Values (float32 [B, T]) at every position of ``input_ids`` [B, T]."""
        hidden = self.backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=False,
        ).last_hidden_state
        return self.head(hidden).squeeze(-1).float()


class PolicyAndValue(nn.Module):
    """The policy and the value model as one module, so one optimizer and ``accelerate``
    prepare both."""

    def __init__(self, policy: nn.Module, value: ValueModel) -> None:
        super().__init__()
        self.policy = policy
        self.value = value

    def forward(
        self,
        input_ids,
        attention_mask,
        context_length: int,
        temperature: float,
        chunk_size: int = 256,
        with_entropy: bool = False,
    ):
        """Response-token log-probabilities (temperature applied), entropies (or None) and
        values for ``query + response``; all float32 [B, R]."""
        logprobs, entropy = response_logprobs(
            self.policy,
            input_ids,
            attention_mask,
            context_length,
            temperature,
            chunk_size,
            with_entropy,
        )
        position_ids = position_ids_for(attention_mask)
        values = self.value(input_ids, attention_mask, position_ids)[:, context_length - 1 : -1]
        return logprobs, entropy, values


@torch.no_grad()
def reference_logprobs(
    ref_policy: nn.Module,
    query_response: torch.Tensor,
    attention_mask: torch.Tensor,
    context_length: int,
    temperature: float,
    chunk_size: int = 256,
) -> torch.Tensor:
    """The frozen reference policy's response-token log-probabilities (``response_logprobs``,
    without gradients), float32 [B, R]."""
    return response_logprobs(
        ref_policy, query_response, attention_mask, context_length, temperature, chunk_size
    )[0]


def check_policy(policy: nn.Module, tokenizer: Any) -> None:
    """Fail before training when the policy cannot end a response."""
    if getattr(tokenizer, "eos_token_id", None) is None:
        raise ModelError("the policy's tokenizer has no EOS token, so responses could never end")
    if not hasattr(policy, "generate"):
        raise ModelError(f"the policy ({type(policy).__name__}) is not a generative language model")
