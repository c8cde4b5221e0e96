"""Hand-built planned requests shared by the labeling tests (no tests here)."""

from __future__ import annotations

import random

from labelbench.requests import PlannedRequest, RationaleRequest, ScoreRequest

WORDS = [
    *("the", "post", "says", "user", "wants", "advice", "about", "a", "friend", "and"),
    *("job", "summary", "short", "much", "longer"),
]


def _words(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def make_planned(
    items: int,
    *,
    seed: int = 0,
    variant: str = "v0",
    shared: str = "Which summary is better?\n",
    rationale: dict | None = None,
    repeat_context_every: int = 0,
) -> list[PlannedRequest]:
    """Both orders of ``items`` made-up comparisons; ``rationale`` makes RationaleRequests."""
    rng = random.Random(seed)
    planned = []
    context = ""
    for index in range(items):
        if not repeat_context_every or index % repeat_context_every == 0:
            context = f"Post: {_words(rng, 3, 40)}\n"
        a, b = _words(rng, 2, 12), _words(rng, 2, 12)
        for order, (first, second) in (("AB", (a, b)), ("BA", (b, a))):
            tail = f"Summary 1: {first}\nSummary 2: {second}\nPreferred Summary="
            if rationale is None:
                request = ScoreRequest(shared, context, tail)
            else:
                request = RationaleRequest(
                    shared, context, tail + "\nRationale:", "\nPreferred Summary=", **rationale
                )
            planned.append(PlannedRequest(f"item{index}", variant, order, request))
    return planned
