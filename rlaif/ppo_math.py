"""PPO's tensor math, one home for it (as TRL's ``trainer/utils.py``): masked statistics,
log-probabilities and entropies from logits, the per-token KL penalty and its coefficient, the
response mask, and generalized advantage estimation. ``mask`` is 1 on response tokens (EOS
included) and 0 on padding throughout."""

from __future__ import annotations

from dataclasses import dataclass

import torch

# ---------------------------------------------------------------------------------------------
# Small tensor helpers.


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of ``values`` where ``mask`` is 1 (a scalar; 0 for an empty mask)."""
    return (values * mask).sum() / mask.sum().clamp(min=1)


def masked_whiten(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``values`` shifted and scaled to mean 0 and variance 1 over ``mask``; 0 off the mask."""
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
    """The KL coefficient ``value``; with ``adaptive``, moved towards ``target`` KL over
    ``horizon`` samples (Ziegler et al., 2019, section 2.2)."""

    value: float
    adaptive: bool = False
    target: float = 6.0
    horizon: int = 10000

    def update(self, observed_kl: float, n_samples: int) -> None:
        """Adapt ``value`` to ``observed_kl`` (nats per response) measured on ``n_samples``."""
        if self.adaptive:
            error = min(max(observed_kl / self.target - 1.0, -0.2), 0.2)
            self.value *= 1.0 + error * n_samples / self.horizon


# ---------------------------------------------------------------------------------------------
# Rollouts: the response mask, and advantages from rewards and values.


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
