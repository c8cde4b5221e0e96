"""Batched rationale decoding for ``TransformersBackend.rationales``: continuous batching over
one key/value cache slot per sequence (``labelbench.labeling.kv_cache.Slots``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from labelbench.labeling.attention import RowsLayout
from labelbench.labeling.backend import Sample
from labelbench.labeling.kv_cache import Slots, common_prefix_length
from labelbench.requests import RationaleRequest


@dataclass
class DecodingSequence:
    """One rationale being decoded: its request and sample, its sampler, its tokens."""

    owner: int
    sample: int
    generator: torch.Generator | None
    tokens: list[int]  # whose keys/values are in its slot
    generated: list[int]
    feed: int | None = None  # the token to run next


class Decoder:
    """Batched rationale decoding for ``TransformersBackend.rationales``, continuous batching
    over a ``Slots`` cache.

    Every sample of every request is a sequence. Prompts are run in prefix-tree passes (a
    variant's shared text computed once and kept across calls, each item's context once for both
    orders and all samples) and their keys/values copied into free slots. Where sequences share
    a long prefix (``shared_prefixes``: an item's context for both orders, a prompt for its
    samples) and the model runs this package's attention on a CPU, the prefix is kept once and
    each step reads it once for all of them (``attention._shared_attention``); a slot holds
    the rest. Each step decodes one token for every active slot at once; a sequence that ends
    (EOS or ``max_new_tokens``) leaves the decoding rows at once, and when a quarter of the
    slots are finished or free, the finished ones are scored together (``text + rationale +
    score_suffix``, appended to their own caches) and waiting prompts join. Slots and prefixes
    are bounded by ``decode_tokens``: the slot count is that over the longest part of a
    sequence a slot may hold (prompt past its prefix, ``max_new_tokens`` and the score suffix)
    plus its share of its prefix, and a prefix waits for room before it is taken in. Memory is
    bounded by tokens, not by a sequence count.

    Sample ``j`` of request ``i`` samples with its own ``torch.Generator`` seeded ``seeds[i] +
    j``, advanced only by its own tokens, so what it draws does not depend on which sequences
    share its batch; each row attends to its own columns only (the pad columns of other rows
    are masked), so a row's result equals decoding it alone up to float rounding.
    """

    def __init__(
        self,
        backend: Any,  # the TransformersBackend whose passes it runs (not imported: a cycle)
        requests: Sequence[RationaleRequest],
        ids: Sequence[list[int]],
        seeds: Sequence[int],
    ) -> None:
        self.backend, self.requests, self.ids, self.seeds = backend, requests, ids, seeds
        counts = [r.n for r in requests]
        self.groups: list[int | None] = [None] * len(ids)
        self.shared = [0] * len(ids)
        if shares(backend):
            self.groups, self.shared = shared_prefixes(ids, counts)
        suffix = max((len(backend.encode(r.score_suffix)) for r in requests), default=0)
        own = zip(ids, self.shared, requests, strict=True)
        capacity = max((len(i) - s + r.max_new_tokens + suffix + 8 for i, s, r in own), default=1)
        # a slot also answers for its share of its group's prefix, so slots and prefixes
        # together stay within the budget
        rows: dict[int, int] = {}
        for group, n in zip(self.groups, counts, strict=True):
            if group is not None:
                rows[group] = rows.get(group, 0) + n
        share = max((-(-self.shared[g] // rows[g]) for g in rows), default=0)
        total = sum(counts)
        count = max(1, min(total, backend.decode_tokens // (capacity + share)))
        self.slots = Slots(backend._layers, count, capacity)
        self.room = backend.decode_tokens - count * capacity  # for prefixes, in tokens
        self.sequences: list[DecodingSequence | None] = [None] * count
        self.active = 0  # slots [0, active) are decoding
        self.done = 0  # slots [active, active + done) are finished, waiting to be scored
        self.hidden: torch.Tensor | None = None  # last hidden state of each active slot
        self.refill = max(1, count // 4)
        self.results: list[list[Sample | None]] = [[None] * r.n for r in requests]
        self._next = [0] * len(requests)  # each request's next sample to start
        # a group's requests start one after another, so its prefix is held for a short while
        first = {g: i for i, g in reversed(list(enumerate(self.groups))) if g is not None}
        waiting = [i for i, r in enumerate(requests) if r.n > 0]
        self._waiting = sorted(waiting, key=lambda i: (first.get(self.groups[i], i), i))

    def run(self) -> list[list[Sample]]:
        """Decode and score every sample; per request, its samples in order."""
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
        held = self.slots.prefix_tokens()
        while self._waiting and free:
            index = self._waiting[0]
            group = self.groups[index]
            new = group is not None and group not in self.slots.prefixes
            if new and all(self.groups[i] != group for i, _ in chosen):
                if held + self.shared[index] > self.room and (chosen or self.active):
                    break  # its prefix would pass the budget: after some sequences end
                held += self.shared[index]
            left = self.requests[index].n - self._next[index]
            if left > free and chosen:
                break
            take = min(left, free)
            chosen.append((index, take))
            free -= take
            if take == left:
                self._waiting.pop(0)
        if not chosen:
            return
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
                    self.slots.put(slot, kv, source, self.groups[index], self.shared[index])
                    request = self.requests[index]
                    generator = None
                    if request.temperature > 0:
                        generator = torch.Generator().manual_seed(self.seeds[index] + sample)
                    self.sequences[slot] = DecodingSequence(
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
        owners = [self.requests[self.sequences[row].owner] for row in range(self.active)]
        need = max((r.top_k or 1 for r in owners if r.temperature > 0), default=1)
        ids, logits = backend._decoding_head.top(self.hidden, need)
        greedy = ids[:, 0].tolist()
        finished: list[int] = []
        for row in range(self.active):
            sequence = self.sequences[row]
            request = owners[row]
            if request.max_new_tokens <= 0:
                finished.append(row)
                continue
            if request.temperature <= 0:
                token = greedy[row]
            elif request.top_k:
                token = backend._choose_among(ids[row], logits[row], request, sequence.generator)
            else:  # the whole vocabulary's distribution
                logprobs = backend._logprobs(self.hidden[row : row + 1])[0]
                token = backend._choose(logprobs, request, sequence.generator)
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
        self.hidden = self._pass(range(self.active), feed)

    def _pass(self, rows: range, segments: Sequence[Sequence[int]]) -> Any:
        """Run ``segments`` (one per slot in ``rows``, each written after that slot's last
        position) through the backend's model over the slots' caches; returns each row's last
        hidden state [rows, dim] (meaningless for an empty segment)."""
        backend, slots = self.backend, self.slots
        count = len(rows)
        width = max(1, max(len(s) for s in segments))
        ids = torch.full((count, width), backend.pad_id, dtype=torch.long)
        for row, segment in enumerate(segments):
            ids[row, : len(segment)] = torch.tensor(segment, dtype=torch.long)
        starts = torch.tensor([slots.lengths[r] for r in rows], dtype=torch.long)
        offsets = torch.tensor([slots.offsets[r] for r in rows], dtype=torch.long)
        ends = starts + torch.tensor([len(s) for s in segments], dtype=torch.long)
        columns = int((starts - offsets + width).max())
        slots.reserve(columns)
        # a pad query takes its row's last position: it sees that row's keys (with a sliding
        # window, a later position could see none, and its NaN would reach the cache)
        last_position = (ends - 1).clamp(min=0)[:, None]
        position_ids = torch.minimum(starts[:, None] + torch.arange(width)[None, :], last_position)
        key_positions = offsets[:, None] + torch.arange(columns)[None, :]
        key_positions = key_positions.masked_fill(key_positions >= ends[:, None], -1)
        layout = RowsLayout(
            key_positions.to(backend.device),
            position_ids.to(backend.device),
            backend.causal_block,
            slots.shared(rows, backend.device),
        )
        full = layout.bias(None, backend._dtype)
        if backend._window is not None:  # per layer type (models with several take a dict)
            mask: Any = {
                "full_attention": full,
                "sliding_attention": layout.bias(backend._window, backend._dtype),
            }
        else:
            mask = full
        attention: dict[str, Any] = {"attention_mask": mask}
        if backend._own_attention:
            attention["labelbench_rows"] = layout
        slots.begin(rows, (starts - offsets).to(backend.device), columns)
        out = backend.model.base_model(
            input_ids=ids.to(backend.device),
            position_ids=layout.query_positions,
            use_cache=True,
            **{backend._cache_arg: slots.cache},
            **attention,
        )
        for row, end in zip(rows, ends.tolist(), strict=True):
            slots.lengths[row] = end
        real = int(sum(len(s) for s in segments))
        backend.processed_tokens += real
        backend.padded_tokens += count * width
        last_index = torch.tensor([max(len(s) - 1, 0) for s in segments], device=backend.device)
        return out.last_hidden_state[torch.arange(count, device=backend.device), last_index]

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
            if keep <= self.slots.offsets[row]:  # re-tokenised inside the shared prefix
                self.slots.unshare(row)
            self.slots.lengths[row] = keep
            segments.append(full[keep:])
            texts.append(text)
            scored_texts.append(scored_text)
        last = self._pass(rows, segments)
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
            self.slots.release(row)
        self.done = 0


MIN_SHARED = 64
"""Tokens: a shorter common prefix is not kept apart (its own attention call costs more than
reading it once per row saves)."""


def shares(backend: Any) -> bool:
    """Whether ``backend``'s decoding keeps shared prefixes once: this module's attention on a
    CPU (the fused kernel with its log-sum-exp), full attention only (no sliding window, no
    logit soft-capping)."""
    config = backend.model.config.get_text_config(decoder=True)
    return (
        backend._own_attention
        and backend._window is None
        and torch.device(backend.device).type == "cpu"
        and not getattr(config, "attn_logit_softcapping", None)
    )


def shared_prefixes(
    ids: Sequence[Sequence[int]], counts: Sequence[int]
) -> tuple[list[int | None], list[int]]:
    """Per request (token ids ``ids``, ``counts`` samples each): its group (None: none) and the
    tokens it shares with the group's other sequences, kept once for all of them
    (``Slots``). Requests are taken in token order, so an item's orders lie side by side; a
    request joins the group before it where that saves more key/value reads a decoding step
    than it costs (rows x shared length), and a prefix always leaves a request one token of its
    own. A request alone shares its prompt among its samples."""
    groups: list[int | None] = [None] * len(ids)
    shared = [0] * len(ids)
    members: list[int] = []
    length = rows = 0

    def close() -> None:
        if rows > 1 and length >= MIN_SHARED:
            for index in members:
                groups[index], shared[index] = members[0], length

    for index in sorted(range(len(ids)), key=lambda i: list(ids[i])):
        alone = len(ids[index]) - 1
        if members:
            common = min(common_prefix_length([ids[members[0]], ids[index]]), length, alone)
            apart = (rows - 1) * length + (counts[index] - 1) * alone
            if (rows + counts[index] - 1) * common >= apart and common >= MIN_SHARED:
                members.append(index)
                length, rows = common, rows + counts[index]
                continue
            close()
        members, length, rows = [index], alone, counts[index]
    close()
    return groups, shared
