"""Key/value caches of ``TransformersBackend``, and how token sequences share them.

- ``GrowingLayer``, ``new_cache``: a transformers ``Cache`` kept in buffers with spare room;
- ``Rows``: the cache of a batch of padded rows (the scoring path's prefix tree);
- ``common_prefix_length``, ``length_chunks``: shared prefixes, and batches of similar lengths;
- ``Slots`` (with ``SlotLayer`` and ``PromptSource``): one cache slot per decoding sequence,
  and the prefixes sequences share, kept once (``labelbench.labeling.decoding``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicLayer

from labelbench.labeling.attention import SharedPrefixes


class GrowingLayer(DynamicLayer):
    """A cache layer kept in buffers with spare room, so appending a token does not copy the
    whole cache (``DynamicLayer`` concatenates, which dominates long decodes of many rows)."""

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            self._length = key_states.shape[-2]
            self._key_buffer = key_states.contiguous()
            self._value_buffer = value_states.contiguous()
        else:
            start, added = self._length, key_states.shape[-2]
            end = start + added
            if end > self._key_buffer.shape[-2]:
                capacity = end + max(end // 2, 64)
                self._key_buffer = self._grown(self._key_buffer, start, capacity)
                self._value_buffer = self._grown(self._value_buffer, start, capacity)
            self._key_buffer[..., start:end, :] = key_states
            self._value_buffer[..., start:end, :] = value_states
            self._length = end
        self.keys = self._key_buffer[..., : self._length, :]
        self.values = self._value_buffer[..., : self._length, :]
        return self.keys, self.values

    @staticmethod
    def _grown(buffer: torch.Tensor, length: int, capacity: int) -> torch.Tensor:
        shape = (*buffer.shape[:-2], capacity, buffer.shape[-1])
        grown = buffer.new_empty(shape)
        grown[..., :length, :] = buffer[..., :length, :]
        return grown


def new_cache(layers: int, kv: Sequence[tuple[torch.Tensor, torch.Tensor]] = ()) -> Cache:
    """A cache of ``layers`` ``GrowingLayer``s, the first ones holding ``kv`` (keys, values)."""
    cache = Cache(layers=[GrowingLayer() for _ in range(layers)])
    for layer, (keys, values) in zip(cache.layers, kv, strict=False):
        layer.update(keys, values)
    return cache


@dataclass
class Rows:
    """Key/value cache of a batch of rows, with padding masked out.

    ``TransformersBackend._extend`` grows ``cache`` in place, so a ``Rows`` is consumed when
    extended; ``select`` makes an independent copy.
    """

    cache: Cache | None  # None once extended
    mask: torch.Tensor  # [rows, columns]; 1 = a real token
    cols: list[list[int]]  # per row: the cache columns of its real tokens, in order
    tokens: list[list[int]]  # per row: its real token ids

    def select(self, index: Sequence[int]) -> Rows:
        """An independent copy of the rows ``index`` (a row may be taken several times)."""
        count = len(index)
        if self.mask.shape[0] == 1:
            kv = [
                (layer.keys.expand(count, -1, -1, -1), layer.values.expand(count, -1, -1, -1))
                for layer in self.cache.layers
            ]
            mask = self.mask.expand(count, -1).clone()
        else:
            where = torch.tensor(list(index), dtype=torch.long, device=self.mask.device)
            kv = [
                (layer.keys.index_select(0, where), layer.values.index_select(0, where))
                for layer in self.cache.layers
            ]
            mask = self.mask.index_select(0, where)
        return Rows(
            new_cache(len(kv), kv),
            mask,
            [list(self.cols[i]) for i in index],
            [list(self.tokens[i]) for i in index],
        )


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the longest common prefix of token sequences."""
    length = 0
    for column in zip(*sequences, strict=False):
        if any(token != column[0] for token in column):
            break
        length += 1
    return length


def length_chunks(
    lengths: Sequence[int], weights: Sequence[int], budget: int, max_rows: int, max_padding: float
) -> list[range]:
    """Consecutive chunks (of items sorted by length) whose padded size stays within ``budget``
    tokens and ``max_rows`` rows, and whose padding is at most ``max_padding`` of it."""
    chunks: list[range] = []
    start, rows, longest, real = 0, 0, 0, 0
    for position, (length, weight) in enumerate(zip(lengths, weights, strict=True)):
        grown_longest = max(longest, length)
        grown_rows, grown_real = rows + weight, real + weight * length
        padded = grown_rows * grown_longest
        if rows and (
            padded > budget or grown_rows > max_rows or padded - grown_real > max_padding * padded
        ):
            chunks.append(range(start, position))
            start, grown_rows, grown_longest, grown_real = position, weight, length, weight * length
        rows, longest, real = grown_rows, grown_longest, grown_real
    if rows:
        chunks.append(range(start, len(lengths)))
    return chunks


@dataclass(frozen=True)
class PromptSource:
    """Where one prompt's keys and values lie in a prompt pass's cache: its row and its
    columns, in token order."""

    row: int
    columns: list[int]


class SlotLayer(DynamicLayer):
    """One layer of a ``Slots`` cache, as transformers' attention layers call it."""

    def __init__(self, slots: Slots, index: int) -> None:
        super().__init__()
        self._slots, self._index = slots, index
        self.is_initialized = True

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self._slots.write(self._index, key_states, value_states)

    def get_seq_length(self) -> int:
        return self._slots.columns

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self._slots.columns, 0


class Slots:
    """Key/value caches of a decoding batch, one slot per sequence, with shared prefixes kept once.

    Per layer, buffers [slots, kv heads, capacity, head dim]. A sequence may share the first
    ``offsets[s]`` positions of its prompt with others (the item context both orders and all
    samples of a chain of thought start with): their keys/values are kept once, in a prefix of
    its ``groups[s]`` (per layer [kv heads, length, head dim]), and its slot holds positions
    ``offsets[s]`` onwards, column = position - offset (without a group, offset 0: column =
    position). ``lengths[s]`` counts positions, prefix included. A pass over slots ``rows``
    writes each row's new tokens after its own last column, so sequences of any lengths share a
    batch, and one leaves or joins without moving the others (``swap`` moves one). Memory is the
    slot count times the capacity, in tokens, fixed when the batch starts (grown only if a
    scored text re-tokenises longer than planned), plus the prefixes of the groups in use.
    """

    def __init__(self, layers: int, count: int, capacity: int) -> None:
        self.count, self.capacity = count, capacity
        self.lengths = [0] * count
        self.offsets = [0] * count
        self.groups: list[int | None] = [None] * count
        self.keys: list[torch.Tensor] = []  # allocated by the first ``put``
        self.values: list[torch.Tensor] = []
        self.prefixes: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self.cache = Cache(layers=[SlotLayer(self, index) for index in range(layers)])
        self.columns = 0  # key columns the current pass reads
        self._rows = range(0)
        self._starts = torch.zeros(0, dtype=torch.long)

    def put(
        self,
        slot: int,
        kv: Sequence[tuple[torch.Tensor, torch.Tensor]],
        source: PromptSource,
        group: int | None = None,
        shared: int = 0,
    ) -> None:
        """Copy one prompt's keys/values (``kv``: a prompt pass's layers, ``source``: where the
        prompt lies in them) into ``slot``; with a ``group``, its first ``shared`` positions are
        the group's prefix (taken from this prompt if the group has none yet)."""
        if not self.keys:
            for keys, values in kv:
                shape = (self.count, keys.shape[1], self.capacity, keys.shape[3])
                # zeros, not empty: a masked column is still multiplied, and garbage could be
                # inf or NaN (which a mask's large negative number does not hide)
                self.keys.append(keys.new_zeros(shape))
                self.values.append(values.new_zeros(shape))
        self.release(slot)
        where = torch.tensor(source.columns, dtype=torch.long, device=kv[0][0].device)
        if group is not None and shared > 0:
            if group not in self.prefixes:
                self.prefixes[group] = [
                    (
                        keys[source.row].index_select(1, where[:shared]),
                        values[source.row].index_select(1, where[:shared]),
                    )
                    for keys, values in kv
                ]
            self.groups[slot], self.offsets[slot] = group, shared
            where = where[shared:]
        own = len(where)
        self.reserve(own)
        for layer, (keys, values) in enumerate(kv):
            self.keys[layer][slot, :, :own] = keys[source.row].index_select(1, where)
            self.values[layer][slot, :, :own] = values[source.row].index_select(1, where)
        self.lengths[slot] = len(source.columns)

    def prefix_tokens(self) -> int:
        """Tokens of the prefixes held (each counted once)."""
        return sum(layers[0][0].shape[1] for layers in self.prefixes.values())

    def release(self, slot: int) -> None:
        """Free ``slot``: its group's prefix goes when no other slot uses it."""
        group = self.groups[slot]
        self.groups[slot], self.offsets[slot], self.lengths[slot] = None, 0, 0
        if group is not None and group not in self.groups:
            del self.prefixes[group]

    def unshare(self, slot: int) -> None:
        """Give ``slot`` its own copy of its prefix (column = position again), for a sequence
        whose scored text re-tokenises inside the shared prefix."""
        group, offset = self.groups[slot], self.offsets[slot]
        if group is None:
            return
        own = self.lengths[slot] - offset
        self.reserve(self.lengths[slot])
        for layer, (keys, values) in enumerate(self.prefixes[group]):
            for buffer, prefix in ((self.keys[layer], keys), (self.values[layer], values)):
                buffer[slot, :, offset : offset + own] = buffer[slot, :, :own].clone()
                buffer[slot, :, :offset] = prefix
        length = self.lengths[slot]
        self.release(slot)
        self.lengths[slot] = length

    def swap(self, first: int, second: int) -> None:
        """Exchange two slots' contents (only their used columns are copied)."""
        if first == second:
            return
        used = max(self.own(first), self.own(second))
        for buffer in (*self.keys, *self.values):
            held = buffer[first, :, :used].clone()
            buffer[first, :, :used] = buffer[second, :, :used]
            buffer[second, :, :used] = held
        for per_slot in (self.lengths, self.offsets, self.groups):
            per_slot[first], per_slot[second] = per_slot[second], per_slot[first]

    def own(self, slot: int) -> int:
        """The columns ``slot`` holds: its positions after its group's prefix."""
        return self.lengths[slot] - self.offsets[slot]

    def reserve(self, columns: int) -> None:
        """Room for ``columns`` columns in every slot (buffers copied into larger ones)."""
        if columns <= self.capacity:
            return
        capacity = columns + max(columns // 4, 64)
        for buffers in (self.keys, self.values):
            for index, buffer in enumerate(buffers):
                grown = buffer.new_zeros((*buffer.shape[:2], capacity, buffer.shape[3]))
                grown[:, :, : self.capacity] = buffer
                buffers[index] = grown
        self.capacity = capacity

    def begin(self, rows: range, starts: torch.Tensor, columns: int) -> None:
        """The next pass runs the slots ``rows``, writing row ``i``'s tokens from its column
        ``starts[i]``, and reads ``columns`` key columns."""
        self._rows, self._starts, self.columns = rows, starts, columns

    def shared(self, rows: range, device: torch.device | str) -> SharedPrefixes | None:
        """The prefixes the slots ``rows`` use, for the attention (rows counted from
        ``rows.start``); None if none does."""
        members: dict[int, list[int]] = {}
        for index, slot in enumerate(rows):
            group = self.groups[slot]
            if group is not None:
                members.setdefault(group, []).append(index)
        if not members:
            return None
        order: list[int] = []
        spans = []
        for group, indices in members.items():
            spans.append((len(order), len(order) + len(indices), self.prefixes[group]))
            order += indices
        return SharedPrefixes(torch.tensor(order, device=device), spans)

    def write(
        self, layer: int, keys: torch.Tensor, values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store a pass's new keys/values [rows, kv heads, width, head dim] at each row's columns;
        returns the rows' keys/values [rows, kv heads, columns, head dim] (views)."""
        lo, hi = self._rows.start, self._rows.stop
        count, width = keys.shape[0], keys.shape[2]
        columns = self._starts[:, None] + torch.arange(width, device=keys.device)[None, :]
        rows = torch.arange(count, device=keys.device)[:, None].expand(count, width)
        held_keys, held_values = self.keys[layer][lo:hi], self.values[layer][lo:hi]
        held_keys[rows, :, columns] = keys.transpose(1, 2)
        held_values[rows, :, columns] = values.transpose(1, 2)
        return held_keys[:, :, : self.columns], held_values[:, :, : self.columns]
