"""Parsers from the original release formats to the canonical records, and format detection.

This module gathers the public names of the format modules, one per family of formats:

- ``fields``: reading a record's values (dotted paths, text, integers) with located errors;
- ``conversations``: HH-RLHF transcripts and chat message lists;
- ``columns``: your own table under a column map (``--map``) and label maps;
- ``releases``: OpenAI TL;DR, HH-RLHF, PandaLM, LLMBar and MT-Bench human judgments;
- ``trl_formats``: TRL's preference and prompt-only formats;
- ``detect``: the formats by name and format detection.
"""

from labelbench.data.columns import (
    NEEDS_CONTEXT,
    PRESETS,
    TARGET_PREF,
    ColumnMap,
    LabelKind,
    LabelTarget,
    annotations,
    label_key,
    label_pref,
    label_target,
    parse_column_map,
    parse_columns,
)
from labelbench.data.conversations import (
    ASSISTANT_TURN,
    HUMAN_TURN,
    ROLES,
    Message,
    diverges_early,
    messages,
    prompt_context,
    reply_text,
    split_conversations,
    split_transcripts,
    transcript,
)
from labelbench.data.detect import (
    ALL_FORMATS,
    COMPARISON_FORMATS,
    CONTEXT_NAMES,
    LABEL_NAMES,
    LABEL_VALUES,
    PROMPT_FORMATS,
    RESPONSE_PAIRS,
    WORD_LABELS,
    Parser,
    detect_format,
    suggest_map,
)
from labelbench.data.fields import (
    field,
    integer,
    ordered,
    source_meta,
    text,
)
from labelbench.data.releases import (
    MT_BENCH_WINNER,
    PANDALM_PREF,
    parse_hh_rlhf,
    parse_llmbar,
    parse_mt_bench,
    parse_openai_comparison,
    parse_pandalm,
    parse_tldr_post,
)
from labelbench.data.trl_formats import (
    PAIR_KEYS,
    TRL_IMPLICIT_PROMPT,
    TRL_PREFERENCE,
    parse_trl_prompt,
    trl_map,
)

__all__ = [
    "ALL_FORMATS",
    "ASSISTANT_TURN",
    "COMPARISON_FORMATS",
    "CONTEXT_NAMES",
    "HUMAN_TURN",
    "LABEL_NAMES",
    "LABEL_VALUES",
    "MT_BENCH_WINNER",
    "NEEDS_CONTEXT",
    "PAIR_KEYS",
    "PANDALM_PREF",
    "PRESETS",
    "PROMPT_FORMATS",
    "RESPONSE_PAIRS",
    "ROLES",
    "TARGET_PREF",
    "TRL_IMPLICIT_PROMPT",
    "TRL_PREFERENCE",
    "WORD_LABELS",
    "ColumnMap",
    "LabelKind",
    "LabelTarget",
    "Message",
    "Parser",
    "annotations",
    "detect_format",
    "diverges_early",
    "field",
    "integer",
    "label_key",
    "label_pref",
    "label_target",
    "messages",
    "ordered",
    "parse_column_map",
    "parse_columns",
    "parse_hh_rlhf",
    "parse_llmbar",
    "parse_mt_bench",
    "parse_openai_comparison",
    "parse_pandalm",
    "parse_tldr_post",
    "parse_trl_prompt",
    "prompt_context",
    "reply_text",
    "source_meta",
    "split_conversations",
    "split_transcripts",
    "suggest_map",
    "text",
    "transcript",
    "trl_map",
]
