"""In-process labeling with transformers.

Every request's tokens are split into three segments: a root shared by every request with the same
``shared`` text, a node shared by the requests of one context (both orders), and the request's own
tail. Root key/value caches are computed once and reused across calls. Scoring packs nodes and
their tails into one row per pass (no padding), and the model runs this package's attention
(``labelbench.labeling.attention``): each segment attends to its ancestors and itself, in causal
blocks, so every token is computed once and logits only at each tail's last position. Models on
another attention implementation use padded rows instead: rows of similar length are batched with
right padding, masked out. Splits are made on the tokenisation of the full text, so results equal
a plain forward pass.

Rationales are decoded in one continuous batch (``_Decoder``): every sample of every request is a
sequence in a slot of a cache bounded by ``decode_tokens``; prompts run in the same prefix-tree
passes and are copied into free slots, each step decodes one token of every active sequence, the
finished leave, are scored together by appending ``score_suffix`` to their own caches, and
waiting prompts take their slots. Each sample samples with its own seeded generator.

The attention masks by token positions, so sliding windows (Gemma 3) are exact in every layout
this module runs (rationales included: their masks are built per layer type). A model left on
another attention gets transformers' masks by cache column when it scores, which padding
shifts: it scores prompts longer than its window with one plain pass each.
"""

from __future__ import annotations

import inspect
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicLayer

from labelbench.errors import ModelError
from labelbench.labeling.attention import RowsLayout, Segment, TreeLayout, use_block_causal
from labelbench.labeling.backend import Sample, Scored
from labelbench.requests import RationaleRequest, ScoreRequest

_ANSWER_CONTEXT = 64  # characters of prompt end used to map answers to tokens


class _GrowingLayer(DynamicLayer):
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


def _new_cache(layers: int, kv: Sequence[tuple[torch.Tensor, torch.Tensor]] = ()) -> Cache:
    cache = Cache(layers=[_GrowingLayer() for _ in range(layers)])
    for layer, (keys, values) in zip(cache.layers, kv, strict=False):
        layer.update(keys, values)
    return cache


@dataclass
class _Rows:
    """Key/value cache of a batch of rows, with padding masked out.

    ``_extend`` grows ``cache`` in place, so a ``_Rows`` is consumed when extended; ``select``
    makes an independent copy.
    """

    cache: Cache | None  # None once extended
    mask: torch.Tensor  # [rows, columns]; 1 = a real token
    cols: list[list[int]]  # per row: the cache columns of its real tokens, in order
    tokens: list[list[int]]  # per row: its real token ids

    def select(self, index: Sequence[int]) -> _Rows:
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
        return _Rows(
            _new_cache(len(kv), kv),
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


def _chunks(
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
class _Source:
    """Where one prompt's keys and values lie in a prompt pass's cache: its row and its
    columns, in token order."""

    row: int
    columns: list[int]


class _SlotLayer(DynamicLayer):
    """One layer of a ``_Slots`` cache, as transformers' attention layers call it."""

    def __init__(self, slots: _Slots, index: int) -> None:
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


class _Slots:
    """Key/value caches of a decoding batch, one slot per sequence.

    Per layer, buffers [slots, kv heads, capacity, head dim]; slot ``s`` holds its sequence's
    tokens in columns ``[0, lengths[s])``, column = position. A pass over slots ``rows`` writes
    each row's new tokens at that row's own length, so sequences of any lengths share a batch,
    and one leaves or joins without moving the others (``swap`` moves one). Memory is the slot
    count times the capacity, in tokens, fixed when the batch starts (grown only if a scored
    text re-tokenises longer than planned).
    """

    def __init__(self, layers: int, count: int, capacity: int) -> None:
        self.count, self.capacity = count, capacity
        self.lengths = [0] * count
        self.keys: list[torch.Tensor] = []  # allocated by the first ``put``
        self.values: list[torch.Tensor] = []
        self.cache = Cache(layers=[_SlotLayer(self, index) for index in range(layers)])
        self.columns = 0  # key columns the current pass reads
        self._rows = range(0)
        self._starts = torch.zeros(0, dtype=torch.long)

    def put(self, slot: int, kv: Sequence[tuple[torch.Tensor, torch.Tensor]], source: _Source):
        """Copy one prompt's keys/values (``kv``: a prompt pass's layers, ``source``: where the
        prompt lies in them) into ``slot``."""
        if not self.keys:
            for keys, values in kv:
                shape = (self.count, keys.shape[1], self.capacity, keys.shape[3])
                # zeros, not empty: a masked column is still multiplied, and garbage could be
                # inf or NaN (which a mask's large negative number does not hide)
                self.keys.append(keys.new_zeros(shape))
                self.values.append(values.new_zeros(shape))
        length = len(source.columns)
        self.reserve(length)
        where = torch.tensor(source.columns, dtype=torch.long, device=kv[0][0].device)
        for layer, (keys, values) in enumerate(kv):
            self.keys[layer][slot, :, :length] = keys[source.row].index_select(1, where)
            self.values[layer][slot, :, :length] = values[source.row].index_select(1, where)
        self.lengths[slot] = length

    def swap(self, first: int, second: int) -> None:
        """Exchange two slots' contents (only their used columns are copied)."""
        if first == second:
            return
        used = max(self.lengths[first], self.lengths[second])
        for buffer in (*self.keys, *self.values):
            held = buffer[first, :, :used].clone()
            buffer[first, :, :used] = buffer[second, :, :used]
            buffer[second, :, :used] = held
        self.lengths[first], self.lengths[second] = self.lengths[second], self.lengths[first]

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
        """The next pass runs the slots ``rows``, writing row ``i``'s tokens from column
        ``starts[i]``, and reads ``columns`` key columns."""
        self._rows, self._starts, self.columns = rows, starts, columns

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


@dataclass
class _Sequence:
    """One rationale being decoded: its request and sample, its sampler, its tokens."""

    owner: int
    sample: int
    generator: torch.Generator | None
    tokens: list[int]  # whose keys/values are in its slot
    generated: list[int]
    feed: int | None = None  # the token to run next


class TransformersBackend:
    """Scores and generates with a causal LM in this process.

    A model on SDPA is switched to this package's attention, which is plain SDPA for any other
    caller; ``causal_block`` is its query block size.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        identity: str,
        *,
        token_budget: int = 4096,
        max_rows: int = 32,
        max_padding: float = 0.03,
        causal_block: int = 32,
        decode_tokens: int = 32768,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self._identity = identity
        self.token_budget = token_budget
        self.max_rows = max_rows
        self.max_padding = max_padding
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.eos_ids = self._eos_ids()
        self.decode_tokens = decode_tokens
        self.processed_tokens = 0  # real tokens run through the model (no padding)
        self.padded_tokens = 0  # positions run through the model, padding included
        self.decode_steps = 0  # batched decoding passes (one token per active sequence)
        self.decoded_rows = 0  # sequences summed over those passes
        self._roots: OrderedDict[tuple[int, ...], _Rows] = OrderedDict()
        self._answer_ids: dict[tuple[tuple[str, ...], str], list[int]] = {}
        config = model.config.get_text_config(decoder=True)
        layer_types = getattr(config, "layer_types", None) or []
        self._window = (
            getattr(config, "sliding_window", None) if "sliding_attention" in layer_types else None
        )
        self._softcap = getattr(config, "final_logit_softcapping", None)
        self.context_length = model_context_length(model)
        self._layers = config.num_hidden_layers
        forward_params = inspect.signature(model.base_model.forward).parameters
        self._cache_arg = "cache" if "cache" in forward_params else "past_key_values"
        self.causal_block = causal_block
        self._own_attention = use_block_causal(model)
        first = next(model.parameters())
        self._dtype = first.dtype
        self.device = first.device
        self._head = output_layer(model)

    @property
    def precision(self) -> str:
        """The weights' and activations' precision: ``float32`` or ``bfloat16``."""
        return str(self._dtype).removeprefix("torch.")

    @property
    def identity(self) -> str:
        return self._identity

    def set_identity(self, identity: str) -> None:
        """Set once the labeler's chat mode and precision are known (``open_labeler``)."""
        self._identity = identity

    # -- text and tokens -------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        """A prompt's token ids: its BOS once, nothing appended (``prompt_token_ids``)."""
        from labelbench.prompting import prompt_token_ids

        return prompt_token_ids(self.tokenizer, text)

    def answer_ids(self, answers: tuple[str, ...], text: str) -> list[int]:
        """Token ids of the answers as the next token after ``text`` (one mapping, shared with
        the prompt engine: ``labelbench.prompting.answer_token_ids``)."""
        from labelbench.prompting import answer_token_ids

        key = (answers, text[-_ANSWER_CONTEXT:])
        if key not in self._answer_ids:
            self._answer_ids[key] = answer_token_ids(answers, self.tokenizer, after=key[1])
        return self._answer_ids[key]

    def _eos_ids(self) -> set[int]:
        ids = {self.tokenizer.eos_token_id}
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        ids.update(configured if isinstance(configured, list) else [configured])
        return {i for i in ids if i is not None}

    # -- model passes ---------------------------------------------------------------------

    def _extend(
        self, rows: _Rows | None, segments: Sequence[Sequence[int]]
    ) -> tuple[_Rows, torch.Tensor]:
        """Run ``segments`` after ``rows``; returns the grown rows and each row's last hidden state.

        An empty segment adds only masked padding to its row (its hidden state is meaningless).
        """
        count = len(segments)
        width = max(1, max(len(s) for s in segments))
        ids = torch.full((count, width), self.pad_id, dtype=torch.long)
        seg_mask = torch.zeros((count, width), dtype=torch.long)
        for row, segment in enumerate(segments):
            ids[row, : len(segment)] = torch.tensor(segment, dtype=torch.long)
            seg_mask[row, : len(segment)] = 1
        ids, seg_mask = ids.to(self.device), seg_mask.to(self.device)
        past = 0 if rows is None else rows.mask.shape[1]
        start = (
            torch.zeros(count, dtype=torch.long, device=self.device)
            if rows is None
            else rows.mask.sum(1)
        )
        position_ids = start[:, None] + torch.arange(width, device=self.device)[None, :]
        mask = seg_mask if rows is None else torch.cat([rows.mask, seg_mask], dim=1)
        cache = _new_cache(self._layers) if rows is None else rows.cache
        if rows is not None:
            if cache is None:
                raise RuntimeError("these rows were already extended; extend a select() copy")
            rows.cache = None  # the cache grows in place: these rows are consumed
        if self._own_attention:
            key_positions = (mask.cumsum(1) - 1).masked_fill(mask == 0, -1)
            layout = RowsLayout(key_positions, position_ids, self.causal_block)
            # the attention reads the layout; a 4-D mask only spares transformers building one
            attention = {"attention_mask": layout.bias(None, self._dtype)}
            attention["labelbench_rows"] = layout
        else:
            attention = {"attention_mask": mask}
        out = self.model.base_model(
            input_ids=ids,
            position_ids=position_ids,
            use_cache=True,
            **{self._cache_arg: cache},
            **attention,
        )
        self.processed_tokens += int(seg_mask.sum())
        self.padded_tokens += count * width
        last_index = torch.tensor(
            [max(len(s) - 1, 0) for s in segments], dtype=torch.long, device=self.device
        )
        last = out.last_hidden_state[torch.arange(count, device=self.device), last_index]
        old_cols = [[] for _ in segments] if rows is None else rows.cols
        old_tokens = [[] for _ in segments] if rows is None else rows.tokens
        cols = [
            c + list(range(past, past + len(s))) for c, s in zip(old_cols, segments, strict=True)
        ]
        tokens = [t + list(s) for t, s in zip(old_tokens, segments, strict=True)]
        return _Rows(cache, mask, cols, tokens), last

    def _logprobs(self, hidden: torch.Tensor) -> torch.Tensor:
        """Log-probabilities [rows, vocab] (float32) of the next token after ``hidden``."""
        return output_logprobs(hidden, self._head, self._softcap)

    def _answer_logprobs(
        self, hidden: torch.Tensor, answers: Sequence[Sequence[int]]
    ) -> list[tuple[float, ...]]:
        """Each row's answer-token log-probabilities after ``hidden`` [rows, dim]."""
        logprobs = self._logprobs(hidden)
        return [tuple(float(logprobs[row, a]) for a in ids) for row, ids in enumerate(answers)]

    def _root(self, tokens: tuple[int, ...]) -> _Rows | None:
        if not tokens:
            return None
        if tokens in self._roots:
            self._roots.move_to_end(tokens)
            return self._roots[tokens]
        root, _ = self._extend(None, [list(tokens)])
        self._roots[tokens] = root
        while len(self._roots) > 4:
            self._roots.popitem(last=False)
        return root

    def _prefix_tree(
        self, requests: Sequence[ScoreRequest | RationaleRequest], ids: Sequence[list[int]]
    ) -> Iterator[tuple[tuple[int, ...], list[tuple[int, list[int]]]]]:
        """Per ``shared`` text: the root tokens, and its nodes as (node length, request indices);
        a node is the tokens one context's requests share (at least the root), sorted by length."""
        by_shared: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            by_shared.setdefault(request.shared, []).append(index)
        for members in by_shared.values():
            shortest = min(len(ids[m]) for m in members)
            if shortest < 2:
                raise ModelError("a prompt must be at least two tokens long")
            root_len = min(common_prefix_length([ids[m] for m in members]), shortest - 1)
            by_context: dict[str, list[int]] = {}
            for m in members:
                by_context.setdefault(requests[m].context, []).append(m)
            nodes = []
            for node in by_context.values():
                node_len = min(
                    common_prefix_length([ids[m] for m in node]), min(len(ids[m]) for m in node) - 1
                )
                if node_len == 0:  # nothing in common at all: each request is its own node
                    nodes.extend((len(ids[m]) - 1, [m]) for m in node)
                else:
                    nodes.append((max(node_len, root_len), node))
            nodes.sort(key=lambda item: item[0])
            yield tuple(ids[members[0]][:root_len]), nodes

    def _leaf_batches(
        self,
        requests: Sequence[ScoreRequest | RationaleRequest],
        ids: Sequence[list[int]],
        rows_per: Sequence[int],
    ) -> Iterator[tuple[list[int], _Rows, list[list[int]]]]:
        """Yield (request indices, rows holding all but each request's tail, the tails)."""
        for root_tokens, nodes in self._prefix_tree(requests, ids):
            root_len = len(root_tokens)
            root = self._root(root_tokens)
            node_weights = [sum(rows_per[m] for m in node) for _, node in nodes]
            for chunk in _chunks(
                [n - root_len for n, _ in nodes],
                node_weights,
                self.token_budget,
                self.max_rows,
                self.max_padding,
            ):
                batch = [nodes[i] for i in chunk]
                segments = [ids[node[0]][root_len:node_len] for node_len, node in batch]
                if root is not None and not any(segments):
                    state = root.select([0] * len(batch))
                else:
                    base = None if root is None else root.select([0] * len(batch))
                    state, _ = self._extend(base, segments)
                leaves = [
                    (len(ids[m]) - node_len, m, row, node_len)
                    for row, (node_len, node) in enumerate(batch)
                    for m in node
                ]
                leaves.sort(key=lambda leaf: leaf[0])
                weights = [rows_per[m] for _, m, _, _ in leaves]
                for part in _chunks(
                    [leaf[0] for leaf in leaves],
                    weights,
                    self.token_budget,
                    self.max_rows,
                    self.max_padding,
                ):
                    chosen = [leaves[i] for i in part]
                    yield (
                        [m for _, m, _, _ in chosen],
                        state.select([row for _, _, row, _ in chosen]),
                        [ids[m][node_len:] for _, m, _, node_len in chosen],
                    )

    def _tree_pass(
        self,
        root: _Rows | None,
        groups: Sequence[tuple[list[int], list[list[int]]]],
        keep_cache: bool = False,
    ) -> Any:
        """One packed pass over (node tokens, their tails) groups after ``root``; returns the
        last hidden state of every tail [tails, dim], in order. ``keep_cache``: returns
        (that, the pass's cache [1, kv heads, columns, head dim] per layer, each tail's cache
        columns: its root, node and own tokens in order) instead."""
        past = 0 if root is None else root.mask.shape[1]
        shared = (range(past),) if past else ()
        tokens: list[int] = []
        positions: list[int] = []
        segments: list[Segment] = []
        last: list[int] = []
        columns: list[list[int]] = []
        for node, tails in groups:
            node_columns = shared
            if node:
                start = len(tokens)
                segments.append(Segment(range(start, start + len(node)), shared))
                node_columns = (*shared, range(past + start, past + start + len(node)))
                tokens += node
                positions += range(past, past + len(node))
            for tail in tails:
                start = len(tokens)
                segments.append(Segment(range(start, start + len(tail)), node_columns))
                if keep_cache:
                    columns.append([c for part in node_columns for c in part])
                    columns[-1] += range(past + start, past + start + len(tail))
                tokens += tail
                positions += range(past + len(node), past + len(node) + len(tail))
                last.append(len(tokens) - 1)
        cache = _new_cache(self._layers) if root is None else root.select([0]).cache
        out = self.model.base_model(
            input_ids=torch.tensor([tokens], device=self.device),
            position_ids=torch.tensor([positions], device=self.device),
            use_cache=True,
            labelbench_tree=TreeLayout(segments, past, self.causal_block),
            **{self._cache_arg: cache},
        )
        self.processed_tokens += len(tokens)
        self.padded_tokens += len(tokens)
        if keep_cache:
            return out.last_hidden_state[0, last], cache, columns
        return out.last_hidden_state[0, last]

    def _tree_batches(
        self, requests: Sequence[ScoreRequest], ids: Sequence[list[int]]
    ) -> Iterator[tuple[list[int], _Rows | None, list[tuple[list[int], list[list[int]]]]]]:
        """Yield (request indices, root, groups) for packed passes of about ``token_budget``."""
        for root_tokens, nodes in self._prefix_tree(requests, ids):
            root = self._root(root_tokens)
            indices: list[int] = []
            groups: list[tuple[list[int], list[list[int]]]] = []
            size = 0
            for node_len, members in nodes:
                node = ids[members[0]][len(root_tokens) : node_len]
                tails = [ids[m][node_len:] for m in members]
                grown = size + len(node) + sum(map(len, tails))
                if groups and grown > self.token_budget:
                    yield indices, root, groups
                    indices, groups, grown = [], [], grown - size
                indices += members
                groups.append((node, tails))
                size = grown
            if groups:
                yield indices, root, groups

    # -- the protocol ---------------------------------------------------------------------

    @torch.inference_mode()
    def _check_lengths(self, ids: Sequence[list[int]], room: Sequence[int]) -> None:
        """ModelError before any pass when a prompt (plus its generation room) is longer than the
        model's context: past it a RoPE model reads positions it was never trained on and a
        learned-position model fails. The planner shortens or refuses such items first."""
        limit = self.context_length
        for tokens, extra in zip(ids, room, strict=True):
            if limit is not None and len(tokens) + extra > limit:
                raise ModelError(
                    f"a prompt of {len(tokens) + extra} tokens is over the model's context limit "
                    f"of {limit} tokens (max_position_embeddings); set the labeler's max_tokens "
                    "so that the planner shortens it"
                )

    @torch.inference_mode()
    def score(self, requests: Sequence[ScoreRequest]) -> list[Scored]:
        ids = [self.encode(request.text) for request in requests]
        self._check_lengths(ids, [0] * len(ids))
        too_long = self._window is not None and max(map(len, ids), default=0) > self._window
        if too_long and not self._own_attention:
            return [self._score_plain(r, i) for r, i in zip(requests, ids, strict=True)]
        results: list[Scored | None] = [None] * len(requests)
        for indices, last in self._score_passes(requests, ids):
            answers = [self.answer_ids(requests[i].answers, requests[i].text) for i in indices]
            for index, values in zip(indices, self._answer_logprobs(last, answers), strict=True):
                results[index] = Scored(values, len(ids[index]))
        return [r for r in results if r is not None]

    def _score_passes(
        self, requests: Sequence[ScoreRequest], ids: Sequence[list[int]]
    ) -> Iterator[tuple[list[int], torch.Tensor]]:
        """(request indices, their last hidden states): packed prefix-tree passes where the
        model runs this module's attention, padded rows otherwise."""
        if self._own_attention:
            for indices, root, groups in self._tree_batches(requests, ids):
                yield indices, self._tree_pass(root, groups)
            return
        for indices, state, tails in self._leaf_batches(requests, ids, [1] * len(requests)):
            yield indices, self._extend(state, tails)[1]

    def _score_plain(self, request: ScoreRequest, ids: list[int]) -> Scored:
        out = self.model.base_model(input_ids=torch.tensor([ids], device=self.device))
        self.processed_tokens += len(ids)
        self.padded_tokens += len(ids)
        answer_ids = self.answer_ids(request.answers, request.text)
        (values,) = self._answer_logprobs(out.last_hidden_state[:, -1], [answer_ids])
        return Scored(values, len(ids))

    @torch.inference_mode()
    def rationales(
        self, requests: Sequence[RationaleRequest], seeds: Sequence[int]
    ) -> list[list[Sample]]:
        """``requests[i].n`` rationales each (sample ``j`` drawn with seed ``seeds[i] + j``), every
        one scored after ``text + rationale + score_suffix``; see ``_Decoder``."""
        ids = [self.encode(request.text) for request in requests]
        self._check_lengths(ids, [r.max_new_tokens for r in requests])
        return _Decoder(self, requests, ids, seeds).run()

    def _prefills(
        self, requests: Sequence[RationaleRequest], ids: Sequence[list[int]]
    ) -> Iterator[tuple[list[int], list[tuple[torch.Tensor, torch.Tensor]], list[_Source], Any]]:
        """Prompt passes for ``requests``: yields (request indices, each layer's (keys, values)
        [rows, kv heads, columns, head dim], per request where its prompt's columns lie, each
        request's last hidden state [requests, dim]). Packed prefix-tree passes where the model
        runs this module's attention (each shared prefix computed once, the root reused across
        calls), padded rows otherwise."""
        if self._own_attention:
            for indices, root, groups in self._tree_batches(requests, ids):
                last, cache, columns = self._tree_pass(root, groups, keep_cache=True)
                kv = [(layer.keys, layer.values) for layer in cache.layers]
                yield indices, kv, [_Source(0, c) for c in columns], last
            return
        for indices, state, tails in self._leaf_batches(requests, ids, [1] * len(requests)):
            rows, last = self._extend(state, tails)
            kv = [(layer.keys, layer.values) for layer in rows.cache.layers]
            yield indices, kv, [_Source(r, c) for r, c in enumerate(rows.cols)], last

    def _slot_pass(self, slots: _Slots, rows: range, segments: Sequence[Sequence[int]]) -> Any:
        """Run ``segments`` (one per slot in ``rows``, each written at that slot's own length)
        through the model over the slots' caches; returns each row's last hidden state
        [rows, dim] (meaningless for an empty segment)."""
        count = len(rows)
        width = max(1, max(len(s) for s in segments))
        ids = torch.full((count, width), self.pad_id, dtype=torch.long)
        for row, segment in enumerate(segments):
            ids[row, : len(segment)] = torch.tensor(segment, dtype=torch.long)
        starts = torch.tensor([slots.lengths[r] for r in rows], dtype=torch.long)
        ends = starts + torch.tensor([len(s) for s in segments], dtype=torch.long)
        columns = int((starts + width).max())
        slots.reserve(columns)
        # a pad query takes its row's last position: it sees that row's keys (with a sliding
        # window, a later position could see none, and its NaN would reach the cache)
        last_position = (ends - 1).clamp(min=0)[:, None]
        position_ids = torch.minimum(starts[:, None] + torch.arange(width)[None, :], last_position)
        key_positions = torch.arange(columns)[None, :].expand(count, columns)
        key_positions = key_positions.masked_fill(key_positions >= ends[:, None], -1)
        layout = RowsLayout(
            key_positions.to(self.device), position_ids.to(self.device), self.causal_block
        )
        full = layout.bias(None, self._dtype)
        if self._window is not None:  # per layer type (the models that have several take a dict)
            mask: Any = {
                "full_attention": full,
                "sliding_attention": layout.bias(self._window, self._dtype),
            }
        else:
            mask = full
        attention: dict[str, Any] = {"attention_mask": mask}
        if self._own_attention:
            attention["labelbench_rows"] = layout
        slots.begin(rows, starts.to(self.device), columns)
        out = self.model.base_model(
            input_ids=ids.to(self.device),
            position_ids=layout.query_positions,
            use_cache=True,
            **{self._cache_arg: slots.cache},
            **attention,
        )
        for row, end in zip(rows, ends.tolist(), strict=True):
            slots.lengths[row] = end
        real = int(sum(len(s) for s in segments))
        self.processed_tokens += real
        self.padded_tokens += count * width
        last_index = torch.tensor([max(len(s) - 1, 0) for s in segments], device=self.device)
        return out.last_hidden_state[torch.arange(count, device=self.device), last_index]

    @staticmethod
    def _choose(
        logprobs: torch.Tensor, request: RationaleRequest, generator: torch.Generator
    ) -> int:
        if request.temperature <= 0:
            return int(torch.argmax(logprobs))
        logits = logprobs / request.temperature
        if request.top_k:
            threshold = torch.topk(logits, request.top_k).values[-1]
            logits = logits.masked_fill(logits < threshold, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        return int(torch.multinomial(probs, 1, generator=generator))


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
    answer_ids = answer_token_ids(answers, tokenizer, after=text[-_ANSWER_CONTEXT:])
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


class _Decoder:
    """Batched rationale decoding for ``TransformersBackend.rationales``, continuous batching
    over a ``_Slots`` cache.

    Every sample of every request is a sequence. Prompts are run in prefix-tree passes (a
    variant's shared text computed once and kept across calls, each item's context once for both
    orders and all samples) and their keys/values copied into free slots. Each step decodes one
    token for every active slot at once; a sequence that ends (EOS or ``max_new_tokens``) leaves
    the decoding rows at once, and when a quarter of the slots are finished or free, the
    finished ones are scored together (``text + rationale + score_suffix``, appended to their
    own caches) and waiting prompts join. The slot count is ``decode_tokens`` over the longest
    sequence a slot may hold (prompt, ``max_new_tokens`` and the score suffix): memory is bounded
    by tokens, not by a sequence count.

    Sample ``j`` of request ``i`` samples with its own ``torch.Generator`` seeded ``seeds[i] +
    j``, advanced only by its own tokens, so what it draws does not depend on which sequences
    share its batch; each row attends to its own columns only (the pad columns of other rows
    are masked), so a row's result equals decoding it alone up to float rounding.
    """

    def __init__(
        self,
        backend: TransformersBackend,
        requests: Sequence[RationaleRequest],
        ids: Sequence[list[int]],
        seeds: Sequence[int],
    ) -> None:
        self.backend, self.requests, self.ids, self.seeds = backend, requests, ids, seeds
        suffix = max((len(backend.encode(r.score_suffix)) for r in requests), default=0)
        capacity = max(
            (len(i) + r.max_new_tokens + suffix + 8 for i, r in zip(ids, requests, strict=True)),
            default=1,
        )
        total = sum(r.n for r in requests)
        count = max(1, min(total, backend.decode_tokens // capacity))
        self.slots = _Slots(backend._layers, count, capacity)
        self.sequences: list[_Sequence | None] = [None] * count
        self.active = 0  # slots [0, active) are decoding
        self.done = 0  # slots [active, active + done) are finished, waiting to be scored
        self.hidden: torch.Tensor | None = None  # last hidden state of each active slot
        self.refill = max(1, count // 4)
        self.results: list[list[Sample | None]] = [[None] * r.n for r in requests]
        self._next = [0] * len(requests)  # each request's next sample to start
        self._waiting = [i for i, r in enumerate(requests) if r.n > 0]

    def run(self) -> list[list[Sample]]:
        while self._waiting or self.active or self.done:
            free = self.slots.count - self.active - self.done
            if self.done and (free + self.done >= self.refill or not self.active):
                self._score()
                free = self.slots.count - self.active
            if self._waiting and (free >= self.refill or not self.active):
                self._admit(free)
            if self.active:
                self._step()
        return [[s for s in samples if s is not None] for samples in self.results]

    def _admit(self, free: int) -> None:
        """Start waiting requests' samples in the free slots (all samples of a request together
        where they fit); their prompts run in shared prefix-tree passes."""
        chosen: list[tuple[int, int]] = []  # (request, samples to start)
        while self._waiting and free:
            index = self._waiting[0]
            left = self.requests[index].n - self._next[index]
            if left > free and chosen:
                break
            take = min(left, free)
            chosen.append((index, take))
            free -= take
            if take == left:
                self._waiting.pop(0)
        order = [index for index, _ in chosen]
        counts = dict(chosen)
        hidden: list[torch.Tensor] = []
        for indices, kv, sources, last in self.backend._prefills(
            [self.requests[i] for i in order], [self.ids[i] for i in order]
        ):
            for row, (position, source) in enumerate(zip(indices, sources, strict=True)):
                index = order[position]
                for _ in range(counts[index]):
                    slot = self.active
                    sample = self._next[index]
                    self._next[index] += 1
                    self.slots.put(slot, kv, source)
                    request = self.requests[index]
                    generator = None
                    if request.temperature > 0:
                        generator = torch.Generator().manual_seed(self.seeds[index] + sample)
                    self.sequences[slot] = _Sequence(
                        index, sample, generator, list(self.ids[index]), []
                    )
                    hidden.append(last[row])
                    self.active += 1
        stacked = torch.stack(hidden)
        self.hidden = stacked if self.hidden is None else torch.cat([self.hidden, stacked])

    def _step(self) -> None:
        """Choose each active sequence's next token; the finished leave the decoding rows; the
        rest run their token in one pass."""
        backend = self.backend
        logprobs = backend._logprobs(self.hidden)
        greedy = torch.argmax(logprobs, dim=-1).tolist()
        finished: list[int] = []
        for row in range(self.active):
            sequence = self.sequences[row]
            request = self.requests[sequence.owner]
            if request.max_new_tokens <= 0:
                finished.append(row)
                continue
            if request.temperature <= 0:
                token = greedy[row]
            else:
                token = backend._choose(logprobs[row], request, sequence.generator)
            if token in backend.eos_ids:
                finished.append(row)
                continue
            sequence.generated.append(token)
            if len(sequence.generated) >= request.max_new_tokens:
                finished.append(row)
            else:
                sequence.feed = token
        for row in reversed(finished):  # to the end of the decoding rows, then out of them
            last = self.active - 1
            self.slots.swap(row, last)
            self.sequences[row], self.sequences[last] = self.sequences[last], self.sequences[row]
            self.active -= 1
            self.done += 1
        if not self.active:
            self.hidden = None
            return
        feed = [[self.sequences[row].feed] for row in range(self.active)]
        for row in range(self.active):
            self.sequences[row].tokens.append(self.sequences[row].feed)
        backend.decode_steps += 1
        backend.decoded_rows += self.active
        self.hidden = backend._slot_pass(self.slots, range(self.active), feed)

    def _score(self) -> None:
        """Score the finished sequences together: ``text + rationale + score_suffix`` after each
        one's own cache (from where its tokens and the scored text's tokenisation part); their
        slots are free afterwards."""
        backend = self.backend
        rows = range(self.active, self.active + self.done)
        segments, texts, scored_texts = [], [], []
        for row in rows:
            sequence = self.sequences[row]
            request = self.requests[sequence.owner]
            text = backend.tokenizer.decode(sequence.generated, skip_special_tokens=True)
            scored_text = request.text + text + request.score_suffix
            full = backend.encode(scored_text)
            keep = min(common_prefix_length([full, sequence.tokens]), len(full) - 1)
            self.slots.lengths[row] = keep
            segments.append(full[keep:])
            texts.append(text)
            scored_texts.append(scored_text)
        last = backend._slot_pass(self.slots, rows, segments)
        answers = [
            backend.answer_ids(self.requests[self.sequences[row].owner].answers, scored)
            for row, scored in zip(rows, scored_texts, strict=True)
        ]
        values = backend._answer_logprobs(last, answers)
        for position, row in enumerate(rows):
            sequence = self.sequences[row]
            self.results[sequence.owner][sequence.sample] = Sample(
                rationale=texts[position],
                logprobs=values[position],
                prompt_tokens=len(self.ids[sequence.owner]) + len(segments[position]),
                generated_tokens=len(sequence.generated),
            )
            self.sequences[row] = None
        self.done = 0
