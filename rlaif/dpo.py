"""``rlaif dpo``: Direct Preference Optimisation of a policy with TRL's ``DPOTrainer``, on AI
labels (hard, soft or confidence-filtered), human labels, or both (human where a pair has one).

Soft labels. With ``p`` = P(chosen preferred) (``soft_label``: the labeler's calibrated
probability, or the share of human annotators) and the usual DPO margin

    Δ = [log π(y_c|x) - log π_ref(y_c|x)] - [log π(y_r|x) - log π_ref(y_r|x)]

(log-probabilities summed over the response tokens), each row's loss is the cross-entropy
between ``p`` and the policy's implicit preference ``σ(β·Δ)``:

    -[p · log σ(β·Δ) + (1 - p) · log σ(-β·Δ)]  =  -log σ(β·Δ) + (1 - p) · β·Δ

(since log σ(x) - log σ(-x) = x). The right-hand side is TRL's ``sigmoid`` (DPO) loss plus
``(1 - p)·β·Δ``, so ``SoftLabelDPOTrainer`` keeps TRL's loss, metrics and logging and adds that
one term per row, reading Δ from the same forward passes TRL's loss was computed from. With
``p = 1`` it is exactly DPO. TRL's own ``label_smoothing`` is one number for every row (cDPO
with the ``sigmoid`` loss in older TRL, rDPO's flip rate with ``robust``), which cannot carry a
per-pair probability: ``--loss robust --label-smoothing E`` is offered for hard labels.

Hard labels train on ``chosen`` over ``rejected`` (``--hard``, or data without soft labels);
confidence-filtered pairs keep only AI labels at least ``--min-confidence`` sure.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from accelerate.utils import is_peft_model
from trl import DPOTrainer
from trl.trainer.dpo_trainer import DataCollatorForPreference

from labelbench.errors import InputError, check_writable_dir
from rlaif.data import DataOptions, load_preferences
from rlaif.dpo_config import DPORunConfig, SoftDPOConfig
from rlaif.groups import TrainingGroups, model_groups
from rlaif.preferences import SOFT_LABEL
from rlaif.reward_trainer import NonFiniteLossError
from rlaif.training_labels import (
    LabelOptions,
    choose_labels,
    label_source_shares,
    write_training_pairs,
)


def soft_dpo_loss(delta: torch.Tensor, pref_chosen: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-row soft-label DPO loss ``-[p log σ(βΔ) + (1-p) log σ(-βΔ)]``.

    ``delta``: the DPO margins Δ, shape [pairs] (nats); ``pref_chosen``: p, shape [pairs], in
    [0, 1]; ``beta``: DPO's β. Returns shape [pairs]; with p = 1 it is DPO's ``-log σ(βΔ)``."""
    logits = beta * delta
    pref = pref_chosen.to(logits.dtype)
    return -(pref * F.logsigmoid(logits) + (1.0 - pref) * F.logsigmoid(-logits))


@dataclass
class SoftPreferenceCollator(DataCollatorForPreference):
    """TRL's DPO collator that also carries the soft label column as a float tensor [pairs]."""

    soft_label_column: str = SOFT_LABEL

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = super().torch_call(examples)
        if self.soft_label_column in examples[0]:
            batch[self.soft_label_column] = torch.tensor(
                [float(example[self.soft_label_column]) for example in examples],
                dtype=torch.float,
            )
        return batch


class SoftLabelDPOTrainer(DPOTrainer):
    """``DPOTrainer`` whose loss is the per-row soft-label cross-entropy (module docstring) when
    a batch has soft labels and ``args.use_soft_labels``; TRL's loss otherwise. A NaN or
    infinite training loss raises ``NonFiniteLossError``.

    Soft labels need TRL's defaults for the margin: ``loss_type=["sigmoid"]``, no ``ld_alpha``,
    the reverse-KL divergence, no WPO weighting and no PEFT adapter (ValueError otherwise)."""

    args: SoftDPOConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if kwargs.get("data_collator") is None and isinstance(
            self.data_collator, DataCollatorForPreference
        ):
            old = self.data_collator
            self.data_collator = SoftPreferenceCollator(
                pad_token_id=old.pad_token_id,
                max_length=old.max_length,
                truncation_mode=old.truncation_mode,
                pad_to_multiple_of=old.pad_to_multiple_of,
                soft_label_column=self._soft_column,
            )
        if self._soft and self._soft_column in (self.train_dataset.column_names or []):
            unsupported = []
            if list(self.loss_types) != ["sigmoid"]:
                unsupported.append(f"loss_type={self.loss_types}")
            if self.ld_alpha is not None:
                unsupported.append("ld_alpha")
            if self.f_divergence_type != "reverse_kl":
                unsupported.append(f"f_divergence_type={self.f_divergence_type}")
            if self.use_weighting:
                unsupported.append("use_weighting")
            if is_peft_model(self.model):
                unsupported.append("a PEFT adapter")
            if unsupported:
                raise ValueError(
                    "soft labels need the sigmoid DPO loss with TRL's default margin; not "
                    + ", ".join(unsupported)
                    + " (train on hard labels instead)"
                )

    @property
    def _soft_column(self) -> str:
        return getattr(self.args, "soft_label_column", SOFT_LABEL)

    @property
    def _soft(self) -> bool:
        return bool(getattr(self.args, "use_soft_labels", True))

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if self._soft_column not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, self._soft_column]

    def _compute_loss(self, model, inputs, return_outputs):
        pref = inputs.pop(self._soft_column, None)
        if pref is None or not self._soft:
            result = super()._compute_loss(model, inputs, return_outputs)
            self._check_finite(model, result[0] if return_outputs else result)
            return result
        captured: dict[str, Any] = {}

        def keep(name: str):
            def hook(module, args, output):
                captured.setdefault(name, output)

            return hook

        hooks = [self.accelerator.unwrap_model(model).register_forward_hook(keep("policy"))]
        if not self.precompute_ref_logps:
            reference = self.accelerator.unwrap_model(self.ref_model)
            hooks.append(reference.register_forward_hook(keep("reference")))
        try:
            result = super()._compute_loss(model, inputs, return_outputs)
        finally:
            for handle in hooks:
                handle.remove()
        loss = result[0] if return_outputs else result
        delta = self.margins(captured, inputs)
        loss = loss + ((1.0 - pref.to(delta.dtype)) * self.beta * delta).mean()
        self._check_finite(model, loss)
        return (loss, result[1]) if return_outputs else loss

    def margins(self, captured: dict[str, Any], inputs: dict[str, Any]) -> torch.Tensor:
        """The DPO margins Δ [pairs] of a batch, from the policy's (and, without precomputed
        reference log-probabilities, the reference's) forward outputs of TRL's loss: the
        completion tokens' log-probabilities summed, as TRL sums them."""
        seq_len = inputs["completion_mask"][..., 1:].size(1)
        logps = captured["policy"].log_probs[:, -seq_len:].sum(dim=1)
        chosen, rejected = logps.chunk(2, dim=0)
        if self.precompute_ref_logps:
            ref_chosen, ref_rejected = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:
            ref = captured["reference"].log_probs[:, -seq_len:].sum(dim=1)
            ref_chosen, ref_rejected = ref.chunk(2, dim=0)
        ref_chosen = ref_chosen.to(chosen.device, chosen.dtype)
        ref_rejected = ref_rejected.to(chosen.device, chosen.dtype)
        return (chosen - ref_chosen) - (rejected - ref_rejected)

    def _check_finite(self, model, loss: torch.Tensor) -> None:
        if model.training and not torch.isfinite(loss.detach()).all():
            raise NonFiniteLossError(
                f"DPO stopped at step {self.state.global_step + 1}: the loss is "
                f"{loss.detach().float().mean().item()}; no weights were saved (check the labels, "
                "or lower the learning rate)"
            )


def run_dpo(
    train: Path,
    out: Path,
    config: DPORunConfig,
    labels: LabelOptions,
    data: DataOptions,
    *,
    policy: str = "smollm2-135m",
    reference: str | None = None,
) -> dict[str, Any]:
    """DPO of ``policy`` (a registry name, or a folder such as ``rlaif sft``'s ``OUT/policy``)
    against ``reference`` (default: the starting policy) on the pairs of ``train`` (a dataset of
    ``rlaif label`` or human comparisons), with the labels ``labels`` chooses.

    Writes ``out/policy`` (weights, tokenizer, ``training_groups.json``: the pairs' posts and
    the starting policy's), ``out/dpo_metrics.json`` (settings, each label source's share,
    loss curve, time) and ``out/training_pairs.jsonl`` (each pair's label source); returns the
    metrics. Raises InputError or ModelError before any training on a bad request,
    NonFiniteLossError when the loss stops being finite."""
    from rlaif.evaluate import load_policy
    from rlaif.preferences import truncate_prompts

    raw = load_preferences(train, data)
    mode = labels.mode(SOFT_LABEL in raw.column_names)
    dataset = choose_labels(raw, labels, train, data, seed=config.seed, limit=config.limit)
    soft = SOFT_LABEL in dataset.column_names and not labels.hard
    if soft and config.loss != "sigmoid":
        raise InputError(
            "--loss",
            f"{config.loss} takes hard labels; these pairs have soft ones (add --hard, or use "
            "--loss sigmoid)",
        )
    check_writable_dir(out, "output directory")
    start_groups = model_groups(policy)  # a bad record fails before training
    loaded = load_policy(policy)
    tokenizer = loaded.tokenizer
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    ref_model = None
    if reference is not None or not config.precompute_reference:
        ref = load_policy(reference or policy)
        vocab, ref_vocab = len(tokenizer), len(ref.tokenizer)
        if ref_vocab != vocab:
            raise InputError(
                "--reference",
                f"its vocabulary ({ref_vocab} tokens) is not the policy's ({vocab})",
            )
        ref_model = ref.model
    if config.max_prompt_tokens is not None:
        from datasets import Dataset

        dataset = Dataset.from_dict(
            {
                **dataset.to_dict(),
                "prompt": truncate_prompts(dataset["prompt"], tokenizer, config.max_prompt_tokens),
            }
        )
    keep = ["prompt", "chosen", "rejected"] + ([SOFT_LABEL] if soft else [])
    if config.max_length is not None:  # checked before TRL precomputes the reference's values
        lengths = [
            len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in dataset["prompt"]
        ]
        if min(lengths, default=0) >= config.max_length:
            raise InputError(
                train,
                f"no pair left to train on: every prompt fills --max-length {config.max_length}",
            )
    args = SoftDPOConfig(
        output_dir=str(out),
        num_train_epochs=config.epochs,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        beta=config.beta,
        loss_type=[config.loss],
        label_smoothing=config.label_smoothing,
        max_length=config.max_length,
        precompute_ref_log_probs=config.precompute_reference,
        seed=config.seed,
        bf16=config.precision == "bfloat16",
        logging_steps=config.logging_steps,
        use_soft_labels=soft,
    )
    trainer = SoftLabelDPOTrainer(
        model=loaded.model.train(),
        ref_model=ref_model,
        args=args,
        train_dataset=dataset.select_columns(keep),
        processing_class=tokenizer,
    )
    if len(trainer.train_dataset) == 0:
        raise InputError(
            train, f"no pair left to train on: every prompt fills --max-length {config.max_length}"
        )
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    policy_dir = out / "policy"
    trainer.save_model(str(policy_dir))
    tokenizer.save_pretrained(str(policy_dir))
    groups = TrainingGroups.of(
        "dpo", dataset["group_id"] if "group_id" in dataset.column_names else [None], [train]
    ).including(start_groups, policy)
    if trainer.accelerator.is_main_process:
        groups.save(policy_dir)
    history = trainer.state.log_history
    metrics: dict[str, Any] = {
        "train": str(train),
        "policy": str(policy),
        "reference": str(reference or policy),
        "train_pairs": len(trainer.train_dataset),
        **asdict(config),
        **{key: value for key, value in asdict(labels).items() if key != "human_labels"},
        "human_labels_file": str(labels.human_labels) if labels.human_labels else None,
        "labels": mode,
        "label_sources": label_source_shares(dataset),
        "objective": "soft-label DPO (per-row cross-entropy)" if soft else f"DPO ({config.loss})",
        "train_seconds": round(seconds, 1),
        "train_loss": next((log["train_loss"] for log in history if "train_loss" in log), None),
        "loss_history": [log["loss"] for log in history if "loss" in log],
        "reward_accuracy_history": [
            log["rewards/accuracies"] for log in history if "rewards/accuracies" in log
        ],
        "margin_history": [log["rewards/margins"] for log in history if "rewards/margins" in log],
        "training_groups": {"n": len(groups.groups), "complete": groups.complete},
    }
    if trainer.accelerator.is_main_process:
        write_training_pairs(dataset, out)
        (out / "dpo_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", "utf-8")
    return metrics
