"""The soft labels winner.json hands to training, recomputed from the committed labels.

    python reports/ladder/soft_labels.py reports/ladder

Applies winner.json's ``aggregation`` (``labelbench.aggregate.Aggregation.soft_labels``, the
function ``rlaif label --winner`` and ``labelbench serve`` use) to the winner's rows of
results.parquet, and prints for each data set it ran on: pairs, mean confidence (mean of
max(P, 1 - P)), agreement with the human majority and log-loss against it, beside the same
figures of prob-mean (the labels before this aggregation existed). The aggregation's parameters
were fitted on these same labels, so these are in-sample figures; summary.json's
``aggregations`` hold the cross-fitted ones. Nothing is relabelled.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from labelbench.aggregate import Aggregation, log_loss_terms
from labelbench.errors import script_main
from labelbench.labeling.labeler import load_winner
from labelbench.metrics import credit, human_label
from labelbench.rundir import WINNER, read_results


def figures(p: np.ndarray, y: np.ndarray) -> str:
    usable = ~np.isnan(p) & ~np.isnan(y)
    confidence = np.mean(np.maximum(p, 1 - p)[~np.isnan(p)])
    agreement = np.mean(credit(p, y)[usable])
    loss = np.mean(log_loss_terms(p, y)[usable])
    return f"mean confidence {confidence:.3f}, agreement {agreement:.3f}, log-loss {loss:.3f}"


def main(run_dir: Path) -> None:
    winner = load_winner(run_dir / WINNER)
    aggregation = winner.aggregation or Aggregation(method="prob-mean")
    results = read_results(run_dir)
    mine = results[
        (results.labeler == winner.labeler.display) & (results.variant == winner.variant)
    ]
    for dataset, rows in mine.groupby("dataset"):
        y = human_label(rows["human_pref_a"].to_numpy(float))
        soft = aggregation.soft_labels(
            rows["ai_pref_a_ab"],
            rows["ai_pref_a_ba"],
            rows["ai_logodds_a_ab"],
            rows["ai_logodds_a_ba"],
            rows["len_a"],
            rows["len_b"],
        )
        print(f"{dataset}: {len(rows)} pairs, {winner.labeler.display} / {winner.variant}")
        print(f"  {aggregation.method} (winner.json): {figures(soft, y)}")
        print(f"  prob-mean: {figures(rows['ai_pref_a'].to_numpy(float), y)}")


if __name__ == "__main__":
    script_main(lambda: main(Path(sys.argv[1] if len(sys.argv) > 1 else "reports/ladder")))
