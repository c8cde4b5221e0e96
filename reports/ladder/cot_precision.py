"""The 1.5B's chain of thought in float32 against the ladder's bfloat16 cells, on the same items.

    python reports/ladder/cot_precision.py reports/ladder reports/ladder/cot-float32

Reads both runs' results.parquet (nothing is relabelled). The ladder labelled every cell in
bfloat16; a greedy rationale is a chain of argmax choices, so rounding that moves a near tie once
can change the rest of the chain and its answer. This prints, for the labeler in both runs
(default ``qwen2.5-coder-1.5b``), on the TL;DR items both ran:

1. per precision and variant: alignment with its 95% cluster-bootstrap interval, same-slot rate,
   share preferring the longer summary, seconds per pair, n (``prompt_types.variant_table``);
2. per precision, chain of thought against 0-shot (``prompt_types.contrast_table``): does the
   ladder's finding hold when the chains are decoded in float32?
3. per variant, float32 against bfloat16: the paired difference of alignment, and the pairs
   whose decision (P(A) above or below 1/2, both orders averaged) differs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prompt_types import N_BOOT, _cells, _interval, contrast_table, variant_table

from labelbench.errors import script_main
from labelbench.metrics import (
    ClusterBootstrap,
    credit,
    human_label,
    paired_difference,
    seed_from,
)
from labelbench.rundir import read_results


def _labeler_cells(run_dir: Path, labeler: str, suffix: str) -> dict[tuple[str, str], pd.DataFrame]:
    """``labeler``'s cells in the run's ``tldr-prompts*`` data sets, named ``labeler + suffix``."""
    results = read_results(run_dir)
    names = sorted({str(n) for n in results["dataset"] if str(n).startswith("tldr-prompts")})
    cells = _cells(results, names)
    return {(name + suffix, v): cell for (name, v), cell in cells.items() if name == labeler}


def precision_table(
    low: dict[tuple[str, str], pd.DataFrame], high: dict[tuple[str, str], pd.DataFrame]
) -> str:
    lines = [
        "| variant | float32 - bfloat16 alignment [95% CI] | wins / losses | decisions differ "
        "| n |",
        "|---|---|---|---|---|",
    ]
    by_variant = {variant: cell for (_, variant), cell in low.items()}
    for (labeler, variant), one in high.items():
        other = by_variant.get(variant)
        if other is None:
            continue
        common = one.index.intersection(other.index)
        label = human_label(one.loc[common, "human_pref_a"].to_numpy(float))
        p_high = one.loc[common, "ai_pref_a"].to_numpy(float)
        p_low = other.loc[common, "ai_pref_a"].to_numpy(float)
        boot = ClusterBootstrap(
            one.loc[common, "group_id"].to_numpy(),
            n_boot=N_BOOT,
            seed=seed_from(labeler, variant, "float32 vs bfloat16"),
        )
        result = paired_difference(boot, credit(p_high, label), credit(p_low, label))
        both = ~np.isnan(p_high) & ~np.isnan(p_low)
        differ = int(np.sum(np.sign(p_high[both] - 0.5) != np.sign(p_low[both] - 0.5)))
        lines.append(
            f"| {variant} | {_interval(result['difference'])} "
            f"| {result['wins']} / {result['losses']} | {differ} of {int(both.sum())} "
            f"| {len(common)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ladder", type=Path, help="the ladder's run folder (bfloat16 cells)")
    parser.add_argument("float32_run", type=Path, help="a run of the same items in float32")
    parser.add_argument("--labeler", default="qwen2.5-coder-1.5b")
    args = parser.parse_args()
    high = _labeler_cells(args.float32_run, args.labeler, " (float32)")
    variants = {variant for _, variant in high}
    low = {
        key: cell
        for key, cell in _labeler_cells(args.ladder, args.labeler, " (bfloat16)").items()
        if key[1] in variants
    }
    if not high or not low:
        print(f"{args.labeler}: no TL;DR prompt-type cells in both runs", file=sys.stderr)
        raise SystemExit(2)
    items = {v: cell.index for (_, v), cell in high.items()}
    low = {key: cell.loc[cell.index.intersection(items[key[1]])] for key, cell in low.items()}
    cells = {**low, **high}
    print(variant_table(cells))
    print()
    print(contrast_table(cells))
    print()
    print(precision_table(low, high))


if __name__ == "__main__":
    script_main(main)
