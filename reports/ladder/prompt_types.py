"""Prompt types compared on the same items, per labeler size: the table of reports/ladder/README.md.

    python reports/ladder/prompt_types.py reports/ladder [--dataset tldr-prompts ...]

Reads results.parquet (nothing is relabelled) and prints two Markdown tables for the data sets
named (default: every data set whose name starts with ``tldr-prompts``: the same 200 TL;DR
comparisons, split into data sets where a cell ran on fewer items or at some sizes only), their
cells pooled by labeler and variant (a cell in several data sets: the one with most items):

1. per labeler and variant: alignment (accuracy against the human majority, ties credited 1/2,
   ``labelbench.metrics.credit``) with its 95% cluster-bootstrap interval, the same-slot rate
   (``metrics.position_bias``), the share of pairs where the labeler prefers the longer summary,
   the labels' compute seconds per pair (from the cache's recorded seconds), and n;
2. per labeler, paired differences of alignment between prompt types on their common items
   (``metrics.paired_difference``: the mean difference of credits with a cluster-bootstrap
   interval over the comparisons' posts, and McNemar's exact p), for the contrasts the RLAIF
   paper (Lee et al. 2023, Table 2 and section 4.3) drew conclusions on: detailed vs base
   preamble, chain of thought vs 0-shot (base and detailed), 2-shot vs 0-shot, and
   self-consistency (4 sampled rationales) vs one greedy rationale.

The bootstrap uses 2,000 resamples seeded from the cell names (``metrics.seed_from``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from labelbench.errors import InputError, script_main
from labelbench.metrics import (
    ClusterBootstrap,
    credit,
    human_label,
    mean_estimate,
    paired_difference,
    position_bias,
    seed_from,
)
from labelbench.rundir import read_results

N_BOOT = 2000
FAMILY = "summarization/"
CONTRASTS = (
    ("detailed-0shot", "base-0shot", "detailed preamble (0-shot)"),
    ("base-0shot-cot", "base-0shot", "chain of thought (base)"),
    ("detailed-0shot-cot", "detailed-0shot", "chain of thought (detailed)"),
    ("base-2shot", "base-0shot", "2-shot (base)"),
    ("detailed-0shot-cot-sc4-t0.7", "detailed-0shot-cot", "self-consistency n=4 vs 1 rationale"),
)
SIZES = ("smollm2-135m", "gemma3-270m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")


def _interval(estimate: object) -> str:
    value, low, high = (getattr(estimate, name) for name in ("value", "low", "high"))
    if not np.isfinite(value):
        return "n/a"
    if not np.isfinite(low):
        return f"{value:+.3f}"
    return f"{value:+.3f} [{low:+.3f}, {high:+.3f}]"


def _plain(estimate: object) -> str:
    value, low, high = (getattr(estimate, name) for name in ("value", "low", "high"))
    return f"{value:.3f} [{low:.3f}, {high:.3f}]" if np.isfinite(low) else f"{value:.3f}"


def _cells(results: pd.DataFrame, datasets: list[str]) -> dict[tuple[str, str], pd.DataFrame]:
    """Each (labeler, variant)'s cell among ``datasets``: where it ran in several (base 0-shot
    on the first 100 and on all 200 items), the one with the most items (the samples are
    prefixes of one content-hashed order, so the smaller is a subset of the larger)."""
    rows = results[results["dataset"].isin(datasets)]
    cells: dict[tuple[str, str], pd.DataFrame] = {}
    for (_, labeler, variant), cell in rows.groupby(["dataset", "labeler", "variant"], sort=False):
        key = (str(labeler), str(variant).removeprefix(FAMILY))
        if key not in cells or len(cell) > len(cells[key]):
            cells[key] = cell.set_index("item_id")
    return cells


def _order(labelers: list[str]) -> list[str]:
    return sorted(labelers, key=lambda name: (SIZES.index(name) if name in SIZES else 99, name))


def variant_table(cells: dict[tuple[str, str], pd.DataFrame]) -> str:
    lines = [
        "| labeler | variant | alignment | same slot | prefers longer | s/pair | n |",
        "|---|---|---|---|---|---|---|",
    ]
    for labeler in _order(sorted({key[0] for key in cells})):
        for (name, variant), cell in cells.items():
            if name != labeler:
                continue
            label = human_label(cell["human_pref_a"].to_numpy(float))
            p = cell["ai_pref_a"].to_numpy(float)
            boot = ClusterBootstrap(
                cell["group_id"].to_numpy(), n_boot=N_BOOT, seed=seed_from(labeler, variant)
            )
            marks = credit(p, label)
            accuracy = mean_estimate(boot, np.nan_to_num(marks), ~np.isnan(marks))
            slot = position_bias(
                boot, cell["ai_pref_a_ab"].to_numpy(float), cell["ai_pref_a_ba"].to_numpy(float)
            )
            longer = np.sign(cell["len_a"] - cell["len_b"]).to_numpy(float)
            usable = (longer != 0) & ~np.isnan(p) & ~np.isclose(p, 0.5)
            prefers_longer = np.mean((p[usable] > 0.5) == (longer[usable] > 0))
            seconds = cell["seconds"].sum() / len(cell)
            lines.append(
                f"| {labeler} | {variant} | {_plain(accuracy)} "
                f"| {slot['same_slot'].value:.0%} | {prefers_longer:.0%} | {seconds:.2f} "
                f"| {int((~np.isnan(marks)).sum())} |"
            )
    return "\n".join(lines)


def paired_cells(one: pd.DataFrame, other: pd.DataFrame, seed: int) -> dict:
    """``metrics.paired_difference`` of two cells' alignment credits on their common items
    (indexed by item id), with a cluster bootstrap over ``group_id`` of ``N_BOOT`` resamples."""
    common = one.index.intersection(other.index)
    label = human_label(one.loc[common, "human_pref_a"].to_numpy(float))
    boot = ClusterBootstrap(one.loc[common, "group_id"].to_numpy(), n_boot=N_BOOT, seed=seed)
    return paired_difference(
        boot,
        credit(one.loc[common, "ai_pref_a"].to_numpy(float), label),
        credit(other.loc[common, "ai_pref_a"].to_numpy(float), label),
    )


def contrast_table(cells: dict[tuple[str, str], pd.DataFrame]) -> str:
    lines = [
        "| labeler | contrast | difference in alignment [95% CI] | wins / losses | McNemar p |",
        "|---|---|---|---|---|",
    ]
    for labeler in _order(sorted({key[0] for key in cells})):
        for variant, reference, title in CONTRASTS:
            one, other = cells.get((labeler, variant)), cells.get((labeler, reference))
            if one is None or other is None:
                continue
            result = paired_cells(one, other, seed_from(labeler, variant, "vs", reference))
            lines.append(
                f"| {labeler} | {title}: {variant} - {reference} "
                f"| {_interval(result['difference'])} | {result['wins']} / {result['losses']} "
                f"| {result['p_value']:.3f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--dataset", action="append", default=None)
    args = parser.parse_args()
    results = read_results(args.run_dir)
    names = args.dataset or sorted(
        {str(name) for name in results["dataset"] if str(name).startswith("tldr-prompts")}
    )
    cells = _cells(results, names)
    if not cells:
        wanted = ", ".join(args.dataset) if args.dataset else "named tldr-prompts* (the ladder's)"
        raise InputError(args.run_dir, f"no cells in data sets {wanted}", field="dataset")
    print(variant_table(cells))
    print()
    print(contrast_table(cells))


if __name__ == "__main__":
    script_main(main)
