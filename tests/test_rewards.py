"""``labelbench.rewards``: TRL's reward-function and verl's compute_score signatures, for real."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from labelbench.config import LabelerSpec, ServeSettings
from labelbench.labeling.labeler import open_labeler
from labelbench.prompting import load_variant
from labelbench.rewards import LabelbenchReward, compute_score
from labelbench.serve import RewardEngine, RewardService, create_app

VARIANT = "summarization/base-0shot"
PROMPTS = [
    "POST: my friend wants advice about a job offer\n\nTL;DR:",
    "POST: the user asks about a short summary of the post\n\nTL;DR:",
]


@contextmanager
def running(engine: RewardEngine, settings: ServeSettings) -> Iterator[str]:
    """``labelbench serve``'s app on uvicorn in a thread: its base URL."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(RewardService(engine, settings))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_trl_and_verl_signatures_through_a_served_labeler(tiny_lm_dir, tmp_path):
    labeler = open_labeler(LabelerSpec(name=str(tiny_lm_dir)))
    responses = [" a new job is good", " short"]
    expected = labeler.direct_rewards(
        PROMPTS, responses, "summarization", variant=VARIANT, cache=None
    ).rewards
    engine = RewardEngine(labeler, load_variant(VARIANT), cache_dir=tmp_path / "cache")
    with running(engine, ServeSettings()) as url:
        reward = LabelbenchReward(url)
        # TRL: keyword arguments, dataset columns and trainer extras passed along
        trl = reward(
            prompts=PROMPTS, completions=responses, completion_ids=[[1], [2]], extra=[0, 1]
        )
        conversational = reward(
            prompts=[[{"role": "user", "content": p}] for p in PROMPTS],
            completions=[[{"role": "assistant", "content": r}] for r in responses],
        )
        # verl: compute_score(data_source, solution_str, ground_truth, extra_info, **reward_kwargs)
        verl = [
            compute_score(
                data_source="tldr",
                solution_str=response,
                ground_truth="unused in direct mode",
                extra_info={"prompt": prompt, "index": 0},
                url=url,
            )
            for prompt, response in zip(PROMPTS, responses, strict=True)
        ]
    assert trl == pytest.approx(expected, abs=1e-6)
    assert conversational == pytest.approx(expected, abs=1e-6)
    assert verl == pytest.approx(expected, abs=1e-6)
    assert all(-1.0 <= value <= 1.0 for value in trl)


def test_serve_and_rlaif_ppo_reward_through_one_direct_score_path(tiny_lm_dir, monkeypatch):
    """Issue 28: one direct-score reward path. ``labelbench serve`` (and so ``labelbench.rewards``)
    in direct mode and ``rlaif ppo``'s direct RLAIF (``DirectLabelerScorer``) both reward through
    ``Labeler.direct_rewards``, and give the same items the same rewards: whitespace around a
    response removed, a blank one rated as ``(empty)``, the policy prompt mapped to its item's
    context."""
    from labelbench.labeling.opened import Labeler
    from labelbench.serve import RewardItem
    from rlaif.reward_scoring import DirectLabelerScorer

    calls = []
    direct_rewards = Labeler.direct_rewards

    def spy(self, *args, **kwargs):
        calls.append(len(args[1]))
        return direct_rewards(self, *args, **kwargs)

    monkeypatch.setattr(Labeler, "direct_rewards", spy)
    spec = LabelerSpec(name=str(tiny_lm_dir))
    responses = [" a new job is good", "a new job is good", "short\n", "", "   ", "(empty)"]
    which = [0, 0, 1, 1, 1, 1]  # the post each response answers
    contexts = [PROMPTS[i] for i in which]
    policy_prompts = [f"policy prompt {i}" for i in which]
    engine = RewardEngine(open_labeler(spec), load_variant(VARIANT), use_cache=False)
    served = engine.rewards([RewardItem(c, r) for c, r in zip(contexts, responses, strict=True)])
    scorer = DirectLabelerScorer(
        spec, "summarization", VARIANT, dict(zip(policy_prompts, contexts, strict=True))
    )
    trained = scorer(policy_prompts, responses).tolist()
    assert calls == [len(responses), len(responses)]  # each entry point, once, through the path
    assert all(value is not None for value in served)
    assert trained == pytest.approx(served, abs=1e-6)
    assert served[0] == pytest.approx(served[1], abs=1e-6)  # whitespace removed
    assert served[3] == pytest.approx(served[5], abs=1e-6)  # blank: rated as "(empty)"
    assert served[4] == pytest.approx(served[5], abs=1e-6)


def test_verl_compute_score_without_a_prompt_is_refused_before_any_request():
    """Issue 25 item 5: verl's default preprocessing puts only split and index in extra_info."""
    from labelbench.errors import InputError

    for extra_info in ({"split": "train", "index": 3}, None, {"prompt": "  "}):
        with pytest.raises(InputError, match="extra_info has no prompt under 'prompt'") as error:
            compute_score("tldr", " a summary", "", extra_info, url="http://127.0.0.1:9")
        assert "\n" not in str(error.value)
    with pytest.raises(InputError, match=re.escape("['index', 'split']")):
        compute_score("tldr", " s", "", {"split": "train", "index": 3}, url="http://127.0.0.1:9")


def test_trl_grpo_trainer_runs_with_the_labelbench_reward(tiny_lm_dir, tmp_path):
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    reward = LabelbenchReward(
        labeler=LabelerSpec(name=str(tiny_lm_dir)), variant=VARIANT, cache_dir=tmp_path / "cache"
    )
    policy = AutoModelForCausalLM.from_pretrained(tiny_lm_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    before = [p.detach().clone() for p in policy.parameters()]
    args = GRPOConfig(
        output_dir=str(tmp_path / "grpo"),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=6,
        max_steps=2,
        learning_rate=1e-2,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        seed=0,
    )
    trainer = GRPOTrainer(
        model=policy,
        reward_funcs=[reward],
        args=args,
        train_dataset=Dataset.from_dict({"prompt": PROMPTS * 2}),
        processing_class=tokenizer,
    )
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "rewards/labelbench/mean" in entry]
    assert len(logged) == 2
    assert all(-1.0 <= entry["rewards/labelbench/mean"] <= 1.0 for entry in logged)
    assert any(
        not torch.equal(a, b) for a, b in zip(before, policy.parameters(), strict=True)
    )  # the policy was updated
