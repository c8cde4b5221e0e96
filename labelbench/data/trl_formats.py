"""TRL's data formats: the preference format (``prompt``/``chosen``/``rejected``, or an implicit
prompt shared by two conversations) as a fixed column map, and the prompt-only format."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labelbench.data.columns import (
    ColumnMap,
)
from labelbench.data.conversations import (
    ROLES,
    messages,
    prompt_context,
)
from labelbench.data.fields import field, source_meta, text
from labelbench.data.record import PromptItem, content_hash
from labelbench.data.sources import Place


def parse_trl_prompt(record: Mapping[str, Any], place: Place) -> PromptItem:
    """TRL's prompt-only format (the input of GRPO, RLOO and online DPO): ``prompt`` as text
    (task ``instruction``, the text as the policy's prompt) or as chat messages (task
    ``dialogue``: their transcript, ending with the Assistant turn the policy fills); ``id`` when
    the row has one, else a hash of the prompt. Other columns (a GRPO answer key) are ignored."""
    turns = messages(field(record, place, "prompt"), place, "prompt")
    if turns is None:
        context, task = text(record, place, "prompt"), "instruction"
    elif ROLES[turns[-1][0]] == "Assistant":
        raise place.error(
            "the last message is the assistant's; a prompt ends with the message the policy "
            "answers",
            field=f"prompt[{len(turns) - 1}].role",
        )
    else:
        context, task = prompt_context(turns), "dialogue"
    given = record.get("id")
    item_id = str(given) if isinstance(given, str | int) and str(given) else content_hash(context)
    return PromptItem(
        id=item_id,
        group_id=item_id,
        task=task,
        context=context,
        meta={**source_meta(place), "dataset": "trl-prompts"},
    )


PAIR_KEYS = {"chosen", "rejected", "completion", "label"}
"""Keys that make a record with a ``prompt`` more than a prompt (preferences, SFT, KTO rows)."""


TRL_PREFERENCE = ColumnMap(context="prompt", chosen="chosen", rejected="rejected")


TRL_IMPLICIT_PROMPT = ColumnMap(chosen="chosen", rejected="rejected")


def trl_map(record: Mapping[str, Any]) -> ColumnMap:
    """TRL's preference format, with an explicit ``prompt`` or an implicit one (the shared start
    of two conversations)."""
    return TRL_PREFERENCE if "prompt" in record else TRL_IMPLICIT_PROMPT
