"""The ``rlaif`` command line: label, reward, ppo, evaluate.

Every command checks its inputs (files, columns, models, EOS token) before any training starts;
a bad input is one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from labelbench.cli import run_app
from labelbench.errors import InputError, ModelError

app = typer.Typer(
    help="RLAIF with the winning labeler: label, train a reward model, run PPO, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

SplitOption = Annotated[
    str | None, typer.Option(help="Use only this part (train/test) of a split by post/context.")
]
TestFraction = Annotated[float, typer.Option(help="Share of groups in the test part of the split.")]
SplitSeed = Annotated[int, typer.Option(help="Seed of the split by group.")]


# ------------------------------------------------------------------------------- input checks


def _existing(path: Path, what: str) -> Path:
    if not path.exists():
        raise InputError(path, f"no such {what}")
    return path


def _is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and any(
        (path / name).exists() for name in ("dataset_info.json", "dataset_dict.json", "state.json")
    )


def load_preferences(
    path: Path, *, split: str | None = None, test_fraction: float = 0.2, split_seed: int = 0
) -> Any:
    """A preference dataset saved by ``rlaif label``, or human comparisons converted to one."""
    from rlaif.label import check_preference_dataset, human_preference_dataset, split_items

    _existing(path, "file or dataset directory")
    if _is_saved_dataset(path):
        from datasets import DatasetDict, load_from_disk

        dataset = load_from_disk(str(path))
        if isinstance(dataset, DatasetDict):
            dataset = dataset["train"] if "train" in dataset else next(iter(dataset.values()))
        check_preference_dataset(dataset, path)
        return dataset
    from labelbench.data.loaders import load_comparisons

    comparisons = split_items(load_comparisons(path), split, test_fraction, split_seed)
    if not comparisons:
        raise InputError(path, f"no comparisons in split {split!r}")
    return human_preference_dataset(comparisons, str(path))


def load_prompt_items(
    path: Path,
    *,
    split: str | None = None,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    limit: int | None = None,
) -> list[Any]:
    """Prompt items from a prompts file, or the distinct contexts of a comparisons file."""
    from labelbench.data.loaders import load_records
    from labelbench.data.record import PromptItem
    from labelbench.data.select import sample
    from rlaif.label import split_items

    _existing(path, "prompts file")
    records = load_records(path)
    items: list[Any] = []
    seen: set[str] = set()
    for record in records:
        if isinstance(record, PromptItem):
            items.append(record)
        elif record.group_id not in seen:
            seen.add(record.group_id)
            items.append(
                PromptItem(
                    id=record.group_id,
                    group_id=record.group_id,
                    task=record.task,
                    context=record.context,
                    meta=record.meta,
                )
            )
    items = split_items(items, split, test_fraction, split_seed)
    if limit is not None:
        items = sample(items, limit)
    if not items:
        raise InputError(path, "no prompts")
    return items


def _load_policy(spec: str) -> Any:
    from labelbench.models.registry import load_model
    from rlaif.ppo_trainer import check_policy

    loaded = load_model(spec)
    check_policy(loaded.model, loaded.tokenizer)
    return loaded


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------ label


@app.command()
def label(
    out: Annotated[Path, typer.Option(help="Directory to save the preference dataset to.")],
    data: Annotated[
        Path | None, typer.Option(help="Comparisons to label (existing pairs).")
    ] = None,
    prompts: Annotated[
        Path | None, typer.Option(help="Prompts: label two sampled responses each.")
    ] = None,
    policy: Annotated[
        str, typer.Option(help="Starting policy that samples the pairs.")
    ] = "smollm2-135m",
    winner: Annotated[
        Path | None, typer.Option(help="winner.json naming labeler and variant.")
    ] = None,
    labeler: Annotated[
        str | None, typer.Option(help="Labeler model (instead of --winner).")
    ] = None,
    variant: Annotated[
        str | None, typer.Option(help="Prompt variant (instead of --winner).")
    ] = None,
    split: SplitOption = None,
    test_fraction: TestFraction = 0.2,
    split_seed: SplitSeed = 0,
    limit: Annotated[int | None, typer.Option(help="Label at most this many items.")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Length of sampled responses.")] = 48,
    chat: Annotated[bool, typer.Option(help="Wrap labeler prompts in its chat template.")] = False,
    max_tokens: Annotated[
        int | None, typer.Option(help="Labeler context budget in tokens.")
    ] = None,
    seed: int = 0,
) -> None:
    """Label a training split with the winning (or a named) labeler, in TRL's preference format."""
    from labelbench.data.loaders import load_comparisons
    from labelbench.data.select import sample
    from rlaif.label import label_with_ai, load_winner, sample_pairs, split_items

    if (data is None) == (prompts is None):
        raise InputError(
            "rlaif label", "give exactly one of --data (pairs) or --prompts (sample pairs)"
        )
    if winner is not None:
        labeler_spec, variant_name = load_winner(_existing(winner, "winner file"))
    elif labeler and variant:
        labeler_spec, variant_name = labeler, variant
    else:
        raise InputError(
            "rlaif label", "name the labeler: --winner winner.json, or --labeler and --variant"
        )
    from labelbench.prompting import load_variant

    load_variant(variant_name)
    if data is not None:
        comparisons = split_items(
            load_comparisons(_existing(data, "comparisons file")), split, test_fraction, split_seed
        )
        if limit is not None:
            comparisons = sample(comparisons, limit, seed)
        if not comparisons:
            raise InputError(data, f"no comparisons in split {split!r}")
    else:
        items = load_prompt_items(
            prompts, split=split, test_fraction=test_fraction, split_seed=split_seed, limit=limit
        )
        loaded = _load_policy(policy)
        comparisons = sample_pairs(
            items, loaded.model, loaded.tokenizer, max_new_tokens=max_new_tokens, seed=seed
        )
        if not comparisons:
            raise InputError(prompts, "the policy produced no distinct non-empty response pairs")
    dataset = label_with_ai(
        comparisons, labeler_spec, variant_name, seed=seed, chat=chat, max_tokens=max_tokens
    )
    dataset.save_to_disk(str(out))
    typer.echo(f"{len(dataset)} labelled pairs (of {len(comparisons)}) -> {out}")


# ----------------------------------------------------------------------------------- reward


@app.command()
def reward(
    train: Annotated[
        Path, typer.Argument(help="Preference dataset dir (rlaif label) or human comparisons file.")
    ],
    out: Annotated[Path, typer.Option(help="Directory for the reward model and metrics.")],
    model: Annotated[str, typer.Option(help="Causal LM to put a reward head on.")] = "smollm2-135m",
    eval_data: Annotated[
        Path | None, typer.Option("--eval", help="Held-out human comparisons.")
    ] = None,
    split: SplitOption = None,
    eval_split: Annotated[
        str | None, typer.Option(help="Part of --eval to use (train/test).")
    ] = None,
    test_fraction: TestFraction = 0.2,
    split_seed: SplitSeed = 0,
    labels: Annotated[
        str,
        typer.Option(
            help="auto (what the data has), ai (rlaif label's), human (same pairs' human)."
        ),
    ] = "auto",
    hard: Annotated[
        bool, typer.Option(help="Bradley-Terry on hard labels even when soft ones exist.")
    ] = False,
    max_prompt_tokens: Annotated[
        int | None, typer.Option(help="Keep only the last N tokens of each prompt.")
    ] = None,
    epochs: float = 1.0,
    learning_rate: float = 2e-5,
    batch_size: int = 8,
    max_length: Annotated[int, typer.Option(help="Pairs with a longer side are dropped.")] = 1024,
    limit: Annotated[int | None, typer.Option(help="Train on at most this many pairs.")] = None,
    eval_limit: Annotated[
        int | None, typer.Option(help="Evaluate on at most this many held-out pairs.")
    ] = None,
    group_by: Annotated[
        str, typer.Option(help="Split accuracy by 'confidence' or a meta key.")
    ] = "confidence",
    seed: int = 0,
) -> None:
    """Train a reward model with TRL's RewardTrainer: soft-label cross-entropy on AI labels,
    Bradley-Terry on hard (human) labels; report held-out accuracy by group."""
    from labelbench.models.registry import check_directory, load_tokenizer, resolve
    from rlaif.label import to_human_labels, truncate_prompts
    from rlaif.reward_config import SOFT_LABEL, SoftRewardConfig

    if labels not in ("auto", "ai", "human"):
        raise InputError("--labels", f"unknown labels {labels!r}; use auto, ai or human")
    dataset = load_preferences(
        train, split=split, test_fraction=test_fraction, split_seed=split_seed
    )
    if labels == "ai" and SOFT_LABEL not in dataset.column_names:
        raise InputError(train, "--labels ai: no AI labels here (make them with rlaif label)")
    if labels == "human" and SOFT_LABEL in dataset.column_names:
        dataset = to_human_labels(dataset, train)
    if limit is not None:
        dataset = dataset.shuffle(seed=seed).select(range(min(limit, len(dataset))))
    held_out = _held_out(eval_data, eval_split, test_fraction, split_seed, group_by, eval_limit)
    resolved = resolve(model)
    check_directory(resolved.path)
    tokenizer = load_tokenizer(model)
    if tokenizer.eos_token is None:
        raise ModelError(f"{model}: the tokenizer has no EOS token to end the scored text with")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    soft = SOFT_LABEL in dataset.column_names and not hard
    if max_prompt_tokens is not None:
        dataset = dataset.map(
            lambda batch: {
                "prompt": truncate_prompts(batch["prompt"], tokenizer, max_prompt_tokens)
            },
            batched=True,
        )
        if held_out is not None:
            held_out["prompt"] = truncate_prompts(held_out["prompt"], tokenizer, max_prompt_tokens)

    from trl.trainer.callbacks import RichProgressCallback

    from rlaif.reward_trainer import SoftLabelRewardTrainer, pairwise_accuracy

    config = SoftRewardConfig(
        output_dir=str(out),
        num_train_epochs=epochs,
        learning_rate=learning_rate,
        per_device_train_batch_size=batch_size,
        max_length=max_length,
        seed=seed,
        use_soft_labels=soft,
        logging_steps=10,
    )
    keep = [c for c in ("prompt", "chosen", "rejected", SOFT_LABEL) if c in dataset.column_names]
    trainer = SoftLabelRewardTrainer(
        model=str(resolved.path),
        args=config,
        train_dataset=dataset.select_columns(keep),
        processing_class=tokenizer,
        callbacks=[RichProgressCallback()],
    )

    def held_out_accuracy() -> dict[str, dict[str, float]]:
        tokenizer.padding_side = "right"
        return pairwise_accuracy(
            trainer.model.eval(),
            tokenizer,
            held_out["prompt"],
            held_out["chosen"],
            held_out["rejected"],
            held_out["group"],
        )

    untrained = held_out_accuracy() if held_out is not None else None
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    metrics: dict[str, Any] = {
        "model": model,
        "train": str(train),
        "train_pairs": len(trainer.train_dataset),
        "labels": "ai" if SOFT_LABEL in dataset.column_names else "human",
        "loss": "soft-label cross-entropy" if soft else "Bradley-Terry",
        "max_prompt_tokens": max_prompt_tokens,
        "epochs": epochs,
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "train_seconds": round(seconds, 1),
    }
    if held_out is not None:
        accuracy = held_out_accuracy()
        longer = [
            len(c.split()) > len(r.split())
            for c, r in zip(held_out["chosen"], held_out["rejected"], strict=True)
        ]
        metrics.update(
            {
                "eval": str(eval_data),
                "eval_split": eval_split,
                "group_by": group_by,
                "accuracy": accuracy,
                "baselines": {
                    "untrained_head_accuracy": untrained["all"]["accuracy"],
                    "longer_wins_accuracy": sum(longer) / len(longer),
                },
            }
        )
        typer.echo(
            f"held-out pairwise accuracy: {accuracy['all']['accuracy']:.3f} "
            f"(n={int(accuracy['all']['n'])})"
        )
    _write_json(out / "reward_metrics.json", metrics)
    typer.echo(f"reward model -> {out}")


def _held_out(
    path: Path | None,
    split: str | None,
    test_fraction: float,
    seed: int,
    group_by: str,
    limit: int | None = None,
) -> dict | None:
    if path is None:
        return None
    from labelbench.data.loaders import load_comparisons
    from labelbench.data.select import sample
    from rlaif.label import human_preference_dataset, split_items

    comparisons = split_items(
        load_comparisons(_existing(path, "comparisons file")), split, test_fraction, seed
    )
    comparisons = sample([c for c in comparisons if not c.is_tie], limit, seed)
    if not comparisons:
        raise InputError(path, f"no held-out comparisons in split {split!r}")
    by_id = {c.id: c for c in comparisons}
    dataset = human_preference_dataset(comparisons, str(path))
    groups = [_group(by_id[i], group_by) for i in dataset["id"]]
    return {
        "prompt": dataset["prompt"],
        "chosen": dataset["chosen"],
        "rejected": dataset["rejected"],
        "group": groups,
    }


def _group(item: Any, group_by: str) -> str:
    if group_by == "confidence":
        confidence = item.annotations[0].confidence if item.annotations else None
        if confidence is None:
            return "confidence unknown"
        return (
            "confidence 1-3"
            if confidence <= 3
            else "confidence 4-6"
            if confidence <= 6
            else "confidence 7-9"
        )
    return f"{group_by}={item.meta.get(group_by)}"


# -------------------------------------------------------------------------------------- ppo


@app.command()
def ppo(
    prompts: Annotated[Path, typer.Option(help="Training prompts (TL;DR posts or comparisons).")],
    out: Annotated[Path, typer.Option(help="Directory for checkpoints, log.jsonl and the policy.")],
    policy: Annotated[str, typer.Option(help="Starting policy.")] = "smollm2-135m",
    reward_model: Annotated[
        Path | None, typer.Option(help="Reward model dir (rlaif reward).")
    ] = None,
    labeler: Annotated[
        str | None, typer.Option(help="Direct RLAIF: the labeler's 1-N score is the reward.")
    ] = None,
    variant: Annotated[
        str | None, typer.Option(help="Variant with the direct-score templates.")
    ] = None,
    split: SplitOption = None,
    test_fraction: TestFraction = 0.2,
    split_seed: SplitSeed = 0,
    limit: Annotated[int | None, typer.Option(help="Use at most this many prompts.")] = None,
    updates: Annotated[int, typer.Option(help="PPO updates (rollout + minibatch epochs).")] = 100,
    batch_size: int = 16,
    num_minibatches: int = 4,
    ppo_epochs: int = 4,
    response_length: int = 48,
    max_prompt_tokens: int = 512,
    learning_rate: float = 1e-5,
    temperature: float = 0.7,
    kl_coef: float = 0.05,
    adaptive_kl: bool = False,
    target_kl: float = 6.0,
    missing_eos_penalty: Annotated[
        float, typer.Option(help="Score penalty for no EOS; <0 turns it off.")
    ] = 1.0,
    save_every: int = 0,
    resume: Annotated[
        bool, typer.Option(help="Continue from the last checkpoint in --out.")
    ] = False,
    seed: int = 0,
) -> None:
    """PPO on the starting policy with a reward model (RLAIF/RLHF) or a labeler's direct score."""
    from rlaif.label import policy_prompt, truncate_prompts
    from rlaif.ppo_config import PPOConfig

    if (reward_model is None) == (labeler is None):
        raise InputError(
            "rlaif ppo", "give exactly one reward: --reward-model DIR or --labeler SPEC"
        )
    try:
        config = PPOConfig(
            batch_size=batch_size,
            num_minibatches=num_minibatches,
            ppo_epochs=ppo_epochs,
            response_length=response_length,
            max_prompt_tokens=max_prompt_tokens,
            learning_rate=learning_rate,
            temperature=temperature,
            kl_coef=kl_coef,
            adaptive_kl=adaptive_kl,
            target_kl=target_kl,
            total_updates=updates,
            seed=seed,
            missing_eos_penalty=None if missing_eos_penalty < 0 else missing_eos_penalty,
            save_every=save_every,
        )
    except ValueError as error:
        raise InputError("rlaif ppo", str(error)) from None
    if resume and not any(out.glob("checkpoint-*/ppo_state.json")):
        raise InputError(out, "--resume: no checkpoint to resume from")
    if not resume and (out / "log.jsonl").exists():
        raise InputError(
            out, "holds a PPO run already; continue it with --resume or use a new --out"
        )
    if reward_model is not None:
        _existing(reward_model, "reward model directory")
    items = load_prompt_items(
        prompts, split=split, test_fraction=test_fraction, split_seed=split_seed, limit=limit
    )
    loaded = _load_policy(policy)
    texts = truncate_prompts(
        [policy_prompt(i.task, i.context, i.meta) for i in items],
        loaded.tokenizer,
        max_prompt_tokens,
    )
    from accelerate import Accelerator

    accelerator = Accelerator()
    reward_fn = _reward_fn(reward_model, labeler, variant, items, texts, accelerator.device)

    from rlaif.ppo_trainer import PPOTrainer

    trainer = PPOTrainer(
        config,
        loaded.model,
        loaded.tokenizer,
        reward_fn,
        texts,
        output_dir=out,
        accelerator=accelerator,
    )
    _write_json(
        out / "ppo_config.json",
        {
            "policy": policy,
            "reward_model": str(reward_model) if reward_model else None,
            "labeler": labeler,
            "variant": variant,
            "prompts": str(prompts),
            "n_prompts": len(texts),
            **config.to_dict(),
        },
    )
    started = time.perf_counter()
    history = trainer.train(resume=resume)
    if history:
        last = history[-1]
        typer.echo(
            f"update {int(last['update'])}: score {last['score']:.3f}, kl {last['kl']:.3f} "
            f"({time.perf_counter() - started:.0f} s) -> {out / 'policy'}"
        )


def _reward_fn(
    reward_model: Path | None,
    labeler: str | None,
    variant: str | None,
    items: list,
    texts: list[str],
    device: Any,
):
    if reward_model is not None:
        from rlaif.rewards import RewardModelScorer, load_reward_model

        rm_dir = _existing(reward_model, "reward model directory")
        return RewardModelScorer(*load_reward_model(rm_dir, device))
    from rlaif.rewards import DirectLabelerScorer

    tasks = {i.task for i in items}
    if len(tasks) != 1:
        raise InputError("--prompts", f"direct scoring needs one task, found {sorted(tasks)}")
    contexts = {text: item.context for text, item in zip(texts, items, strict=True)}
    return DirectLabelerScorer(labeler, tasks.pop(), variant, contexts, device)


# --------------------------------------------------------------------------------- evaluate


@app.command()
def evaluate(
    policy: Annotated[str, typer.Option(help="Trained policy (e.g. OUT/policy of rlaif ppo).")],
    prompts: Annotated[Path, typer.Option(help="Held-out prompts.")],
    out: Annotated[Path, typer.Option(help="JSON file for the results.")],
    reference: Annotated[str, typer.Option(help="Starting policy.")] = "smollm2-135m",
    reward_model: Annotated[
        Path | None, typer.Option(help="Judge: reward model trained on human labels.")
    ] = None,
    labeler: Annotated[str | None, typer.Option(help="Judge: a labeler model (pairwise).")] = None,
    variant: Annotated[str | None, typer.Option(help="The labeler's prompt variant.")] = None,
    split: SplitOption = None,
    test_fraction: TestFraction = 0.2,
    split_seed: SplitSeed = 0,
    limit: Annotated[
        int | None, typer.Option(help="Evaluate on at most this many prompts.")
    ] = None,
    response_length: int = 48,
    max_prompt_tokens: Annotated[
        int, typer.Option(help="Prompts keep their last N tokens (as in rlaif ppo).")
    ] = 512,
    temperature: float = 0.7,
    seed: int = 0,
) -> None:
    """Win rate of the trained over the starting policy; KL, lengths, length-controlled win rate."""
    from labelbench.data.record import Comparison
    from rlaif import evaluate as ev
    from rlaif.label import generate, policy_prompt, truncate_prompts

    if reward_model is None and labeler is None:
        raise InputError(
            "rlaif evaluate", "name at least one judge: --reward-model and/or --labeler"
        )
    if labeler is not None and variant is None:
        raise InputError("rlaif evaluate", "--labeler needs --variant")
    items = load_prompt_items(
        prompts, split=split, test_fraction=test_fraction, split_seed=split_seed, limit=limit
    )
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    trained, start = _load_policy(policy), _load_policy(reference)
    texts = truncate_prompts(
        [policy_prompt(i.task, i.context, i.meta) for i in items],
        start.tokenizer,
        max_prompt_tokens,
    )
    trained.model.to(device)
    start.model.to(device)
    judge_rm = None
    if reward_model is not None:
        from rlaif.rewards import RewardModelScorer, load_reward_model

        rm_dir = _existing(reward_model, "reward model directory")
        judge_rm = RewardModelScorer(*load_reward_model(rm_dir, device))
    if labeler is not None:
        from labelbench.prompting import load_variant

        load_variant(variant)
    sample = dict(max_new_tokens=response_length, temperature=temperature, seed=seed)
    policy_out = generate(trained.model, trained.tokenizer, texts, **sample)
    reference_out = generate(start.model, start.tokenizer, texts, **sample)
    policy_out = [r if r.strip() else " (empty)" for r in policy_out]
    reference_out = [r if r.strip() else " (empty)" for r in reference_out]
    length_difference = [
        len(p.split()) - len(r.split()) for p, r in zip(policy_out, reference_out, strict=True)
    ]
    logp_policy = ev.response_logprob_sums(trained.model, trained.tokenizer, texts, policy_out)
    logp_reference = ev.response_logprob_sums(start.model, start.tokenizer, texts, policy_out)
    result: dict[str, Any] = {
        "policy": policy,
        "reference": reference,
        "prompts": str(prompts),
        "n_prompts": len(texts),
        "mean_kl_to_reference": sum(a - b for a, b in zip(logp_policy, logp_reference, strict=True))
        / len(texts),
        "lengths": {
            "policy": ev.length_stats(policy_out),
            "reference": ev.length_stats(reference_out),
        },
        "judges": {},
    }
    if judge_rm is not None:
        wins = ev.pairwise_wins(
            judge_rm(texts, policy_out).tolist(), judge_rm(texts, reference_out).tolist()
        )
        result["judges"]["reward_model"] = {
            "path": str(reward_model),
            **ev.judge_summary(wins, length_difference, seed),
        }
    if labeler is not None:
        from rlaif.label import ai_preferences

        pairs = [
            Comparison(
                id=f"{i.id}",
                group_id=i.group_id,
                task=i.task,
                context=i.context,
                response_a=p.strip(),
                response_b=r.strip(),
                meta=i.meta,
            )
            for i, p, r in zip(items, policy_out, reference_out, strict=True)
        ]
        p_policy, _ = ai_preferences(pairs, labeler, variant, seed=seed)
        scored = [i for i, p in enumerate(p_policy) if p is not None]
        wins = ev.pairwise_wins([p_policy[i] for i in scored], [0.5] * len(scored))
        diffs = [length_difference[i] for i in scored]
        result["judges"]["labeler"] = {
            "labeler": labeler,
            "variant": variant,
            **ev.judge_summary(wins, diffs, seed),
        }
    _write_json(out, result)
    for name, judged in result["judges"].items():
        typer.echo(
            f"{name}: win rate {judged['win_rate']:.3f} "
            f"[{judged['ci_low']:.3f}, {judged['ci_high']:.3f}], "
            f"length-controlled {judged['length_controlled_win_rate']:.3f}"
        )
    typer.echo(f"mean KL to reference {result['mean_kl_to_reference']:.3f} nats -> {out}")


def main() -> None:
    sys.exit(run_app(app))


if __name__ == "__main__":  # accelerate launch -m rlaif.cli ppo ...
    main()
