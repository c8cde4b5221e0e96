"""A causal LM's last step, read as the labelling engine reads it: the output layer in float32,
the model's context length, and the plain forward pass every engine result is tested against
(``naive_answer_logprobs``)."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import torch

ANSWER_CONTEXT = 64
"""Characters of a prompt's end used to map answers to tokens (``answer_token_ids``)."""

_FLOAT32_HEADS: weakref.WeakKeyDictionary[Any, tuple[int, tuple[Any, Any]]] = (
    weakref.WeakKeyDictionary()
)


def model_context_length(model: Any) -> int | None:
    """The longest sequence, in tokens, the model was built for: its config's
    ``max_position_embeddings`` (``n_positions``, ``max_seq_len``, ``seq_length`` for other
    families); None when the config states none."""
    config = model.config.get_text_config(decoder=True)
    for name in ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def output_layer(model: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The output layer's weight [vocab, dim] and bias (or None) in float32: the weight itself for
    a float32 model, a float32 copy otherwise (4 bytes x vocab x dim: 0.9 GB for Qwen2.5 1.5B),
    made once per model however many backends share it."""
    head = model.get_output_embeddings()
    version = (head.weight.data_ptr(), head.weight.dtype, head.weight._version)
    cached = _FLOAT32_HEADS.get(head)
    if cached is not None and cached[0] == hash(version):
        return cached[1]
    bias = getattr(head, "bias", None)
    layer = (head.weight.float(), None if bias is None else bias.float())
    _FLOAT32_HEADS[head] = (hash(version), layer)
    return layer


def output_logprobs(
    hidden: torch.Tensor,
    head: tuple[torch.Tensor, torch.Tensor | None],
    softcap: float | None,
) -> torch.Tensor:
    """Log-probabilities [rows, vocab] of the next token after the final hidden states ``hidden``
    [rows, dim] (the decoder's output), with the output layer ``head`` (``output_layer``) in
    float32 whatever the model's precision: in bfloat16 the logits of a 152k vocabulary would
    be rounded to about 3 significant digits, enough to tie an answer with its rival (or EOS
    with the first word of a rationale). ``softcap``: final logit soft-capping (Gemma), or None.
    """
    weight, bias = head
    logits = torch.nn.functional.linear(hidden.float(), weight, bias)
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    return torch.log_softmax(logits, dim=-1)


def naive_answer_logprobs(
    model: Any,
    tokenizer: Any,
    text: str,
    answers: Sequence[str],
    *,
    own_logits: bool | None = None,
) -> tuple[float, ...]:
    """Reference: one plain forward pass of the whole prompt, no cache reuse; the answer tokens'
    log-probabilities at its last position.

    ``own_logits=True``: the model's own forward pass, ``model(input_ids).logits`` (logits at
    every position, in the model's precision: the loop a transformers user writes).
    ``own_logits=False``: the decoder's last hidden state through the float32 output layer, as
    the engine reads it (``output_logprobs``). ``None`` (default): the first for a float32
    model, the second otherwise."""
    from labelbench.prompting import answer_token_ids, prompt_token_ids

    ids = torch.tensor([prompt_token_ids(tokenizer, text)])
    config = model.config.get_text_config(decoder=True)
    softcap = getattr(config, "final_logit_softcapping", None)
    answer_ids = answer_token_ids(answers, tokenizer, after=text[-ANSWER_CONTEXT:])
    if own_logits is None:
        own_logits = next(model.parameters()).dtype == torch.float32
    with torch.inference_mode():
        ids = ids.to(model.device)
        if own_logits:
            logprobs = torch.log_softmax(model(input_ids=ids).logits[:, -1].float(), dim=-1)
        else:
            hidden = model.base_model(input_ids=ids).last_hidden_state[:, -1]
            logprobs = output_logprobs(hidden, output_layer(model), softcap)
    return tuple(float(logprobs[0, a]) for a in answer_ids)
