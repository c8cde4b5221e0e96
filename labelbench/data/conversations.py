"""Conversations as the formats give them: HH-RLHF style transcripts (``\n\nHuman: ...
\n\nAssistant: ...``) and chat message lists, split into the shared context and the two final
replies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from labelbench.data.sources import Place

ASSISTANT_TURN = "\n\nAssistant:"


HUMAN_TURN = "\n\nHuman:"


def split_transcripts(chosen: str, rejected: str, place: Place) -> tuple[str, str, str]:
    """Split two transcripts into the shared context (up to the last shared Assistant turn's
    marker) and the two final replies. A reply may be empty: HH-RLHF keeps empty replies."""
    shared = 0
    for left, right in zip(chosen, rejected, strict=False):
        if left != right:
            break
        shared += 1
    if chosen == rejected:
        raise place.error("chosen and rejected are identical", field="rejected")
    cut = chosen.rfind(ASSISTANT_TURN, 0, shared)
    if cut < 0 or cut + len(ASSISTANT_TURN) > shared:
        raise place.error("chosen and rejected share no Assistant turn", field="chosen")
    cut += len(ASSISTANT_TURN)
    return chosen[:cut], chosen[cut:].strip(), rejected[cut:].strip()


def diverges_early(*replies: str) -> bool:
    """True when a "reply" split off two transcripts still holds a later Human turn: the two
    transcripts differ before their final reply, so the responses carry more than one turn."""
    return any(HUMAN_TURN in reply for reply in replies)


ROLES = {"user": "Human", "human": "Human", "assistant": "Assistant", "system": "System"}
"""Chat roles and how transcripts (HH-RLHF style) name them."""


Message = tuple[str, str]


def messages(value: Any, place: Place, name: str) -> list[Message] | None:
    """A chat message list (``[{"role": ..., "content": ...}, ...]``) as (role, text) pairs;
    None when the value is not a list (plain text)."""
    if not isinstance(value, list | tuple):
        return None
    out: list[Message] = []
    for index, message in enumerate(value):
        where = f"{name}[{index}]"
        if not isinstance(message, Mapping):
            raise place.error(f"expected a chat message, found {type(message).__name__}", where)
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise place.error(f"role {role!r} is not one of {', '.join(ROLES)}", f"{where}.role")
        content = message.get("content")
        if not isinstance(content, str):
            found = type(content).__name__
            raise place.error(f"expected text, found {found}", f"{where}.content")
        out.append((str(role), content))
    if not out:
        raise place.error("is an empty message list", field=name)
    return out


def transcript(turns: Sequence[Message]) -> str:
    """Messages as an HH-RLHF style transcript: ``\\n\\nHuman: ...\\n\\nAssistant: ...``."""
    return "".join(f"\n\n{ROLES[role]}: {content.strip()}" for role, content in turns)


def prompt_context(turns: Sequence[Message]) -> str:
    """The transcript of a prompt, ending with the Assistant turn the responses fill."""
    return transcript(turns) + ASSISTANT_TURN


def reply_text(turns: Sequence[Message], place: Place, name: str) -> str:
    """A response given as messages: the first (assistant) message's text, then any later turns
    as transcript (then the pair diverges early)."""
    if ROLES[turns[0][0]] != "Assistant":
        raise place.error(
            f"a response must start with an assistant message, not {turns[0][0]!r}",
            field=f"{name}[0].role",
        )
    return (turns[0][1].strip() + transcript(turns[1:])).strip()


def split_conversations(
    first: Sequence[Message], second: Sequence[Message], place: Place, names: tuple[str, str]
) -> tuple[str, str, str]:
    """Two full conversations → (shared context up to the last shared assistant turn, first
    reply, second reply). Replies hold later turns when the conversations diverge early."""
    shared = 0
    for left, right in zip(first, second, strict=False):
        if left != right:
            break
        shared += 1
    if list(first) == list(second):
        raise place.error("the two conversations are identical", field=names[1])
    cut = next(
        (
            k
            for k in range(min(shared, len(first), len(second)), -1, -1)
            if k < len(first)
            and k < len(second)
            and ROLES[first[k][0]] == ROLES[second[k][0]] == "Assistant"
        ),
        None,
    )
    if cut is None or cut == 0:
        raise place.error(
            "the two conversations share no prompt before an assistant turn", field=names[0]
        )
    context = prompt_context(first[:cut])
    return (
        context,
        reply_text(first[cut:], place, names[0]),
        reply_text(second[cut:], place, names[1]),
    )
