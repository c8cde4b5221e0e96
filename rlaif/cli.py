"""The ``rlaif`` command line: sft, label, reward, dpo, ppo, evaluate. Wiring only: each
command's options come from its config dataclasses (``rlaif.options``) and the work is done in its
module (``sft``, ``label``, ``reward``, ``dpo``, ``ppo``, ``evaluate``; data in ``data``).

Every command checks its inputs (files, columns, models, EOS token) before any training starts;
a bad input is one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from labelbench.errors import INTERRUPTED, InputError, run_app
from rlaif.data import DataOptions, output_folder
from rlaif.interrupted import rlaif_interrupted_line
from rlaif.options import config_options
from rlaif.ppo_config import PPOConfig

try:  # torch, transformers and trl load here, for seconds: Ctrl-C meanwhile is one line too
    from rlaif.dpo_config import DPORunConfig
    from rlaif.evaluate import EvaluateConfig
    from rlaif.reward import RewardRunConfig
    from rlaif.sft_config import SFTRunConfig
    from rlaif.training_labels import LabelOptions
except KeyboardInterrupt:
    print(rlaif_interrupted_line(sys.argv[1:]), file=sys.stderr)
    sys.exit(INTERRUPTED)

app = typer.Typer(
    help="RLAIF with the winning labeler: fine-tune (sft), label, train a reward model, run DPO "
    "or PPO, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.command()
@config_options
def sft(
    posts: Annotated[
        Path, typer.Argument(help="TL;DR posts with reference summaries (format tldr-posts).")
    ],
    out: Annotated[Path, typer.Option(help="Directory for the policy (OUT/policy) and metrics.")],
    config: SFTRunConfig,
    data_options: DataOptions,
    comparisons: Annotated[
        Path | None,
        typer.Option(help="Also train on these comparisons' human-preferred summaries."),
    ] = None,
    comparisons_split: Annotated[
        str | None,
        typer.Option(help="Part of --comparisons to use (train/test), split by post like --split."),
    ] = None,
) -> None:
    """Supervised fine-tuning with TRL's SFTTrainer on the posts' reference summaries (split by
    post); held-out ROUGE-L, length and EOS rate beside the starting model's."""
    from rlaif.sft import run_sft, summary_lines

    with output_folder(out):
        metrics = run_sft(
            posts,
            out,
            config,
            data_options,
            comparisons=comparisons,
            comparisons_split=comparisons_split,
        )
    for line in summary_lines(metrics):
        typer.echo(line)
    typer.echo(f"({metrics['train_seconds']:.0f} s) -> {out / 'policy'}")


@app.command()
@config_options
def label(
    out: Annotated[Path, typer.Option(help="Directory to save the preference dataset to.")],
    data_options: DataOptions,
    data: Annotated[
        Path | None, typer.Option(help="Comparisons to label (existing pairs).")
    ] = None,
    prompts: Annotated[
        Path | None, typer.Option(help="Prompts: label two sampled responses each.")
    ] = None,
    policy: Annotated[str, typer.Option(help="Starting policy that samples the pairs.")] = (
        "smollm2-135m"
    ),
    winner: Annotated[
        Path | None, typer.Option(help="winner.json: the labeler as benchmarked, and variant.")
    ] = None,
    labeler: Annotated[
        str | None, typer.Option(help="Labeler model (instead of --winner).")
    ] = None,
    variant: Annotated[
        str | None, typer.Option(help="Prompt variant (instead of --winner).")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Label at most this many items.")] = None,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Length of sampled responses.")] = 48,
    chat: Annotated[
        bool | None,
        typer.Option(
            "--chat/--no-chat", help="Labeler chat template (default: the winner's, else auto)."
        ),
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option(min=1, help="Labeler context budget in tokens.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of sampling and selection.")] = 0,
) -> None:
    """Label a training split with the winning (or a named) labeler, in TRL's preference format."""
    from labelbench.errors import check_writable_dir
    from labelbench.labeling import default_cache_dir
    from labelbench.labeling.labeler import warn_if_weak
    from labelbench.models.device import training_device
    from labelbench.prompting.planner import check_tasks
    from rlaif.data import load_comparisons, load_prompt_items
    from rlaif.evaluate import load_policy
    from rlaif.label import choose_labeler, label_with_ai, sample_pairs
    from rlaif.preferences import label_quality

    if (data is None) == (prompts is None):
        raise InputError(
            "rlaif label", "give exactly one of --data (pairs) or --prompts (sample pairs)"
        )
    chosen = choose_labeler(
        "rlaif label", winner, labeler, variant, seed=seed, chat=chat, max_tokens=max_tokens
    )
    check_writable_dir(out, "output directory")
    check_writable_dir(default_cache_dir(), "label cache directory")
    if data is not None:
        comparisons = load_comparisons(data, data_options, limit=limit, seed=seed)
    else:
        items = load_prompt_items(prompts, data_options, limit=limit)
        check_tasks(items, chosen.variant)  # before the policy loads (pairs: ai_preferences)
        loaded = load_policy(policy)
        loaded.model.to(training_device())
        comparisons = sample_pairs(
            items, loaded.model, loaded.tokenizer, max_new_tokens=max_new_tokens, seed=seed
        )
        if not comparisons:
            raise InputError(prompts, "the policy produced no distinct non-empty response pairs")
    warn_if_weak(chosen, aggregation=True)
    dataset = label_with_ai(
        comparisons,
        chosen.labeler,
        chosen.variant,
        seed=chosen.seed,
        aggregation=chosen.aggregation,
    )
    dataset.save_to_disk(str(out))
    method = chosen.aggregation.method if chosen.aggregation else "prob-mean"
    typer.echo(f"{len(dataset)} labelled pairs (of {len(comparisons)}), {method} -> {out}")
    typer.echo(label_quality(dataset).line())


@app.command()
@config_options
def reward(
    train: Annotated[
        Path, typer.Argument(help="Preference dataset dir (rlaif label) or human comparisons file.")
    ],
    out: Annotated[Path, typer.Option(help="Directory for the reward model and metrics.")],
    config: RewardRunConfig,
    label_options: LabelOptions,
    data_options: DataOptions,
    eval_data: Annotated[
        Path | None, typer.Option("--eval", help="Held-out human comparisons.")
    ] = None,
    eval_split: Annotated[
        str | None, typer.Option(help="Part of --eval to use (train/test).")
    ] = None,
) -> None:
    """Train a reward model with TRL's RewardTrainer: soft-label cross-entropy on AI labels,
    Bradley-Terry on hard (human) labels, human labels where a pair has one and AI labels
    elsewhere (--labels mixed, --human-labels); report held-out accuracy by group."""
    from rlaif.reward import train_reward_model

    with output_folder(out):
        metrics = train_reward_model(
            train, out, config, data_options, eval_data, eval_split, label_options
        )
    if "accuracy" in metrics:
        accuracy = metrics["accuracy"]["all"]
        typer.echo(
            f"held-out pairwise accuracy: {accuracy['accuracy']:.3f} (n={int(accuracy['n'])})"
        )
    typer.echo(f"reward model -> {out}")


@app.command()
@config_options
def dpo(
    train: Annotated[
        Path, typer.Argument(help="Preference dataset dir (rlaif label) or human comparisons file.")
    ],
    out: Annotated[Path, typer.Option(help="Directory for the policy (OUT/policy) and metrics.")],
    config: DPORunConfig,
    label_options: LabelOptions,
    data_options: DataOptions,
    policy: Annotated[
        str, typer.Option(help="Starting policy (e.g. OUT/policy of rlaif sft).")
    ] = "smollm2-135m",
    reference: Annotated[
        str | None, typer.Option(help="Reference policy (default: the starting policy).")
    ] = None,
) -> None:
    """DPO with TRL's DPOTrainer on AI labels (soft, hard or --min-confidence), human labels, or
    human labels where a pair has one and AI labels elsewhere."""
    from rlaif.dpo import run_dpo

    with output_folder(out):
        metrics = run_dpo(
            train, out, config, label_options, data_options, policy=policy, reference=reference
        )
    shares = metrics["label_sources"]["counts"]
    losses = metrics["loss_history"]
    loss = f"loss {losses[0]:.4f} -> {losses[-1]:.4f}, " if len(losses) > 1 else ""
    if not loss and metrics["train_loss"] is not None:
        loss = f"mean loss {metrics['train_loss']:.4f}, "
    typer.echo(
        f"{metrics['train_pairs']} pairs ({shares['human']} human-, {shares['ai']} AI-labelled), "
        f"{metrics['objective']}: {loss}({metrics['train_seconds']:.0f} s) -> {out / 'policy'}"
    )


@app.command()
@config_options
def ppo(
    prompts: Annotated[Path, typer.Option(help="Training prompts (TL;DR posts or comparisons).")],
    out: Annotated[Path, typer.Option(help="Directory for checkpoints, log.jsonl and the policy.")],
    config: PPOConfig,
    data_options: DataOptions,
    policy: Annotated[str, typer.Option(help="Starting policy.")] = "smollm2-135m",
    reward_model: Annotated[Path | None, typer.Option(help="Reward model dir (rlaif reward).")] = (
        None
    ),
    winner: Annotated[
        Path | None, typer.Option(help="Direct RLAIF with winner.json's labeler, as benchmarked.")
    ] = None,
    labeler: Annotated[
        str | None, typer.Option(help="Direct RLAIF: the labeler's 1-N score is the reward.")
    ] = None,
    variant: Annotated[
        str | None, typer.Option(help="Variant with the direct-score templates.")
    ] = (None),
    limit: Annotated[int | None, typer.Option(min=1, help="Use at most this many prompts.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint in --out.")] = (
        False
    ),
) -> None:
    """PPO on the starting policy with a reward model (RLAIF/RLHF) or a labeler's direct score."""
    from rlaif.label import choose_labeler
    from rlaif.ppo import run_ppo

    started = time.perf_counter()
    history = run_ppo(
        prompts,
        out,
        config,
        data_options,
        policy=policy,
        reward_model=reward_model,
        labeler=choose_labeler(
            "rlaif ppo", winner, labeler, variant, seed=config.seed, required=False
        ),
        limit=limit,
        resume=resume,
    )
    if history:
        last = history[-1]
        typer.echo(
            f"update {int(last['update'])}: score {last['score']:.3f}, kl {last['kl']:.3f} "
            f"({time.perf_counter() - started:.0f} s) -> {out / 'policy'}"
        )


@app.command()
@config_options
def evaluate(
    policy: Annotated[str, typer.Option(help="Trained policy (e.g. OUT/policy of rlaif ppo).")],
    prompts: Annotated[Path, typer.Option(help="Held-out prompts.")],
    out: Annotated[Path, typer.Option(help="JSON file for the results.")],
    config: EvaluateConfig,
    data_options: DataOptions,
    reward_model: Annotated[
        Path | None, typer.Option(help="Judge: reward model trained on human labels.")
    ] = None,
    winner: Annotated[
        Path | None, typer.Option(help="Judge: winner.json's labeler and variant, as benchmarked.")
    ] = None,
    labeler: Annotated[str | None, typer.Option(help="Judge: a labeler model (pairwise).")] = None,
    variant: Annotated[str | None, typer.Option(help="The labeler's prompt variant.")] = None,
) -> None:
    """Win rate of the trained over the starting policy; KL, lengths, length-controlled win rate."""
    import json

    from rlaif.evaluate import evaluate_policy, summary_lines
    from rlaif.label import choose_labeler

    judge = choose_labeler(
        "rlaif evaluate", winner, labeler, variant, seed=config.seed, required=False
    )
    result = evaluate_policy(policy, prompts, out, config, data_options, reward_model, judge)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for line in summary_lines(result):
        typer.echo(line)
    typer.echo(f"-> {out}")


def run(args: list[str] | None = None) -> int:
    """Run the ``rlaif`` command line on ``args`` (default: ``sys.argv[1:]``); its exit code."""
    return run_app(app, args, prog_name="rlaif", interrupted=rlaif_interrupted_line)


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":  # accelerate launch -m rlaif.cli ppo ...
    main()
