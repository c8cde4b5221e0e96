"""``rlaif sft``: supervised fine-tuning of the starting policy on TL;DR posts and their reference
summaries with TRL's ``SFTTrainer``, the first stage of the RLAIF pipeline (Stiennon et al.
2020; Huang et al. 2024).

Data: posts with the author's own TL;DR (format ``tldr-posts``, field ``gold_response``), and
optionally the human-preferred summaries of comparisons (``--comparisons``). Posts are split by
post id (``--test-fraction``, ``--split-seed``): the policy trains on the train part; the test
part is held out, and comparisons on a held-out post are left out (counted). The loss is the
summary tokens' negative log-likelihood (prompt tokens are masked), EOS included, so the policy
learns to end its summaries.

Held-out figures, for the starting model and the trained one on the same posts: ROUGE-L F1
against the reference summary (``rouge-score``'s implementation, with stemming), mean length in
words, EOS rate (the share of summaries that end within ``--response-length`` tokens; greedy
decoding), and the mean per-token loss on the reference summaries.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from labelbench.errors import InputError, check_writable_dir
from rlaif.data import DataOptions, load_comparisons, load_prompt_items
from rlaif.groups import TrainingGroups, model_groups
from rlaif.preferences import policy_prompt, policy_response, split_items, truncate_prompts
from rlaif.sft_config import CPUFriendlySFTConfig, SFTRunConfig


def rouge_l(predictions: list[str], references: list[str]) -> list[float]:
    """ROUGE-L F1 (0-1) of each prediction against its reference, through ``rouge-score``
    (Porter stemming, its default tokenizer). Same lengths in and out."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return [
        scorer.score(reference, prediction)["rougeL"].fmeasure
        for prediction, reference in zip(predictions, references, strict=True)
    ]


def held_out_figures(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    references: list[str],
    *,
    response_length: int,
    max_prompt_tokens: int,
) -> dict[str, Any]:
    """Greedy summaries of ``prompts`` by ``model`` scored against ``references``:
    ``rouge_l`` (mean F1, 0-1), ``mean_words``, ``eos_rate`` (share ending with EOS within
    ``response_length`` tokens), ``n`` and three ``examples``."""
    from rlaif.label import sample_responses

    was_training = model.training
    model.eval()
    texts, ended = sample_responses(
        model,
        tokenizer,
        prompts,
        max_new_tokens=response_length,
        temperature=0.0,
        max_prompt_tokens=max_prompt_tokens,
    )
    model.train(was_training)
    scores = rouge_l([t.strip() for t in texts], [r.strip() for r in references])
    n = len(texts)
    return {
        "rouge_l": sum(scores) / n if n else None,
        "mean_words": sum(len(t.split()) for t in texts) / n if n else None,
        "eos_rate": sum(ended) / n if n else None,
        "n": n,
        "examples": [t.strip() for t in texts[:3]],
    }


def sft_examples(
    posts: Path,
    data: DataOptions,
    comparisons: Path | None,
    comparisons_split: str | None,
) -> tuple[list[dict[str, str]], list[Any], dict[str, Any]]:
    """The training examples (``prompt``, ``completion``, ``group_id``), the held-out posts
    (``PromptItem`` with a reference) and counts of what was read, kept and left out.

    InputError: ``--split`` given (sft splits itself), no post with a reference summary, no
    held-out or no training post, comparisons without a human preference."""
    from dataclasses import replace

    if data.split is not None:
        raise InputError(
            "--split",
            "rlaif sft splits the posts itself: it trains on the train part and scores the test "
            "part (set --test-fraction and --split-seed)",
        )
    if comparisons_split is not None and comparisons is None:
        raise InputError("--comparisons-split", "applies to --comparisons FILE: give it too")
    if comparisons_split not in (None, "train", "test"):
        raise InputError("--comparisons-split", f"must be train or test, not {comparisons_split!r}")
    items = load_prompt_items(posts, data)
    with_reference = [i for i in items if getattr(i, "reference", None)]
    if not with_reference:
        raise InputError(
            posts,
            f"none of its {len(items)} posts has a reference summary (format tldr-posts)",
            field="gold_response",
        )
    train = split_items(with_reference, "train", data.test_fraction, data.split_seed)
    test = split_items(with_reference, "test", data.test_fraction, data.split_seed)
    if not train or not test:
        raise InputError(
            posts,
            f"{len(with_reference)} post(s) with a reference summary cannot be split into "
            f"training and held-out posts at --test-fraction {data.test_fraction}",
        )
    examples = [
        {
            "prompt": policy_prompt(i.task, i.context, i.meta),
            "completion": policy_response(i.reference),
            "group_id": i.group_id,
        }
        for i in train
    ]
    counts: dict[str, Any] = {
        "posts": len(items),
        "posts_without_reference": len(items) - len(with_reference),
        "train_posts": len(train),
        "held_out_posts": len(test),
    }
    if comparisons is not None:
        held = {i.group_id for i in test}
        part = replace(data, format=None, map=None, split=comparisons_split)
        pairs = load_comparisons(comparisons, part)
        preferred = [c for c in pairs if c.human_pref_a is not None and not c.is_tie]
        if not preferred:
            raise InputError(comparisons, "no comparison with a human preference (or all ties)")
        kept = [c for c in preferred if c.group_id not in held]
        seen = {(e["prompt"], e["completion"]) for e in examples}
        added = 0
        for c in kept:
            text = c.response_a if c.human_pref_a > 0.5 else c.response_b
            example = {
                "prompt": policy_prompt(c.task, c.context, c.meta),
                "completion": policy_response(text),
                "group_id": c.group_id,
            }
            if (example["prompt"], example["completion"]) not in seen:
                seen.add((example["prompt"], example["completion"]))
                examples.append(example)
                added += 1
        counts.update(
            {
                "comparisons": len(pairs),
                "comparisons_without_preference": len(pairs) - len(preferred),
                "comparisons_on_held_out_posts": len(preferred) - len(kept),
                "comparison_summaries_added": added,
            }
        )
    return examples, test, counts


def run_sft(
    posts: Path,
    out: Path,
    config: SFTRunConfig,
    data: DataOptions,
    *,
    comparisons: Path | None = None,
    comparisons_split: str | None = None,
) -> dict[str, Any]:
    """Fine-tune ``config.model`` on the training posts' reference summaries (and the
    comparisons' human-preferred summaries); score it and the starting model on the held-out
    posts (module docstring).

    Writes ``out/policy`` (weights, tokenizer, ``training_groups.json``: the posts trained on,
    and the starting model's) and ``out/sft_metrics.json``; returns the metrics:
    ``held_out`` {``start``, ``trained``} figures (``held_out_figures`` plus ``loss``, nats per
    summary token), ``loss_history`` (training loss every ``logging_steps`` steps), counts of
    the data, settings and ``train_seconds``. Raises InputError or ModelError before training on
    a bad request."""
    from datasets import Dataset

    from labelbench.data.select import sample
    from rlaif.evaluate import load_policy

    examples, held_out, counts = sft_examples(posts, data, comparisons, comparisons_split)
    if config.limit is not None and len(examples) > config.limit:
        import random

        examples = random.Random(config.seed).sample(examples, config.limit)
    held_out = sample(held_out, config.eval_limit, config.seed)
    check_writable_dir(out, "output directory")
    start_groups = model_groups(config.model)  # a bad record fails before training
    loaded = load_policy(config.model)
    tokenizer = loaded.tokenizer
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    cut = config.max_prompt_tokens
    train_set = Dataset.from_dict(
        {
            "prompt": truncate_prompts([e["prompt"] for e in examples], tokenizer, cut),
            "completion": [e["completion"] for e in examples],
        }
    )
    held_prompts = truncate_prompts(
        [policy_prompt(i.task, i.context, i.meta) for i in held_out], tokenizer, cut
    )
    held_refs = [i.reference for i in held_out]
    eval_set = Dataset.from_dict(
        {"prompt": held_prompts, "completion": [policy_response(r) for r in held_refs]}
    )
    args = CPUFriendlySFTConfig(
        output_dir=str(out),
        num_train_epochs=config.epochs,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        max_length=config.max_length,
        completion_only_loss=True,
        seed=config.seed,
        bf16=config.precision == "bfloat16",
        logging_steps=config.logging_steps,
    )
    from trl import SFTTrainer

    trainer = SFTTrainer(
        model=loaded.model.train(),
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        processing_class=tokenizer,
    )
    for part, rows in (("training", trainer.train_dataset), ("held-out", trainer.eval_dataset)):
        if rows is not None and len(rows) == 0:  # TRL drops examples with no summary token left
            raise InputError(
                posts,
                f"no {part} example left: every prompt fills --max-length {config.max_length} "
                "(raise --max-length or lower --max-prompt-tokens)",
            )
    figures = dict(
        response_length=config.response_length, max_prompt_tokens=cut or config.max_length
    )
    start = held_out_figures(trainer.model, tokenizer, held_prompts, held_refs, **figures)
    start["loss"] = trainer.evaluate()["eval_loss"]
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    trained = held_out_figures(trainer.model, tokenizer, held_prompts, held_refs, **figures)
    trained["loss"] = trainer.evaluate()["eval_loss"]
    policy_dir = out / "policy"
    trainer.save_model(str(policy_dir))
    tokenizer.save_pretrained(str(policy_dir))
    groups = TrainingGroups.of(
        "sft", [e["group_id"] for e in examples], [p for p in (posts, comparisons) if p]
    ).including(start_groups, config.model)
    metrics: dict[str, Any] = {
        "posts": str(posts),
        "comparisons": str(comparisons) if comparisons else None,
        "comparisons_split": comparisons_split,
        **{f"data_{key}": value for key, value in asdict(data).items()},
        **asdict(config),
        **counts,
        "train_examples": len(examples),
        "train_seconds": round(seconds, 1),
        "held_out": {"start": start, "trained": trained},
        "train_loss": next(
            (log["train_loss"] for log in trainer.state.log_history if "train_loss" in log), None
        ),
        "loss_history": [log["loss"] for log in trainer.state.log_history if "loss" in log],
        "training_groups": {"n": len(groups.groups), "complete": groups.complete},
    }
    if trainer.accelerator.is_main_process:
        groups.save(policy_dir)
        (out / "sft_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", "utf-8")
    return metrics


def summary_lines(metrics: dict[str, Any]) -> list[str]:
    """The held-out figures of an ``rlaif sft`` run for the terminal: start -> trained."""

    def show(value: Any, digits: int = 3) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    start, trained = metrics["held_out"]["start"], metrics["held_out"]["trained"]
    lines = [f"held-out posts: {trained['n']} (trained on {metrics['train_examples']} examples)"]
    for key, name in (
        ("rouge_l", "ROUGE-L F1"),
        ("mean_words", "mean words"),
        ("eos_rate", "EOS rate"),
        ("loss", "loss/token"),
    ):
        lines.append(f"{name}: {show(start[key])} -> {show(trained[key])}")
    return lines
