"""PPO for language models, read top to bottom: the trainer here, its tensor math in
``rlaif.ppo_math`` (KL penalty, GAE, whitening) and its models in ``rlaif.ppo_models``
(chunked log-probabilities, the value model).

One update:
  1. sample a response for each prompt of a batch from the policy;
  2. score it: the reward function's score at the last response token (minus a penalty when the
     response never emits EOS) and, on every token, ``-kl_coef`` times an estimate of
     ``KL(pi || pi_ref)`` (``kl_estimator``: k1 ``log pi - log pi_ref``, or k3);
  3. estimate advantages with GAE from the value model; whiten them;
  4. for ``ppo_epochs`` passes over shuffled minibatches, minimise the clipped policy loss plus
     ``vf_coef`` times the clipped value loss, with gradient clipping; with
     ``early_stop_approx_kl``, stop the passes once the policy has moved that far from the one
     that sampled.

The policy and the value model are trained together through ``accelerate``, so the same code
runs on one CPU or several GPUs. The value model is a copy of the policy's backbone with a zero
scalar head, or the reward model (``value_from_reward_model``). The reference policy is a frozen
copy of the starting policy. Log-probabilities are computed from hidden states a chunk of tokens
at a time (``response_logprobs``), so no [batch, response, vocabulary] tensor is ever built;
``precision="bfloat16"`` runs the forward passes under bfloat16 autocast.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from labelbench.errors import InputError
from rlaif.ppo_config import PPOConfig
from rlaif.ppo_math import (
    KLController,
    gae,
    kl_penalty_estimate,
    masked_mean,
    masked_whiten,
    position_ids_for,
    response_mask_and_eos,
    selective_logprobs,
    token_entropy,
)
from rlaif.ppo_models import (
    PolicyAndValue,
    ValueModel,
    check_policy,
    disable_dropout,
    reference_logprobs,
    response_logprobs,
    supports_hidden_state_logits,
)

__all__ = [
    "KLController",
    "PPOTrainer",
    "PolicyAndValue",
    "RewardFn",
    "Rollout",
    "ValueModel",
    "check_policy",
    "gae",
    "kl_penalty_estimate",
    "masked_mean",
    "masked_whiten",
    "position_ids_for",
    "reference_logprobs",
    "response_logprobs",
    "response_mask_and_eos",
    "selective_logprobs",
    "supports_hidden_state_logits",
    "token_entropy",
]
"""The trainer, and the math and models it is made of (imported from here by ``rlaif.ppo``,
``rlaif.evaluate``, ``bench/ppo.py`` and the tests)."""

RewardFn = Callable[[list[str], list[str]], torch.Tensor | Sequence[float]]
"""``reward_fn(prompts, responses)``: one score per (prompt, response text) pair."""

# ---------------------------------------------------------------------------------------------
# Rollouts: sample, score, shape the reward, estimate advantages (``rlaif.ppo_math``).


@dataclass
class Rollout:
    """One batch of sampled responses with what PPO's update reads (``PPOTrainer.rollout``)."""

    query_response: torch.Tensor  # [B, P + R] left-padded prompt, then response, then padding
    attention_mask: torch.Tensor  # [B, P + R]
    response_mask: torch.Tensor  # [B, R] float, 1 up to and including the first EOS
    logprobs: torch.Tensor  # [B, R] under the policy that sampled
    values: torch.Tensor  # [B, R]
    advantages: torch.Tensor  # [B, R]
    returns: torch.Tensor  # [B, R]
    context_length: int


# ---------------------------------------------------------------------------------------------
# The trainer.


class PPOTrainer:
    """Trains ``policy`` on ``prompts`` to maximise ``reward_fn`` with a KL penalty to the start."""

    def __init__(
        self,
        config: PPOConfig,
        policy: nn.Module,
        tokenizer: Any,
        reward_fn: RewardFn,
        prompts: Sequence[str],
        output_dir: str | Path | None = None,
        accelerator: Any = None,
        value_model: ValueModel | None = None,
    ) -> None:
        """``value_model``: the value model to train (default ``ValueModel.from_policy``);
        ``accelerator``: an ``accelerate.Accelerator`` (default: a new one; it picks the device).
        Raises ModelError for a policy that cannot end a response, InputError without prompts."""
        from accelerate import Accelerator

        check_policy(policy, tokenizer)
        if not prompts:
            raise InputError("prompts", "no prompts to train on")
        self.config = config
        self.tokenizer = tokenizer
        self.reward_fn = reward_fn
        self.prompts = list(prompts)
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.accelerator = accelerator or Accelerator()
        torch.manual_seed(config.seed)

        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        tokenizer.truncation_side = "left"

        disable_dropout(policy)
        self.ref_policy = copy.deepcopy(policy).eval().requires_grad_(False)
        model = PolicyAndValue(policy, value_model or ValueModel.from_policy(policy))
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, eps=1e-5)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.ref_policy.to(self.accelerator.device)
        self.kl = KLController(
            config.kl_coef, config.adaptive_kl, config.target_kl, config.kl_horizon
        )
        self.update = 0

    def autocast(self) -> Any:
        """bfloat16 autocast on the accelerator's device when ``precision`` asks for it."""
        return torch.autocast(
            device_type=self.accelerator.device.type,
            dtype=torch.bfloat16,
            enabled=self.config.precision == "bfloat16",
        )

    # -- data ---------------------------------------------------------------------------------

    def prompt_batch(self, update: int) -> list[str]:
        """This process's prompts for ``update``: a seeded reshuffle each pass over the prompts."""
        accelerator, size = self.accelerator, self.config.batch_size
        global_size = size * accelerator.num_processes
        per_pass = max(1, len(self.prompts) // global_size)
        generator = torch.Generator().manual_seed(self.config.seed * 100003 + update // per_pass)
        order = torch.randperm(len(self.prompts), generator=generator).tolist()
        order = order * math.ceil(global_size / len(order))
        start = (update % per_pass) * global_size + accelerator.process_index * size
        return [self.prompts[i] for i in order[start : start + size]]

    # -- rollout ------------------------------------------------------------------------------

    @torch.no_grad()
    def rollout(self, prompts: list[str]) -> tuple[Rollout, dict[str, float]]:
        """Sample a response to each prompt, score it, shape the rewards with the KL penalty and
        estimate advantages; returns the rollout and its statistics."""
        config, device = self.config, self.accelerator.device
        from transformers import GenerationConfig

        query = self.tokenizer(
            prompts,
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=config.max_prompt_tokens,
            add_special_tokens=False,
        ).to(device)
        context_length = query["input_ids"].shape[1]
        unwrapped = self.accelerator.unwrap_model(self.model)
        generation = GenerationConfig(
            max_new_tokens=config.response_length,
            do_sample=True,
            temperature=config.temperature,
            top_k=0,
            top_p=1.0,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
        )
        with self.autocast():
            query_response = unwrapped.policy.generate(**query, generation_config=generation)
        responses = query_response[:, context_length:]
        response_mask, has_eos = response_mask_and_eos(responses, self.tokenizer.eos_token_id)
        attention_mask = torch.cat([query["attention_mask"], response_mask.long()], dim=1)

        chunk = config.logits_chunk_size
        with self.autocast():
            logprobs, token_entropies, values = self.model(
                query_response, attention_mask, context_length, config.temperature, chunk, True
            )
            ref_logprobs = reference_logprobs(
                self.ref_policy,
                query_response,
                attention_mask,
                context_length,
                config.temperature,
                chunk,
            )
        entropy = masked_mean(token_entropies, response_mask)

        response_texts = self.tokenizer.batch_decode(
            responses * response_mask.long()
            + self.tokenizer.pad_token_id * (1 - response_mask.long()),
            skip_special_tokens=True,
        )
        scores = torch.as_tensor(self.reward_fn(prompts, response_texts), dtype=torch.float)
        scores = scores.to(device)
        scores = scores - config.missing_eos_penalty * (~has_eos).float()

        kl = kl_penalty_estimate(logprobs, ref_logprobs, config.kl_estimator) * response_mask
        rewards = -self.kl.value * kl
        last = response_mask.sum(1).long() - 1
        rewards[torch.arange(len(prompts), device=device), last] += scores
        advantages, returns = gae(rewards, values, response_mask, config.gamma, config.lam)
        if config.whiten_advantages:
            advantages = masked_whiten(advantages, response_mask)

        stats = {
            "score": scores.mean(),
            "kl": kl.sum(1).mean(),
            "entropy": entropy,
            "response_length": response_mask.sum(1).mean(),
            "eos_fraction": has_eos.float().mean(),
        }
        rollout = Rollout(
            query_response=query_response,
            attention_mask=attention_mask,
            response_mask=response_mask,
            logprobs=logprobs,
            values=values * response_mask,
            advantages=advantages,
            returns=returns,
            context_length=context_length,
        )
        return rollout, {key: value.item() for key, value in stats.items()}

    # -- optimisation -------------------------------------------------------------------------

    def ppo_step(self, batch: Rollout, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """One gradient step on the rows ``rows`` of the rollout."""
        config = self.config
        mask = batch.response_mask[rows]
        with self.autocast():
            logprobs, _, values = self.model(
                batch.query_response[rows],
                batch.attention_mask[rows],
                batch.context_length,
                config.temperature,
                config.logits_chunk_size,
            )
        advantages, returns, old_values = (
            batch.advantages[rows],
            batch.returns[rows],
            batch.values[rows],
        )

        ratio = torch.exp(logprobs - batch.logprobs[rows])
        clipped_ratio = ratio.clamp(1.0 - config.cliprange, 1.0 + config.cliprange)
        policy_loss = masked_mean(torch.max(-advantages * ratio, -advantages * clipped_ratio), mask)

        clipped_values = old_values + (values - old_values).clamp(
            -config.cliprange_value, config.cliprange_value
        )
        value_loss = 0.5 * masked_mean(
            torch.max((values - returns) ** 2, (clipped_values - returns) ** 2), mask
        )

        loss = policy_loss + config.vf_coef * value_loss
        self.accelerator.backward(loss)
        self.accelerator.clip_grad_norm_(self.model.parameters(), config.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            return {
                "policy_loss": policy_loss,
                "value_loss": value_loss,
                "clip_fraction": masked_mean(
                    ((ratio - 1.0).abs() > config.cliprange).float(), mask
                ),
                "approx_kl": 0.5 * masked_mean((logprobs - batch.logprobs[rows]) ** 2, mask),
            }

    def train_step(self) -> dict[str, float]:
        """One PPO update: a rollout, then minibatch epochs over it. Returns averaged statistics."""
        config = self.config
        batch, stats = self.rollout(self.prompt_batch(self.update))
        generator = torch.Generator().manual_seed(config.seed * 7919 + self.update)
        step_stats: dict[str, list[torch.Tensor]] = {}
        epochs = 0
        for _ in range(config.ppo_epochs):
            order = torch.randperm(config.batch_size, generator=generator)
            epoch_kl = []
            for rows in order.split(config.minibatch_size):
                for key, value in self.ppo_step(batch, rows.to(batch.logprobs.device)).items():
                    step_stats.setdefault(key, []).append(value)
                epoch_kl.append(step_stats["approx_kl"][-1])
            epochs += 1
            limit = config.early_stop_approx_kl
            if limit and self._mean_across_processes(torch.stack(epoch_kl).mean()) > limit:
                break
        stats["ppo_epochs_run"] = float(epochs)
        stats.update({key: torch.stack(values).mean().item() for key, values in step_stats.items()})
        stats = {
            key: self.accelerator.reduce(
                torch.tensor(value, device=self.accelerator.device), "mean"
            ).item()
            for key, value in stats.items()
        }
        stats["kl_coef"] = self.kl.value
        self.kl.update(stats["kl"], config.batch_size * self.accelerator.num_processes)
        self.update += 1
        stats["update"] = self.update
        return stats

    def _mean_across_processes(self, value: torch.Tensor) -> float:
        return self.accelerator.reduce(value.detach().to(self.accelerator.device), "mean").item()

    def train(self, resume: bool = False) -> list[dict[str, float]]:
        """Run until ``total_updates``; with ``resume``, continue from the last checkpoint."""
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        if resume:
            self.load_checkpoint()
        history: list[dict[str, float]] = []
        show = self.config.progress and self.accelerator.is_main_process
        columns = [
            TextColumn("PPO"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
        ]
        with Progress(*columns, disable=not show) as progress:
            task = progress.add_task(
                "ppo", total=self.config.total_updates, completed=self.update, info=""
            )
            while self.update < self.config.total_updates:
                stats = self.train_step()
                history.append(stats)
                self.log(stats)
                info = f"score {stats['score']:.3f}  kl {stats['kl']:.3f}"
                progress.update(task, completed=self.update, info=info)
                every = self.config.save_every
                if every and self.update % every == 0 and self.update < self.config.total_updates:
                    self.save_checkpoint()
        if self.output_dir is not None:
            self.save_checkpoint()
            self.save_policy(self.output_dir / "policy")
        return history

    # -- logs and checkpoints -----------------------------------------------------------------

    def log(self, stats: dict[str, float]) -> None:
        """Append one update's statistics to ``log.jsonl`` (main process only)."""
        if self.output_dir is None or not self.accelerator.is_main_process:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with (self.output_dir / "log.jsonl").open("a", encoding="utf-8") as log:
            log.write(json.dumps(stats) + "\n")

    def save_checkpoint(self) -> Path:
        """Save the training state as ``checkpoint-UPDATE`` in the output folder; its path."""
        if self.output_dir is None:
            raise InputError("ppo", "no output directory to save a checkpoint to")
        path = self.output_dir / f"checkpoint-{self.update}"
        self.accelerator.save_state(str(path))
        if self.accelerator.is_main_process:
            state = {
                "update": self.update,
                "kl_coef": self.kl.value,
                "config": self.config.to_dict(),
            }
            (path / "ppo_state.json").write_text(json.dumps(state, indent=2), encoding="utf-8")
        self.accelerator.wait_for_everyone()
        return path

    def load_checkpoint(self) -> None:
        """Resume from the output folder's latest checkpoint; InputError when it has none."""
        checkpoints = sorted(
            (
                p
                for p in (self.output_dir or Path()).glob("checkpoint-*")
                if (p / "ppo_state.json").exists()
            ),
            key=lambda p: int(p.name.split("-")[1]),
        )
        if self.output_dir is None or not checkpoints:
            raise InputError(self.output_dir or "ppo", "no checkpoint to resume from")
        self.accelerator.load_state(str(checkpoints[-1]))
        state = json.loads((checkpoints[-1] / "ppo_state.json").read_text(encoding="utf-8"))
        self.update, self.kl.value = state["update"], state["kl_coef"]

    def save_policy(self, path: Path) -> None:
        """Save the trained policy and its tokenizer to ``path`` (main process only)."""
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            self.accelerator.unwrap_model(self.model).policy.save_pretrained(path)
            self.tokenizer.save_pretrained(path)
