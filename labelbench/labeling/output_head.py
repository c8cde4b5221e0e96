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


class DecodingHead:
    """The next token's choice while decoding rationales, as ``output_logprobs`` would make it,
    at the cost of the output layer in the model's own precision.

    In a lower precision the float32 output layer is a large part of a decoding step (Qwen2.5
    1.5B in bfloat16, 128 rows: 0.63 s of a 2.6 s step on the Intel Xeon of 2026-12-06). Here
    every row's logits are first computed in the model's precision (``low``: the model's own
    output weight), its ``candidates`` highest tokens taken, and their float32 logits computed
    exactly (float32 weight rows). A token outside the candidates has a float32 logit at most
    its low-precision logit plus ``bound``: each product of two values rounded to bfloat16
    errs by at most 2^-8 of its magnitude, so a logit errs by at most 2^-8 x |h| x |w| (h the
    hidden state, w the token's weight row; Cauchy-Schwarz), doubled here for the accumulation.
    A row whose ``need`` highest exact logits are not all above every outside token's ceiling
    is computed in full in float32 instead, so the tokens chosen are those of the float32 layer.
    A float32 model uses the float32 layer directly."""

    def __init__(
        self,
        head: tuple[torch.Tensor, torch.Tensor | None],
        low: tuple[torch.Tensor, torch.Tensor | None] | None,
        softcap: float | None,
        candidates: int = 64,
    ) -> None:
        self.head, self.low, self.softcap, self.candidates = head, low, softcap, candidates
        self.fallbacks = 0  # rows computed in full in float32 (the bound could not decide)
        weight = head[0]
        self._largest_row = float(weight.detach().norm(dim=1).max()) if low is not None else 0.0

    def top(self, hidden: torch.Tensor, need: int) -> tuple[torch.Tensor, torch.Tensor]:
        """For each row of ``hidden`` [rows, dim]: token ids [rows, k] and their float32 logits
        [rows, k] (soft-capped where the model caps), k >= ``need``, highest first; the true
        ``need`` highest tokens of the float32 output layer are among them."""
        weight, bias = self.head
        need = max(1, need)
        count = min(max(self.candidates, 2 * need), weight.shape[0])
        if self.low is None or count == weight.shape[0]:
            return self._full(hidden, count)
        low_weight, low_bias = self.low
        rough = torch.nn.functional.linear(hidden.to(low_weight.dtype), low_weight, low_bias)
        # in the low precision: the same values (exact in float32) without a float32 copy of
        # [rows, vocab]; a tie at the k-th value may take another token, which the bound below
        # covers as it covers any token left out
        rough_values, ids = torch.topk(rough, count, dim=-1)
        rough_values = rough_values.float()
        exact_hidden = hidden.float()
        rows = weight[ids]  # [rows, candidates, dim]
        exact = torch.bmm(rows, exact_hidden[:, :, None])[:, :, 0]
        if bias is not None:
            exact = exact + bias[ids]
        bound = 2.0**-7 * exact_hidden.norm(dim=1) * self._largest_row
        exact, order = torch.sort(exact, dim=-1, descending=True)
        ids = torch.gather(ids, 1, order)
        ceiling = rough_values[:, -1] + bound  # no outside token's exact logit exceeds this
        decided = exact[:, need - 1] > ceiling  # before soft-capping, which keeps the order
        if self.softcap:
            exact = torch.tanh(exact / self.softcap) * self.softcap
        if not bool(decided.all()):
            undecided = (~decided).nonzero()[:, 0]
            self.fallbacks += len(undecided)
            full_ids, full_values = self._full(hidden[undecided], count)
            ids, exact = ids.clone(), exact.clone()
            ids[undecided], exact[undecided] = full_ids, full_values
        return ids, exact

    def _full(self, hidden: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        weight, bias = self.head
        logits = torch.nn.functional.linear(hidden.float(), weight, bias)
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        values, ids = torch.topk(logits, k, dim=-1)
        return ids, values
