"""Collect the figures of one reports/rlaif-tldr/run.sh run into OUT/results.json, draw the PPO
curves (OUT/plots/ppo.png) and print the README's tables in Markdown.

    python reports/rlaif-tldr/results.py OUT [--update-report]

With --update-report, results.json and the plot also replace the committed ones in
reports/rlaif-tldr/ (the script never touches them otherwise). Parts of the run that are missing
(a step not run yet) are left out and named on stderr.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from labelbench.errors import InputError, script_main

REPORT = Path(__file__).resolve().parent
RUNS = {"ai": "RLAIF (AI-label RM)", "human": "RLHF (human-label RM)", "direct": "direct RLAIF"}
EVALUATIONS = {
    "rlaif-vs-sft": "RLAIF vs SFT",
    "rlhf-vs-sft": "RLHF vs SFT",
    "rlaif-vs-rlhf": "RLAIF vs RLHF",
    "direct-vs-sft": "direct RLAIF vs SFT",
}
PANELS = {
    "score": "reward-model score (direct: labeler score)",
    "kl": "KL to the reference (nats per response)",
    "entropy": "entropy (nats per token)",
    "response_length": "response length (tokens)",
}


def read_json(path: Path) -> dict | None:
    if not path.exists():
        print(f"missing: {path}", file=sys.stderr)
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def label_agreement(labels: Path) -> dict | None:
    """How often the AI's chosen side is the humans' (ties and unlabelled pairs left out)."""
    if not labels.exists():
        print(f"missing: {labels}", file=sys.stderr)
        return None
    from datasets import load_from_disk

    dataset = load_from_disk(str(labels))
    human = [h for h in dataset["human_pref_chosen"] if h is not None and h != 0.5]
    soft = dataset["soft_label"]
    return {
        "pairs": len(dataset),
        "labeler": dataset["labeler"][0],
        "variant": dataset["variant"][0],
        "agreement_with_humans": sum(h > 0.5 for h in human) / len(human) if human else None,
        "pairs_with_a_human_label": len(human),
        "mean_soft_label": sum(soft) / len(soft),
    }


def collect(out: Path) -> dict:
    result: dict = {"ai_labels": label_agreement(out / "ai-labels"), "reward_models": {}}
    for labels in ("ai", "human"):
        result["reward_models"][labels] = read_json(out / f"rm-{labels}" / "reward_metrics.json")
    result["ppo"] = {}
    for run in RUNS:
        log = out / f"ppo-{run}" / "log.jsonl"
        if log.exists():
            result["ppo"][run] = {
                "config": read_json(out / f"ppo-{run}" / "ppo_config.json"),
                "log": [json.loads(line) for line in log.read_text().splitlines() if line],
            }
    result["evaluations"] = {name: read_json(out / f"evaluate-{name}.json") for name in EVALUATIONS}
    timings = out / "timings.tsv"
    if timings.exists():
        result["seconds"] = {}
        for line in timings.read_text().splitlines():  # a resumed step has several rows
            name, seconds = line.split("\t")
            result["seconds"][name] = result["seconds"].get(name, 0) + int(seconds)
    return result


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PANELS), figsize=(16, 3.6))
    for axis, (key, title) in zip(axes, PANELS.items(), strict=True):
        for run, name in RUNS.items():
            log = result["ppo"].get(run, {}).get("log")
            if log:
                axis.plot([r["update"] for r in log], [r[key] for r in log], "o-", label=name)
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("PPO update")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fmt(estimate: dict | None) -> str:
    if not estimate or estimate.get("value") is None:
        reason = (estimate or {}).get("reason", "no data")
        return f"n/a ({reason})"
    interval = ""
    if estimate.get("low") is not None:
        interval = f" [{estimate['low']:.2f}, {estimate['high']:.2f}]"
    return f"{estimate['value']:.3f}{interval} (n={estimate['n']})"


def tables(result: dict) -> str:
    lines = ["| reward model | all | high confidence | length-matched | length-balanced |"]
    lines.append("|---|---|---|---|---|")
    longer = None
    for labels, metrics in result["reward_models"].items():
        if not metrics or "held_out" not in metrics:
            continue
        figures = metrics["held_out"]
        longer = figures["always_longer"]
        row = figures["reward_model"]
        lines.append(
            f"| {labels} labels | {fmt(row['all'])} | {fmt(row['high_confidence'])} | "
            f"{fmt(row['length_matched'])} | {fmt(row['length_balanced'])} |"
        )
    if longer:
        lines.append(
            f"| always-longer | {fmt(longer['all'])} | {fmt(longer['high_confidence'])} | "
            f"{fmt(longer['length_matched'])} | {fmt(longer['length_balanced'])} |"
        )
    lines += [
        "",
        "| evaluation | judge | win rate [95%] | length-controlled | n |",
        "|---|---|---|---|---|",
    ]
    for name, title in EVALUATIONS.items():
        evaluation = result["evaluations"].get(name)
        if not evaluation:
            continue
        for judge, judged in evaluation["judges"].items():
            controlled = judged.get("length_controlled_win_rate")
            lines.append(
                f"| {title} | {judge} | {judged['win_rate']:.3f} "
                f"[{judged['ci_low']:.2f}, {judged['ci_high']:.2f}] | "
                f"{'n/a' if controlled is None else f'{controlled:.3f}'} | {judged['n']} |"
            )
    lines += [
        "",
        "| PPO run | updates | score first → last | KL last | entropy last | length last |",
    ]
    lines.append("|---|---|---|---|---|---|")
    for run, data in result["ppo"].items():
        log = data["log"]
        first, last = log[0], log[-1]
        lines.append(
            f"| {RUNS[run]} | {len(log)} | {first['score']:.3f} → {last['score']:.3f} | "
            f"{last['kl']:.2f} | {last['entropy']:.2f} | {last['response_length']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--update-report", action="store_true")
    args = parser.parse_args()
    if not args.out.is_dir():
        raise InputError(args.out, "no such folder (the output of reports/rlaif-tldr/run.sh)")
    result = collect(args.out)
    text = json.dumps(result, indent=2) + "\n"
    (args.out / "results.json").write_text(text, encoding="utf-8")
    if result["ppo"]:
        plot(result, args.out / "plots" / "ppo.png")
    if args.update_report:
        (REPORT / "results.json").write_text(text, encoding="utf-8")
        if result["ppo"]:
            (REPORT / "plots").mkdir(exist_ok=True)
            shutil.copy(args.out / "plots" / "ppo.png", REPORT / "plots" / "ppo.png")
    print(tables(result))
    print(
        f"results: {args.out / 'results.json'}" + (f" and {REPORT}" if args.update_report else "")
    )


if __name__ == "__main__":
    script_main(main)
