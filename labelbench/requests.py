"""What a labeler must compute, as data: the contract between the prompt engine and the backends.

Every request's text is ``shared + context + tail``. ``shared`` (preamble, exemplars, any chat
header) is identical for every item of a variant; ``shared + context`` is identical for both orders
of one item. Backends may cache the computation of those prefixes and reuse it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Order = Literal["AB", "BA"]


@dataclass(frozen=True)
class ScoreRequest:
    """Score the answer tokens at the position right after ``text``."""

    shared: str
    context: str
    tail: str
    answers: tuple[str, ...] = ("1", "2")

    @property
    def text(self) -> str:
        return self.shared + self.context + self.tail


@dataclass(frozen=True)
class RationaleRequest:
    """Generate ``n`` rationales after ``text``; then score ``text + rationale + score_suffix``."""

    shared: str
    context: str
    tail: str
    score_suffix: str
    answers: tuple[str, ...] = ("1", "2")
    n: int = 1
    temperature: float = 0.0
    top_k: int | None = None
    max_new_tokens: int = 128

    @property
    def text(self) -> str:
        return self.shared + self.context + self.tail


Request = ScoreRequest | RationaleRequest


@dataclass(frozen=True)
class PlannedRequest:
    """One request for one order of one comparison under one variant.

    In order ``"AB"`` answer 1 means response A; in ``"BA"`` answer 1 means response B.
    """

    item_id: str
    variant: str
    order: Order
    request: Request
