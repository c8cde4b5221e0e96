"""Collect the figures of one reports/rlaif-dpo/run.sh run into results.json, draw its plots and
print the README's tables in Markdown.

    python reports/rlaif-dpo/results.py OUT [--update-report]

OUT is the run folder (default runs/rlaif-dpo). With --update-report, results.json and
plots/*.png are written into reports/rlaif-dpo/ too (nothing there is touched otherwise). Parts
of the run that are missing (a step not run yet) are left out and named on stderr. Nothing here
computes a win rate or an accuracy: it lays out what the rlaif commands wrote.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from labelbench.errors import InputError, script_main

REPORT = Path(__file__).resolve().parent
ARMS = {
    "dpo-rlaif": "RLAIF-DPO (AI labels)",
    "dpo-rlhf": "RLHF-DPO (human labels)",
    "dpo-hybrid": "hybrid DPO (100 human labels, AI labels for the rest)",
}
EVALUATIONS = {
    "rlaif-vs-sft": "RLAIF vs SFT",
    "rlhf-vs-sft": "RLHF vs SFT",
    "rlaif-vs-rlhf": "RLAIF vs RLHF",
    "hybrid-vs-sft": "hybrid vs SFT",
}
PAPER = {"rlaif-vs-sft": 0.71, "rlhf-vs-sft": 0.73, "rlaif-vs-rlhf": 0.50}
"""Lee et al. 2023 (RLAIF), TL;DR, PaLM 2 policies, human evaluators: win rates against SFT and
head to head."""


def read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        print(f"missing: {path}", file=sys.stderr)
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def collect(out: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"run": str(out)}
    timings = out / "timings.tsv"
    if timings.exists():
        rows = [line.split("\t") for line in timings.read_text().splitlines() if line.strip()]
        result["seconds"] = {name: int(seconds) for name, seconds in rows}
    sft = read_json(out / "sft" / "sft_metrics.json")
    if sft:
        held = sft["held_out"]
        result["sft"] = {
            "train_posts": sft["train_posts"],
            "held_out_posts": sft["held_out_posts"],
            "scored_posts": held["start"]["n"],
            "start": {k: held["start"][k] for k in ("rouge_l", "mean_words", "eos_rate")},
            "sft": {k: held["trained"][k] for k in ("rouge_l", "mean_words", "eos_rate")},
            "loss_per_token": {
                "start": held["start"].get("loss"),
                "sft": held["trained"].get("loss"),
            },
            "loss_history": sft["loss_history"],
            "train_seconds": sft["train_seconds"],
        }
    judge = read_json(out / "judge" / "reward_metrics.json")
    if judge:
        held = judge["held_out"]
        result["judge"] = {
            "train_pairs": judge["train_pairs"],
            "train_posts": judge["training_groups"]["n"],
            "accuracy": held["reward_model"]["all"],
            "length_balanced": held["reward_model"]["length_balanced"],
            "always_longer": held["always_longer"]["all"],
            "versus_always_longer": held["versus_always_longer"],
        }
    for arm in ARMS:
        metrics = read_json(out / arm / "dpo_metrics.json")
        if metrics:
            result[arm] = {
                key: metrics.get(key)
                for key in (
                    "train_pairs",
                    "labels",
                    "label_sources",
                    "objective",
                    "train_seconds",
                    "train_loss",
                    "loss_history",
                    "reward_accuracy_history",
                    "margin_history",
                )
            }
    result["evaluations"] = {}
    for name in EVALUATIONS:
        for prefix, judge_name in (("", "reward_model"), ("labeler-", "labeler")):
            found = read_json(out / f"eval-{prefix}{name}.json")
            if not found or judge_name not in found["judges"]:
                continue
            judged = found["judges"][judge_name]
            result["evaluations"].setdefault(name, {})[judge_name] = {
                "n": judged["n"],
                "win_rate": judged["win_rate"],
                "ci_low": judged["ci_low"],
                "ci_high": judged["ci_high"],
                "length_controlled_win_rate": judged["length_controlled_win_rate"],
                "independent": judged.get("independent", True),
                "mean_words": {
                    "policy": found["lengths"]["policy"].get("mean_words"),
                    "reference": found["lengths"]["reference"].get("mean_words"),
                },
                "mean_kl_to_reference": found["mean_kl_to_reference"],
            }
    return result


def _number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def tables(result: dict[str, Any]) -> str:
    lines = []
    sft = result.get("sft")
    if sft:
        lines += [
            f"SFT, {sft['scored_posts']} held-out posts (greedy, 48 tokens):",
            "",
            "| policy | ROUGE-L F1 | mean words | EOS rate |",
            "|---|---|---|---|",
        ]
        for name in ("start", "sft"):
            row = sft[name]
            lines.append(
                f"| {name} | {_number(row['rouge_l'])} | {_number(row['mean_words'], 1)} "
                f"| {_number(row['eos_rate'], 2)} |"
            )
        lines.append("")
    judge = result.get("judge")
    if judge:
        acc, bal, longer = judge["accuracy"], judge["length_balanced"], judge["always_longer"]
        vs = judge["versus_always_longer"]
        lines.append(
            f"Judge: held-out accuracy {acc['value']:.3f} [{acc['low']:.3f}, {acc['high']:.3f}] "
            f"(n={acc['n']}), length-balanced {bal['value']:.3f} [{bal['low']:.3f}, "
            f"{bal['high']:.3f}]; always-longer {longer['value']:.3f}; difference "
            f"{vs['value']:+.3f} [{vs['low']:+.3f}, {vs['high']:+.3f}]."
        )
        lines.append("")
    if result["evaluations"]:
        lines += [
            "| comparison | judge | n | win rate [95%] | length-controlled | mean words "
            "(policy / reference) | paper |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, judges in result["evaluations"].items():
            for judge_name, judged in judges.items():
                label = (
                    "reward model (independent)"
                    if judge_name == "reward_model"
                    else ("labeler (not independent)")
                )
                words = judged["mean_words"]
                lines.append(
                    f"| {EVALUATIONS[name]} | {label} | {judged['n']} "
                    f"| {_number(judged['win_rate'])} [{_number(judged['ci_low'])}, "
                    f"{_number(judged['ci_high'])}] "
                    f"| {_number(judged['length_controlled_win_rate'])} "
                    f"| {_number(words['policy'], 1)} / {_number(words['reference'], 1)} "
                    f"| {_number(PAPER.get(name), 2)} |"
                )
    return "\n".join(lines)


def plot(result: dict[str, Any], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    if "sft" in result:
        axes[0].plot(result["sft"]["loss_history"], marker="o")
    axes[0].set_title("SFT loss (every 10 steps of 8 posts)")
    axes[0].set_xlabel("logging step")
    axes[0].set_ylabel("loss per summary token")
    for arm, label in ARMS.items():
        if arm in result:
            axes[1].plot(result[arm]["loss_history"], marker="o", label=label)
    axes[1].set_title("DPO loss (every 10 steps of 8 pairs)")
    axes[1].set_xlabel("logging step")
    axes[1].set_ylabel("loss")
    axes[1].legend(fontsize=8)
    fig.savefig(folder / "losses.png", dpi=90)
    plt.close(fig)
    written.append(folder / "losses.png")

    rows = [
        (f"{EVALUATIONS[n]}\n{'judge RM' if j == 'reward_model' else 'labeler'}", n, j, v)
        for n, judges in result["evaluations"].items()
        for j, v in judges.items()
    ]
    if rows:
        fig, axis = plt.subplots(figsize=(10, 4), layout="constrained")
        for i, (_, name, judge, judged) in enumerate(rows):
            rate = judged["win_rate"]
            low, high = judged["ci_low"], judged["ci_high"]
            color = "tab:blue" if judge == "reward_model" else "tab:gray"
            axis.errorbar(
                i, rate, yerr=[[rate - low], [high - rate]], fmt="o", color=color, capsize=4
            )
            controlled = judged["length_controlled_win_rate"]
            if controlled is not None:
                axis.plot(i, controlled, marker="x", color="tab:red", ls="none")
            if name in PAPER:  # the paper has no hybrid arm
                axis.plot(i, PAPER[name], marker="_", color="black", ms=18, ls="none")
        axis.axhline(0.5, color="gray", ls=":", lw=1)
        axis.set_xticks(range(len(rows)), [r[0] for r in rows], fontsize=8)
        axis.set_ylim(0, 1)
        axis.set_ylabel("win rate of the first policy")
        axis.set_xlabel("comparison and judge")
        axis.set_title(
            "Win rates with 95% intervals (o); length-controlled (x, red); the paper's (black)"
        )
        fig.savefig(folder / "win_rates.png", dpi=90)
        plt.close(fig)
        written.append(folder / "win_rates.png")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", nargs="?", default="runs/rlaif-dpo", type=Path)
    parser.add_argument("--update-report", action="store_true")
    args = parser.parse_args()
    if not args.out.is_dir():
        raise InputError(args.out, "no such folder (the output of reports/rlaif-dpo/run.sh)")
    result = collect(args.out)
    (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    written = plot(result, args.out / "plots")
    if args.update_report:
        (REPORT / "results.json").write_text(json.dumps(result, indent=2) + "\n")
        for path in written:
            (REPORT / "plots").mkdir(exist_ok=True)
            shutil.copy(path, REPORT / "plots" / path.name)
    print(tables(result))


if __name__ == "__main__":
    script_main(main)
