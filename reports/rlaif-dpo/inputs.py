"""Inputs of the DPO run (reports/rlaif-dpo/run.sh), from committed labels and the shared data.

    python reports/rlaif-dpo/inputs.py DATA_DIR OUT

Writes into OUT (a run folder, never committed):

- ``ai-labels/``: the 400 TL;DR comparisons the size ladder labelled (``batch13.json``, the
  ladder's seeded sample: ``rlaif label --data batch13.json --limit 400 --seed 0`` picks the same
  items), as the preference dataset ``rlaif label --winner reports/ladder/winner.json`` writes,
  its soft labels made by winner.json's aggregation from the ladder's committed per-order labels
  (``reports/ladder/results.parquet``) instead of relabelling them (about 80 minutes of the
  1.5B on this machine). ``labelbench.labeling.labeler.soft_labels`` is the function both use,
  and ``tests/test_labeler_handoff.py`` checks that ``rlaif label`` gives these labels.
- ``judge-comparisons.jsonl``: the lines of ``batch13.json`` whose post is not among those 400
  pairs' posts: the judge's training data, disjoint from every training pair and prompt.

Prints the counts and the labels' mean confidence and log-loss against the human labels.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from labelbench.errors import script_main
from labelbench.labeling.labeler import load_winner
from labelbench.rundir import WINNER, read_results
from rlaif.data import DataOptions, load_comparisons
from rlaif.preferences import ai_preference_dataset, label_quality

ROOT = Path(__file__).resolve().parents[2]
PAIRS = 400


def main(data_dir: Path, out: Path) -> None:
    comparisons_file = data_dir / "openai_tldr_comparisons" / "batch13.json"
    winner = load_winner(ROOT / "reports/ladder" / WINNER)
    items = load_comparisons(comparisons_file, DataOptions(), limit=PAIRS, seed=0)
    results = read_results(ROOT / "reports/ladder")
    rows = results[
        (results.dataset == "tldr")
        & (results.labeler == winner.labeler.display)
        & (results.variant == winner.variant)
    ].set_index("item_id")
    missing = [item.id for item in items if item.id not in rows.index]
    if missing:
        raise SystemExit(f"{len(missing)} items have no committed label, e.g. {missing[0]}")
    rows = rows.loc[[item.id for item in items]]
    assert winner.aggregation is not None, "winner.json has no aggregation"
    soft = winner.aggregation.soft_labels(
        rows["ai_pref_a_ab"],
        rows["ai_pref_a_ba"],
        rows["ai_logodds_a_ab"],
        rows["ai_logodds_a_ba"],
        [len(item.response_a) for item in items],
        [len(item.response_b) for item in items],
    )
    p_a = [None if np.isnan(p) else float(p) for p in soft]
    dataset = ai_preference_dataset(items, p_a)
    source = f"{winner.labeler.display} (committed labels: reports/ladder/results.parquet)"
    dataset = (
        dataset.add_column("labeler", [source] * len(dataset))
        .add_column("variant", [winner.variant] * len(dataset))
        .add_column("aggregation", [winner.aggregation.method] * len(dataset))
    )
    out.mkdir(parents=True, exist_ok=True)
    dataset.save_to_disk(str(out / "ai-labels"))
    print(f"{len(dataset)} AI-labelled pairs, {winner.aggregation.method} -> {out / 'ai-labels'}")
    print(label_quality(dataset).line())

    posts = {item.group_id for item in items}
    kept = 0
    with (
        comparisons_file.open(encoding="utf-8") as source_file,
        (out / "judge-comparisons.jsonl").open("w", encoding="utf-8") as judge,
    ):
        for line in source_file:
            if line.strip() and json.loads(line)["info"]["id"] not in posts:
                judge.write(line)
                kept += 1
    print(f"{kept} comparisons on posts other than those {len(posts)} -> judge-comparisons.jsonl")


if __name__ == "__main__":
    script_main(lambda: main(Path(sys.argv[1]), Path(sys.argv[2])))
