"""``rlaif evaluate``: how much a trained policy improved on the starting policy.

On held-out prompts both policies sample one response each. Judges: the reward model trained on
human labels and/or an AI labeler (pairwise, both orders). Each gives a win rate (ties count one
half) with a seeded bootstrap 95% interval. Also: the mean KL of the trained policy to the
reference on its own responses, response lengths, and a length-controlled win rate (logistic
regression of the win on the length difference, read at equal length).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from rlaif.ppo_trainer import position_ids_for, token_logprobs


def win_rate(wins: Sequence[float], seed: int = 0) -> dict[str, float]:
    """Mean of per-prompt wins (1, 0.5, 0) with a bootstrap 95% confidence interval."""
    from scipy.stats import bootstrap

    values = np.asarray(wins, dtype=float)
    if len(values) < 2 or np.all(values == values[0]):
        value = float(values.mean()) if len(values) else math.nan
        return {"win_rate": value, "ci_low": value, "ci_high": value, "n": len(values)}
    result = bootstrap(
        (values,),
        np.mean,
        confidence_level=0.95,
        n_resamples=2000,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return {
        "win_rate": float(values.mean()),
        "ci_low": float(interval.low),
        "ci_high": float(interval.high),
        "n": len(values),
    }


def length_controlled_win_rate(wins: Sequence[float], length_difference: Sequence[float]) -> float:
    """Win rate at zero length difference from ``P(win) = sigmoid(a + b * diff / sd(diff))``."""
    from scipy.optimize import minimize
    from scipy.special import expit, log_expit

    y = np.asarray(wins, dtype=float)
    diff = np.asarray(length_difference, dtype=float)
    scale = diff.std() or 1.0
    x = diff / scale

    def loss(params: np.ndarray) -> float:
        logits = params[0] + params[1] * x
        return float(
            -(y * log_expit(logits) + (1 - y) * log_expit(-logits)).mean() + 1e-4 * params @ params
        )

    fitted = minimize(loss, np.zeros(2), method="BFGS")
    return float(expit(fitted.x[0]))


def pairwise_wins(scores_policy: Sequence[float], scores_reference: Sequence[float]) -> list[float]:
    return [
        1.0 if p > r else 0.5 if p == r else 0.0
        for p, r in zip(scores_policy, scores_reference, strict=True)
    ]


@torch.no_grad()
def response_logprob_sums(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    responses: Sequence[str],
    batch_size: int = 8,
) -> list[float]:
    """Sum over the response tokens of log p(token | prompt, earlier tokens) at temperature 1."""
    device = next(model.parameters()).device
    sums: list[float] = []
    for start in range(0, len(prompts), batch_size):
        rows = []
        for prompt, response in zip(
            prompts[start : start + batch_size], responses[start : start + batch_size], strict=True
        ):
            prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            response_ids = tokenizer(response, add_special_tokens=False)["input_ids"] + [
                tokenizer.eos_token_id
            ]
            rows.append((prompt_ids, response_ids))
        width = max(len(p) + len(r) for p, r in rows)
        ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        response_mask = torch.zeros_like(ids, dtype=torch.float)
        for i, (p, r) in enumerate(rows):
            offset = width - len(p) - len(r)  # left padding
            ids[i, offset:] = torch.tensor(p + r)
            mask[i, offset:] = 1
            response_mask[i, width - len(r) :] = 1
        ids, mask = ids.to(device), mask.to(device)
        logits = model(
            input_ids=ids, attention_mask=mask, position_ids=position_ids_for(mask)
        ).logits
        logprobs = token_logprobs(logits[:, :-1], ids[:, 1:]).cpu()
        sums += (logprobs * response_mask[:, 1:]).sum(1).tolist()
    return sums


def length_stats(responses: Sequence[str]) -> dict[str, float]:
    words = np.asarray([len(r.split()) for r in responses], dtype=float)
    return {"mean_words": float(words.mean()), "median_words": float(np.median(words))}


def judge_summary(wins: list[float], length_difference: list[float], seed: int) -> dict[str, Any]:
    return {
        **win_rate(wins, seed),
        "length_controlled_win_rate": length_controlled_win_rate(wins, length_difference),
    }
