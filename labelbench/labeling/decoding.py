"""Batched rationale decoding for ``TransformersBackend.rationales``: continuous batching over
one key/value cache slot per sequence (``labelbench.labeling.kv_cache.Slots``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

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
        backend: Any,  # the TransformersBackend whose passes it runs (not imported: a cycle)
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
        self.slots = Slots(backend._layers, count, capacity)
        self.sequences: list[DecodingSequence | None] = [None] * count
        self.active = 0  # slots [0, active) are decoding
        self.done = 0  # slots [active, active + done) are finished, waiting to be scored
        self.hidden: torch.Tensor | None = None  # last hidden state of each active slot
        self.refill = max(1, count // 4)
        self.results: list[list[Sample | None]] = [[None] * r.n for r in requests]
        self._next = [0] * len(requests)  # each request's next sample to start
        self._waiting = [i for i, r in enumerate(requests) if r.n > 0]

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
