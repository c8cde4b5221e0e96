"""Reward scoring inside rlaif (PPO rewards, evaluate's judge): a trained reward model, or a
labeler's direct 1-N score (direct RLAIF). The client-side reward functions users import into
TRL, verl or OpenRLHF are ``labelbench/rewards.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from labelbench.config import LabelerSpec
from labelbench.errors import ModelError
from labelbench.labeling.cache import LabelCache
from rlaif.reward_trainer import reward_scores


def check_reward_model_folder(path: str | Path) -> None:
    """Before anything loads: a folder whose ``config.json`` names only non-classification
    architectures (a policy, e.g. ``rlaif sft``'s or ``rlaif dpo``'s ``OUT/policy``) is not a
    reward model. Raises ModelError naming the folder and what it holds; a folder without a
    readable config is left to ``load_reward_model``."""
    import json

    config = Path(path) / "config.json"
    try:
        architectures = json.loads(config.read_text("utf-8")).get("architectures") or []
    except (OSError, ValueError, AttributeError):
        return
    if architectures and not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise ModelError(
            f"{path}: not a reward model: its config.json holds {', '.join(architectures)} (a "
            "policy?); a judge is a reward model trained with `rlaif reward`"
        )


def load_reward_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[Any, Any]:
    """A sequence-classification reward model (one output) and its tokenizer. Raises ModelError
    when the folder is not one, e.g. a causal LM, whose score head would be drawn at random."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from labelbench.models.registry import check_directory, resolve

    resolved = resolve(path)
    check_directory(resolved.path)
    try:
        model, loading = AutoModelForSequenceClassification.from_pretrained(
            resolved.path, num_labels=1, output_loading_info=True
        )
        tokenizer = AutoTokenizer.from_pretrained(resolved.path)
    except Exception as error:
        raise ModelError(
            f"{resolved.path}: not a reward model ({type(error).__name__}: {error})"
        ) from error
    missing = sorted(loading.get("missing_keys") or ())
    if missing:
        raise ModelError(
            f"{resolved.path}: not a reward model: its weights lack {', '.join(missing[:3])}, "
            "which would be drawn at random (a causal LM? train a reward model on it with "
            "`rlaif reward`)"
        )
    if model.config.num_labels != 1:
        raise ModelError(
            f"{resolved.path}: a reward model has one output, this has {model.config.num_labels}"
        )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    model.config.pad_token_id = tokenizer.pad_token_id
    return model.to(device).eval(), tokenizer


class RewardModelScorer:
    """``reward_fn`` from a reward model: its score of ``prompt + response``."""

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 16) -> None:
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size

    def __call__(self, prompts: list[str], responses: list[str]) -> torch.Tensor:
        texts = [prompt + response for prompt, response in zip(prompts, responses, strict=True)]
        return reward_scores(self.model, self.tokenizer, texts, self.batch_size)


class DirectLabelerScorer:
    """``reward_fn`` from a labeler: its expected 1..N rating of the response, scaled to [-1, 1]
    (0 when unscored), through the one direct-score reward path ``labelbench serve`` uses too
    (``Labeler.direct_rewards``); ``contexts`` maps a policy prompt to the item context the
    labeler rates the response in (default: the prompt itself)."""

    def __init__(
        self,
        labeler: LabelerSpec,
        task: str,
        variant: str | None = None,
        contexts: dict[str, str] | None = None,
        cache: LabelCache | None = None,
    ) -> None:
        from labelbench.labeling.labeler import open_labeler
        from labelbench.prompting import direct_score_request

        self.labeler = open_labeler(labeler)
        self.task, self.variant, self.cache = task, variant, cache
        self.contexts = contexts or {}
        direct_score_request(  # the templates and answer tokens are checked before training
            "check",
            "check",
            task,
            variant=variant,
            tokenizer=self.labeler.tokenizer,
            chat=bool(self.labeler.spec.chat),
        )

    def __call__(self, prompts: list[str], responses: list[str]) -> torch.Tensor:
        found = self.labeler.direct_rewards(
            [self.contexts.get(prompt, prompt) for prompt in prompts],
            responses,
            self.task,
            variant=self.variant,
            cache=self.cache,
        )
        return torch.tensor([0.0 if s is None else s for s in found.rewards], dtype=torch.float)
