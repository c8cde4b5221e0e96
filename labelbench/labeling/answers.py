"""What answer log-probabilities mean: distributions, preferences and direct scores.

The tokenizer-level answer mapping is ``labelbench.prompting.answer_token_ids``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def softmax(logprobs: Sequence[float]) -> tuple[float, ...]:
    """Normalise log-probabilities over the answers only."""
    top = max(logprobs)
    weights = [math.exp(value - top) for value in logprobs]
    total = sum(weights)
    return tuple(weight / total for weight in weights)


def mean_distribution(
    distributions: Sequence[tuple[float, ...] | None],
) -> tuple[float, ...] | None:
    """Average of the scored distributions (self-consistency); None when none is scored."""
    scored = [dist for dist in distributions if dist is not None]
    if not scored:
        return None
    return tuple(sum(column) / len(scored) for column in zip(*scored, strict=True))


def preference_a(distribution: tuple[float, ...] | None, order: str) -> float | None:
    """P(response A preferred) from a two-answer distribution shown in ``order``."""
    if distribution is None:
        return None
    if len(distribution) != 2:
        raise ValueError(f"a preference needs two answers, got {len(distribution)}")
    return distribution[0] if order == "AB" else distribution[1]


def expected_score(distribution: tuple[float, ...] | None, answers: Sequence[str]) -> float | None:
    """Direct scoring: the expected numeric answer, rescaled from [min, max] to [-1, 1]."""
    if distribution is None:
        return None
    values = [float(answer) for answer in answers]
    low, high = min(values), max(values)
    if high == low:
        raise ValueError("direct scoring needs at least two different score values")
    mean = sum(p * v for p, v in zip(distribution, values, strict=True))
    return 2.0 * (mean - low) / (high - low) - 1.0
