"""The winning labeler as a reward function for RL engines: TRL and verl.

- TRL (checked with trl 1.16.0): ``GRPOTrainer(reward_funcs=[LabelbenchReward(...)])`` (and
  ``RLOOTrainer``, which calls reward functions the same way). TRL calls each reward function as
  ``f(prompts=..., completions=..., completion_ids=..., **columns)`` and reads one float (or None)
  per completion (``trl/trainer/grpo_trainer.py``, ``GRPOTrainer._calculate_rewards``); prompts and
  completions are strings, or message lists for conversational data.
- verl (checked with verl 0.9.1): ``reward.custom_reward_function.path=<this file>``,
  ``name=compute_score``; verl calls ``compute_score(data_source=..., solution_str=...,
  ground_truth=..., extra_info=..., **reward_kwargs)`` and reads a float
  (``verl/experimental/reward_loop/reward_manager/naive.py``, ``NaiveRewardManager.run_single``;
  the kwargs come from ``verl/trainer/ppo/reward.py``, ``get_custom_reward_fn``). verl passes no
  prompt: put it in the data set's ``extra_info["prompt"]``.

Rewards come from a ``labelbench serve`` URL or from a labeler opened in this process, through
the same engine and label cache (``labelbench.reward_engine.RewardEngine``): direct scores in
[-1, 1] (``Labeler.direct_rewards``, the path ``rlaif ppo``'s direct RLAIF takes too), or, in
pairwise mode, P(completion preferred over the reference) in [0, 1], combined over both orders by
the winner's aggregation (``winner.json`` ``aggregation``), as ``rlaif label`` does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labelbench.config import LabelerSpec, Mode
from labelbench.errors import InputError, ModelError
from labelbench.reward_engine import RewardEngine, RewardItem, open_engine

URL_ENV = "LABELBENCH_REWARD_URL"


def _text(value: Any) -> str:
    """A TRL prompt or completion as text: a string, or a list of chat messages."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n\n".join(
            f"{m.get('role', 'user')}: {m.get('content', '')}"
            if len(value) > 1
            else str(m.get("content", ""))
            for m in value
            if isinstance(m, dict)
        )
    raise InputError("reward function", f"expected text or chat messages, got {type(value)}")


class LabelbenchReward:
    """A reward function backed by a labeler: ``labelbench serve`` at ``url``, or a labeler
    opened here from ``winner`` (a winner.json) or ``labeler`` + ``variant``.

    Call it as TRL does (``reward(prompts=[...], completions=[...], **columns)`` → list of
    float or None) or use ``score``. In pairwise mode the reference of each completion is the
    dataset column ``reference_column`` (TRL passes dataset columns as keyword arguments).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        winner: str | Path | None = None,
        labeler: LabelerSpec | None = None,
        variant: str | None = None,
        mode: Mode = "direct",
        reference_column: str = "reference",
        cache_dir: str | Path | None = None,
        timeout: float = 300.0,
    ) -> None:
        if (url is None) == (winner is None and labeler is None):
            raise InputError("LabelbenchReward", "give url, or winner, or labeler with variant")
        self.__name__ = "labelbench"  # TRL logs rewards under the function's name
        self.url = url.rstrip("/") if url else None
        self.mode = mode
        self.reference_column = reference_column
        self.timeout = timeout
        self._engine: RewardEngine | None = None
        self._client: Any = None
        if self.url is None:
            self._engine = open_engine(
                winner=winner, labeler=labeler, variant=variant, mode=mode, cache_dir=cache_dir
            )

    def score(
        self,
        prompts: Sequence[str],
        responses: Sequence[str],
        references: Sequence[str | None] | None = None,
    ) -> list[float | None]:
        """One reward per response (None: unscored); ModelError when the server fails."""
        refs = list(references) if references is not None else [None] * len(prompts)
        items = [
            RewardItem(prompt, response, reference)
            for prompt, response, reference in zip(prompts, responses, refs, strict=True)
        ]
        if self._engine is not None:
            return self._engine.rewards(items)
        return self._post(items)

    def _post(self, items: list[RewardItem]) -> list[float | None]:
        import httpx

        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout)
        body = {
            "items": [
                {"prompt": i.prompt, "response": i.response}
                | ({} if i.reference is None else {"reference": i.reference})
                for i in items
            ]
        }
        try:
            reply = self._client.post(f"{self.url}/score", json=body)
        except httpx.HTTPError as error:
            raise ModelError(f"{self.url}/score: {type(error).__name__}: {error}") from error
        if reply.status_code != 200:
            raise ModelError(f"{self.url}/score answered {reply.status_code}: {reply.text[:300]}")
        return list(reply.json()["rewards"])

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
    ) -> list[float | None]:
        references = None
        if self.mode == "pairwise":
            if self.reference_column not in columns:
                raise InputError(
                    "LabelbenchReward",
                    f"pairwise mode: the data set needs a {self.reference_column!r} column",
                )
            references = [_text(r) for r in columns[self.reference_column]]
        return self.score([_text(p) for p in prompts], [_text(c) for c in completions], references)


_clients: dict[str, LabelbenchReward] = {}


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict[str, Any] | None = None,
    *,
    url: str | None = None,
    pairwise: bool = False,
    prompt_key: str = "prompt",
    **kwargs: Any,
) -> float:
    """verl's custom reward function: the labeler's reward of ``solution_str`` (0.0 when
    unscored). ``url`` (verl ``reward_kwargs``) or ``$LABELBENCH_REWARD_URL`` names the
    ``labelbench serve`` server; the prompt is ``extra_info[prompt_key]`` (text or chat
    messages); with ``pairwise`` the reference is ``ground_truth`` (the server must run
    ``--mode pairwise``). Raises InputError (one line) when ``extra_info`` holds no prompt there:
    verl passes no prompt and its default preprocessing puts only ``split`` and ``index`` in
    ``extra_info``, and a response rated without its prompt is not the reward that was
    measured."""
    address = url or os.environ.get(URL_ENV)
    if not address:
        raise InputError("compute_score", f"set reward_kwargs.url or ${URL_ENV}")
    found = (extra_info or {}).get(prompt_key) if isinstance(extra_info, dict | None) else None
    prompt = _text(found) if isinstance(found, str | list) else ""
    if not prompt.strip():
        keys = sorted(extra_info) if isinstance(extra_info, dict) else []
        raise InputError(
            "compute_score",
            f"extra_info has no prompt under {prompt_key!r} (its keys: {keys}); verl passes no "
            "prompt, so add it to each row's extra_info when preparing the data set (e.g. "
            "extra_info['prompt'] = the prompt text), or name its key with "
            "+reward.custom_reward_function.reward_kwargs.prompt_key=KEY",
            field=f"extra_info.{prompt_key}",
        )
    client = _clients.get(address)
    if client is None:
        client = _clients[address] = LabelbenchReward(address)
    reference = str(ground_truth) if pairwise else None
    (value,) = client.score([prompt], [solution_str], [reference])
    return 0.0 if value is None else float(value)
