"""Attention for the in-process backend, registered with transformers as ``NAME``.

The backend passes a layout that says which key each query may see, by token positions, so
causal masks and sliding windows (per layer) are exact however the tokens are laid out:

- ``RowsLayout``: right-padded rows, each with its own cache columns (padding has no position).
- ``TreeLayout``: one packed row of segments (a context, then the answers built on it); each
  segment sees the key columns of its ancestors and itself only, and its columns are positions.

Both are computed in blocks of ``block`` queries against the keys up to the block's last query
only, so the masked upper triangle is never computed, and grouped key/value heads are used as
they are. Without a layout it is plain SDPA, so a model switched to it behaves as before for
every other caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

NAME = "labelbench_block_causal"


def position_bias(
    key_positions: torch.Tensor,
    query_positions: torch.Tensor,
    window: int | None,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Additive mask [rows, 1, queries, keys] from key positions [rows, keys] (-1: padding) and
    query positions [rows, queries]: a query sees the keys at or before its position, and with
    a sliding ``window`` only those within ``window`` of it."""
    keys, queries = key_positions[:, None, :], query_positions[:, :, None]
    allowed = (keys >= 0) & (keys <= queries)
    if window is not None:
        allowed &= keys > queries - window
    bias = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return bias.masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]


@dataclass(frozen=True)
class SharedPrefixes:
    """Prefixes kept once for several rows (``kv_cache.Slots``): ``order``, the rows that use
    one, each prefix's rows together; ``spans``, per prefix, its rows' places in ``order``
    (start, stop) and per layer its keys and values [kv heads, length, head dim]."""

    order: torch.Tensor
    spans: list[tuple[int, int, list[tuple[torch.Tensor, torch.Tensor]]]]


@dataclass
class RowsLayout:
    """Right-padded rows: the position of each cache column (-1: padding) and of each query.
    With ``shared``, some rows' first positions are a prefix kept apart; every query of those
    rows sees all of it, before the row's own columns."""

    key_positions: torch.Tensor
    query_positions: torch.Tensor
    block: int
    shared: SharedPrefixes | None = None
    _biases: dict[tuple[int | None, torch.dtype], torch.Tensor] = field(default_factory=dict)

    def bias(self, window: int | None, dtype: torch.dtype) -> torch.Tensor:
        if (window, dtype) not in self._biases:
            self._biases[window, dtype] = position_bias(
                self.key_positions, self.query_positions, window, dtype
            )
        return self._biases[window, dtype]


@dataclass(frozen=True)
class Segment:
    """Consecutive tokens of a packed row (``queries``: their indices in the row) that see the
    key columns in ``context`` (their ancestors, in position order) and themselves."""

    queries: range
    context: tuple[range, ...]


@dataclass
class TreeLayout:
    """The segments of one packed pass; ``past`` key columns precede the pass's own tokens."""

    segments: list[Segment]
    past: int
    block: int
    _biases: dict[tuple[int, int, int | None, torch.dtype], torch.Tensor] = field(
        default_factory=dict
    )

    def bias(self, width: int, seen: int, window: int | None, like: torch.Tensor) -> torch.Tensor:
        """The bias of a segment of ``width`` queries after ``seen`` ancestor keys."""
        key = (width, seen, window, like.dtype)
        if key not in self._biases:
            positions = torch.arange(seen + width, device=like.device)[None]
            self._biases[key] = position_bias(positions, positions[:, seen:], window, like.dtype)
        return self._biases[key]


def _blocks(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    bias: torch.Tensor,
    scaling: float | None,
    block: int,
    output: torch.Tensor,
    offset: int = 0,
    window: int | None = None,
) -> None:
    """Causal attention of ``query`` [batch, heads, width, dim] into ``output`` [batch, offset +
    width.., heads, dim], block by block; ``bias`` [batch, 1, width, keys]. A sliding ``window``
    is given only where key columns are positions: keys before every query's window are skipped."""
    batch, heads, width, dim = query.shape
    past = key.shape[2] - width
    kv_heads = key.shape[1]
    gqa = kv_heads != heads
    if width == 1 and gqa and window is None:  # a decoding step: one query a row
        # each key/value head's group of query heads as its queries (head h reads kv head
        # h // group, as GQA does): the keys are read once, not once per query head
        grouped = torch.nn.functional.scaled_dot_product_attention(
            query.reshape(batch, kv_heads, heads // kv_heads, dim),
            key,
            value,
            attn_mask=bias,
            scale=scaling,
        )
        output[:, offset] = grouped.reshape(batch, heads, dim)
        return
    for start in range(0, width, block):
        end = min(width, start + block)
        first = 0 if window is None else max(0, past + start - window + 1)
        output[:, offset + start : offset + end] = torch.nn.functional.scaled_dot_product_attention(
            query[:, :, start:end],
            key[:, :, first : past + end],
            value[:, :, first : past + end],
            attn_mask=bias[:, :, start:end, first : past + end],
            scale=scaling,
            enable_gqa=gqa,
        ).transpose(1, 2)


def _flash(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, bias: torch.Tensor | None, scale
) -> tuple[torch.Tensor, torch.Tensor]:
    """CPU fused attention with its log-sum-exp: ``query`` [batch, heads, queries, dim] over
    ``key``/``value`` [batch, heads, keys, dim]; (output like ``query``, float32 log-sum-exp
    [batch, heads, queries])."""
    output, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        query, key, value, 0.0, False, attn_mask=bias, scale=scale
    )
    return output, lse.float()


def _shared_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    rows: RowsLayout,
    layer: int,
    scaling: float | None,
) -> torch.Tensor:
    """``RowsLayout`` attention where rows share prefixes: each row's own columns (by position,
    causal) and its prefix (all of it) attended apart and merged by their log-sum-exps, so a
    prefix is read once for all its rows. Queries go grouped (each key/value head's query heads
    as its queries), so keys are read once a group. Returns [rows, width, heads, dim]."""
    batch, heads, width, dim = query.shape
    kv_heads = key.shape[1]
    asked = heads // kv_heads * width  # queries a key/value head and row
    grouped = query.reshape(batch, kv_heads, asked, dim)  # query heads, then width
    bias = rows.bias(None, query.dtype)
    if asked > width:
        bias = bias.repeat(1, 1, asked // width, 1)
    output, lse = _flash(grouped, key, value, bias, scaling)
    shared = rows.shared
    assert shared is not None
    order, count = shared.order, len(shared.order)
    # the rows of each prefix side by side, per key/value head: a prefix's queries are a view
    queries = grouped.index_select(0, order).transpose(0, 1).contiguous()
    part = queries.new_empty((kv_heads, count, asked, dim))
    part_lse = lse.new_empty((kv_heads, count, asked))
    for start, stop, layers in shared.spans:
        keys, values = layers[layer]
        mine = queries[:, start:stop].reshape(1, kv_heads, (stop - start) * asked, dim)
        out, out_lse = _flash(mine, keys[None], values[None], None, scaling)
        part[:, start:stop] = out.view(kv_heads, stop - start, asked, dim)
        part_lse[:, start:stop] = out_lse.view(kv_heads, stop - start, asked)
    own_lse = lse.index_select(0, order)
    part_lse = part_lse.transpose(0, 1)
    top = torch.maximum(own_lse, part_lse)
    own_weight, part_weight = (own_lse - top).exp_(), (part_lse - top).exp_()
    merged = output.index_select(0, order).float() * own_weight[..., None]
    merged += part.transpose(0, 1).float() * part_weight[..., None]
    merged /= (own_weight + part_weight)[..., None]
    output.index_copy_(0, order, merged.to(output.dtype))
    return output.reshape(batch, heads, width, dim).transpose(1, 2)


def _columns(states: torch.Tensor, ranges: tuple[range, ...]) -> torch.Tensor:
    """The key/value columns in ``ranges`` (in order), without a copy when they are adjacent."""
    merged: list[range] = []
    for part in ranges:
        if merged and merged[-1].stop == part.start:
            merged[-1] = range(merged[-1].start, part.stop)
        elif part:
            merged.append(part)
    pieces = [states[:, :, part.start : part.stop] for part in merged]
    return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=2)


def _tree_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    tree: TreeLayout,
    scaling: float | None,
    window: int | None,
) -> torch.Tensor:
    batch, heads, width, dim = query.shape
    output = query.new_empty((batch, width, heads, dim))
    for segment in tree.segments:
        queries = segment.queries
        columns = (*segment.context, range(tree.past + queries.start, tree.past + queries.stop))
        keys, values = _columns(key, columns), _columns(value, columns)
        seen = keys.shape[2] - len(queries)
        bias = tree.bias(len(queries), seen, window, query)
        part = query[:, :, queries.start : queries.stop]
        _blocks(part, keys, values, bias, scaling, tree.block, output, queries.start, window)
    return output


def block_causal_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    labelbench_rows: RowsLayout | None = None,
    labelbench_tree: TreeLayout | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """``query`` [batch, heads, width, dim] over ``key``/``value`` [batch, kv heads, past +
    width, dim]; returns [batch, width, heads, dim] as transformers' attention functions do."""
    plain = dropout or kwargs.get("softcap") is not None
    window = kwargs.get("sliding_window")
    if labelbench_tree is not None and not plain:
        return _tree_attention(query, key, value, labelbench_tree, scaling, window), None
    if labelbench_rows is not None and labelbench_rows.shared:
        if plain or window is not None:  # the decoder shares prefixes only where neither is
            raise ValueError("shared prefixes need plain full attention (no window, softcap)")
        output = _shared_attention(query, key, value, labelbench_rows, module.layer_idx, scaling)
        return output, None
    if labelbench_rows is not None and not plain:
        batch, heads, width, dim = query.shape
        output = query.new_empty((batch, width, heads, dim))
        bias = labelbench_rows.bias(window, query.dtype)
        _blocks(query, key, value, bias, scaling, labelbench_rows.block, output)
        return output, None
    return sdpa_attention_forward(
        module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
    )


def use_block_causal(model: Any) -> bool:
    """Switch a model that runs SDPA to this attention; False if it runs anything else."""
    if model.config._attn_implementation == NAME:
        return True
    if model.config._attn_implementation != "sdpa":
        return False
    AttentionInterface.register(NAME, block_causal_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)
    model.set_attn_implementation(NAME)
    return model.config._attn_implementation == NAME
