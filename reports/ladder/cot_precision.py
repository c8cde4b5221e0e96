"""The 1.5B's chain of thought in float32 against the ladder's bfloat16 cells, on the same items.

    python reports/ladder/cot_precision.py reports/ladder reports/ladder/cot-float32

Each run's precision for the labeler is read from its config.yaml (``dtype``, else the model's
default precision); two runs at the same precision are refused (exit code 2).

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
from prompt_types import _cells, _interval, contrast_table, paired_cells, variant_table

from labelbench.config import parse_config
from labelbench.errors import InputError, script_main
from labelbench.metrics import seed_from
from labelbench.models.device import resolve_precision
from labelbench.rundir import CONFIG, read_results


def _labeler_cells(run_dir: Path, labeler: str) -> tuple[str, dict[tuple[str, str], pd.DataFrame]]:
    """(the run's precision for ``labeler``, its cells in the run's ``tldr-prompts*`` data sets
    named ``labeler (precision)``)."""
    path = run_dir / CONFIG
    if not path.is_file():
        raise InputError(path, "no such file (give the output_dir of a labelbench run)")
    config = parse_config(path.read_text(encoding="utf-8"), path)
    specs = [spec for spec in config.labelers if (spec.label or spec.name) == labeler]
    if not specs:
        raise InputError(path, f"no labeler {labeler!r} in this run", field="labelers")
    precision = resolve_precision(specs[0].name, specs[0].dtype)
    results = read_results(run_dir)
    names = sorted({str(n) for n in results["dataset"] if str(n).startswith("tldr-prompts")})
    cells = _cells(results, names)
    named = {(f"{name} ({precision})", v): c for (name, v), c in cells.items() if name == labeler}
    return precision, named


def precision_table(
    low: dict[tuple[str, str], pd.DataFrame],
    high: dict[tuple[str, str], pd.DataFrame],
    names: tuple[str, str] = ("bfloat16", "float32"),
) -> str:
    """Per variant of ``high``, its cell against ``low``'s on their common items (``names``:
    the two precisions, low first)."""
    lines = [
        f"| variant | {names[1]} - {names[0]} alignment [95% CI] | wins / losses "
        "| decisions differ | n |",
        "|---|---|---|---|---|",
    ]
    by_variant = {variant: cell for (_, variant), cell in low.items()}
    for (labeler, variant), one in high.items():
        other = by_variant.get(variant)
        if other is None:
            continue
        common = one.index.intersection(other.index)
        result = paired_cells(one, other, seed_from(labeler, variant, f"{names[1]} vs {names[0]}"))
        p_high = one.loc[common, "ai_pref_a"].to_numpy(float)
        p_low = other.loc[common, "ai_pref_a"].to_numpy(float)
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
    parser.add_argument("other", type=Path, help="a run of the same items at another precision")
    parser.add_argument("--labeler", default="qwen2.5-coder-1.5b")
    args = parser.parse_args()
    low_precision, low = _labeler_cells(args.ladder, args.labeler)
    high_precision, high = _labeler_cells(args.other, args.labeler)
    if low_precision == high_precision:
        raise InputError(
            args.other, f"labels {args.labeler} in {high_precision}, as {args.ladder} does"
        )
    variants = {variant for _, variant in high}
    low = {key: cell for key, cell in low.items() if key[1] in variants}
    if not high or not low:
        raise InputError(args.other, f"no TL;DR prompt-type cells of {args.labeler} in both runs")
    items = {v: cell.index for (_, v), cell in high.items()}
    # the common items, in each cell's own order (the bootstrap draws as prompt_types.py does)
    low = {key: cell[cell.index.isin(items[key[1]])] for key, cell in low.items()}
    cells = {**low, **high}
    print(variant_table(cells))
    print()
    print(contrast_table(cells))
    print()
    print(precision_table(low, high, (low_precision, high_precision)))


if __name__ == "__main__":
    script_main(main)
