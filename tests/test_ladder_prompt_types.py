"""reports/ladder/prompt_types.py: the paired differences between prompt types are the mean
difference of credits on the items both cells have, with McNemar's counts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

SCRIPT = Path(__file__).resolve().parents[1] / "reports" / "ladder" / "prompt_types.py"


def _module():
    spec = importlib.util.spec_from_file_location("prompt_types", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cell(variant: str, p: list[float], human: list[float], ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "dataset": "tldr-prompts",
            "labeler": "tiny",
            "variant": f"summarization/{variant}",
            "item_id": ids,
            "group_id": [f"post{i // 2}" for i in range(len(ids))],
            "human_pref_a": human,
            "ai_pref_a": p,
            "ai_pref_a_ab": p,
            "ai_pref_a_ba": p,
            "len_a": [10.0] * len(ids),
            "len_b": [20.0] * len(ids),
            "seconds": [1.0] * len(ids),
        }
    )


def test_contrast_is_the_paired_credit_difference() -> None:
    module = _module()
    ids = [f"i{k}" for k in range(8)]
    human = [1, 1, 0, 0, 1, 0, 1, 0]
    zero = [0.9, 0.2, 0.1, 0.6, 0.7, 0.3, 0.5, 0.4]  # credits 1 0 1 0 1 1 .5 1
    cot = [0.8, 0.8, 0.3, 0.3, 0.2, 0.6, 0.9, 0.4]  # credits 1 1 1 1 0 0 1 1
    frame = pd.concat(
        [
            _cell("base-0shot", zero, human, ids),
            _cell("base-0shot-cot", cot, human, [*ids[:7], "other"]),  # one item not shared
        ]
    )
    cells = module._cells(frame, ["tldr-prompts"])
    table = module.contrast_table(cells)
    row = next(line for line in table.splitlines() if "chain of thought (base)" in line)
    # shared items i0..i6: cot credits 1 1 1 1 0 0 1, 0-shot 1 0 1 0 1 1 .5
    expected = np.mean([0, 1, 0, 1, -1, -1, 0.5])
    assert f"{expected:+.3f}" in row
    assert "| 2 / 2 |" in row  # wins: i1, i3; losses: i4, i5 (the AI tie counts neither)
    # a cell also run on fewer of the same items, in another data set: the larger one is used
    subset = _cell("base-0shot", zero[:4], human[:4], ids[:4]).assign(dataset="tldr-prompts-2shot")
    pooled = module._cells(pd.concat([frame, subset]), ["tldr-prompts", "tldr-prompts-2shot"])
    assert len(pooled[("tiny", "base-0shot")]) == 8
    variants = module.variant_table(cells)
    assert "| tiny | base-0shot | 0.688" in variants  # (1+0+1+0+1+1+.5+1) / 8 = 0.6875
