"""``rlaif label``: preference data for reward-model training, labelled by an AI labeler.

The pairs are either existing comparisons or two responses per prompt sampled from the starting
policy. The output is a ``datasets.Dataset`` in TRL's preference format (``prompt``, ``chosen``,
``rejected``) with the labeler's probability that ``chosen`` is preferred in ``soft_label``.
Human labels give the same format (``human_preference_dataset``), so one reward command trains
both the RLAIF and the RLHF reward model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labelbench.aggregate import Aggregation
from labelbench.config import LabelerSpec
from labelbench.data.record import Comparison, PromptItem, content_hash
from labelbench.errors import InputError
from rlaif.preferences import (
    ai_preference_dataset,
    policy_prompt,
)


def choose_labeler(
    command: str,
    winner: Path | None,
    labeler: str | None,
    variant: str | None,
    *,
    seed: int = 0,
    required: bool = True,
    **overrides: Any,
) -> Any:
    """The labeler a command runs (``labelbench.labeling.labeler.Winner``: spec, variant, seed):
    from ``--winner winner.json`` (the labeler exactly as benchmarked, dtype and chat mode
    included, and the run's seed) or from ``--labeler`` and ``--variant`` (``seed``).
    ``overrides`` (e.g. ``chat``, ``max_tokens``; None values ignored) replace spec fields.
    None when nothing is named and not ``required``. InputError on a bad or mixed request.
    The winner's warning (it loses to a trivial baseline) is the caller's to print, once its
    inputs are checked (``labelbench.labeling.labeler.warn_if_weak``)."""
    from labelbench.labeling.labeler import Winner, chosen_variant, labeler_spec, load_winner
    from rlaif.data import existing

    given = {key: value for key, value in overrides.items() if value is not None}
    if winner is not None and (labeler or variant):
        raise InputError(command, "give --winner winner.json, or --labeler and --variant, not both")
    if winner is not None:
        chosen = load_winner(existing(winner, "winner file"))
        chosen = dataclasses.replace(chosen, labeler=chosen.labeler.model_copy(update=given))
    elif labeler and variant:
        chosen = Winner(labeler_spec("--labeler", name=labeler, **given), variant, seed)
    elif labeler or variant or required:
        raise InputError(
            command, "name the labeler: --winner winner.json, or --labeler and --variant"
        )
    else:
        return None
    chosen_variant(chosen.variant, winner)
    return chosen


def sample_pairs(
    prompts: Sequence[PromptItem],
    policy: Any,
    tokenizer: Any,
    *,
    max_new_tokens: int = 48,
    temperature: float = 0.7,
    max_prompt_tokens: int = 512,
    batch_size: int = 8,
    seed: int = 0,
) -> list[Comparison]:
    """Two sampled responses per prompt from ``policy``, as unlabelled comparisons."""
    texts = [policy_prompt(p.task, p.context, p.meta) for p in prompts]
    responses = generate(
        policy,
        tokenizer,
        [t for t in texts for _ in range(2)],
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        max_prompt_tokens=max_prompt_tokens,
        batch_size=batch_size,
        seed=seed,
    )
    pairs = []
    for index, item in enumerate(prompts):
        first, second = responses[2 * index], responses[2 * index + 1]
        if not first.strip() or not second.strip() or first.strip() == second.strip():
            continue
        pairs.append(
            Comparison(
                id=f"{item.id}-{content_hash(first, second, length=8)}",
                group_id=item.group_id,
                task=item.task,
                context=item.context,
                response_a=first.strip(),
                response_b=second.strip(),
                meta=dict(item.meta),
            )
        )
    return pairs


def generate(
    policy: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    temperature: float,
    max_prompt_tokens: int = 512,
    batch_size: int = 8,
    seed: int = 0,
    progress: bool = True,
) -> list[str]:
    """Sampled continuations (text up to EOS), seeded, batched, with a progress bar."""
    texts, _ = sample_responses(
        policy,
        tokenizer,
        prompts,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        max_prompt_tokens=max_prompt_tokens,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
    )
    return texts


def sample_responses(
    policy: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    temperature: float,
    max_prompt_tokens: int = 512,
    batch_size: int = 8,
    seed: int = 0,
    progress: bool = True,
) -> tuple[list[str], list[bool]]:
    """Continuations of ``prompts`` (text up to EOS) and, for each, whether it ended with EOS
    within ``max_new_tokens`` tokens. ``temperature`` 0 decodes greedily; otherwise sampling is
    seeded. Prompts keep their last ``max_prompt_tokens`` tokens."""
    import torch
    from rich.progress import Progress
    from transformers import GenerationConfig

    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side, tokenizer.truncation_side = "left", "left"
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=temperature > 0,
        temperature=temperature if temperature > 0 else None,
        top_k=0 if temperature > 0 else None,
        top_p=1.0 if temperature > 0 else None,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    device = next(policy.parameters()).device
    outputs: list[str] = []
    ended: list[bool] = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("sampling responses", total=len(prompts))
        for start in range(0, len(prompts), batch_size):
            chunk = list(prompts[start : start + batch_size])
            torch.manual_seed(seed * 1_000_003 + start)
            encoded = tokenizer(
                chunk,
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=max_prompt_tokens,
                add_special_tokens=False,
            ).to(device)
            with torch.no_grad():
                out = policy.generate(**encoded, generation_config=config)
            new = out[:, encoded["input_ids"].shape[1] :]
            outputs += tokenizer.batch_decode(new, skip_special_tokens=True)
            ended += (new == tokenizer.eos_token_id).any(dim=1).tolist()
            bar.update(task, advance=len(chunk))
    return outputs, ended


def ai_preferences(
    comparisons: Sequence[Comparison],
    labeler: LabelerSpec,
    variant: str,
    *,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
    aggregation: Aggregation | None = None,
) -> tuple[list[float | None], str]:
    """The labeler's P(A preferred) for each comparison (None: unscored), and its identity.

    The benchmark's labelling path (``labelbench.labeling.labeler``) through the label cache in
    ``cache_dir`` (default: ``$LABELBENCH_CACHE_DIR``): the same spec, variant and seed give the
    labels ``labelbench run`` gave the same items. ``aggregation`` (``winner.json``'s) turns
    both orders into one soft label (``labelbench.labeling.labeler.soft_labels``; None: the
    mean of the orders' P(A)).
    """
    from labelbench.labeling import LabelCache, default_cache_dir
    from labelbench.labeling.labeler import open_labeler
    from labelbench.prompting.planner import check_tasks

    check_tasks(comparisons, variant)
    opened = open_labeler(labeler)
    try:
        with LabelCache(cache_dir or default_cache_dir()) as cache:
            p_a = opened.preferences(
                comparisons,
                variant,
                cache=cache,
                seed=seed,
                progress=progress,
                aggregation=aggregation,
                require_scores=True,
            )
    finally:
        opened.close()
    return p_a, opened.identity


def label_with_ai(
    comparisons: Sequence[Comparison], labeler: LabelerSpec, variant: str, **options: Any
) -> Any:
    """The preference dataset of ``comparisons`` labelled by a labeler and prompt variant."""
    p_a, identity = ai_preferences(comparisons, labeler, variant, **options)
    dataset = ai_preference_dataset(comparisons, p_a)
    method = options.get("aggregation")
    return (
        dataset.add_column("labeler", [identity] * len(dataset))
        .add_column("variant", [variant] * len(dataset))
        .add_column("aggregation", [method.method if method else "prob-mean"] * len(dataset))
    )


# ------------------------------------------------------------------------- which labels to train on
