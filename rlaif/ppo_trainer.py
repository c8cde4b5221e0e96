"""PPO for language models in one module, read top to bottom.

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

from labelbench.errors import InputError, ModelError
from rlaif.ppo_config import PPOConfig

RewardFn = Callable[[list[str], list[str]], torch.Tensor | Sequence[float]]
"""``reward_fn(prompts, responses)``: one score per (prompt, response text) pair."""


# ---------------------------------------------------------------------------------------------
# Small tensor helpers. ``mask`` is 1 on response tokens (EOS included) and 0 on padding.


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp(min=1)


def masked_whiten(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mean = masked_mean(values, mask)
    variance = masked_mean((values - mean) ** 2, mask)
    return (values - mean) * torch.rsqrt(variance + 1e-8) * mask


def selective_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``log_softmax(logits)[..., tokens]`` without the full log-softmax tensor.

    ``logits``: [..., V]; ``tokens``: [...] (int64). Returns float32 [...]: the token's logit minus
    the log-sum-exp over the vocabulary."""
    logits = logits.float()
    picked = logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of the softmax of ``logits`` [..., V], float32 [...]."""
    logits = logits.float()
    return torch.logsumexp(logits, dim=-1) - (torch.softmax(logits, dim=-1) * logits).sum(-1)


def position_ids_for(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding, as ``generate`` uses them."""
    return (attention_mask.cumsum(1) - 1).clamp(min=0)


def disable_dropout(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0


# ---------------------------------------------------------------------------------------------
# Log-probabilities of response tokens without a [batch, response, vocab] tensor.
#
# The policy's decoder gives hidden states [B, R, H]; the output layer maps ``logits_chunk_size``
# of them at a time to logits, which are reduced at once to the token's log-probability (and,
# without gradients, the entropy). With gradients each chunk runs under activation checkpointing,
# so no chunk's logits are kept for the backward pass: it recomputes them one chunk at a time.


def _softcap(policy: nn.Module) -> float | None:
    config = policy.config.get_text_config()
    return getattr(config, "final_logit_softcapping", None)


def _head_logits(policy: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    logits = policy.get_output_embeddings()(hidden)
    cap = _softcap(policy)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


def _decoder_hidden(policy: nn.Module, input_ids, attention_mask, position_ids) -> torch.Tensor:
    return policy.get_decoder()(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        use_cache=False,
    ).last_hidden_state


@torch.no_grad()
def supports_hidden_state_logits(policy: nn.Module) -> bool:
    """Whether decoder hidden states through the output layer (and soft-capping) reproduce the
    policy's own logits; checked once per model on a few tokens. Models with other final steps
    fall back to the model's logits (still reduced chunk by chunk)."""
    cached = getattr(policy, "_labelbench_hidden_logits", None)
    if cached is not None:
        return cached
    try:
        device = next(policy.parameters()).device
        vocab = policy.config.get_text_config().vocab_size
        ids = torch.arange(1, 6, device=device).remainder(vocab)
        ids, mask = ids[None], torch.ones(1, 5, dtype=torch.long, device=device)
        positions = position_ids_for(mask)
        was_training = policy.training
        policy.eval()
        with torch.autocast(device_type=device.type, enabled=False):
            full = policy(input_ids=ids, attention_mask=mask, position_ids=positions).logits
            lean = _head_logits(policy, _decoder_hidden(policy, ids, mask, positions))
        policy.train(was_training)
        ok = bool(torch.allclose(full.float(), lean.float(), atol=1e-4, rtol=1e-4))
    except (AttributeError, NotImplementedError, TypeError, ValueError):
        ok = False
    policy._labelbench_hidden_logits = ok
    return ok


def response_logprobs(
    policy: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    context_length: int,
    temperature: float = 1.0,
    chunk_size: int = 256,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probabilities (float32 [B, T - context_length]) of the tokens after ``context_length``
    in ``input_ids`` [B, T] under ``policy`` at ``temperature``, and their entropies when asked.

    At most ``chunk_size`` positions' full-vocabulary logits exist at any time. Entropies are
    computed only without gradients (a statistic of the rollout); otherwise None."""
    from torch.utils.checkpoint import checkpoint

    position_ids = position_ids_for(attention_mask)
    tokens = input_ids[:, context_length:]
    batch, length = tokens.shape
    if supports_hidden_state_logits(policy):
        hidden = _decoder_hidden(policy, input_ids, attention_mask, position_ids)
        hidden = hidden[:, context_length - 1 : -1]

        def chunk_logits(rows: torch.Tensor) -> torch.Tensor:
            return _head_logits(policy, rows)
    else:  # the model's own logits, still reduced one chunk at a time
        hidden = policy(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=False,
        ).logits[:, context_length - 1 : -1]

        def chunk_logits(rows: torch.Tensor) -> torch.Tensor:
            return rows

    def reduce(rows: torch.Tensor, chunk_tokens: torch.Tensor) -> torch.Tensor:
        return selective_logprobs(chunk_logits(rows).float() / temperature, chunk_tokens)

    flat_hidden = hidden.reshape(batch * length, -1)
    flat_tokens = tokens.reshape(-1)
    grad = torch.is_grad_enabled() and flat_hidden.requires_grad
    logprobs, entropies = [], []
    for start in range(0, batch * length, chunk_size):
        rows = flat_hidden[start : start + chunk_size]
        chunk_tokens = flat_tokens[start : start + chunk_size]
        if grad:
            logprobs.append(checkpoint(reduce, rows, chunk_tokens, use_reentrant=False))
            continue
        logits = chunk_logits(rows).float() / temperature
        logprobs.append(selective_logprobs(logits, chunk_tokens))
        if with_entropy:
            entropies.append(token_entropy(logits))
        del logits
    entropy = torch.cat(entropies).reshape(batch, length) if entropies else None
    return torch.cat(logprobs).reshape(batch, length), entropy


# ---------------------------------------------------------------------------------------------
# Models: the policy and the value model are trained together as one module.


class ValueModel(nn.Module):
    """A transformer backbone with a scalar head on every position.

    Initialisation (``from_policy``, the default): a copy of the policy's backbone and a head of
    zeros, so every value starts at 0 and the first advantages are the whitened returns.
    ``from_reward_model`` (``value_from_reward_model``, as TRL does): the reward model's backbone
    and score head, so values start at the reward model's score of each prefix.
    """

    def __init__(self, backbone: nn.Module, head: nn.Linear) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    @classmethod
    def from_policy(cls, policy: nn.Module) -> ValueModel:
        hidden_size = policy.config.get_text_config().hidden_size
        head = nn.Linear(hidden_size, 1)
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)
        return cls(copy.deepcopy(policy.base_model), head)

    @classmethod
    def from_reward_model(cls, reward_model: nn.Module, policy: nn.Module) -> ValueModel:
        """The reward model's backbone and score head (copied); it must share the policy's
        vocabulary, since it reads the policy's tokens."""
        vocab = policy.config.get_text_config().vocab_size
        rm_vocab = reward_model.config.get_text_config().vocab_size
        if rm_vocab != vocab:
            raise ModelError(
                f"the reward model's vocabulary ({rm_vocab}) is not the policy's ({vocab}): "
                "it cannot initialise the value model"
            )
        head = getattr(reward_model, "score", None)
        if not isinstance(head, nn.Linear) or head.out_features != 1:
            raise ModelError("the reward model has no one-output 'score' head to start values from")
        return cls(copy.deepcopy(reward_model.base_model), copy.deepcopy(head).float())

    def forward(self, input_ids, attention_mask, position_ids) -> torch.Tensor:
        hidden = self.backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=False,
        ).last_hidden_state
        return self.head(hidden).squeeze(-1).float()


class PolicyAndValue(nn.Module):
    def __init__(self, policy: nn.Module, value: ValueModel) -> None:
        super().__init__()
        self.policy = policy
        self.value = value

    def forward(
        self,
        input_ids,
        attention_mask,
        context_length: int,
        temperature: float,
        chunk_size: int = 256,
        with_entropy: bool = False,
    ):
        """Response-token log-probabilities (temperature applied), entropies (or None) and
        values for ``query + response``; all float32 [B, R]."""
        logprobs, entropy = response_logprobs(
            self.policy,
            input_ids,
            attention_mask,
            context_length,
            temperature,
            chunk_size,
            with_entropy,
        )
        position_ids = position_ids_for(attention_mask)
        values = self.value(input_ids, attention_mask, position_ids)[:, context_length - 1 : -1]
        return logprobs, entropy, values


@torch.no_grad()
def reference_logprobs(
    ref_policy: nn.Module,
    query_response: torch.Tensor,
    attention_mask: torch.Tensor,
    context_length: int,
    temperature: float,
    chunk_size: int = 256,
) -> torch.Tensor:
    return response_logprobs(
        ref_policy, query_response, attention_mask, context_length, temperature, chunk_size
    )[0]


def kl_penalty_estimate(
    logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str = "k1"
) -> torch.Tensor:
    """Per-token estimate of KL(pi || pi_ref) from tokens sampled from pi.

    k1: ``log pi - log pi_ref``; k3: ``r - 1 - log r`` with ``r = pi_ref / pi`` (Schulman's
    estimators; both unbiased, k3 never negative and of lower variance near pi_ref)."""
    log_ratio = ref_logprobs - logprobs
    if estimator == "k1":
        return -log_ratio
    if estimator == "k3":
        return torch.expm1(log_ratio) - log_ratio
    raise ValueError(f"unknown KL estimator {estimator!r}; use k1 or k3")


# ---------------------------------------------------------------------------------------------
# The KL coefficient: fixed, or adapted towards a target KL (Ziegler et al., 2019).


@dataclass
class KLController:
    value: float
    adaptive: bool = False
    target: float = 6.0
    horizon: int = 10000

    def update(self, observed_kl: float, n_samples: int) -> None:
        if self.adaptive:
            error = min(max(observed_kl / self.target - 1.0, -0.2), 0.2)
            self.value *= 1.0 + error * n_samples / self.horizon


# ---------------------------------------------------------------------------------------------
# Rollouts: sample, score, shape the reward, estimate advantages.


@dataclass
class Rollout:
    query_response: torch.Tensor  # [B, P + R] left-padded prompt, then response, then padding
    attention_mask: torch.Tensor  # [B, P + R]
    response_mask: torch.Tensor  # [B, R] float, 1 up to and including the first EOS
    logprobs: torch.Tensor  # [B, R] under the policy that sampled
    values: torch.Tensor  # [B, R]
    advantages: torch.Tensor  # [B, R]
    returns: torch.Tensor  # [B, R]
    context_length: int


def response_mask_and_eos(
    responses: torch.Tensor, eos_token_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask of the tokens up to and including the first EOS, and whether each row has one."""
    is_eos = responses == eos_token_id
    has_eos = is_eos.any(dim=1)
    first_eos = torch.where(has_eos, is_eos.int().argmax(dim=1), responses.shape[1] - 1)
    positions = torch.arange(responses.shape[1], device=responses.device)
    return (positions[None, :] <= first_eos[:, None]).float(), has_eos


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation over response tokens; values past the end count as 0."""
    values = values * mask
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        next_value = values[:, t + 1] if t + 1 < rewards.shape[1] else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * running
        advantages[:, t] = running
    return advantages * mask, (advantages + values) * mask


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
        if self.output_dir is None or not self.accelerator.is_main_process:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with (self.output_dir / "log.jsonl").open("a", encoding="utf-8") as log:
            log.write(json.dumps(stats) + "\n")

    def save_checkpoint(self) -> Path:
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
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            self.accelerator.unwrap_model(self.model).policy.save_pretrained(path)
            self.tokenizer.save_pretrained(path)


def check_policy(policy: nn.Module, tokenizer: Any) -> None:
    """Fail before training when the policy cannot end a response."""
    if getattr(tokenizer, "eos_token_id", None) is None:
        raise ModelError("the policy's tokenizer has no EOS token, so responses could never end")
    if not hasattr(policy, "generate"):
        raise ModelError(f"the policy ({type(policy).__name__}) is not a generative language model")
