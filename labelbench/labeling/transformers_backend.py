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

Rationales are decoded in one continuous batch (``labelbench.labeling.decoding.Decoder``): every
sample of every request is a sequence in a slot of a cache bounded by ``decode_tokens``
(``labelbench.labeling.kv_cache.Slots``); prompts run in the same prefix-tree passes and are
copied into free slots (a prefix several sequences share, kept once), each step decodes one token
of every active sequence, the finished leave, are scored together by appending ``score_suffix``
to their own caches, and waiting prompts take their slots. Each sample samples with its own
seeded generator.

The attention masks by token positions, so sliding windows (Gemma 3) are exact in every layout
this module runs (rationales included: their masks are built per layer type). A model left on
another attention gets transformers' masks by cache column when it scores, which padding
shifts: it scores prompts longer than its window with one plain pass each.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from typing import Any

import torch

from labelbench.errors import ModelError
from labelbench.labeling.attention import RowsLayout, Segment, TreeLayout, use_block_causal
from labelbench.labeling.backend import Sample, Scored
from labelbench.labeling.compiled import runs_graphs, scoring
from labelbench.labeling.decoding import Decoder
from labelbench.labeling.kv_cache import (
    PromptSource,
    Rows,
    common_prefix_length,
    length_chunks,
    new_cache,
)
from labelbench.labeling.output_head import (
    ANSWER_CONTEXT,
    DecodingHead,
    model_context_length,
    naive_answer_logprobs,
    output_layer,
    output_logprobs,
)
from labelbench.models.heap import kept_for, largest_activation
from labelbench.requests import RationaleRequest, ScoreRequest

__all__ = [
    "TransformersBackend",
    "common_prefix_length",
    "model_context_length",
    "naive_answer_logprobs",
    "output_layer",
    "output_logprobs",
]
"""Besides the backend, the names other modules and tests import from here (their homes are
``kv_cache`` and ``output_head``)."""


DECODE_CACHE_BYTES = 4 * 2**30
"""The rationale decoder's key/value cache when ``decode_tokens`` is not given: 4 GiB of keys
and values (``default_decode_tokens``)."""


def default_decode_tokens(
    config: Any, dtype: torch.dtype, cache_bytes: int = DECODE_CACHE_BYTES
) -> int:
    """The rationale decoder's token budget when ``decode_tokens`` is not given: the tokens whose
    keys and values fill ``cache_bytes`` (a labeler's ``decode_memory_gib``; default
    ``DECODE_CACHE_BYTES``), at least 4096. On a CPU more rows a decoding
    step make each rationale token cheaper (the weights are read once a step, and the attention
    and the output layer run on more rows at once) up to about 128 rows: one thread of the Intel
    Xeon with AMX of 2026-12-06, 850 cached tokens a row, took per row and step 53.6, 31.6, 24.5
    and 20.5 ms at 16, 32, 64 and 128 rows for Qwen2.5 1.5B in bfloat16 (before the decoding
    head), and 15.0, 9.6, 8.2, 7.6 and 7.7 ms at 16 to 256 rows for SmolLM2 135M. 4 GiB holds
    150,000 tokens of the 1.5B in bfloat16 (28.7 kB a token): 175 TL;DR chains of thought."""
    return max(4096, cache_bytes // kv_bytes_per_token(config, dtype))


def kv_bytes_per_token(config: Any, dtype: torch.dtype) -> int:
    """Bytes of keys and values one token holds in a ``Slots`` cache: layers x 2 x kv heads x
    head size x the element size of ``dtype`` (every layer keeps every column, sliding or not).
    ``config``: a decoder's text config (``num_hidden_layers``, ``num_attention_heads``, and
    ``num_key_value_heads``, ``head_dim`` where the model has them)."""
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    size = torch.empty((), dtype=dtype).element_size()
    return config.num_hidden_layers * 2 * kv_heads * head_dim * size


class TransformersBackend:
    """Scores and generates with a causal LM in this process.

    A model on SDPA is switched to this package's attention, which is plain SDPA for any other
    caller; ``causal_block`` is its query block size (128: 1.03-1.06x over 32 at 135M-0.5B in
    bfloat16, ``bench/attention_block.py``, ``docs/engine.md``).
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
        causal_block: int = 128,
        decode_tokens: int | None = None,
        decode_bytes: int | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self._identity = identity
        self.token_budget = token_budget
        self.max_rows = max_rows
        self.max_padding = max_padding
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.eos_ids = self._eos_ids()
        self.processed_tokens = 0  # real tokens run through the model (no padding)
        self.padded_tokens = 0  # positions run through the model, padding included
        self.decode_steps = 0  # batched decoding passes (one token per active sequence)
        self.decoded_rows = 0  # sequences summed over those passes
        self._roots: OrderedDict[tuple[bool, tuple[int, ...]], Rows] = OrderedDict()
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
        output = model.get_output_embeddings()
        low = None if self._dtype == torch.float32 else (output.weight, output.bias)
        self._decoding_head = DecodingHead(self._head, low, self._softcap)
        self.decode_tokens = decode_tokens or default_decode_tokens(
            config, self._dtype, DECODE_CACHE_BYTES if decode_bytes is None else decode_bytes
        )

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

        key = (answers, text[-ANSWER_CONTEXT:])
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
        self, rows: Rows | None, segments: Sequence[Sequence[int]]
    ) -> tuple[Rows, torch.Tensor]:
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
        cache = new_cache(self._layers) if rows is None else rows.cache
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
        with self._kept_heap():
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
        return Rows(cache, mask, cols, tokens), last

    def _kept_heap(self) -> Any:
        """For a scoring call or a rationale prompt pass on the CPU: ``heap.kept_for`` the pass's
        largest activation, [token_budget, MLP width]. Decoding steps run without it."""
        if self.device.type != "cpu":
            return nullcontext()
        config = self.model.config.get_text_config(decoder=True)
        return kept_for(largest_activation(config, self.token_budget, self._dtype.itemsize))

    def _logprobs(self, hidden: torch.Tensor) -> torch.Tensor:
        """Log-probabilities [rows, vocab] (float32) of the next token after ``hidden``."""
        return output_logprobs(hidden, self._head, self._softcap)

    def _answer_logprobs(
        self, hidden: torch.Tensor, answers: Sequence[Sequence[int]]
    ) -> list[tuple[float, ...]]:
        """Each row's answer-token log-probabilities after ``hidden`` [rows, dim]."""
        logprobs = self._logprobs(hidden)
        return [tuple(float(logprobs[row, a]) for a in ids) for row, ids in enumerate(answers)]

    def _root(self, tokens: tuple[int, ...]) -> Rows | None:
        """The key/value cache of a shared prefix, computed once. Roots computed by compiled
        graphs are kept apart from eager ones (``compiled.scoring``; the padded-rows path of
        rationale prompts runs eagerly)."""
        if not tokens:
            return None
        key = (runs_graphs(self.model), tokens)
        if key in self._roots:
            self._roots.move_to_end(key)
            return self._roots[key]
        root, _ = self._extend(None, [list(tokens)])
        self._roots[key] = root
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
    ) -> Iterator[tuple[list[int], Rows, list[list[int]]]]:
        """Yield (request indices, rows holding all but each request's tail, the tails)."""
        for root_tokens, nodes in self._prefix_tree(requests, ids):
            root_len = len(root_tokens)
            root = self._root(root_tokens)
            node_weights = [sum(rows_per[m] for m in node) for _, node in nodes]
            for chunk in length_chunks(
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
                for part in length_chunks(
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
        root: Rows | None,
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
        cache = new_cache(self._layers) if root is None else root.select([0]).cache
        with self._kept_heap():
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
    ) -> Iterator[tuple[list[int], Rows | None, list[tuple[list[int], list[list[int]]]]]]:
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
        # compiled layers run their graphs (labelbench.labeling.compiled); the heap is kept
        # across the call's passes
        with scoring(), self._kept_heap():
            for indices, last in self._score_passes(requests, ids):
                answers = [self.answer_ids(requests[i].answers, requests[i].text) for i in indices]
                for index, values in zip(
                    indices, self._answer_logprobs(last, answers), strict=True
                ):
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
        one scored after ``text + rationale + score_suffix``; see ``Decoder``."""
        ids = [self.encode(request.text) for request in requests]
        self._check_lengths(ids, [r.max_new_tokens for r in requests])
        return Decoder(self, requests, ids, seeds).run()

    def _prefills(
        self, requests: Sequence[RationaleRequest], ids: Sequence[list[int]]
    ) -> Iterator[
        tuple[list[int], list[tuple[torch.Tensor, torch.Tensor]], list[PromptSource], Any]
    ]:
        """Prompt passes for ``requests``: yields (request indices, each layer's (keys, values)
        [rows, kv heads, columns, head dim], per request where its prompt's columns lie, each
        request's last hidden state [requests, dim]). Packed prefix-tree passes where the model
        runs this module's attention (each shared prefix computed once, the root reused across
        calls), padded rows otherwise."""
        if self._own_attention:
            # compiled prompt passes; scoring() is not held across the yields (eager steps run)
            with scoring():
                batches = list(self._tree_batches(requests, ids))
            for indices, root, groups in batches:
                with scoring():
                    last, cache, columns = self._tree_pass(root, groups, keep_cache=True)
                kv = [(layer.keys, layer.values) for layer in cache.layers]
                yield indices, kv, [PromptSource(0, c) for c in columns], last
            return
        for indices, state, tails in self._leaf_batches(requests, ids, [1] * len(requests)):
            rows, last = self._extend(state, tails)
            kv = [(layer.keys, layer.values) for layer in rows.cache.layers]
            yield indices, kv, [PromptSource(r, c) for r, c in enumerate(rows.cols)], last

    @staticmethod
    def _choose(
        logprobs: torch.Tensor, request: RationaleRequest, generator: torch.Generator
    ) -> int:
        """A sampled request without top-k: a draw from the whole vocabulary's ``logprobs`` at
        the request's temperature (greedy and top-k requests choose through the
        ``DecodingHead``: ``Decoder._step``, ``_choose_among``)."""
        probs = torch.softmax(logprobs / request.temperature, dim=-1)
        return int(torch.multinomial(probs, 1, generator=generator))

    def _choose_among(
        self,
        ids: torch.Tensor,
        logits: torch.Tensor,
        request: RationaleRequest,
        generator: torch.Generator,
    ) -> int:
        """``_choose`` for a sampled request with top-k, from the ``DecodingHead``'s highest
        tokens ``ids`` and their float32 ``logits`` (highest first): the same top-k
        distribution, drawn over the whole vocabulary as ``_choose`` draws it."""
        chosen = ids[: request.top_k].cpu()
        probs = torch.zeros(self._head[0].shape[0])
        probs[chosen] = torch.softmax(logits[: request.top_k].cpu() / request.temperature, dim=-1)
        return int(torch.multinomial(probs, 1, generator=generator))
