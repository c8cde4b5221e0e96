"""Reward-model training with TRL's ``RewardTrainer``, extended to soft (probabilistic) labels.

With a soft label ``p = P(chosen preferred)`` the loss is the cross-entropy between ``p`` and the
model's pairwise probability ``sigmoid(r_chosen - r_rejected)``:

    -[p log sigmoid(d) + (1 - p) log sigmoid(-d)] = -log sigmoid(d) + (1 - p) d,   d = r_c - r_r

The right-hand side is TRL's Bradley-Terry loss plus ``(1 - p) d``, so the trainer keeps TRL's loss,
metrics and logging and adds that one term. With ``p = 1`` it is exactly Bradley-Terry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from trl import RewardTrainer
from trl.trainer.reward_trainer import DataCollatorForPreference

from labelbench.errors import InputError, LabelbenchError
from rlaif.reward_config import SoftRewardConfig


def soft_preference_loss(
    rewards_chosen: torch.Tensor, rewards_rejected: torch.Tensor, pref_chosen: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy between ``pref_chosen`` and ``sigmoid(rewards_chosen - rewards_rejected)``

    Equals the Bradley-Terry loss ``-log sigmoid(r_c - r_r)`` when ``pref_chosen`` is 1."""
    return F.binary_cross_entropy_with_logits(rewards_chosen - rewards_rejected, pref_chosen)


@dataclass
class SoftPreferenceCollator(DataCollatorForPreference):
    """TRL's preference collator that also carries the soft label column as a float tensor."""

    soft_label_column: str = "soft_label"

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = super().torch_call(examples)
        if self.soft_label_column in examples[0]:
            batch[self.soft_label_column] = torch.tensor(
                [example[self.soft_label_column] for example in examples], dtype=torch.float
            )
        return batch


class NonFiniteLossError(LabelbenchError):
    """Training produced a NaN or infinite loss; nothing was saved."""


class SoftLabelRewardTrainer(RewardTrainer):
    """``RewardTrainer`` whose loss is the soft-label cross-entropy when a batch has soft labels."""

    args: SoftRewardConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if kwargs.get("data_collator") is None:
            self.data_collator = SoftPreferenceCollator(
                pad_token_id=self.processing_class.pad_token_id,
                pad_to_multiple_of=self.args.pad_to_multiple_of,
                soft_label_column=self._soft_column,
            )

    @property
    def _soft_column(self) -> str:
        return getattr(self.args, "soft_label_column", "soft_label")

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if self._soft_column not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, self._soft_column]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        pref_chosen = inputs.pop(self._soft_column, None)
        if not getattr(self.args, "use_soft_labels", True):
            pref_chosen = None
        if pref_chosen is not None and "margin" in inputs:
            raise InputError("train dataset", "use either soft labels or margins, not both")
        loss, outputs = super().compute_loss(
            model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch
        )
        if pref_chosen is not None:
            rewards_chosen, rewards_rejected = torch.chunk(outputs.logits.squeeze(-1), chunks=2)
            margin = rewards_chosen - rewards_rejected
            loss = loss + ((1.0 - pref_chosen.to(margin.dtype)) * margin).mean()
        if model.training and not torch.isfinite(loss.detach()).all():
            raise NonFiniteLossError(
                f"reward training stopped at step {self.state.global_step + 1}: the loss is "
                f"{loss.detach().float().mean().item()}; no weights were saved (check the labels, "
                "or lower the learning rate)"
            )
        return (loss, outputs) if return_outputs else loss


@torch.no_grad()
def reward_scores(
    model: torch.nn.Module, tokenizer: Any, texts: Sequence[str], batch_size: int = 16
) -> torch.Tensor:
    """The reward model's scalar score for each full text (prompt + response), EOS appended."""
    eos = tokenizer.eos_token or ""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    scores = []
    for start in range(0, len(texts), batch_size):
        chunk = [
            text if text.endswith(eos) else text + eos for text in texts[start : start + batch_size]
        ]
        encoded = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
        encoded = {key: value.to(device) for key, value in encoded.items()}
        scores.append(model(**encoded).logits.squeeze(-1).float().cpu())
    model.train(was_training)
    return torch.cat(scores) if scores else torch.empty(0)


def pairwise_accuracy(
    model: torch.nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    chosen: Sequence[str],
    rejected: Sequence[str],
    groups: Sequence[str] | None = None,
    batch_size: int = 16,
) -> dict[str, dict[str, float]]:
    """Share of pairs whose ``chosen`` the reward model scores over ``rejected``; all and by group.

    Returns ``{"all": {"accuracy": ..., "n": ...}, "<group>": {...}, ...}``.
    """
    chosen_scores = reward_scores(
        model, tokenizer, [p + c for p, c in zip(prompts, chosen, strict=True)], batch_size
    )
    rejected_scores = reward_scores(
        model, tokenizer, [p + r for p, r in zip(prompts, rejected, strict=True)], batch_size
    )
    return accuracy_by_group(pairwise_credit(chosen_scores, rejected_scores), groups)


def pairwise_credit(chosen_scores: torch.Tensor, rejected_scores: torch.Tensor) -> list[float]:
    """Per pair: 1 when the chosen response scores higher, ½ on a tie, 0 otherwise (the credit
    ``held_out_figures`` and the benchmark's accuracy give a tie). Shapes ``[pairs]``."""
    wins = (chosen_scores > rejected_scores).float()
    return (wins + 0.5 * (chosen_scores == rejected_scores).float()).tolist()


def accuracy_by_group(
    correct: Sequence[float], groups: Sequence[str] | None = None
) -> dict[str, dict[str, float]]:
    """Mean credit of the pairs (``correct``: 1, ½ for a tie, 0; booleans work), all and by
    group: ``{"all": {"accuracy", "n"}, ...}``."""
    by_group: dict[str, list[float]] = defaultdict(list)
    for index, hit in enumerate(correct):
        by_group["all"].append(hit)
        if groups is not None:
            by_group[str(groups[index])].append(hit)
    return {
        name: {"accuracy": sum(hits) / len(hits), "n": float(len(hits))}
        for name, hits in by_group.items()
    }
