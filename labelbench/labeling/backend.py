"""The small protocol every labeling backend speaks, and what it returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from labelbench.requests import RationaleRequest, ScoreRequest


@dataclass(frozen=True)
class Scored:
    """Log-probabilities of the answer tokens after a prompt (None: they could not be scored),
    or, from a verdict judge, the answers read from its replies."""

    logprobs: tuple[float, ...] | None
    prompt_tokens: int
    generated_tokens: int = 0
    verdicts: tuple[int | None, ...] | None = None
    """Verdict judges: per reply, the index of the answer its text gives (None: unparseable);
    None for a log-probability label."""
    replies: tuple[str, ...] = ()
    """Verdict judges: each reply's raw text (a refusal's text for a refused reply)."""
    requests: int = 0
    """HTTP requests this label took (0: computed in this process)."""


@dataclass(frozen=True)
class Sample:
    """One rationale and the answer log-probabilities after ``rationale + score_suffix``."""

    rationale: str
    logprobs: tuple[float, ...] | None
    prompt_tokens: int
    generated_tokens: int
    verdict: int | None = None
    """Verdict judges: the index of the answer the rationale's ending line gives (None:
    unparseable); unused when ``verdict_judge`` is False."""
    verdict_judge: bool = False
    """Whether the sample is a verdict read from text rather than log-probabilities."""
    requests: int = 0
    """HTTP requests this sample took (0: computed in this process)."""


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
