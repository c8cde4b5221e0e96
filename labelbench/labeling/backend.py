"""The small protocol every labeling backend speaks, and what it returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from labelbench.requests import RationaleRequest, ScoreRequest


@dataclass(frozen=True)
class Scored:
    """Log-probabilities of the answer tokens after a prompt (None: they could not be scored)."""

    logprobs: tuple[float, ...] | None
    prompt_tokens: int


@dataclass(frozen=True)
class Sample:
    """One rationale and the answer log-probabilities after ``rationale + score_suffix``."""

    rationale: str
    logprobs: tuple[float, ...] | None
    prompt_tokens: int
    generated_tokens: int


class Backend(Protocol):
    """Scores answer tokens and generates rationales; results in the order of the inputs."""

    @property
    def identity(self) -> str:
        """Model identity (id plus weights hash or revision): part of every cache key."""
        ...

    def score(self, requests: Sequence[ScoreRequest]) -> list[Scored]: ...

    def rationales(
        self, requests: Sequence[RationaleRequest], seeds: Sequence[int]
    ) -> list[list[Sample]]:
        """``requests[i].n`` samples each, drawn reproducibly from seed ``seeds[i]``."""
        ...
