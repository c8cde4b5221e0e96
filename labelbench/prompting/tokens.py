"""How a rendered prompt meets a tokenizer or a chat API: the chat frame around a user message
(the tokenizer's chat template, or message marks for a chat-completions API), the prompt's token
ids as a labeler scores it, and the one token each answer adds after the prompt's ending."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from labelbench.errors import InputError, ModelError

_SENTINEL = "\ue000labelbench-message\ue000"


@dataclass(frozen=True)
class ChatFrame:
    """What the chat template puts before and after a single user message (empty for raw text)."""

    prefix: str = ""
    suffix: str = ""


MESSAGE_MARK = "\ue001"
"""Marks message boundaries in a request rendered for a chat-completions API (``message_frame``);
a private-use character, so it never meets text from a data set."""
ROLES = ("system", "user", "assistant")


def message_frame(system: str | None = None) -> ChatFrame:
    """The frame of a request sent as chat messages (``backend: chat``): the server applies its
    own chat template, so the request text only marks where each message starts
    (``MESSAGE_MARK`` role ``MESSAGE_MARK``). The ending (or the rationale cue) is the start of
    the assistant's message; ``chat_messages`` turns the text back into messages."""
    mark = MESSAGE_MARK
    opening = f"{mark}system{mark}{system}" if system is not None else ""
    return ChatFrame(prefix=f"{opening}{mark}user{mark}", suffix=f"{mark}assistant{mark}")


def chat_messages(text: str) -> list[dict[str, str]]:
    """The messages of a request text rendered with ``message_frame``, in order: ``[{"role",
    "content"}]``; the last is the assistant's opening (possibly empty). Raises ValueError for a
    text without message marks (rendered for another backend)."""
    parts = text.split(MESSAGE_MARK)
    if len(parts) < 3 or parts[0] or len(parts) % 2 == 0:
        raise ValueError("not a request rendered as chat messages (message_frame)")
    messages = []
    for role, content in zip(parts[1::2], parts[2::2], strict=True):
        if role not in ROLES:
            raise ValueError(f"unknown message role {role!r}")
        messages.append({"role": role, "content": content})
    return messages


SYSTEM_FOLD = "\n\n"
"""What separates a system message folded into the first user turn from that turn's text."""


def refuses_system(tokenizer: Any) -> bool:
    """Whether the tokenizer's chat template refuses a system message (Gemma 2's raises
    "System role not supported"); ``chat_frame`` then folds it into the first user turn."""
    if not getattr(tokenizer, "chat_template", None):
        return False
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    try:
        tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception:  # jinja2's TemplateError from raise_exception, or the template's own
        return True
    return False


def chat_frame(tokenizer: Any, system: str | None = None) -> ChatFrame:
    """Split the tokenizer's chat template, applied to one user message (after a ``system``
    message when given; else the template's default), around that message. A template that
    refuses a system message (``refuses_system``) gets it at the start of the user turn,
    followed by ``SYSTEM_FOLD`` (the labeler's identity then says ``system=folded``); ModelError
    in one line when the template fails otherwise."""
    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    if not getattr(tokenizer, "chat_template", None):
        raise ModelError(f"{name} has no chat template; render raw text instead (no --chat)")
    messages = [{"role": "user", "content": _SENTINEL}]
    if system is not None:
        if refuses_system(tokenizer):
            messages = [{"role": "user", "content": system + SYSTEM_FOLD + _SENTINEL}]
        else:
            messages.insert(0, {"role": "system", "content": system})
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception as error:
        detail = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ModelError(
            f"{name}: its chat template fails on one user message ({type(error).__name__}: "
            f"{detail}); render raw text instead (chat: false)"
        ) from None
    if isinstance(text, str) and system and system not in text:
        raise ModelError(f"{name}: its chat template does not show the system message")
    if not isinstance(text, str) or text.count(_SENTINEL) != 1:
        raise ModelError(f"{name}: its chat template does not show the user message verbatim")
    prefix, suffix = text.split(_SENTINEL)
    return ChatFrame(prefix, suffix)


def text_token_ids(tokenizer: Any, text: str) -> list[int]:
    """The token ids of ``text`` alone, without special tokens."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _special_prefix(tokenizer: Any) -> list[int]:
    """The special tokens the tokenizer puts before a text (BOS, or none); those it appends
    after the text (a post-processor's EOS) are never part of a prompt."""
    probe = "a"
    bare = text_token_ids(tokenizer, probe)
    full = list(tokenizer(probe, add_special_tokens=True)["input_ids"])
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            return full[:start]
    return []


def prompt_token_ids(tokenizer: Any, text: str) -> list[int]:
    """The token ids of a prompt as a labeler scores or continues it.

    The tokenizer's leading special tokens (BOS) come first unless the text already starts with
    them (a chat template that writes its BOS); trailing ones (an EOS appended by the
    post-processor, as ``add_eos_token=True`` does) are never added, so the last id is the last
    token of the prompt itself and the next-token distribution is the one right after it.
    """
    ids = text_token_ids(tokenizer, text)
    prefix = _special_prefix(tokenizer)
    if prefix and ids[: len(prefix)] == prefix:
        return ids
    return prefix + ids


def answer_token_ids(answers: Sequence[str], tokenizer: Any, after: str = "") -> list[int]:
    """The one token each answer adds right after ``after`` (the prompt's ending), chosen in
    context: ``after + answer`` is encoded and the token that follows the ending's tokens is
    taken, so a vocabulary holding both ``▁1`` and ``1`` yields the form the tokenizer really
    produces there. Without ``after`` the answer must encode alone as one token.

    Raises InputError (field ``answers``) unless every answer adds exactly one token after the
    ending, leaving the ending's tokens unchanged, and the tokens are distinct.
    """
    name = getattr(tokenizer, "name_or_path", "") or "the tokenizer"
    base = text_token_ids(tokenizer, after) if after else []
    ids: list[int] = []
    for answer in answers:
        full = text_token_ids(tokenizer, after + answer)
        if full[: len(base)] != base or len(full) != len(base) + 1:
            where = f" after {after[-24:]!r}" if after else ""
            raise InputError(
                name, f"answer {answer!r} is not a single token{where}", field="answers"
            )
        ids.append(full[-1])
    if len(set(ids)) != len(ids):
        raise InputError(name, f"answers {list(answers)} map to the same token", field="answers")
    return ids
