"""``rlaif evaluate``: how much a trained policy improved on the starting policy.

On held-out prompts both policies sample one response each. Judges: the reward model trained on
human labels and/or an AI labeler (pairwise, both orders). Each gives a win rate (ties count one
half) with a seeded bootstrap 95% interval. Also: the mean KL of the trained policy to the
reference on its own responses, response lengths, and a length-controlled win rate (logistic
regression of the win on the length difference, read at equal length).

A figure the data cannot support is undefined (None, null in JSON, "n/a (reason)" when printed),
never a made-up number: no prompts → no win rate; one prompt → no interval; no variation in the
length difference, or in the outcome, or a length difference that alone decides the outcome →
no length-controlled win rate. ``undefined`` in each judge's block gives the reasons.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rlaif.data import DataOptions
from rlaif.ppo_trainer import response_logprobs

if TYPE_CHECKING:
    from labelbench.labeling.labeler import Winner


def win_rate(wins: Sequence[float], seed: int = 0) -> dict[str, Any]:
    """Mean of per-prompt wins (1, 0.5, 0) with a bootstrap 95% confidence interval
    (``labelbench.metrics.mean_with_interval``: 2000 percentile-bootstrap resamples of the
    prompts, seeded by ``seed``).

    Returns ``win_rate``, ``ci_low``, ``ci_high``, ``n`` and, where a figure is None,
    ``undefined``: {figure: reason}. No wins: all None; one win: no interval. When every
    outcome is the same the bootstrap has nothing to resample, so the interval is the Wilson
    score interval of that proportion over ``n`` prompts (three wins of three: [0.44, 1.0],
    never the zero-width [1.0, 1.0])."""
    from labelbench.metrics import mean_with_interval

    if len(wins) == 0:
        reason = "no prompts"
        return {
            "win_rate": None,
            "ci_low": None,
            "ci_high": None,
            "n": 0,
            "undefined": {"win_rate": reason, "interval": reason},
        }
    estimate = mean_with_interval(np.asarray(wins, dtype=float), n_boot=2000, seed=seed)
    if estimate.n < 2:
        return {
            "win_rate": estimate.value,
            "ci_low": None,
            "ci_high": None,
            "n": 1,
            "undefined": {"interval": "one prompt: no interval"},
        }
    return {
        "win_rate": estimate.value,
        "ci_low": estimate.low,
        "ci_high": estimate.high,
        "n": estimate.n,
    }


def length_controlled_win_rate(
    wins: Sequence[float], length_difference: Sequence[float]
) -> tuple[float | None, str | None]:
    """Win rate at zero length difference from ``P(win) = sigmoid(a + b * diff / sd(diff))``,
    or (None, reason) when the data cannot identify it: no prompts, no variation in the length
    difference or in the outcome, length differences all on one side of zero (zero would be
    extrapolated), or a length difference that alone decides the outcome."""
    from scipy.optimize import minimize
    from scipy.special import expit, log_expit

    y = np.asarray(wins, dtype=float)
    diff = np.asarray(length_difference, dtype=float)
    if len(y) == 0:
        return None, "no prompts"
    if np.ptp(diff) == 0:
        return None, "no variation in the length difference"
    if np.ptp(y) == 0:
        return None, "no variation in the outcome"
    if diff.min() > 0 or diff.max() < 0:
        side = "longer" if diff.min() > 0 else "shorter"
        return None, (
            f"the policy's response is {side} on every prompt: equal length lies outside the "
            "data, and a win rate there would be extrapolated"
        )
    low, high = diff[y <= 0.5], diff[y >= 0.5]
    if low.size and high.size and (low.max() < high.min() or high.max() < low.min()):
        return None, "the length difference alone decides the outcome"
    x = diff / diff.std()

    def loss(params: np.ndarray) -> float:
        logits = params[0] + params[1] * x
        return float(
            -(y * log_expit(logits) + (1 - y) * log_expit(-logits)).mean() + 1e-4 * params @ params
        )

    fitted = minimize(loss, np.zeros(2), method="BFGS")
    return float(expit(fitted.x[0])), None


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
        logprobs, _ = response_logprobs(model, ids, mask, 1)
        sums += (logprobs.cpu() * response_mask[:, 1:]).sum(1).tolist()
    return sums


def length_stats(responses: Sequence[str]) -> dict[str, float | None]:
    """Mean and median length in words (None without responses)."""
    if not responses:
        return {"mean_words": None, "median_words": None}
    words = np.asarray([len(r.split()) for r in responses], dtype=float)
    return {"mean_words": float(words.mean()), "median_words": float(np.median(words))}


def judge_summary(wins: list[float], length_difference: list[float], seed: int) -> dict[str, Any]:
    """Win rate, interval and length-controlled win rate of one judge; reasons for any None."""
    summary = win_rate(wins, seed)
    controlled, reason = length_controlled_win_rate(wins, length_difference)
    summary["length_controlled_win_rate"] = controlled
    if reason is not None:
        summary.setdefault("undefined", {})["length_controlled_win_rate"] = reason
    return summary


def describe(value: float | None, reason: str | None = None, digits: int = 3) -> str:
    """A figure for the terminal: the number, or "n/a (reason)"."""
    if value is None or not math.isfinite(value):
        return f"n/a ({reason})" if reason else "n/a"
    return f"{value:.{digits}f}"


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The figures of an ``evaluate_policy`` result for the terminal; "n/a (reason)" if none."""
    lines = []
    for name, judged in result["judges"].items():
        why = judged.get("undefined", {})
        interval = (
            f"[{judged['ci_low']:.3f}, {judged['ci_high']:.3f}]"
            if judged["ci_low"] is not None
            else f"interval {describe(None, why.get('interval'))}"
        )
        controlled = describe(
            judged["length_controlled_win_rate"], why.get("length_controlled_win_rate")
        )
        marked = " (not independent)" if judged.get("independent") is False else ""
        lines.append(
            f"{name}{marked}: win rate {describe(judged['win_rate'], why.get('win_rate'))} "
            f"{interval}, length-controlled {controlled}"
        )
    kl = describe(result["mean_kl_to_reference"], "no prompts")
    lines.append(f"mean KL to reference {kl} nats")
    return lines


# ---------------------------------------------------------------------------------- the pipeline


@dataclass
class EvaluateConfig:
    """Settings of ``rlaif evaluate`` (its options are generated from these)."""

    reference: str = field(default="smollm2-135m", metadata={"help": "Starting policy."})
    limit: int | None = field(
        default=None, metadata={"help": "Evaluate on at most this many prompts."}
    )
    response_length: int = field(default=48, metadata={"help": "Most tokens per response."})
    max_prompt_tokens: int = field(
        default=512, metadata={"help": "Prompts keep their last N tokens (as in rlaif ppo)."}
    )
    temperature: float = field(default=0.7, metadata={"help": "Sampling temperature."})
    seed: int = field(default=0, metadata={"help": "Seed of sampling and the bootstrap."})

    def __post_init__(self) -> None:
        for name in ("limit", "response_length", "max_prompt_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        if self.temperature <= 0:
            raise ValueError("--temperature must be positive")


def evaluate_policy(
    policy: str,
    prompts: Path,
    out: Path,
    config: EvaluateConfig,
    data: DataOptions,
    reward_model: Path | None = None,
    labeler: Winner | None = None,
) -> dict[str, Any]:
    """Sample both policies on the held-out prompts and judge them; the results as a dict
    (the command writes it to ``out``). ``labeler`` (from ``rlaif.label.choose_labeler``) judges
    pairwise, both orders. Raises InputError/ModelError before any sampling, also for a
    ``reward_model`` judge trained on any of the prompts' posts or on posts either policy was
    trained on (its ``training_groups.json``; ``rlaif.groups.check_judge``); a judge without
    that record is used with a note on stderr."""
    from labelbench.errors import InputError, check_writable_dir, check_writable_file
    from labelbench.labeling import default_cache_dir
    from labelbench.labeling.labeler import warn_if_weak
    from labelbench.models.device import training_device
    from labelbench.models.registry import check_directory
    from labelbench.prompting.planner import check_tasks
    from rlaif.data import existing, load_prompt_items
    from rlaif.groups import check_judge
    from rlaif.label import generate
    from rlaif.preferences import policy_prompt, truncate_prompts
    from rlaif.reward_scoring import RewardModelScorer, check_reward_model_folder, load_reward_model

    if reward_model is None and labeler is None:
        raise InputError(
            "rlaif evaluate",
            "name at least one judge: --reward-model and/or --winner (or --labeler and --variant)",
        )
    if reward_model is not None:  # a bad reward model is found before the policies load
        check_directory(existing(reward_model, "reward model directory"))
        check_reward_model_folder(reward_model)
    items = load_prompt_items(prompts, data, limit=config.limit)
    judge_record, notes = None, []
    if reward_model is not None:  # a judge trained on these posts, or the policies', is refused
        judge_record, notes = check_judge(
            reward_model,
            [i.group_id for i in items],
            {"--policy": policy, "--reference": config.reference},
        )
    check_writable_file(out, "output file")
    if labeler is not None:
        check_tasks(items, labeler.variant)
        check_writable_dir(default_cache_dir(), "label cache directory")
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    on = training_device()
    trained, start = load_policy(policy), load_policy(config.reference)
    texts = truncate_prompts(
        [policy_prompt(i.task, i.context, i.meta) for i in items],
        start.tokenizer,
        config.max_prompt_tokens,
    )
    trained.model.to(on)
    start.model.to(on)
    judge_rm = None
    if reward_model is not None:
        rm_dir = existing(reward_model, "reward model directory")
        judge_rm = RewardModelScorer(*load_reward_model(rm_dir, on))
    sample = dict(
        max_new_tokens=config.response_length, temperature=config.temperature, seed=config.seed
    )
    warn_if_weak(labeler)
    policy_out = generate(trained.model, trained.tokenizer, texts, **sample)
    reference_out = generate(start.model, start.tokenizer, texts, **sample)
    policy_out = [r if r.strip() else " (empty)" for r in policy_out]
    reference_out = [r if r.strip() else " (empty)" for r in reference_out]
    length_difference = [
        len(p.split()) - len(r.split()) for p, r in zip(policy_out, reference_out, strict=True)
    ]
    logp_policy = response_logprob_sums(trained.model, trained.tokenizer, texts, policy_out)
    logp_reference = response_logprob_sums(start.model, start.tokenizer, texts, policy_out)
    kl = [a - b for a, b in zip(logp_policy, logp_reference, strict=True)]
    result: dict[str, Any] = {
        "policy": policy,
        "prompts": str(prompts),
        "n_prompts": len(texts),
        **asdict(config),
        "mean_kl_to_reference": sum(kl) / len(kl) if kl else None,
        "lengths": {"policy": length_stats(policy_out), "reference": length_stats(reference_out)},
        "judges": {},
    }
    if judge_rm is not None:
        wins = pairwise_wins(
            judge_rm(texts, policy_out).tolist(), judge_rm(texts, reference_out).tolist()
        )
        result["judges"]["reward_model"] = {
            "path": str(reward_model),
            "training_posts": {
                "checked": judge_record is not None,
                "n": len(judge_record.groups) if judge_record else None,
                "complete": judge_record.complete if judge_record else None,
                "shared_with_prompts_or_policies": 0 if judge_record else None,
            },
            **judge_summary(wins, length_difference, config.seed),
        }
    if labeler is not None:
        result["judges"]["labeler"] = {
            "independent": False,
            "note": "not independent: a labeler judge is the benchmark's AI labeler, which made "
            "(or could have made) the RLAIF training labels and shares their biases; the "
            "reward-model judge, trained on other posts' human labels, is the independent one. "
            "Its preference is the mean of both orders' P (prob-mean).",
            "labeler": labeler.labeler.display,
            "labeler_spec": labeler.labeler.model_dump(mode="json", exclude_none=True),
            "variant": labeler.variant,
            **_labeler_judgement(
                items, policy_out, reference_out, length_difference, labeler, config.seed
            ),
        }
    return result


def _labeler_judgement(items, policy_out, reference_out, length_difference, labeler, seed):
    from labelbench.data.record import Comparison
    from rlaif.label import ai_preferences

    pairs = [
        Comparison(
            id=f"{i.id}",
            group_id=i.group_id,
            task=i.task,
            context=i.context,
            response_a=p.strip(),
            response_b=r.strip(),
            meta=i.meta,
        )
        for i, p, r in zip(items, policy_out, reference_out, strict=True)
    ]
    p_policy, _ = ai_preferences(pairs, labeler.labeler, labeler.variant, seed=labeler.seed)
    scored = [i for i, p in enumerate(p_policy) if p is not None]
    wins = pairwise_wins([p_policy[i] for i in scored], [0.5] * len(scored))
    return judge_summary(wins, [length_difference[i] for i in scored], seed)


def load_policy(spec: str) -> Any:
    """A policy (model, tokenizer) from the registry or a folder, checked to be able to end."""
    from labelbench.models.registry import load_model
    from rlaif.ppo_trainer import check_policy

    loaded = load_model(spec)
    check_policy(loaded.model, loaded.tokenizer)
    return loaded
