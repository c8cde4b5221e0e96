"""The canonical pairwise comparison and the prompt-only item."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TaskKind = Literal["summarization", "dialogue", "instruction"]


def content_hash(*parts: str, length: int = 16) -> str:
    """A stable hex digest of text parts; used for ids, A/B order and seeds."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()[:length]


class Annotation(BaseModel):
    """One annotator's judgement: the probability that A is preferred (1, 0, or 0.5 for a tie)."""

    model_config = ConfigDict(frozen=True)

    pref_a: float = Field(ge=0.0, le=1.0)
    annotator: str | None = None
    confidence: int | None = None


class Comparison(BaseModel):
    """A context, two responses A and B, and what humans preferred."""

    model_config = ConfigDict(frozen=True)

    id: str
    group_id: str
    task: TaskKind
    context: str
    response_a: str
    response_b: str
    annotations: tuple[Annotation, ...] = ()
    order: Literal["source", "content_hash"] = "source"
    meta: dict[str, Any] = Field(default_factory=dict)

    @property
    def human_pref_a(self) -> float | None:
        """Mean over annotators of P(A preferred); None when unlabelled."""
        if not self.annotations:
            return None
        return sum(a.pref_a for a in self.annotations) / len(self.annotations)

    @property
    def is_tie(self) -> bool:
        pref = self.human_pref_a
        return pref is not None and abs(pref - 0.5) < 1e-9

    @property
    def pair_key(self) -> str:
        """Identifies the same pair of responses to the same context, in either order."""
        first, second = sorted((self.response_a, self.response_b))
        return content_hash(self.context, first, second)


class PromptItem(BaseModel):
    """A prompt for policy training or evaluation, with an optional reference response."""

    model_config = ConfigDict(frozen=True)

    id: str
    group_id: str
    task: TaskKind
    context: str
    reference: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
