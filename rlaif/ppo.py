"""``rlaif ppo``: one PPO run from prompts and a reward (a reward model, or a labeler's direct
score), with its inputs checked before any model is trained."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labelbench.errors import InputError, check_writable_dir
from labelbench.models.device import training_device
from rlaif.data import DataOptions, content_sha256, existing, load_prompt_items
from rlaif.groups import TrainingGroups, model_groups
from rlaif.ppo_config import PPOConfig

if TYPE_CHECKING:
    from labelbench.labeling.labeler import Winner


def run_ppo(
    prompts: Path,
    out: Path,
    config: PPOConfig,
    data: DataOptions,
    *,
    policy: str = "smollm2-135m",
    reward_model: Path | None = None,
    labeler: Winner | None = None,
    limit: int | None = None,
    resume: bool = False,
) -> list[dict[str, float]]:
    """Train ``policy`` on ``prompts``; checkpoints, ``log.jsonl``, ``ppo_config.json`` and the
    final policy go to ``out`` (``out/policy/training_groups.json``: the prompts' posts, the
    starting policy's and the reward model's). Returns the per-update statistics. Raises
    InputError/ModelError before training on a bad request. ``labeler`` (direct RLAIF: its
    1-N score is the reward) comes from ``rlaif.label.choose_labeler``."""
    from labelbench.labeling.labeler import warn_if_weak
    from labelbench.models.registry import check_directory
    from labelbench.prompting.planner import check_tasks
    from rlaif.evaluate import load_policy
    from rlaif.ppo_trainer import PPOTrainer, ValueModel
    from rlaif.preferences import policy_prompt, truncate_prompts

    if (reward_model is None) == (labeler is None):
        raise InputError(
            "rlaif ppo",
            "give exactly one reward: --reward-model DIR, or --winner winner.json or "
            "--labeler SPEC --variant NAME (direct RLAIF)",
        )
    if config.value_from_reward_model and reward_model is None:
        raise InputError("--value-from-reward-model", "needs --reward-model")
    if resume and not any(out.glob("checkpoint-*/ppo_state.json")):
        raise InputError(out, "--resume: no checkpoint to resume from")
    if not resume and (out / "log.jsonl").exists():
        raise InputError(
            out, "holds a PPO run already; continue it with --resume or use a new --out"
        )
    settings: dict[str, Any] = {
        "policy": policy,
        "reward_model": str(reward_model) if reward_model else None,
        "labeler": labeler.labeler.model_dump(mode="json", exclude_none=True) if labeler else None,
        "variant": labeler.variant if labeler else None,
        "prompts": str(prompts),
        "prompts_sha256": content_sha256(prompts),  # None when missing: loading says so
        "limit": limit,
        **{f"data_{key}": value for key, value in asdict(data).items()},
        **config.to_dict(),
    }
    if resume:
        _check_resume(out / "ppo_config.json", settings)
    if reward_model is not None:
        # a bad reward model is found before the policy is loaded
        check_directory(existing(reward_model, "reward model directory"))
    check_writable_dir(out, "output directory")
    items = load_prompt_items(prompts, data, limit=limit)
    if labeler is not None:
        check_tasks(items, labeler.variant)
    if len(items) < config.batch_size:
        print(
            f"note: {len(items)} prompt(s) for a batch of {config.batch_size}: every batch "
            "repeats prompts (lower --batch-size, or give more prompts or a higher --limit)",
            file=sys.stderr,
        )
    # the posts the starting policy and the reward model learnt from (a bad record fails here)
    inherited = [(model_groups(policy), policy)]
    if reward_model is not None:
        inherited.append((TrainingGroups.load(reward_model), reward_model))
    loaded = load_policy(policy)
    texts = truncate_prompts(
        [policy_prompt(i.task, i.context, i.meta) for i in items],
        loaded.tokenizer,
        config.max_prompt_tokens,
    )
    reward_fn = _reward_fn(reward_model, labeler, items, texts)
    value_model = None
    if config.value_from_reward_model:
        value_model = ValueModel.from_reward_model(reward_fn.model, loaded.model)
    trainer = PPOTrainer(
        config,
        loaded.model,
        loaded.tokenizer,
        reward_fn,
        texts,
        output_dir=out,
        value_model=value_model,
    )
    out.mkdir(parents=True, exist_ok=True)
    settings["n_prompts"] = len(texts)
    (out / "ppo_config.json").write_text(json.dumps(settings, indent=2) + "\n", "utf-8")
    warn_if_weak(labeler)
    history = trainer.train(resume=resume)
    if (out / "policy").is_dir() and trainer.accelerator.is_main_process:
        groups = TrainingGroups.of("ppo", [i.group_id for i in items], [prompts])
        for record, source in inherited:
            groups = groups.including(record, source)
        groups.save(out / "policy")
    return history


RESUME_MAY_CHANGE = ("total_updates", "save_every", "progress", "prompts", "n_prompts")
"""Settings a resumed run may change: how long it runs, how it reports, and how the prompts
file is spelled (a path relative to another folder); its content (``prompts_sha256``) may not."""


def _check_resume(saved_file: Path, settings: dict[str, Any]) -> None:
    """``--resume`` continues the run as it was set up: a setting that differs from the run's
    ``ppo_config.json`` (other than ``RESUME_MAY_CHANGE``) is an InputError naming it."""
    if not saved_file.exists():
        return
    try:
        saved = json.loads(saved_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(saved_file, f"cannot read the run's settings: {error}") from None
    reached = max(
        (
            int(p.parent.name.split("-")[1])
            for p in saved_file.parent.glob("checkpoint-*/ppo_state.json")
        ),
        default=0,
    )
    if settings["total_updates"] < reached:
        raise InputError(
            "--total-updates",
            f"this run has reached update {reached} (checkpoint-{reached} in "
            f"{saved_file.parent}); give at least {reached}, or start a new --out",
        )
    for key, value in settings.items():
        if key in RESUME_MAY_CHANGE or key not in saved:
            continue
        was = saved[key]
        if key == "prompts_sha256":
            if was and value and was != value:
                raise InputError(
                    saved_file,
                    f"--resume: the prompts file {settings['prompts']} holds other prompts than "
                    f"in this run (sha256 {value[:12]}, not {was[:12]}); resume with the run's "
                    "prompts or start a new --out",
                )
            continue
        if key in ("policy", "reward_model") and was and value:
            was, value = os.path.normpath(was), os.path.normpath(value)
        if was != value:
            raise InputError(
                saved_file,
                f"--resume: {key} is {saved[key]!r} in this run, not {settings[key]!r}; "
                "resume with the run's settings or start a new --out",
            )


def _reward_fn(reward_model: Path | None, labeler: Winner | None, items: list, texts: list) -> Any:
    if reward_model is not None:
        from rlaif.reward_scoring import RewardModelScorer, load_reward_model

        return RewardModelScorer(*load_reward_model(reward_model, training_device()))
    from rlaif.reward_scoring import DirectLabelerScorer

    tasks = {i.task for i in items}
    if len(tasks) != 1:
        raise InputError("--prompts", f"direct scoring needs one task, found {sorted(tasks)}")
    contexts = {text: item.context for text, item in zip(texts, items, strict=True)}
    spec = labeler.labeler.model_copy(update={"device": str(training_device())})
    return DirectLabelerScorer(spec, tasks.pop(), labeler.variant, contexts)
