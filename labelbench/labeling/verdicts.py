"""Reading a chat model's answer (``labelbench.labeling.chat_backend``): from the first
position's top log-probabilities (``answer_logprobs``: token texts matched to answers with
surrounding whitespace removed and case folded, ``normalise_token``), or from a reply's text
(``parse_verdict``), and how a hosted API is asked to answer alone (``answer_instruction``)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any


def normalise_token(text: str) -> str:
    """A token's text as matched against an answer: surrounding whitespace removed (the
    SentencePiece and byte-level space markers ``▁`` and ``Ġ`` count as whitespace), case
    folded."""
    return text.replace("▁", " ").replace("Ġ", " ").strip().casefold()


def answer_logprobs(
    top: Sequence[dict[str, Any]], answers: Sequence[str]
) -> tuple[float, ...] | None:
    """Each answer's log-probability at one position from its ``top_logprobs`` entries
    (``{"token": str, "logprob": float}``): the log of the summed probabilities of the tokens
    that read as the answer (``normalise_token``). None when an answer is not among them."""
    found: dict[str, list[float]] = {}
    for entry in top:
        token, value = entry.get("token"), entry.get("logprob")
        if isinstance(token, str) and isinstance(value, int | float) and math.isfinite(value):
            found.setdefault(normalise_token(token), []).append(float(value))
    values = []
    for answer in answers:
        matches = found.get(normalise_token(answer))
        if not matches:
            return None
        high = max(matches)
        values.append(high + math.log(sum(math.exp(v - high) for v in matches)))
    return tuple(values)


def _verdict_pattern(
    answers: Sequence[str], ending: str
) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(alone, line): an answer alone or bracketed (``1``, ``[1]``, ``[[1]]``, an optional final
    period), and the variant's ending line with its answer (``Preferred Summary=1``, the
    answer optionally bracketed), whitespace around the ending's last character allowed."""
    choice = "|".join(re.escape(a.strip()) for a in sorted(answers, key=len, reverse=True))
    answer = rf"(?:\[\[\s*(?P<a1>{choice})\s*\]\]|\[\s*(?P<a2>{choice})\s*\]|(?P<a3>{choice}))"
    alone = re.compile(rf"^\s*{answer}\s*\.?\s*$", re.IGNORECASE)
    head = ending.strip()
    label = re.escape(head[:-1]) + r"\s*" + re.escape(head[-1]) if head else ""
    line = re.compile(rf"^\s*\**\s*{label}\s*{answer}\s*\**\s*\.?\s*$", re.IGNORECASE)
    return alone, line


def parse_verdict(text: str, answers: Sequence[str], ending: str, *, rationale: bool) -> int | None:
    """The index in ``answers`` of the answer a reply gives, or None when it cannot be read.

    Without a rationale the whole reply must be the answer: alone, bracketed (``[1]``,
    ``[[1]]``) or as the variant's ending line (``Preferred Summary=1``). After a rationale the
    last non-empty line must be the ending line or the bracketed answer. Answers match with case
    folded; anything else (two answers, a sentence) is unparseable: never a guess."""
    alone, line = _verdict_pattern(answers, ending)
    lines = [part for part in text.strip().splitlines() if part.strip()]
    if not lines:
        return None
    if rationale:
        last = lines[-1]
        match = line.match(last) if ending.strip() else None
        if match is None:
            bracketed = alone.match(last)
            match = bracketed if bracketed and not bracketed.group("a3") else None
    else:
        whole = " ".join(lines)
        match = alone.match(whole) or (line.match(whole) if ending.strip() else None)
    if match is None:
        return None
    given = next(g for g in match.group("a1", "a2", "a3") if g is not None).casefold()
    folded = [a.strip().casefold() for a in answers]
    return folded.index(given) if given in folded else None


def answer_instruction(answers: Sequence[str], ending: str, *, rationale: bool) -> str:
    """What the user message ends with when the server cannot continue an assistant prefix:
    answer with the answer alone, or (after a rationale) end with the ending line."""
    options = (
        " or ".join(f'"{a}"' for a in answers)
        if len(answers) <= 3
        else ("one of " + ", ".join(answers))
    )
    head = ending.strip()
    if rationale:
        lines = " or ".join(f'"{head}{a}"' for a in answers[:3])
        more = ", ..." if len(answers) > 3 else ""
        return f"End your reply with one last line that gives your answer: {lines}{more}."
    question = head.rstrip("=:").strip()
    about = f' to "{question}"' if question else ""
    return f"Reply with the answer{about} alone, nothing else: {options}."
