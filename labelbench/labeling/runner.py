"""Label planned requests with a backend, through the cache, with accounting and progress."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

from labelbench.data.record import content_hash
from labelbench.labeling.answers import expected_score, mean_distribution, preference_a, softmax
from labelbench.labeling.backend import Backend
from labelbench.labeling.cache import LabelCache, request_key
from labelbench.requests import PlannedRequest, RationaleRequest, Request, ScoreRequest


@dataclass(frozen=True)
class SampleResult:
    """One rationale (self-consistency sample) and its answer distribution."""

    rationale: str
    logprobs: tuple[float, ...] | None
    distribution: tuple[float, ...] | None


@dataclass(frozen=True)
class LabelRow:
    """The label of one planned request: one order of one item under one variant."""

    item_id: str
    variant: str
    order: str
    labeler: str
    answers: tuple[str, ...]
    distribution: tuple[float, ...] | None  # over ``answers``; None = unscored
    logprobs: tuple[float, ...] | None  # raw answer log-probabilities (score requests)
    samples: tuple[SampleResult, ...]  # rationale requests: one per sample
    prompt_tokens: int
    generated_tokens: int
    seconds: float  # compute time (kept from the run that computed it when read from cache)
    cached: bool
    kind: str = "logprobs"
    """``logprobs``: read from the answer tokens' log-probabilities; ``verdict``: the answers
    read from the text of the judge's replies (hard for one reply, verdict shares for several)."""
    replies: tuple[str, ...] = ()
    """Verdict judges (score requests): each reply's raw text, kept for the item view."""
    verdicts: tuple[int | None, ...] = ()
    """Verdict judges (score requests): each reply's answer index (None: unparseable)."""
    unparsed: int = 0
    """Verdict judges: replies (or rationales) whose verdict the parser could not read."""
    requests: int = 0
    """HTTP requests the label took (0: computed in this process)."""

    @property
    def scored(self) -> bool:
        return self.distribution is not None


@dataclass(frozen=True)
class Accounting:
    """Cost of one labeler on one variant."""

    labeler: str
    variant: str
    pairs: int
    requests: int
    cached_requests: int
    prompt_tokens: int
    generated_tokens: int
    seconds: float
    pairs_per_second: float | None
    http_requests: int = 0
    """HTTP requests sent to a server for these labels (0 for labels computed in process)."""
    unscored: int = 0
    """Labels (one order of one item) left unscored."""


@dataclass(frozen=True)
class Preference:
    """P(A preferred) for one item: averaged over the scored orders, and per order."""

    item_id: str
    variant: str
    labeler: str
    p_a: float | None
    p_a_ab: float | None
    p_a_ba: float | None
    logodds_ab: float | None = None
    """log P(answer A) - log P(answer B) in the A-first order: the log-odds of A (None:
    unscored or not run). From the answer tokens' log-probabilities, exact where P(A) rounds
    to 0 or 1; for a chain of thought, the logit of the samples' mean distribution."""
    logodds_ba: float | None = None
    """The log-odds of A in the B-first order (A shown second)."""

    @property
    def scored(self) -> bool:
        return self.p_a is not None


@dataclass(frozen=True)
class LabelResult:
    rows: list[LabelRow]
    accounting: list[Accounting]
    wall_seconds: float

    def records(self) -> list[dict[str, Any]]:
        """Rows as JSON-ready dicts, in the order of the planned requests."""
        return [asdict(row) for row in self.rows]


def request_seed(request: Request) -> int:
    """The sampling seed of a request's first sample, from its content."""
    digest = content_hash(request.text, repr(request), length=15)
    return int(digest, 16)


def _sample_count(request: Request) -> int:
    return request.n if isinstance(request, RationaleRequest) else 1


def _units(planned: Sequence[PlannedRequest], unit_items: int) -> list[list[int]]:
    """Indices of planned requests, grouped by item (all its orders together), chunked."""
    groups: dict[tuple[str, str], list[int]] = {}
    for index, item in enumerate(planned):
        groups.setdefault((item.variant, item.item_id), []).append(index)
    ordered = list(groups.values())
    return [
        [index for group in ordered[start : start + unit_items] for index in group]
        for start in range(0, len(ordered), unit_items)
    ]


@dataclass(frozen=True)
class CachedSample:
    """One computed sample as the cache stores it: answer log-probabilities (None: unscored),
    the rationale (None for a score request), token counts and its share of compute seconds;
    for a verdict judge the verdicts read from its replies (``verdicts``, an answer index or None
    for an unparseable reply) and, for a score request, the replies' raw text; the HTTP requests
    it took (0: computed in this process)."""

    logprobs: tuple[float, ...] | None
    rationale: str | None
    prompt_tokens: int
    generated_tokens: int
    seconds: float
    verdicts: tuple[int | None, ...] | None = None
    replies: tuple[str, ...] = ()
    requests: int = 0

    def to_json(self) -> dict[str, Any]:
        value = asdict(self)
        value["logprobs"] = None if self.logprobs is None else list(self.logprobs)
        value["verdicts"] = None if self.verdicts is None else list(self.verdicts)
        value["replies"] = list(self.replies)
        return value

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> CachedSample:
        raw = value["logprobs"]
        verdicts = value.get("verdicts")
        return cls(
            logprobs=None if raw is None else tuple(float(x) for x in raw),
            rationale=value.get("rationale"),
            prompt_tokens=int(value["prompt_tokens"]),
            generated_tokens=int(value["generated_tokens"]),
            seconds=float(value["seconds"]),
            verdicts=None if verdicts is None else tuple(verdicts),
            replies=tuple(value.get("replies") or ()),
            requests=int(value.get("requests") or 0),
        )


def _compute(backend: Backend, requests: dict[tuple[str, ...], Request]) -> dict[str, CachedSample]:
    """Run the backend on requests (keyed by their sample keys); returns a sample per key."""
    values: dict[str, CachedSample] = {}
    scores = [(keys, r) for keys, r in requests.items() if isinstance(r, ScoreRequest)]
    chains = [(keys, r) for keys, r in requests.items() if isinstance(r, RationaleRequest)]
    if scores:
        started = time.perf_counter()
        outputs = backend.score([r for _, r in scores])
        batch = [
            (
                keys[0],
                CachedSample(
                    logprobs=out.logprobs,
                    rationale=None,
                    prompt_tokens=out.prompt_tokens,
                    generated_tokens=getattr(out, "generated_tokens", 0),
                    seconds=0.0,
                    verdicts=getattr(out, "verdicts", None),
                    replies=tuple(getattr(out, "replies", ())),
                    requests=getattr(out, "requests", 0),
                ),
            )
            for (keys, _), out in zip(scores, outputs, strict=True)
        ]
        values.update(_with_seconds(batch, time.perf_counter() - started))
    if chains:
        started = time.perf_counter()
        outputs_n = backend.rationales([r for _, r in chains], [request_seed(r) for _, r in chains])
        batch = [
            (
                key,
                CachedSample(
                    logprobs=sample.logprobs,
                    rationale=sample.rationale,
                    prompt_tokens=sample.prompt_tokens,
                    generated_tokens=sample.generated_tokens,
                    seconds=0.0,
                    verdicts=(sample.verdict,) if getattr(sample, "verdict_judge", False) else None,
                    requests=getattr(sample, "requests", 0),
                ),
            )
            for (keys, _), samples in zip(chains, outputs_n, strict=True)
            for key, sample in zip(keys, samples, strict=True)
        ]
        values.update(_with_seconds(batch, time.perf_counter() - started))
    return values


def _with_seconds(batch: list[tuple[str, CachedSample]], seconds: float) -> dict[str, CachedSample]:
    """Share a batch's wall time among its samples in proportion to the tokens each used."""
    weights = [value.prompt_tokens + value.generated_tokens + 1 for _, value in batch]
    total = sum(weights)
    return {
        key: replace(
            value,
            logprobs=None if value.logprobs is None else tuple(float(x) for x in value.logprobs),
            seconds=seconds * weight / total,
        )
        for (key, value), weight in zip(batch, weights, strict=True)
    }


def verdict_distribution(verdicts: Sequence[int | None], answers: int) -> tuple[float, ...] | None:
    """A verdict judge's distribution over ``answers`` answers: the share of the parsed replies
    giving each (one reply: a hard label); None when no reply could be parsed."""
    parsed = [v for v in verdicts if v is not None and 0 <= v < answers]
    if not parsed:
        return None
    return tuple(parsed.count(index) / len(parsed) for index in range(answers))


def _row(item: PlannedRequest, labeler: str, values: list[CachedSample], cached: bool) -> LabelRow:
    request = item.request
    samples: tuple[SampleResult, ...] = ()
    verdict = any(v.verdicts is not None for v in values)
    unparsed = sum(v.verdicts.count(None) for v in values if v.verdicts is not None)
    replies: tuple[str, ...] = ()
    verdicts: tuple[int | None, ...] = ()
    if isinstance(request, RationaleRequest):
        samples = tuple(
            SampleResult(
                rationale=v.rationale or "",
                logprobs=v.logprobs,
                distribution=(
                    verdict_distribution(v.verdicts, len(request.answers))
                    if v.verdicts is not None
                    else None
                    if v.logprobs is None
                    else softmax(v.logprobs)
                ),
            )
            for v in values
        )
        distribution = mean_distribution([s.distribution for s in samples])
        logprobs = None
    elif verdict:
        logprobs = None
        distribution = verdict_distribution(values[0].verdicts or (), len(request.answers))
        replies = values[0].replies
        verdicts = tuple(values[0].verdicts or ())
    else:
        logprobs = values[0].logprobs
        distribution = None if logprobs is None else softmax(logprobs)
    return LabelRow(
        item_id=item.item_id,
        variant=item.variant,
        order=item.order,
        labeler=labeler,
        answers=tuple(request.answers),
        distribution=distribution,
        logprobs=logprobs,
        samples=samples,
        prompt_tokens=sum(v.prompt_tokens for v in values),
        generated_tokens=sum(v.generated_tokens for v in values),
        seconds=sum(v.seconds for v in values),
        cached=cached,
        kind="verdict" if verdict else "logprobs",
        replies=replies,
        verdicts=verdicts,
        unparsed=unparsed,
        requests=sum(v.requests for v in values),
    )


@contextmanager
def _progress(total: int, description: str, enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("pairs"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[rate]}"),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total, rate="")
        yield lambda advance, rate: bar.update(task, advance=advance, rate=rate)


RATIONALE_UNIT_ITEMS = 64
"""Items per stored unit of work when rationales are generated (both orders and every sample of
each item in one backend call)."""


def label(
    planned: Sequence[PlannedRequest],
    backend: Backend,
    *,
    cache: LabelCache | None = None,
    progress: bool = True,
    unit_items: int | None = None,
    description: str = "labeling",
) -> LabelResult:
    """Label every planned request; cached samples are read, missing ones computed and stored.

    Work is done in units of ``unit_items`` items (all orders of an item in one unit), each
    stored in one transaction, so an interrupted run resumes where it stopped. None: 16, or
    ``RATIONALE_UNIT_ITEMS`` when any request generates a rationale (a backend decodes a unit's
    rationales in one batch, so small units would leave it half empty).
    """
    if unit_items is None:
        chains = any(isinstance(p.request, RationaleRequest) for p in planned)
        unit_items = RATIONALE_UNIT_ITEMS if chains else 16
    labeler = backend.identity
    keys = [
        tuple(request_key(labeler, p.request, s) for s in range(_sample_count(p.request)))
        for p in planned
    ]
    values: dict[str, CachedSample] = {}
    fresh: set[str] = set()
    units = _units(planned, unit_items)
    started = time.perf_counter()
    computed_pairs, computed_seconds, tokens = 0, 0.0, 0
    with _progress(len({(p.variant, p.item_id) for p in planned}), description, progress) as tick:
        for unit in units:
            unit_pairs = len({(planned[i].variant, planned[i].item_id) for i in unit})
            unit_keys = [k for index in unit for k in keys[index]]
            stored = cache.get_many(unit_keys) if cache is not None else {}
            found = {key: CachedSample.from_json(value) for key, value in stored.items()}
            missing = {
                keys[i]: planned[i].request for i in unit if any(k not in found for k in keys[i])
            }
            if missing:
                unit_started = time.perf_counter()
                computed = _compute(backend, missing)
                if cache is not None:
                    cache.put_many({key: value.to_json() for key, value in computed.items()})
                found.update(computed)
                fresh.update(computed)
                computed_pairs += unit_pairs
                computed_seconds += time.perf_counter() - unit_started
                tokens += sum(v.prompt_tokens + v.generated_tokens for v in computed.values())
            values.update(found)
            if tick is not None:
                rate = (
                    f"{computed_pairs / computed_seconds:.2f} pairs/s, {tokens} tokens"
                    if computed_seconds
                    else ""
                )
                tick(unit_pairs, rate)
    rows = [
        _row(
            item,
            labeler,
            [values[k] for k in item_keys],
            cached=not any(k in fresh for k in item_keys),
        )
        for item, item_keys in zip(planned, keys, strict=True)
    ]
    return LabelResult(rows, accounting(rows), time.perf_counter() - started)


def accounting(rows: Sequence[LabelRow]) -> list[Accounting]:
    """Tokens, seconds and pairs per second for each labeler x variant."""
    groups: dict[tuple[str, str], list[LabelRow]] = {}
    for row in rows:
        groups.setdefault((row.labeler, row.variant), []).append(row)
    result = []
    for (labeler, variant), members in groups.items():
        pairs = len({row.item_id for row in members})
        seconds = sum(row.seconds for row in members)
        result.append(
            Accounting(
                labeler=labeler,
                variant=variant,
                pairs=pairs,
                requests=len(members),
                cached_requests=sum(row.cached for row in members),
                prompt_tokens=sum(row.prompt_tokens for row in members),
                generated_tokens=sum(row.generated_tokens for row in members),
                seconds=seconds,
                pairs_per_second=pairs / seconds if seconds > 0 else None,
                http_requests=sum(row.requests for row in members),
                unscored=sum(not row.scored for row in members),
            )
        )
    return result


def logodds_a(row: LabelRow) -> float | None:
    """The log-odds of A of one order's label (None: unscored): from the two answer tokens'
    log-probabilities when the row has them (score requests, every backend), else the logit of
    its distribution (rationales: the samples' mean), clipped to +-30."""
    if row.distribution is None or len(row.answers) != 2:
        return None
    if row.logprobs is not None and len(row.logprobs) == 2:
        first = row.logprobs[0] - row.logprobs[1]
    else:
        low = 1e-13
        p = min(max(row.distribution[0], low), 1 - low)
        first = math.log(p) - math.log1p(-p)
    first = max(-30.0, min(30.0, first))
    return first if row.order == "AB" else -first


def preferences(rows: Sequence[LabelRow]) -> list[Preference]:
    """Per item and variant: P(A) averaged over the scored orders present, and per order, with
    each order's log-odds of A (``logodds_a``)."""
    groups: dict[tuple[str, str, str], dict[str, LabelRow]] = {}
    for row in rows:
        groups.setdefault((row.labeler, row.variant, row.item_id), {})[row.order] = row
    result = []
    for (labeler, variant, item_id), orders in groups.items():
        p = {order: preference_a(row.distribution, order) for order, row in orders.items()}
        scored = [value for value in p.values() if value is not None]
        result.append(
            Preference(
                item_id=item_id,
                variant=variant,
                labeler=labeler,
                p_a=sum(scored) / len(scored) if scored else None,
                p_a_ab=p.get("AB"),
                p_a_ba=p.get("BA"),
                logodds_ab=logodds_a(orders["AB"]) if "AB" in orders else None,
                logodds_ba=logodds_a(orders["BA"]) if "BA" in orders else None,
            )
        )
    return result


def direct_scores(rows: Sequence[LabelRow]) -> list[float | None]:
    """Direct RLAIF: each row's expected score rescaled to [-1, 1] (None when unscored)."""
    return [expected_score(row.distribution, row.answers) for row in rows]
